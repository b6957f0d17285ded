"""The round rules a match depends on, with explicit times: early presses in every state, the
rebound's light, the dead question, the question read and its tossup timer, and going back to
before a ruling (what an undo needs)."""

from __future__ import annotations

from dataclasses import replace

from hub.round import (
    Answer,
    DeadReason,
    Event,
    FloorChanged,
    Outcome,
    PhaseChanged,
    PressIn,
    QuestionDead,
    QuestionRead,
    RoundEngine,
    Rules,
    TimerFired,
)
from wire.enums import Flag, Phase, ReboundMode, TimerKind, TimerStage

MS = 1_000_000
S = 1_000_000_000
LEAD = 100 * MS
JEOPARDY = Rules(release_lead_ns=LEAD, lockout_ns=250 * MS)
QUIZ_BOWL = Rules(release_lead_ns=LEAD, one_buzz_per_team=True, tossup_ns=5 * S)


def engine_with(rules: Rules, teams: dict[str, str] | None = None) -> RoundEngine:
    engine = RoundEngine(rules)
    for player, team in (teams or {}).items():
        engine.assign_team(player, team, 0)
    return engine


def press(
    engine: RoundEngine, player: str, at_ms: float, now_ms: float | None = None, tag: str = ""
) -> list[Event]:
    """A press made at ``at_ms`` that reaches the hub at ``now_ms`` (default: at once)."""
    at = round(at_ms * MS)
    now = at if now_ms is None else round(now_ms * MS)
    pressed = PressIn(player, f"{player}-{at_ms}{tag}", at, now)
    return engine.press(pressed, now, 5 * MS)


def outcome(events: list[Event], player: str) -> Outcome:
    answers = [e.outcome for e in events if isinstance(e, Answer)]
    found = [o for o in answers if o.press.player == player]
    assert found, f"no answer for {player} in {events}"
    return found[-1]


def decide(engine: RoundEngine, at_ms: float) -> list[Event]:
    return engine.tick(round(at_ms * MS))


def winner(engine: RoundEngine) -> str | None:
    assert engine.current is not None
    first = engine.current.winner
    return first.press.player if first else None


# --- early presses: in every state, including after a ruling ---


def test_a_press_during_the_clue_after_a_ruling_locks_the_player_out_of_the_next_light() -> None:
    """The issue's case: the round is closed after a ruling; a player buzzes 200 ms before the
    Jeopardy light and then tries again 27 ms after it. The lockout holds; the other player,
    who waited, wins."""
    engine = engine_with(JEOPARDY)
    engine.arm(0)
    press(engine, "ann", 300)
    decide(engine, 310)
    engine.right(1 * S)  # the clue is over: the round is closed
    assert engine.phase is Phase.CLOSED
    # The next clue is read; the host arms at 5 s, the light comes on at 5.1 s.
    early = outcome(press(engine, "bob", 4900), "bob")  # 200 ms before the light, while closed
    assert early.flags == {Flag.EARLY}
    assert early.lockout_ns == 250 * MS
    assert early.round == 2  # early for the round to come
    engine.arm(5 * S)
    assert engine.current is not None
    assert engine.current.release_ns == 5 * S + LEAD
    assert [o.press.player for o in engine.current.refused] == ["bob"]  # shown with round 2
    locked = outcome(press(engine, "bob", 5127), "bob")  # 27 ms after the light
    assert locked.flags == {Flag.LOCKED}
    assert locked.rank is None
    press(engine, "cat", 5140)
    decide(engine, 5150)
    assert winner(engine) == "cat"


def test_a_press_made_while_closed_but_heard_after_the_arm_is_early_not_stale() -> None:
    """Stamped before the light, delivered after the arm: the network delay must not turn an
    early press into a harmless stale one."""
    engine = engine_with(JEOPARDY)
    engine.arm(0)
    press(engine, "ann", 300)
    decide(engine, 310)
    engine.right(1 * S)
    engine.arm(5 * S)
    late_news = outcome(press(engine, "bob", 4990, now_ms=5020), "bob")
    assert late_news.flags == {Flag.EARLY}
    assert outcome(press(engine, "bob", 5200), "bob").flags == {Flag.LOCKED}  # 4.99 + 0.25 s
    press(engine, "bob", 5250)  # the lockout is over
    decide(engine, 5260)
    assert winner(engine) == "bob"


def test_without_a_timed_lockout_a_press_while_closed_costs_the_whole_next_round() -> None:
    engine = engine_with(replace(JEOPARDY, lockout_ns=None))
    engine.arm(0)
    engine.close(1 * S)
    assert outcome(press(engine, "bob", 2000), "bob").flags == {Flag.EARLY}
    engine.arm(3 * S)
    assert engine.release_for("bob") == (3 * S + LEAD, True)
    assert outcome(press(engine, "bob", 9000), "bob").flags == {Flag.LOCKED}
    engine.arm(10 * S)  # the round after that one is open to him again
    assert engine.release_for("bob") == (10 * S + LEAD, False)


def test_early_presses_in_every_state_lock_the_player_out() -> None:
    """Idle, armed before the light, closed by a timer, and closed by a ruling."""
    engine = engine_with(replace(JEOPARDY, buzz_window_ns=1 * S))
    idle = outcome(press(engine, "ann", 10), "ann")  # before the first arm
    engine.arm(20 * MS)
    before_light = outcome(press(engine, "bob", 50), "bob")  # armed, light at 120 ms
    engine.tick(1120 * MS)  # nobody buzzed within the window: closed
    assert engine.phase is Phase.CLOSED
    after_timer = outcome(press(engine, "cat", 1500), "cat")
    engine.arm(2 * S)
    press(engine, "dan", 2200)
    decide(engine, 2210)
    engine.right(2300 * MS)
    after_ruling = outcome(press(engine, "eve", 2400), "eve")
    for early in (idle, before_light, after_timer, after_ruling):
        assert early.flags == {Flag.EARLY}, early
        assert early.lockout_ns == 250 * MS


def test_a_press_made_before_the_close_but_heard_after_it_is_too_late_not_early() -> None:
    engine = engine_with(JEOPARDY)
    engine.arm(0)
    press(engine, "ann", 300)
    decide(engine, 310)
    engine.right(1 * S)
    late = outcome(press(engine, "bob", 990, now_ms=1010), "bob")
    assert late.flags == {Flag.CLOSED}
    engine.arm(2 * S)
    assert engine.release_for("bob") == (2 * S + LEAD, False)  # no lockout from it


# --- the rebound ---


def test_a_rebound_lights_at_the_ruling_so_a_quick_press_is_not_early() -> None:
    """With a 100 ms release lead, a player of the other team who presses 42 ms after the
    moderator's click must win the rebound, not be flagged early."""
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "amy": "red", "bob": "blue"})
    engine.arm(0)
    press(engine, "ann", 1000)
    decide(engine, 1010)
    events = engine.wrong(2 * S)
    armed = [e for e in events if isinstance(e, PhaseChanged) and e.phase is Phase.ARMED]
    assert [e.release_ns for e in armed] == [2 * S]  # no lead for a rebound
    assert outcome(press(engine, "amy", 2030), "amy").flags == {Flag.LOCKED}  # red is out
    press(engine, "bob", 2042)
    quick = outcome(decide(engine, 2050), "bob")
    assert (quick.rank, quick.flags, quick.reaction_ns) == (1, frozenset(), 42 * MS)
    assert engine.release_for("bob")[1] is False
    assert engine.release_for("amy")[1] is False  # not armed any more: nothing to light


def test_a_rebound_continues_the_question_and_a_host_arm_starts_the_next() -> None:
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "bob": "blue"})
    engine.arm(0)
    press(engine, "ann", 1000)
    decide(engine, 1010)
    engine.wrong(2 * S)
    assert (engine.number, engine.question) == (2, 1)
    assert not engine.eligible("ann")
    assert engine.eligible("bob")
    engine.arm(3 * S)
    assert (engine.number, engine.question) == (3, 2)
    assert engine.eligible("ann")


# --- the dead question ---


def test_with_both_teams_out_the_question_is_dead_and_nothing_re_arms() -> None:
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "amy": "red", "bob": "blue"})
    engine.arm(0)
    press(engine, "ann", 1000)
    decide(engine, 1010)
    engine.wrong(2 * S)  # red is out; the question re-arms for blue
    press(engine, "bob", 2500)
    decide(engine, 2510)
    events = engine.wrong(3 * S)
    assert QuestionDead(2, 1, DeadReason.EVERYONE_OUT) in events
    assert [e.phase for e in events if isinstance(e, PhaseChanged)] == [Phase.CLOSED]
    assert engine.phase is Phase.CLOSED
    assert engine.number == 2  # no third round: the room never sees "Buzz!"
    assert engine.floor() is None


def test_the_last_wrong_in_line_kills_the_question_in_next_mode_too() -> None:
    engine = engine_with(
        replace(QUIZ_BOWL, rebound=ReboundMode.NEXT), {"ann": "red", "bob": "blue"}
    )
    engine.arm(0)
    press(engine, "ann", 1000)
    press(engine, "bob", 1001)
    decide(engine, 1010)
    offered = engine.wrong(2 * S)
    assert [e.player for e in offered if isinstance(e, FloorChanged)] == ["bob"]
    events = engine.wrong(3 * S)
    assert QuestionDead(1, 1, DeadReason.EVERYONE_OUT) in events
    assert engine.phase is Phase.CLOSED


def test_without_teams_the_hub_does_not_guess_who_is_left() -> None:
    engine = engine_with(Rules(release_lead_ns=0))
    engine.arm(0)
    press(engine, "ann", 100)
    decide(engine, 110)
    engine.wrong(1 * S)
    assert engine.phase is Phase.ARMED  # a classroom may have thirty more players


# --- the question read, and the tossup timer ---


def test_the_tossup_timer_runs_from_the_question_read_and_kills_a_silent_question() -> None:
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "bob": "blue"})
    engine.arm(0)
    assert engine.buzz_deadline is None  # still being read: no timer
    assert engine.read_question(8 * S) == [QuestionRead(1, 1, 8 * S)]
    assert engine.read_ns == 8 * S
    assert engine.read_question(9 * S) == []  # only the first read counts
    assert engine.buzz_deadline == 13 * S
    assert engine.next_deadline == 13 * S
    assert engine.tick(13 * S - 1) == []
    events = engine.tick(13 * S)
    assert events[:2] == [
        TimerFired(1, TimerKind.BUZZ, TimerStage.EXPIRED),
        QuestionDead(1, 1, DeadReason.TIME),
    ]
    assert engine.phase is Phase.CLOSED


def test_after_a_wrong_answer_the_rebound_gets_its_own_tossup_time() -> None:
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "bob": "blue"})
    engine.arm(0)
    press(engine, "ann", 3000)  # an interrupt, while the question is being read
    decide(engine, 3010)
    engine.read_question(6 * S)  # the moderator finishes reading while ann answers
    assert engine.buzz_deadline is None  # someone has the floor: no tossup timer
    engine.wrong(7 * S)
    assert engine.buzz_deadline == 12 * S  # five seconds from the rebound's light
    engine.arm(20 * S)  # the next question is read from the start
    assert engine.read_ns is None
    assert engine.buzz_deadline is None


# --- going back to before a ruling ---


def test_rewinding_a_right_gives_the_floor_back_so_it_can_be_ruled_wrong() -> None:
    engine = engine_with(
        replace(QUIZ_BOWL, answer_ns=5 * S, answer_warning_ns=2 * S),
        {"ann": "red", "bob": "blue"},
    )
    engine.arm(0)
    press(engine, "ann", 1000)
    press(engine, "bob", 1003)
    decide(engine, 1005)
    point = engine.save_point()
    engine.right(2 * S)
    assert engine.phase is Phase.CLOSED
    assert engine.rewind(point, 9 * S) == []
    assert engine.phase is Phase.DECIDED
    assert engine.floor() == ("ann", 1005 * MS)
    assert engine.tick(9 * S) == []  # the answer timer's stages are past: no second beep
    events = engine.wrong(10 * S)  # the rebound the mistaken right had lost
    assert engine.phase is Phase.ARMED
    assert engine.number == 2
    assert not engine.eligible("ann")
    assert any(isinstance(e, PhaseChanged) and e.round == 2 for e in events)


def test_rewinding_a_rebound_drops_its_round_but_never_reuses_its_number() -> None:
    engine = engine_with(QUIZ_BOWL, {"ann": "red", "bob": "blue", "cat": "green"})
    engine.arm(0)
    press(engine, "ann", 1000)
    decide(engine, 1010)
    point = engine.save_point()
    engine.wrong(2 * S)  # round 2: the rebound
    press(engine, "bob", 2500, tag="a")
    # bob's press is still waiting for its decision: it gets one before the round goes
    assert outcome(engine.rewind(point, 3 * S), "bob").rank == 1
    assert (engine.number, engine.phase) == (1, Phase.DECIDED)
    assert engine.eligible("ann")
    # bob's press is remembered: sent again, it is not counted again
    again = press(engine, "bob", 2500, now_ms=3100, tag="a")
    assert [type(e).__name__ for e in again] == ["Acknowledge", "Answer"]
    assert outcome(again, "bob").round == 2
    engine.wrong(4 * S)
    assert engine.number == 3  # a new number, not round 2 again
