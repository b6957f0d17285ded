"""The store without a hub: migrations, locking, damage, commits before acks, export.

The journal it keeps, replayed and shifted across reboots, is tested in test_journal.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from hub import store
from hub.round import Acknowledge, Answer, PressIn, Rules

RULES = Rules(auto_arm_after_ns=50_000_000, lockout_ns=None)


def make_v1(path: Path) -> None:
    """A database as the first schema left it, written by hand."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE players (id TEXT PRIMARY KEY, name TEXT NOT NULL, input TEXT);
        CREATE TABLE rounds (number INTEGER PRIMARY KEY, armed_ns INTEGER, release_ns INTEGER,
            decided_ns INTEGER, winner TEXT);
        CREATE TABLE presses (id INTEGER PRIMARY KEY, round INTEGER, player TEXT NOT NULL,
            press_id TEXT NOT NULL, at_ns INTEGER, rank INTEGER, flags TEXT NOT NULL DEFAULT '',
            UNIQUE (player, press_id));
        INSERT INTO players VALUES ('n1', 'Ada', 'gpio'), ('n2', 'Bo', 'keyboard');
        INSERT INTO rounds VALUES (1, 100, 200, 300, 'n2');
        INSERT INTO presses (round, player, press_id, at_ns, rank, flags)
            VALUES (1, 'n2', 'x1', 250, 1, ''), (1, 'n1', 'y1', 260, 2, 'tie');
        PRAGMA user_version = 1;
        """
    )
    db.close()


def test_a_version_1_database_is_migrated_keeping_its_results(tmp_path: Path) -> None:
    make_v1(tmp_path / store.DATABASE_NAME)
    s = store.Store(tmp_path)
    s.open()
    assert s.saving
    s.close()
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    assert db.execute("PRAGMA user_version").fetchone() == (store.SCHEMA_VERSION,)
    assert db.execute("SELECT game, number, winner, state FROM rounds").fetchall() == [
        (store.LEGACY_GAME, 1, "n2", "closed")
    ]
    presses = db.execute("SELECT round, player, press_id, rank, flags FROM presses ORDER BY id")
    assert presses.fetchall() == [(1, "n2", "x1", 1, ""), (1, "n1", "y1", 2, "tie")]
    assert db.execute("SELECT id, name, team FROM players ORDER BY id").fetchall() == [
        ("n1", "Ada", None),
        ("n2", "Bo", None),
    ]
    assert db.execute("SELECT COUNT(*) FROM teams").fetchone() == (0,)
    rows = store.export_rows(db)
    assert [(r["game"], r["name"], r["rank"]) for r in rows] == [(0, "Bo", 1), (0, "Ada", 2)]
    db.close()


def test_a_failed_migration_leaves_the_old_version(tmp_path: Path) -> None:
    make_v1(tmp_path / "x.db")
    db = store.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE teams (id TEXT)")  # the migration will collide with this
    with pytest.raises(sqlite3.OperationalError):
        store.migrate(db)
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    assert db.execute("SELECT COUNT(*) FROM rounds").fetchone() == (1,)


def test_a_database_from_a_newer_hub_is_not_touched(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    db.execute("PRAGMA user_version = 99")
    db.close()
    s = store.Store(tmp_path)
    with pytest.raises(store.StoreError, match="written by a newer hub"):
        s.open()  # refused at start: guessing at a newer layout could damage it
    s.close()
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    assert db.execute("PRAGMA user_version").fetchone() == (99,)


def test_a_second_store_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = store.Store(tmp_path)
    first.open()
    second = store.Store(tmp_path)
    with pytest.raises(store.AlreadyRunning, match="another hub is already using"):
        second.open()
    first.close()
    second.open()  # the lock went with the first hub
    second.close()


def test_a_damaged_file_is_moved_aside_and_a_new_one_started(tmp_path: Path) -> None:
    (tmp_path / store.DATABASE_NAME).write_bytes(b"this is not sqlite" * 500)
    s = store.Store(tmp_path)
    s.open()
    assert s.saving
    assert "damaged" in s.status.message
    s.close()
    aside = list(tmp_path.glob(f"{store.DATABASE_NAME}.damaged-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not sqlite")
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    assert db.execute("PRAGMA user_version").fetchone() == (store.SCHEMA_VERSION,)


async def test_acks_wait_for_the_commit_and_a_restart_replays_it(tmp_path: Path) -> None:
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=1000, wall_ns=0)
    s.start(asyncio.get_running_loop())
    events = engine.arm(1000) + engine.press(PressIn("a", "a-1", 2000, 2000), 2000, 0)
    committed = asyncio.Event()
    s.record(engine.take_calls(), events, engine, committed.set)
    assert not committed.is_set()  # not before the writer thread has committed
    await asyncio.wait_for(committed.wait(), 5)
    s.close()

    again = store.Store(tmp_path)
    again.open()
    restored, replayed = again.restore(RULES, now_ns=3000, wall_ns=0)
    again.close()
    assert restored.number == 1
    assert restored.current is not None
    assert [o.press.press_id for o in restored.current.ranked] == ["a-1"]
    # The same press re-sent after the restart is answered as before and not counted again.
    resent = restored.press(PressIn("a", "a-1", 2000, 3500), 3500, 0)
    assert resent[0] == Acknowledge("a", "a-1")
    assert isinstance(resent[1], Answer)
    assert resent[1].outcome.rank == 1
    assert [o.press.press_id for o in restored.current.ranked] == ["a-1"]
    assert any(isinstance(e, Answer) for e in replayed)


async def test_a_failed_commit_acknowledges_nothing_and_saving_recovers_by_itself(
    tmp_path: Path,
) -> None:
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=0, wall_ns=0)
    loop = asyncio.get_running_loop()
    statuses: asyncio.Queue[store.StorageStatus] = asyncio.Queue()
    s.on_status = statuses.put_nowait
    # Swap in a read-only connection to the same file (before the writer thread starts): every
    # write now fails, as on a disk that went read-only under a running hub. The integration
    # test does it with a real full disk.
    assert s._db is not None
    writable = s._db
    s._db = store.connect(tmp_path / store.DATABASE_NAME, read_only=True)
    s.start(loop)
    done = asyncio.Event()
    events = engine.arm(0)
    s.record(engine.take_calls(), events, engine, done.set)
    status = await asyncio.wait_for(statuses.get(), 5)
    assert not status.saving
    assert "NOT being saved right now: retrying" in status.message
    assert "readonly" in status.message.replace("-", "").replace(" ", "")
    assert not done.is_set()  # a failed commit never acknowledges
    s._db = writable  # the disk is back
    status = await asyncio.wait_for(statuses.get(), 5)
    assert status.saving
    assert "recovered" in status.message
    await asyncio.wait_for(done.wait(), 5)
    s.close()
    again = store.Store(tmp_path)
    again.open()
    restored, _ = again.restore(RULES, now_ns=10, wall_ns=0)
    again.close()
    assert restored.number == 1  # the retried entry is in the journal, once


async def test_after_queued_waits_for_what_was_queued_before_it(tmp_path: Path) -> None:
    """An embedder reading the file once ``after_queued`` calls back finds every step queued
    before: held here behind a commit that keeps failing until the disk is back."""
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=0, wall_ns=0)
    statuses: asyncio.Queue[store.StorageStatus] = asyncio.Queue()
    s.on_status = statuses.put_nowait
    assert s._db is not None
    writable = s._db
    s._db = store.connect(tmp_path / store.DATABASE_NAME, read_only=True)  # as above
    s.start(asyncio.get_running_loop())
    s.record(engine.take_calls(), engine.arm(0), engine, None)
    written = asyncio.Event()
    s.after_queued(written.set)
    assert not (await asyncio.wait_for(statuses.get(), 5)).saving
    assert not written.is_set()
    s._db = writable
    await asyncio.wait_for(written.wait(), 5)
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    try:
        assert db.execute("SELECT number FROM rounds").fetchall() == [(1,)]
    finally:
        db.close()
    s.close()


def test_export_csv_and_json_read_back(tmp_path: Path) -> None:
    rows = [
        {c: None for c in store.EXPORT_COLUMNS} | {"round": 1, "rank": 1, "name": 'Ada, "A"'},
        {c: None for c in store.EXPORT_COLUMNS} | {"round": 1, "rank": None, "flags": "early"},
    ]
    text = store.csv_text(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(store.EXPORT_COLUMNS)
    assert [(p["round"], p["rank"], p["name"], p["flags"]) for p in parsed] == [
        ("1", "1", 'Ada, "A"', ""),
        ("1", "", "", "early"),
    ]
    out = io.StringIO()
    store.write_json(rows, out)
    assert json.loads(out.getvalue())["presses"] == rows
