"""Rows written several to a statement land exactly as one statement per row would put them."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from hub import store


def _database(directory: Path) -> tuple[store.Store, sqlite3.Connection]:
    directory.mkdir()
    opened = store.Store(directory)
    opened.open()
    db = opened._db
    assert db is not None
    return opened, db


def _rows(rng: random.Random, count: int) -> list[tuple[object, ...]]:
    """Outcome upserts for few players and press ids, so that many rows meet earlier ones."""
    rows = []
    for _ in range(count):
        player = f"p{rng.randrange(6)}"
        rank = rng.choice([None, 1, 2, 3])
        rows.append(
            (
                store.CURRENT_GAME,
                rng.choice([None, 1, 2]),  # round: a row for another round is left alone
                player,
                f"{player}-{rng.randrange(4)}",
                rng.randrange(10**12),
                rng.randrange(10**12),
                rng.choice([None, rng.randrange(-(2**62), 2**62)]),
                rng.randrange(10**7),
                rng.randrange(2),
                rank,
                None if rank is None else rng.randrange(10**9),
                None if rank is None else rng.randrange(10**6),
                rng.choice(["", "tie", "late,tie"]),
                None,
                rng.randrange(10**18),
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_rows_together_land_as_rows_one_by_one(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    first, one_by_one = _database(tmp_path / "a")
    second, together = _database(tmp_path / "b")
    try:
        for _ in range(3):  # batches meeting what earlier batches wrote
            rows = _rows(rng, rng.randrange(1, 400))
            presses = [(r[0], None, *r[2:9], r[14]) for r in rng.sample(rows, len(rows) // 3)]
            one_by_one.executemany(store.PRESS_INSERT, presses)
            one_by_one.executemany(store.OUTCOME_UPSERT, rows)
            store.insert_rows(together, store.PRESS_INSERT, presses)
            store.insert_rows(together, store.OUTCOME_UPSERT, rows)
        query = "SELECT * FROM presses ORDER BY id"
        expected = one_by_one.execute(query).fetchall()
        assert expected  # the comparison compares something
        assert together.execute(query).fetchall() == expected
    finally:
        first.close()
        second.close()


def test_a_statement_that_is_not_one_row_of_placeholders_is_refused() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(ValueError, match="single-row INSERT"):
        store.insert_rows(db, "INSERT INTO t (a) VALUES (1)", [(1,)])


def test_players_together_land_as_players_one_by_one(tmp_path: Path) -> None:
    """A room's first burst brings its tutorial clients' rows among its presses' (and a name
    typed right after a join renames a row written in the same statement)."""
    rng = random.Random(7)
    players = [
        (f"text-{rng.randrange(8)}", f"Player {rng.randrange(99)}", "text", None, n)
        for n in range(300)
    ]
    first, one_by_one = _database(tmp_path / "a")
    second, together = _database(tmp_path / "b")
    try:
        one_by_one.executemany(store.PLAYER_UPSERT, players)
        store.insert_rows(together, store.PLAYER_UPSERT, players)
        query = "SELECT * FROM players ORDER BY rowid"
        expected = one_by_one.execute(query).fetchall()
        assert len(expected) == len({p[0] for p in players})
        assert together.execute(query).fetchall() == expected
    finally:
        first.close()
        second.close()
