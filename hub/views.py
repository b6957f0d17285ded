"""What each audience is told: tutorial text, a player's result line, the host's picture.

Pure formatting of round-engine data into the words players read and the typed objects of
:mod:`wire.messages` that hosts and viewers get. Keeping words and shapes here keeps the engine free
of presentation and the server free of game rules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace

from hub.formats import Format
from hub.gamelog import BonusAnswer, Given, Ruling
from hub.match import MatchEngine, log_view, match_view, unsaid_log
from hub.round import Outcome, RoundRecord
from hub.scores import Scoreboard
from hub.teams import members, team_ranking
from wire import plain
from wire.enums import Flag, Phase
from wire.messages import (
    AnsweringView,
    GameView,
    MatchReport,
    MatchResultView,
    MemberView,
    OpenBonusView,
    OutView,
    PlayerScoreView,
    PointsView,
    PressView,
    RoundView,
    RulesView,
    RulingPointsView,
    ScoresView,
    TeamScoreView,
    TeamView,
)

_ORDINALS = ("First", "Second", "Third")
#: Free play's log has no end (a question per round, all night): the picture carries the latest
#: questions, as it carries the latest rounds. A match's log is the match, carried whole.
FREE_PLAY_LOG_IN_PICTURE = 30
#: Of each round of a question, the log in a picture lists the first buzzes (and any ruled on),
#: counting the rest: a room of a thousand would otherwise put a thousand in each question.
BUZZES_IN_PICTURE = 5


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
        return plain.FIRST_PLACE
    if outcome.rank is not None and outcome.behind_ns is not None:
        return plain.slower(outcome.behind_ns)
    if Flag.EARLY in outcome.flags or Flag.LOCKED in outcome.flags:
        return plain.TOO_EARLY
    return plain.ROUND_CLOSED


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
        if Flag.CLAMPED in outcome.flags:
            line += "; its time was beyond what its link explains"
            line += ": ranked by its arrival" if outcome.press.by_arrival else ""
        if Flag.REPEAT in outcome.flags:
            line = "Already counted: " + line
        return line
    if Flag.EARLY in outcome.flags:
        if outcome.lockout_ns is None:
            return "Too early! Locked out until the next round."
        return f"Too early! Locked out for {seconds(outcome.lockout_ns)}."
    if Flag.LOCKED in outcome.flags:
        if outcome.lockout_ns is None:
            return "Locked out: wait for the next round."
        return f"Locked out: an early press holds you out for {seconds(outcome.lockout_ns)}."
    if Flag.STALE in outcome.flags:
        return "That press belongs to a round that is over; not counted."
    return "The round is closed; not counted."


def press_view(outcome: Outcome, names: Mapping[str, str], teams: Mapping[str, str]) -> PressView:
    press = outcome.press
    return PressView(
        rank=outcome.rank,
        player=press.player,
        name=names.get(press.player, press.player),
        press_id=press.press_id,
        reaction_ns=outcome.reaction_ns,
        behind_ns=outcome.behind_ns,
        uncertainty_ns=press.uncertainty_ns,
        flags=sorted(outcome.flags),
        at_ns=press.at_ns,
        raw_ns=press.raw_ns,
        arrival_ns=press.arrival_ns,
        team=teams.get(press.player),
    )


def round_view(
    record: RoundRecord | None,
    phase: Phase,
    names: Mapping[str, str],
    teams: Mapping[str, str],
    results: int | None = None,
) -> RoundView:
    """The round with every press; or, given ``results``, its first ones only and its refusals
    counted, not listed (an earlier round in a state picture)."""
    if record is None:
        return RoundView(number=0, state=phase)
    ranked, refused, more_refused = record.ranked, record.refused, record.more_refused
    if results is not None:
        ranked, refused, more_refused = ranked[:results], [], len(refused) + more_refused
    return RoundView(
        number=record.number,
        state=phase,
        armed_ns=record.armed_ns,
        release_ns=record.release_ns,
        decided_ns=record.decided_ns,
        adjudication_wait_ns=record.adjudication_wait_ns,
        winner=names.get(record.winner.press.player) if record.winner else None,
        results=[press_view(o, names, teams) for o in ranked],
        refused=[press_view(o, names, teams) for o in refused],
        more_refused=more_refused,
        more_results=len(record.ranked) - len(ranked),
    )


def undecided(view: RoundView) -> RoundView:
    """The round as it stood before its decision: armed, nothing ranked (while the decision
    waits for the disk, see :meth:`hub.core.machine.HubCore._held_picture`)."""
    return replace(
        view,
        state=Phase.ARMED,
        decided_ns=None,
        adjudication_wait_ns=None,
        winner=None,
        results=[],
        more_results=0,
    )


def undecided_game(game: GameView, rounds: Collection[int], current: int) -> GameView:
    """The game as it stood before the decisions of rounds ``rounds`` (waiting for the disk,
    as :func:`undecided`): none of their buzzes in the log and, if one is the round on display
    (``current``), no one answering and no team ranked."""
    log = unsaid_log(game.log, rounds)
    if current not in rounds:
        return replace(game, log=log)
    return replace(
        game,
        answering=None,
        answer_warning_ns=None,
        answer_deadline_ns=None,
        team_ranking=[],
        log=log,
    )


def history_view(
    records: Iterable[RoundRecord],
    current: RoundRecord | None,
    names: Mapping[str, str],
    teams: Mapping[str, str],
    count: int | None = None,
    before: int | None = None,
    results: int | None = None,
) -> list[RoundView]:
    """Earlier rounds, newest first, without the one on display: at most ``count`` of them,
    numbered below ``before`` if given (a page of history), each with its first ``results``
    presses only if given."""
    done = [
        r
        for r in reversed(list(records))
        if r is not current and (before is None or r.number < before)
    ]
    return [round_view(r, Phase.CLOSED, names, teams, results) for r in done[:count]]


# --- game play ---


def timer_text(timer: str, stage: str, name: str | None) -> str:
    """The line a console, big screen or node shows when a timer stage fires."""
    if timer == "buzz":
        return "Nobody buzzed in: the round is closed."
    if timer == "bonus":
        return "Time is up for this bonus part!"
    who = name or "the player"
    return f"Time is almost up for {who}!" if stage == "warning" else f"Time is up for {who}!"


def ruling_text(correct: bool, points: int | None) -> str:
    score = f" {points:+d}" if points else ""
    return ("Correct!" if correct else "Wrong.") + score


def game_view(
    engine: MatchEngine,
    names: Mapping[str, str],
    defaults: RulingPointsView,
    applied: int,
    last_result: MatchReport | None,
    free: Format,
) -> GameView:
    """Floor, timers, teams and scores, the match and its log: what the console and the big
    screen show beside a round.

    Instants are hub monotonic nanoseconds, comparable with the state's ``hub_ns``; ``defaults``
    are the points Right, Power and Wrong give now; ``free`` is free play's format (its points
    for a right and a wrong answer show as the rules when no match is on).
    """
    scores = engine.scores
    floor = engine.floor()
    answering = None
    if floor is not None and floor[0] is not None:
        player = floor[0]
        answering = AnsweringView(
            player=player,
            name=names.get(player, player),
            team=engine.teams.get(player),
            since_ns=floor[1],
        )
    warning_ns, deadline_ns = engine.answer_times()
    player_points = scores.player_totals()
    team_points = scores.team_totals()
    grouped = members(engine.teams)
    match = engine.match
    team_names = sorted(set(grouped) | set(team_points))
    if match is not None:  # the match's teams, in the order they were given, 0 points included
        order = [team.name for team in match.teams]
        team_names = [*order, *(t for t in team_names if t not in order)]
    rules = engine.rules
    ranked = engine.current.ranked if engine.current else []
    fmt = engine.format or free
    bonus = engine.open_bonus()
    known = set(names) | set(engine.teams)
    return GameView(
        question=engine.question,
        answering=answering,
        answer_warning_ns=warning_ns,
        answer_deadline_ns=deadline_ns,
        buzz_deadline_ns=engine.buzz_deadline,
        out=OutView(players=sorted(engine.out_players), teams=sorted(engine.out_teams)),
        teams=[
            TeamView(
                team=team,
                members=[MemberView(id=m, name=names.get(m, m)) for m in grouped.get(team, [])],
                points=team_points.get(team, 0),
            )
            for team in team_names
        ],
        team_ranking=team_ranking(ranked, engine.teams, names),
        scores=ScoresView(
            players=[
                PlayerScoreView(
                    id=player,
                    name=names.get(player, player),
                    team=engine.teams.get(player),
                    points=total,
                )
                for player, total in Scoreboard.ranked(player_points)
            ],
            teams=[
                TeamScoreView(id=team, points=total)
                for team, total in Scoreboard.ranked(team_points)
            ],
        ),
        points=PointsView(players=player_points, teams=team_points),
        rules=RulesView(
            one_buzz_per_team=rules.one_buzz_per_team,
            rebound=rules.rebound,
            buzz_window_ns=rules.buzz_window_ns,
            answer_ns=rules.answer_ns,
            answer_warning_ns=rules.answer_warning_ns,
            lockout_ns=rules.lockout_ns,
            points_right=fmt.tossup,
            points_wrong=fmt.wrong,
        ),
        applied=applied,
        match=match_view(engine),
        read=engine.read_ns is not None,
        value=engine.value if fmt.values else None,
        bonus=None
        if bonus is None
        else OpenBonusView(
            team=bonus.team,
            part=bonus.answered + 1,
            parts=bonus.parts,
            part_value=bonus.part_value,
            deadline_ns=engine.bonus_deadline(),
        ),
        defaults=defaults,
        eligible=sorted(player for player in known if engine.eligible(player)),
        log=log_view(
            engine,
            dict(names),
            None if engine.match else FREE_PLAY_LOG_IN_PICTURE,
            BUZZES_IN_PICTURE,
        ),
        undo=_undo_text(engine, names),
        last_match=None
        if last_result is None
        else MatchResultView(
            number=last_result.match.number,
            name=last_result.match.name,
            teams=[TeamScoreView(id=team.name, points=team.points) for team in last_result.teams],
        ),
    )


def _undo_text(engine: MatchEngine, names: Mapping[str, str]) -> str | None:
    """What undo would take back, in words for the console's button."""
    entry = engine.last_entry()
    match entry:
        case None:
            return None
        case Ruling():
            who = names.get(entry.player, entry.player)
            return f"{entry.kind} for {who} ({entry.points:+d}), question {entry.question}"
        case BonusAnswer():
            return f"bonus part {entry.part} for {entry.team} ({entry.points:+d})"
        case Given():
            whom = names.get(entry.player, entry.player) if entry.player else entry.team
            what = "wager" if entry.wager else "points"
            return f"{what} for {whom} ({entry.points:+d})"
        case _:
            return f"entry {entry.seq}"
