"""The scoreboard: awards, deductions, team totals, and a snapshot that restores exactly."""

from __future__ import annotations

import json

import pytest

from hub.scores import MAX_POINTS, Scoreboard, ScoreError


def test_player_awards_count_for_their_team_at_the_time() -> None:
    board = Scoreboard()
    board.award(10, 100, player="ann", team="red")
    board.award(-5, 200, player="bob", team="blue")
    board.award(20, 300, team="blue", reason="bonus")
    board.award(10, 400, player="ann", team="blue")  # ann moved to blue
    assert board.player_totals() == {"ann": 20, "bob": -5}
    assert board.team_totals() == {"red": 10, "blue": 25}


def test_totals_are_ranked_highest_first_with_ties_by_name() -> None:
    board = Scoreboard()
    board.award(10, 1, player="zed")
    board.award(10, 2, player="amy")
    board.award(30, 3, player="max")
    assert [player for player, _ in Scoreboard.ranked(board.player_totals())] == [
        "max",
        "amy",
        "zed",
    ]
    assert len(board.entries) == 3


def test_snapshot_round_trips_through_json() -> None:
    board = Scoreboard()
    board.award(10, 100, player="ann", team="red", reason="right")
    board.award(5, 200, team="red")
    copy = Scoreboard.restore(json.loads(json.dumps(board.snapshot())))
    assert copy.entries == board.entries
    assert copy.team_totals() == {"red": 15}


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"version": 2, "entries": []},
        {"version": 1, "entries": [{"points": 1}]},
        {"version": 1, "entries": [{"at_ns": 1, "points": 1}]},  # nobody to award
        {"version": 1, "entries": [{"at_ns": 1, "points": 1, "player": "a", "x": 1}]},
    ],
)
def test_malformed_snapshots_are_refused(snapshot: dict[str, object]) -> None:
    with pytest.raises(ScoreError):
        Scoreboard.restore(snapshot)


def test_bad_awards_are_refused_and_leave_the_board_alone() -> None:
    board = Scoreboard()
    with pytest.raises(ScoreError):
        board.award(10, 1)
    with pytest.raises(ScoreError):
        board.award(MAX_POINTS + 1, 1, player="ann")
    with pytest.raises(ScoreError):
        board.award(True, 1, player="ann")
    assert board.entries == []


def test_clear_starts_a_new_game() -> None:
    board = Scoreboard()
    board.award(10, 1, player="ann", team="red")
    board.clear()
    assert board.player_totals() == {}
    assert board.team_totals() == {}
