"""The engine's inputs as a replayable journal: what makes a restart lose nothing.

:class:`hub.round.RoundEngine` is pure and deterministic, so its whole state (current round,
history, lockouts, the set of press ids already seen) is a function of the calls made to it.
Persisting those calls, in order, and replaying them into a fresh engine on start restores that
state exactly, including the dedup set that lets a node re-send an unacknowledged press after a
restart and have it counted once. Storing the derived results alone could not do that: pending
presses, lockouts and the dedup memory are not results.

Times are hub monotonic nanoseconds, which restart from zero when the machine reboots. Each
journal entry therefore belongs to a *segment* (one hub start) that records the boot it ran in;
replay shifts each segment's times so that they line up with the current boot (see
:func:`segment_shifts`). The engine only ever compares and subtracts times, so adding one
constant to every time it was given shifts its state without changing any decision.

Nothing here touches a database or a clock: the store feeds rows in, tests feed lists in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.round import Event, PressIn, RoundEngine, Rules, TieRule
from wire.enums import ReboundMode

ARM, PRESS, TICK, RESET, CLOSE = "arm", "press", "tick", "reset", "close"
WRONG, RIGHT, TEAM = "wrong", "right", "team"  # game play: rulings and team changes
KINDS = (ARM, PRESS, TICK, RESET, CLOSE, WRONG, RIGHT, TEAM)


@dataclass(frozen=True, slots=True)
class Call:
    """One call made to the engine: its name, its ``now`` and its other arguments."""

    kind: str
    now_ns: int
    press: PressIn | None = None
    horizon_ns: int = 0
    lead_ns: int | None = None
    mode: str | None = None  # wrong: the rebound mode asked for, None: the rules' default
    player: str | None = None  # team: who moves
    team: str | None = None  # team: where to (None: out of any team)

    def payload(self) -> str:
        """The arguments besides ``now`` as compact JSON (the journal's ``args`` column)."""
        body: dict[str, Any] = {}
        if self.press is not None:
            body["press"] = dataclasses.asdict(self.press)
            body["horizon_ns"] = self.horizon_ns
        if self.lead_ns is not None:
            body["lead_ns"] = self.lead_ns
        if self.mode is not None:
            body["mode"] = self.mode
        if self.kind == TEAM:
            body["player"], body["team"] = self.player, self.team
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def load(cls, kind: str, now_ns: int, payload: str) -> Call:
        if kind not in KINDS:
            raise ValueError(f"unknown journal entry kind {kind!r}")
        body = json.loads(payload) if payload else {}
        press = PressIn(**body["press"]) if "press" in body else None
        return cls(
            kind,
            now_ns,
            press,
            body.get("horizon_ns", 0),
            body.get("lead_ns"),
            body.get("mode"),
            body.get("player"),
            body.get("team"),
        )

    def shifted(self, delta_ns: int) -> Call:
        """The same call with every hub-clock time moved by ``delta_ns`` (node times stay)."""
        if delta_ns == 0:
            return self
        press = self.press
        if press is not None:
            press = dataclasses.replace(
                press, at_ns=press.at_ns + delta_ns, arrival_ns=press.arrival_ns + delta_ns
            )
        return dataclasses.replace(self, now_ns=self.now_ns + delta_ns, press=press)


def apply(engine: RoundEngine, call: Call) -> list[Event]:
    """Make ``call`` on the plain engine methods: the one place mapping entries to methods."""
    if call.kind == PRESS:
        assert call.press is not None
        return RoundEngine.press(engine, call.press, call.now_ns, call.horizon_ns)
    if call.kind == ARM:
        return RoundEngine.arm(engine, call.now_ns, call.lead_ns)
    if call.kind == TICK:
        return RoundEngine.tick(engine, call.now_ns)
    if call.kind == RESET:
        return RoundEngine.reset(engine, call.now_ns)
    if call.kind == WRONG:
        mode = ReboundMode(call.mode) if call.mode else None
        return RoundEngine.wrong(engine, call.now_ns, mode)
    if call.kind == RIGHT:
        return RoundEngine.right(engine, call.now_ns)
    if call.kind == TEAM:
        assert call.player is not None
        return RoundEngine.assign_team(engine, call.player, call.team, call.now_ns)
    return RoundEngine.close(engine, call.now_ns)


class RecordingEngine(RoundEngine):
    """A round engine that remembers each call made to it from outside, for the journal.

    Only outermost calls are recorded: a tick that re-arms calls :meth:`arm` itself, and replaying
    the tick repeats that, so recording the inner arm as well would arm twice on replay.
    """

    def __init__(self, rules: Rules) -> None:
        super().__init__(rules)
        self._calls: list[Call] = []
        self._depth = 0

    def take_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def _record(self, call: Call) -> list[Event]:
        outer = self._depth == 0
        self._depth += 1
        try:
            events = apply(self, call)
        finally:
            self._depth -= 1
        if outer:
            self._calls.append(call)
        return events

    def arm(self, now: int, lead_ns: int | None = None) -> list[Event]:
        return self._record(Call(ARM, now, lead_ns=lead_ns))

    def press(self, press: PressIn, now: int, horizon_ns: int = 0) -> list[Event]:
        return self._record(Call(PRESS, now, press=press, horizon_ns=horizon_ns))

    def tick(self, now: int) -> list[Event]:
        return self._record(Call(TICK, now))

    def reset(self, now: int) -> list[Event]:
        return self._record(Call(RESET, now))

    def close(self, now: int) -> list[Event]:
        return self._record(Call(CLOSE, now))

    def wrong(self, now: int, mode: ReboundMode | None = None) -> list[Event]:
        return self._record(Call(WRONG, now, mode=None if mode is None else str(mode)))

    def right(self, now: int) -> list[Event]:
        return self._record(Call(RIGHT, now))

    def assign_team(self, player: str, team: str | None, now: int) -> list[Event]:
        return self._record(Call(TEAM, now, player=player, team=team))


# --- rules, as stored with each segment ---


def rules_json(rules: Rules) -> str:
    return json.dumps(dataclasses.asdict(rules), separators=(",", ":"))


def rules_from_json(text: str) -> Rules:
    body = json.loads(text)
    body["tie_rule"] = TieRule(body["tie_rule"])
    if "rebound" in body:
        body["rebound"] = ReboundMode(body["rebound"])
    known = {f.name for f in dataclasses.fields(Rules)}
    return Rules(**{k: v for k, v in body.items() if k in known})


# --- segments and the clock shift ---


@dataclass(frozen=True, slots=True)
class Segment:
    """One hub start: the boot it ran in, its monotonic time at start, the rules it used."""

    id: int
    boot: str
    started_ns: int
    rules: Rules
    last_ns: int | None  # the latest hub time in its entries, None if it has none


def segment_shifts(segments: Sequence[Segment], boot: str, now_ns: int) -> dict[int, int]:
    """How much to add to each segment's times to express them in the current boot's clock.

    Within one boot the monotonic clock is shared by every process, so entries from the same
    boot need no shift. Across a reboot the time the hub was down is unknown (the wall clock of
    a Pi without a real-time clock cannot be trusted), so it is counted as zero: the next segment
    continues right after the last time the previous one recorded. Decisions never depend on
    the downtime; only a timed lockout or a host-less re-arm that was running simply resumes.
    """
    virtual: dict[int, int] = {}  # segment -> shift into one continuous "virtual" timeline
    latest: int | None = None  # latest virtual time seen so far
    previous: Segment | None = None
    for segment in segments:
        if previous is None:
            shift = 0
        elif segment.boot == previous.boot:
            shift = virtual[previous.id]
        else:
            shift = (latest if latest is not None else 0) - segment.started_ns
        virtual[segment.id] = shift
        for moment in (segment.started_ns, segment.last_ns):
            if moment is not None:
                latest = moment + shift if latest is None else max(latest, moment + shift)
        previous = segment
    if previous is None:
        return {}
    if previous.boot == boot:
        to_now = -virtual[previous.id]
    else:
        to_now = now_ns - (latest if latest is not None else 0)
    return {sid: shift + to_now for sid, shift in virtual.items()}


def replay(
    rules: Rules, entries: Iterable[tuple[Rules | None, Call]]
) -> tuple[RecordingEngine, list[Event]]:
    """A fresh engine fed every journalled call, and all the events it produced on the way.

    An entry with rules (the first call of a segment) switches the engine to the rules that
    segment ran with, as the live hub did, so a changed config only affects what came after it.
    """
    engine = RecordingEngine(rules)
    events: list[Event] = []
    for segment_rules, call in entries:
        if segment_rules is not None:
            engine.rules = segment_rules
        events.extend(apply(engine, call))
    engine.take_calls()  # a replayed tick that re-arms records its inner arm: not a new input
    return engine, events
