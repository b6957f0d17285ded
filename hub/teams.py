"""Teams: who plays for whom, and the ranking seen team by team.

Pure helpers over the engine's player -> team mapping. The ranking of players is never changed by
teams (it is the fairness record); a team's place is the place of its best-ranked player.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hub.round import Outcome
from wire.messages import TeamPlaceView


def members(teams: Mapping[str, str]) -> dict[str, list[str]]:
    """Team name -> its player ids, both sorted, for a stable display."""
    grouped: dict[str, list[str]] = {}
    for player, team in sorted(teams.items()):
        grouped.setdefault(team, []).append(player)
    return dict(sorted(grouped.items()))


def team_ranking(
    ranked: Iterable[Outcome], teams: Mapping[str, str], names: Mapping[str, str]
) -> list[TeamPlaceView]:
    """One row per team that pressed, in order of its best-ranked player.

    ``behind_ns`` is measured from the winning team's press, like a player's delta.
    """
    rows: list[TeamPlaceView] = []
    seen: set[str] = set()
    first_ns: int | None = None
    for outcome in ranked:
        team = teams.get(outcome.press.player)
        if team is None or team in seen:
            continue
        seen.add(team)
        if first_ns is None:
            first_ns = outcome.press.rank_ns
        rows.append(
            TeamPlaceView(
                rank=len(rows) + 1,
                team=team,
                player=outcome.press.player,
                name=names.get(outcome.press.player, outcome.press.player),
                player_rank=outcome.rank,
                behind_ns=max(0, outcome.press.rank_ns - first_ns),
            )
        )
    return rows
