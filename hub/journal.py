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

from hub.match import (
    Award,
    ClearScores,
    EndMatch,
    GameInput,
    MatchEngine,
    MatchSetup,
    ScoreBonus,
    SetValue,
    StartMatch,
    Undo,
    Wager,
)
from hub.round import (
    Arm,
    AssignTeam,
    Close,
    Event,
    GiveFloor,
    Press,
    PressIn,
    ReadQuestion,
    Reset,
    Right,
    Rules,
    Tick,
    TieRule,
    Wrong,
)
from wire.enums import ReboundMode

#: Every input the engine takes, by the name the journal stores it under.
INPUTS: dict[str, type[GameInput]] = {
    cls.KIND: cls
    for cls in (
        Arm,
        Press,
        Tick,
        Reset,
        Close,
        Right,
        Wrong,
        AssignTeam,
        GiveFloor,
        ReadQuestion,
        StartMatch,
        EndMatch,
        Award,
        ScoreBonus,
        Undo,
        ClearScores,
        SetValue,
        Wager,
    )
}

#: Inputs that begin a new game: the journal starts the game's entries with them, and a restart
#: replays only the latest game (see :mod:`hub.match`).
GAME_STARTS: tuple[type[GameInput], ...] = (StartMatch, EndMatch)


@dataclass(frozen=True, slots=True)
class Call:
    """One input given to the engine, and the ``now`` it was given with."""

    input: GameInput
    now_ns: int

    @property
    def kind(self) -> str:
        return self.input.KIND

    def payload(self) -> str:
        """The input's fields as compact JSON (the journal's ``args`` column)."""
        body = {f.name: getattr(self.input, f.name) for f in dataclasses.fields(self.input)}
        if isinstance(self.input, Press):
            body["press"] = dataclasses.asdict(self.input.press)
        if isinstance(self.input, StartMatch):
            body["setup"] = self.input.setup.data()
        return json.dumps(body, separators=(",", ":"))

    @property
    def starts_game(self) -> bool:
        return isinstance(self.input, GAME_STARTS)

    @classmethod
    def load(cls, kind: str, now_ns: int, payload: str) -> Call:
        """A call read back from the journal; ValueError (or a subclass) when it cannot be."""
        kind_cls = INPUTS.get(kind)
        if kind_cls is None:
            raise ValueError(f"unknown journal entry kind {kind!r}")
        body = json.loads(payload) if payload else {}
        if not isinstance(body, dict):
            raise ValueError(f"journal entry {kind!r} holds no object")
        try:
            if "press" in body:
                body["press"] = PressIn(**body["press"])
            if body.get("mode") is not None:
                body["mode"] = ReboundMode(body["mode"])
            if "setup" in body:
                body["setup"] = MatchSetup.from_data(body["setup"])
            known = {f.name for f in dataclasses.fields(kind_cls)}
            return cls(kind_cls(**{k: v for k, v in body.items() if k in known}), now_ns)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"journal entry {kind!r} does not fit: {exc}") from None

    @property
    def press(self) -> PressIn | None:
        return self.input.press if isinstance(self.input, Press) else None

    def shifted(self, delta_ns: int) -> Call:
        """The same call with every hub-clock time moved by ``delta_ns`` (node times stay)."""
        if delta_ns == 0:
            return self
        step = self.input
        if isinstance(step, Press):
            press = dataclasses.replace(
                step.press,
                at_ns=step.press.at_ns + delta_ns,
                arrival_ns=step.press.arrival_ns + delta_ns,
            )
            step = dataclasses.replace(step, press=press)
        return Call(step, self.now_ns + delta_ns)


class RecordingEngine(MatchEngine):
    """A match engine that remembers each input it is given, for the journal.

    Every change to the engine goes through :meth:`MatchEngine.apply`, and the engine's own
    follow-ups (a tick that re-arms, a ruling that closes) call its inner steps directly, so
    each outside input is recorded exactly once and replaying it repeats its follow-ups.
    """

    def __init__(self, rules: Rules) -> None:
        super().__init__(rules)
        self._calls: list[Call] = []

    def take_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def apply(self, step: GameInput, now: int) -> list[Event]:
        self._calls.append(Call(step, now))
        return super().apply(step, now)


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
    segment ran with, as the live hub did, so a changed config only affects what came after it
    (a match's format stays on top of them).
    """
    engine = RecordingEngine(rules)
    events: list[Event] = []
    for segment_rules, call in entries:
        if segment_rules is not None:
            engine.set_base_rules(segment_rules)
        events.extend(engine.apply(call.input, call.now_ns))
    engine.take_calls()  # already in the journal
    return engine, events
