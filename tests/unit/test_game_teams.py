"""Team views: members, the per-team ranking, and team columns on result rows."""

from __future__ import annotations

from hub.round import Outcome, PressIn
from hub.teams import members, team_ranking, with_teams

MS = 1_000_000


def ranked(*entries: tuple[str, int]) -> list[Outcome]:
    return [
        Outcome(1, PressIn(player, f"{player}-p", at_ms * MS, at_ms * MS), rank=rank)
        for rank, (player, at_ms) in enumerate(entries, start=1)
    ]


def test_team_ranking_takes_each_teams_best_player() -> None:
    outcomes = ranked(("ann", 100), ("amy", 103), ("bob", 107), ("solo", 108))
    teams = {"ann": "red", "amy": "red", "bob": "blue"}
    rows = team_ranking(outcomes, teams, {"bob": "Bob"})
    assert [(r["rank"], r["team"], r["player"], r["player_rank"]) for r in rows] == [
        (1, "red", "ann", 1),
        (2, "blue", "bob", 3),
    ]
    assert rows[1]["behind_ns"] == 7 * MS
    assert rows[1]["name"] == "Bob"


def test_members_are_grouped_and_sorted() -> None:
    assert members({"b": "red", "a": "red", "c": "blue"}) == {"blue": ["c"], "red": ["a", "b"]}


def test_result_rows_get_their_team() -> None:
    view = {"results": [{"player": "ann"}, {"player": "x"}], "refused": [{"player": "amy"}]}
    with_teams(view, {"ann": "red", "amy": "red"})
    assert [row["team"] for row in view["results"]] == ["red", None]
    assert view["refused"][0]["team"] == "red"
