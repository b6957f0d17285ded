"""``buzzer-hub tournament``: set a tournament up in its results database, and serve its page.

The page (``/``) shows live standings (wins, losses, points per game; powers, tens, negs and
points per player), which match each room is playing with its live score, every match with its
QBJ file, and the whole tournament as one bundle for the statistics tools. It reads only the
results database: the rooms write there through their own links (:mod:`hub.central`), so this
service can run anywhere that reaches the database, stop and start at will, and never touches a
room's round.

The bundle (``/api/tournament.zip``) holds ``tournament.qbj``, a Quiz Bowl Schema ``Tournament``
object (https://schema.quizbowl.technology/tournament: ``registrations`` with their teams and
players, one ``phases`` entry whose ``rounds`` hold each round's ``matches``, as YellowFruit
reads one: ``src/renderer/DataModel/Tournament.ts`` in https://github.com/ANadig/YellowFruit),
each match's own QBJ file, and the standings as CSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import re
import urllib.parse
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from hub import centraldb, exports
from hub.central import MissingDriver, describe
from hub.centraldb import MatchRow, Pairing, Player, Room, Team, Tournament
from hub.config import TOURNAMENT_ID, TournamentSection
from hub.formats import FORMATS
from hub.http import download, json_response, static_file, text_response
from hub.standings import standings
from wire import configfile
from wire.codec import ProtocolError, read
from wire.messages import ID_PATTERN, NAME_MAX_CHARS, MatchReport

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger("hub.tournament")

DEFAULT_PORT = 8780
#: A room not heard from for longer is shown as offline (its link beats every 5 s).
OFFLINE_AFTER_S = 20.0


# --- the setup file ---

_PAIRING = re.compile(r"\s*([^:]+?)\s*:\s*(.+?)\s*")
_VERSUS = re.compile(r"\s+(?:v|vs\.?)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class TournamentPlan:
    """The ``[tournament]`` section of a tournament file (docs/tournament.md)."""

    id: str = ""
    name: str = ""
    format: str = "quizbowl"
    rooms: list[str] = field(default_factory=list)  # "room-1" or "room-1 = Room 101"
    teams: dict[str, list[str]] = field(default_factory=dict)  # name -> ["id=Name", "id"]
    schedule: dict[str, list[str]] = field(default_factory=dict)  # "1" -> ["room-1: A v B"]

    def __post_init__(self) -> None:
        if not TOURNAMENT_ID.fullmatch(self.id):
            raise ValueError("id must be 1 to 40 letters, digits, '-', '_' or '.'")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        self.plan()  # every other check, with the entry it is about

    def plan(self) -> Tournament:
        rooms = tuple(_room(entry) for entry in self.rooms)
        if not rooms:
            raise ValueError("rooms: list at least one room")
        room_ids = [r.id for r in rooms]
        if len(set(room_ids)) != len(room_ids):
            raise ValueError("rooms: a room is listed twice")
        teams = tuple(_team(name, players) for name, players in self.teams.items())
        keys = [t.name.casefold() for t in teams]
        if len(set(keys)) != len(keys):
            raise ValueError("teams: two teams have the same name")
        stations: dict[str, str] = {}
        for team in teams:
            for player in team.players:
                if player.id in stations:
                    raise ValueError(
                        f"teams: player {player.id} is in {stations[player.id]} and {team.name}"
                    )
                stations[player.id] = team.name
        tournament = Tournament(
            self.id, self.name or self.id, self.format, rooms, teams, schedule=()
        )
        pairings: list[Pairing] = []
        for number, entries in self.schedule.items():
            if not number.isdigit() or int(number) < 1:
                raise ValueError(f"schedule: {number!r} is not a round number (1, 2, ...)")
            seen: set[str] = set()
            for entry in entries:
                pairing = _pairing(int(number), entry, tournament)
                if pairing.room in {p.room for p in pairings if p.round == pairing.round}:
                    raise ValueError(f"schedule: round {number} has room {pairing.room} twice")
                for side in pairing.teams:
                    if side.casefold() in seen:
                        raise ValueError(f"schedule: round {number} has {side} twice")
                    seen.add(side.casefold())
                pairings.append(pairing)
        pairings.sort(key=lambda p: (p.round, room_ids.index(p.room)))
        return Tournament(
            tournament.id, tournament.name, tournament.format, rooms, teams, tuple(pairings)
        )


def _room(entry: str) -> Room:
    room_id, _, name = (part.strip() for part in entry.partition("="))
    if not TOURNAMENT_ID.fullmatch(room_id):
        raise ValueError(f"rooms: {room_id[:50]!r} must be 1 to 40 letters, digits, '-', '_', '.'")
    return Room(room_id, name or room_id)


def _team(name: str, players: list[str]) -> Team:
    if not 0 < len(name) <= NAME_MAX_CHARS or not name.isprintable():
        raise ValueError(f"teams: {name[:50]!r} must be 1 to {NAME_MAX_CHARS} characters")
    entries = []
    for text in players:
        station, equals, printed = (part.strip() for part in text.partition("="))
        if not equals:  # a name alone: the station a room gives the player is named after it
            printed = station
            station = re.sub(r"[^a-z0-9_.-]+", "-", station.casefold()).strip("-")
        if not ID_PATTERN.fullmatch(station):
            raise ValueError(f"teams: {name}: {station[:70]!r} is not a station id")
        if not 0 < len(printed) <= NAME_MAX_CHARS:
            raise ValueError(f"teams: {name}: {text[:50]!r}: a name is 1 to 40 characters")
        entries.append(Player(station, printed))
    if not entries:
        raise ValueError(f"teams: {name} has no players")
    return Team(name, tuple(entries))


def _pairing(number: int, entry: str, tournament: Tournament) -> Pairing:
    found = _PAIRING.fullmatch(entry)
    if found is None:
        raise ValueError(f"schedule: round {number}: {entry[:60]!r} is not 'ROOM: TEAM v TEAM'")
    room, sides = found.groups()
    if room not in {r.id for r in tournament.rooms}:
        rooms = ", ".join(r.id for r in tournament.rooms)
        raise ValueError(f"schedule: round {number}: no room {room!r}; rooms: {rooms}")
    names = []
    for side in _VERSUS.split(sides):
        team = tournament.team(side)
        if team is None:
            known = ", ".join(t.name for t in tournament.teams)
            raise ValueError(f"schedule: round {number}: no team {side!r}; teams: {known}")
        names.append(team.name)
    if len(names) < 2:
        raise ValueError(f"schedule: round {number}: {entry[:60]!r} needs two teams: 'A v B'")
    return Pairing(number, room, tuple(names))


@dataclass(frozen=True)
class TournamentFile:
    tournament: TournamentPlan = field(default_factory=TournamentPlan)


def load_plan(path: str) -> Tournament:
    """A tournament file, checked; raises ConfigError naming the file and what is wrong."""
    return configfile.load(TournamentFile, path).tournament.plan()


async def connect(settings: TournamentSection) -> AsyncConnection[Any]:
    """A connection to the results database, its schema brought up to date."""
    try:
        import psycopg
    except ImportError:
        raise MissingDriver() from None
    async with asyncio.timeout(settings.timeout_s):
        conn = await psycopg.AsyncConnection.connect(
            settings.database,
            password=settings.password(),
            autocommit=True,
            connect_timeout=max(1, round(settings.timeout_s)),
            application_name="buzzer-hub tournament",
        )
        await centraldb.migrate(conn)
    return conn


async def set_up(settings: TournamentSection, tournament: Tournament) -> None:
    """``buzzer-hub tournament setup``: write the tournament (rooms, teams, schedule)."""
    conn = await connect(settings)
    try:
        await centraldb.save_tournament(conn, tournament)
    finally:
        await conn.close()


# --- what the page shows ---


#: Results already read, by match and the moment its row last changed: the page asks every two
#: seconds, and reading a hundred finished matches anew each time would be wasted work.
_READ: dict[tuple[str, int, datetime], MatchReport | None] = {}
_READ_MAX = 4096


def _report(row: MatchRow) -> MatchReport | None:
    key = (row.source, row.number, row.updated)
    if key in _READ:
        return _READ[key]
    value = None if row.result is None else read(MatchReport, row.result)
    report = None if isinstance(value, ProtocolError) else value
    if len(_READ) >= _READ_MAX:
        _READ.clear()
    _READ[key] = report
    return report


def _score(report: MatchReport | None) -> list[dict[str, Any]]:
    if report is None:
        return []
    return [{"name": team.name, "points": team.points} for team in report.teams]


def rounds_of(rows: Iterable[MatchRow], tournament: Tournament | None) -> dict[str, int]:
    """Which round of the schedule each match is: the pairing of its room and teams (a pair
    that meets twice in one room: the earlier match the earlier round)."""
    if tournament is None:
        return {}
    taken: set[tuple[int, str]] = set()
    found: dict[str, int] = {}
    for row in rows:
        report = _report(row)
        if report is None:
            continue
        sides = {" ".join(t.name.split()).casefold() for t in report.teams}
        for pairing in tournament.schedule:
            slot = (pairing.round, pairing.room)
            if pairing.room != row.room or slot in taken:
                continue
            if {t.casefold() for t in pairing.teams} == sides:
                taken.add(slot)
                found[row.key] = pairing.round
                break
    return found


def picture(
    tournament_id: str,
    tournament: Tournament | None,
    rows: list[MatchRow],
    sources: list[centraldb.SourceRow],
) -> dict[str, Any]:
    """The tournament page's JSON: rooms with their live match, standings, matches, schedule."""
    rounds = rounds_of(rows, tournament)
    finished = [(row, report) for row in rows if (report := _report(row)) is not None]
    ended = [report for row, report in finished if row.status == "ended"]
    table = standings(ended, [t.name for t in tournament.teams] if tournament else [])
    room_ids = [r.id for r in tournament.rooms] if tournament else []
    names = {r.id: r.name for r in tournament.rooms} if tournament else {}
    for row in rows:
        if row.room not in room_ids:
            room_ids.append(row.room)
    for source in sources:
        if source.room not in room_ids:
            room_ids.append(source.room)
    rooms = []
    for room_id in room_ids:
        heard = [max(0.0, s.age_s) for s in sources if s.room == room_id]
        age = min(heard) if heard else None
        in_room = [(row, report) for row, report in finished if row.room == room_id]
        live = [(row, report) for row, report in in_room if row.status == "playing"]
        current = max(live, key=lambda pair: pair[0].updated, default=None)
        last = max(
            [(r, rep) for r, rep in in_room if r.status == "ended"],
            key=lambda pair: pair[0].ended or pair[0].updated,
            default=None,
        )
        rooms.append(
            {
                "id": room_id,
                "name": names.get(room_id, room_id),
                "heard_s": age,
                "online": age is not None and age < OFFLINE_AFTER_S,
                "match": None if current is None else _match_json(*current, rounds),
                "last": None if last is None else _match_json(*last, rounds),
            }
        )
    by_slot = {(rounds[row.key], row.room): row.key for row in rows if row.key in rounds}
    return {
        "tournament": None
        if tournament is None
        else {"id": tournament.id, "name": tournament.name, "format": tournament.format},
        "id": tournament_id,
        "rooms": rooms,
        "standings": {
            "teams": [
                {
                    "rank": rank,
                    "team": t.team,
                    "played": t.played,
                    "wins": t.wins,
                    "losses": t.losses,
                    "ties": t.ties,
                    "points": t.points,
                    "against": t.against,
                    "ppg": round(t.ppg, 2),
                }
                for rank, t in enumerate(table.teams, start=1)
            ],
            "players": [
                {
                    "rank": rank,
                    "player": p.player,
                    "name": p.name,
                    "team": p.team,
                    "games": p.games,
                    "powers": p.powers,
                    "tens": p.tens,
                    "negs": p.negs,
                    "points": p.points,
                    "ppg": round(p.ppg, 2),
                }
                for rank, p in enumerate(table.players, start=1)
            ],
        },
        "matches": [_match_json(row, report, rounds) for row, report in finished],
        "schedule": []
        if tournament is None
        else [
            {
                "round": p.round,
                "room": p.room,
                "teams": list(p.teams),
                "match": by_slot.get((p.round, p.room)),
            }
            for p in tournament.schedule
        ],
    }


def _match_json(row: MatchRow, report: MatchReport, rounds: dict[str, int]) -> dict[str, Any]:
    return {
        "key": row.key,
        "room": row.room,
        "round": rounds.get(row.key),
        "name": row.name,
        "status": row.status,
        "question": report.tossups_read,
        "teams": _score(report),
        "qbj": f"/api/matches/{row.key}.qbj",
    }


# --- the bundle for statistics tools ---


def tournament_qbj(
    tournament: Tournament | None, tournament_id: str, rows: list[MatchRow]
) -> dict[str, Any]:
    """The tournament as a QBJ ``Tournament``: teams, then every finished match by round."""
    rounds = rounds_of(rows, tournament)
    by_round: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        report = _report(row)
        if report is None or row.status != "ended":
            continue
        name = f"Round {rounds[row.key]}" if row.key in rounds else "Unscheduled"
        by_round.setdefault(name, []).append(exports.qbj(report))
    teams = tournament.teams if tournament else ()
    return {
        "version": "2.1.1",
        "objects": [
            {
                "type": "Tournament",
                "name": tournament.name if tournament else tournament_id,
                "registrations": [
                    {
                        "name": team.name,
                        "teams": [
                            {
                                "name": team.name,
                                "players": [{"name": p.name or p.id} for p in team.players],
                            }
                        ],
                    }
                    for team in teams
                ],
                "phases": [
                    {
                        "name": "All rounds",
                        "rounds": [
                            {"name": name, "matches": matches}
                            for name, matches in sorted(by_round.items(), key=_round_order)
                        ],
                    }
                ],
            }
        ],
    }


def _round_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    number = name.removeprefix("Round ")
    return (int(number), name) if number.isdigit() else (1 << 30, name)


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([exports.cell(value) for value in row])
    return out.getvalue()


def bundle(
    tournament: Tournament | None,
    tournament_id: str,
    rows: list[MatchRow],
    page: dict[str, Any],
) -> bytes:
    """A zip a director hands to the statistics tools: the tournament QBJ, every finished
    match's QBJ, and the standings of teams and players as CSV."""
    rounds = rounds_of(rows, tournament)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        whole = tournament_qbj(tournament, tournament_id, rows)
        archive.writestr("tournament.qbj", json.dumps(whole, indent=1) + "\n")
        for row in rows:
            report = _report(row)
            if report is None or row.status != "ended":
                continue
            number = rounds.get(row.key)
            prefix = f"round-{number:02d}" if number is not None else "unscheduled"
            archive.writestr(f"matches/{prefix}-{row.room}-{row.key}.qbj", exports.qbj_text(report))
        columns = ["rank", "team", "played", "wins", "losses", "ties", "points", "against", "ppg"]
        teams = page["standings"]["teams"]
        archive.writestr("standings.csv", _csv(columns, ([t[k] for k in columns] for t in teams)))
        columns = ["rank", "name", "team", "games", "powers", "tens", "negs", "points", "ppg"]
        players = page["standings"]["players"]
        archive.writestr("players.csv", _csv(columns, ([p[k] for k in columns] for p in players)))
    return out.getvalue()


# --- the service ---

_MATCH_FILE = re.compile(r"/api/matches/([0-9a-f]{1,40})-(\d{1,9})\.(qbj|csv|json)")
PAGES = {"/": "tournament.html"}
STATIC = ("tournament.js", "tournament.css", "common.css")


class TournamentService:
    """The tournament page and its JSON and files, read from the results database."""

    def __init__(self, settings: TournamentSection, host: str, port: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._server: Server | None = None

    async def start(self) -> None:
        self._server = await serve(
            self._refuse_upgrade,
            self.host or None,
            self.port,
            process_request=self._respond,
            server_header="buzzer-beater",
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _refuse_upgrade(self, ws: ServerConnection) -> None:
        await ws.close(1008, "this is the tournament page: it takes no WebSocket")

    async def _respond(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urllib.parse.urlsplit(request.path).path
        if path == "/healthz":
            return text_response("ok", HTTPStatus.OK)
        if path in PAGES or path.removeprefix("/") in STATIC:
            page = static_file(PAGES.get(path, path.removeprefix("/")))
            assert page is not None
            return page
        if path in ("/api/tournament", "/api/tournament.zip", "/api/tournament.qbj"):
            return await self._tournament(path)
        wanted = _MATCH_FILE.fullmatch(path)
        if wanted is not None:
            return await self._match(wanted.group(1), int(wanted.group(2)), wanted.group(3))
        return text_response(f"not found: {path[:100]}", HTTPStatus.NOT_FOUND)

    async def _read(
        self,
    ) -> tuple[Tournament | None, list[MatchRow], list[centraldb.SourceRow]]:
        """Everything the page shows, on the service's one connection (made again after a
        failure; a failure is raised for the caller to answer with its one line)."""
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await connect(self.settings)
                conn = self._conn
                tournament_id = self.settings.id
                async with asyncio.timeout(self.settings.timeout_s):
                    tournament = await centraldb.load_tournament(conn, tournament_id)
                    rows = await centraldb.matches(conn, tournament_id)
                    sources = await centraldb.sources(conn, tournament_id)
                return tournament, rows, sources
            except BaseException:
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                self._conn = None
                raise

    async def _tournament(self, path: str) -> Response:
        try:
            tournament, rows, sources = await self._read()
        except Exception as exc:
            message = describe(exc, self.settings.where())
            log.warning("tournament page: %s", message)
            if path == "/api/tournament":
                return json_response(
                    {"id": self.settings.id, "error": message}, HTTPStatus.SERVICE_UNAVAILABLE
                )
            return text_response(message, HTTPStatus.SERVICE_UNAVAILABLE)
        page = picture(self.settings.id, tournament, rows, sources)
        if path == "/api/tournament":
            return json_response(page)
        if path == "/api/tournament.qbj":
            whole = tournament_qbj(tournament, self.settings.id, rows)
            return download(
                json.dumps(whole, indent=1) + "\n", "application/json", f"{self.settings.id}.qbj"
            )
        data = bundle(tournament, self.settings.id, rows, page)
        return download(data, "application/zip", f"{self.settings.id}.zip")

    async def _match(self, source: str, number: int, kind: str) -> Response:
        try:
            _, rows, _ = await self._read()
        except Exception as exc:
            return text_response(
                describe(exc, self.settings.where()), HTTPStatus.SERVICE_UNAVAILABLE
            )
        for row in rows:
            if row.source.startswith(source) and row.number == number:
                report = _report(row)
                if report is None:
                    break
                content_type, suffix, write = exports.FORMATS[kind]
                name = f"{row.room}-{exports.filename(report, suffix)}"
                return download(write(report), content_type, name)
        return text_response(f"no match {source}-{number}", HTTPStatus.NOT_FOUND)
