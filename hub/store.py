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

When the disk fails (read-only, full, I/O error) the store stops writing for the rest of the run,
logs one line, and reports ``saving: false`` in its status; the hub keeps ranking in memory and
acknowledges presses as recorded in memory. It never resumes writing after a failure, because a
journal with a hole in it would replay into the wrong state.
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, get_args

from hub import journal
from hub.gamelog import MatchEnded, MatchEvent, MatchStarted
from hub.journal import Call, RecordingEngine, Segment
from hub.match import MatchEngine, report
from hub.round import (
    Acknowledge,
    Answer,
    Event,
    Outcome,
    PhaseChanged,
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
SCHEMA_VERSION = 3
#: The game number given to rounds that came from a version 1 database (before the journal).
LEGACY_GAME = 0
#: Rounds played by this journal. One number today; a "new game" command can start the next.
CURRENT_GAME = 1
MAX_BATCH = 512
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


#: ``MIGRATIONS[n]`` takes a database from version n to n + 1. Append; never edit a shipped one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_0_to_1,
    _migrate_1_to_2,
    _migrate_2_to_3,
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
    statements: list[Statement]
    done: Callable[[], None] | None


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
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_status: Callable[[StorageStatus], None] | None = None

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

    def _fail(self, message: str) -> None:
        """Switch to memory-only mode for the rest of this run (called once, on either thread)."""
        if not self._status.saving:
            return
        self._status = StorageStatus(
            False, str(self.path), f"{message}; results are NOT being saved (ranking goes on)"
        )
        log.error("storage: %s", self._status.message)
        if self._loop is not None and self.on_status is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._loop.call_soon_threadsafe(self.on_status, self._status)

    # --- restore ---

    def restore(
        self, rules: Rules, now_ns: int, wall_ns: int
    ) -> tuple[RecordingEngine, list[Event]]:
        """Replay the journal into a fresh engine and open a new segment for this run.

        Returns the engine with the exact state the last run left, and the events the replay
        produced (the caller does not re-send them: they were sent before the restart).
        """
        db = self._db
        if db is None or not self.saving:
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
        segments = [
            Segment(sid, boot, started, journal.rules_from_json(text), last)
            for sid, boot, started, text, last in db.execute(
                "SELECT s.id, s.boot, s.started_ns, s.rules, "
                "(SELECT MAX(now_ns) FROM journal j WHERE j.segment = s.id) "
                "FROM segments s WHERE s.game = ? ORDER BY s.id",
                (self._game,),
            )
        ]
        if not segments:
            return RecordingEngine(rules), []
        shifts = journal.segment_shifts(segments, boot_id(), now_ns)
        by_id = {segment.id: segment for segment in segments}

        def entries() -> Iterator[tuple[Rules | None, Call]]:
            current: int | None = None
            rows = db.execute(
                "SELECT segment, kind, now_ns, args FROM journal "
                "WHERE segment IN (SELECT id FROM segments WHERE game = ?) ORDER BY seq",
                (self._game,),
            )
            for segment, kind, now, args in rows:
                call = Call.load(kind, now, args).shifted(shifts[segment])
                switch = by_id[segment].rules if segment != current else None
                current = segment
                yield switch, call

        started = time.perf_counter()
        engine, events = journal.replay(segments[0].rules, entries())
        log.info(
            "restored round %d (%s) and %d earlier rounds from %s in %.1f ms",
            engine.number,
            engine.phase,
            len(engine.history) - (1 if engine.current in engine.history else 0),
            self.path,
            (time.perf_counter() - started) * 1e3,
        )
        return engine, events

    def players(self) -> list[tuple[str, str, str | None, str | None]]:
        """The roster as last saved: (id, name, input, team)."""
        if self._db is None or not self.saving:
            return []
        try:
            rows = self._db.execute("SELECT id, name, input, team FROM players ORDER BY rowid")
            return [(str(a), str(b), c, d) for a, b, c, d in rows]
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.path}: {_why(exc)}")
            return []

    def last_match(self) -> tuple[int, MatchReport | None]:
        """The highest match number given so far, and the result of the last match that ended
        (for the console to show until the next one starts)."""
        if self._db is None or not self.saving:
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

    # --- writing ---

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
    ) -> None:
        """Queue what one engine step did; ``done`` runs on the loop once it is committed.

        In memory-only mode ``done`` runs at once: the press is recorded in memory, which is all
        this run can promise, and nodes must not re-send forever.
        """
        if not self.saving or self._thread is None:
            if done is not None:
                done()
            return
        wall = time.time_ns()
        # Rows derived from the events first: in a step that starts a new game they belong to
        # the game that ends with it.
        statements: list[Statement] = self._derived(events, engine, wall)
        for call in calls:
            if call.starts_game and self._segment is not None:
                self._game += 1
                self._segment += 1
                statements.append(
                    (
                        "INSERT INTO segments (id, boot, started_ns, started_wall_ns, rules, game) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            self._segment,
                            boot_id(),
                            call.now_ns,
                            wall,
                            journal.rules_json(engine.base_rules),
                            self._game,
                        ),
                    )
                )
            statements.append(
                (
                    "INSERT INTO journal (segment, kind, now_ns, wall_ns, args) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (self._segment, call.kind, call.now_ns, wall, call.payload()),
                )
            )
            if call.press is not None:
                press = call.press
                statements.append(
                    (
                        "INSERT OR IGNORE INTO presses (game, round, player, press_id, at_ns, "
                        "arrival_ns, raw_ns, uncertainty_ns, synced, wall_ns) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            self._game,
                            None,
                            press.player,
                            press.press_id,
                            press.at_ns,
                            press.arrival_ns,
                            press.raw_ns,
                            press.uncertainty_ns,
                            int(press.synced),
                            wall,
                        ),
                    )
                )
        statements.extend(self._match_rows(events, engine, wall))
        self._queue.put(_Job(statements, done))

    def save_player(self, player_id: str, name: str, input_kind: str, team: str | None) -> None:
        """Remember a player in the roster (nothing waits for it)."""
        if not self.saving or self._thread is None:
            return
        self._queue.put(
            _Job(
                [
                    (
                        "INSERT INTO players (id, name, input, team, seen_wall_ns) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = "
                        "excluded.name, input = excluded.input, team = excluded.team, "
                        "seen_wall_ns = excluded.seen_wall_ns",
                        (player_id, name, input_kind, team, time.time_ns()),
                    )
                ],
                None,
            )
        )

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
        return statements

    def _derived(self, events: Iterable[Event], engine: RoundEngine, wall: int) -> list[Statement]:
        """Upserts for the rounds and presses tables from what the engine decided."""
        statements: list[Statement] = []
        rounds: set[int] = set()
        for event in events:
            if isinstance(event, Answer):
                statements.append(_outcome_statement(event.outcome, self._game))
            elif isinstance(event, PhaseChanged):
                rounds.add(event.round)
            elif isinstance(event, Acknowledge):
                continue
        records = {r.number: r for r in engine.history}
        if engine.current is not None:
            records[engine.current.number] = engine.current
        for number in sorted(rounds):
            record = records.get(number)
            if record is None:
                continue
            state = engine.phase if record is engine.current else Phase.CLOSED
            winner = record.winner.press.player if record.winner else None
            statements.append(
                (
                    "INSERT INTO rounds (game, number, state, armed_ns, release_ns, decided_ns, "
                    "adjudication_wait_ns, winner, armed_wall_ns, decided_wall_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (game, number) DO UPDATE SET state = excluded.state, "
                    "decided_ns = excluded.decided_ns, "
                    "adjudication_wait_ns = excluded.adjudication_wait_ns, "
                    "winner = excluded.winner, "
                    "decided_wall_ns = coalesce(rounds.decided_wall_ns, excluded.decided_wall_ns)",
                    (
                        self._game,
                        record.number,
                        state,
                        record.armed_ns,
                        record.release_ns,
                        record.decided_ns,
                        record.adjudication_wait_ns,
                        winner,
                        wall,
                        wall if record.decided_ns is not None else None,
                    ),
                )
            )
        return statements

    def _writer(self) -> None:
        """Commit whatever has queued up in one transaction, then report back to the loop."""
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._commit(batch)
            callbacks = [job.done for job in batch if job.done is not None]
            if callbacks and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed while we wrote
                    self._loop.call_soon_threadsafe(_run_all, callbacks)

    def _commit(self, batch: list[_Job]) -> None:
        db = self._db
        if db is None or not self.saving:
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            for job in batch:
                for sql, params in job.statements:
                    db.execute(sql, params)
            db.execute("COMMIT")
        except Exception as exc:  # whatever it is, the writer thread must live on to ack
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._fail(f"writing {self.path} failed: {_why(exc)}")

    def results_csv(self) -> str | None:
        """Every saved press as CSV, read on a separate read-only connection; None when this
        run is not saving (the caller then exports from memory, which is more complete)."""
        if self._db is None or not self.saving:
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
        if self._db is None or not self.saving:
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


def _outcome_statement(outcome: Outcome, game: int) -> Statement:
    press = outcome.press
    return (
        "INSERT INTO presses (game, round, player, press_id, at_ns, arrival_ns, raw_ns, "
        "uncertainty_ns, synced, rank, reaction_ns, behind_ns, flags, lockout_ns, wall_ns) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (game, player, press_id) DO UPDATE SET round = excluded.round, "
        "rank = excluded.rank, reaction_ns = excluded.reaction_ns, "
        "behind_ns = excluded.behind_ns, flags = excluded.flags, lockout_ns = excluded.lockout_ns",
        (
            game,
            outcome.round,
            press.player,
            press.press_id,
            press.at_ns,
            press.arrival_ns,
            press.raw_ns,
            press.uncertainty_ns,
            int(press.synced),
            outcome.rank,
            outcome.reaction_ns,
            outcome.behind_ns,
            ",".join(sorted(outcome.flags)),
            outcome.lockout_ns,
            time.time_ns(),
        ),
    )


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


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


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> None:
    """CSV a spreadsheet opens as is: a header row, then one row per press, empty for none."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


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
