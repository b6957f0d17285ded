"""A small tournament for the tests: three rooms, six teams of two, two rounds, and matches
played by real hubs (in-process, on real sockets) with protocol clients as player stations.

The expected result of every match is worked out here from its script alone (power 15, ten 10,
neg -5, bonus parts as scripted), never from what a hub computed, so that a test comparing the
standings with these numbers can fail.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import HubConfig, RoundSection, ServerSection, TournamentSection
from hub.core.events import (
    Armed,
    BonusPartScored,
    CentralChanged,
    Decided,
    MatchBegun,
    MatchOver,
    RulingGiven,
    Synced,
)
from hub.embed import RunningHub, running_hub
from tests.e2e.conftest import FakeClockNode
from wire import messages as msg

TOURNAMENT_ID = "spring-open"
HOST_TOKEN = "room-host-token"

PLAN = """
[tournament]
id = "spring-open"
name = "Spring Open"
format = "quizbowl"
rooms = ["room-1 = Room 101", "room-2 = Room 102", "room-3 = Room 103"]

[tournament.teams]
Red = ["red-1=Alice", "red-2=Amy"]
Blue = ["blue-1=Bob", "blue-2=Bea"]
Green = ["green-1=Gil", "green-2=Gus"]
Gold = ["gold-1=Gia", "gold-2=Gwen"]
Teal = ["teal-1=Tom", "teal-2=Tia"]
Plum = ["plum-1=Pat", "plum-2=Pia"]

[tournament.schedule]
1 = ["room-1: Red v Blue", "room-2: Green v Gold", "room-3: Teal v Plum"]
2 = ["room-1: Red v Green", "room-2: Blue v Teal", "room-3: Gold v Plum"]
"""

TEAMS = {
    "Red": [("red-1", "Alice"), ("red-2", "Amy")],
    "Blue": [("blue-1", "Bob"), ("blue-2", "Bea")],
    "Green": [("green-1", "Gil"), ("green-2", "Gus")],
    "Gold": [("gold-1", "Gia"), ("gold-2", "Gwen")],
    "Teal": [("teal-1", "Tom"), ("teal-2", "Tia")],
    "Plum": [("plum-1", "Pat"), ("plum-2", "Pia")],
}
VALUES = {"power": 15, "right": 10, "neg": -5}


@dataclass(frozen=True)
class Tossup:
    buzzes: tuple[tuple[str, str], ...]  # (station, "power" | "right" | "neg"), in order
    bonus: tuple[int, ...] = ()  # the parts, for the team that got it


@dataclass(frozen=True)
class Script:
    room: str
    round: int
    teams: tuple[str, str]
    tossups: tuple[Tossup, ...]

    @property
    def name(self) -> str:
        return f"Round {self.round}: {self.teams[0]} v {self.teams[1]}"


def T(*buzzes: tuple[str, str], bonus: tuple[int, ...] = ()) -> Tossup:
    return Tossup(tuple(buzzes), bonus)


ROUND_1 = (
    Script(
        "room-1",
        1,
        ("Red", "Blue"),
        (
            T(("red-1", "power"), bonus=(10, 10, 0)),
            T(("blue-1", "neg"), ("red-2", "right"), bonus=(10, 0, 0)),
            T(("blue-2", "right"), bonus=(10, 10, 10)),
            T(("red-1", "right"), bonus=(0, 0, 0)),
        ),
    ),
    Script(
        "room-2",
        1,
        ("Green", "Gold"),
        (
            T(("gold-1", "right"), bonus=(10, 10, 10)),
            T(("green-2", "neg"), ("gold-2", "power"), bonus=(0, 10, 0)),
            T(("green-1", "right"), bonus=(10, 0, 0)),
            T(("gold-1", "neg"), ("green-2", "right"), bonus=(10, 10, 0)),
            T(("gold-2", "right"), bonus=(10, 0, 10)),
            T(("green-1", "power"), bonus=(0, 0, 0)),
        ),
    ),
    Script(
        "room-3",
        1,
        ("Teal", "Plum"),
        (
            T(("plum-1", "right"), bonus=(0, 0, 10)),
            T(("teal-1", "right"), bonus=(10, 10, 10)),
            T(("plum-2", "neg"), ("teal-2", "right"), bonus=(10, 10, 0)),
        ),
    ),
)

ROUND_2 = (
    Script(
        "room-1",
        2,
        ("Red", "Green"),
        (
            T(("green-1", "right"), bonus=(10, 10, 0)),
            T(("red-2", "power"), bonus=(10, 10, 10)),
        ),
    ),
    Script(
        "room-2",
        2,
        ("Blue", "Teal"),
        (
            T(("teal-2", "right"), bonus=(10, 0, 0)),
            T(("blue-2", "neg"), ("teal-1", "right"), bonus=(0, 0, 0)),
        ),
    ),
    Script(
        "room-3",
        2,
        ("Gold", "Plum"),
        (
            T(("plum-1", "power"), bonus=(10, 10, 10)),
            T(("gold-2", "right"), bonus=(10, 0, 0)),
        ),
    ),
)


def team_of(station: str) -> str:
    return next(team for team, players in TEAMS.items() if station in dict(players))


@dataclass
class Tally:
    """What a set of matches must give, from their scripts alone."""

    team_points: dict[str, int] = field(default_factory=dict)
    wins: dict[str, int] = field(default_factory=dict)
    losses: dict[str, int] = field(default_factory=dict)
    played: dict[str, int] = field(default_factory=dict)
    player: dict[str, dict[str, int]] = field(default_factory=dict)  # station -> counts


def match_points(script: Script) -> dict[str, int]:
    points = dict.fromkeys(script.teams, 0)
    for tossup in script.tossups:
        for station, kind in tossup.buzzes:
            points[team_of(station)] += VALUES[kind]
        station, kind = tossup.buzzes[-1]
        if kind != "neg":
            points[team_of(station)] += sum(tossup.bonus)
    return points


def tally(scripts: tuple[Script, ...] | list[Script]) -> Tally:
    result = Tally()
    for script in scripts:
        points = match_points(script)
        first, second = script.teams
        for team in script.teams:
            result.team_points[team] = result.team_points.get(team, 0) + points[team]
            result.played[team] = result.played.get(team, 0) + 1
        winner, loser = (first, second) if points[first] > points[second] else (second, first)
        assert points[first] != points[second], f"{script.name}: a script must not tie"
        result.wins[winner] = result.wins.get(winner, 0) + 1
        result.losses[loser] = result.losses.get(loser, 0) + 1
        for tossup in script.tossups:
            for station, kind in tossup.buzzes:
                counts = result.player.setdefault(station, {"power": 0, "right": 0, "neg": 0})
                counts[kind] += 1
    return result


# --- a room: a hub in the tournament and its stations ---


#: How long after the light a scripted player presses.
PRESS_AFTER_LIGHT_NS = 20_000_000


@dataclass
class Room:
    id: str
    hub: RunningHub
    nodes: dict[str, FakeClockNode]

    async def seat(self, teams: tuple[str, ...]) -> None:
        """The teams' stations join and get their clocks placed."""
        for team in teams:
            for station, name in TEAMS[team]:
                if station not in self.nodes:
                    self.nodes[station] = await FakeClockNode(self.hub.url, station, name).join()
        for team in teams:
            for station, _ in TEAMS[team]:
                await self.hub.events.wait_for(Synced, lambda e, s=station: e.player == s)

    async def play(
        self, script: Script, before: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        """Play a match from its script; ``before(i)`` runs before tossup ``i``."""
        await self.start(script)
        for index, tossup in enumerate(script.tossups):
            if before is not None:
                await before(index)
            await self.tossup(tossup)
        await self.end()

    async def start(self, script: Script) -> None:
        await self.seat(script.teams)
        teams = [
            msg.TeamEntry(team, [msg.PlayerEntry(s, n) for s, n in TEAMS[team]])
            for team in script.teams
        ]
        mark = self.hub.events.mark()
        self.hub.command(msg.MatchStart(name=script.name, format="quizbowl", teams=teams))
        await self.hub.events.wait_for(MatchBegun, after=mark)

    async def end(self) -> None:
        mark = self.hub.events.mark()
        self.hub.command(msg.MatchEnd())
        await self.hub.events.wait_for(MatchOver, after=mark)

    async def tossup(self, tossup: Tossup) -> None:
        events = self.hub.events
        mark = events.mark()
        self.hub.command(msg.Arm(force=True))
        armed = await events.wait_for(Armed, after=mark)
        for station, kind in tossup.buzzes:
            # The player presses a moment after the light: pressed at its very instant, a
            # station's clock, placed within its uncertainty (a millisecond on a busy machine),
            # put the press before it once, and the hub rightly called it early.
            at = armed.release_ns + PRESS_AFTER_LIGHT_NS
            await asyncio.sleep(max(0, at - time.monotonic_ns()) / 1e9)  # the player's moment
            mark = events.mark()
            await self.nodes[station].press(max(at, time.monotonic_ns()))
            await events.wait_for(Decided, lambda e, s=station: e.winner == s, after=mark)
            mark = events.mark()
            if kind == "neg":
                self.hub.command(msg.Wrong())
                await events.wait_for(RulingGiven, lambda e: not e.correct, after=mark)
                armed = await events.wait_for(Armed, after=mark)  # the rebound, for the other team
            else:
                self.hub.command(msg.Right(power=kind == "power" or None))
                await events.wait_for(RulingGiven, lambda e: e.correct, after=mark)
        station, kind = tossup.buzzes[-1]
        if kind == "neg":
            return
        for points in tossup.bonus:
            mark = events.mark()
            self.hub.command(msg.BonusPart(points=points))
            await events.wait_for(BonusPartScored, after=mark)

    async def synced(self, timeout: float = 20.0) -> CentralChanged:
        """Wait until every change of this room so far is in the results database."""
        await asyncio.wait_for(self.hub.saved(), timeout)  # its outbox, read next, holds them
        return await self.hub.events.wait_for(
            CentralChanged,
            lambda e: e.connected and e.waiting == 0 and e.delivered >= self.outbox_size(),
            timeout=timeout,
            after=0,
        )

    def outbox_size(self) -> int:
        store = self.hub.recorder.store
        assert store is not None
        import sqlite3

        db = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (count,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        finally:
            db.close()
        return int(count)

    async def leave(self) -> None:
        for node in self.nodes.values():
            await node.leave()


def settings(database: str, password_file: Path, room: str = "") -> TournamentSection:
    """The ``[tournament]`` section of a room (or, without a room, of the tournament page)."""
    return TournamentSection(
        id=TOURNAMENT_ID,
        room=room,
        database=database,
        password_file=str(password_file),
        timeout_s=3,
        retry_s=0.3,
    )


def room_config(room: str, database: str, password_file: Path) -> HubConfig:
    return HubConfig(
        server=ServerSection(host="127.0.0.1", port=0),
        round=RoundSection(hostless=False, release_lead_ms=0, adjudication_margin_ms=50),
        tournament=settings(database, password_file, room),
    )


@asynccontextmanager
async def rooms(
    databases: dict[str, str], password_file: Path, data: Path
) -> AsyncIterator[dict[str, Room]]:
    """Room hubs, each with its own data directory and its own database address."""
    async with AsyncExitStack() as stack:
        opened: dict[str, Room] = {}
        for room, database in databases.items():
            config = room_config(room, database, password_file)
            hub = await stack.enter_async_context(
                running_hub(config, host_token=HOST_TOKEN, data_dir=data / room)
            )
            opened[room] = Room(room, hub, {})
        try:
            yield opened
        finally:
            for room_ in opened.values():
                await room_.leave()


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


async def page_json(url: str) -> dict[str, Any]:
    return await asyncio.to_thread(fetch_json, url)
