"""The host's commands: what each changes, what it saves, and refusals that change nothing."""

from __future__ import annotations

from hub.config import GameSection
from hub.core.referee import Referee
from hub.journal import RecordingEngine
from hub.match import Award
from hub.round import PressIn, Rules, Wrong
from wire import messages as msg
from wire.enums import ErrorCode, Phase

MS = 1_000_000


def referee() -> Referee:
    return Referee(RecordingEngine(Rules()), GameSection(points_right=10, points_wrong=-5))


def test_round_commands_reach_the_engine_and_are_journalled() -> None:
    ref = referee()
    step = ref.command(msg.Arm(), 0)
    assert ref.engine.phase is Phase.ARMED
    assert [call.kind for call in step.calls] == ["arm"]
    assert [call.kind for call in ref.command(msg.CloseRound(), MS).calls] == ["close"]
    assert [call.kind for call in ref.command(msg.Reset(), 2 * MS).calls] == ["reset"]
    assert ref.command(msg.Reset(), 3 * MS).calls == []  # nothing changed: nothing to replay
    assert ref.applied == 0  # round commands are not game commands


def test_a_ruling_journals_the_points_it_gives() -> None:
    ref = referee()
    ref.command(msg.Arm(), 0)
    ref.engine.press(PressIn("ann", "a1", 10 * MS, 10 * MS), 10 * MS)
    ref.engine.take_calls()
    step = ref.command(msg.Wrong(), 20 * MS)
    assert [(r.ruled.player, r.ruled.correct, r.points) for r in step.rulings] == [
        ("ann", False, -5)
    ]
    assert [call.input for call in step.calls] == [Wrong(None, -5)]
    assert ref.engine.number == 2
    assert ref.scores.player_totals() == {"ann": -5}
    assert ref.applied == 1


def test_refusals_change_nothing() -> None:
    ref = referee()
    nobody = ref.command(msg.Right(ref="q1"), 0)
    assert nobody.refusal is not None
    assert nobody.refusal.code is ErrorCode.NOTHING_TO_RULE
    both = ref.command(msg.Score(points=5, player="ann", team="red"), 0)
    assert both.refusal is not None
    assert both.refusal.code is ErrorCode.BAD_FIELD
    assert ref.applied == 0
    assert ref.scores.entries == []


def test_scores_teams_and_a_new_game() -> None:
    ref = referee()
    ref.command(msg.SetTeam(player="ann", team="red"), 0)
    step = ref.command(msg.Score(points=3, player="ann", reason="bonus"), 0)
    assert [call.input for call in step.calls] == [Award(3, "ann", "red", "bonus")]
    assert ref.scores.team_totals() == {"red": 3}
    cleared = ref.command(msg.ClearScores(), 0)
    assert [call.kind for call in cleared.calls] == ["clear"]
    assert ref.scores.entries == []
    assert ref.applied == 3
