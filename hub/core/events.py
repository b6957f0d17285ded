"""What happens in a hub, as values: the log's lines and the embedding API's events at once.

The core returns each as a :class:`~hub.core.outputs.Notify`; the server writes it to the log
(``describe()`` at ``level``, one line per event) and hands it to whoever subscribed (tests,
tools embedding a hub). Waiting for an event is thus waiting for exactly what the log says,
without parsing its words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from wire.enums import InputKind, Phase, Role

INFO, WARNING, ERROR, DEBUG = logging.INFO, logging.WARNING, logging.ERROR, logging.DEBUG


def _ms(ns: int | None) -> str:
    return f"{(ns or 0) / 1e6:.2f} ms"


@dataclass(frozen=True, slots=True)
class Listening:
    level: ClassVar[int] = INFO
    addresses: tuple[str, ...]

    def describe(self) -> str:
        return f"listening on {', '.join(self.addresses)}"


@dataclass(frozen=True, slots=True)
class NodeJoined:
    level: ClassVar[int] = INFO
    player: str
    name: str
    input: InputKind
    peer: str
    replaced: bool = False  # it took over from an older link of the same id

    def describe(self) -> str:
        again = "; its older link is closed" if self.replaced else ""
        return f"node {self.player} ({self.name}, {self.input}) joined from {self.peer}{again}"


@dataclass(frozen=True, slots=True)
class TutorialJoined:
    player: str
    peer: str
    quiet: bool = False  # one of many within a second: at debug level (see TutorialJoins)

    @property
    def level(self) -> int:
        return DEBUG if self.quiet else INFO

    def describe(self) -> str:
        return f"plain-text client {self.player} joined from {self.peer}"


@dataclass(frozen=True, slots=True)
class TutorialJoins:
    """The tutorial clients that joined quietly in the second after a logged one, in a line."""

    level: ClassVar[int] = INFO
    count: int
    first: str
    last: str

    def describe(self) -> str:
        which = self.first if self.count == 1 else f"{self.first} to {self.last}"
        return f"{self.count} more plain-text client(s) joined: {which} (each at debug level)"


@dataclass(frozen=True, slots=True)
class WatcherJoined:
    level: ClassVar[int] = INFO
    role: Role
    peer: str

    def describe(self) -> str:
        return f"{self.role} joined from {self.peer}"


@dataclass(frozen=True, slots=True)
class Left:
    """A link ended: ``who`` is the player's id, or the role of a host or viewer."""

    level: ClassVar[int] = INFO
    who: str
    kind: str  # node, client (tutorial), host, viewer
    reason: str

    def describe(self) -> str:
        name = self.kind if self.kind in (Role.HOST, Role.VIEWER) else f"{self.kind} {self.who}"
        return f"{name} left ({self.reason})"


@dataclass(frozen=True, slots=True)
class Refused:
    """A greeting turned away; ``closed`` when the link is closed for it."""

    level: ClassVar[int] = INFO
    peer: str
    reason: str
    closed: bool
    left_out: int = 0  # like refusals from the same address since its last line (throttled)

    def describe(self) -> str:
        more = f" ({self.left_out} more from this address not logged)" if self.left_out else ""
        return f"refused {self.peer}: {self.reason}{more}"


@dataclass(frozen=True, slots=True)
class Synced:
    """A node's clock is placed: from now on its presses are ranked by their own time."""

    level: ClassVar[int] = INFO
    player: str
    offset_ns: int
    rtt_ns: int
    uncertainty_ns: int
    bound_ns: int

    def describe(self) -> str:
        return (
            f"node {self.player} synced: offset {self.offset_ns / 1e9:+.6f} s, rtt "
            f"{self.rtt_ns / 1e6:.3f} ms, uncertainty {self.uncertainty_ns / 1e6:.3f} ms, "
            f"bound {self.bound_ns / 1e6:.3f} ms"
        )


@dataclass(frozen=True, slots=True)
class Armed:
    level: ClassVar[int] = INFO
    round: int
    release_ns: int  # hub clock
    lead_ns: int  # from the arm to the release

    def describe(self) -> str:
        return f"round {self.round} armed: release in {self.lead_ns / 1e6:.1f} ms"


@dataclass(frozen=True, slots=True)
class PressTaken:
    """A press reached the engine, in hub time."""

    level: ClassVar[int] = DEBUG
    player: str
    press_id: str
    at_ns: int
    arrival_ns: int

    def describe(self) -> str:
        return f"press {self.press_id} of {self.player} taken"


@dataclass(frozen=True, slots=True)
class Decided:
    level: ClassVar[int] = INFO
    round: int
    winner: str
    name: str
    reaction_ns: int
    wait_ns: int  # the adjudication wait: from the first arrival to the decision

    def describe(self) -> str:
        return (
            f"round {self.round} decided: {self.name} first (reaction "
            f"{self.reaction_ns / 1e9:.3f} s) after an adjudication wait of {_ms(self.wait_ns)}"
        )


@dataclass(frozen=True, slots=True)
class PhaseEntered:
    """The round went idle or closed (armed and decided have their own events)."""

    level: ClassVar[int] = INFO
    round: int
    phase: Phase

    def describe(self) -> str:
        return f"round {self.round} {self.phase}"


@dataclass(frozen=True, slots=True)
class Commanded:
    """A host's command arrived (from a console, ``ctl``, or the embedding API)."""

    level: ClassVar[int] = INFO
    peer: str
    command: str

    def describe(self) -> str:
        return f"host {self.peer}: {self.command}"


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """A host's command that did not fit the game as it stood; nothing changed."""

    level: ClassVar[int] = INFO
    peer: str
    command: str
    reason: str

    def describe(self) -> str:
        return f"host {self.peer}: {self.command} refused: {self.reason}"


@dataclass(frozen=True, slots=True)
class RulingGiven:
    level: ClassVar[int] = INFO
    round: int
    player: str
    name: str
    correct: bool
    points: int

    def describe(self) -> str:
        return f"round {self.round}: {self.name} ruled {'right' if self.correct else 'wrong'}"


@dataclass(frozen=True, slots=True)
class FloorPassed:
    level: ClassVar[int] = INFO
    round: int
    player: str | None

    def describe(self) -> str:
        return f"round {self.round}: the floor passes to {self.player or 'nobody'}"


@dataclass(frozen=True, slots=True)
class TimerRang:
    level: ClassVar[int] = INFO
    round: int
    text: str

    def describe(self) -> str:
        return f"round {self.round}: {self.text}"


@dataclass(frozen=True, slots=True)
class TeamSet:
    level: ClassVar[int] = INFO
    player: str
    team: str | None

    def describe(self) -> str:
        return f"player {self.player} is now in team {self.team or '(none)'}"


@dataclass(frozen=True, slots=True)
class Scored:
    level: ClassVar[int] = INFO
    points: int
    player: str | None
    team: str | None

    def describe(self) -> str:
        return f"score: {self.points:+d} to {self.player or f'team {self.team}'}"


@dataclass(frozen=True, slots=True)
class ScoresReset:
    level: ClassVar[int] = INFO

    def describe(self) -> str:
        return "scores cleared"


@dataclass(frozen=True, slots=True)
class MatchBegun:
    level: ClassVar[int] = INFO
    number: int
    name: str
    format: str
    teams: tuple[str, ...]

    def describe(self) -> str:
        return f"match {self.number} ({self.name}) started: {self.format}, {' v '.join(self.teams)}"


@dataclass(frozen=True, slots=True)
class MatchOver:
    level: ClassVar[int] = INFO
    number: int
    name: str
    scores: tuple[tuple[str, int], ...]  # team, points

    def describe(self) -> str:
        final = ", ".join(f"{team} {points}" for team, points in self.scores) or "no teams"
        return f"match {self.number} ({self.name}) ended: {final}"


@dataclass(frozen=True, slots=True)
class QuestionEnded:
    """A question died: nobody answered it right."""

    level: ClassVar[int] = INFO
    question: int
    reason: str

    def describe(self) -> str:
        return f"question {self.question} is dead ({self.reason})"


@dataclass(frozen=True, slots=True)
class ReadToTheEnd:
    level: ClassVar[int] = INFO
    question: int

    def describe(self) -> str:
        return f"question {self.question} read to the end"


@dataclass(frozen=True, slots=True)
class BonusPartScored:
    level: ClassVar[int] = INFO
    question: int
    team: str
    part: int
    points: int

    def describe(self) -> str:
        return f"question {self.question}: bonus part {self.part} for {self.team}: {self.points}"


@dataclass(frozen=True, slots=True)
class EntryUndone:
    level: ClassVar[int] = INFO
    text: str

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class BrowserPlayers:
    level: ClassVar[int] = INFO
    allowed: bool

    def describe(self) -> str:
        return f"host: browser players {'allowed' if self.allowed else 'refused'}"


@dataclass(frozen=True, slots=True)
class StorageChanged:
    saving: bool
    message: str

    @property
    def level(self) -> int:
        return INFO if self.saving else ERROR

    def describe(self) -> str:
        return f"storage: {self.message}"


@dataclass(frozen=True, slots=True)
class CentralChanged:
    """The link to the tournament's results database: up or down, and how much is waiting.

    ``delivered`` is how far the room's outbox is in the database; a push that changed only
    that is ``quiet`` (logged at debug level: one line per ruling would drown the log)."""

    connected: bool
    waiting: int  # matches with changes not yet sent
    delivered: int
    message: str
    quiet: bool = False

    @property
    def level(self) -> int:
        if self.quiet:
            return DEBUG
        return INFO if self.connected else WARNING

    def describe(self) -> str:
        return f"central: {self.message} (outbox sent up to {self.delivered})"


@dataclass(frozen=True, slots=True)
class Trouble:
    """Something went wrong that the hub carried on through; the text says what was lost."""

    level: ClassVar[int] = WARNING
    text: str

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Stopped:
    level: ClassVar[int] = INFO

    def describe(self) -> str:
        return "stopped"


HubEvent = (
    Listening
    | NodeJoined
    | TutorialJoined
    | TutorialJoins
    | WatcherJoined
    | Left
    | Refused
    | Synced
    | Armed
    | PressTaken
    | Decided
    | PhaseEntered
    | Commanded
    | CommandRefused
    | RulingGiven
    | FloorPassed
    | TimerRang
    | TeamSet
    | Scored
    | ScoresReset
    | MatchBegun
    | MatchOver
    | QuestionEnded
    | ReadToTheEnd
    | BonusPartScored
    | EntryUndone
    | BrowserPlayers
    | StorageChanged
    | CentralChanged
    | Trouble
    | Stopped
)
