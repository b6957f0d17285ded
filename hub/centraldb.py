"""The tournament's results database (PostgreSQL): its schema, what a room writes, what the
tournament page reads.

Every room hub writes here through its central link (:mod:`hub.central`), and the tournament
service (:mod:`hub.tournament`) reads. What makes a room's results count exactly once:

- Each room database has its own id (``source``, made by the room's SQLite migration) and numbers
  its outbox rows in order. ``events`` has the primary key ``(source, seq)``: a row sent twice
  (the link dropped after the commit, before the room heard of it) is not inserted twice.
- ``sources.delivered`` is how far a room's rows are in; a push locks that row, skips what is
  already in, and moves it forward in the same transaction as the rows. Two links of one room
  (an old connection not yet timed out, a new one after a restart) are thus served one at a time.
- ``matches`` has one row per room match, its content the latest the room sent; an update
  applies only if it comes from a later outbox row, so an old push arriving late changes nothing.

The schema is migrated in code (:data:`MIGRATIONS`, one step per transaction, under an advisory
lock so that twenty room hubs starting at once migrate it once). psycopg is imported only by
those who use a tournament: a room hub outside one, or a player node, does not need it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.store import OutboxRow, SavedMatch

if TYPE_CHECKING:
    from psycopg import AsyncConnection

#: ``MIGRATIONS[n]`` takes the results database from version n to n + 1. Append; never edit one
#: that has shipped.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE tournaments (
        id text PRIMARY KEY, name text NOT NULL, format text NOT NULL,
        updated timestamptz NOT NULL DEFAULT now());
    CREATE TABLE rooms (
        tournament text NOT NULL REFERENCES tournaments ON DELETE CASCADE,
        id text NOT NULL, name text NOT NULL, position int NOT NULL,
        PRIMARY KEY (tournament, id));
    CREATE TABLE teams (
        tournament text NOT NULL REFERENCES tournaments ON DELETE CASCADE,
        name text NOT NULL, position int NOT NULL, players jsonb NOT NULL,
        PRIMARY KEY (tournament, name));
    CREATE TABLE pairings (
        tournament text NOT NULL REFERENCES tournaments ON DELETE CASCADE,
        round int NOT NULL, room text NOT NULL, teams jsonb NOT NULL,
        PRIMARY KEY (tournament, round, room));
    CREATE TABLE sources (
        source text PRIMARY KEY, tournament text NOT NULL, room text NOT NULL,
        delivered bigint NOT NULL DEFAULT 0,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now());
    CREATE TABLE events (
        source text NOT NULL REFERENCES sources, seq bigint NOT NULL,
        tournament text NOT NULL, room text NOT NULL, kind text NOT NULL,
        match int NOT NULL, at timestamptz NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, seq));
    CREATE TABLE matches (
        source text NOT NULL REFERENCES sources, number int NOT NULL,
        tournament text NOT NULL, room text NOT NULL, name text NOT NULL, packet text,
        format text NOT NULL, setup jsonb NOT NULL, status text NOT NULL, result jsonb,
        started timestamptz, ended timestamptz, last_seq bigint NOT NULL,
        updated timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, number));
    CREATE INDEX matches_by_tournament ON matches (tournament, status);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
#: The advisory lock key under which the schema is migrated (any fixed number will do).
SCHEMA_LOCK = 0x42_75_7A_7A


class SchemaTooNew(Exception):
    """The results database was made by a newer Buzzer Beater."""


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version it had."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS buzzer_schema (version int NOT NULL)")
        cursor = await conn.execute("SELECT version FROM buzzer_schema")
        row = await cursor.fetchone()
        version = 0 if row is None else int(row[0])
        if row is None:
            await conn.execute("INSERT INTO buzzer_schema (version) VALUES (0)")
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the results database has schema {version} and this hub knows "
                f"{SCHEMA_VERSION}: update this hub"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    await conn.execute(statement.encode())
            await conn.execute("UPDATE buzzer_schema SET version = %s", (step + 1,))
    return version


def _when(wall_ns: int | None) -> datetime | None:
    return None if wall_ns is None else datetime.fromtimestamp(wall_ns / 1e9, tz=UTC)


# --- what a room writes ---


async def delivered(conn: AsyncConnection[Any], source: str, tournament: str, room: str) -> int:
    """How far this room's outbox is in the database (0: nothing yet); says the room is alive."""
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO sources (source, tournament, room) VALUES (%s, %s, %s) "
            "ON CONFLICT (source) DO UPDATE SET last_seen = now(), "
            "tournament = excluded.tournament, room = excluded.room RETURNING delivered",
            (source, tournament, room),
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def push(
    conn: AsyncConnection[Any],
    source: str,
    rows: Sequence[OutboxRow],
    matches: dict[int, SavedMatch],
) -> int:
    """Write ``rows`` (in order, all of one room) and the matches they name, in one
    transaction; return how far the room's outbox is in now. Rows already in are skipped."""
    assert rows
    last = rows[-1]
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO sources (source, tournament, room) VALUES (%s, %s, %s) "
            "ON CONFLICT (source) DO UPDATE SET last_seen = now() RETURNING delivered",
            (source, last.tournament, last.room),
        )
        row = await cursor.fetchone()
        assert row is not None
        done = int(row[0])
        fresh = [r for r in rows if r.seq > done]
        if not fresh:
            return done
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO events (source, seq, tournament, room, kind, match, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (source, seq) DO NOTHING",
                [
                    (source, r.seq, r.tournament, r.room, r.kind, r.match, _when(r.wall_ns))
                    for r in fresh
                ],
            )
        newest: dict[int, OutboxRow] = {}
        for r in fresh:
            newest[r.match] = r
        for number, r in newest.items():
            saved = matches.get(number)
            if saved is None:  # cannot happen: the row and the match were saved together
                continue
            await conn.execute(
                "INSERT INTO matches (source, number, tournament, room, name, packet, format, "
                "setup, status, result, started, ended, last_seq) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s, %s) "
                "ON CONFLICT (source, number) DO UPDATE SET name = excluded.name, "
                "packet = excluded.packet, status = excluded.status, result = excluded.result, "
                "ended = excluded.ended, last_seq = excluded.last_seq, updated = now() "
                "WHERE matches.last_seq < excluded.last_seq",
                (
                    source,
                    number,
                    r.tournament,
                    r.room,
                    saved.name,
                    saved.packet,
                    saved.format,
                    saved.setup,
                    saved.status,
                    saved.result,
                    _when(saved.started_wall_ns),
                    _when(saved.ended_wall_ns),
                    r.seq,
                ),
            )
        await conn.execute(
            "UPDATE sources SET delivered = %s, last_seen = now() WHERE source = %s",
            (fresh[-1].seq, source),
        )
    return fresh[-1].seq


# --- the tournament's setup ---


@dataclass(frozen=True, slots=True)
class Player:
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    players: tuple[Player, ...]


@dataclass(frozen=True, slots=True)
class Pairing:
    round: int
    room: str
    teams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Tournament:
    """What the director sets up: rooms, teams with their players, and the schedule."""

    id: str
    name: str
    format: str
    rooms: tuple[Room, ...]
    teams: tuple[Team, ...]
    schedule: tuple[Pairing, ...]

    def team(self, name: str) -> Team | None:
        key = name.casefold().strip()
        return next((t for t in self.teams if t.name.casefold().strip() == key), None)


def _team_data(team: Team) -> str:
    return json.dumps([{"id": p.id, "name": p.name} for p in team.players])


async def save_tournament(conn: AsyncConnection[Any], tournament: Tournament) -> None:
    """Create the tournament, or replace its rooms, teams and schedule (results stay)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tournaments (id, name, format) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, format = excluded.format, "
            "updated = now()",
            (tournament.id, tournament.name, tournament.format),
        )
        for table in ("rooms", "teams", "pairings"):
            await conn.execute(f"DELETE FROM {table} WHERE tournament = %s", (tournament.id,))
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO rooms (tournament, id, name, position) VALUES (%s, %s, %s, %s)",
                [(tournament.id, r.id, r.name, i) for i, r in enumerate(tournament.rooms)],
            )
            await cur.executemany(
                "INSERT INTO teams (tournament, name, position, players) "
                "VALUES (%s, %s, %s, %s::jsonb)",
                [(tournament.id, t.name, i, _team_data(t)) for i, t in enumerate(tournament.teams)],
            )
            await cur.executemany(
                "INSERT INTO pairings (tournament, round, room, teams) VALUES (%s, %s, %s, %s)",
                [
                    (tournament.id, p.round, p.room, json.dumps(list(p.teams)))
                    for p in tournament.schedule
                ],
            )


async def load_tournament(conn: AsyncConnection[Any], tournament_id: str) -> Tournament | None:
    """The tournament as set up (None: not set up yet)."""
    cursor = await conn.execute(
        "SELECT name, format FROM tournaments WHERE id = %s", (tournament_id,)
    )
    head = await cursor.fetchone()
    if head is None:
        return None
    rooms = await conn.execute(
        "SELECT id, name FROM rooms WHERE tournament = %s ORDER BY position", (tournament_id,)
    )
    teams = await conn.execute(
        "SELECT name, players FROM teams WHERE tournament = %s ORDER BY position",
        (tournament_id,),
    )
    pairings = await conn.execute(
        "SELECT round, room, teams FROM pairings WHERE tournament = %s ORDER BY round, room",
        (tournament_id,),
    )
    return Tournament(
        id=tournament_id,
        name=str(head[0]),
        format=str(head[1]),
        rooms=tuple(Room(str(i), str(n)) for i, n in await rooms.fetchall()),
        teams=tuple(
            Team(str(name), tuple(Player(p["id"], p.get("name")) for p in players))
            for name, players in await teams.fetchall()
        ),
        schedule=tuple(
            Pairing(int(r), str(room), tuple(str(t) for t in names))
            for r, room, names in await pairings.fetchall()
        ),
    )


# --- what the tournament page reads ---


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A room's match as the results database has it."""

    source: str
    number: int
    room: str
    name: str
    packet: str | None
    format: str
    status: str
    result: dict[str, Any] | None
    started: datetime | None
    ended: datetime | None
    updated: datetime

    @property
    def key(self) -> str:
        """A match's id in the tournament: its room's database and its number there."""
        return f"{self.source[:12]}-{self.number}"


async def matches(conn: AsyncConnection[Any], tournament_id: str) -> list[MatchRow]:
    """Every match of the tournament, oldest first."""
    cursor = await conn.execute(
        "SELECT source, number, room, name, packet, format, status, result, started, ended, "
        "updated FROM matches WHERE tournament = %s "
        "ORDER BY coalesce(started, updated), room, number",
        (tournament_id,),
    )
    return [MatchRow(*row) for row in await cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class SourceRow:
    source: str
    room: str
    delivered: int
    last_seen: datetime
    #: Seconds since then, by the database's own clock (the page's machine may differ from it).
    age_s: float


async def sources(conn: AsyncConnection[Any], tournament_id: str) -> list[SourceRow]:
    """The room hubs that have written, and when each was last heard from."""
    cursor = await conn.execute(
        "SELECT source, room, delivered, last_seen, "
        "extract(epoch FROM now() - last_seen)::float8 FROM sources WHERE tournament = %s "
        "ORDER BY room, last_seen",
        (tournament_id,),
    )
    return [SourceRow(*row) for row in await cursor.fetchall()]


async def event_seqs(conn: AsyncConnection[Any], source: str) -> list[int]:
    """Every outbox number of one room that is in, in order (for checks and the director)."""
    cursor = await conn.execute("SELECT seq FROM events WHERE source = %s ORDER BY seq", (source,))
    return [int(seq) for (seq,) in await cursor.fetchall()]
