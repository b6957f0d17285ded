"""A room hub's link to the tournament's results database: drain the outbox, in order, exactly
once, and never make the room wait.

The recorder writes each change of a match (started, its log changed, ended) to the ``outbox``
table of the room's own SQLite database, in the same transaction as the match itself
(:meth:`hub.store.Store._outbox_rows`). This link is a background task with its own connections
(a read-only one to SQLite, one to PostgreSQL): it asks the database how far the room's outbox
is in, sends the rest in order with the matches as saved now, and waits for the next commit.
Nothing in the round path calls it or waits for it: with the building's network down, the room
plays on, the outbox fills, the console says how many matches wait, and the link retries with a
growing pause until the database answers again. A crash anywhere loses nothing (both sides
commit before they move on) and doubles nothing (:mod:`hub.centraldb` keys every row).

It reports its state as a :class:`wire.messages.CentralView` (the console's "results synced" or
"3 matches waiting to sync") through ``on_status``; the server hands it to the core, which shows
it to hosts and logs it as a :class:`hub.core.events.CentralChanged`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hub import centraldb
from hub.config import TournamentSection
from hub.store import (
    OutboxRow,
    SavedMatch,
    connect,
    outbox_after,
    outbox_waiting,
    saved_matches,
    source_id,
)
from wire.messages import CentralView, PairingView, PlayerEntry, TeamEntry

if TYPE_CHECKING:
    from psycopg import AsyncConnection

T = TypeVar("T")

log = logging.getLogger("hub.central")

#: Outbox rows sent in one transaction (a room back from an hour offline sends it in a few).
BATCH = 500
#: The first pause after a failure; each further failure doubles it, up to the config's retry_s.
FIRST_RETRY_S = 0.25
#: While connected and idle, the link checks it is alive (and says the room is) this often.
HEARTBEAT_S = 5.0
#: The tournament's schedule is read again every this many heartbeats.
SETUP_EVERY = 12


@dataclass(frozen=True, slots=True)
class _Pending:
    rows: list[OutboxRow]
    matches: dict[int, SavedMatch]


class CentralLink:
    """Drains one room's outbox to the tournament's database, in the background."""

    def __init__(
        self,
        settings: TournamentSection,
        database: Path,
        on_status: Callable[[CentralView, int], None],
    ) -> None:
        self.settings = settings
        self.database = database
        self.on_status = on_status
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sqlite: sqlite3.Connection | None = None
        # Every use of the room's SQLite connection, its close included, runs on this one
        # thread, in order: a stop cancels the task awaiting a query, not the query, and closing
        # the connection under a query still running crashed the process.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-sqlite")
        self._delivered = 0  # how far the database has this room's outbox, as last heard
        self._view = offline(settings, "connecting to the results database")
        self._why = "connecting to the results database"  # why the link is down, for the console

    # --- lifecycle ---

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="central-link")

    def wake(self) -> None:
        """New outbox rows were committed (called by the store on the loop)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._on_reader(self._close_sqlite)  # after any query still running
        self._reader.shutdown(wait=False)

    def _close_sqlite(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    # --- the loop ---

    async def _run(self) -> None:
        retry = FIRST_RETRY_S
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: the room plays on; say why and retry
                await self._offline(describe(exc, self.settings.where()))
            await self._pause(retry)
            retry = min(retry * 2, self.settings.retry_s)

    async def _session(self) -> None:
        """One connection's life: catch up, then follow the outbox until something fails."""
        try:
            import psycopg
        except ImportError:
            raise MissingDriver() from None
        timeout = self.settings.timeout_s
        password = self.settings.password()
        async with asyncio.timeout(timeout):
            conn = await psycopg.AsyncConnection.connect(
                self.settings.database,
                password=password,
                autocommit=True,
                connect_timeout=max(1, round(timeout)),
                application_name=f"buzzer-hub {self.settings.room}"[:63],
            )
        try:
            async with asyncio.timeout(timeout):
                await centraldb.migrate(conn)
            source = await self._on_reader(self._source)
            settings = self.settings
            beats = 0
            async with asyncio.timeout(timeout):
                self._delivered = await centraldb.delivered(
                    conn, source, settings.id, settings.room
                )
                schedule = await self._schedule(conn)
            log.info("central: connected to the results database at %s", settings.where())
            while True:
                self._wake.clear()
                pending = await self._on_reader(self._pending)
                if pending.rows:
                    async with asyncio.timeout(timeout):
                        self._delivered = await centraldb.push(
                            conn, source, pending.rows, pending.matches
                        )
                    continue
                await self._report(connected=True, schedule=schedule)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEARTBEAT_S):
                        await self._wake.wait()
                if self._wake.is_set():
                    continue
                beats += 1
                async with asyncio.timeout(timeout):  # the link is alive, and so is the room
                    await centraldb.delivered(conn, source, settings.id, settings.room)
                    if beats % SETUP_EVERY == 0:
                        schedule = await self._schedule(conn)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _pause(self, seconds: float) -> None:
        """Wait before the next try; matches played meanwhile are counted for the console."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()
            if self._wake.is_set():
                await self._offline(self._why)

    # --- the room's side (SQLite, on a worker thread) ---

    async def _on_reader(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, work)

    def _db(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = connect(self.database, read_only=True)
        return self._sqlite

    def _source(self) -> str:
        return source_id(self._db())

    def _pending(self) -> _Pending:
        db = self._db()
        rows = outbox_after(db, self._delivered, BATCH)
        return _Pending(rows, saved_matches(db, (row.match for row in rows)))

    def _waiting(self) -> int:
        try:
            return outbox_waiting(self._db(), self._delivered)[1]
        except sqlite3.Error:
            return self._view.waiting_matches

    # --- reporting ---

    async def _offline(self, why: str) -> None:
        if why != self._why:
            log.debug("central: %s", why)
        self._why = why
        waiting = await self._on_reader(self._waiting)
        message = f"{_waiting(waiting) if waiting else 'nothing waiting to sync'}: {why}"
        self._emit(
            replace(
                self._view, connected=False, synced=False, waiting_matches=waiting, message=message
            )
        )

    async def _report(self, connected: bool, schedule: list[PairingView]) -> None:
        waiting = await self._on_reader(self._waiting)
        self._why = "connecting to the results database"
        message = _waiting(waiting) if waiting else "results synced"
        self._emit(
            replace(
                self._view,
                connected=connected,
                synced=not waiting,
                waiting_matches=waiting,
                message=message,
                schedule=schedule,
            )
        )

    def _emit(self, view: CentralView) -> None:
        self._view = view
        self.on_status(view, self._delivered)

    async def _schedule(self, conn: AsyncConnection[Any]) -> list[PairingView]:
        """This room's matches in the tournament's schedule (empty until the director sets
        it up), with each team's players as the tournament has them."""
        tournament = await centraldb.load_tournament(conn, self.settings.id)
        if tournament is None:
            return []
        return list(pairings_for(tournament, self.settings.room))


def _waiting(matches: int) -> str:
    return f"{matches} match{'es' if matches != 1 else ''} waiting to sync"


def offline(settings: TournamentSection, message: str) -> CentralView:
    """The console's status of a room whose link is not up (yet)."""
    return CentralView(
        tournament=settings.id,
        room=settings.room,
        connected=False,
        synced=False,
        waiting_matches=0,
        message=message,
    )


def pairings_for(tournament: centraldb.Tournament, room: str) -> Iterator[PairingView]:
    for pairing in tournament.schedule:
        if pairing.room != room:
            continue
        teams = []
        for name in pairing.teams:
            team = tournament.team(name)
            players = [] if team is None else [PlayerEntry(p.id, p.name) for p in team.players]
            teams.append(TeamEntry(team.name if team else name, players))
        title = " v ".join(t.name for t in teams)
        yield PairingView(round=pairing.round, name=f"Round {pairing.round}: {title}", teams=teams)


class MissingDriver(Exception):
    """psycopg is not installed."""


def describe(exc: BaseException, where: str) -> str:
    """One line a director can act on, never the password."""
    if isinstance(exc, MissingDriver):
        return (
            "the PostgreSQL driver is not installed on this hub: "
            "pip install 'buzzer-beater[tournament]' (docs/tournament.md)"
        )
    if isinstance(exc, TimeoutError):
        return f"the results database at {where} did not answer in time"
    if isinstance(exc, ValueError):  # the password file
        return str(exc)
    if isinstance(exc, centraldb.SchemaTooNew):
        return str(exc)
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"the results database at {where} refused the password: check password_file or "
            "the password environment variable"
        )
    if "does not exist" in lowered and "database" in lowered:
        return f"the results database at {where} does not exist: create it (docs/tournament.md)"
    if "refused" in lowered:
        return f"cannot reach the results database at {where} (connection refused)"
    if "closed" in lowered or "terminat" in lowered or "lost" in lowered:
        return f"the link to the results database at {where} was lost"
    return f"cannot reach the results database at {where}: {text[:160]}"
