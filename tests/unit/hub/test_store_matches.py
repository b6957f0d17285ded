"""Matches on disk: a match is a game of its own in the journal, a restart replays only the game
in progress, the result is saved as it is played and final at the end, and a database from
before matches keeps its scores."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from hub import store
from hub.config import GameSection
from hub.core.referee import Referee, Step
from hub.journal import Press, Tick
from hub.round import PressIn, Rules
from wire import messages as msg
from wire.enums import MatchStatus

MS = 1_000_000
RULES = Rules(release_lead_ns=0)
TEAMS = [
    msg.TeamEntry(name="Red", players=[msg.PlayerEntry(id="ann", name="Ann")]),
    msg.TeamEntry(name="Blue", players=[msg.PlayerEntry(id="bob", name="Bob")]),
]


class Hub:
    """A store and a referee, as the hub drives them: every step recorded and committed."""

    def __init__(self, directory: Path, now_ns: int) -> None:
        self.store = store.Store(directory)
        self.store.open()
        engine, _ = self.store.restore(RULES, now_ns=now_ns, wall_ns=0)
        number, self.last_result = self.store.last_match()
        self.referee = Referee(engine, GameSection(), last_match=number)
        self.store.start(asyncio.get_running_loop())

    async def record(self, step: Step) -> None:
        assert step.refusal is None, step.refusal
        done = asyncio.Event()
        self.store.record(step.calls, step.events, self.referee.engine, done.set)
        await asyncio.wait_for(done.wait(), 5)

    async def command(self, message: msg.HostCommand, now_ms: int) -> None:
        await self.record(self.referee.command(message, now_ms * MS, {}))

    async def buzz(self, player: str, at_ms: int) -> None:
        at = at_ms * MS
        await self.record(
            self.referee.feed(Press(PressIn(player, f"{player}-{at_ms}", at, at)), at)
        )
        await self.record(self.referee.feed(Tick(), at + MS))

    def close(self) -> None:
        self.store.close()


def rows(directory: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(directory / store.DATABASE_NAME)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_a_match_is_a_game_of_its_own_and_a_restart_replays_only_the_game_on(
    tmp_path: Path,
) -> None:
    hub = Hub(tmp_path, 1000 * MS)
    await hub.command(msg.Arm(), 1000)  # free play first: game 1
    await hub.buzz("cy", 1100)
    await hub.command(msg.Right(), 1200)
    await hub.command(msg.MatchStart(name="Final", format="quizbowl", teams=TEAMS), 2000)
    await hub.command(msg.Arm(), 2100)
    await hub.buzz("ann", 2200)
    await hub.command(msg.Right(), 2300)
    await hub.command(msg.BonusPart(points=10), 2400)
    hub.close()
    assert rows(tmp_path, "SELECT DISTINCT game FROM segments ORDER BY game") == [(1,), (2,)]
    assert rows(tmp_path, "SELECT number, game, name, format, status FROM matches") == [
        (1, 2, "Final", "quizbowl", "playing")
    ]
    (saved,) = rows(tmp_path, "SELECT result FROM matches")
    playing = json.loads(str(saved[0]))
    assert [(t["name"], t["points"]) for t in playing["teams"]] == [("Red", 20), ("Blue", 0)]

    again = Hub(tmp_path, 5000 * MS)
    engine = again.referee.engine
    assert engine.match is not None
    assert engine.match.name == "Final"
    assert engine.scores.team_totals() == {"Red": 20}  # cy's free-play 10 is not replayed
    assert engine.number == 1  # the match's own round 1
    bonus = engine.open_bonus()
    assert bonus is not None
    assert bonus.answered == 1
    await again.command(msg.BonusPart(points=0), 5100)
    await again.command(msg.BonusPart(points=10), 5200)
    await again.command(msg.MatchEnd(), 6000)
    again.close()
    assert rows(tmp_path, "SELECT number, status FROM matches") == [(1, "ended")]

    third = Hub(tmp_path, 9000 * MS)
    assert third.referee.engine.match is None  # free play: the ended match is not replayed
    assert third.referee.last_match == 1
    assert third.last_result is not None
    assert third.last_result.match.status is MatchStatus.ENDED
    assert [(t.name, t.points) for t in third.last_result.teams] == [("Red", 30), ("Blue", 0)]
    await third.command(msg.MatchStart(name="Consolation", format="quizbowl", teams=TEAMS), 9100)
    assert third.referee.engine.match is not None
    assert third.referee.engine.match.number == 2
    third.close()
    games = rows(tmp_path, "SELECT DISTINCT game FROM segments ORDER BY game")
    assert games == [(1,), (2,), (3,), (4,)]


def make_v2_with_scores(directory: Path) -> None:
    """A schema 2 database of a game in progress: a ruling journalled without points (as hubs
    before matches wrote it) and its points in the scores table, plus a bonus given by hand."""
    db = sqlite3.connect(directory / store.DATABASE_NAME, isolation_level=None)
    for step in store.MIGRATIONS[:2]:
        step(db)
    db.execute("PRAGMA user_version = 2")
    rules = json.dumps({"release_lead_ns": 0, "tie_rule": "arrival"})
    db.execute(
        "INSERT INTO segments (id, boot, started_ns, started_wall_ns, rules, game) "
        "VALUES (1, 'old-boot', 0, 0, ?, 1)",
        (rules,),
    )
    press = {"player": "ann", "press_id": "a1", "at_ns": 200, "arrival_ns": 200}
    for kind, now, args in (
        ("team", 0, {"player": "ann", "team": "red"}),
        ("arm", 100, {"lead_ns": None}),
        ("press", 200, {"press": press, "horizon_ns": 0}),
        ("right", 300, {}),
    ):
        db.execute(
            "INSERT INTO journal (segment, kind, now_ns, wall_ns, args) VALUES (1, ?, ?, 0, ?)",
            (kind, now, json.dumps(args)),
        )
    db.executemany(
        "INSERT INTO scores (game, round, player, team, points, reason, wall_ns) "
        "VALUES (1, 1, ?, ?, ?, ?, 0)",
        [("ann", "red", 10, "right"), (None, "red", 20, "bonus")],
    )
    db.close()


async def test_a_database_from_before_matches_keeps_the_scores_of_the_game_on(
    tmp_path: Path,
) -> None:
    make_v2_with_scores(tmp_path)
    hub = Hub(tmp_path, 1000)
    engine = hub.referee.engine
    assert engine.scores.player_totals() == {"ann": 10}
    assert engine.scores.team_totals() == {"red": 30}
    assert engine.number == 1
    hub.close()
    kinds = rows(tmp_path, "SELECT kind FROM journal ORDER BY seq")
    assert kinds == [("team",), ("arm",), ("press",), ("right",), ("award",), ("award",)]
    # a second start replays the same totals: nothing is moved twice
    again = Hub(tmp_path, 2000)
    assert again.referee.engine.scores.team_totals() == {"red": 30}
    again.close()
