"""A damaged journal never stops the hub: unreadable rows are set aside, the rest restored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub import store
from hub.config import HubConfig, RoundSection
from hub.embed import running_hub
from hub.round import PressIn, Rules
from tests.conftest import HOST_TOKEN

RULES = Rules()


async def _night(directory: Path) -> None:
    """Round 1 with presses from ada, bo and cy, saved."""
    s = store.Store(directory)
    s.open()
    engine, _ = s.restore(RULES, now_ns=0, wall_ns=0)
    s.start(asyncio.get_running_loop())
    done = asyncio.Event()
    steps = [engine.arm(0)]
    for at, who in ((10, "ada"), (11, "bo"), (12, "cy")):
        steps.append(engine.press(PressIn(who, f"{who}-1", at, at), at, 100))
    events = [event for step in steps for event in step]
    s.record(engine.take_calls(), events, engine, done.set)
    await asyncio.wait_for(done.wait(), 5)
    s.close()


def _damage(directory: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(directory / store.DATABASE_NAME)
    with db:
        db.execute(sql, params)
    assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)  # the database sees nothing
    db.close()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("UPDATE journal SET args = ? WHERE args LIKE '%bo-1%'", ('{"press":{"player":5}}',)),
        ("UPDATE journal SET args = ? WHERE args LIKE '%bo-1%'", ("{not json",)),
        ("UPDATE journal SET kind = ? WHERE args LIKE '%bo-1%'", ("teleport",)),
        ("UPDATE journal SET now_ns = ? WHERE args LIKE '%bo-1%'", ("soon",)),
        (
            'UPDATE journal SET args = replace(args, \'"at_ns":11\', \'"at_ns":"11"\') '
            "WHERE args LIKE '%bo-1%'",
            (),
        ),
    ],
)
async def test_a_damaged_row_is_set_aside_and_the_rest_restored(
    tmp_path: Path, sql: str, params: tuple[object, ...]
) -> None:
    await _night(tmp_path)
    _damage(tmp_path, sql, *params)
    s = store.Store(tmp_path)
    s.open()
    engine, _ = s.restore(RULES, now_ns=1000, wall_ns=0)
    assert s.status.saving
    assert "1 damaged journal entry was set aside in table 'quarantine'" in s.status.message
    s.close()
    engine.tick(1000)  # the waiting presses are decided, as a starting hub does
    assert engine.current is not None
    assert [o.press.player for o in engine.current.ranked] == ["ada", "cy"]
    db = sqlite3.connect(tmp_path / store.DATABASE_NAME)
    ((count, reason),) = db.execute("SELECT count(*), max(reason) FROM quarantine").fetchall()
    assert count == 1
    assert reason
    db.close()
    # Set aside once: the next start finds a clean journal and says nothing more.
    again = store.Store(tmp_path)
    again.open()
    restored, _ = again.restore(RULES, now_ns=2000, wall_ns=0)
    again.close()
    restored.tick(2000)
    assert again.status.message == "results are saved"
    assert [o.press.player for o in restored.current.ranked] == ["ada", "cy"]  # type: ignore[union-attr]


async def test_the_hub_starts_on_a_damaged_journal_and_its_segment_rules(tmp_path: Path) -> None:
    await _night(tmp_path)
    _damage(tmp_path, "UPDATE journal SET args = '[]' WHERE args LIKE '%ada-1%'")
    _damage(tmp_path, "UPDATE segments SET rules = 'garbage'")
    config = HubConfig(round=RoundSection(hostless=False, release_lead_ms=0))
    async with running_hub(config, host_token=HOST_TOKEN, data_dir=tmp_path) as hub:
        storage = hub.state().storage
        assert storage is not None
        assert storage.saving
        assert "set aside" in storage.message
        assert [r.player for r in hub.state().round.results] == ["bo", "cy"]
