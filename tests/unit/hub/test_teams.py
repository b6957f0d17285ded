"""Team views and the game picture: members, per-team ranking, team columns, state.game."""

from __future__ import annotations

import dataclasses

from hub.formats import free_play
from hub.match import Award, MatchEngine
from hub.round import Outcome, PressIn, Rules
from hub.teams import members, team_ranking
from hub.views import game_view
from wire.enums import ReboundMode
from wire.messages import (
    AnsweringView,
    MemberView,
    OutView,
    PlayerScoreView,
    RulingPointsView,
    TeamView,
)

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
    assert [(r.rank, r.team, r.player, r.player_rank) for r in rows] == [
        (1, "red", "ann", 1),
        (2, "blue", "bob", 3),
    ]
    assert rows[1].behind_ns == 7 * MS
    assert rows[1].name == "Bob"


def test_a_team_placed_by_a_clamped_press_is_timed_from_its_arrival() -> None:
    """As its player is ranked: a clamped press counts as made when it reached the hub."""
    clamped = PressIn("ann", "ann-p", 90 * MS, 104 * MS, 20 * MS, claimed_ns=71 * MS)
    outcomes = [
        Outcome(1, dataclasses.replace(clamped, by_arrival=True), rank=1),
        *ranked(("x", 0), ("bob", 107))[1:],
    ]
    rows = team_ranking(outcomes, {"ann": "red", "bob": "blue"}, {})
    assert rows[1].behind_ns == 3 * MS


def test_members_are_grouped_and_sorted() -> None:
    assert members({"b": "red", "a": "red", "c": "blue"}) == {"blue": ["c"], "red": ["a", "b"]}


def test_game_view_carries_the_floor_timers_teams_and_scores() -> None:
    engine = MatchEngine(Rules(answer_ns=5000 * MS, answer_warning_ns=1000 * MS))
    engine.assign_team("ann", "red", 0)
    engine.arm(0)
    now = 100 * MS
    engine.press(PressIn("ann", "a1", now, now), now)
    engine.press(PressIn("bob", "b1", now + MS, now + MS), now + MS)
    engine.apply(Award(10, "ann", "red"), now)
    points = RulingPointsView(right=10, power=None, wrong=-5)
    free = free_play(10, -5)
    view = game_view(engine, {"ann": "Ann"}, points, 3, None, free)
    assert view.answering == AnsweringView(player="ann", name="Ann", team="red", since_ns=now)
    assert (view.answer_warning_ns, view.answer_deadline_ns) == (4100 * MS, 5100 * MS)
    assert view.teams == [
        TeamView(team="red", members=[MemberView(id="ann", name="Ann")], points=10)
    ]
    assert view.team_ranking[0].team == "red"
    assert view.scores.players == [PlayerScoreView(id="ann", name="Ann", team="red", points=10)]
    assert view.rules.points_wrong == -5
    engine.wrong(200 * MS, ReboundMode.NEXT)
    view = game_view(engine, {}, points, 4, None, free)
    assert view.answering is not None
    assert view.answering.player == "bob"
    assert view.out == OutView(players=["ann"], teams=[])
    assert view.applied == 4
