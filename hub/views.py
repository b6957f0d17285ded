"""What each audience is told: tutorial text, a player's result line, the host's JSON picture.

Pure formatting of round-engine data. Keeping words and JSON shapes here keeps the engine free of
presentation and the server free of game rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from hub.round import Flag, Outcome, Phase, RoundEngine, RoundRecord
from hub.scores import Scoreboard
from hub.teams import members, team_ranking

_ORDINALS = ("First", "Second", "Third")


@dataclass(frozen=True, slots=True)
class PlayerView:
    """The roster entry the host sees for one player."""

    id: str
    name: str
    input: str
    team: str | None
    online: bool
    synced: bool
    offset_ns: int | None
    rtt_ns: int | None
    uncertainty_ns: int | None
    bound_ns: int | None
    upload_ns: int | None
    drift_ppm: float | None
    last_sync_ns: int | None
    last_seen_ns: int | None


_PLAYER_VIEW_FIELDS = tuple(f.name for f in fields(PlayerView))


def player_json(view: PlayerView) -> dict[str, Any]:
    """The roster entry as JSON. Every field is a plain value, so a flat copy is enough:
    ``dataclasses.asdict`` deep-copies each one and, at a thousand players, made every state
    picture cost tens of milliseconds of the event loop."""
    return {name: getattr(view, name) for name in _PLAYER_VIEW_FIELDS}


def ordinal(rank: int) -> str:
    if rank <= len(_ORDINALS):
        return _ORDINALS[rank - 1]
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank}{suffix}"


def seconds(ns: int) -> str:
    return f"{ns / 1e9:.3f} s"


def plain_answer(outcome: Outcome) -> str:
    """The classic tutorial's replies, byte for byte: its clients parse nothing else."""
    if outcome.rank == 1:
        return "First place!"
    if outcome.rank is not None and outcome.behind_ns is not None:
        return f"Response time: {round(outcome.behind_ns / 1e9, 2)} sec slower."
    if Flag.EARLY in outcome.flags or Flag.LOCKED in outcome.flags:
        return "Too early!"
    return "Round closed."


def result_text(outcome: Outcome) -> str:
    """One line a player reads on the node's console or the phone page."""
    if outcome.rank is not None:
        reaction = f"reaction {seconds(outcome.reaction_ns or 0)}"
        if outcome.rank == 1:
            line = f"First place! ({reaction})"
        else:
            line = f"{ordinal(outcome.rank)}, {seconds(outcome.behind_ns or 0)} behind ({reaction})"
        if Flag.TIE in outcome.flags:
            line += ", a tie within clock uncertainty"
        if Flag.REPEAT in outcome.flags:
            line = "Already counted: " + line
        return line
    if Flag.EARLY in outcome.flags:
        if outcome.lockout_ns is None:
            return "Too early! Locked out until the next round."
        return f"Too early! Locked out for {seconds(outcome.lockout_ns)}."
    if Flag.LOCKED in outcome.flags:
        return "Locked out: wait for the next round."
    if Flag.STALE in outcome.flags:
        return "That press belongs to a round that is over; not counted."
    return "The round is closed; not counted."


def outcome_json(outcome: Outcome, names: Mapping[str, str]) -> dict[str, Any]:
    press = outcome.press
    return {
        "rank": outcome.rank,
        "player": press.player,
        "name": names.get(press.player, press.player),
        "press_id": press.press_id,
        "reaction_ns": outcome.reaction_ns,
        "behind_ns": outcome.behind_ns,
        "uncertainty_ns": press.uncertainty_ns,
        "flags": sorted(outcome.flags),
        "at_ns": press.at_ns,
        "raw_ns": press.raw_ns,
        "arrival_ns": press.arrival_ns,
    }


def round_json(
    record: RoundRecord | None, phase: Phase, names: Mapping[str, str]
) -> dict[str, Any]:
    if record is None:
        return {"number": 0, "state": str(phase), "results": [], "refused": []}
    return {
        "number": record.number,
        "state": str(phase),
        "armed_ns": record.armed_ns,
        "release_ns": record.release_ns,
        "decided_ns": record.decided_ns,
        "adjudication_wait_ns": record.adjudication_wait_ns,
        "winner": names.get(record.winner.press.player) if record.winner else None,
        "results": [outcome_json(o, names) for o in record.ranked],
        "refused": [outcome_json(o, names) for o in record.refused],
    }


def history_json(
    records: Iterable[RoundRecord], current: RoundRecord | None, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Earlier rounds, newest first, without the one on display."""
    done = [r for r in records if r is not current]
    return [round_json(r, Phase.CLOSED, names) for r in reversed(done)]


# --- game play ---


def timer_text(timer: str, stage: str, name: str | None) -> str:
    """The line a console, big screen or node shows when a timer stage fires."""
    if timer == "buzz":
        return "Nobody buzzed in: the round is closed."
    who = name or "the player"
    return f"Time is almost up for {who}!" if stage == "warning" else f"Time is up for {who}!"


def ruling_text(correct: bool, points: int | None) -> str:
    score = f" {points:+d}" if points else ""
    return ("Correct!" if correct else "Wrong.") + score


def game_json(
    engine: RoundEngine,
    scores: Scoreboard,
    names: Mapping[str, str],
    points: tuple[int, int],
    applied: int,
) -> dict[str, Any]:
    """Floor, timers, teams and scores: what the console and the big screen show beside a round.

    Instants are hub monotonic nanoseconds, comparable with the state's ``hub_ns``; ``points`` is
    the (right, wrong) default the host's rulings use.
    """
    floor = engine.floor()
    answering = None
    if floor is not None and floor[0] is not None:
        player = floor[0]
        answering = {
            "player": player,
            "name": names.get(player, player),
            "team": engine.teams.get(player),
            "since_ns": floor[1],
        }
    warning_ns, deadline_ns = engine.answer_times()
    player_points = scores.player_totals()
    team_points = scores.team_totals()
    grouped = members(engine.teams)
    team_names = sorted(set(grouped) | set(team_points))
    rules = engine.rules
    ranked = engine.current.ranked if engine.current else []
    return {
        "question": engine.question,
        "answering": answering,
        "answer_warning_ns": warning_ns,
        "answer_deadline_ns": deadline_ns,
        "buzz_deadline_ns": engine.buzz_deadline,
        "out": {"players": sorted(engine.out_players), "teams": sorted(engine.out_teams)},
        "teams": [
            {
                "team": team,
                "members": [{"id": m, "name": names.get(m, m)} for m in grouped.get(team, [])],
                "points": team_points.get(team, 0),
            }
            for team in team_names
        ],
        "team_ranking": team_ranking(ranked, engine.teams, names),
        "scores": {
            "players": [
                {
                    "id": row["id"],
                    "name": names.get(row["id"], row["id"]),
                    "team": engine.teams.get(row["id"]),
                    "points": row["points"],
                }
                for row in scores.json()["players"]
            ],
            "teams": scores.json()["teams"],
        },
        "points": {"players": player_points, "teams": team_points},
        "rules": {
            "one_buzz_per_team": rules.one_buzz_per_team,
            "rebound": str(rules.rebound),
            "buzz_window_ns": rules.buzz_window_ns,
            "answer_ns": rules.answer_ns,
            "answer_warning_ns": rules.answer_warning_ns,
            "lockout_ns": rules.lockout_ns,
            "points_right": points[0],
            "points_wrong": points[1],
        },
        "applied": applied,
    }
