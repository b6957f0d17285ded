"""The round engine: arm, press, decide, reset, as a pure state machine.

Nothing here reads a clock or touches a socket. Every call takes ``now`` (hub monotonic
nanoseconds) and returns the events the server must act on, so every rule can be tested to the
nanosecond with explicit timestamps. Presses arrive already converted to hub time by the clock
layer; the engine only compares numbers.

Phases::

    idle --arm--> armed --first press + adjudication wait--> decided --reset--> idle
                    |                                            |
                    +-----------------close--------------> closed --reset/arm--> ...

A press is *early* whenever it is made before the light of the round it would count in: before
the release of an armed round, and in every state that takes no presses (idle, and closed after a
ruling or a timer), where it is early for the next round. A lockout that only held while armed
would let a player who buzzed during the clue win the next round 27 ms after the light.

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
import copy
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise
from typing import ClassVar, assert_never

from hub.gamelog import MatchEvent
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
    # counted from the moment the question was read to the end (or a later rebound's release)
    tossup_ns: int | None = None
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
    # Ranked as made at its arrival (see rank_ns): set for a clamped press. In the journal, so
    # that a press clamped by a hub from before this rule is replayed as it was ranked then.
    by_arrival: bool = False

    @property
    def rank_ns(self) -> int:
        """The instant it is ranked, timed and scored by: its estimate, or its arrival.

        A clamped press may be an honest one held up longer than its link ever showed, made at
        its claim, or a lie made at any instant up to its arrival. Placed anywhere earlier than
        its arrival, it could be ranked ahead of a press made before it arrived, which it may
        well have been later than: a link that lately looked slow (a starved browser answering
        pings late) put a liar's earliest credible instant 40 ms ahead of an honest press.
        Ranked as made when it arrived, it beats no press made before then; its span reaches
        back to its claim, so it ties with those made since (and a clamped press never wins a
        tie).
        """
        return self.arrival_ns if self.by_arrival else self.at_ns

    @property
    def low_ns(self) -> int:
        """The earliest it may have been made, as far as ties go (a clamped press: its claim)."""
        return self.at_ns - self.uncertainty_ns

    @property
    def high_ns(self) -> int:
        """The latest it may have been made, as far as ties go (a clamped press: its arrival)."""
        return self.arrival_ns if self.by_arrival else self.at_ns + self.uncertainty_ns

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
    """Tell one player what their press came to.

    ``listed`` is False for a refusal counted like one already listed, and for a re-sent
    press answered again: what hosts see changes by a count at most, so a flood of them need
    not redraw their picture at once.
    """

    outcome: Outcome
    listed: bool = field(default=True, compare=False)  # a hint for pictures, not the answer


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


class DeadReason(StrEnum):
    """Why a question ended with nobody answering it right."""

    EVERYONE_OUT = "everyone out"  # every player (or team) eligible was ruled wrong
    TIME = "time"  # nobody buzzed before the buzz window or tossup timer ran out


@dataclass(frozen=True, slots=True)
class QuestionDead:
    """The question is over and nobody got it: the round closes instead of re-arming."""

    round: int
    question: int
    reason: DeadReason


@dataclass(frozen=True, slots=True)
class QuestionRead:
    """The host finished reading the question: wrong answers from now on cost no penalty."""

    round: int
    question: int
    at_ns: int


#: What the engine hands back. The match layer (:mod:`hub.match`) adds the game log's events, so
#: that a match engine is still a round engine to everything that drives one.
Event = (
    Acknowledge
    | Answer
    | PhaseChanged
    | FloorChanged
    | Ruled
    | TimerFired
    | TeamChanged
    | QuestionDead
    | QuestionRead
    | MatchEvent
)


# --- the engine's inputs: the only way in, and what the journal records ---


@dataclass(frozen=True, slots=True)
class Arm:
    """Start a new round; presses count from ``now + lead`` (the synchronised release)."""

    KIND: ClassVar[str] = "arm"
    lead_ns: int | None = None  # None: the rules' release lead


@dataclass(frozen=True, slots=True)
class Press:
    """Take one press; ``horizon_ns``: how long an earlier one could still be in flight.

    ``settled_ns``: the hub has handled every message it read before this instant (None: every
    one read before now). Messages read together are handled one after another, so when this
    press is handled, presses read with it (earlier, perhaps) may still wait their turn: the
    round may be decided on this press only if its deadline has passed by then too.
    """

    KIND: ClassVar[str] = "press"
    press: PressIn
    horizon_ns: int = 0
    settled_ns: int | None = None


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
    """The player with the floor answered right: the question ends (the round closes).

    ``points`` is what the ruling gives, as the host resolved it; None in journals written before
    points were journalled (their points were saved apart and come back apart)."""

    KIND: ClassVar[str] = "right"
    points: int | None = None
    power: bool = False  # before the power mark (for the game log; the points say the rest)


@dataclass(frozen=True, slots=True)
class Wrong:
    """The player with the floor answered wrong; rebound as ``mode`` says (None: the rules')."""

    KIND: ClassVar[str] = "wrong"
    mode: ReboundMode | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class ReadQuestion:
    """The host read the question to the end: the tossup timer starts, negs stop."""

    KIND: ClassVar[str] = "read"


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


EngineInput = (
    Arm | Press | Tick | Reset | Close | Right | Wrong | AssignTeam | ReadQuestion | GiveFloor
)


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
    # Refused presses not listed: a player's first refused press of each kind (early, locked,
    # repeat, ...) in a round is kept, the rest only counted, so a player mashing a button (or
    # a script within the rate limit) cannot grow the round.
    more_refused: int = 0

    @property
    def winner(self) -> Outcome | None:
        return self.ranked[0] if self.ranked else None


class _SeenPresses:
    """Press ids already taken, each with its outcome (None while it waits for the decision).

    A dict per player, keyed by press id, rather than one keyed by (player, id) pairs: a pair
    is an object of its own (72 bytes), a third of what a remembered id costs, and a flood of
    presses leaves tens of thousands of ids to remember.

    Each round also lists the ids given an outcome in it, so that forgetting the oldest round at
    an arm looks only at that round's ids (2 ms for the 9,000 of twenty stations mashing through
    a round of ten seconds), for two more list slots per id (about 16 bytes). Looking at every
    id held instead took 55 to 58 ms once the history's 50 such rounds were full (450,000 ids):
    a hold on the loop at every arm, just as the players' presses were due.
    """

    __slots__ = ("_by_player", "_by_round")

    def __init__(self) -> None:
        self._by_player: dict[str, dict[str, Outcome | None]] = {}
        # Round number -> the ids given an outcome in it, flat: player, press id, player, ...
        self._by_round: dict[int, list[str]] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        ids = self._by_player.get(key[0])
        return ids is not None and key[1] in ids

    def get(self, key: tuple[str, str]) -> Outcome | None:
        ids = self._by_player.get(key[0])
        return None if ids is None else ids.get(key[1])

    def __setitem__(self, key: tuple[str, str], outcome: Outcome | None) -> None:
        ids = self._by_player.get(key[0])
        if ids is None:
            ids = self._by_player[key[0]] = {}
        ids[key[1]] = outcome
        if outcome is not None:
            listed = self._by_round.get(outcome.round)
            if listed is None:
                listed = self._by_round[outcome.round] = []
            listed += key

    def forget_before(self, round_number: int) -> None:
        """Forget the presses decided in rounds before ``round_number`` (undecided ones stay)."""
        for number in [number for number in self._by_round if number < round_number]:
            listed = self._by_round.pop(number)
            for player, press_id in zip(listed[::2], listed[1::2], strict=True):
                ids = self._by_player.get(player)
                if ids is None:
                    continue
                known = ids.get(press_id)
                # An id given a later outcome since (or forgotten already) is not this round's.
                if known is not None and known.round < round_number:
                    del ids[press_id]
                    if not ids:
                        del self._by_player[player]

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._by_player.values())

    def values(self) -> list[Outcome | None]:
        return [known for ids in self._by_player.values() for known in ids.values()]


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

    #: What a ruling can change, and an undo puts back (see :meth:`save_point`). Not in it: the
    #: rules, the teams, the presses already seen (a press is never counted twice, undo or not)
    #: and the count of rounds (a round number is never given twice).
    ROUND_STATE: ClassVar[tuple[str, ...]] = (
        "phase",
        "current",
        "history",
        "deadline_ns",
        "auto_arm_ns",
        "_boundary_ns",
        "_closed_ns",
        "_pending",
        "_pending_repeats",
        "_first_arrival_ns",
        "_counted",
        "_locks",
        "_early_for_next",
        "_latest",
        "_latest_by_arrival",
        "_reaching",
        "_floor",
        "_out",
        "_question",
        "_read_ns",
    )

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._reshaped = 0  # inputs other than presses and ticks, and fresh starts: ranking_key
        self._fresh(None)

    def _fresh(self, boundary_ns: int | None) -> None:
        """Every round and game state back to its start (a new engine, or a new match)."""
        self.phase = Phase.IDLE
        self.current: RoundRecord | None = None
        self.history: deque[RoundRecord] = deque(maxlen=self.rules.history_rounds)
        self.deadline_ns: int | None = None  # adjudication deadline while armed
        self.auto_arm_ns: int | None = None  # host-less re-arm instant while decided
        self._boundary_ns = boundary_ns  # presses stamped before this are stale
        self._closed_ns: int | None = None  # when the round stopped taking presses (closed)
        self._pending: list[PressIn] = []
        self._pending_repeats: list[PressIn] = []
        self._first_arrival_ns: int | None = None
        self._counted: dict[str, PressIn | Outcome] = {}
        self._locks: dict[str, _Lock] = {}
        # Press ids already taken, so a re-sent press counts once: kept for the rounds the engine
        # still keeps in its history (a node re-sends a press only until it has its ack, which
        # follows the commit within milliseconds), so the memory does not grow with the night.
        self._seen = _SeenPresses()
        self._reshaped += 1  # never back to a value an earlier state of play had
        self._early_for_next: list[Outcome] = []
        self._early_more = 0  # refused presses for the next round that were counted, not kept
        # (round, player, flags) of each refusal listed: one of each kind per player and round
        # The refusal listed for each (round, player, flags): later ones alike are only counted.
        self._refused_by: dict[tuple[int, str, frozenset[Flag]], Outcome] = {}
        self._latest: PressIn | None = None  # the latest-stamped ranked press of the round
        self._latest_by_arrival: int | None = None  # the latest arrival ranked by it
        self._reaching: PressIn | None = None  # the ranked press whose span reaches latest
        self.teams: dict[str, str] = {}  # player id -> team name
        self._floor: _Floor | None = None  # set when the floor moves away from the winner
        self._out = _Out(round=0)  # who answered wrong in the question that round belongs to
        self._rounds = 0  # rounds armed so far: the next one is number _rounds + 1
        self._question = 0  # questions started by a host's arm (a rebound continues one)
        self._read_ns: int | None = None  # when the current question was read to the end
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
        locked = self.phase is Phase.ARMED and not self.eligible(player)
        return release, locked

    def is_out(self, player: str) -> bool:
        """Whether a player was ruled wrong in the current question (or, with one buzz per
        team, their team was)."""
        return self._held_out(player, self.number)

    def eligible(self, player: str) -> bool:
        """Whether a player may still buzz in the current question: not ruled wrong (nor their
        team, with one buzz per team), and not locked out of the round by an early press."""
        if self._held_out(player, self.number):
            return False
        lock = self._locks.get(player)
        return lock is None or lock.round != self.number

    def may_still_rank(self, player: str) -> bool:
        """Whether a press from ``player`` arriving now could still be ranked in this round:
        eligible, and with no counted press in it yet (another would be a repeat). The round's
        wait need not cover the links of players who cannot."""
        return player not in self._counted and self.eligible(player)

    @property
    def ranking_key(self) -> tuple[int, Phase, int]:
        """Changes whenever a player :meth:`may_still_rank` denied might be allowed again: a new
        round, another phase, any input but a press or a tick (an undone ruling, a team
        changed). While it stays, players only drop out."""
        return self.number, self.phase, self._reshaped

    def apply(self, step: EngineInput, now: int) -> list[Event]:
        """Feed one input: the single way into the engine, so that journalling it (see
        :mod:`hub.journal`) records everything that can change the engine's state."""
        if not isinstance(step, Press | Tick):
            self._reshaped += 1
        match step:
            case Arm(lead_ns=lead):
                return self._arm(now, lead)
            case Press(press=press, horizon_ns=horizon, settled_ns=settled):
                return self._press(press, now, horizon, settled)
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
            case ReadQuestion():
                return self._read(now)
            case _:
                assert_never(step)

    # Shorthands for callers and tests; each goes through apply.

    def arm(self, now: int, lead_ns: int | None = None) -> list[Event]:
        return self.apply(Arm(lead_ns), now)

    def press(
        self, press: PressIn, now: int, horizon_ns: int = 0, settled_ns: int | None = None
    ) -> list[Event]:
        return self.apply(Press(press, horizon_ns, settled_ns), now)

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

    def read_question(self, now: int) -> list[Event]:
        return self.apply(ReadQuestion(), now)

    # --- host actions ---

    def _arm(self, now: int, lead_ns: int | None = None, rebound: bool = False) -> list[Event]:
        """Start a new round; presses count from ``now + lead`` (the synchronised release).

        A host's arm starts a new question; a ``rebound`` re-arm continues the current one."""
        events = self._finish(now)
        if self.phase is Phase.CLOSED and self._closed_ns is not None:
            # Presses since the close were made before this round's light: early, not stale.
            self._boundary_ns = self._closed_ns
        elif self.phase is not Phase.IDLE:
            self._boundary_ns = now  # presses stamped before now belonged to the old round
        self._closed_ns = None
        if not rebound:
            self._question += 1
            self._read_ns = None
            self._out = _Out(round=0)
        self._rounds += 1
        number = self._rounds
        release = now + (self.rules.release_lead_ns if lead_ns is None else lead_ns)
        self.current = RoundRecord(number=number, armed_ns=now, release_ns=release)
        self.current.refused, self._early_for_next = self._early_for_next, []
        self.current.more_refused, self._early_more = self._early_more, 0
        # The history's oldest round, and so the oldest whose presses may still be re-sent:
        # a press id is remembered as long as its round is in the history.
        oldest = number - self.rules.history_rounds
        self._seen.forget_before(oldest)
        self._refused_by = {k: v for k, v in self._refused_by.items() if k[0] >= number}
        self.phase = Phase.ARMED
        self._latest = self._latest_by_arrival = self._reaching = None
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
        self._closed_ns = now
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

    def _read(self, now: int) -> list[Event]:
        """The question was read to the end: from now on a wrong answer is no interruption, and
        the tossup timer runs (while nobody has pressed). Only the first read counts."""
        if self._question == 0 or self._read_ns is not None:
            return []
        self._read_ns = now
        return [QuestionRead(self.number, self._question, now)]

    # --- presses ---

    def _press(
        self, press: PressIn, now: int, horizon_ns: int = 0, settled_ns: int | None = None
    ) -> list[Event]:
        """Take one press; ``horizon_ns``: how long an earlier one could still be in flight."""
        key = (press.player, press.press_id)
        if key in self._seen:  # the same press re-sent after a reconnect: never count it twice
            known = self._seen.get(key)
            events: list[Event] = [Acknowledge(press.player, press.press_id)]
            if known is not None and known.press.press_id != press.press_id:
                known = replace(known, press=press)  # one counted like a listed refusal
            return [*events, Answer(known, listed=False)] if known is not None else events
        events = [Acknowledge(press.player, press.press_id)]
        outcome = self._classify(press)
        if outcome is not None:
            if press.claimed_ns is not None:
                outcome = replace(outcome, flags=outcome.flags | {Flag.CLAMPED})
            return [*events, Answer(outcome, listed=self._remember(outcome))]
        counted = self._counted.get(press.player)
        if counted is not None:
            if isinstance(counted, Outcome):
                repeat = self._repeat_of(counted, press)
                return [*events, Answer(repeat, listed=self._remember(repeat))]
            self._seen[key] = None
            self._pending_repeats.append(press)
            return events
        self._seen[key] = None
        self._counted[press.player] = press
        if self.phase is Phase.DECIDED:
            ranked = self._rank_after_decision(press)
            self._remember(ranked)
            return [*events, Answer(ranked)]
        return events + self._collect(press, now, horizon_ns, settled_ns)

    def _classify(self, press: PressIn) -> Outcome | None:
        """An outcome for a press that cannot be counted, or None if it competes."""
        number = self.number
        made = press.earliest_ns
        if self._boundary_ns is not None and made < self._boundary_ns:
            return Outcome(number, press, flags=frozenset({Flag.STALE}))
        waiting = self.phase in (Phase.IDLE, Phase.CLOSED)  # for the next round's light
        if self._closed_ns is not None and waiting and made < self._closed_ns:
            # made while the round still took presses, heard after it closed: too late for it,
            # and not early for the next one either
            return Outcome(number, press, flags=frozenset({Flag.CLOSED}))
        window = self.buzz_deadline
        if window is not None and made >= window:
            # made after the buzz window ran out, while its end waits for messages read before
            # it to be handled (hub.backlog): too late, yet one of those may still be in time
            return Outcome(number, press, flags=frozenset({Flag.CLOSED}))
        upcoming = self._rounds + 1 if waiting else number
        early = waiting or (self.current is not None and made < self.current.release_ns)
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

    def _collect(
        self, press: PressIn, now: int, horizon_ns: int, settled_ns: int | None
    ) -> list[Event]:
        """Hold a competing press until nothing earlier can still arrive."""
        bisect.insort(self._pending, press, key=lambda p: p.rank_ns)
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
        if self.deadline_ns <= (now if settled_ns is None else min(now, settled_ns)):
            return self._decide(now)
        return []  # the deadline's tick decides (once everything read before it is handled)

    def _decide(self, now: int) -> list[Event]:
        record = self.current
        assert record is not None
        order = self._break_ties(self._pending)
        winner_ns = order[0][0].rank_ns
        tied_for_first = len(order) > 1 and order[0][1] and _tied(order[0][0], order[1][0])
        if self.rules.tie_rule is TieRule.HOST and tied_for_first:
            self._contested = record.number
        events: list[Event] = []
        for rank, (press, tied) in enumerate(order, start=1):
            outcome = self._ranked(record, press, rank, winner_ns, tied)
            events.append(Answer(outcome))
        for press in self._pending_repeats:
            repeat = self._repeat_of(self._counted_outcome(press.player), press)
            events.append(Answer(repeat, listed=self._remember(repeat)))
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
        A is clearly earlier than C. Every press whose span overlaps a neighbour's is still
        flagged, so the host sees each near call.
        """
        near = {id(press) for a, b in pairwise(pending) if _tied(a, b) for press in (a, b)}
        groups: list[list[PressIn]] = []
        # Sorted by the instant each is ranked by, a press's span ends no earlier than any
        # member's begins, so it is tied with every member of the group exactly when it begins
        # before the earliest of their ends: one comparison per press, not one per member (a
        # burst of a thousand presses within their uncertainty made this quadratic).
        reach = 0  # the earliest end of a span in the current group
        for press in pending:  # already sorted by rank_ns
            if groups and press.low_ns < reach:
                groups[-1].append(press)
                reach = min(reach, press.high_ns)
            else:
                groups.append([press])
                reach = press.high_ns
        order: list[tuple[PressIn, bool]] = []
        arrival = self.rules.tie_rule is TieRule.ARRIVAL  # EARLIEST and HOST: by estimate
        for group in groups:
            # A clamped press's claim is not believed, and its span reaches back to it: it never
            # wins a tie on that benefit of the doubt.
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
        if self._reaching is None or press.high_ns > self._reaching.high_ns:
            self._reaching = press
        if press.by_arrival:
            latest = self._latest_by_arrival  # hub times may be negative (a replay's shift)
            self._latest_by_arrival = (
                press.arrival_ns if latest is None else max(latest, press.arrival_ns)
            )
        outcome = Outcome(
            record.number,
            press,
            rank=rank,
            reaction_ns=press.rank_ns - record.release_ns,
            behind_ns=max(0, press.rank_ns - winner_ns),
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
        assert self._reaching is not None  # set with _latest, by the decision
        previous = record.ranked[-1].press
        # Late: stamped before a press that was already ranked (not merely before the previous
        # one, which may itself have been late), unless the two are within their uncertainty;
        # or made before a press ranked by its arrival arrived, which it would have been
        # ranked ahead of.
        late = press.at_ns < self._latest.at_ns and not _tied(self._latest, press)
        by_arrival = self._latest_by_arrival
        late = late or (by_arrival is not None and press.rank_ns < by_arrival)
        # Tied: with a ranked press its span overlaps. For a press stamped no earlier than every
        # ranked one, that is the press whose span reaches latest (a phone's wide span can reach
        # past later, tighter ones) if it is any: every ranked span starts no later than the
        # press's instant, and a span has width (every press is given some uncertainty).
        # A late one is also checked against the winner, the tie that matters most; a tie with
        # some other press in the middle goes unflagged (finding it would scan every ranked
        # press, for each press of a burst), and the press is flagged late anyway.
        tied = any(
            _tied(ranked, press)
            for ranked in (previous, self._latest, self._reaching, record.winner.press)
        )
        return self._ranked(
            record, press, len(record.ranked) + 1, record.winner.press.rank_ns, tied, late
        )

    def _counted_outcome(self, player: str) -> Outcome:
        counted = self._counted[player]
        assert isinstance(counted, Outcome)
        return counted

    def _repeat_of(self, counted: Outcome, press: PressIn) -> Outcome:
        return replace(counted, press=press, flags=counted.flags | {Flag.REPEAT})

    def _remember(self, outcome: Outcome) -> bool:
        """Remember a press's outcome by its id; False if it was only counted, not listed."""
        key = (outcome.press.player, outcome.press.press_id)
        if outcome.counted:
            self._seen[key] = outcome
            return True
        this_round = self.current is not None and outcome.round == self.number
        if not this_round and outcome.round != self._rounds + 1:
            self._seen[key] = outcome
            return True
        listed = (outcome.round, outcome.press.player, outcome.flags)
        like = self._refused_by.get(listed)
        if like is not None:
            # Counted, not listed. Its id is still remembered (pointing at the one listed, no
            # copy of its own): judged afresh in a later round, a re-sent repeat, or an unsynced
            # press placed at its arrival, could count there.
            self._seen[key] = like
            if this_round and self.current is not None:
                self.current.more_refused += 1
            else:
                self._early_more += 1
            return False
        self._refused_by[listed] = outcome
        self._seen[key] = outcome  # for as long as the round is in the history: see _arm
        if this_round and self.current is not None:
            self.current.refused.append(outcome)
        else:  # early while waiting: shown with the next round
            self._early_for_next.append(outcome)
        return True

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
        return self._question

    @property
    def read_ns(self) -> int | None:
        """When the host read the current question to the end (None: not yet)."""
        return self._read_ns

    def save_point(self) -> dict[str, object]:
        """The round state as it is, to go back to with :meth:`rewind` (an undone ruling)."""
        return copy.deepcopy({name: getattr(self, name) for name in self.ROUND_STATE})

    def rewind(self, point: dict[str, object], now: int) -> list[Event]:
        """Back to a :meth:`save_point`, as if what came after it had not happened.

        Presses seen since stay seen (a re-sent one is not counted again) and anything stamped
        before ``now`` is stale: the rounds that came after the save point are over. A press
        still waiting for its decision gets one first (the events returned), so that no player
        waits for an answer that never comes. The answer timer of a floor given back does not
        ring again for stages already past.
        """
        events = self._decide(now) if self.phase is Phase.ARMED and self._pending else []
        for name, value in copy.deepcopy(point).items():
            setattr(self, name, value)
        self._boundary_ns = now if self._boundary_ns is None else max(self._boundary_ns, now)
        floor = self._hold_floor()
        if floor is not None:
            warning, end = self._answer_instants(floor)
            floor.warned = floor.warned or (warning is not None and now >= warning)
            floor.expired = floor.expired or (end is not None and now >= end)
        return events

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
        """When the round closes unanswered, while it is open and nobody has pressed: the buzz
        window after the release, or the tossup timer after the question was read (counted
        from a rebound's release if that came later), whichever ends first."""
        if self.phase is not Phase.ARMED or self.current is None:
            return None
        if self._pending or self.current.ranked:
            return None
        ends = []
        if self.rules.buzz_window_ns is not None:
            ends.append(self.current.release_ns + self.rules.buzz_window_ns)
        if self.rules.tossup_ns is not None and self._read_ns is not None:
            ends.append(max(self._read_ns, self.current.release_ns) + self.rules.tossup_ns)
        return min(ends) if ends else None

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
        if self._everyone_out():
            # Nobody is left to answer: the question is dead. Re-arming would light "Buzz!" for
            # a room in which nobody may buzz.
            self._floor = _Floor(self.number, None, now)
            dead = QuestionDead(self.number, self._question, DeadReason.EVERYONE_OUT)
            return [*events, dead, *self._close(now)]
        if mode is ReboundMode.NEXT:
            self._floor = _Floor(self.number, self._first_eligible(), now)
            _, end = self._answer_instants(self._floor)
            return [*events, FloorChanged(self.number, self._floor.player, end)]
        out = self._out
        # The rebound's light comes on at the ruling itself: the players still in have heard
        # the question, and a release lead would make a quick press by one of them "early".
        events += self._arm(now, 0, rebound=True)
        out.round = self.number
        self._out = out
        for held in self._held_players(out):
            self._locks[held] = _Lock(self.number, None)
        return events

    def _everyone_out(self) -> bool:
        """Whether nobody may answer any more: every player placed in a team, and everyone who
        pressed in this round, has been ruled wrong (or their team has, with one buzz per team).
        Without teams the hub does not know who else is in the room, so a question never dies
        this way; the host arms the next one."""
        if not self.teams or self.current is None:
            return False
        field = set(self.teams) | {outcome.press.player for outcome in self.current.ranked}
        return all(self._held_out(player, self.number) for player in field)

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
            expired = TimerFired(self.number, TimerKind.BUZZ, TimerStage.EXPIRED)
            dead = QuestionDead(self.number, self._question, DeadReason.TIME)
            return [expired, dead, *self._close(now)]
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
    """Whether the spans in which the two may have been made overlap: for presses placed
    with a plain uncertainty, closer than the sum of the two."""
    return a.low_ns < b.high_ns and b.low_ns < a.high_ns
