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

#: SQLite keeps integers as signed 64-bit numbers; a larger one cannot be journalled, and a press
#: that cannot be journalled must never be acknowledged.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def fits(*numbers: int | None) -> bool:
    """Whether every number fits a journal column (None, for a column left empty, does)."""
    return all(n is None or INT64_MIN <= n <= INT64_MAX for n in numbers)


def press_fits(press: PressIn, horizon_ns: int = 0) -> bool:
    """Whether a press, as converted to hub time, can be journalled. A node whose clock replies
    were absurd (legal numbers, wildly far apart) can make its converted times overflow: such a
    press is refused rather than let the journal write fail for everyone."""
    return fits(press.at_ns, press.arrival_ns, press.uncertainty_ns, press.raw_ns, horizon_ns)


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


_ENCODER = json.JSONEncoder(separators=(",", ":"))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class Call:
    """One input given to the engine, and the ``now`` it was given with."""

    input: GameInput
    now_ns: int

    @property
    def kind(self) -> str:
        return self.input.KIND

    def payload(self) -> str:
        """The input's fields as compact JSON (the journal's ``args`` column).

        Written out by hand for a press, the one input that comes by the thousand: no reflection
        (``dataclasses.asdict`` deep-copies every field, several times the cost) and one shared
        encoder. Other inputs are rare and few-fielded.
        """
        step = self.input
        if isinstance(step, Press):
            p = step.press
            press = {
                "player": p.player,
                "press_id": p.press_id,
                "at_ns": p.at_ns,
                "arrival_ns": p.arrival_ns,
                "uncertainty_ns": p.uncertainty_ns,
                "raw_ns": p.raw_ns,
                "synced": p.synced,
                "claimed_ns": p.claimed_ns,
                "by_arrival": p.by_arrival,
            }
            body = {"press": press, "horizon_ns": step.horizon_ns}
            if step.settled_ns is not None:  # left out, as older entries do: it is None
                body["settled_ns"] = step.settled_ns
            return _ENCODER.encode(body)
        body = {name: getattr(step, name) for name in _field_names(type(step))}
        if isinstance(step, StartMatch):
            body["setup"] = step.setup.data()
        return _ENCODER.encode(body)

    @property
    def starts_game(self) -> bool:
        return isinstance(self.input, GAME_STARTS)

    @classmethod
    def load(cls, kind: object, now_ns: object, payload: object) -> Call:
        """A call read back from the journal; ValueError when it cannot be.

        Every field is checked for its type: a row edited by hand, or damaged in a way the
        database's own check does not see, must be refused here rather than fail inside the
        engine halfway through a step.
        """
        kind_cls = INPUTS.get(kind) if isinstance(kind, str) else None
        if kind_cls is None:
            raise ValueError(f"unknown journal entry kind {str(kind)[:40]!r}")
        if not _is_int(now_ns):
            raise ValueError(f"journal entry {kind!r} has no integer time")
        if not isinstance(payload, str):
            raise ValueError(f"journal entry {kind!r} holds no text")
        body = json.loads(payload) if payload else {}
        if not isinstance(body, dict):
            raise ValueError(f"journal entry {kind!r} holds no object")
        if "press" in body:
            body["press"] = _press_from(body["press"])
        if body.get("mode") is not None:
            body["mode"] = ReboundMode(body["mode"])
        for name, allowed in _CHECKS.get(kind_cls.KIND, {}).items():
            if name not in body:
                continue  # left out: the input's default, or a field it cannot do without
            value = body[name]
            if not any(_is_int(value) if t is int else isinstance(value, t) for t in allowed):
                raise ValueError(f"journal entry {kind!r}: field {name!r} has the wrong type")
        known = _field_names(kind_cls)
        try:
            if "setup" in body:
                body["setup"] = MatchSetup.from_data(body["setup"])
            step = kind_cls(**{k: v for k, v in body.items() if k in known})
            return cls(step, now_ns)  # type: ignore[arg-type]
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
            claimed = step.press.claimed_ns
            press = dataclasses.replace(
                step.press,
                at_ns=step.press.at_ns + delta_ns,
                arrival_ns=step.press.arrival_ns + delta_ns,
                claimed_ns=None if claimed is None else claimed + delta_ns,  # hub clock too
            )
            settled = step.settled_ns
            step = dataclasses.replace(
                step, press=press, settled_ns=None if settled is None else settled + delta_ns
            )
        return Call(step, self.now_ns + delta_ns)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_NONE = type(None)

#: What each journalled field may hold when it is there (a field left out takes the input's
#: default, or the entry does not fit). Every field of every input is listed: a value of the wrong
#: type would otherwise fail later, in the engine or in a match's result, after the restore.
_CHECKS: dict[str, dict[str, tuple[type, ...]]] = {
    "arm": {"lead_ns": (int, _NONE)},
    "press": {"press": (PressIn,), "horizon_ns": (int,), "settled_ns": (int, _NONE)},
    "right": {"points": (int, _NONE), "power": (bool,)},
    "wrong": {"mode": (ReboundMode, _NONE), "points": (int, _NONE)},
    "team": {"player": (str,), "team": (str, _NONE)},
    "floor": {"player": (str,)},
    "award": {"points": (int,), "player": (str, _NONE), "team": (str, _NONE), "reason": (str,)},
    "bonus": {"points": (int,)},
    "value": {"points": (int,)},
    "wager": {"player": (str,), "points": (int,), "correct": (bool,), "team": (str, _NONE)},
}
_PRESS_FIELDS: dict[str, tuple[type, ...]] = {
    "player": (str,),
    "press_id": (str,),
    "at_ns": (int,),
    "arrival_ns": (int,),
    "uncertainty_ns": (int,),
    "raw_ns": (int, type(None)),
    "synced": (bool,),
    "claimed_ns": (int, type(None)),
    "by_arrival": (bool,),
}


#: Fields a journalled press may leave out (older entries did): they take these values.
_PRESS_DEFAULTS: dict[str, object] = {
    "uncertainty_ns": 0,
    "raw_ns": None,
    "synced": True,
    "claimed_ns": None,
    "by_arrival": False,
}


def _press_from(data: object) -> PressIn:
    if not isinstance(data, dict):
        raise ValueError("journal entry 'press' holds no press object")
    fields = {name: data.get(name, _PRESS_DEFAULTS.get(name)) for name in _PRESS_FIELDS}
    for name, allowed in _PRESS_FIELDS.items():
        value = fields[name]
        if not any(_is_int(value) if t is int else isinstance(value, t) for t in allowed):
            raise ValueError(f"journal entry 'press': field {name!r} has the wrong type")
    if fields["by_arrival"] and fields["claimed_ns"] is None:
        raise ValueError("journal entry 'press': ranked by its arrival, but no claim was clamped")
    return PressIn(**fields)


class RecordingEngine(MatchEngine):
    """A match engine that remembers each input it is given, for the journal.

    Every change to the engine goes through :meth:`MatchEngine.apply`, and the engine's own
    follow-ups (a tick that re-arms, a ruling that closes) call its inner steps directly, so
    each outside input is recorded exactly once and replaying it repeats its follow-ups.
    """

    def __init__(self, rules: Rules) -> None:
        super().__init__(rules)
        self._calls: list[Call] = []
        # Counts every input and rules change: what the engine reports (its next deadline, say)
        # can only have changed when this has, so a caller may keep it until then.
        self.changes = 0

    def take_calls(self) -> list[Call]:
        calls, self._calls = self._calls, []
        return calls

    def apply(self, step: GameInput, now: int) -> list[Event]:
        self.changes += 1
        self._calls.append(Call(step, now))
        return super().apply(step, now)

    def set_base_rules(self, rules: Rules) -> None:
        self.changes += 1
        super().set_base_rules(rules)


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
