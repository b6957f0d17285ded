"""The round engine: arm, press, decide, reset, as a pure state machine.

Nothing here reads a clock or touches a socket. Every call takes ``now`` (hub monotonic
nanoseconds) and returns the events the server must act on, so every rule can be tested to the
nanosecond with explicit timestamps. Presses arrive already converted to hub time by the clock
layer; the engine only compares numbers.

Phases::

    idle --arm--> armed --first press + adjudication wait--> decided --reset--> idle
                    |                                            |
                    +-----------------close--------------> closed --reset/arm--> ...

Why an adjudication wait: the first press to *arrive* is not necessarily the first press *made*.
After the first arrival the engine waits until ``first press + horizon``, where the horizon is the
longest time a press from any connected node could still be in flight (computed by the server from
measured one-way delays). Only then is the winner announced; anything that arrives later but was
stamped earlier is recorded and flagged ``late`` rather than overturning what players already saw.

Game play (the section at the end): after a decision the first eligible player has the *floor*
(the right to answer). The host rules the answer right (the question ends) or wrong (the next in
line gets the floor, or the question is re-armed with those who answered held out). Teams, the
buzz window and the answer timer are rules of the same engine, so they replay like everything else.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise
from typing import ClassVar, assert_never

from wire.enums import Flag, Phase, ReboundMode, TimerKind, TimerStage


class TieRule(StrEnum):
    """How presses the hub cannot tell apart are ordered (they are flagged ``tie`` whatever
    the rule). Arrival order favours the faster link, the unfairness the hub exists to remove,
    so it is a choice, never the default."""

    EARLIEST = "earliest"  # the earlier estimated instant first: the best guess there is
    ARRIVAL = "arrival"  # whoever's press reached the hub first
    HOST = "host"  # ordered by estimate, but a tie for first waits for the host to give the floor
    TIMESTAMP = "earliest"  # the earlier name of EARLIEST (an alias)

    @classmethod
    def _missing_(cls, value: object) -> TieRule | None:
        return cls.EARLIEST if value == "timestamp" else None  # its name before "earliest"


@dataclass(frozen=True, slots=True)
class Rules:
    release_lead_ns: int = 0
    lockout_ns: int | None = None  # None: locked out for the rest of the round
    tie_rule: TieRule = TieRule.EARLIEST
    adjudication_cap_ns: int = 500_000_000
    auto_arm_after_ns: int | None = None  # host-less mode: re-arm this long after a decision
    history_rounds: int = 50
    # game play; the defaults leave the plain buzzer behaviour unchanged
    one_buzz_per_team: bool = False  # a wrong answer puts the whole team out of the question
    rebound: ReboundMode = ReboundMode.REARM
    buzz_window_ns: int | None = None  # counted from the release instant
    answer_ns: int | None = None  # counted from the moment a player gets the floor
    answer_warning_ns: int | None = None  # warn this long before the answer time is up


@dataclass(frozen=True, slots=True)
class PressIn:
    """A press as the engine sees it: already in hub time."""

    player: str
    press_id: str
    at_ns: int  # press instant, hub clock
    arrival_ns: int  # when it reached the hub, hub clock
    uncertainty_ns: int = 0  # how far at_ns may be off
    raw_ns: int | None = None  # the timestamp as the node sent it, node clock
    synced: bool = True
    # The instant the press claimed (hub clock), when that was earlier than its link can
    # explain: at_ns is then the earliest credible instant, and the press is flagged clamped.
    claimed_ns: int | None = None

    @property
    def earliest_ns(self) -> int:
        """The earliest instant the press may have been made: its claim, where it was clamped.

        Early, stale and lockout rules judge this: a press re-sent after a reconnect claims an
        instant long before it arrived, and must stay in the round it was made in.
        """
        return self.at_ns if self.claimed_ns is None else min(self.at_ns, self.claimed_ns)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one press came to."""

    round: int
    press: PressIn
    rank: int | None = None
    reaction_ns: int | None = None  # press instant minus release instant
    behind_ns: int | None = None  # press instant minus the winner's, never negative
    flags: frozenset[Flag] = frozenset()
    lockout_ns: int | None = None  # for early presses: how long, None = rest of the round

    @property
    def counted(self) -> bool:
        return self.rank is not None and Flag.REPEAT not in self.flags


# --- events returned to the server ---


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """The press is recorded; tell its node so it can drop it from its outbox."""

    player: str
    press_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Tell one player what their press came to."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    round: int
    phase: Phase
    release_ns: int | None = None
    winner: Outcome | None = None
    adjudication_wait_ns: int | None = None


@dataclass(frozen=True, slots=True)
class FloorChanged:
    """After a wrong answer in ``next`` mode: who may answer now (None: nobody is left)."""

    round: int
    player: str | None
    deadline_ns: int | None = None  # when the answer time is up, if there is an answer timer


@dataclass(frozen=True, slots=True)
class Ruled:
    """The host ruled the answer of the player who had the floor."""

    round: int
    player: str
    correct: bool
    team: str | None = None


@dataclass(frozen=True, slots=True)
class TimerFired:
    round: int
    timer: TimerKind
    stage: TimerStage
    player: str | None = None  # the answer timer's player


@dataclass(frozen=True, slots=True)
class TeamChanged:
    player: str
    team: str | None


Event = Acknowledge | Answer | PhaseChanged | FloorChanged | Ruled | TimerFired | TeamChanged


# --- the engine's inputs: the only way in, and what the journal records ---


@dataclass(frozen=True, slots=True)
class Arm:
    """Start a new round; presses count from ``now + lead`` (the synchronised release)."""

    KIND: ClassVar[str] = "arm"
    lead_ns: int | None = None  # None: the rules' release lead


@dataclass(frozen=True, slots=True)
class Press:
    """Take one press; ``horizon_ns``: how long an earlier one could still be in flight."""

    KIND: ClassVar[str] = "press"
    press: PressIn
    horizon_ns: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """Run whatever is due: an adjudication decision, a host-less re-arm or a game timer."""

    KIND: ClassVar[str] = "tick"


@dataclass(frozen=True, slots=True)
class Reset:
    """Back to idle; the round so far goes to history."""

    KIND: ClassVar[str] = "reset"


@dataclass(frozen=True, slots=True)
class Close:
    """Stop taking presses but keep the round on display (deciding any waiting press)."""

    KIND: ClassVar[str] = "close"


@dataclass(frozen=True, slots=True)
class Right:
    """The player with the floor answered right: the question ends (the round closes)."""

    KIND: ClassVar[str] = "right"


@dataclass(frozen=True, slots=True)
class Wrong:
    """The player with the floor answered wrong; rebound as ``mode`` says (None: the rules')."""

    KIND: ClassVar[str] = "wrong"
    mode: ReboundMode | None = None


@dataclass(frozen=True, slots=True)
class GiveFloor:
    """The host gives the floor to a player ranked in the decided round (say, one of a tie)."""

    KIND: ClassVar[str] = "floor"
    player: str


@dataclass(frozen=True, slots=True)
class AssignTeam:
    """Put a player in a team (None: in no team). Takes effect for the next ruling."""

    KIND: ClassVar[str] = "team"
    player: str
    team: str | None


EngineInput = Arm | Press | Tick | Reset | Close | Right | Wrong | AssignTeam | GiveFloor


@dataclass(slots=True)
class RoundRecord:
    """One round, as the host sees it afterwards."""

    number: int
    armed_ns: int
    release_ns: int
    decided_ns: int | None = None
    adjudication_wait_ns: int | None = None
    ranked: list[Outcome] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)  # early, locked, repeat, closed, stale

    @property
    def winner(self) -> Outcome | None:
        return self.ranked[0] if self.ranked else None


@dataclass(slots=True)
class _Lock:
    round: int | None  # locked for this round number (lockout until the next arm)
    until_ns: int | None  # or until this instant (timed lockout)


@dataclass(slots=True)
class _Floor:
    """Who may answer in one round, since when, and which answer-timer stages have fired."""

    round: int
    player: str | None
    since_ns: int
    warned: bool = False
    expired: bool = False


@dataclass(slots=True)
class _Out:
    """Players (and, with one buzz per team, teams) ruled wrong in the current question."""

    round: int  # the round this applies to; a rebound re-arm carries it to the new round
    players: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)


class RoundEngine:
    """Runs one round after another. Feed it events; act on what it returns."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.phase = Phase.IDLE
        self.current: RoundRecord | None = None
        self.history: deque[RoundRecord] = deque(maxlen=rules.history_rounds)
        self.deadline_ns: int | None = None  # adjudication deadline while armed
        self.auto_arm_ns: int | None = None  # host-less re-arm instant while decided
        self._boundary_ns: int | None = None  # presses stamped before this are stale
        self._pending: list[PressIn] = []
        self._pending_repeats: list[PressIn] = []
        self._first_arrival_ns: int | None = None
        self._counted: dict[str, PressIn | Outcome] = {}
        self._locks: dict[str, _Lock] = {}
        self._seen: dict[tuple[str, str], Outcome | None] = {}
        self._early_for_next: list[Outcome] = []
        self._latest: PressIn | None = None  # the latest-stamped ranked press of the round
        self.teams: dict[str, str] = {}  # player id -> team name
        self._floor: _Floor | None = None  # set when the floor moves away from the winner
        self._out = _Out(round=0)  # who answered wrong in the question that round belongs to
        self._rebounds = 0  # re-arms that continued a question rather than starting one
        self._contested: int | None = None  # a round whose tie for first waits for the host

    @property
    def number(self) -> int:
        return self.current.number if self.current else 0

    @property
    def next_deadline(self) -> int | None:
        """When :meth:`tick` must next be called, if ever."""
        base = None
        if self.phase is Phase.ARMED:
            base = self.deadline_ns
        elif self.phase is Phase.DECIDED:
            base = self.auto_arm_ns
        game = self._game_deadline()
        if base is None or game is None:
            return game if base is None else base
        return min(base, game)

    def release_for(self, player: str) -> tuple[int | None, bool]:
        """The release instant a player should act on, and whether they are locked out of it."""
        release = self.current.release_ns if self.current and self.phase is Phase.ARMED else None
        lock = self._locks.get(player)
        locked = lock is not None and lock.round == self.number and self.phase is Phase.ARMED
        return release, locked

    def apply(self, step: EngineInput, now: int) -> list[Event]:
        """Feed one input: the single way into the engine, so that journalling it (see
        :mod:`hub.journal`) records everything that can change the engine's state."""
        match step:
            case Arm(lead_ns=lead):
                return self._arm(now, lead)
            case Press(press=press, horizon_ns=horizon):
                return self._press(press, now, horizon)
            case Tick():
                return self._tick(now)
            case Reset():
                return self._reset(now)
            case Close():
                return self._close(now)
            case Right():
                return self._right(now)
            case Wrong(mode=mode):
                return self._wrong(now, mode)
            case AssignTeam(player=player, team=team):
                return self._assign_team(player, team, now)
            case GiveFloor(player=player):
                return self._give_floor(player, now)
            case _:
                assert_never(step)

    # Shorthands for callers and tests; each goes through apply.

    def arm(self, now: int, lead_ns: int | None = None) -> list[Event]:
        return self.apply(Arm(lead_ns), now)

    def press(self, press: PressIn, now: int, horizon_ns: int = 0) -> list[Event]:
        return self.apply(Press(press, horizon_ns), now)

    def tick(self, now: int) -> list[Event]:
        return self.apply(Tick(), now)

    def reset(self, now: int) -> list[Event]:
        return self.apply(Reset(), now)

    def close(self, now: int) -> list[Event]:
        return self.apply(Close(), now)

    def right(self, now: int) -> list[Event]:
        return self.apply(Right(), now)

    def wrong(self, now: int, mode: ReboundMode | None = None) -> list[Event]:
        return self.apply(Wrong(mode), now)

    def assign_team(self, player: str, team: str | None, now: int) -> list[Event]:
        return self.apply(AssignTeam(player, team), now)

    # --- host actions ---

    def _arm(self, now: int, lead_ns: int | None = None) -> list[Event]:
        """Start a new round; presses count from ``now + lead`` (the synchronised release)."""
        events = self._finish(now)
        if self.phase is not Phase.IDLE:
            self._boundary_ns = now  # presses stamped before now belonged to the old round
        number = self.number + 1
        release = now + (self.rules.release_lead_ns if lead_ns is None else lead_ns)
        self.current = RoundRecord(number=number, armed_ns=now, release_ns=release)
        self.current.refused, self._early_for_next = self._early_for_next, []
        self.phase = Phase.ARMED
        self._latest = None
        self._locks = {
            player: lock
            for player, lock in self._locks.items()
            if lock.round == number or lock.until_ns is not None
        }
        return [*events, PhaseChanged(number, Phase.ARMED, release_ns=release)]

    def _reset(self, now: int) -> list[Event]:
        """Back to idle; the round so far goes to history."""
        if self.phase is Phase.IDLE:
            return []
        events = self._finish(now)
        self._boundary_ns = now
        self.phase = Phase.IDLE
        return [*events, PhaseChanged(self.number, Phase.IDLE)]

    def _close(self, now: int) -> list[Event]:
        """Stop taking presses but keep the round on display (deciding any waiting press)."""
        if self.phase in (Phase.IDLE, Phase.CLOSED):
            return []
        events = self._decide(now) if self._pending else []
        self.phase = Phase.CLOSED
        self.auto_arm_ns = None
        events.append(PhaseChanged(self.number, Phase.CLOSED))
        return events

    def _tick(self, now: int) -> list[Event]:
        """Run whatever is due: an adjudication decision, a host-less re-arm or a game timer."""
        if self.phase is Phase.ARMED and self.deadline_ns is not None and now >= self.deadline_ns:
            return self._decide(now)
        if self.phase is Phase.DECIDED and self.auto_arm_ns is not None and now >= self.auto_arm_ns:
            return self._arm(now)
        return self._tick_game(now)

    # --- presses ---

    def _press(self, press: PressIn, now: int, horizon_ns: int = 0) -> list[Event]:
        """Take one press; ``horizon_ns``: how long an earlier one could still be in flight."""
        key = (press.player, press.press_id)
        if key in self._seen:  # the same press re-sent after a reconnect: never count it twice
            known = self._seen[key]
            events: list[Event] = [Acknowledge(press.player, press.press_id)]
            return [*events, Answer(known)] if known is not None else events
        events = [Acknowledge(press.player, press.press_id)]
        outcome = self._classify(press)
        if outcome is not None:
            if press.claimed_ns is not None:
                outcome = replace(outcome, flags=outcome.flags | {Flag.CLAMPED})
            self._remember(outcome)
            return [*events, Answer(outcome)]
        counted = self._counted.get(press.player)
        if counted is not None:
            if isinstance(counted, Outcome):
                repeat = self._repeat_of(counted, press)
                self._remember(repeat)
                return [*events, Answer(repeat)]
            self._seen[key] = None
            self._pending_repeats.append(press)
            return events
        self._seen[key] = None
        self._counted[press.player] = press
        if self.phase is Phase.DECIDED:
            ranked = self._rank_after_decision(press)
            self._remember(ranked)
            return [*events, Answer(ranked)]
        return events + self._collect(press, now, horizon_ns)

    def _classify(self, press: PressIn) -> Outcome | None:
        """An outcome for a press that cannot be counted, or None if it competes."""
        number = self.number
        made = press.earliest_ns
        if self._boundary_ns is not None and made < self._boundary_ns:
            return Outcome(number, press, flags=frozenset({Flag.STALE}))
        if self.phase is Phase.CLOSED:
            return Outcome(number, press, flags=frozenset({Flag.CLOSED}))
        upcoming = number + 1 if self.phase is Phase.IDLE else number
        early = self.phase is Phase.IDLE or (
            self.current is not None and made < self.current.release_ns
        )
        lock = self._locks.get(press.player)
        held = self._held_out(press.player, upcoming)  # answered wrong earlier in this question
        locked = held or (
            lock is not None
            and (lock.round == upcoming or (lock.until_ns is not None and made < lock.until_ns))
        )
        if not early and not locked:
            return None
        lockout = self.rules.lockout_ns
        if early and not held:  # an early press starts (or restarts) the lockout
            until = None if lockout is None else made + lockout
            self._locks[press.player] = _Lock(upcoming if lockout is None else None, until)
        flags = {Flag.EARLY} if early and not held else {Flag.LOCKED}
        return Outcome(upcoming, press, flags=frozenset(flags), lockout_ns=lockout)

    def _collect(self, press: PressIn, now: int, horizon_ns: int) -> list[Event]:
        """Hold a competing press until nothing earlier can still arrive."""
        bisect.insort(self._pending, press, key=lambda p: p.at_ns)
        if self._first_arrival_ns is None:
            self._first_arrival_ns = now
        horizon = max(horizon_ns, 0)
        wanted = self._first_arrival_ns + self.rules.adjudication_cap_ns
        # Wait from the earliest press made. A clamped press is placed at the earliest instant
        # its link allows, but may have been made as late as its arrival: presses made before
        # then must have the time to arrive too, so it counts from its arrival.
        earliest = next((p.at_ns for p in self._pending if p.claimed_ns is None), None)
        if earliest is not None:
            wanted = min(wanted, earliest + horizon)
        if press.claimed_ns is not None:
            wanted = min(wanted, press.arrival_ns + horizon)
        self.deadline_ns = wanted if self.deadline_ns is None else min(self.deadline_ns, wanted)
        if self.deadline_ns <= now:
            return self._decide(now)
        return []

    def _decide(self, now: int) -> list[Event]:
        record = self.current
        assert record is not None
        order = self._break_ties(self._pending)
        winner_ns = order[0][0].at_ns
        tied_for_first = len(order) > 1 and order[0][1] and _tied(order[0][0], order[1][0])
        if self.rules.tie_rule is TieRule.HOST and tied_for_first:
            self._contested = record.number
        events: list[Event] = []
        for rank, (press, tied) in enumerate(order, start=1):
            outcome = self._ranked(record, press, rank, winner_ns, tied)
            events.append(Answer(outcome))
        for press in self._pending_repeats:
            repeat = self._repeat_of(self._counted_outcome(press.player), press)
            self._remember(repeat)
            events.append(Answer(repeat))
        first = self._first_arrival_ns
        record.decided_ns = now
        record.adjudication_wait_ns = None if first is None else now - first
        self._pending, self._pending_repeats = [], []
        self._first_arrival_ns, self.deadline_ns = None, None
        self.phase = Phase.DECIDED
        if self.rules.auto_arm_after_ns is not None:
            self.auto_arm_ns = now + self.rules.auto_arm_after_ns
        events.insert(
            0,
            PhaseChanged(
                record.number,
                Phase.DECIDED,
                winner=record.winner,
                adjudication_wait_ns=record.adjudication_wait_ns,
            ),
        )
        return events

    def _break_ties(self, pending: list[PressIn]) -> list[tuple[PressIn, bool]]:
        """Group presses that are tied with each other and order each group by the rule, clamped
        presses last (Python's sort is stable: the estimate's order stays otherwise).

        A press joins a group only if it is tied with every press already in it. Chaining
        neighbours instead (A ties B, B ties C) could let the tie rule put C ahead of A although
        A is clearly earlier than C. Every press closer to a neighbour than their combined
        uncertainty is still flagged, so the host sees each near call.
        """
        near = {id(press) for a, b in pairwise(pending) if _tied(a, b) for press in (a, b)}
        groups: list[list[PressIn]] = []
        for press in pending:  # already sorted by press instant
            if groups and all(_tied(member, press) for member in groups[-1]):
                groups[-1].append(press)
            else:
                groups.append([press])
        order: list[tuple[PressIn, bool]] = []
        arrival = self.rules.tie_rule is TieRule.ARRIVAL  # EARLIEST and HOST: by estimate
        for group in groups:
            # A clamped press's instant is not its claim but the earliest its link allows: it
            # never wins a tie on that benefit of the doubt.
            group = sorted(
                group, key=lambda p: (p.claimed_ns is not None, p.arrival_ns if arrival else 0)
            )
            order.extend((press, id(press) in near) for press in group)
        return order

    def _ranked(
        self,
        record: RoundRecord,
        press: PressIn,
        rank: int,
        winner_ns: int,
        tied: bool,
        late: bool = False,
    ) -> Outcome:
        flags = set()
        if tied:
            flags.add(Flag.TIE)
        if not press.synced:
            flags.add(Flag.UNSYNCED)
        if late:
            flags.add(Flag.LATE)
        if press.claimed_ns is not None:
            flags.add(Flag.CLAMPED)
        if self._latest is None or press.at_ns > self._latest.at_ns:
            self._latest = press
        outcome = Outcome(
            record.number,
            press,
            rank=rank,
            reaction_ns=press.at_ns - record.release_ns,
            behind_ns=max(0, press.at_ns - winner_ns),
            flags=frozenset(flags),
        )
        record.ranked.append(outcome)
        self._counted[press.player] = outcome
        self._seen[(press.player, press.press_id)] = outcome
        return outcome

    def _rank_after_decision(self, press: PressIn) -> Outcome:
        record = self.current
        assert record is not None
        assert record.winner is not None
        assert self._latest is not None
        previous = record.ranked[-1].press
        # Late: stamped before a press that was already ranked (not merely before the previous
        # one, which may itself have been late), unless the two are within their uncertainty.
        late = press.at_ns < self._latest.at_ns and not _tied(self._latest, press)
        tied = _tied(previous, press) or _tied(self._latest, press)
        return self._ranked(
            record, press, len(record.ranked) + 1, record.winner.press.at_ns, tied, late
        )

    def _counted_outcome(self, player: str) -> Outcome:
        counted = self._counted[player]
        assert isinstance(counted, Outcome)
        return counted

    def _repeat_of(self, counted: Outcome, press: PressIn) -> Outcome:
        return replace(counted, press=press, flags=counted.flags | {Flag.REPEAT})

    def _remember(self, outcome: Outcome) -> None:
        self._seen[(outcome.press.player, outcome.press.press_id)] = outcome
        if outcome.counted:
            return
        if self.current is not None and outcome.round == self.number:
            self.current.refused.append(outcome)
        elif outcome.round == self.number + 1:  # early while idle: shown with the next round
            self._early_for_next.append(outcome)

    def _finish(self, now: int) -> list[Event]:
        """Close the books on the current round before a reset or a new arm.

        Presses still waiting for adjudication are decided as they stand and answered: a round
        cut short never swallows a press.
        """
        events = self._decide(now) if self.phase is Phase.ARMED and self._pending else []
        if self.current is not None and (not self.history or self.history[-1] is not self.current):
            self.history.append(self.current)
        self._counted = {}
        self.deadline_ns = self.auto_arm_ns = None
        return events

    # --- game play: the floor, rulings, rebounds, teams and timers ---

    @property
    def question(self) -> int:
        """The question number: rounds that a rebound re-arm started continue a question."""
        return self.number - self._rebounds

    @property
    def out_players(self) -> frozenset[str]:
        """Players ruled wrong in the current question."""
        return frozenset(self._out.players) if self._out.round == self.number else frozenset()

    @property
    def out_teams(self) -> frozenset[str]:
        """Teams held out of the current question (only with one buzz per team)."""
        return frozenset(self._out.teams) if self._out.round == self.number else frozenset()

    def floor(self) -> tuple[str | None, int] | None:
        """Who may answer now and since when; None while nobody holds or awaits the floor."""
        floor = self._current_floor()
        return None if floor is None else (floor.player, floor.since_ns)

    def answer_times(self) -> tuple[int | None, int | None]:
        """The answer timer's warning and end instants for the player with the floor."""
        floor = self._current_floor()
        if floor is None or floor.player is None:
            return None, None
        return self._answer_instants(floor)

    @property
    def buzz_deadline(self) -> int | None:
        """When the buzz window closes the round, while it is open and nobody has pressed."""
        window = self.rules.buzz_window_ns
        if window is None or self.phase is not Phase.ARMED or self.current is None:
            return None
        if self._pending or self.current.ranked:
            return None
        return self.current.release_ns + window

    def _assign_team(self, player: str, team: str | None, now: int) -> list[Event]:
        """Put a player in a team (None: in no team). Takes effect for the next ruling."""
        if team is None:
            self.teams.pop(player, None)
        else:
            self.teams[player] = team
        return [TeamChanged(player, team)]

    def _give_floor(self, player: str, now: int) -> list[Event]:
        """The host gives the floor to a ranked player not held out (nothing happens otherwise)."""
        if self.phase is not Phase.DECIDED or self.current is None:
            return []
        ranked = {o.press.player for o in self.current.ranked}
        if player not in ranked or self._held_out(player, self.number):
            return []
        self._floor = _Floor(self.number, player, now)
        _, end = self._answer_instants(self._floor)
        return [FloorChanged(self.number, player, end)]

    def _right(self, now: int) -> list[Event]:
        """The player with the floor answered right: the question ends (the round closes)."""
        floor = self._hold_floor()
        if floor is None or floor.player is None:
            return []
        ruled = Ruled(self.number, floor.player, True, self.teams.get(floor.player))
        return [ruled, *self._close(now)]

    def _wrong(self, now: int, mode: ReboundMode | None = None) -> list[Event]:
        """The player with the floor answered wrong; rebound as ``mode`` says (default: rules)."""
        floor = self._hold_floor()
        mode = mode or self.rules.rebound
        if floor is None or (floor.player is None and mode is ReboundMode.NEXT):
            return []
        if self._out.round != self.number:
            self._out = _Out(self.number)
        events: list[Event] = []
        player = floor.player
        if player is not None:  # None: everyone in line was wrong; a re-arm is still possible
            team = self.teams.get(player)
            self._out.players.add(player)
            if self.rules.one_buzz_per_team and team is not None:
                self._out.teams.add(team)
            events.append(Ruled(self.number, player, False, team))
        if mode is ReboundMode.NEXT:
            self._floor = _Floor(self.number, self._first_eligible(), now)
            _, end = self._answer_instants(self._floor)
            return [*events, FloorChanged(self.number, self._floor.player, end)]
        out = self._out
        events += self._arm(now)
        self._rebounds += 1
        out.round = self.number
        self._out = out
        for held in self._held_players(out):
            self._locks[held] = _Lock(self.number, None)
        return events

    def _held_out(self, player: str, round_number: int) -> bool:
        out = self._out
        if out.round != round_number:
            return False
        team = self.teams.get(player)
        return player in out.players or (team is not None and team in out.teams)

    def _held_players(self, out: _Out) -> set[str]:
        members = {player for player, team in self.teams.items() if team in out.teams}
        return out.players | members

    def _first_eligible(self) -> str | None:
        """The best-ranked player of this round who is not held out of the question."""
        if self.current is None:
            return None
        for outcome in self.current.ranked:
            if not self._held_out(outcome.press.player, self.number):
                return outcome.press.player
        return None

    def _current_floor(self) -> _Floor | None:
        """The floor as it stands, without recording anything (the winner's, unless moved)."""
        if self.phase is not Phase.DECIDED or self.current is None:
            return None
        if self._floor is not None and self._floor.round == self.number:
            return self._floor
        if self.current.decided_ns is None:
            return None
        if self._contested == self.number:  # nobody has it until the host gives it
            return _Floor(self.number, None, self.current.decided_ns)
        return _Floor(self.number, self._first_eligible(), self.current.decided_ns)

    def _hold_floor(self) -> _Floor | None:
        """The current floor, recorded so that timer stages fire once."""
        floor = self._current_floor()
        self._floor = floor if floor is not None else self._floor
        return floor

    def _answer_instants(self, floor: _Floor) -> tuple[int | None, int | None]:
        length = self.rules.answer_ns
        if length is None or floor.player is None:
            return None, None
        end = floor.since_ns + length
        warning = self.rules.answer_warning_ns
        return (None if warning is None else max(floor.since_ns, end - warning)), end

    def _game_deadline(self) -> int | None:
        window = self.buzz_deadline
        if window is not None:
            return window
        floor = self._current_floor()
        if floor is None:
            return None
        warning, end = self._answer_instants(floor)
        if warning is not None and not floor.warned:
            return warning
        if end is not None and not floor.expired:
            return end
        return None

    def _tick_game(self, now: int) -> list[Event]:
        window = self.buzz_deadline
        if window is not None:
            if now < window:
                return []
            return [TimerFired(self.number, TimerKind.BUZZ, TimerStage.EXPIRED), *self._close(now)]
        floor = self._hold_floor()
        if floor is None or floor.player is None:
            return []
        warning, end = self._answer_instants(floor)
        events: list[Event] = []
        if warning is not None and not floor.warned and now >= warning:
            floor.warned = True
            events.append(
                TimerFired(self.number, TimerKind.ANSWER, TimerStage.WARNING, floor.player)
            )
        if end is not None and not floor.expired and now >= end:
            floor.warned = floor.expired = True
            events.append(
                TimerFired(self.number, TimerKind.ANSWER, TimerStage.EXPIRED, floor.player)
            )
        return events


def _tied(a: PressIn, b: PressIn) -> bool:
    return abs(a.at_ns - b.at_ns) < a.uncertainty_ns + b.uncertainty_ns
