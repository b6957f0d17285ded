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
