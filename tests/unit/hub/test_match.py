"""A match as the referee and the match engine play it, with explicit times: points that follow
the rules (neg before the end of the question, none after, power, bonus), rulings worth 0 kept,
a rebound within its question, undo and re-rule, dead questions, and a journal that replays it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub import journal
from hub.config import GameSection, MatchSection
from hub.core.referee import Referee, Step, team_key
from hub.formats import CLASSROOM, JEOPARDY, QUIZ_BOWL
from hub.journal import Call, RecordingEngine
from hub.match import log_view, report
from hub.round import PressIn, Rules
from wire import messages as msg
from wire.enums import AnswerKind, MatchStatus, Phase

MS = 1_000_000
S = 1_000_000_000
RULES = Rules(release_lead_ns=100 * MS)
RED = ("ann", "amy")
BLUE = ("bob", "bea")
NAMES = {"ann": "Ann", "amy": "Amy", "bob": "Bob", "bea": "Bea", "cy": "Cy"}


def team(name: str, players: tuple[str, ...]) -> msg.TeamEntry:
    return msg.TeamEntry(name=name, players=[msg.PlayerEntry(id=p) for p in players])


def start(fmt: str = "quizbowl", **timers: float) -> Referee:
    ref = Referee(RecordingEngine(RULES), GameSection(), MatchSection(**timers))  # type: ignore[arg-type]
    step = ref.command(
        msg.MatchStart(name="Round 3", format=fmt, teams=[team("Red", RED), team("Blue", BLUE)]),
        0,
        NAMES,
    )
    assert step.refusal is None, step.refusal
    return ref


def ok(ref: Referee, message: msg.HostCommand, at_ms: float) -> Step:
    step = ref.command(message, round(at_ms * MS), NAMES)
    assert step.refusal is None, step.refusal
    return step


def refused(ref: Referee, message: msg.HostCommand, at_ms: float) -> str:
    before = [call.kind for call in ref.engine.take_calls()]
    assert before == []
    step = ref.command(message, round(at_ms * MS), NAMES)
    assert step.refusal is not None, f"{message} was not refused"
    assert step.calls == []
    assert ref.engine.take_calls() == []
    return step.refusal.message


def buzz(ref: Referee, player: str, at_ms: float, tag: str = "") -> None:
    at = round(at_ms * MS)
    ref.feed(journal.Press(PressIn(player, f"{player}-{at_ms}{tag}", at, at), 2 * MS), at)


def decide(ref: Referee, at_ms: float) -> None:
    ref.feed(journal.Tick(), round(at_ms * MS))


def totals(ref: Referee) -> dict[str, int]:
    return ref.scores.team_totals()


def answers(ref: Referee) -> list[tuple[int, str, AnswerKind, int, bool]]:
    """(question, player, kind, points, undone) for every ruling in the log."""
    log = report(ref.engine, NAMES).questions
    return [(q.number, a.player, a.kind, a.points, a.undone) for q in log for a in q.answers]


# --- points that follow the rules ---


def test_a_wrong_answer_is_a_neg_until_the_question_is_read_then_costs_nothing() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 2000)  # interrupts the question
    decide(ref, 2010)
    assert ref.defaults() == msg.RulingPointsView(right=10, power=15, wrong=-5)
    ok(ref, msg.Wrong(), 3000)  # -5, and the question re-arms for Blue
    ok(ref, msg.Read(), 6000)  # the moderator reads on to the end
    buzz(ref, "bob", 7000)
    decide(ref, 7010)
    assert ref.defaults() == msg.RulingPointsView(right=10, power=None, wrong=0)
    ok(ref, msg.Wrong(), 8000)  # after the end: no penalty, but the ruling is written
    assert answers(ref) == [
        (1, "ann", AnswerKind.NEG, -5, False),
        (1, "bob", AnswerKind.WRONG, 0, False),
    ]
    assert totals(ref) == {"Red": -5}
    # each ruling under the round of its own buzz (the neg is not filed under the rebound's)
    log = report(ref.engine, NAMES).questions[0]
    assert [(a.round, a.player) for a in log.answers] == [(1, "ann"), (2, "bob")]
    # both teams are out: the question is dead, the room does not see "Buzz!"
    assert ref.engine.phase is Phase.CLOSED
    question = report(ref.engine, NAMES).questions[0]
    assert (question.number, question.dead, question.read) == (1, "everyone out", True)
    assert ref.engine.number == 2  # two rounds, one question


def test_a_buzz_before_the_end_is_a_neg_even_when_ruled_after_it() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 2000)
    decide(ref, 2010)
    ok(ref, msg.Read(), 2500)  # read to the end while Ann answers
    assert ref.wrong_points() == -5
    ok(ref, msg.Wrong(), 4000)
    assert totals(ref) == {"Red": -5}


def test_a_clamped_buzz_counts_as_made_when_it_arrived_for_the_neg() -> None:
    """A buzz whose claim its link cannot explain is scored as it is ranked: as made when it
    reached the hub. Its earliest credible instant, before the end of the question, earns no
    power and risks no neg that its arrival, after it, would not."""
    ref = start()
    ok(ref, msg.Arm(), 0)
    ok(ref, msg.Read(), 1990)
    held_up = PressIn("ann", "ann-1", 1980 * MS, 2000 * MS, 15 * MS, claimed_ns=1966 * MS)
    ref.feed(journal.Press(replace(held_up, by_arrival=True), 2 * MS), 2000 * MS)
    decide(ref, 2010)
    assert ref.defaults() == msg.RulingPointsView(right=10, power=None, wrong=0)
    ok(ref, msg.Wrong(), 2500)
    assert answers(ref) == [(1, "ann", AnswerKind.WRONG, 0, False)]


def test_power_right_and_the_signs_a_ruling_may_carry() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "bea", 1500)
    decide(ref, 1510)
    text = refused(ref, msg.Wrong(points=10), 2000)
    assert text == "'wrong': a wrong answer cannot give points; use 'right' or 'score'"
    text = refused(ref, msg.Right(points=-5), 2000)
    assert text == "'right': a right answer cannot take points away; use 'wrong' or 'score'"
    ok(ref, msg.Right(power=True), 2000)
    assert answers(ref) == [(1, "bea", AnswerKind.POWER, 15, False)]
    assert ref.scores.player_totals() == {"bea": 15}
    # A power after the end of the question is refused
    ok(ref, msg.BonusPart(points=10), 2100)
    ok(ref, msg.BonusPart(points=0), 2200)
    ok(ref, msg.BonusPart(points=10), 2300)
    ok(ref, msg.Arm(), 3000)
    ok(ref, msg.Read(), 4000)
    buzz(ref, "ann", 4500)
    decide(ref, 4510)
    assert refused(ref, msg.Right(power=True), 5000) == (
        "'right': a power needs a buzz before the end of the question"
    )
    ok(ref, msg.Right(), 5000)
    assert totals(ref) == {"Blue": 35, "Red": 10}


def test_the_bonus_goes_to_the_team_that_answered_part_by_part_with_its_timer() -> None:
    ref = start(bonus_time_s=4.0)
    ok(ref, msg.Arm(), 0)
    buzz(ref, "amy", 1000)
    decide(ref, 1010)
    ok(ref, msg.Right(), 1500)
    bonus = ref.engine.open_bonus()
    assert bonus is not None
    assert (bonus.team, bonus.parts, bonus.answered) == ("Red", 3, 0)
    assert ref.engine.bonus_deadline() is None  # the part is still being read
    ok(ref, msg.Read(), 3000)
    assert ref.engine.next_deadline == 7 * S
    events = ref.feed(journal.Tick(), 7 * S).events
    assert [type(e).__name__ for e in events] == ["TimerFired"]
    assert refused(ref, msg.BonusPart(points=15), 7100) == "'bonus': a part is worth 0 to 10 points"
    for points in (10, 10, 0):
        ok(ref, msg.BonusPart(points=points), 8000)
    assert ref.engine.open_bonus() is None
    assert refused(ref, msg.BonusPart(points=10), 9000) == "'bonus': no bonus is being played"
    assert totals(ref) == {"Red": 30}
    view = report(ref.engine, NAMES)
    red = view.teams[0]
    assert (red.name, red.points, red.bonus_points, red.bonuses_heard) == ("Red", 30, 20, 1)
    assert view.questions[0].bonus is not None
    assert [p.points for p in view.questions[0].bonus.answers] == [10, 10, 0]


# --- the floor is never thrown away ---


def test_arming_over_a_floor_or_an_unscored_bonus_needs_force() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "bob", 1000)
    decide(ref, 1010)
    assert refused(ref, msg.Arm(), 2000) == (
        "Bob has the floor: rule the answer first (or arm with force to move on without a ruling)"
    )
    ok(ref, msg.Right(), 2000)
    ok(ref, msg.BonusPart(points=10), 2500)
    assert refused(ref, msg.Arm(), 3000) == (
        "the bonus for Blue is at part 2 of 3: score it first (or arm with force: parts left "
        "count 0)"
    )
    ok(ref, msg.Arm(force=True), 3000)
    view = report(ref.engine, NAMES).questions[0]
    assert view.bonus is not None
    assert [p.points for p in view.bonus.answers] == [10, 0, 0]
    assert ref.engine.question == 2


# --- undo and re-rule ---


def test_undo_a_mistaken_right_then_rule_it_wrong_and_the_other_team_rebounds() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    ok(ref, msg.Right(), 2000)  # a mistake
    assert ref.engine.open_bonus() is not None
    assert ref.engine.phase is Phase.CLOSED
    ok(ref, msg.Undo(), 2500)
    assert ref.engine.phase is Phase.DECIDED
    assert ref.engine.floor() == ("ann", 1010 * MS)
    assert ref.engine.open_bonus() is None
    ok(ref, msg.Wrong(), 3000)  # the re-rule: a neg, and Blue rebounds
    assert ref.engine.phase is Phase.ARMED
    assert ref.engine.eligible("bob")
    assert not ref.engine.eligible("amy")
    buzz(ref, "bob", 3200)
    decide(ref, 3210)
    ok(ref, msg.Right(), 4000)
    assert answers(ref) == [
        (1, "ann", AnswerKind.RIGHT, 10, True),  # the log keeps both
        (1, "ann", AnswerKind.NEG, -5, False),
        (1, "bob", AnswerKind.RIGHT, 10, False),
    ]
    assert totals(ref) == {"Red": -5, "Blue": 10}


def test_undo_goes_back_entry_by_entry_and_then_refuses() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    ok(ref, msg.Right(), 2000)
    ok(ref, msg.BonusPart(points=10), 2100)
    ok(ref, msg.Score(points=5, team="blue", reason="protest"), 2200)
    assert ref.engine.last_entry() is not None
    ok(ref, msg.Undo(), 2300)  # the 5 for Blue
    assert totals(ref) == {"Red": 20, "Blue": 0}
    ok(ref, msg.Undo(), 2400)  # bonus part 1: the bonus is back at part 1
    bonus = ref.engine.open_bonus()
    assert bonus is not None
    assert bonus.answered == 0
    ok(ref, msg.Undo(), 2500)  # the right
    assert totals(ref) == {"Red": 0, "Blue": 0}
    assert refused(ref, msg.Undo(), 2600) == "'undo': nothing to take back"


def test_undoing_the_wrong_that_killed_a_question_revives_it() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    ok(ref, msg.Wrong(), 2000)
    buzz(ref, "bob", 2100)
    decide(ref, 2110)
    ok(ref, msg.Wrong(), 3000)
    assert report(ref.engine, NAMES).questions[0].dead == "everyone out"
    ok(ref, msg.Undo(), 3500)
    assert ref.engine.floor() == ("bob", 2110 * MS)
    assert report(ref.engine, NAMES).questions[0].dead is None
    ok(ref, msg.Right(), 4000)
    assert totals(ref) == {"Red": -5, "Blue": 10}


# --- dead questions and the tossup timer ---


def test_a_silent_question_dies_when_the_tossup_timer_runs_out() -> None:
    ref = start(tossup_time_s=2.0)
    ok(ref, msg.Arm(), 0)
    ok(ref, msg.Read(), 5000)
    assert ref.engine.buzz_deadline == 7 * S
    decide(ref, 7000)
    assert ref.engine.phase is Phase.CLOSED
    assert report(ref.engine, NAMES).questions[0].dead == "time"
    assert refused(ref, msg.Read(), 7100) == "'read': this question was already read"


def test_moving_on_from_an_unanswered_question_marks_it_dead() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    ok(ref, msg.Arm(), 5000)  # nobody buzzed, no timer: the host moves on
    log = report(ref.engine, NAMES).questions
    assert [(q.number, q.dead, q.over) for q in log] == [(1, "no answer", True), (2, None, False)]


# --- names: teams as people type them, players nobody knows ---


def test_team_names_match_whatever_the_case_and_spacing() -> None:
    assert team_key(" TABLE  6 ") == team_key("table 6")
    ref = Referee(RecordingEngine(RULES), GameSection(teams={"Table 6": ["cy"]}))
    ref.place_config_teams(0)
    ok(ref, msg.SetTeam(player="ann", team="table   6"), 0)
    ok(ref, msg.Score(points=3, team=" TABLE 6"), 0)
    assert ref.engine.teams == {"cy": "Table 6", "ann": "Table 6"}
    assert totals(ref) == {"Table 6": 3}


def test_unknown_players_and_teams_are_refused_with_the_known_ones() -> None:
    ref = start()
    assert refused(ref, msg.Score(points=5, player="nobody-9"), 0) == (
        "'score': no player 'nobody-9'; players: amy, ann, bea, bob, cy"
    )
    assert refused(ref, msg.Score(points=5, team="Green"), 0) == (
        "'score': no team 'Green'; teams: Blue, Red"
    )
    assert refused(ref, msg.SetTeam(player="cy", team="Gren"), 0) == (
        "'team': no team 'Gren' in this match; teams: Blue, Red"
    )
    ok(ref, msg.SetTeam(player="cy", team="red"), 0)  # joins Red, not a new "red"
    assert ref.engine.teams["cy"] == "Red"


def test_a_match_refuses_what_does_not_fit_it() -> None:
    ref = start()
    text = refused(ref, msg.MatchStart(name="x", format="quizbowl", teams=[team("A", ("z",))]), 0)
    assert text == "match 1 (Round 3) is on: end it first"
    assert refused(ref, msg.ClearScores(), 0) == "a match is on: end it to start afresh"
    assert refused(ref, msg.Wager(player="ann", points=500, correct=True), 0) == (
        "'wager': Quiz bowl has no wagers"
    )
    idle = Referee(RecordingEngine(RULES), GameSection())
    bad = msg.MatchStart(name="x", format="bridge", teams=[team("A", ("z",))])
    assert refused(idle, bad, 0) == (
        "'match_start': no format 'bridge'; formats: classroom, jeopardy, quizbowl"
    )
    twice = msg.MatchStart(
        name="x", format="quizbowl", teams=[team("A", ("z",)), team("a ", ("y",))]
    )
    assert refused(idle, twice, 0) == "'match_start': two teams are called 'a '"


# --- formats ---


def test_jeopardy_clues_are_worth_their_value_either_way_and_a_daily_double_is_a_wager() -> None:
    ref = start("jeopardy")
    ok(ref, msg.ClueValue(points=400), 0)
    ok(ref, msg.Arm(), 100)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    assert ref.defaults() == msg.RulingPointsView(right=400, power=None, wrong=-400)
    ok(ref, msg.Wrong(), 2000)  # after the clue was read or not: -400
    buzz(ref, "bob", 2300)
    decide(ref, 2310)
    ok(ref, msg.Right(), 3000)
    ok(ref, msg.Wager(player="bea", points=1000, correct=False), 4000)
    assert ref.scores.player_totals() == {"ann": -400, "bob": 400, "bea": -1000}
    log = report(ref.engine, NAMES).questions
    assert [(q.number, q.value, q.daily_double) for q in log] == [(1, 400, False), (2, 1000, True)]
    assert ref.engine.rules.lockout_ns == 250 * MS


def test_classroom_has_no_penalty_and_passes_the_question_down_the_line() -> None:
    ref = start("classroom")
    assert (ref.engine.rules.rebound, ref.format.neg) == (CLASSROOM.rebound, 0)
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    buzz(ref, "bob", 1001)
    decide(ref, 1010)
    ok(ref, msg.Wrong(), 2000)
    assert ref.engine.floor() == ("bob", 2000 * MS)
    ok(ref, msg.Right(), 3000)
    assert ref.scores.player_totals() == {"bob": 1}
    assert answers(ref) == [
        (1, "ann", AnswerKind.WRONG, 0, False),
        (1, "bob", AnswerKind.RIGHT, 1, False),
    ]


# --- the journal: a restart replays the match into the same log and scores ---


def play_a_bit(ref: Referee) -> None:
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    ok(ref, msg.Right(), 2000)
    ok(ref, msg.Undo(), 2100)
    ok(ref, msg.Wrong(), 2200)
    buzz(ref, "bob", 2400)
    decide(ref, 2410)
    ok(ref, msg.Right(), 3000)
    ok(ref, msg.Read(), 3100)
    ok(ref, msg.BonusPart(points=10), 3200)
    ok(ref, msg.Score(points=-5, player="bea", reason="conferring"), 3300)


def journalled(ref: Referee) -> list[Call]:
    """Every call the referee journals from now on, as the store writes them."""
    kept: list[Call] = []
    feed = ref.feed

    def feed_and_keep(step: journal.GameInput, now: int, into: Step | None = None) -> Step:
        before = len(into.calls) if into is not None else 0
        result = feed(step, now, into)
        kept.extend(result.calls[before:])
        return result

    ref.feed = feed_and_keep  # type: ignore[method-assign]
    return kept


def test_a_match_replayed_from_its_journal_is_the_same_match() -> None:
    ref = Referee(RecordingEngine(RULES), GameSection())
    calls = journalled(ref)
    teams = [team("Red", RED), team("Blue", BLUE)]
    ok(ref, msg.MatchStart(name="Round 3", format="quizbowl", teams=teams), 0)
    play_a_bit(ref)
    assert calls[0].kind == "match_start"
    assert calls[0].starts_game
    stored = [Call.load(c.kind, c.now_ns, c.payload()) for c in calls]
    assert stored == calls
    restored, _ = journal.replay(RULES, ((None, call) for call in stored))
    assert report(restored, NAMES) == report(ref.engine, NAMES)
    assert restored.scores.team_totals() == ref.scores.team_totals() == {"Red": -5, "Blue": 15}
    assert restored.match == ref.engine.match
    assert restored.rules == ref.engine.rules
    # and the replayed match goes on as the live one does
    for engine_ref in (ref, Referee(restored, GameSection())):
        ok(engine_ref, msg.BonusPart(points=10), 4000)
    assert report(restored, NAMES) == report(ref.engine, NAMES)


def test_ending_a_match_freezes_its_result_and_starts_free_play_afresh() -> None:
    ref = start()
    play_a_bit(ref)
    step = ok(ref, msg.MatchEnd(), 5000)
    ended = [e for e in step.events if type(e).__name__ == "MatchEnded"]
    assert len(ended) == 1
    result = ended[0].report  # type: ignore[attr-defined]
    assert result.match.status is MatchStatus.ENDED
    assert [(t.name, t.points) for t in result.teams] == [("Red", -5), ("Blue", 15)]
    assert ref.engine.match is None
    assert ref.scores.entries == []
    assert ref.engine.number == 0
    assert [c.kind for c in step.calls] == ["match_end"]
    assert refused(ref, msg.MatchEnd(), 6000) == "'match_end': no match is on"
    # the next match is number 2
    ok(ref, msg.MatchStart(name="Final", format="quizbowl", teams=[team("Red", RED)]), 7000)
    assert ref.engine.match is not None
    assert ref.engine.match.number == 2


@pytest.mark.parametrize("fmt", [QUIZ_BOWL, JEOPARDY, CLASSROOM])
def test_formats_survive_their_data_form(fmt: object) -> None:
    from hub.formats import Format

    assert isinstance(fmt, Format)
    assert Format.from_data(fmt.data()) == fmt
    assert Format.from_data({**fmt.data(), "from_a_newer_hub": 1}) == fmt
    assert replace(fmt, values=(1, 2)).data()["values"] == (1, 2)


def test_a_right_undone_after_its_question_takes_its_points_and_leaves_it_unanswered() -> None:
    ref = start()
    ok(ref, msg.Arm(), 0)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    ok(ref, msg.Right(), 2000)
    ok(ref, msg.Arm(force=True), 3000)  # the bonus is skipped: its parts count 0
    for _ in range(4):  # three bonus parts of 0, then the right itself
        ok(ref, msg.Undo(), 4000)
    assert ref.engine.question == 2  # the next question goes on: nothing is rewound
    assert totals(ref) == {"Red": 0}
    assert report(ref.engine, NAMES).questions[0].dead == "no answer"


def test_a_match_fixes_its_teams_and_nothing_arms_on_its_own() -> None:
    engine = RecordingEngine(replace(RULES, auto_arm_after_ns=3 * S))
    ref = Referee(engine, GameSection())
    teams = [team("Red", RED), team("Blue", BLUE)]
    ok(ref, msg.MatchStart(name="Final", format="quizbowl", teams=teams), 0)
    assert engine.rules.auto_arm_after_ns is None
    step = Step()
    ref.place("cy", "Red", 0, step)  # a station joining with a team of the match
    assert step.calls == []
    assert "cy" not in engine.teams
    ok(ref, msg.Arm(), 100)
    buzz(ref, "ann", 1000)
    decide(ref, 1010)
    assert ref.engine.next_deadline is None  # no host-less re-arm over a floor


def test_a_pictures_log_lists_each_rounds_first_buzzes_and_those_ruled_on() -> None:
    """A question a room of a thousand buzzed on must not carry a thousand buzzes into every
    picture: the first five of each round are listed, with any player ruled on further down."""
    ref = start("classroom")  # a wrong answer passes the floor down the ranking
    ok(ref, msg.Arm(), 0)
    for i, player in enumerate([*RED, *BLUE, *(f"x{i}" for i in range(8))]):
        buzz(ref, player, 1000 + i)
    decide(ref, 1100)
    for second in range(2, 8):
        ok(ref, msg.Wrong(), second * 1000)  # ranks 1 to 6 wrong
    ok(ref, msg.Right(), 9000)  # rank 7 right
    whole = log_view(ref.engine, dict(NAMES))[-1]
    shown = log_view(ref.engine, dict(NAMES), buzzes=5)[-1]
    assert [b.rank for b in whole.buzzes] == list(range(1, 13))
    assert [b.rank for b in shown.buzzes] == list(range(1, 8))
    assert (shown.more_buzzes, whole.more_buzzes) == (5, 0)
    assert shown.answers == whole.answers
    assert len(shown.answers) == 7
