"""A tournament's standings from its matches' results: pure, so that the page, the exports and
the tests compute them one way.

Only finished matches count. Teams are named as the tournament has them when a room typed a
name in other capitals or spacing (the hub compares team names that way too). Between two teams
the one with more points wins; equal points are a tie. A match of more than two teams counts as
one game against each other team in it. Rank: wins over games played (ties count half), then
points per game.

A player is a name in a team: a room's stations are the room's, so the same person may buzz
from another station in the next room, and a station from another person.

Per player: powers, tens and negs are the rulings (``power``, ``right``, ``neg``) the game log
kept and did not undo, as scoresheets count them; points are the player's own points in the
match result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wire.enums import AnswerKind
from wire.messages import MatchReport


@dataclass
class TeamStanding:
    team: str
    played: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    points: int = 0
    against: int = 0

    @property
    def ppg(self) -> float:
        return self.points / self.played if self.played else 0.0

    @property
    def share(self) -> float:
        """Wins over games, a tie counting half: what ranks teams first."""
        games = self.wins + self.losses + self.ties
        return (self.wins + self.ties / 2) / games if games else 0.0


@dataclass
class PlayerStanding:
    player: str  # the station id of their latest match
    name: str
    team: str
    games: int = 0
    powers: int = 0
    tens: int = 0
    negs: int = 0
    points: int = 0

    @property
    def ppg(self) -> float:
        return self.points / self.games if self.games else 0.0


@dataclass
class Standings:
    teams: list[TeamStanding] = field(default_factory=list)
    players: list[PlayerStanding] = field(default_factory=list)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def standings(reports: Iterable[MatchReport], known_teams: Sequence[str] = ()) -> Standings:
    """The standings of ``reports`` (finished matches); ``known_teams`` are listed even before
    they play, and give the spelling of a team's name."""
    spelling = {_key(name): name for name in known_teams}
    teams: dict[str, TeamStanding] = {key: TeamStanding(name) for key, name in spelling.items()}
    players: dict[tuple[str, str], PlayerStanding] = {}
    for report in reports:
        sides = [(_key(t.name), t) for t in report.teams]
        for key, team in sides:
            row = teams.setdefault(key, TeamStanding(spelling.get(key, team.name)))
            row.played += 1
            row.points += team.points
            for other_key, other in sides:
                if other_key == key:
                    continue
                row.against += other.points
                if team.points > other.points:
                    row.wins += 1
                elif team.points < other.points:
                    row.losses += 1
                else:
                    row.ties += 1
            for player in team.players:
                stats = players.setdefault(
                    (key, _key(player.name)), PlayerStanding(player.id, player.name, row.team)
                )
                stats.player = player.id
                stats.games += 1
                stats.points += player.points
        for question in report.questions:
            for answer in question.answers:
                if answer.undone or answer.team is None:
                    continue
                ruled = players.get((_key(answer.team), _key(answer.name)))
                if ruled is None:
                    continue
                if answer.kind is AnswerKind.POWER:
                    ruled.powers += 1
                elif answer.kind is AnswerKind.RIGHT:
                    ruled.tens += 1
                elif answer.kind is AnswerKind.NEG:
                    ruled.negs += 1
    ranked = sorted(teams.values(), key=lambda t: (-t.share, -t.ppg, t.team.casefold()))
    ranked_players = sorted(players.values(), key=lambda p: (-p.ppg, -p.points, p.name.casefold()))
    return Standings(ranked, ranked_players)
