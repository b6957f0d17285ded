"""The journal: every input of the engine, kept in order, replayed into exactly the same state.

Replay after a restart, times shifted across reboots, each kind of entry in its text form, and
game play (rulings, team moves) replaying into the same game. The store that writes it is tested
in test_store.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import journal
from hub.formats import QUIZ_BOWL
from hub.journal import Call, RecordingEngine, Segment
from hub.match import (
    Award,
    ClearScores,
    EndMatch,
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
    GiveFloor,
    Press,
    PressIn,
    ReadQuestion,
    Reset,
    Right,
    Rules,
    Tick,
    Wrong,
)
from hub.views import history_view, round_view
from wire.codec import as_data
from wire.enums import Phase, ReboundMode

MS = 1_000_000
RULES = Rules(auto_arm_after_ns=50 * MS, lockout_ns=None)
GAME_RULES = Rules(one_buzz_per_team=True, answer_ns=5000 * MS, answer_warning_ns=1000 * MS)


ABSOLUTE = {"armed_ns", "release_ns", "decided_ns", "at_ns", "arrival_ns"}  # hub-clock instants


def picture(engine: RecordingEngine, shift: int = 0) -> str:
    """Everything a host could see, with hub instants moved back by ``shift``, as one string."""
    deadline = engine.next_deadline
    seen = [
        as_data(round_view(engine.current, engine.phase, {}, engine.teams)),
        [as_data(r) for r in history_view(engine.history, engine.current, {}, engine.teams)],
        None if deadline is None else deadline - shift,
    ]
    return json.dumps(_unshift(seen, shift), sort_keys=True)


def _unshift(value: object, shift: int) -> object:
    if isinstance(value, dict):
        return {
            k: v - shift if k in ABSOLUTE and isinstance(v, int) else _unshift(v, shift)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_unshift(v, shift) for v in value]
    return value


# A random session: arms, presses from a few players (some re-sent), ticks, resets, closes.
steps = st.lists(
    st.tuples(
        st.sampled_from(
            ["arm", "press", "press", "press", "resend", "tick", "reset", "close", "claimed"]
        ),
        st.integers(0, 3),  # player
        st.integers(0, 30 * MS),  # time step
        st.integers(-5 * MS, 5 * MS),  # press stamped this far from arrival
    ),
    max_size=60,
)


def drive(engine: RecordingEngine, plan: list[tuple[str, int, int, int]]) -> None:
    now = 1_000 * MS
    sent: list[PressIn] = []
    for kind, player, step, skew in plan:
        now += step
        if kind == "arm":
            engine.arm(now)
        elif kind in ("press", "claimed") or (kind == "resend" and not sent):
            # "claimed": a press clamped by the hub, its claim 30 ms before its credible instant
            claim = now + skew - 30 * MS if kind == "claimed" else None
            press = PressIn(
                f"p{player}",
                f"p{player}-{len(sent)}",
                now + skew,
                now,
                1 * MS,
                claimed_ns=claim,
                by_arrival=claim is not None,
            )
            sent.append(press)
            # Every other press handled while frames read 1.5 ms before it still waited.
            engine.press(press, now, 2 * MS, settled_ns=now - 1_500_000 if player % 2 else None)
        elif kind == "resend":
            engine.press(sent[player % len(sent)], now, 2 * MS)
        elif kind == "tick":
            engine.tick(now)
        elif kind == "reset":
            engine.reset(now)
        else:
            engine.close(now)


@given(steps)
@settings(max_examples=150, deadline=None)
def test_replaying_the_journal_restores_the_exact_state(plan) -> None:
    live = RecordingEngine(RULES)
    drive(live, plan)
    calls = live.take_calls()
    restored, _ = journal.replay(RULES, ((None, c) for c in calls))
    assert picture(restored) == picture(live)
    # ...and the restored engine goes on exactly like the live one would have.
    follow = [("press", 0, 1 * MS, 0), ("tick", 0, 40 * MS, 0), ("press", 1, 1 * MS, -MS)]
    drive(live, follow)
    drive(restored, follow)
    assert picture(restored) == picture(live)


@given(steps, st.integers(-(10**12), 10**12))
@settings(max_examples=100, deadline=None)
def test_shifting_every_input_time_shifts_the_state_and_changes_no_decision(plan, delta) -> None:
    live = RecordingEngine(RULES)
    drive(live, plan)
    calls = live.take_calls()
    moved, _ = journal.replay(RULES, ((None, c.shifted(delta)) for c in calls))
    assert picture(moved, delta) == picture(live)


@pytest.mark.parametrize("delta", [-(10**12), 10**12])
def test_a_press_held_for_frames_still_waiting_is_held_the_same_after_a_reboot(delta: int) -> None:
    """A press handled while frames read before its deadline still waited does not decide the
    round; replayed in another boot's clock, the instant it waited for moves with the rest."""
    live = RecordingEngine(RULES)
    live.arm(1_000 * MS)
    release = live.current.release_ns if live.current else 0
    made = release + 5 * MS
    held = live.press(PressIn("p0", "p0-1", made, made + MS, MS), made + 4 * MS, 2 * MS, made)
    assert held  # taken,
    assert live.phase is Phase.ARMED  # not decided: what was read before it still waits
    live.tick(made + 5 * MS)
    calls = live.take_calls()
    shifted = calls[1].shifted(delta).input
    assert isinstance(shifted, Press)
    assert shifted.settled_ns == made + delta
    moved, _ = journal.replay(RULES, ((None, c.shifted(delta)) for c in calls))
    assert picture(moved, delta) == picture(live)


@pytest.mark.parametrize("delta", [-(10**12), 10**12])
def test_a_clamped_claim_moves_with_the_clock_it_was_made_in(delta: int) -> None:
    """A clamped press keeps its claim (hub time) for the early and stale checks: after a reboot
    the claim moves with every other hub time, or a press refused as early would compete."""
    live = RecordingEngine(RULES)
    live.arm(1_000 * MS)
    release = live.current.release_ns if live.current else 0
    claimed = PressIn("p0", "p0-1", release + 5 * MS, release + 6 * MS, MS, claimed_ns=release - MS)
    live.press(claimed, release + 6 * MS, 2 * MS)
    live.tick(release + 200 * MS)
    calls = live.take_calls()
    moved, _ = journal.replay(RULES, ((None, c.shifted(delta)) for c in calls))
    assert picture(moved, delta) == picture(live)


def test_a_press_clamped_before_presses_were_ranked_by_arrival_replays_as_it_was_ranked() -> None:
    """A journal from a hub that ranked a clamped press at its earliest credible instant: its
    entry has no ``by_arrival``, and replayed, the press is ranked as it was then (ahead of a
    press made before it arrived), so what players were told and the rulings on it stand."""
    release = 1_000 * MS
    old = {  # the fields a press entry had then
        "player": "liar",
        "press_id": "l-1",
        "at_ns": release + 10 * MS,
        "arrival_ns": release + 60 * MS,
        "uncertainty_ns": 9 * MS,
        "raw_ns": 5,
        "synced": True,
        "claimed_ns": release + MS,
    }
    payload = json.dumps({"press": old, "horizon_ns": 10 * MS})
    entry = Call.load("press", release + 60 * MS, payload)
    assert isinstance(entry.input, Press)
    assert entry.input.press.by_arrival is False
    honest = PressIn("honest", "h-1", release + 30 * MS, release + 31 * MS, MS)
    calls = [
        Call(Arm(0), release),
        Call(Press(honest, 10 * MS), release + 31 * MS),
        entry,
        Call(Tick(), release + 500 * MS),
    ]

    def first_round(calls: list[Call]) -> list[str]:
        engine, _ = journal.replay(RULES, ((None, c) for c in calls))
        (record,) = [r for r in [*engine.history, engine.current] if r and r.number == 1]
        return [o.press.player for o in record.ranked]

    assert first_round(calls) == ["liar", "honest"]
    # The same press from this hub is ranked by its arrival.
    now = Press(dataclasses.replace(entry.input.press, by_arrival=True), 10 * MS)
    assert first_round([*calls[:2], Call(now, entry.now_ns), calls[3]]) == ["honest", "liar"]


def test_a_field_of_the_wrong_type_is_refused_for_every_kind_of_input() -> None:
    """A damaged row must be refused when it is read (and set aside), never replayed into a
    match whose result then fails to build."""
    damaged = {
        "award": '{"points": "5", "player": "a"}',
        "wager": '{"player": "a", "points": 100, "correct": "yes"}',
        "right": '{"points": 10, "power": 1}',
        "bonus": '{"points": null}',
        "value": '{"points": 2.5}',
        "floor": '{"player": 7}',
    }
    for kind, payload in damaged.items():
        with pytest.raises(ValueError, match="has the wrong type"):
            Call.load(kind, 5, payload)
    # Ranked by its arrival with no claim clamped: no hub writes that.
    unclaimed = '{"press": {"player": "a", "press_id": "a-1", "at_ns": 1, "arrival_ns": 2, '
    unclaimed += '"by_arrival": true}, "horizon_ns": 0}'
    with pytest.raises(ValueError, match="no claim was clamped"):
        Call.load("press", 5, unclaimed)
    # A field an older entry left out takes the input's default.
    assert Call.load("right", 5, '{"mode": null}').input == Right()


def test_journal_entries_survive_their_text_form() -> None:
    press = PressIn("a", "a-1", 10, 12, 3, raw_ns=-7, synced=False)
    inputs = (
        Press(press, 5),
        Arm(lead_ns=9),
        Arm(),
        Tick(),
        Reset(),
        Close(),
        Right(),
        Wrong(ReboundMode.NEXT),
        Wrong(),
        AssignTeam("a", "red"),
        AssignTeam("a", None),
        GiveFloor("a"),
        Press(dataclasses.replace(press, claimed_ns=4), 5),
        Press(dataclasses.replace(press, claimed_ns=4, by_arrival=True), 5),
        Press(press, 5, settled_ns=11),
        Right(15, power=True),
        Wrong(None, -5),
        ReadQuestion(),
        StartMatch(
            MatchSetup(
                3,
                "Final",
                QUIZ_BOWL,
                (TeamSetup("Red", (PlayerSetup("a", "Ann"),)), TeamSetup("Blue", ())),
                packet="Packet 7",
            )
        ),
        EndMatch(),
        Award(5, "a", "Red", "protest"),
        Award(-5, team="Blue"),
        ScoreBonus(10),
        Undo(),
        ClearScores(),
        SetValue(400),
        Wager("a", 1000, correct=False, team="Red"),
    )
    assert {step.KIND for step in inputs} == set(journal.INPUTS)  # every kind of input
    for step in inputs:
        call = Call(step, 12)
        assert Call.load(call.kind, call.now_ns, call.payload()) == call
    # Entries written before inputs were types: optional fields left out
    assert Call.load("arm", 3, "{}") == Call(Arm(), 3)
    assert Call.load("wrong", 3, '{"mode":"next"}') == Call(Wrong(ReboundMode.NEXT), 3)
    with pytest.raises(ValueError, match="unknown journal entry"):
        Call.load("explode", 1, "{}")


def test_a_tick_that_rearms_is_journalled_once_not_as_tick_and_arm() -> None:
    engine = RecordingEngine(RULES)
    engine.arm(0)
    engine.press(PressIn("a", "1", 5, 5), 5, 0)
    engine.tick(10**9)  # decided at the press; this tick re-arms
    kinds = [c.kind for c in engine.take_calls()]
    assert kinds == ["arm", "press", "tick"]
    assert engine.number == 2


def test_segments_in_one_boot_need_no_shift() -> None:
    segments = [Segment(1, "b1", 100, RULES, 500), Segment(2, "b1", 900, RULES, 1200)]
    assert journal.segment_shifts(segments, "b1", 5000) == {1: 0, 2: 0}


def test_after_a_reboot_old_times_continue_just_before_now() -> None:
    # Boot b1 ran until 1200; the machine rebooted; b2 started at 50 and ran until 80; now b3.
    segments = [
        Segment(1, "b1", 100, RULES, 500),
        Segment(2, "b1", 900, RULES, 1200),
        Segment(3, "b2", 50, RULES, 80),
    ]
    shifts = journal.segment_shifts(segments, "b3", 10)
    assert 1200 + shifts[2] == 80 + shifts[3] - 30  # b2's start follows b1's end at once
    assert 80 + shifts[3] == 10  # the last recorded moment maps to now: downtime counts as zero
    assert shifts[1] == shifts[2]


# --- game play ---


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
    engine.assign_team("cat", "green", 0)  # still in when red and blue are out
    engine.arm(10 * MS)
    for offset, player in enumerate(("ann", "bob", "amy")):
        at = (100 + offset) * MS
        engine.press(PressIn(player, f"{player}-1", at, at), at, 10 * MS)
    engine.tick(110 * MS)
    engine.wrong(500 * MS, ReboundMode.NEXT)  # bob is offered it (amy's team is out)
    engine.tick(1600 * MS)  # the answer warning for bob fires
    engine.wrong(2000 * MS)  # the rules' rebound: re-arm without red and bob


def test_rulings_and_team_moves_are_journalled_and_replay_exactly() -> None:
    live = RecordingEngine(GAME_RULES)
    play(live)
    calls = live.take_calls()
    kinds = [call.kind for call in calls]
    # the re-arm inside the second wrong is not journalled on its own: replay repeats it
    setup = ["team", "team", "team", "team", "arm", "press", "press", "press", "tick"]
    assert kinds == [*setup, "wrong", "tick", "wrong"]
    stored = [Call.load(c.kind, c.now_ns, c.payload()) for c in calls]
    assert stored == calls
    restored, _ = journal.replay(GAME_RULES, ((None, call) for call in stored))
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
