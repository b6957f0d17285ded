"""Game rules of the pure round engine, driven with explicit timestamps (milliseconds as ns)."""

from __future__ import annotations

from dataclasses import replace

from hub.round import (
    Answer,
    Event,
    FloorChanged,
    PhaseChanged,
    PressIn,
    RoundEngine,
    Ruled,
    Rules,
    TeamChanged,
    TimerFired,
)
from wire.enums import Flag, Phase, ReboundMode, TimerKind, TimerStage

MS = 1_000_000
HORIZON = 10 * MS


def press(engine: RoundEngine, player: str, at_ms: int, now_ms: int | None = None) -> list[Event]:
    """A press stamped at ``at_ms`` arriving at ``now_ms`` (default: the same instant)."""
    now = (at_ms if now_ms is None else now_ms) * MS
    pressed = PressIn(player, f"{player}-{at_ms}", at_ms * MS, now)
    return engine.press(pressed, now, HORIZON)


def answers(events: list[Event]) -> dict[str, Answer]:
    return {e.outcome.press.player: e for e in events if isinstance(e, Answer)}


def buzz_in_order(engine: RoundEngine, *players: str, start_ms: int = 100) -> list[Event]:
    """Players press 1 ms apart from ``start_ms``; the decision follows at the horizon."""
    events: list[Event] = []
    for offset, player in enumerate(players):
        events += press(engine, player, start_ms + offset)
    events += engine.tick((start_ms + 10) * MS)
    return events


def armed(**rules: object) -> RoundEngine:
    engine = RoundEngine(replace(Rules(), **rules))  # type: ignore[arg-type]
    engine.arm(0)
    return engine


# --- the floor and the answer timer ---


def test_the_winner_has_the_floor_from_the_decision() -> None:
    engine = armed()
    events = buzz_in_order(engine, "ann", "bob")
    decided = [e for e in events if isinstance(e, PhaseChanged) and e.phase is Phase.DECIDED]
    assert decided, events
    assert engine.floor() == ("ann", 110 * MS)
    assert engine.answer_times() == (None, None)  # no answer timer configured


def test_answer_timer_warns_then_expires_at_exact_instants() -> None:
    engine = armed(answer_ns=5000 * MS, answer_warning_ns=2000 * MS)
    buzz_in_order(engine, "ann")  # decided at 110 ms
    assert engine.answer_times() == (3110 * MS, 5110 * MS)
    assert engine.next_deadline == 3110 * MS
    assert engine.tick(3110 * MS - 1) == []
    assert engine.tick(3110 * MS) == [
        TimerFired(1, TimerKind.ANSWER, TimerStage.WARNING, "ann"),
    ]
    assert engine.tick(3200 * MS) == []  # the warning fires once
    assert engine.next_deadline == 5110 * MS
    assert engine.tick(5110 * MS) == [TimerFired(1, TimerKind.ANSWER, TimerStage.EXPIRED, "ann")]
    assert engine.next_deadline is None
    # the floor stays with the player: the host still rules the answer
    assert engine.floor() == ("ann", 110 * MS)
    assert engine.phase is Phase.DECIDED


def test_a_late_tick_fires_warning_and_expiry_together() -> None:
    engine = armed(answer_ns=5000 * MS, answer_warning_ns=2000 * MS)
    buzz_in_order(engine, "ann")
    stages = [e.stage for e in engine.tick(9000 * MS) if isinstance(e, TimerFired)]
    assert stages == [TimerStage.WARNING, TimerStage.EXPIRED]


# --- rulings and rebounds ---


def test_right_ends_the_question() -> None:
    engine = armed(answer_ns=5000 * MS)
    buzz_in_order(engine, "ann", "bob")
    events = engine.right(200 * MS)
    assert events[0] == Ruled(1, "ann", True, None)
    assert engine.phase is Phase.CLOSED
    assert engine.floor() is None
    assert engine.next_deadline is None  # the answer timer died with the question
    assert engine.right(300 * MS) == []  # nobody has the floor any more


def test_rulings_need_someone_with_the_floor() -> None:
    engine = armed()
    assert engine.wrong(50 * MS) == []
    assert engine.right(50 * MS) == []
    idle = RoundEngine(Rules())
    assert idle.wrong(0, ReboundMode.REARM) == []


def test_wrong_in_next_mode_offers_the_answer_down_the_ranking() -> None:
    engine = armed(answer_ns=5000 * MS)
    buzz_in_order(engine, "ann", "bob", "cat")
    events = engine.wrong(1000 * MS, ReboundMode.NEXT)
    assert events == [Ruled(1, "ann", False, None), FloorChanged(1, "bob", 6000 * MS)]
    assert engine.floor() == ("bob", 1000 * MS)
    assert engine.answer_times() == (None, 6000 * MS)  # the timer restarts for bob
    assert engine.wrong(2000 * MS, ReboundMode.NEXT)[1] == FloorChanged(1, "cat", 7000 * MS)
    assert engine.wrong(3000 * MS, ReboundMode.NEXT) == [
        Ruled(1, "cat", False, None),
        FloorChanged(1, None, None),
    ]
    assert engine.floor() == (None, 3000 * MS)
    assert engine.out_players == {"ann", "bob", "cat"}
    assert engine.wrong(4000 * MS, ReboundMode.NEXT) == []  # nobody left to rule on


def test_next_mode_from_the_rules_is_the_default_for_wrong() -> None:
    engine = armed(rebound=ReboundMode.NEXT)
    buzz_in_order(engine, "ann", "bob")
    assert engine.wrong(500 * MS)[-1] == FloorChanged(1, "bob", None)
    assert engine.number == 1


def test_wrong_in_rearm_mode_rearms_without_who_answered() -> None:
    engine = armed(release_lead_ns=0)
    buzz_in_order(engine, "ann", "bob")
    events = engine.wrong(1000 * MS)  # REARM is the default
    assert events[0] == Ruled(1, "ann", False, None)
    assert PhaseChanged(2, Phase.ARMED, release_ns=1000 * MS) in events
    assert engine.number == 2
    assert engine.question == 1  # still the same question
    assert engine.release_for("ann") == (1000 * MS, True)  # her LED shows the lockout
    assert engine.release_for("bob") == (1000 * MS, False)
    held = answers(press(engine, "ann", 1100))["ann"].outcome
    assert held.rank is None
    assert held.flags == {Flag.LOCKED}
    buzz_in_order(engine, "bob", start_ms=1200)
    assert engine.floor() == ("bob", 1210 * MS)
    # a second wrong keeps both out
    engine.wrong(2000 * MS)
    assert engine.out_players == {"ann", "bob"}
    assert engine.question == 1
    # the next question (a host arm) lets everyone in again
    engine.arm(3000 * MS)
    assert engine.question == 2
    assert engine.out_players == frozenset()
    assert answers(buzz_in_order(engine, "ann", start_ms=3100))["ann"].outcome.rank == 1


def test_rearm_after_everyone_in_line_was_wrong() -> None:
    engine = armed()
    buzz_in_order(engine, "ann")
    engine.wrong(500 * MS, ReboundMode.NEXT)
    assert engine.floor() == (None, 500 * MS)
    events = engine.wrong(600 * MS, ReboundMode.REARM)
    assert not any(isinstance(e, Ruled) for e in events)  # nobody new was ruled on
    assert engine.phase is Phase.ARMED
    assert engine.out_players == {"ann"}


# --- teams ---


def teams(engine: RoundEngine, **members: str) -> None:
    for player, team in members.items():
        assert engine.assign_team(player, team, 0) == [TeamChanged(player, team)]


def test_one_buzz_per_team_skips_teammates_in_next_mode() -> None:
    engine = armed(one_buzz_per_team=True)
    teams(engine, ann="red", amy="red", bob="blue")
    buzz_in_order(engine, "ann", "amy", "bob")
    events = engine.wrong(500 * MS, ReboundMode.NEXT)
    assert events == [Ruled(1, "ann", False, "red"), FloorChanged(1, "bob", None)]
    assert engine.out_teams == {"red"}


def test_without_the_team_rule_a_teammate_may_answer() -> None:
    engine = armed()
    teams(engine, ann="red", amy="red", bob="blue")
    buzz_in_order(engine, "ann", "amy", "bob")
    assert engine.wrong(500 * MS, ReboundMode.NEXT)[-1] == FloorChanged(1, "amy", None)
    assert engine.out_teams == frozenset()


def test_one_buzz_per_team_locks_the_team_out_of_the_rebound() -> None:
    engine = armed(one_buzz_per_team=True, release_lead_ns=0)
    teams(engine, ann="red", amy="red", bob="blue")
    buzz_in_order(engine, "ann")
    engine.wrong(1000 * MS)
    assert engine.release_for("amy") == (1000 * MS, True)
    events = press(engine, "amy", 1100) + press(engine, "bob", 1101)
    assert answers(events)["amy"].outcome.flags == {Flag.LOCKED}
    engine.tick(1111 * MS)
    assert engine.floor() == ("bob", 1111 * MS)


def test_team_changes_and_removal() -> None:
    engine = RoundEngine(Rules())
    teams(engine, ann="red")
    assert engine.assign_team("ann", None, 5) == [TeamChanged("ann", None)]
    assert engine.teams == {}


# --- the buzz window ---


def test_buzz_window_closes_a_round_nobody_buzzed_in() -> None:
    engine = RoundEngine(Rules(release_lead_ns=100 * MS, buzz_window_ns=5000 * MS))
    engine.arm(0)
    assert engine.buzz_deadline == 5100 * MS
    assert engine.next_deadline == 5100 * MS
    assert engine.tick(5100 * MS - 1) == []
    events = engine.tick(5100 * MS)
    assert events[0] == TimerFired(1, TimerKind.BUZZ, TimerStage.EXPIRED)
    assert PhaseChanged(1, Phase.CLOSED) in events
    assert engine.phase is Phase.CLOSED
    assert engine.next_deadline is None


def test_a_buzz_inside_the_window_keeps_the_round_open() -> None:
    engine = RoundEngine(Rules(buzz_window_ns=5000 * MS, answer_ns=3000 * MS))
    engine.arm(0)
    assert press(engine, "ann", 4999, now_ms=4999)  # pending adjudication
    assert engine.buzz_deadline is None
    engine.tick(5009 * MS)
    assert engine.phase is Phase.DECIDED
    assert engine.next_deadline == 8009 * MS  # the answer timer, not the window


def test_buzz_window_restarts_for_a_rebound() -> None:
    engine = armed(buzz_window_ns=5000 * MS)
    buzz_in_order(engine, "ann")
    engine.wrong(2000 * MS)
    assert engine.buzz_deadline == 7000 * MS
    events = engine.tick(7000 * MS)
    assert events[0] == TimerFired(2, TimerKind.BUZZ, TimerStage.EXPIRED)


# --- early-buzz lockout ---


def test_lockout_until_next_arm() -> None:
    engine = RoundEngine(Rules(release_lead_ns=1000 * MS))
    engine.arm(0)
    early = answers(press(engine, "ann", 500))["ann"].outcome
    assert early.flags == {Flag.EARLY}
    assert early.lockout_ns is None
    assert answers(press(engine, "ann", 9000))["ann"].outcome.flags == {Flag.LOCKED}
    engine.arm(10_000 * MS)
    assert answers(buzz_in_order(engine, "ann", start_ms=11_500))["ann"].outcome.rank == 1


def test_jeopardy_lockout_restarts_on_each_early_press() -> None:
    engine = RoundEngine(Rules(release_lead_ns=1000 * MS, lockout_ns=250 * MS))
    engine.arm(0)
    assert answers(press(engine, "ann", 900))["ann"].outcome.lockout_ns == 250 * MS
    # a second early press restarts the 250 ms from 990: locked until 1240, not 1150
    assert answers(press(engine, "ann", 990))["ann"].outcome.flags == {Flag.EARLY}
    assert answers(press(engine, "ann", 1200))["ann"].outcome.flags == {Flag.LOCKED}
    winner = answers(buzz_in_order(engine, "ann", start_ms=1240))["ann"].outcome
    assert winner.rank == 1
    assert winner.reaction_ns == 240 * MS


def test_held_out_player_stays_out_despite_a_timed_lockout() -> None:
    engine = armed(release_lead_ns=1000 * MS, lockout_ns=250 * MS)
    buzz_in_order(engine, "ann", start_ms=1100)
    engine.wrong(2000 * MS)  # rebound: release at 3000
    early = answers(press(engine, "ann", 2900))["ann"].outcome
    assert early.flags == {Flag.LOCKED}  # held out, not merely early
    assert answers(press(engine, "ann", 3500))["ann"].outcome.flags == {Flag.LOCKED}


# --- default rules and determinism ---


def test_default_rules_add_no_timers() -> None:
    engine = armed()
    assert engine.next_deadline is None
    assert engine.buzz_deadline is None
    buzz_in_order(engine, "ann")
    assert engine.next_deadline is None
    assert engine.tick(10**15) == []


def test_same_inputs_give_the_same_events() -> None:
    def play() -> list[Event]:
        engine = RoundEngine(
            Rules(answer_ns=3000 * MS, answer_warning_ns=1000 * MS, one_buzz_per_team=True)
        )
        log = engine.arm(0)
        log += engine.assign_team("ann", "red", 0) + engine.assign_team("bob", "blue", 0)
        log += buzz_in_order(engine, "ann", "bob")
        log += engine.tick(2200 * MS)
        log += engine.wrong(2500 * MS, ReboundMode.NEXT)
        log += engine.tick(6000 * MS)
        log += engine.right(6100 * MS)
        return log

    first, second = play(), play()
    assert first == second
    assert Ruled(1, "bob", True, "blue") in first
