"""Results that survive a crash: the hub's SQLite database, its writer thread, restore and export.

What is stored, and why:

- ``journal``: every call made to the round engine, in order (see :mod:`hub.journal`). It is the
  source of truth for restoring the engine after a restart, including pending presses, lockouts
  and the dedup set that makes a re-sent press count once.
- ``rounds``, ``presses``, ``players``: derived from what the engine decided, with every timestamp
  and flag plus the wall-clock time, for export and queries. They can always be rebuilt by
  replaying the journal. Teams, rulings and the points they gave, bonuses, undo, and the start
  and end of matches are engine calls too, so they are in the journal.
- ``matches``: one row per match (its number, the game its journal entries belong to, its
  setup), with its result as JSON kept up to date while it is played and final when it ends:
  what ``buzzer-hub export --match`` and the console's downloads read, without a replay.
- Games: a match starts a new game in the journal, and ending it starts another (free play), so
  a restart replays only the game in progress (see :mod:`hub.match`); earlier games stay for
  export. ``scores`` holds the points of hubs before schema 3 (points are journal entries since)
  and ``teams`` is not used.

The write is off the event loop's critical path: the loop hands each batch of statements to one
writer thread and goes on deciding and answering; the thread commits whatever has queued up in one
transaction (WAL, ``synchronous=FULL``, so a commit survives a power cut) and hands the result back
with ``loop.call_soon_threadsafe``. Only the node's ``ack`` waits for that commit, because the ack
is the hub's promise that the press will survive anything.

When a commit fails (disk full, I/O error, a disk remounted read-only) nothing is acknowledged:
the writer keeps the failed batch and everything queued after it, in order, reports ``saving:
false`` with the reason, and retries with a growing pause. When a retry commits, the journal has
no hole (the same entries, in the same order), the held acks go out and the status says saving
recovered. Only if the backlog outgrows :data:`MAX_BACKLOG` does the store give up for the rest of
the run (memory-only, as when the disk is unusable at start): holding more would let a dead disk
grow the hub without bound. Values are range-checked before they are queued, so no single input
can make a commit fail for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, get_args

from hub import journal
from hub.gamelog import MatchEnded, MatchEvent, MatchStarted
from hub.journal import Call, RecordingEngine, Segment
from hub.match import MatchEngine, report
from hub.round import (
    Answer,
    Event,
    Outcome,
    PhaseChanged,
    PressIn,
    QuestionDead,
    QuestionRead,
    RoundEngine,
    Ruled,
    Rules,
)
from wire.codec import ProtocolError, as_data, read
from wire.enums import MatchStatus, Phase
from wire.errors import BuzzerError
from wire.messages import MatchReport, StorageView

log = logging.getLogger("hub.store")

DATABASE_NAME = "results.db"
LOCK_NAME = "hub.lock"
SCHEMA_VERSION = 5
#: The game number given to rounds that came from a version 1 database (before the journal).
LEGACY_GAME = 0
#: Rounds played by this journal. One number today; a "new game" command can start the next.
CURRENT_GAME = 1
MAX_BATCH = 512
#: Journal steps waiting for a failing disk before the store gives up for the run (each holds a
#: few hundred bytes: this bounds what a dead disk can cost in memory to a few MB).
MAX_BACKLOG = 10_000
#: Pauses between retries of a failed commit: from the first to the longest, doubling.
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class StoreError(BuzzerError):
    """The data directory cannot be used; the message says what to do."""


class AlreadyRunning(StoreError):
    """Another hub holds the data directory's lock."""


# --- schema and migrations ---


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one inside the caller's transaction (``executescript`` would
    commit it first, and a migration must be all or nothing)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_0_to_1(db: sqlite3.Connection) -> None:
    """The first layout: results only, no journal (hubs before restore support)."""
    _script(
        db,
        """
        CREATE TABLE players (id TEXT PRIMARY KEY, name TEXT NOT NULL, input TEXT);
        CREATE TABLE rounds (
            number INTEGER PRIMARY KEY, armed_ns INTEGER, release_ns INTEGER,
            decided_ns INTEGER, winner TEXT);
        CREATE TABLE presses (
            id INTEGER PRIMARY KEY, round INTEGER, player TEXT NOT NULL, press_id TEXT NOT NULL,
            at_ns INTEGER, rank INTEGER, flags TEXT NOT NULL DEFAULT '',
            UNIQUE (player, press_id));
        """,
    )


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Add the journal, games, every press timestamp, wall-clock times, teams and scores.

    SQLite cannot change a primary key in place, so rounds and presses are rebuilt and their old
    rows copied in as game 0.
    """
    _script(
        db,
        f"""
        ALTER TABLE players ADD COLUMN team TEXT;
        ALTER TABLE players ADD COLUMN seen_wall_ns INTEGER;
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY, boot TEXT NOT NULL, started_ns INTEGER NOT NULL,
            started_wall_ns INTEGER NOT NULL, rules TEXT NOT NULL, game INTEGER NOT NULL);
        CREATE TABLE journal (
            seq INTEGER PRIMARY KEY, segment INTEGER NOT NULL REFERENCES segments (id),
            kind TEXT NOT NULL, now_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL,
            args TEXT NOT NULL);
        CREATE TABLE rounds_v2 (
            game INTEGER NOT NULL, number INTEGER NOT NULL, state TEXT,
            armed_ns INTEGER, release_ns INTEGER, decided_ns INTEGER,
            adjudication_wait_ns INTEGER, winner TEXT,
            armed_wall_ns INTEGER, decided_wall_ns INTEGER,
            PRIMARY KEY (game, number));
        INSERT INTO rounds_v2 (game, number, state, armed_ns, release_ns, decided_ns, winner)
            SELECT {LEGACY_GAME}, number, 'closed', armed_ns, release_ns, decided_ns, winner
            FROM rounds;
        DROP TABLE rounds;
        ALTER TABLE rounds_v2 RENAME TO rounds;
        CREATE TABLE presses_v2 (
            id INTEGER PRIMARY KEY, game INTEGER NOT NULL, round INTEGER,
            player TEXT NOT NULL, press_id TEXT NOT NULL,
            at_ns INTEGER, arrival_ns INTEGER, raw_ns INTEGER, uncertainty_ns INTEGER,
            synced INTEGER, rank INTEGER, reaction_ns INTEGER, behind_ns INTEGER,
            flags TEXT NOT NULL DEFAULT '', lockout_ns INTEGER, wall_ns INTEGER,
            UNIQUE (game, player, press_id));
        INSERT INTO presses_v2 (game, round, player, press_id, at_ns, rank, flags)
            SELECT {LEGACY_GAME}, round, player, press_id, at_ns, rank, flags FROM presses
            ORDER BY id;
        DROP TABLE presses;
        ALTER TABLE presses_v2 RENAME TO presses;
        CREATE INDEX presses_by_round ON presses (game, round);
        CREATE TABLE teams (id TEXT PRIMARY KEY, name TEXT NOT NULL, color TEXT);
        CREATE TABLE scores (
            id INTEGER PRIMARY KEY, game INTEGER NOT NULL, round INTEGER,
            player TEXT, team TEXT, points INTEGER NOT NULL, reason TEXT,
            wall_ns INTEGER NOT NULL);
        """,
    )


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Add matches, and move points into the journal.

    Until schema 2 the scoreboard was kept in ``scores`` and read back at start; since schema 3
    every point is given by a journalled input (so that an undo replays). The scores of the game
    in progress become ``award`` entries at the end of its journal: its rulings were journalled
    without points and give none when replayed, so a restart shows the same totals as before.
    """
    _script(
        db,
        """
        CREATE TABLE matches (
            number INTEGER PRIMARY KEY, game INTEGER NOT NULL, name TEXT NOT NULL,
            format TEXT NOT NULL, packet TEXT, setup TEXT NOT NULL, status TEXT NOT NULL,
            started_wall_ns INTEGER, ended_wall_ns INTEGER, result TEXT);
        CREATE INDEX segments_by_game ON segments (game);
        """,
    )
    (segment,) = db.execute("SELECT MAX(id) FROM segments WHERE game = 1").fetchone()
    if segment is None:
        return
    (now,) = db.execute(
        "SELECT coalesce((SELECT MAX(now_ns) FROM journal WHERE segment = ?), started_ns) "
        "FROM segments WHERE id = ?",
        (segment, segment),
    ).fetchone()
    rows = db.execute(
        "SELECT points, player, team, reason, wall_ns FROM scores WHERE game = 1 ORDER BY id"
    ).fetchall()
    for points, player, team, reason, wall in rows:
        args = {"points": points, "player": player, "team": team, "reason": reason or ""}
        db.execute(
            "INSERT INTO journal (segment, kind, now_ns, wall_ns, args) "
            "VALUES (?, 'award', ?, ?, ?)",
            (segment, now, wall, json.dumps(args, separators=(",", ":"))),
        )


def _migrate_3_to_4(db: sqlite3.Connection) -> None:
    """Add the tournament outbox and this database's own id.

    ``outbox`` holds, for a hub in a tournament, one row per change of a match (started, its log
    changed, ended), numbered in order, written in the same transaction as the match's own rows:
    whatever the room saved, the central link will send, and nothing it did not save. The
    results database keys every row on ``meta.source`` and the number, so a row sent twice
    counts once, and two hubs (or one hub's data directory replaced mid-tournament) never
    collide. AUTOINCREMENT: a number is never given twice, even after rows are pruned.
    """
    _script(
        db,
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, tournament TEXT NOT NULL,
            room TEXT NOT NULL, kind TEXT NOT NULL, match INTEGER NOT NULL,
            wall_ns INTEGER NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta (key, value) VALUES ('source', lower(hex(randomblob(16))));
        """,
    )


def _migrate_4_to_5(db: sqlite3.Connection) -> None:
    """A place for journal rows that cannot be replayed: kept aside, never deleted."""
    _script(
        db,
        """
        CREATE TABLE quarantine (
            seq INTEGER PRIMARY KEY, segment INTEGER, kind, now_ns, wall_ns, args,
            reason TEXT NOT NULL, moved_wall_ns INTEGER NOT NULL);
        """,
    )


#: ``MIGRATIONS[n]`` takes a database from version n to n + 1. Append; never edit a shipped one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_0_to_1,
    _migrate_1_to_2,
    _migrate_2_to_3,
    _migrate_3_to_4,
    _migrate_4_to_5,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one step per transaction; return the old
    version. A database from a newer hub is refused rather than guessed at."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database was written by a newer hub (schema {version}, this hub knows "
            f"{SCHEMA_VERSION}); update this hub or use another --data-dir"
        )
    for step in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        log.info("database schema migrated from version %d to %d", step, step + 1)
    return int(version)


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and full sync."""
    if read_only:
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
    else:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA busy_timeout = 2000")
    return db


def boot_id() -> str:
    """Which boot of this machine we are in: monotonic times are comparable only within one."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return "unknown"


# --- the lock ---


class DataDirLock:
    """An exclusive ``flock`` on a file in the data directory, held for the hub's lifetime.

    The kernel drops the lock when the process dies, however it dies, so a crash never leaves a
    stale lock behind.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            try:  # a read-only directory: lock the file if it is there
                fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                raise exc from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another hub is already using the data directory {self.path.parent} "
                f"(it holds {self.path}); stop that hub, or give this one its own --data-dir"
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --- status ---


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """What hosts are told about storage: are results being saved, and if not, why."""

    saving: bool
    path: str
    message: str

    def view(self) -> StorageView:
        return StorageView(saving=self.saving, path=self.path, message=self.message)


# --- the store ---

Statement = tuple[str, Sequence[Any]]


@dataclass(slots=True)
class _Job:
    """Statements to commit, or how to build them (on the writer thread, off the event loop)."""

    statements: list[Statement] | Callable[[], list[Statement]]
    done: Callable[[], None] | None
    outbox: bool = False  # it adds rows to the tournament outbox
    lost: Callable[[], None] | None = None  # runs instead of ``done`` if the job is dropped
    settled: bool = False  # on disk, or dropped: a batch retried after a split skips it

    def resolve(self) -> list[Statement]:
        if callable(self.statements):
            self.statements = self.statements()
        return self.statements


class Unstorable(ValueError):
    """A value no column can hold (an integer beyond 64 bits): the job is refused, never acked."""


def check_storable(statements: Iterable[Statement]) -> None:
    """Raise :class:`Unstorable` if any integer in ``statements`` does not fit a column.

    Run on the writer thread for every row of every press (a dozen values each, while the loop
    wants the interpreter too), so the bounds are compared in place.
    """
    low, high = journal.INT64_MIN, journal.INT64_MAX
    for _, params in statements:
        rows = params if isinstance(params, list) else [params]  # a list: rows for executemany
        for row in rows:
            for value in row:
                if isinstance(value, int) and not low <= value <= high:
                    raise Unstorable(f"the number {value} does not fit a 64-bit column")


class Store:
    """The hub's database: opened once per process, written by one thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / DATABASE_NAME
        self.lock = DataDirLock(directory)
        self._db: sqlite3.Connection | None = None
        self._segment: int | None = None
        self._game = CURRENT_GAME  # the game this run's journal entries belong to
        self._status = StorageStatus(True, str(self.path), "results are saved")
        self._gave_up = False  # memory-only for the rest of the run: writes are not queued
        self._failing_since: float | None = None  # a commit is failing and being retried
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_status: Callable[[StorageStatus], None] | None = None
        #: (tournament, room): matches are also written to the outbox for the results database.
        self.outbox: tuple[str, str] | None = None
        #: Runs on the loop after a commit that added outbox rows (the central link wakes up).
        self.on_outbox: Callable[[], None] | None = None

    # --- opening ---

    def open(self) -> None:
        """Lock the directory and open (or create, or migrate) the database.

        Raises :class:`AlreadyRunning` when another hub has the directory. Any other trouble
        (read-only or missing directory, a damaged file that cannot be moved aside) leaves the
        store in memory-only mode with a clear status instead: the event can still go on.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except AlreadyRunning:
            raise
        except OSError as exc:
            self._fail(f"cannot use the data directory {self.directory}: {_why(exc)}")
            return
        try:
            self._db = self._open_checked()
        except (sqlite3.Error, OSError) as exc:
            self._db = None
            self._fail(f"cannot open {self.path}: {_why(exc)}")

    def _open_checked(self) -> sqlite3.Connection:
        try:
            return self._open_database()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            aside = self.path.with_name(
                f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(Path(f"{aside}{suffix}"))
            message = (
                f"the database {self.path} was damaged ({exc}); it was moved aside to {aside} "
                "and a new one started: earlier rounds are only in that file"
            )
            log.error("%s", message)
            self._status = StorageStatus(True, str(self.path), message)
            return self._open_database()

    def _open_database(self) -> sqlite3.Connection:
        db = connect(self.path)
        try:
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
            migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    @property
    def status(self) -> StorageStatus:
        return self._status

    @property
    def saving(self) -> bool:
        return self._status.saving

    @property
    def accepting(self) -> bool:
        """Whether writes are queued (they are while a failing commit is retried)."""
        return self._db is not None and not self._gave_up

    def _set_status(self, status: StorageStatus) -> None:
        self._status = status
        log.log(logging.INFO if status.saving else logging.ERROR, "storage: %s", status.message)
        if self._loop is not None and self.on_status is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._loop.call_soon_threadsafe(self.on_status, status)

    def give_up(self, message: str) -> None:
        """Memory-only for the rest of this run: the disk cannot be used (``message``: why)."""
        self._fail(message)

    def _fail(self, message: str) -> None:
        """Switch to memory-only mode for the rest of this run (called once, on either thread)."""
        if self._gave_up:
            return
        self._gave_up = True
        self._set_status(
            StorageStatus(
                False,
                str(self.path),
                f"{message}; results are NOT being saved for the rest of this run (ranking goes "
                "on; restart the hub once the disk is fixed)",
            )
        )

    def _failing(self, message: str) -> None:
        """A commit failed: say so, once, while it is retried."""
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            self._set_status(
                StorageStatus(
                    False,
                    str(self.path),
                    f"{message}; results are NOT being saved right now: retrying, and presses "
                    "are acknowledged once they are (ranking goes on)",
                )
            )

    def _recovered(self) -> None:
        if self._failing_since is None:
            return
        took = time.monotonic() - self._failing_since
        self._failing_since = None
        self._set_status(
            StorageStatus(
                True, str(self.path), f"results are saved (saving recovered after {took:.1f} s)"
            )
        )

    # --- restore ---

    def restore(
        self, rules: Rules, now_ns: int, wall_ns: int
    ) -> tuple[RecordingEngine, list[Event]]:
        """Replay the journal into a fresh engine and open a new segment for this run.

        Returns the engine with the exact state the last run left, and the events the replay
        produced (the caller does not re-send them: they were sent before the restart).
        """
        db = self._db
        if db is None or not self.accepting:
            return RecordingEngine(rules), []
        try:
            (latest,) = db.execute("SELECT MAX(game) FROM segments").fetchone()
            self._game = CURRENT_GAME if latest is None else int(latest)
            engine, events = self._replay(db, rules, now_ns)
            cursor = db.execute(
                "INSERT INTO segments (boot, started_ns, started_wall_ns, rules, game) "
                "VALUES (?, ?, ?, ?, ?)",
                (boot_id(), now_ns, wall_ns, journal.rules_json(rules), self._game),
            )
            self._segment = cursor.lastrowid
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._fail(f"cannot read or extend {self.path}: {_why(exc)}")
            return RecordingEngine(rules), []
        engine.set_base_rules(rules)  # from here on, this run's config applies
        # Derived tables are rebuilt from the replay: a press acknowledged but not yet decided
        # before the restart gets its row completed when the restored engine decides it.
        self._queue.put(_Job(self._derived(events, engine, wall_ns), None))
        return engine, events

    def _replay(
        self, db: sqlite3.Connection, rules: Rules, now_ns: int
    ) -> tuple[RecordingEngine, list[Event]]:
        """Replay every readable journal entry; set aside the ones that cannot be read.

        A row that does not parse, or that the engine cannot take, is moved to the
        ``quarantine`` table (kept, never deleted) and counted in the status, so that one
        damaged row costs the round it belonged to, never the hub's start.
        """
        damaged: list[tuple[int, str]] = []  # (seq, why)
        segments = []
        for sid, boot, started, text, last in db.execute(
            "SELECT s.id, s.boot, s.started_ns, s.rules, (SELECT MAX(CASE WHEN "
            "typeof(now_ns) = 'integer' THEN now_ns END) FROM journal j WHERE j.segment = s.id) "
            "FROM segments s WHERE s.game = ? ORDER BY s.id",
            (self._game,),
        ):
            try:
                segment_rules = journal.rules_from_json(text)
            except Exception as exc:  # a damaged segment: this run's rules stand in
                log.warning("segment %s of %s has unreadable rules (%s)", sid, self.path, exc)
                segment_rules = rules
            if not isinstance(started, int):
                started = last if isinstance(last, int) else 0
            segments.append(Segment(sid, str(boot), started, segment_rules, last))
        if not segments:
            return RecordingEngine(rules), []
        shifts = journal.segment_shifts(segments, boot_id(), now_ns)
        by_id = {segment.id: segment for segment in segments}
        engine = RecordingEngine(segments[0].rules)
        events: list[Event] = []
        current: int | None = None
        started_at = time.perf_counter()
        rows = db.execute(
            "SELECT seq, segment, kind, now_ns, args FROM journal "
            "WHERE segment IN (SELECT id FROM segments WHERE game = ?) ORDER BY seq",
            (self._game,),
        ).fetchall()
        for seq, segment, kind, now, args in rows:
            try:
                call = Call.load(kind, now, args).shifted(shifts[segment])
            except Exception as exc:  # damaged: set aside, go on with the rest
                damaged.append((seq, _why(exc)[:200]))
                continue
            if segment != current:
                engine.set_base_rules(by_id[segment].rules)
                current = segment
            try:
                events.extend(engine.apply(call.input, call.now_ns))
            except Exception as exc:  # a readable entry the engine cannot take
                damaged.append((seq, f"the engine refused it: {_why(exc)}"[:200]))
        engine.take_calls()  # already in the journal
        if damaged:
            self._quarantine(db, damaged)
        log.info(
            "restored round %d (%s) and %d earlier rounds from %s in %.1f ms",
            engine.number,
            engine.phase,
            len(engine.history) - (1 if engine.current in engine.history else 0),
            self.path,
            (time.perf_counter() - started_at) * 1e3,
        )
        return engine, events

    def _quarantine(self, db: sqlite3.Connection, damaged: list[tuple[int, str]]) -> None:
        """Move damaged journal rows to ``quarantine`` (one transaction) and say so."""
        wall = time.time_ns()
        db.execute("BEGIN IMMEDIATE")
        try:
            for seq, why in damaged:
                db.execute(
                    "INSERT OR REPLACE INTO quarantine (seq, segment, kind, now_ns, wall_ns, "
                    "args, reason, moved_wall_ns) SELECT seq, segment, kind, now_ns, wall_ns, "
                    "args, ?, ? FROM journal WHERE seq = ?",
                    (why, wall, seq),
                )
                db.execute("DELETE FROM journal WHERE seq = ?", (seq,))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        first = damaged[0][1]
        message = (
            f"results are saved; {len(damaged)} damaged journal "
            f"entr{'y was' if len(damaged) == 1 else 'ies were'} set aside in table "
            f"'quarantine' of {self.path} (first: {first}); the rounds they belonged to may "
            "be incomplete"
        )
        log.error("storage: %s", message)
        self._status = StorageStatus(True, str(self.path), message)

    def players(self) -> list[tuple[str, str, str | None, str | None]]:
        """The roster as last saved: (id, name, input, team)."""
        if self._db is None or not self.accepting:
            return []
        try:
            rows = self._db.execute("SELECT id, name, input, team FROM players ORDER BY rowid")
            return [
                (
                    str(a),
                    str(b),
                    c if isinstance(c, str) else None,
                    d if isinstance(d, str) else None,
                )
                for a, b, c, d in rows
            ]
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.path}: {_why(exc)}")
            return []

    def last_match(self) -> tuple[int, MatchReport | None]:
        """The highest match number given so far, and the result of the last match that ended
        (for the console to show until the next one starts)."""
        if self._db is None or not self.accepting:
            return 0, None
        try:
            (number,) = self._db.execute("SELECT MAX(number) FROM matches").fetchone()
            row = self._db.execute(
                "SELECT result FROM matches WHERE status = ? ORDER BY number DESC LIMIT 1",
                (MatchStatus.ENDED,),
            ).fetchone()
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.path}: {_why(exc)}")
            return 0, None
        report = _report(row[0]) if row is not None else None
        return int(number or 0), report

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread; completions are handed back to ``loop``."""
        self._loop = loop
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    def record(
        self,
        calls: Sequence[Call],
        events: Sequence[Event],
        engine: MatchEngine,
        done: Callable[[], None] | None,
        lost: Callable[[], None] | None = None,
    ) -> None:
        """Queue what one engine step did; ``done`` runs on the loop once it is committed
        (``lost`` instead, if it is refused on its own and never written).

        On the loop this only picks out what the step changed (calls and outcomes are frozen
        values; the few round fields are copied, since a round record changes as play goes on)
        and which game and segment each call goes to (a call that starts a game opens a
        segment of its own). Building the journal and press rows, their JSON and the SQL
        happens on the writer thread.

        In memory-only mode ``done`` runs at once: the press is recorded in memory, which is all
        this run can promise, and nodes must not re-send forever.
        """
        if not self.accepting or self._thread is None:
            if done is not None:
                done()
            return
        wall = time.time_ns()
        # Rows derived from the events belong to the game the step began in: in a step that
        # starts a new game, to the game that ends with it.
        game = self._game
        outcomes = [event.outcome for event in events if isinstance(event, Answer)]
        rounds = _round_rows(events, engine)
        placed: list[tuple[int | None, int, Call, bool]] = []  # segment, game, call, opens it
        for call in calls:
            opens = call.starts_game and self._segment is not None
            if opens and self._segment is not None:
                self._game += 1
                self._segment += 1
            placed.append((self._segment, self._game, call, opens))
        # Frozen: read on the writer thread, and only written out when a call opens a segment
        # (rare: at a game's start), not for every press.
        base_rules = engine.base_rules
        matches = self._match_rows(events, engine, wall)

        def build() -> list[Statement]:
            statements: list[Statement] = [_outcome_statement(o, game, wall) for o in outcomes]
            statements.extend(_round_statement(row, game, wall) for row in rounds)
            for segment, in_game, call, opens in placed:
                if opens:
                    statements.append(
                        (
                            SEGMENT_INSERT,
                            (
                                segment,
                                boot_id(),
                                call.now_ns,
                                wall,
                                journal.rules_json(base_rules),
                                in_game,
                            ),
                        )
                    )
                statements.append(
                    (JOURNAL_INSERT, (segment, call.kind, call.now_ns, wall, call.payload()))
                )
                if call.press is not None:
                    # The press's export row, undecided yet: export lists every acknowledged press.
                    statements.append((PRESS_INSERT, _press_row(call.press, in_game, wall)))
            statements.extend(matches)
            return statements

        outbox = any(sql.startswith("INSERT INTO outbox") for sql, _ in matches)
        self._queue.put(_Job(build, done, outbox, lost))

    def after_queued(self, done: Callable[[], None]) -> None:
        """``done`` runs on the loop once everything queued so far is on disk (or given up on):
        for an embedder that reads the file itself, such as the results of a match just ended."""
        self._write([], done)

    def save_player(self, player_id: str, name: str, input_kind: str, team: str | None) -> None:
        """Remember a player in the roster (nothing waits for it)."""
        self._write([(PLAYER_UPSERT, (player_id, name, input_kind, team, time.time_ns()))], None)

    def _write(self, statements: list[Statement], done: Callable[[], None] | None) -> None:
        """Queue statements; ``done`` runs on the loop once they are committed (at once when
        nothing is being written)."""
        if not self.accepting or self._thread is None:
            if done is not None:
                done()
            return
        self._queue.put(_Job(statements, done))

    def _match_rows(
        self, events: Sequence[Event], engine: MatchEngine, wall: int
    ) -> list[Statement]:
        """The matches table: a row when a match starts, its result kept up to date while it
        is played (every step that changed its log), final when it ends."""
        statements: list[Statement] = []
        for event in events:
            if isinstance(event, MatchStarted) and engine.match is not None:
                setup = engine.match
                statements.append(
                    (
                        "INSERT OR REPLACE INTO matches (number, game, name, format, packet, "
                        "setup, status, started_wall_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            setup.number,
                            self._game,
                            setup.name,
                            setup.format.name,
                            setup.packet,
                            json.dumps(setup.data(), separators=(",", ":")),
                            MatchStatus.PLAYING,
                            wall,
                        ),
                    )
                )
            elif isinstance(event, MatchEnded):
                statements.append(
                    (
                        "UPDATE matches SET status = ?, ended_wall_ns = ?, result = ? "
                        "WHERE number = ?",
                        (MatchStatus.ENDED, wall, _report_json(event.report), event.number),
                    )
                )
        # A ruling, a bonus part, a question read or dead, a round armed or decided: the result
        # changed. A press alone (ranked after a decision) waits for the next of these: at a
        # thousand players, rebuilding the result for each press would cost the loop a second.
        changed = any(isinstance(event, LOG_CHANGES) for event in events)
        if engine.match is not None and changed:
            statements.append(
                (
                    "UPDATE matches SET result = ? WHERE number = ?",
                    (_report_json(report(engine, {})), engine.match.number),
                )
            )
        statements.extend(self._outbox_rows(events, engine, changed, wall))
        return statements

    def _outbox_rows(
        self, events: Sequence[Event], engine: MatchEngine, changed: bool, wall: int
    ) -> list[Statement]:
        """A hub in a tournament: what the central link must send, in the same transaction as
        the match rows it points at. A row names the match, not its content: the link sends the
        match as saved when it sends, so a room that was offline for an hour sends each match
        once, as it is now, however many rulings it missed."""
        if self.outbox is None:
            return []
        tournament, room = self.outbox
        rows: list[tuple[str, int]] = []
        for event in events:
            if isinstance(event, MatchStarted) and engine.match is not None:
                rows.append(("start", engine.match.number))
            elif isinstance(event, MatchEnded):
                rows.append(("end", event.number))
        if engine.match is not None and changed and not rows:
            rows.append(("change", engine.match.number))
        return [
            (
                "INSERT INTO outbox (tournament, room, kind, match, wall_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (tournament, room, kind, number, wall),
            )
            for kind, number in rows
        ]

    def _derived(self, events: Iterable[Event], engine: RoundEngine, wall: int) -> list[Statement]:
        """Upserts for the rounds and presses tables from what the engine decided."""
        game = self._game
        statements: list[Statement] = [
            _outcome_statement(event.outcome, game, wall)
            for event in events
            if isinstance(event, Answer)
        ]
        statements.extend(_round_statement(row, game, wall) for row in _round_rows(events, engine))
        return statements

    def _writer(self) -> None:
        """Commit whatever has queued up, in order, a batch per transaction; report back.

        A batch that fails stays at the head of the backlog and is retried, with everything
        queued after it waiting behind it: nothing is acknowledged before it is on disk, and
        the journal never gets a hole.
        """
        backlog: deque[_Job] = deque()
        stopping = False
        pause = RETRY_FIRST_S
        while True:
            if not backlog:
                if stopping:
                    break
                first = self._queue.get()
                if first is None:
                    break
                backlog.append(first)
            while len(backlog) < MAX_BACKLOG + MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                backlog.append(job)
            batch = [backlog[i] for i in range(min(MAX_BATCH, len(backlog)))]
            if self._commit(batch):
                for _ in batch:
                    backlog.popleft()
                self._report(batch)
                pause = RETRY_FIRST_S
                continue
            if stopping or len(backlog) > MAX_BACKLOG:
                why = "the hub is stopping" if stopping else f"{len(backlog)} steps are waiting"
                self._fail(f"writing {self.path} kept failing and {why}")
                self._report(list(backlog))  # acknowledged as recorded in memory, as documented
                backlog.clear()
                continue
            self._stop.wait(pause)
            pause = min(pause * 2, RETRY_MAX_S)

    def _report(self, batch: Sequence[_Job]) -> None:
        callbacks = [job.done for job in batch if job.done is not None]
        if self.on_outbox is not None and any(job.outbox for job in batch) and self.saving:
            callbacks.append(self.on_outbox)
        if callbacks and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while we wrote
                self._loop.call_soon_threadsafe(_run_all, callbacks)

    def _commit(self, batch: list[_Job]) -> bool:
        """Commit ``batch`` in one transaction; False if it failed and should be retried.

        A job whose values no column can hold, or that fails on its own for a reason other than
        the disk, is dropped (logged, never acknowledged) so that it cannot block the others.
        """
        db = self._db
        if db is None or self._gave_up:
            return True
        jobs = []
        for job in batch:
            if job.settled:  # a retry of a batch split earlier: this one is done with
                continue
            try:
                check_storable(job.resolve())
                jobs.append(job)
            except Exception as exc:  # a bug or a hostile value: this job only, never the rest
                self._drop(job, exc)
        try:
            self._transaction(db, jobs)
        except (sqlite3.OperationalError, OSError) as exc:  # the disk: full, read-only, failing
            self._failing(f"writing {self.path} failed: {_why(exc)}")
            return False
        except Exception as exc:
            if isinstance(exc, sqlite3.DatabaseError) and _is_damage(exc):
                # The file itself is damaged: no retry helps, and no single job is to blame.
                self._fail(f"{self.path} is damaged ({_why(exc)})")
                return True
            if len(jobs) == 1:
                self._drop(jobs[0], exc)
                return True
            return all(self._commit([job]) for job in jobs)  # find the one that fails
        for job in jobs:
            job.settled = True
        self._recovered()
        return True

    def _transaction(self, db: sqlite3.Connection, jobs: list[_Job]) -> None:
        """One transaction for a batch. Rows of the press path's statements (journal, press,
        outcome, round, and the players a room's first burst brings) are gathered across the
        batch and written a few statements each, in their order; any other statement first
        writes what was gathered, so that everything keeps the order it was queued in where
        order can matter."""
        gathered: dict[str, list[Sequence[Any]]] = {}

        def flush() -> None:
            for sql, rows in gathered.items():
                insert_rows(db, sql, rows)
            gathered.clear()

        try:
            db.execute("BEGIN IMMEDIATE")
            for job in jobs:
                for sql, params in job.resolve():
                    rows = params if params and isinstance(params, list) else [params]
                    if sql in GATHERED:
                        gathered.setdefault(sql, []).extend(rows)
                        continue
                    flush()
                    db.executemany(sql, rows)
            flush()
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    def _drop(self, job: _Job, exc: Exception) -> None:
        job.done, job.lost = job.lost, None  # reported as lost: nothing acknowledged
        job.settled = True
        log.error("storage: a write was refused and not acknowledged: %s", _why(exc))

    def results_csv(self) -> str | None:
        """Every saved press as CSV, read on a separate read-only connection; None when this
        run is not saving (the caller then exports from memory, which is more complete)."""
        if self._db is None or self._gave_up:
            return None
        try:
            db = connect(self.path, read_only=True)
            try:
                return csv_text(export_rows(db))
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("cannot read %s for the CSV download: %s", self.path, exc)
            return None

    def match_report(self, number: int | None) -> MatchReport | None:
        """A match's saved result (None: the latest match), read on a separate read-only
        connection; None if there is no such match or nothing is saved."""
        if self._db is None or self._gave_up:
            return None
        try:
            db = connect(self.path, read_only=True)
            try:
                return saved_report(db, number)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("cannot read %s for a match result: %s", self.path, exc)
            return None

    def close(self) -> None:
        """Finish every queued write, then close the database and release the lock."""
        if self._thread is not None:
            self._queue.put(None)
            self._stop.set()  # a failing commit is tried once more, not after a long pause
            self._thread.join(timeout=10)
            self._thread = None
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self.lock.release()


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


SEGMENT_INSERT = (
    "INSERT INTO segments (id, boot, started_ns, started_wall_ns, rules, game) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
JOURNAL_INSERT = "INSERT INTO journal (segment, kind, now_ns, wall_ns, args) VALUES (?, ?, ?, ?, ?)"
ROUND_UPSERT = (
    "INSERT INTO rounds (game, number, state, armed_ns, release_ns, decided_ns, "
    "adjudication_wait_ns, winner, armed_wall_ns, decided_wall_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (game, number) DO UPDATE SET state = excluded.state, "
    "decided_ns = excluded.decided_ns, "
    "adjudication_wait_ns = excluded.adjudication_wait_ns, "
    "winner = excluded.winner, "
    "decided_wall_ns = coalesce(rounds.decided_wall_ns, excluded.decided_wall_ns)"
)
OUTCOME_UPSERT = (
    "INSERT INTO presses (game, round, player, press_id, at_ns, arrival_ns, raw_ns, "
    "uncertainty_ns, synced, rank, reaction_ns, behind_ns, flags, lockout_ns, wall_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (game, player, press_id) DO UPDATE SET round = excluded.round, "
    "rank = excluded.rank, reaction_ns = excluded.reaction_ns, "
    "behind_ns = excluded.behind_ns, flags = excluded.flags, lockout_ns = excluded.lockout_ns "
    # A press re-sent after its round is forgotten is judged again (stale): its row keeps the
    # outcome of the round it was made in.
    "WHERE presses.round IS NULL OR presses.round = excluded.round"
)

PLAYER_UPSERT = (
    "INSERT INTO players (id, name, input, team, seen_wall_ns) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, input = excluded.input, "
    "team = excluded.team, seen_wall_ns = excluded.seen_wall_ns"
)

PRESS_INSERT = (
    "INSERT OR IGNORE INTO presses (game, round, player, press_id, at_ns, arrival_ns, raw_ns, "
    "uncertainty_ns, synced, wall_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


#: Values bound in one statement at most: SQLite's limit before 3.32, the lowest there is.
MAX_BOUND_VALUES = 999


def insert_rows(db: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows for one INSERT (an upsert too), several to a statement, in their order.

    Each statement is one step of SQLite, and between steps the writer thread hands the
    interpreter to the loop and must then wait to get it back: up to the switch interval, 5 ms,
    whenever the loop is busy, as it is in a burst. With a step per row (``executemany``), a
    batch of a thousand presses took a quarter of a second to commit instead of 40 ms. SQLite
    inserts the rows of a ``VALUES`` list one after another, each meeting the rows before it, as
    ``executemany`` would.
    """
    if not rows:
        return
    per = max(1, MAX_BOUND_VALUES // max(1, len(rows[0])))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        db.execute(_values_for(sql, len(chunk)), [value for row in chunk for value in row])


_MULTI_ROW: dict[tuple[str, int], str] = {}


def _values_for(sql: str, count: int) -> str:
    """``sql`` (one ``VALUES (?, ...)`` group) with the group repeated ``count`` times."""
    key = (sql, count)
    text = _MULTI_ROW.get(key)
    if text is None:
        head, values, tail = sql.partition("VALUES (")
        group, close, rest = tail.partition(")")
        if not values or not close or group.replace("?", "").replace(",", "").strip():
            raise ValueError(f"not a single-row INSERT with placeholders: {sql[:60]!r}")
        one = f"({group})"
        text = f"{head}VALUES {', '.join([one] * count)}{rest}"
        if len(_MULTI_ROW) < 256:  # a few statements, a few chunk sizes each
            _MULTI_ROW[key] = text
    return text


#: Statements whose rows can be written together across a batch: each touches its own table, and
#: among a press's two rows the upsert wins whichever comes first (the insert only fills a gap).
GATHERED = frozenset({JOURNAL_INSERT, PRESS_INSERT, OUTCOME_UPSERT, ROUND_UPSERT, PLAYER_UPSERT})


def _press_columns(press: PressIn) -> tuple[object, ...]:
    """player, press_id, at_ns, arrival_ns, raw_ns, uncertainty_ns, synced: as stored."""
    return (
        press.player,
        press.press_id,
        press.at_ns,
        press.arrival_ns,
        press.raw_ns,
        press.uncertainty_ns,
        int(press.synced),
    )


def _press_row(press: PressIn, game: int, wall: int) -> tuple[object, ...]:
    return (game, None, *_press_columns(press), wall)


RoundRow = tuple[int, str, int, int, int | None, int | None, str | None]


def _round_rows(events: Iterable[Event], engine: RoundEngine) -> list[RoundRow]:
    """The rounds a step changed, copied as they stand now (read on the loop: records change).

    ``(number, state, armed, release, decided, wait, winner)``.
    """
    numbers = sorted({event.round for event in events if isinstance(event, PhaseChanged)})
    rows: list[RoundRow] = []
    for number in numbers:
        record = engine.current if engine.current and engine.current.number == number else None
        if record is None:
            record = next((r for r in reversed(engine.history) if r.number == number), None)
        if record is None:
            continue
        state = engine.phase if record is engine.current else Phase.CLOSED
        winner = record.winner.press.player if record.winner else None
        rows.append(
            (
                record.number,
                state,
                record.armed_ns,
                record.release_ns,
                record.decided_ns,
                record.adjudication_wait_ns,
                winner,
            )
        )
    return rows


def _round_statement(row: RoundRow, game: int, wall: int) -> Statement:
    decided_wall = wall if row[4] is not None else None
    return ROUND_UPSERT, (game, *row, wall, decided_wall)


#: Events after which a match's saved result is brought up to date.
LOG_CHANGES = (PhaseChanged, Ruled, QuestionDead, QuestionRead, *get_args(MatchEvent))


def _report_json(value: MatchReport) -> str:
    return json.dumps(as_data(value), separators=(",", ":"))


def _report(text: str | None) -> MatchReport | None:
    """A saved result, or None if there is none or it cannot be read (it is logged)."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        log.warning("a saved match result is not JSON: %s", exc)
        return None
    value = read(MatchReport, data)
    if isinstance(value, ProtocolError):
        log.warning("a saved match result cannot be read: %s", value.message)
        return None
    return value


def _outcome_statement(outcome: Outcome, game: int, wall: int) -> Statement:
    press = outcome.press
    return (
        OUTCOME_UPSERT,
        (
            game,
            outcome.round,
            *_press_columns(press),
            outcome.rank,
            outcome.reaction_ns,
            outcome.behind_ns,
            ",".join(sorted(outcome.flags)),
            outcome.lockout_ns,
            wall,
        ),
    )


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _text(value: object) -> str | None:
    """A text column as read back: a damaged cell of another type counts as empty."""
    return value if isinstance(value, str) else None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


# --- export ---

EXPORT_COLUMNS = (
    "game",
    "round",
    "rank",
    "player",
    "name",
    "team",
    "press_id",
    "flags",
    "reaction_ms",
    "behind_ms",
    "uncertainty_ms",
    "pressed_at",
    "press_ns",
    "arrival_ns",
    "node_ns",
    "synced",
)


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _wall(ns: int | None) -> str | None:
    """Local wall-clock time for people reading the export; never used for ranking."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
    return f"{stamp}.{rest // 1_000_000:03d}"


def export_rows(db: sqlite3.Connection, round_number: int | None = None) -> list[dict[str, Any]]:
    """One dict per press, in game, round and rank order (unranked presses after the ranked)."""
    where = ""
    params: tuple[int, ...] = ()
    if round_number is not None:
        where = "WHERE p.round = ? AND p.game = (SELECT MAX(game) FROM presses)"
        params = (round_number,)
    rows = db.execute(
        "SELECT p.game, p.round, p.rank, p.player, coalesce(pl.name, p.player), pl.team, "
        "p.press_id, p.flags, p.reaction_ns, p.behind_ns, p.uncertainty_ns, p.wall_ns, "
        "p.at_ns, p.arrival_ns, p.raw_ns, p.synced "
        f"FROM presses p LEFT JOIN players pl ON pl.id = p.player {where} "
        "ORDER BY p.game, p.round IS NULL, p.round, p.rank IS NULL, p.rank, p.id",
        params,
    )
    return [
        {
            "game": game,
            "round": number,
            "rank": rank,
            "player": player,
            "name": name,
            "team": team,
            "press_id": press_id,
            "flags": flags,
            "reaction_ms": _ms(reaction),
            "behind_ms": _ms(behind),
            "uncertainty_ms": _ms(uncertainty),
            "pressed_at": _wall(wall),
            "press_ns": at,
            "arrival_ns": arrival,
            "node_ns": raw,
            "synced": None if synced is None else bool(synced),
        }
        for (
            game,
            number,
            rank,
            player,
            name,
            team,
            press_id,
            flags,
            reaction,
            behind,
            uncertainty,
            wall,
            at,
            arrival,
            raw,
            synced,
        ) in rows
    ]


def rows_from_engine(
    engine: RoundEngine, names: Mapping[str, str], round_number: int | None = None
) -> list[dict[str, Any]]:
    """The same rows from the engine's memory, for when nothing could be saved."""
    records = list(engine.history)
    if engine.current is not None and engine.current not in records:
        records.append(engine.current)
    rows = []
    for record in records:
        if round_number is not None and record.number != round_number:
            continue
        for outcome in [*record.ranked, *record.refused]:
            press = outcome.press
            rows.append(
                {
                    "game": CURRENT_GAME,
                    "round": record.number,
                    "rank": outcome.rank,
                    "player": press.player,
                    "name": names.get(press.player, press.player),
                    "team": None,
                    "press_id": press.press_id,
                    "flags": ",".join(sorted(outcome.flags)),
                    "reaction_ms": _ms(outcome.reaction_ns),
                    "behind_ms": _ms(outcome.behind_ns),
                    "uncertainty_ms": _ms(press.uncertainty_ns),
                    "pressed_at": None,
                    "press_ns": press.at_ns,
                    "arrival_ns": press.arrival_ns,
                    "node_ns": press.raw_ns,
                    "synced": press.synced,
                }
            )
    return rows


#: A cell a spreadsheet would read as a formula starts with one of these (OWASP's list for CSV
#: injection); such text gets a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: empty for None; text that could run as a formula, defused."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> None:
    """CSV a spreadsheet opens as is: a header row, then one row per press, empty for none.

    Names come from players, who may be anyone in the room: a name such as
    ``=HYPERLINK(...)`` must arrive in the host's spreadsheet as text, not run there."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    write_csv(rows, out)
    return out.getvalue()


def write_json(rows: Sequence[Mapping[str, Any]], out: IO[str]) -> None:
    json.dump({"columns": list(EXPORT_COLUMNS), "presses": list(rows)}, out, indent=1)
    out.write("\n")


def saved_report(db: sqlite3.Connection, number: int | None) -> MatchReport | None:
    """A match's result as saved (``number`` None: the latest match), or None."""
    if number is None:
        row = db.execute("SELECT result FROM matches ORDER BY number DESC LIMIT 1").fetchone()
    else:
        row = db.execute("SELECT result FROM matches WHERE number = ?", (number,)).fetchone()
    return None if row is None else _report(row[0])


def _read_only(directory: Path) -> sqlite3.Connection:
    """The hub's database, read-only (safe while a hub runs), at the current schema."""
    path = directory / DATABASE_NAME
    if not path.exists():
        raise StoreError(f"no results database at {path}; is --data-dir right?")
    db = connect(path, read_only=True)
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version != SCHEMA_VERSION:
        db.close()
        raise StoreError(f"{path} has schema {version}; start this hub on it once to migrate it")
    return db


def export(directory: Path, fmt: str, out: IO[str], round_number: int | None = None) -> None:
    """``buzzer-hub export``: every press, read from the database, to ``out``."""
    try:
        db = _read_only(directory)
        try:
            rows = export_rows(db, round_number)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {directory / DATABASE_NAME}: {exc}") from exc
    if fmt == "csv":
        write_csv(rows, out)
    else:
        write_json(rows, out)


def read_match(directory: Path, number: int | None) -> MatchReport:
    """``buzzer-hub export --match``: a match's result from the database (None: the latest)."""
    try:
        db = _read_only(directory)
        try:
            report = saved_report(db, number)
            numbers = [n for (n,) in db.execute("SELECT number FROM matches ORDER BY number")]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {directory / DATABASE_NAME}: {exc}") from exc
    if report is None:
        known = ", ".join(str(n) for n in numbers) or "none yet"
        which = "no match has been played" if number is None else f"no match {number}"
        raise StoreError(f"{which} in {directory}; matches: {known}")
    return report


# --- the tournament outbox, read by the central link ---


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One change of a match to send: its number in this database's order, and to where."""

    seq: int
    tournament: str
    room: str
    kind: str  # "start", "change", "end"
    match: int
    wall_ns: int


@dataclass(frozen=True, slots=True)
class SavedMatch:
    """A match as saved in the room, as the central link sends it."""

    number: int
    name: str
    packet: str | None
    format: str
    setup: str  # JSON: the match's teams and players, as it started
    status: str
    started_wall_ns: int | None
    ended_wall_ns: int | None
    result: str | None  # JSON: the MatchReport, the live score while it is played


def source_id(db: sqlite3.Connection) -> str:
    """This database's own id, made once by its migration to schema 4."""
    (value,) = db.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()
    return str(value)


def outbox_after(db: sqlite3.Connection, seq: int, limit: int) -> list[OutboxRow]:
    """The outbox rows numbered after ``seq``, in order, at most ``limit`` of them."""
    rows = db.execute(
        "SELECT seq, tournament, room, kind, match, wall_ns FROM outbox WHERE seq > ? "
        "ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    return [OutboxRow(*row) for row in rows]


def outbox_waiting(db: sqlite3.Connection, seq: int) -> tuple[int, int]:
    """How many outbox rows are numbered after ``seq``, and of how many matches."""
    (rows, matches) = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT match) FROM outbox WHERE seq > ?", (seq,)
    ).fetchone()
    return int(rows), int(matches)


def saved_matches(db: sqlite3.Connection, numbers: Iterable[int]) -> dict[int, SavedMatch]:
    """The matches as saved now, by number."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = db.execute(
        "SELECT number, name, packet, format, setup, status, started_wall_ns, ended_wall_ns, "
        f"result FROM matches WHERE number IN ({marks})",
        wanted,
    )
    return {row[0]: SavedMatch(*row) for row in rows}
