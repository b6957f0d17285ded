"""A match's result in the formats its users already use: QBJ, CSV and JSON.

All three are written from one :class:`wire.messages.MatchReport` (the game log with totals), so
they never disagree.

**QBJ** is the quiz bowl JSON of the Quiz Bowl Schema (https://schema.quizbowl.technology/match,
the ``Match`` object and the objects in it), as MODAQ writes a single match (``toQBJ`` in
https://github.com/alopezlago/MODAQ, ``src/qbj/QBJ.ts``) and tournament statistics tools read
it: ``tossups_read``; ``match_teams``, each with its ``team`` (``name``, ``players``),
``bonus_points``, ``match_players`` (``player``, ``tossups_heard``, ``answer_counts`` of
``{number, answer_type: {value}}``) and an initial ``lineups`` entry; ``match_questions``, each
with ``question_number``, ``tossup_question`` and the ``buzzes`` that were ruled, in the order
they were ruled (``team``, ``player``, ``result: {value}``), and the ``bonus`` with one
``controlled_points`` per part. The schema has no place for the buzz's word (the hub does not
hear the moderator read), so ``buzz_position`` is left out; nor for points given by hand, which go
to ``notes`` with every ruling the moderator took back.

**CSV** holds one row per thing that happened (a press, a ruling, a bonus part, points given by
hand, a dead question), then the totals. A cell a spreadsheet could take for a formula (text
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) starts with an apostrophe
instead; numbers are written as numbers.

**JSON** is the report itself, with a header naming what it is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from wire.codec import as_data
from wire.messages import MatchReport, MatchTeamView, QuestionView

#: What the JSON export says it is, so that a reader can tell it from other files.
JSON_KIND = "buzzer-beater match"
JSON_VERSION = 1

CSV_COLUMNS = (
    "match",
    "question",
    "row",
    "round",
    "order",
    "player",
    "name",
    "team",
    "result",
    "points",
    "behind_ms",
    "reaction_ms",
    "undone",
    "note",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def qbj(report: MatchReport) -> dict[str, Any]:
    """The match as a QBJ ``Match`` object (see the module's docstring for the schema)."""
    questions = [q for q in report.questions if q.answers or q.buzzes or q.over]
    teams = {team.name: _qbj_team(team) for team in report.teams}
    bonuses = 0
    match_questions = []
    notes: list[str] = []
    for question in questions:
        entry: dict[str, Any] = {
            "question_number": question.number,
            "tossup_question": {
                "question_number": question.number,
                "type": "tossup",
                "parts": 1,
            },
            "buzzes": [
                {
                    "team": teams.get(answer.team or "", {"name": answer.team, "players": []}),
                    "player": {"name": answer.name},
                    "result": {"value": answer.points},
                }
                for answer in question.answers
                if not answer.undone
            ],
        }
        for award in question.awards:
            if award.wager and not award.undone:
                team = teams.get(award.team or "", {"name": award.team, "players": []})
                entry["buzzes"].append(
                    {
                        "team": team,
                        "player": {"name": award.name},
                        "result": {"value": award.points},
                    }
                )
        if question.bonus is not None:
            bonuses += 1
            parts = [p for p in question.bonus.answers if not p.undone]
            entry["bonus"] = {
                "question": {
                    "question_number": bonuses,
                    "type": "bonus",
                    "parts": question.bonus.parts,
                },
                "parts": [{"controlled_points": part.points} for part in parts],
            }
        match_questions.append(entry)
        notes.extend(_notes(question))
    match: dict[str, Any] = {
        "tossups_read": report.tossups_read,
        "match_teams": [
            _qbj_match_team(team, teams[team.name], report.tossups_read) for team in report.teams
        ],
        "match_questions": match_questions,
    }
    if report.match.packet:
        match["packets"] = report.match.packet
    if notes:
        match["notes"] = "\n".join(notes)
    return match


def _qbj_team(team: MatchTeamView) -> dict[str, Any]:
    return {"name": team.name, "players": [{"name": p.name} for p in team.players]}


def _qbj_match_team(team: MatchTeamView, qbj_team: dict[str, Any], heard: int) -> dict[str, Any]:
    return {
        "team": qbj_team,
        "bonus_points": team.bonus_points,
        "match_players": [
            {
                "player": {"name": player.name},
                "tossups_heard": heard,
                "answer_counts": [
                    {"number": count.number, "answer_type": {"value": count.value}}
                    for count in player.answers
                ],
            }
            for player in team.players
        ],
        "lineups": [
            {
                "first_question": 1,
                "players": [{"name": p.name} for p in team.players],
                "reason": "initial",
            }
        ],
    }


def _notes(question: QuestionView) -> list[str]:
    """What QBJ has no field for: rulings taken back, points given by hand."""
    notes = []
    for answer in question.answers:
        if answer.undone:
            notes.append(
                f"Question {question.number}: {answer.kind} for {answer.name} "
                f"({answer.points:+d}) was taken back."
            )
    for award in question.awards:
        if award.wager:
            continue
        who = award.name or award.team
        reason = f" ({award.reason})" if award.reason else ""
        undone = ", then taken back" if award.undone else ""
        notes.append(
            f"Question {question.number}: {award.points:+d} to {who} by hand{reason}{undone}."
        )
    return notes


def json_text(report: MatchReport) -> str:
    """The report as JSON: the whole log, undone entries included (marked), and the totals."""
    body = {"kind": JSON_KIND, "version": JSON_VERSION, **as_data(report)}
    return json.dumps(body, indent=1, ensure_ascii=False) + "\n"


def qbj_text(report: MatchReport) -> str:
    return json.dumps(qbj(report), indent=1, ensure_ascii=False) + "\n"


def csv_rows(report: MatchReport) -> list[dict[str, Any]]:
    """One row per press, ruling, bonus part, hand-given score and dead question, in the
    order of the questions, then one total row per team and per player."""
    number = report.match.number
    rows: list[dict[str, Any]] = []
    for q in report.questions:
        base = {"match": number, "question": q.number}
        for buzz in q.buzzes:
            rows.append(
                {
                    **base,
                    "row": "buzz",
                    "round": buzz.round,
                    "order": buzz.rank,
                    "player": buzz.player,
                    "name": buzz.name,
                    "team": buzz.team,
                    "behind_ms": _ms(buzz.behind_ns),
                    "reaction_ms": _ms(buzz.reaction_ns),
                    "note": " ".join(buzz.flags),
                }
            )
        for answer in q.answers:
            rows.append(
                {
                    **base,
                    "row": "ruling",
                    "round": answer.round,
                    "player": answer.player,
                    "name": answer.name,
                    "team": answer.team,
                    "result": answer.kind,
                    "points": answer.points,
                    "undone": "yes" if answer.undone else "",
                }
            )
        if q.bonus is not None:
            for part in q.bonus.answers:
                rows.append(
                    {
                        **base,
                        "row": "bonus",
                        "order": part.part,
                        "team": q.bonus.team,
                        "points": part.points,
                        "undone": "yes" if part.undone else "",
                    }
                )
        for award in q.awards:
            rows.append(
                {
                    **base,
                    "row": "wager" if award.wager else "score",
                    "player": award.player,
                    "name": award.name,
                    "team": award.team,
                    "points": award.points,
                    "undone": "yes" if award.undone else "",
                    "note": award.reason,
                }
            )
        if q.dead:
            rows.append({**base, "row": "dead", "note": q.dead})
    for team in report.teams:
        rows.append(
            {"match": number, "row": "team total", "team": team.name, "points": team.points}
        )
        for player in team.players:
            rows.append(
                {
                    "match": number,
                    "row": "player total",
                    "player": player.id,
                    "name": player.name,
                    "team": team.name,
                    "points": player.points,
                }
            )
    return rows


def csv_text(report: MatchReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({column: cell(row.get(column)) for column in CSV_COLUMNS})
    return out.getvalue()


def cell(value: object) -> str | int | float:
    """A value as a spreadsheet must see it: empty for none, numbers as numbers, and text that
    could start a formula escaped with a leading apostrophe (a name like ``=HYPERLINK(...)``
    typed on a phone must not run in a director's spreadsheet)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


#: The export formats by name, each with its media type and file suffix.
FORMATS = {
    "qbj": ("application/json", "qbj", qbj_text),
    "csv": ("text/csv; charset=utf-8", "csv", csv_text),
    "json": ("application/json", "json", json_text),
}


def filename(report: MatchReport, suffix: str) -> str:
    """``match-3-final.qbj``: the number and a safe form of the name."""
    slug = re.sub(r"[^a-z0-9]+", "-", report.match.name.lower()).strip("-")[:40]
    return f"match-{report.match.number}{'-' + slug if slug else ''}.{suffix}"
