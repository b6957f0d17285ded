"""Protocol v1: every message the hub and its clients exchange, and every object inside one.

Each message is a frozen dataclass whose field types and constraints are the protocol's; the codec
(:mod:`wire.codec`) reads them to validate what arrives and to write what goes out, so a field
cannot mean one thing on one side and another on the other. Objects nested in a message (the round
and roster pictures a host sees, the game panel) are dataclasses too, never bare dicts: a client
gets typed values at every depth. ``docs/protocol.md`` is the human-readable copy of what is
declared here; keep them in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from wire.enums import (
    AnswerKind,
    Flag,
    InputKind,
    MatchStatus,
    Phase,
    ReboundMode,
    Role,
    TimerKind,
    TimerStage,
)

PROTOCOL_VERSION: Final = 1

#: Largest frame a client may send. The biggest client message (a hello with a long token) is
#: well under 1 KiB; the margin leaves room for extensions without inviting abuse.
MAX_CLIENT_FRAME_BYTES: Final = 4096

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
NAME_MAX_CHARS: Final = 40
TOKEN_MAX_CHARS: Final = 256
REF_MAX_CHARS: Final = 64
#: Any timestamp or duration in nanoseconds fits in a signed 64-bit integer.
NS_MAX: Final = 2**63 - 1
#: Largest number of points one command may award or deduct.
POINTS_MAX: Final = 1_000_000


def spec(**constraints: Any) -> dict[str, Any]:
    """Validation constraints for a field's metadata: ``min``, ``max``, ``max_len``, ``pattern``,
    ``printable``. The codec checks them on every frame it decodes."""
    return constraints


NS: Final = spec(min=-NS_MAX, max=NS_MAX)
COUNT: Final = spec(min=0, max=NS_MAX)
NAME: Final = spec(max_len=NAME_MAX_CHARS, printable=True)
REF: Final = spec(max_len=REF_MAX_CHARS)
POINTS: Final = spec(min=-POINTS_MAX, max=POINTS_MAX)


@dataclass(frozen=True, slots=True)
class Message:
    """A frame: its ``type`` names the class."""

    TYPE: ClassVar[str] = ""


# --- client -> hub ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int = field(metadata=spec(min=0, max=1_000_000))
    role: Role
    id: str | None = field(default=None, metadata=spec(pattern=ID_PATTERN))
    name: str | None = field(default=None, metadata=NAME)
    input: InputKind | None = None
    token: str | None = field(default=None, metadata=spec(max_len=TOKEN_MAX_CHARS))
    team: str | None = field(default=None, metadata=NAME)
    # How long after its instant a press of this station leaves it, at least (a button's
    # confirmation window): the hub waits that much longer for presses still on their way.
    press_lead_ns: int | None = field(default=None, metadata=spec(min=0, max=NS_MAX))
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Press(Message):
    TYPE: ClassVar[str] = "press"
    press_id: str = field(metadata=spec(pattern=ID_PATTERN))
    at_ns: int = field(metadata=NS)
    round: int | None = field(default=None, metadata=COUNT)
    # When the frame left the node, in its clock: the press's time on the station (a button's
    # confirmation, the station's own work), which the hub waits for in later rounds.
    sent_ns: int | None = field(default=None, metadata=NS)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class SyncReply(Message):
    TYPE: ClassVar[str] = "sync_reply"
    seq: int = field(metadata=COUNT)
    t0_ns: int = field(metadata=NS)
    t1_ns: int = field(metadata=NS)
    t2_ns: int = field(metadata=NS)


@dataclass(frozen=True, slots=True)
class Arm(Message):
    """Arm the next round. In a match, ``force`` moves on even though a player has the floor or
    a bonus is not scored (the console asks before it sends that)."""

    TYPE: ClassVar[str] = "arm"
    force: bool | None = None
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Reset(Message):
    TYPE: ClassVar[str] = "reset"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class CloseRound(Message):
    TYPE: ClassVar[str] = "close"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Players(Message):
    """Let browser player pages join, or refuse them (and drop those already connected)."""

    TYPE: ClassVar[str] = "players"
    browser: bool
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Wrong(Message):
    """The player with the floor answered wrong; ``mode`` picks the rebound (default: config)."""

    TYPE: ClassVar[str] = "wrong"
    mode: ReboundMode | None = None
    points: int | None = field(default=None, metadata=POINTS)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Right(Message):
    """The player with the floor answered right: the question ends. ``power``: before the power
    mark (the format's power value)."""

    TYPE: ClassVar[str] = "right"
    points: int | None = field(default=None, metadata=POINTS)
    power: bool | None = None
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Score(Message):
    """Award (or, negative, deduct) points to a player or a team."""

    TYPE: ClassVar[str] = "score"
    points: int = field(metadata=POINTS)
    player: str | None = field(default=None, metadata=spec(pattern=ID_PATTERN))
    team: str | None = field(default=None, metadata=NAME)
    reason: str | None = field(default=None, metadata=NAME)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class SetTeam(Message):
    """Put a player in a team; a null ``team`` takes them out of any team."""

    TYPE: ClassVar[str] = "team"
    player: str = field(metadata=spec(pattern=ID_PATTERN))
    team: str | None = field(default=None, metadata=NAME)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Floor(Message):
    """Give the floor to a player ranked in the decided round: the host settles a tie."""

    TYPE: ClassVar[str] = "floor"
    player: str = field(metadata=spec(pattern=ID_PATTERN))
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class ClearScores(Message):
    """Start a new game: every score back to zero."""

    TYPE: ClassVar[str] = "clear_scores"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class PlayerEntry:
    """A player of a match: a station's id, and the name to print on the result (default: the
    station's own name)."""

    id: str = field(metadata=spec(pattern=ID_PATTERN))
    name: str | None = field(default=None, metadata=NAME)


@dataclass(frozen=True, slots=True)
class TeamEntry:
    name: str = field(metadata=NAME)
    players: list[PlayerEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MatchStart(Message):
    """Start a match: its name, the packet or round, the format, the teams and their players."""

    TYPE: ClassVar[str] = "match_start"
    name: str = field(metadata=NAME)
    format: str = field(metadata=spec(max_len=20))
    teams: list[TeamEntry] = field(default_factory=list)
    packet: str | None = field(default=None, metadata=NAME)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class MatchEnd(Message):
    """End the match in progress: its result is final and saved."""

    TYPE: ClassVar[str] = "match_end"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Read(Message):
    """The host finished reading: the question (tossup timer, no more negs) or a bonus part
    (the bonus timer)."""

    TYPE: ClassVar[str] = "read"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class BonusPart(Message):
    """The next part of the open bonus: the points it earned (0 for a miss)."""

    TYPE: ClassVar[str] = "bonus"
    points: int = field(metadata=POINTS)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Undo(Message):
    """Take back the latest ruling, bonus part, score or wager; the log keeps both."""

    TYPE: ClassVar[str] = "undo"
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class ClueValue(Message):
    """The value of the clue being read, and of the next ones until changed (Jeopardy)."""

    TYPE: ClassVar[str] = "value"
    points: int = field(metadata=POINTS)
    ref: str | None = field(default=None, metadata=REF)


@dataclass(frozen=True, slots=True)
class Wager(Message):
    """A Daily Double: one player wagered ``points`` and answered right or wrong."""

    TYPE: ClassVar[str] = "wager"
    player: str = field(metadata=spec(pattern=ID_PATTERN))
    points: int = field(metadata=POINTS)
    correct: bool
    ref: str | None = field(default=None, metadata=REF)


#: What a host may send to run rounds; the server dispatches on these with exhaustive matches.
RoundCommand = Arm | Reset | CloseRound
GameCommand = Wrong | Right | Score | SetTeam | ClearScores | Floor
MatchCommand = MatchStart | MatchEnd | Read | BonusPart | Undo | ClueValue | Wager
HostCommand = RoundCommand | GameCommand | MatchCommand | Players
NodeMessage = Press | SyncReply
ClientMessage = Hello | NodeMessage | HostCommand


# --- hub -> client: objects inside messages ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundUpdate(Message):
    """Round state as a node needs it: enough to drive the LED, nothing about other players."""

    TYPE: ClassVar[str] = "round"
    number: int
    state: Phase
    release_ns: int | None = None  # in the receiving node's clock
    synced: bool = False
    locked_out: bool = False
    winner: str | None = None
    out: bool = False  # ruled wrong in this question (or the team was): locked out until the next


@dataclass(frozen=True, slots=True)
class PressView:
    """One press in a round picture, as hosts and viewers see it."""

    rank: int | None
    player: str
    name: str
    press_id: str
    reaction_ns: int | None
    behind_ns: int | None
    uncertainty_ns: int
    flags: list[Flag]
    at_ns: int  # press instant, hub clock
    raw_ns: int | None  # the timestamp as the node sent it, node clock
    arrival_ns: int
    team: str | None = None


@dataclass(frozen=True, slots=True)
class RoundView:
    """A round as hosts and viewers see it: its instants and every press, ranked or refused."""

    number: int
    state: Phase
    armed_ns: int | None = None
    release_ns: int | None = None
    decided_ns: int | None = None
    adjudication_wait_ns: int | None = None
    winner: str | None = None
    results: list[PressView] = field(default_factory=list)
    refused: list[PressView] = field(default_factory=list)
    more_refused: int = 0  # refused presses not listed (a player's repeats of one kind)
    more_results: int = 0  # ranked presses not listed (an earlier round in a state picture)


@dataclass(frozen=True, slots=True)
class PlayerView:
    """The roster entry the host sees for one player station."""

    id: str
    name: str
    input: InputKind
    team: str | None
    online: bool
    synced: bool
    offset_ns: int | None
    rtt_ns: int | None
    uncertainty_ns: int | None
    bound_ns: int | None
    upload_ns: int | None
    drift_ppm: float | None
    last_sync_ns: int | None
    last_seen_ns: int | None
    clamped: int = 0  # presses that claimed an instant earlier than the link can explain


@dataclass(frozen=True, slots=True)
class AnsweringView:
    player: str
    name: str
    team: str | None
    since_ns: int


@dataclass(frozen=True, slots=True)
class OutView:
    """Who is out of the current question: players ruled wrong, and teams with one buzz each."""

    players: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class TeamView:
    team: str
    members: list[MemberView]
    points: int


@dataclass(frozen=True, slots=True)
class TeamPlaceView:
    """One team in the current round, placed by its best-ranked player."""

    rank: int
    team: str
    player: str
    name: str
    player_rank: int | None
    behind_ns: int


@dataclass(frozen=True, slots=True)
class PlayerScoreView:
    id: str
    name: str
    team: str | None
    points: int


@dataclass(frozen=True, slots=True)
class TeamScoreView:
    id: str
    points: int


@dataclass(frozen=True, slots=True)
class ScoresView:
    """Totals, highest first (ties by name)."""

    players: list[PlayerScoreView]
    teams: list[TeamScoreView]


@dataclass(frozen=True, slots=True)
class PointsView:
    """The same totals as :class:`ScoresView`, keyed by player id and team name."""

    players: dict[str, int]
    teams: dict[str, int]


@dataclass(frozen=True, slots=True)
class RulesView:
    one_buzz_per_team: bool
    rebound: ReboundMode
    buzz_window_ns: int | None
    answer_ns: int | None
    answer_warning_ns: int | None
    lockout_ns: int | None
    points_right: int
    points_wrong: int


# --- matches: the format, the game log, the result ---


@dataclass(frozen=True, slots=True)
class FormatView:
    """A match's format: what answers are worth, bonuses, timers (docs/hosting.md explains)."""

    name: str
    title: str
    tossup: int
    power: int | None
    neg: int
    wrong: int
    bonus_parts: int
    bonus_part: int
    values: list[int]
    wagers: bool
    one_buzz_per_team: bool
    rebound: ReboundMode
    tossup_time_ns: int | None
    bonus_time_ns: int | None
    questions: int


@dataclass(frozen=True, slots=True)
class MatchView:
    number: int
    name: str
    packet: str | None
    format: FormatView
    status: MatchStatus


@dataclass(frozen=True, slots=True)
class BuzzView:
    """A counted press of a question, in the order of its round: who buzzed, how far behind."""

    round: int
    rank: int
    player: str
    name: str
    team: str | None
    reaction_ns: int | None
    behind_ns: int | None
    flags: list[Flag]


@dataclass(frozen=True, slots=True)
class AnswerView:
    """A ruling: ``seq`` orders every entry of the game log; ``undone`` if taken back."""

    seq: int
    round: int
    player: str
    name: str
    team: str | None
    kind: AnswerKind
    points: int
    undone: bool = False


@dataclass(frozen=True, slots=True)
class BonusPartView:
    seq: int
    part: int  # 1-based
    points: int
    undone: bool = False


@dataclass(frozen=True, slots=True)
class BonusView:
    team: str
    parts: int
    part_value: int
    answers: list[BonusPartView]


@dataclass(frozen=True, slots=True)
class AwardView:
    """Points given by hand, or a Daily Double's wager (points won or lost)."""

    seq: int
    points: int
    player: str | None
    name: str | None
    team: str | None
    reason: str
    wager: bool = False
    undone: bool = False


@dataclass(frozen=True, slots=True)
class QuestionView:
    """One question of the game log."""

    number: int
    value: int | None
    read: bool
    daily_double: bool
    dead: str | None  # why nobody got it: "everyone out", "time", "no answer"
    over: bool
    buzzes: list[BuzzView]
    answers: list[AnswerView]
    bonus: BonusView | None
    awards: list[AwardView]
    more_buzzes: int = 0  # counted presses not listed (a state picture lists the first few)


@dataclass(frozen=True, slots=True)
class AnswerCountView:
    value: int
    number: int


@dataclass(frozen=True, slots=True)
class MatchPlayerView:
    id: str
    name: str
    points: int
    answers: list[AnswerCountView]  # how many answers for each value (10, 15, -5, 0)


@dataclass(frozen=True, slots=True)
class MatchTeamView:
    name: str
    points: int  # tossups, bonuses and points given by hand
    bonus_points: int
    bonuses_heard: int
    players: list[MatchPlayerView]


@dataclass(frozen=True, slots=True)
class MatchReport:
    """A whole match: what the result exports (QBJ, CSV, JSON) are made of."""

    match: MatchView
    teams: list[MatchTeamView]
    questions: list[QuestionView]
    tossups_read: int


@dataclass(frozen=True, slots=True)
class OpenBonusView:
    """The bonus being played: whose it is, which part comes next, its timer."""

    team: str
    part: int  # the part to rule next, 1-based
    parts: int
    part_value: int
    deadline_ns: int | None


@dataclass(frozen=True, slots=True)
class RulingPointsView:
    """What Right, Power and Wrong give now when the host gives no number (null: not now)."""

    right: int | None
    power: int | None
    wrong: int | None


@dataclass(frozen=True, slots=True)
class MatchResultView:
    """The last match that ended: its number, name and final scores."""

    number: int
    name: str
    teams: list[TeamScoreView]


@dataclass(frozen=True, slots=True)
class GameView:
    """Floor, timers, teams and scores: docs/protocol.md section 14."""

    question: int
    answering: AnsweringView | None
    answer_warning_ns: int | None
    answer_deadline_ns: int | None
    buzz_deadline_ns: int | None
    out: OutView
    teams: list[TeamView]
    team_ranking: list[TeamPlaceView]
    scores: ScoresView
    points: PointsView
    rules: RulesView
    applied: int  # game commands applied since the hub started
    match: MatchView | None = None
    read: bool = False  # the question was read to the end
    value: int | None = None  # the clue's value (formats with values)
    bonus: OpenBonusView | None = None
    defaults: RulingPointsView | None = None
    eligible: list[str] = field(default_factory=list)  # players who may buzz now
    log: list[QuestionView] = field(default_factory=list)
    undo: str | None = None  # what undo would take back, in words
    last_match: MatchResultView | None = None


@dataclass(frozen=True, slots=True)
class StorageView:
    """Whether results are being saved, and if not, why."""

    saving: bool
    path: str | None
    message: str


@dataclass(frozen=True, slots=True)
class PairingView:
    """A match the tournament's schedule gives this room: its round and teams, with players."""

    round: int
    name: str  # e.g. "Round 2: Red v Blue"
    teams: list[TeamEntry]


@dataclass(frozen=True, slots=True)
class CentralView:
    """A room hub in a tournament: are its results in the tournament's database yet, and what
    the schedule says this room plays (docs/tournament.md)."""

    tournament: str
    room: str
    connected: bool  # the link to the results database is up
    synced: bool  # every saved change of every match is in the database
    waiting_matches: int  # matches with changes not yet in the database
    message: str  # "results synced", "3 matches waiting to sync: ..."
    schedule: list[PairingView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class JoinView:
    """What a player page needs before it joins (no secrets: just whether)."""

    browser_players: bool
    token_required: bool


# --- hub -> client -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: int
    role: Role
    greeting: str
    hub_ns: int
    id: str | None = None
    round: RoundUpdate | None = None


@dataclass(frozen=True, slots=True)
class Sync(Message):
    TYPE: ClassVar[str] = "sync"
    seq: int
    t0_ns: int


@dataclass(frozen=True, slots=True)
class Ack(Message):
    TYPE: ClassVar[str] = "ack"
    press_id: str


@dataclass(frozen=True, slots=True)
class Result(Message):
    TYPE: ClassVar[str] = "result"
    round: int
    press_id: str
    rank: int | None
    flags: list[Flag]
    text: str
    reaction_ns: int | None = None
    behind_ns: int | None = None
    uncertainty_ns: int | None = None
    lockout_ns: int | None = None


@dataclass(frozen=True, slots=True)
class State(Message):
    """The whole picture, for hosts and viewers."""

    TYPE: ClassVar[str] = "state"
    hub_ns: int
    round: RoundView
    players: list[PlayerView]
    history: list[RoundView]
    game: GameView | None = None
    storage: StorageView | None = None
    join: JoinView | None = None
    central: CentralView | None = None


@dataclass(frozen=True, slots=True)
class Error(Message):
    """The frame was not used; ``code`` is one of :class:`wire.enums.ErrorCode` (kept as text so
    that a code from a newer hub still arrives)."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Warning(Message):
    """The frame was used, but something in it was not understood."""

    TYPE: ClassVar[str] = "warning"
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Offer(Message):
    """To one node: the answer is yours now (a rebound passed it down the ranking)."""

    TYPE: ClassVar[str] = "offer"
    round: int
    text: str
    deadline_ns: int | None = None  # when the answer time is up, in the node's own clock
    remaining_ns: int | None = None  # the answer time left when the offer was sent


@dataclass(frozen=True, slots=True)
class Ruling(Message):
    """To the ruled node and to hosts and viewers: the host's ruling on an answer."""

    TYPE: ClassVar[str] = "ruling"
    round: int
    player: str
    name: str
    correct: bool
    text: str
    team: str | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class TimerNotice(Message):
    """A buzz-window or answer-timer stage: the console beeps, the big screen shows it."""

    TYPE: ClassVar[str] = "timer"
    round: int
    timer: TimerKind
    stage: TimerStage
    text: str
    player: str | None = None


HubMessage = (
    Welcome
    | Sync
    | RoundUpdate
    | Ack
    | Result
    | State
    | Error
    | Warning
    | Offer
    | Ruling
    | TimerNotice
)

CLIENT_TYPES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Press,
        SyncReply,
        Arm,
        Reset,
        CloseRound,
        Players,
        Wrong,
        Right,
        Score,
        SetTeam,
        ClearScores,
        Floor,
        MatchStart,
        MatchEnd,
        Read,
        BonusPart,
        Undo,
        ClueValue,
        Wager,
    )
}
HUB_TYPES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        Welcome,
        Sync,
        RoundUpdate,
        Ack,
        Result,
        State,
        Error,
        Warning,
        Offer,
        Ruling,
        TimerNotice,
    )
}
