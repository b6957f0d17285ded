"""The store without a hub: journal replay, reboot shifts, migrations, locking, damage, export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import journal, store
from hub.journal import Call, RecordingEngine, Segment
from hub.round import (
    Acknowledge,
    Answer,
    Arm,
    AssignTeam,
    Close,
    Press,
    PressIn,
    Reset,
    Right,
    Rules,
    Tick,
    Wrong,
)
from hub.views import history_view, round_view
from wire.codec import as_data
from wire.enums import ReboundMode

RULES = Rules(auto_arm_after_ns=50_000_000, lockout_ns=None)
MS = 1_000_000


ABSOLUTE = {"armed_ns", "release_ns", "decided_ns", "at_ns", "arrival_ns"}  # hub-clock instants


def picture(engine: RecordingEngine, shift: int = 0) -> str:
    """Everything a host could see, with hub instants moved back by ``shift``, as one string."""
    deadline = engine.next_deadline
    seen = [
        as_data(round_view(engine.current, engine.phase, {}, engine.teams)),
        [as_data(r) for r in history_view(engine.history, engine.current, {}, engine.teams)],
        None if deadline is None else deadline - shift,
    ]
    return json.dumps(_unshift(seen, shift), sort_keys=True)


def _unshift(value: object, shift: int) -> object:
    if isinstance(value, dict):
        return {
            k: v - shift if k in ABSOLUTE and isinstance(v, int) else _unshift(v, shift)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_unshift(v, shift) for v in value]
    return value


# A random session: arms, presses from a few players (some re-sent), ticks, resets, closes.
steps = st.lists(
    st.tuples(
        st.sampled_from(["arm", "press", "press", "press", "resend", "tick", "reset", "close"]),
        st.integers(0, 3),  # player
        st.integers(0, 30 * MS),  # time step
        st.integers(-5 * MS, 5 * MS),  # press stamped this far from arrival
    ),
    max_size=60,
)


def drive(engine: RecordingEngine, plan: list[tuple[str, int, int, int]]) -> None:
    now = 1_000 * MS
    sent: list[PressIn] = []
    for kind, player, step, skew in plan:
        now += step
        if kind == "arm":
            engine.arm(now)
        elif kind == "press" or (kind == "resend" and not sent):
            press = PressIn(f"p{player}", f"p{player}-{len(sent)}", now + skew, now, 1 * MS)
            sent.append(press)
            engine.press(press, now, 2 * MS)
        elif kind == "resend":
            engine.press(sent[player % len(sent)], now, 2 * MS)
        elif kind == "tick":
            engine.tick(now)
        elif kind == "reset":
            engine.reset(now)
        else:
            engine.close(now)


@given(steps)
@settings(max_examples=150, deadline=None)
def test_replaying_the_journal_restores_the_exact_state(plan) -> None:
    live = RecordingEngine(RULES)
    drive(live, plan)
    calls = live.take_calls()
    restored, _ = journal.replay(RULES, ((None, c) for c in calls))
    assert picture(restored) == picture(live)
    # ...and the restored engine goes on exactly like the live one would have.
    follow = [("press", 0, 1 * MS, 0), ("tick", 0, 40 * MS, 0), ("press", 1, 1 * MS, -MS)]
    drive(live, follow)
    drive(restored, follow)
    assert picture(restored) == picture(live)


@given(steps, st.integers(-(10**12), 10**12))
@settings(max_examples=100, deadline=None)
def test_shifting_every_input_time_shifts_the_state_and_changes_no_decision(plan, delta) -> None:
    live = RecordingEngine(RULES)
    drive(live, plan)
    calls = live.take_calls()
    moved, _ = journal.replay(RULES, ((None, c.shifted(delta)) for c in calls))
    assert picture(moved, delta) == picture(live)


def test_journal_entries_survive_their_text_form() -> None:
    press = PressIn("a", "a-1", 10, 12, 3, raw_ns=-7, synced=False)
    inputs = (
        Press(press, 5),
        Arm(lead_ns=9),
        Arm(),
        Tick(),
        Reset(),
        Close(),
        Right(),
        Wrong(ReboundMode.NEXT),
        Wrong(),
        AssignTeam("a", "red"),
        AssignTeam("a", None),
    )
    assert {step.KIND for step in inputs} == set(journal.INPUTS)  # every kind of input
    for step in inputs:
        call = Call(step, 12)
        assert Call.load(call.kind, call.now_ns, call.payload()) == call
    # Entries written before inputs were types: optional fields left out
    assert Call.load("arm", 3, "{}") == Call(Arm(), 3)
    assert Call.load("wrong", 3, '{"mode":"next"}') == Call(Wrong(ReboundMode.NEXT), 3)
    with pytest.raises(ValueError, match="unknown journal entry"):
        Call.load("explode", 1, "{}")


def test_a_tick_that_rearms_is_journalled_once_not_as_tick_and_arm() -> None:
    engine = RecordingEngine(RULES)
    engine.arm(0)
    engine.press(PressIn("a", "1", 5, 5), 5, 0)
    engine.tick(10**9)  # decided at the press; this tick re-arms
    kinds = [c.kind for c in engine.take_calls()]
    assert kinds == ["arm", "press", "tick"]
    assert engine.number == 2


def test_segments_in_one_boot_need_no_shift() -> None:
    segments = [Segment(1, "b1", 100, RULES, 500), Segment(2, "b1", 900, RULES, 1200)]
    assert journal.segment_shifts(segments, "b1", 5000) == {1: 0, 2: 0}


def test_after_a_reboot_old_times_continue_just_before_now() -> None:
    # Boot b1 ran until 1200; the machine rebooted; b2 started at 50 and ran until 80; now b3.
    segments = [
        Segment(1, "b1", 100, RULES, 500),
        Segment(2, "b1", 900, RULES, 1200),
        Segment(3, "b2", 50, RULES, 80),
    ]
    shifts = journal.segment_shifts(segments, "b3", 10)
    assert 1200 + shifts[2] == 80 + shifts[3] - 30  # b2's start follows b1's end at once
    assert 80 + shifts[3] == 10  # the last recorded moment maps to now: downtime counts as zero
    assert shifts[1] == shifts[2]


# --- the database ---


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


async def test_a_write_failure_switches_to_memory_only_and_still_acknowledges(
    tmp_path: Path,
) -> None:
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=0, wall_ns=0)
    loop = asyncio.get_running_loop()
    changed: asyncio.Future[store.StorageStatus] = loop.create_future()
    s.on_status = changed.set_result
    # Swap in a read-only connection to the same file (before the writer thread starts): every
    # write now fails, as on a disk that went read-only under a running hub. The integration
    # test does it with a real read-only mount.
    assert s._db is not None
    s._db.close()
    s._db = store.connect(tmp_path / store.DATABASE_NAME, read_only=True)
    s.start(loop)
    done = asyncio.Event()
    s.record(engine.take_calls(), engine.arm(0), engine, done.set)
    status = await asyncio.wait_for(changed, 5)
    await asyncio.wait_for(done.wait(), 5)
    assert not status.saving
    assert "NOT being saved" in status.message
    assert "readonly" in status.message.replace("-", "").replace(" ", "")
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
