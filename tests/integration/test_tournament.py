"""Many rooms, one tournament: three room hubs play at once against a real PostgreSQL (its own
data directory, loopback only), one room's link to it is cut in the middle of a match and
restored, and the standings match the matches played: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub import centraldb
from hub.core.events import CentralChanged, Decided, RulingGiven
from hub.store import OutboxRow, SavedMatch
from hub.tournament import TournamentService, load_plan, set_up
from tests.conftest import console_script
from tests.support.cut_proxy import CutProxy
from tests.support.postgres import PostgresServer, postgres_server, server_or_skip
from tests.support.tournament import (
    PLAN,
    ROUND_1,
    ROUND_2,
    TEAMS,
    TOURNAMENT_ID,
    Room,
    Script,
    page_json,
    rooms,
    settings,
    tally,
    team_of,
)
from wire import messages as msg


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server_or_skip()
    with postgres_server() as server:
        yield server


@pytest.fixture
def password_file(tmp_path: Path, postgres: PostgresServer) -> Path:
    path = tmp_path / "db-password"
    path.write_text(postgres.password + "\n")
    return path


async def fresh_database(postgres: PostgresServer) -> str:
    """An empty database of its own for one test; returns its address (no password in it)."""
    # Unique for the server's life: a task's hash is its address, which a later test's task
    # may be given again once the earlier one is freed (it was, once, on a busy machine).
    name = f"t{uuid.uuid4().hex}"
    admin = await psycopg.AsyncConnection.connect(
        postgres.url, password=postgres.password, autocommit=True
    )
    async with admin:
        await admin.execute(f"CREATE DATABASE {name}".encode())
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


def outbox(room: Room) -> tuple[str, list[int], dict[int, str]]:
    """The room's own record: its database id, its outbox numbers, its matches' results."""
    store = room.hub.recorder.store
    assert store is not None
    db = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (source,) = db.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()
        seqs = [seq for (seq,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        results = dict(db.execute("SELECT number, result FROM matches"))
    finally:
        db.close()
    return source, seqs, results


async def central_rows(database: str, password: str, source: str) -> tuple[list[int], list[Any]]:
    async with await psycopg.AsyncConnection.connect(database, password=password) as conn:
        seqs = await centraldb.event_seqs(conn, source)
        cursor = await conn.execute(
            "SELECT number, status, result FROM matches WHERE source = %s ORDER BY number",
            (source,),
        )
        return seqs, await cursor.fetchall()


def check_standings(page: dict[str, Any], scripts: list[Script]) -> None:
    """The page's standings are what the scripts say, team by team and player by player."""
    expected = tally(scripts)
    teams = {row["team"]: row for row in page["standings"]["teams"]}
    assert set(teams) == set(TEAMS)
    for team, row in teams.items():
        assert row["played"] == expected.played.get(team, 0), team
        assert row["wins"] == expected.wins.get(team, 0), team
        assert row["losses"] == expected.losses.get(team, 0), team
        assert row["points"] == expected.team_points.get(team, 0), team
        if row["played"]:
            assert row["ppg"] == round(row["points"] / row["played"], 2)
    ranks = [row["team"] for row in page["standings"]["teams"]]
    leader = max(TEAMS, key=lambda t: (expected.wins.get(t, 0), expected.team_points.get(t, 0)))
    assert ranks[0] == leader
    players = {(row["team"], row["name"]): row for row in page["standings"]["players"]}
    for station, counts in expected.player.items():
        name = dict(TEAMS[team_of(station)])[station]
        row = players[(team_of(station), name)]
        assert (row["powers"], row["tens"], row["negs"]) == (
            counts["power"],
            counts["right"],
            counts["neg"],
        ), name


async def test_three_rooms_play_at_once_and_one_loses_its_link_mid_match(
    postgres: PostgresServer, password_file: Path, tmp_path: Path
) -> None:
    database = await fresh_database(postgres)
    page_settings = settings(database, password_file)
    await set_up(page_settings, load_plan(str(_plan(tmp_path))))
    host, port = "127.0.0.1", int(database.rsplit(":", 1)[1].split("/")[0])
    proxy = await CutProxy(port, host).start()
    through_proxy = database.replace(f":{port}/", f":{proxy.port}/")
    databases = {"room-1": database, "room-2": through_proxy, "room-3": database}
    service = TournamentService(page_settings, "127.0.0.1", 0)
    await service.start()
    api = f"http://127.0.0.1:{service.port}/api/tournament"
    try:
        async with rooms(databases, password_file, tmp_path) as room:
            for each in room.values():
                await each.hub.events.wait_for(CentralChanged, lambda e: e.connected)
            # Each room knows its part of the schedule, with the tournament's players.
            schedule = room["room-1"].hub.state().central
            assert schedule is not None
            assert [p.name for p in schedule.schedule] == [
                "Round 1: Red v Blue",
                "Round 2: Red v Green",
            ]
            assert schedule.schedule[0].teams[0].players[0] == msg.PlayerEntry("red-1", "Alice")

            cut = asyncio.Event()
            noticed: list[CentralChanged] = []

            async def cut_mid_match(index: int) -> None:
                if index == 2:  # two tossups in: the building's network fails for room 2
                    proxy.cut()
                    cut.set()
                if index == 4:  # the room noticed (its next ruling could not be sent)
                    noticed.append(
                        await room["room-2"].hub.events.wait_for(
                            CentralChanged, lambda e: not e.connected, timeout=10
                        )
                    )

            scripts = {s.room: s for s in ROUND_1}
            await asyncio.gather(
                room["room-1"].play(scripts["room-1"]),
                room["room-2"].play(scripts["room-2"], before=cut_mid_match),
                room["room-3"].play(scripts["room-3"]),
            )
            assert cut.is_set()
            assert noticed
            assert "results database" in noticed[0].message
            assert postgres.password not in noticed[0].message

            # Room 2 finished its match without the database: its console says what waits.
            await room["room-1"].synced()
            await room["room-3"].synced()
            status = room["room-2"].hub.state().central
            assert status is not None
            assert not status.connected
            assert not status.synced
            assert status.waiting_matches == 1
            assert status.message.startswith("1 match waiting to sync: ")
            # ... and the page shows it still playing, as last heard, with the others final.
            page = await page_json(api)
            live = {m["room"]: m for m in page["matches"]}
            assert live["room-2"]["status"] == "playing"
            assert live["room-1"]["status"] == live["room-3"]["status"] == "ended"
            check_standings(page, [s for s in ROUND_1 if s.room != "room-2"])

            proxy.restore()
            await room["room-2"].synced()
            assert proxy.connections >= 2  # it came back over a new connection

            # Nothing lost, nothing doubled: each room's outbox is in the database exactly,
            # and each match's result there is the room's own.
            for each in room.values():
                source, seqs, results = outbox(each)
                central, matches = await central_rows(database, postgres.password, source)
                assert seqs, each.id
                assert central == seqs == list(range(1, len(seqs) + 1)), each.id
                assert [(n, status) for n, status, _ in matches] == [(1, "ended")]
                assert matches[0][2] == json.loads(results[1])

            page = await page_json(api)
            check_standings(page, list(ROUND_1))
            assert {m["round"] for m in page["matches"]} == {1}
            assert all(p["match"] for p in page["schedule"] if p["round"] == 1)

            # The second round, all rooms at once, every link up: the standings add up.
            scripts = {s.room: s for s in ROUND_2}
            await asyncio.gather(*(room[r].play(scripts[r]) for r in room))
            for each in room.values():
                await each.synced()
            page = await page_json(api)
            check_standings(page, [*ROUND_1, *ROUND_2])
            assert sorted(m["round"] for m in page["matches"]) == [1, 1, 1, 2, 2, 2]
            assert all(r["online"] for r in page["rooms"])

            bundle = await asyncio.to_thread(
                _get, api.replace("/api/tournament", "/api/tournament.zip")
            )
            with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
                names = archive.namelist()
                whole = json.loads(archive.read("tournament.qbj"))
            assert len([n for n in names if n.startswith("matches/")]) == 6
            rounds = whole["objects"][0]["phases"][0]["rounds"]
            assert [(r["name"], len(r["matches"])) for r in rounds] == [
                ("Round 1", 3),
                ("Round 2", 3),
            ]
            first = ROUND_1[0]  # its match, wherever the page lists it (they end in any order)
            (listed,) = [m for m in page["matches"] if m["room"] == first.room and m["round"] == 1]
            qbj_path = api.replace("/api/tournament", listed["qbj"])
            qbj = json.loads(await asyncio.to_thread(_get, qbj_path))
            assert {t["team"]["name"] for t in qbj["match_teams"]} == set(first.teams)
    finally:
        await service.stop()
        await proxy.stop()


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        data: bytes = response.read()
        return data


def _plan(tmp_path: Path) -> Path:
    path = tmp_path / "spring-open.toml"
    path.write_text(PLAN)
    return path


async def test_a_batch_sent_twice_counts_once(
    postgres: PostgresServer, password_file: Path
) -> None:
    """The link dropped after the database committed, before the room heard: the room sends
    the same rows again, and they count once."""
    database = await fresh_database(postgres)
    saved = SavedMatch(1, "Final", None, "quizbowl", "{}", "playing", None, None, None)
    rows = [OutboxRow(seq, TOURNAMENT_ID, "room-9", "change", 1, 0) for seq in (1, 2, 3)]
    async with await psycopg.AsyncConnection.connect(
        database, password=postgres.password, autocommit=True
    ) as conn:
        await centraldb.migrate(conn)
        assert await centraldb.push(conn, "abc", rows, {1: saved}) == 3
        assert await centraldb.push(conn, "abc", rows, {1: saved}) == 3
        assert await centraldb.push(conn, "abc", rows[1:], {1: saved}) == 3
        assert await centraldb.event_seqs(conn, "abc") == [1, 2, 3]
        ended = SavedMatch(1, "Final", None, "quizbowl", "{}", "ended", None, None, None)
        end = OutboxRow(4, TOURNAMENT_ID, "room-9", "end", 1, 0)
        assert await centraldb.push(conn, "abc", [*rows, end], {1: ended}) == 4
        # An older push arriving late changes nothing of what a newer one wrote.
        assert await centraldb.push(conn, "abc", rows, {1: saved}) == 4
        cursor = await conn.execute("SELECT status, last_seq FROM matches WHERE source = 'abc'")
        assert await cursor.fetchall() == [("ended", 4)]
        assert await centraldb.migrate(conn) == centraldb.SCHEMA_VERSION  # migrated once


async def test_a_room_whose_database_is_unreachable_plays_on_and_says_so_in_one_line(
    tmp_path: Path, password_file: Path
) -> None:
    """Nothing in the round waits for the database: arm, press and ruling go on, and the room
    says, in one line, what is wrong and how many matches wait."""
    nobody = CutProxy(1)
    await nobody.start()
    nobody.cut()  # a port that accepts and hangs up: a database that is not there
    address = f"postgresql://buzzer@127.0.0.1:{nobody.port}/tournament"
    try:
        async with rooms({"room-1": address}, password_file, tmp_path) as room:
            hub = room["room-1"].hub
            first = await hub.events.wait_for(CentralChanged, lambda e: not e.connected)
            assert f"results database at 127.0.0.1:{nobody.port}/tournament" in first.message
            assert "\n" not in first.message
            await room["room-1"].start(ROUND_1[0])
            mark = hub.events.mark()
            await room["room-1"].tossup(ROUND_1[0].tossups[0])
            await hub.events.wait_for(Decided, after=mark)
            await hub.events.wait_for(RulingGiven, after=mark)
            waiting = await hub.events.wait_for(
                CentralChanged, lambda e: e.waiting == 1, after=mark
            )
            assert waiting.message.startswith("1 match waiting to sync: ")
    finally:
        await nobody.stop()


def test_setup_with_the_database_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text(
        '[tournament]\nid = "spring-open"\n'
        'database = "postgresql://buzzer@127.0.0.1:9/tournament"\ntimeout_s = 2\n'
    )
    result = subprocess.run(
        [
            console_script("buzzer-hub"),
            "tournament",
            "setup",
            str(_plan(tmp_path)),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "buzzer-hub tournament: cannot reach the results database at 127.0.0.1:9/tournament "
        "(connection refused)"
    ]
