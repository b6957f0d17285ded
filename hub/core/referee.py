"""The game around the round engine: the host's commands, rulings and their points, teams.

The engine decides who was first; the referee applies what a host says (arm, reset, close, right,
wrong, score, team, clear scores), awards the points a ruling carries, and keeps count of the
commands it applied so a controller can see its command took effect. Every engine input it gives
is collected for the journal. A command that cannot apply now comes back as a refusal for the
host who sent it, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from hub.config import GameSection
from hub.core.events import HubEvent, Scored, ScoresReset, Trouble
from hub.core.outputs import Record, ScoreEntry, ScoresCleared
from hub.journal import Call, RecordingEngine
from hub.round import (
    Arm,
    AssignTeam,
    Close,
    EngineInput,
    Event,
    GiveFloor,
    Reset,
    Right,
    Ruled,
    Wrong,
)
from hub.scores import Scoreboard, ScoreError
from wire import messages as msg
from wire.codec import ProtocolError
from wire.enums import ErrorCode


@dataclass(frozen=True, slots=True)
class Ruling:
    """A ruling the engine made, with the points the host gave for it."""

    ruled: Ruled
    points: int


@dataclass
class Step:
    """What one input changed: events to announce, inputs to journal, entries to save."""

    events: list[Event] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    rulings: list[Ruling] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    notes: list[HubEvent] = field(default_factory=list)
    refusal: ProtocolError | None = None


class Referee:
    def __init__(self, engine: RecordingEngine, scores: Scoreboard, game: GameSection) -> None:
        self.engine = engine
        self.scores = scores
        self.game = game
        self.applied = 0  # game commands applied since start: a controller waits for this to grow

    def feed(self, step: EngineInput, now: int, into: Step | None = None) -> Step:
        """Give the engine one input; collect its events and the input for the journal."""
        into = into or Step()
        events = self.engine.apply(step, now)
        calls = self.engine.take_calls()
        if events:  # an input that changed nothing need not be replayed
            into.events.extend(events)
            into.calls.extend(calls)
        return into

    def command(self, message: msg.RoundCommand | msg.GameCommand, now: int) -> Step:
        """A host's command. Exhaustive: a new command type fails type checking until handled."""
        match message:
            case msg.Arm():
                return self.feed(Arm(), now)
            case msg.Reset():
                return self.feed(Reset(), now)
            case msg.CloseRound():
                return self.feed(Close(), now)
            case msg.Right() | msg.Wrong():
                return self._rule(message, now)
            case msg.Score():
                return self._score(message, now)
            case msg.SetTeam():
                self.applied += 1
                return self.feed(AssignTeam(message.player, message.team), now)
            case msg.ClearScores():
                self.scores.clear()
                self.applied += 1
                return Step(records=[ScoresCleared()], notes=[ScoresReset()])
            case msg.Floor():
                step = self.feed(GiveFloor(message.player), now)
                if not step.events:
                    step.refusal = ProtocolError(
                        ErrorCode.NOTHING_TO_RULE,
                        f"'floor': {message.player} is not ranked in a decided round, or is out "
                        "of this question",
                    )
                else:
                    self.applied += 1
                return step
            case _:
                assert_never(message)

    def place(self, player: str, team: str | None, now: int, into: Step) -> None:
        """Put a player in a team unless the config or a host already placed them."""
        if team is not None and player not in self.engine.teams:
            self.feed(AssignTeam(player, team), now, into)

    def place_config_teams(self, now: int) -> Step:
        """The config's teams, for players the journal has not placed (a host's move stands)."""
        step = Step()
        for player, team in self.game.team_of().items():
            self.place(player, team, now, step)
        return step

    def _rule(self, message: msg.Right | msg.Wrong, now: int) -> Step:
        if isinstance(message, msg.Wrong):
            step = self.feed(Wrong(message.mode), now)
            default = self.game.points_wrong
        else:
            step = self.feed(Right(), now)
            default = self.game.points_right
        if not step.events:
            step.refusal = ProtocolError(
                ErrorCode.NOTHING_TO_RULE,
                f"'{message.TYPE}': nobody has the floor; arm and wait for a buzz",
            )
            return step
        points = default if message.points is None else message.points
        for event in step.events:
            if isinstance(event, Ruled):
                reason = "right" if event.correct else "wrong"
                given = self._award(step, points, now, event, reason)
                step.rulings.append(Ruling(event, points if given else 0))
        self.applied += 1
        return step

    def _score(self, message: msg.Score, now: int) -> Step:
        if (message.player is None) == (message.team is None):
            problem = "'score' needs a 'player' or a 'team', not both"
            return Step(refusal=ProtocolError(ErrorCode.BAD_FIELD, problem))
        team = message.team
        if message.player is not None:
            team = self.engine.teams.get(message.player)
        step = Step()
        try:
            self.scores.award(
                message.points, now, player=message.player, team=team, reason=message.reason or ""
            )
        except ScoreError as exc:
            return Step(refusal=ProtocolError(ErrorCode.BAD_FIELD, f"'score': {exc}"))
        step.records.append(
            ScoreEntry(
                message.points, message.player, team, message.reason or "", self.engine.number
            )
        )
        step.notes.append(Scored(message.points, message.player, team))
        self.applied += 1
        return step

    def _award(self, step: Step, points: int, now: int, ruled: Ruled, reason: str) -> bool:
        """A ruling's points, saved with it; a full board must not stop the game."""
        if not points:
            return False
        try:
            self.scores.award(points, now, player=ruled.player, team=ruled.team, reason=reason)
        except ScoreError as exc:
            step.notes.append(Trouble(f"points for {ruled.player} not recorded: {exc}"))
            return False
        step.records.append(ScoreEntry(points, ruled.player, ruled.team, reason, ruled.round))
        return True
