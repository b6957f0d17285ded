"""The game around the round engine: the host's commands, the points they carry, teams, matches.

The engine decides who was first and keeps the game log; the referee turns what a host says (arm,
rule, score, start a match, undo, ...) into engine inputs, after checking that it makes sense now.
It resolves a ruling's points (a neg before the end of the question, no penalty after it, the
clue's value, a power) so that the journal holds the points actually given, and it refuses, with
one line a host can act on, what would throw away a floor, add points with a wrong answer, or
score a player or team nobody knows. A refused command changes nothing. Every engine input it
gives is collected for the journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import assert_never

from hub.config import GameSection, MatchSection
from hub.core.events import HubEvent
from hub.formats import FORMATS, Format, free_play
from hub.journal import Call, RecordingEngine
from hub.match import (
    Award,
    ClearScores,
    EndMatch,
    GameInput,
    MatchSetup,
    PlayerSetup,
    ScoreBonus,
    SetValue,
    StartMatch,
    TeamSetup,
    Undo,
    Wager,
)
from hub.round import (
    Arm,
    AssignTeam,
    Close,
    Event,
    GiveFloor,
    ReadQuestion,
    Reset,
    Right,
    Ruled,
    Wrong,
)
from hub.scores import MAX_ENTRIES, Scoreboard
from wire import messages as msg
from wire.codec import ProtocolError
from wire.enums import ErrorCode, Phase

#: Names listed in a refusal before "and N more": the line must stay one line.
LISTED_NAMES = 12


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
    notes: list[HubEvent] = field(default_factory=list)
    refusal: ProtocolError | None = None


def team_key(name: str) -> str:
    """How team names are compared: "table 6", "Table 6" and " TABLE  6 " are one team."""
    return " ".join(name.split()).casefold()


def listed(names: Iterable[str]) -> str:
    """Names for a one-line message, the first dozen and a count of the rest."""
    ordered = sorted(set(names))
    if not ordered:
        return "none yet"
    shown = ", ".join(ordered[:LISTED_NAMES])
    more = len(ordered) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


class Referee:
    def __init__(
        self,
        engine: RecordingEngine,
        game: GameSection,
        match: MatchSection | None = None,
        last_match: int = 0,
    ) -> None:
        self.engine = engine
        self.game = game
        self.timers = match or MatchSection()
        self.free = free_play(game.points_right, game.points_wrong)
        self.applied = 0  # game commands applied since start: a controller waits for this to grow
        self.last_match = max(last_match, engine.match.number if engine.match else 0)

    @property
    def scores(self) -> Scoreboard:
        return self.engine.scores

    @property
    def format(self) -> Format:
        """The rules of points now: the match's format, or free play's."""
        return self.engine.format or self.free

    def feed(self, step: GameInput, now: int, into: Step | None = None) -> Step:
        """Give the engine one input; collect its events and the input for the journal."""
        into = into or Step()
        events = self.engine.apply(step, now)
        calls = self.engine.take_calls()
        if events:  # an input that changed nothing need not be replayed
            into.events.extend(events)
            into.calls.extend(calls)
        return into

    def command(
        self, message: msg.HostCommand, now: int, known: Mapping[str, str] | None = None
    ) -> Step:
        """A host's command; ``known``: the players the hub knows (id -> name). Exhaustive: a
        new command type fails type checking until it is handled here."""
        players = dict(known or {})
        match message:
            case msg.Arm():
                return self._arm(message, now)
            case msg.Reset():
                return self.feed(Reset(), now)
            case msg.CloseRound():
                return self.feed(Close(), now)
            case msg.Right() | msg.Wrong():
                return self._rule(message, now)
            case msg.Score():
                return self._score(message, now, players)
            case msg.SetTeam():
                return self._set_team(message, now)
            case msg.ClearScores():
                if self.engine.match is not None:
                    return _refuse(ErrorCode.NOT_NOW, "a match is on: end it to start afresh")
                return self._applied(self.feed(ClearScores(), now))
            case msg.MatchStart():
                return self._start_match(message, now, players)
            case msg.MatchEnd():
                return self._end_match(now)
            case msg.Read():
                return self._read(now)
            case msg.BonusPart():
                return self._bonus(message, now)
            case msg.Undo():
                if self.engine.last_entry() is None:
                    return _refuse(ErrorCode.NOT_NOW, "'undo': nothing to take back")
                return self._applied(self.feed(Undo(), now))
            case msg.ClueValue():
                if message.points <= 0:
                    return _refuse(ErrorCode.BAD_FIELD, "'value': a clue is worth more than 0")
                return self._applied(self.feed(SetValue(message.points), now))
            case msg.Wager():
                return self._wager(message, now, players)
            case msg.Floor():
                step = self.feed(GiveFloor(message.player), now)
                if not step.events:
                    return _refuse(
                        ErrorCode.NOTHING_TO_RULE,
                        f"'floor': {message.player} is not ranked in a decided round, or is out "
                        "of this question",
                    )
                return self._applied(step)
            case msg.Players():
                raise AssertionError("the hub core handles 'players' itself")
            case _:
                assert_never(message)

    def place(self, player: str, team: str | None, now: int, into: Step) -> None:
        """Put a player in a team unless the config, a host or a match already placed them.

        A team name that matches a known team but for case and spacing joins that team. During
        a match nobody joins a team this way: its teams are fixed, and a station's own idea of
        its team must not put a new team (or a new player) on the big screen."""
        if team is None or player in self.engine.teams or self.engine.match is not None:
            return
        name = self._known_team(team) or " ".join(team.split())
        self.feed(AssignTeam(player, name), now, into)

    def place_config_teams(self, now: int, into: Step | None = None) -> Step:
        """The config's teams, for players the journal has not placed (a host's move stands)."""
        step = into or Step()
        for player, team in self.game.team_of().items():
            self.place(player, team, now, step)
        return step

    # --- round and rulings ---

    def _arm(self, message: msg.Arm, now: int) -> Step:
        """In a match, the next question may not throw away a floor or an unscored bonus
        unless the host says so (``force``): the console asks first."""
        engine = self.engine
        if engine.match is not None and not message.force:
            floor = engine.floor()
            if floor is not None and floor[0] is not None:
                return _refuse(
                    ErrorCode.NOT_NOW,
                    f"{engine.match.names().get(floor[0], floor[0])} has the floor: rule the "
                    "answer first (or arm with force to move on without a ruling)",
                )
            bonus = engine.open_bonus()
            if bonus is not None:
                return _refuse(
                    ErrorCode.NOT_NOW,
                    f"the bonus for {bonus.team} is at part {bonus.answered + 1} of "
                    f"{bonus.parts}: score it first (or arm with force: parts left count 0)",
                )
        return self.feed(Arm(), now)

    def _rule(self, message: msg.Right | msg.Wrong, now: int) -> Step:
        engine = self.engine
        floor = engine.floor()
        held = floor is not None and floor[0] is not None
        rebound_only = isinstance(message, msg.Wrong) and engine.phase is Phase.DECIDED
        if not held and not rebound_only:
            return _refuse(
                ErrorCode.NOTHING_TO_RULE,
                f"'{message.TYPE}': nobody has the floor; arm and wait for a buzz",
            )
        fmt = self.format
        value = engine.value if fmt.values else None
        if isinstance(message, msg.Right):
            power = bool(message.power)
            if power and fmt.power is None:
                return _refuse(ErrorCode.NOT_NOW, f"'right': {fmt.title} has no powers")
            if power and engine.read_ns is not None and not engine.interrupted():
                return _refuse(
                    ErrorCode.NOT_NOW,
                    "'right': a power needs a buzz before the end of the question",
                )
            points = message.points
            if points is not None and points < 0:
                return _refuse(
                    ErrorCode.BAD_FIELD,
                    "'right': a right answer cannot take points away; use 'wrong' or 'score'",
                )
            if points is None:
                points = fmt.power if power and fmt.power is not None else value or fmt.tossup
            step = self.feed(Right(points, power), now)
        else:
            points = message.points
            if points is not None and points > 0:
                return _refuse(
                    ErrorCode.BAD_FIELD,
                    "'wrong': a wrong answer cannot give points; use 'right' or 'score'",
                )
            if points is None:
                points = self.wrong_points()
            step = self.feed(Wrong(message.mode, points), now)
        if not step.events:
            return _refuse(
                ErrorCode.NOTHING_TO_RULE,
                f"'{message.TYPE}': nobody has the floor; arm and wait for a buzz",
            )
        for event in step.events:
            if isinstance(event, Ruled):
                step.rulings.append(Ruling(event, points))
        return self._applied(step)

    def wrong_points(self) -> int:
        """What a wrong answer costs now: the clue's value; a neg while the question is being
        read (the buzz came before its end); nothing after."""
        fmt = self.format
        if fmt.values:
            return -(self.engine.value or fmt.tossup)
        return fmt.neg if self.engine.interrupted() else fmt.wrong

    def defaults(self) -> msg.RulingPointsView:
        """What Right, Power and Wrong give now, for the console's buttons."""
        engine = self.engine
        fmt = self.format
        if engine.floor() is None or engine.floor_outcome() is None:
            return msg.RulingPointsView(right=None, power=None, wrong=None)
        value = engine.value if fmt.values else None
        power = fmt.power if engine.read_ns is None or engine.interrupted() else None
        return msg.RulingPointsView(
            right=value or fmt.tossup, power=power, wrong=self.wrong_points()
        )

    def _read(self, now: int) -> Step:
        engine = self.engine
        if engine.open_bonus() is not None:
            return self._applied(self.feed(ReadQuestion(), now))
        if engine.question == 0:
            return _refuse(ErrorCode.NOT_NOW, "'read': no question yet; arm to start one")
        if engine.read_ns is not None:
            return _refuse(ErrorCode.NOT_NOW, "'read': this question was already read")
        return self._applied(self.feed(ReadQuestion(), now))

    def _bonus(self, message: msg.BonusPart, now: int) -> Step:
        bonus = self.engine.open_bonus()
        if bonus is None:
            return _refuse(ErrorCode.NOT_NOW, "'bonus': no bonus is being played")
        if not 0 <= message.points <= bonus.part_value:
            return _refuse(
                ErrorCode.BAD_FIELD,
                f"'bonus': a part is worth 0 to {bonus.part_value} points",
            )
        return self._applied(self.feed(ScoreBonus(message.points), now))

    # --- scores and teams ---

    def _score(self, message: msg.Score, now: int, known: Mapping[str, str]) -> Step:
        if (message.player is None) == (message.team is None):
            return _refuse(ErrorCode.BAD_FIELD, "'score' needs a 'player' or a 'team', not both")
        if len(self.scores.entries) >= MAX_ENTRIES:
            return _refuse(ErrorCode.NOT_NOW, "'score': the scoreboard is full; start a new game")
        team = None
        if message.player is not None:
            players = self._players(known)
            if message.player not in players:
                return _refuse(
                    ErrorCode.UNKNOWN_NAME,
                    f"'score': no player {message.player!r}; players: {listed(players)}",
                )
            team = self.engine.teams.get(message.player)
        else:
            assert message.team is not None
            team = self._known_team(message.team)
            if team is None:
                return _refuse(
                    ErrorCode.UNKNOWN_NAME,
                    f"'score': no team {message.team!r}; teams: {listed(self._teams())}",
                )
        award = Award(message.points, message.player, team, message.reason or "")
        return self._applied(self.feed(award, now))

    def _set_team(self, message: msg.SetTeam, now: int) -> Step:
        team = message.team
        if team is not None:
            known = self._known_team(team)
            if known is None and self.engine.match is not None:
                teams = listed(t.name for t in self.engine.match.teams)
                return _refuse(
                    ErrorCode.UNKNOWN_NAME,
                    f"'team': no team {team!r} in this match; teams: {teams}",
                )
            team = known or " ".join(team.split())
        return self._applied(self.feed(AssignTeam(message.player, team), now))

    def _known_team(self, name: str) -> str | None:
        """The known team this name means (case and spacing aside), if any."""
        return {team_key(team): team for team in self._teams()}.get(team_key(name))

    def _teams(self) -> set[str]:
        engine = self.engine
        if engine.match is not None:
            return {team.name for team in engine.match.teams}
        return {
            *engine.teams.values(),
            *self.game.teams,
            *self.scores.team_totals(),
        }

    def _players(self, known: Mapping[str, str]) -> set[str]:
        return {*known, *self.engine.teams}

    # --- matches ---

    def _start_match(self, message: msg.MatchStart, now: int, known: Mapping[str, str]) -> Step:
        engine = self.engine
        if engine.match is not None:
            return _refuse(
                ErrorCode.NOT_NOW,
                f"match {engine.match.number} ({engine.match.name}) is on: end it first",
            )
        base = FORMATS.get(message.format)
        if base is None:
            return _refuse(
                ErrorCode.BAD_FIELD,
                f"'match_start': no format {message.format!r}; formats: {listed(FORMATS)}",
            )
        problem = _check_teams(message.teams)
        if problem is not None:
            return _refuse(ErrorCode.BAD_FIELD, f"'match_start': {problem}")
        fmt = base.with_timers(self.timers.tossup_time_s, self.timers.bonus_time_s)
        teams = tuple(
            TeamSetup(
                " ".join(team.name.split()),
                tuple(PlayerSetup(p.id, p.name or known.get(p.id) or p.id) for p in team.players),
            )
            for team in message.teams
        )
        number = self.last_match + 1
        setup = MatchSetup(number, message.name, fmt, teams, message.packet)
        step = self.feed(StartMatch(setup), now)
        self.last_match = number
        return self._applied(step)

    def _end_match(self, now: int) -> Step:
        if self.engine.match is None:
            return _refuse(ErrorCode.NOT_NOW, "'match_end': no match is on")
        step = self.feed(EndMatch(), now)
        self.place_config_teams(now, step)  # free play again, with the teams of the config
        return self._applied(step)

    def _wager(self, message: msg.Wager, now: int, known: Mapping[str, str]) -> Step:
        engine = self.engine
        if not self.format.wagers:
            return _refuse(ErrorCode.NOT_NOW, f"'wager': {self.format.title} has no wagers")
        if engine.phase in (Phase.ARMED, Phase.DECIDED) or engine.open_bonus() is not None:
            return _refuse(
                ErrorCode.NOT_NOW,
                "'wager': finish the question being played first (rule it, or close the round)",
            )
        players = self._players(known)
        if message.player not in players:
            return _refuse(
                ErrorCode.UNKNOWN_NAME,
                f"'wager': no player {message.player!r}; players: {listed(players)}",
            )
        if message.points <= 0:
            return _refuse(ErrorCode.BAD_FIELD, "'wager': a wager is more than 0 points")
        team = engine.teams.get(message.player)
        wager = Wager(message.player, message.points, message.correct, team)
        return self._applied(self.feed(wager, now))

    def _applied(self, step: Step) -> Step:
        self.applied += 1
        return step


def _refuse(code: ErrorCode, text: str) -> Step:
    return Step(refusal=ProtocolError(code, text))


def _check_teams(teams: list[msg.TeamEntry]) -> str | None:
    """Why a match's teams cannot be played, if they cannot."""
    if not teams:
        return "a match needs at least one team"
    names: set[str] = set()
    players: set[str] = set()
    for team in teams:
        key = team_key(team.name)
        if key in names:
            return f"two teams are called {team.name!r}"
        names.add(key)
        if not team.players:
            return f"team {team.name!r} has no players"
        for player in team.players:
            if player.id in players:
                return f"player {player.id!r} is in two teams"
            players.add(player.id)
    return None
