"""The link to the tournament's results database: its reads of the room's own SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from hub import central
from hub.central import CentralLink
from hub.config import TournamentSection
from hub.store import Store

SETTINGS = TournamentSection(id="open", room="room-1", database="postgresql://nobody@127.0.0.1/x")


async def test_a_stop_closes_the_rooms_database_only_after_a_read_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping cancels the task that awaits a read, not the read on its worker thread: the
    connection closed under it made the query fail, or crashed the process outright."""
    store = Store(tmp_path)
    store.open()
    store.close()
    entered, release = threading.Event(), threading.Event()
    outcome: list[object] = []
    real = central.outbox_waiting

    def held(db: sqlite3.Connection, seq: int) -> tuple[int, int]:
        entered.set()
        release.wait(10)
        try:
            counts = real(db, seq)
        except sqlite3.Error as exc:
            outcome.append(exc)
            raise
        outcome.append(counts)
        return counts

    monkeypatch.setattr(central, "outbox_waiting", held)
    link = CentralLink(SETTINGS, store.path, lambda view, delivered: None)
    link._task = asyncio.create_task(link._offline("the results database is down"))
    assert await asyncio.to_thread(entered.wait, 10)  # the read is running on the worker
    stopping = asyncio.create_task(link.stop())
    await asyncio.wait({stopping}, timeout=0.5)  # a stop that does not wait is done by then
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert outcome == [(0, 0)]  # the read finished on an open connection
    assert link._sqlite is None  # and the connection was closed after it
