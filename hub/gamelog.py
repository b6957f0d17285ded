"""The game log: what happened in a game, question by question, and the events that tell of it.

Kept apart from :mod:`hub.match` (which plays a match and writes this log) so that the round
engine's event type can name these events without importing the match layer built on top of it.
Every record is plain data; the log keeps what was undone too, marked so (a result a director
signs must show what the moderator took back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.enums import AnswerKind
from wire.messages import MatchReport


@dataclass(slots=True)
class Buzz:
    """A counted press in one of a question's rounds: who buzzed, in what order, how far behind."""

    round: int
    rank: int
    player: str
    team: str | None
    reaction_ns: int | None
    behind_ns: int | None
    flags: tuple[str, ...]


@dataclass(slots=True)
class Entry:
    """Something the host did that changed points: a ruling, a bonus part, a score, a wager.

    ``seq`` numbers entries within the game; ``undone`` marks one the host took back."""

    seq: int
    question: int
    points: int
    undone: bool = False


@dataclass(slots=True)
class Ruling(Entry):
    round: int = 0
    player: str = ""
    team: str | None = None
    correct: bool = False
    kind: AnswerKind = AnswerKind.RIGHT


@dataclass(slots=True)
class BonusAnswer(Entry):
    team: str = ""
    part: int = 0  # 1-based


@dataclass(slots=True)
class Given(Entry):
    """Points the host gave (or took) by hand, or a Daily Double's wager."""

    player: str | None = None
    team: str | None = None
    reason: str = ""
    wager: bool = False


@dataclass(slots=True)
class Question:
    """One question of the game: its rounds, its presses, and what became of it."""

    number: int
    rounds: list[int] = field(default_factory=list)
    read_ns: int | None = None
    value: int | None = None  # the clue's value, in formats that have values
    daily_double: bool = False
    dead: str | None = None  # why nobody got it, once the question is over without a right
    buzzes: list[Buzz] = field(default_factory=list)
    # (round, player) of every buzz listed: a burst of a thousand presses must not scan the
    # list once per press to keep each player's buzz in a round listed once.
    buzzed: set[tuple[int, str]] = field(default_factory=set, repr=False, compare=False)
    bonus_team: str | None = None  # who earned the bonus, if there is one
    bonus_parts: int = 0
    over: bool = False


# --- events: what the game log tells the rest of the hub ---


@dataclass(frozen=True, slots=True)
class MatchStarted:
    number: int
    name: str


@dataclass(frozen=True, slots=True)
class MatchEnded:
    """The match is over; ``report`` is its final result."""

    number: int
    name: str
    report: MatchReport


@dataclass(frozen=True, slots=True)
class BonusOpened:
    question: int
    team: str
    parts: int


@dataclass(frozen=True, slots=True)
class BonusScored:
    question: int
    team: str
    part: int
    points: int


@dataclass(frozen=True, slots=True)
class Awarded:
    """Points given by hand (or a wager): the scores table keeps a row for each."""

    points: int
    player: str | None
    team: str | None
    reason: str
    round: int


@dataclass(frozen=True, slots=True)
class Undone:
    """The host took an entry back; ``text`` says which, for the console and the log."""

    question: int
    text: str


@dataclass(frozen=True, slots=True)
class ScoresCleared:
    """Every total back to zero: a new game of free play."""


MatchEvent = (
    MatchStarted | MatchEnded | BonusOpened | BonusScored | Awarded | Undone | ScoresCleared
)
