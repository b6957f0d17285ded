"""No single input can switch saving off, and nothing is acknowledged that is not on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hub import store
from hub.round import PressIn, Rules

RULES = Rules()


async def test_a_value_no_column_can_hold_is_refused_alone_and_saving_goes_on(
    tmp_path: Path,
) -> None:
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=0, wall_ns=0)
    s.start(asyncio.get_running_loop())
    events = engine.arm(0)
    armed = asyncio.Event()
    s.record(engine.take_calls(), events, engine, armed.set)
    # A press whose numbers overflow SQLite's integer (the core refuses such presses before the
    # engine sees them; this is the store's own guard behind it).
    bad = PressIn("liar", "x-1", -(2**64), 5, raw_ns=-(2**63 - 1))
    refused = asyncio.Event()
    events = engine.press(bad, 5)
    s.record(engine.take_calls(), events, engine, refused.set)
    good = asyncio.Event()
    events = engine.press(PressIn("ada", "a-1", 6, 6), 6)
    s.record(engine.take_calls(), events, engine, good.set)
    await asyncio.wait_for(asyncio.gather(armed.wait(), good.wait()), 5)
    assert not refused.is_set()  # never acknowledged
    assert s.status.saving
    s.close()
    again = store.Store(tmp_path)
    again.open()
    restored, _ = again.restore(RULES, now_ns=10, wall_ns=0)
    again.close()
    assert again.status.saving
    assert restored.number == 1
    assert restored.current is not None
    kept = [o.press.press_id for o in (*restored.current.ranked, *restored.current.refused)]
    assert kept == ["a-1"]  # the honest press survived; the unstorable one was never written


async def test_a_press_judged_again_later_keeps_its_export_row(tmp_path: Path) -> None:
    """A press re-sent after its round left the history is judged again (stale, in the round
    then on display); the export keeps what it came to in the round it was made in."""
    from hub.round import Outcome
    from wire.enums import Flag

    s = store.Store(tmp_path)
    s.open()
    s.restore(RULES, now_ns=0, wall_ns=0)
    s.start(asyncio.get_running_loop())
    press = PressIn("ada", "a-1", 5, 6)
    done = asyncio.Event()
    won = Outcome(1, press, rank=1, reaction_ns=5, behind_ns=0)
    s._write([store._outcome_statement(won, store.CURRENT_GAME, 1)], None)
    stale = Outcome(60, press, flags=frozenset({Flag.STALE}))
    s._write([store._outcome_statement(stale, store.CURRENT_GAME, 2)], done.set)
    await asyncio.wait_for(done.wait(), 5)
    s.close()
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    rows = db.execute("SELECT round, rank, flags FROM presses WHERE press_id = 'a-1'").fetchall()
    db.close()
    assert rows == [(1, 1, "")]


def test_a_batch_retried_after_a_split_writes_each_job_once(tmp_path: Path) -> None:
    """A batch that fails as a whole is split to find the job at fault; if, alone, one job
    commits and a later one meets a failing disk, the retry must not write the first again."""
    s = store.Store(tmp_path)
    s.open()
    row = "INSERT INTO quarantine (kind, reason, moved_wall_ns) VALUES (?, 'test', 0)"
    good = store._Job([(row, ("good",))], None)  # a table with no key to refuse a second copy
    bad = store._Job([(row, ("bad",))], None)
    written: list[store._Job] = []
    disk_full = True
    real = s._transaction

    def transaction(db: sqlite3.Connection, jobs: list[store._Job]) -> None:
        if len(jobs) > 1:
            raise sqlite3.IntegrityError("one of them is at fault")
        if jobs == [bad] and disk_full:
            raise sqlite3.OperationalError("database or disk is full")
        real(db, jobs)
        written.extend(jobs)

    s._transaction = transaction  # type: ignore[method-assign]
    assert not s._commit([good, bad])  # the good one went in alone; the disk refused the other
    assert written == [good]
    disk_full = False
    assert s._commit([good, bad])  # the retry of the whole batch
    assert written == [good, bad]
    s.close()
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    assert db.execute("SELECT kind FROM quarantine ORDER BY seq").fetchall() == [
        ("good",),
        ("bad",),
    ]
    db.close()


def test_a_damaged_file_switches_to_memory_only_and_says_so(tmp_path: Path) -> None:
    """SQLite reports a damaged file as a plain DatabaseError, not a disk error: no retry helps
    and no single job is to blame, so the store says so and goes on in memory (the status change
    releases what waited for the disk), rather than dropping every job one by one."""
    s = store.Store(tmp_path)
    s.open()
    job = store._Job([("INSERT INTO meta (key, value) VALUES ('x', 'y')", ())], None)

    def transaction(db: sqlite3.Connection, jobs: list[store._Job]) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    s._transaction = transaction  # type: ignore[method-assign]
    assert s._commit([job])  # done with: reported, as in memory-only mode
    assert not s.status.saving
    assert "is damaged" in s.status.message
    assert not s.accepting
    s.close()
