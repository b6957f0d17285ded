"""A match's result as QBJ, CSV and JSON: the same game log, the totals, and cells a spreadsheet
cannot mistake for formulas."""

from __future__ import annotations

import csv
import io
import json

from hub import exports, journal
from hub.config import GameSection
from hub.core.referee import Referee
from hub.journal import RecordingEngine
from hub.round import PressIn, Rules
from wire import codec
from wire import messages as msg

MS = 1_000_000
NAMES = {"ann": "Ann", "amy": '=HYPERLINK("http://x")', "bob": "Bob", "bea": "@Bea"}


def _final_report() -> msg.MatchReport:
    """Three tossups: a right ruled by mistake and undone, the neg that it was, the rebound got
    with a bonus; a power with a bonus, and a hand score taken back; a dead one. The final
    report is the one the match's end carries."""
    ref = Referee(RecordingEngine(Rules(release_lead_ns=0)), GameSection())
    teams = [
        msg.TeamEntry(name="Red", players=[msg.PlayerEntry(id="ann"), msg.PlayerEntry(id="amy")]),
        msg.TeamEntry(name="-Blue", players=[msg.PlayerEntry(id="bob"), msg.PlayerEntry(id="bea")]),
    ]
    at = 0
    ended: list[msg.MatchReport] = []

    def command(message: msg.HostCommand) -> None:
        nonlocal at
        at += 100
        step = ref.command(message, at * MS, NAMES)
        assert step.refusal is None, step.refusal
        ended.extend(e.report for e in step.events if type(e).__name__ == "MatchEnded")

    def buzz(player: str) -> None:
        nonlocal at
        at += 100
        ref.feed(journal.Press(PressIn(player, f"{player}-{at}", at * MS, at * MS)), at * MS)
        ref.feed(journal.Tick(), (at + 1) * MS)

    command(msg.MatchStart(name="Round 3: Red v Blue", format="quizbowl", teams=teams, packet="7"))
    command(msg.Arm())
    buzz("amy")
    command(msg.Right())  # a mistake...
    command(msg.Undo())  # ...taken back
    command(msg.Wrong())  # -5: a neg, and Blue rebounds
    buzz("bob")
    command(msg.Right())
    for points in (10, 0, 10):
        command(msg.BonusPart(points=points))
    command(msg.Arm())
    buzz("ann")
    command(msg.Right(power=True))
    for points in (10, 10, 10):
        command(msg.BonusPart(points=points))
    command(msg.Score(points=5, team="-blue", reason="=protest"))
    command(msg.Undo())
    command(msg.Arm())
    command(msg.Read())
    command(msg.MatchEnd())
    (final,) = ended
    return final


FINAL = _final_report()


def test_qbj_has_the_teams_the_buzzes_in_order_and_the_bonuses() -> None:
    qbj = exports.qbj(FINAL)
    assert qbj["tossups_read"] == 3
    assert qbj["packets"] == "7"
    red, blue = qbj["match_teams"]
    assert red["team"] == {"name": "Red", "players": [{"name": "Ann"}, {"name": NAMES["amy"]}]}
    assert (red["bonus_points"], blue["bonus_points"]) == (30, 20)
    assert red["lineups"] == [
        {
            "first_question": 1,
            "players": [{"name": "Ann"}, {"name": NAMES["amy"]}],
            "reason": "initial",
        }
    ]
    ann, amy = red["match_players"]
    assert ann == {
        "player": {"name": "Ann"},
        "tossups_heard": 3,
        "answer_counts": [{"number": 1, "answer_type": {"value": 15}}],
    }
    assert amy["answer_counts"] == [{"number": 1, "answer_type": {"value": -5}}]
    first, second, third = qbj["match_questions"]
    assert [
        (b["player"]["name"], b["team"]["name"], b["result"]["value"]) for b in first["buzzes"]
    ] == [
        (NAMES["amy"], "Red", -5),
        ("Bob", "-Blue", 10),
    ]
    assert first["bonus"] == {
        "question": {"question_number": 1, "type": "bonus", "parts": 3},
        "parts": [{"controlled_points": 10}, {"controlled_points": 0}, {"controlled_points": 10}],
    }
    assert second["bonus"]["question"]["question_number"] == 2
    assert [b["result"]["value"] for b in second["buzzes"]] == [15]
    assert third["buzzes"] == []
    assert "bonus" not in third
    # what QBJ has no field for is in its notes
    assert "Question 1: right for" in qbj["notes"]
    assert "was taken back" in qbj["notes"]
    assert "+5 to -Blue by hand (=protest), then taken back." in qbj["notes"]
    # the totals a statistics tool computes from the buzzes and bonuses are ours
    for team, view in zip(qbj["match_teams"], FINAL.teams, strict=True):
        tossups = sum(
            b["result"]["value"]
            for q in qbj["match_questions"]
            for b in q["buzzes"]
            if b["team"]["name"] == team["team"]["name"]
        )
        assert tossups + team["bonus_points"] == view.points


def test_csv_rows_follow_the_log_then_the_totals_and_escape_formulas() -> None:
    text = exports.csv_text(FINAL)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    kinds = [(r["question"], r["row"], r["result"], r["points"], r["undone"]) for r in rows]
    assert kinds[:8] == [
        ("1", "buzz", "", "", ""),
        ("1", "buzz", "", "", ""),
        ("1", "ruling", "right", "10", "yes"),
        ("1", "ruling", "neg", "-5", ""),
        ("1", "ruling", "right", "10", ""),
        ("1", "bonus", "", "10", ""),
        ("1", "bonus", "", "0", ""),
        ("1", "bonus", "", "10", ""),
    ]
    assert ("3", "dead", "", "", "") in kinds
    totals = {r["team"]: r["points"] for r in rows if r["row"] == "team total"}
    assert totals == {"Red": "40", "'-Blue": "30"}
    for row in rows:
        for value in row.values():
            if value and value[0] in "=+-@\t\r":
                int(value)  # only a number may start like a formula
    names = {r["name"] for r in rows}
    assert '\'=HYPERLINK("http://x")' in names
    assert "'@Bea" in names
    assert exports.cell("-5") == "-5"
    assert exports.cell("\tx") == "'\tx"
    assert exports.cell(-5) == -5


def test_json_is_the_report_and_reads_back() -> None:
    data = json.loads(exports.json_text(FINAL))
    assert (data["kind"], data["version"]) == ("buzzer-beater match", 1)
    again = codec.read(msg.MatchReport, data)
    assert again == FINAL
    assert exports.filename(FINAL, "qbj") == "match-1-round-3-red-v-blue.qbj"
