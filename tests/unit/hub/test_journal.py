"""Game play in the journal: rulings and team moves replay into exactly the same game."""

from __future__ import annotations

from hub import journal
from hub.journal import Call, RecordingEngine
from hub.round import PressIn, Rules
from wire.enums import ReboundMode

MS = 1_000_000
RULES = Rules(one_buzz_per_team=True, answer_ns=5000 * MS, answer_warning_ns=1000 * MS)


def game_picture(engine: RecordingEngine) -> tuple[object, ...]:
    return (
        engine.number,
        engine.question,
        str(engine.phase),
        engine.floor(),
        engine.answer_times(),
        sorted(engine.out_players),
        sorted(engine.out_teams),
        dict(engine.teams),
        engine.release_for("amy"),
        engine.next_deadline,
    )


def play(engine: RecordingEngine) -> None:
    engine.assign_team("ann", "red", 0)
    engine.assign_team("amy", "red", 0)
    engine.assign_team("bob", "blue", 0)
    engine.arm(10 * MS)
    for offset, player in enumerate(("ann", "bob", "amy")):
        at = (100 + offset) * MS
        engine.press(PressIn(player, f"{player}-1", at, at), at, 10 * MS)
    engine.tick(110 * MS)
    engine.wrong(500 * MS, ReboundMode.NEXT)  # bob is offered it (amy's team is out)
    engine.tick(1600 * MS)  # the answer warning for bob fires
    engine.wrong(2000 * MS)  # the rules' rebound: re-arm without red and bob


def test_rulings_and_team_moves_are_journalled_and_replay_exactly() -> None:
    live = RecordingEngine(RULES)
    play(live)
    calls = live.take_calls()
    kinds = [call.kind for call in calls]
    # the re-arm inside the second wrong is not journalled on its own: replay repeats it
    setup = ["team", "team", "team", "arm", "press", "press", "press", "tick"]
    assert kinds == [*setup, "wrong", "tick", "wrong"]
    stored = [Call.load(c.kind, c.now_ns, c.payload()) for c in calls]
    assert stored == calls
    restored, _ = journal.replay(RULES, ((None, call) for call in stored))
    assert game_picture(restored) == game_picture(live)
    assert restored.out_players == {"ann", "bob"}
    assert restored.release_for("amy")[1] is True  # still locked out after the restore
    # and both go on the same way
    for engine in (live, restored):
        engine.press(PressIn("cat", "cat-1", 2200 * MS, 2200 * MS), 2200 * MS, 0)
        engine.right(2300 * MS)
    assert game_picture(restored) == game_picture(live)


def test_the_rules_with_game_settings_survive_their_text_form() -> None:
    rules = Rules(rebound=ReboundMode.NEXT, buzz_window_ns=7, answer_ns=5, one_buzz_per_team=True)
    again = journal.rules_from_json(journal.rules_json(rules))
    assert again == rules
    assert again.rebound is ReboundMode.NEXT
