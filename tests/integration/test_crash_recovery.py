"""SIGKILL a real hub at random moments while nodes press; nothing acknowledged may be lost.

The nodes here behave like the firmware: every press stays in an outbox until the hub
acknowledges it, and after a reconnect the whole outbox is re-sent with the same press ids. The
kill moment is the arrival of a randomly chosen number of ack/result frames, so a run is
reproducible from its seed (printed; override with BUZZER_CRASH_SEED) up to network timing.

After every restart, and once more after a clean stop at the end, the test checks:

- every press any node saw acknowledged is in the database, exactly once;
- the roster is back, everyone offline, with every node whose entry was certainly written (see
  ``_written_roster``);
- no round counts a player twice, and each round's ranks run 1..n;
- every result players saw before the kill is what the restarted hub shows, for each round all of
  whose answered presses had been acknowledged (see ``_comparable_rounds`` for why only those).

A shorter run does the same with the node firmware itself (mock GPIO pins, its own outbox and
reconnect loop), and one checks that tutorial text clients come back under their own ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.buttons import click

ITERATIONS = int(os.environ.get("BUZZER_CRASH_ITERATIONS", "24"))
NODES = 4
CONFIG = """
[round]
hostless = true
auto_arm_delay_s = 0.04
release_lead_ms = 0
[clock]
burst = 2
burst_interval_ms = 1
"""


@dataclass
class Node:
    """A player station with an outbox, like the firmware's."""

    id: str
    outbox: dict[str, int] = field(default_factory=dict)  # press id -> node timestamp
    acked: set[str] = field(default_factory=set)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    seq: int = 0

    async def connect(self, url: str, on_frame: Any) -> None:
        self.ws = await connect(url, compression=None, open_timeout=5)
        await self.ws.send(
            json.dumps({"type": "hello", "protocol": 1, "role": "node", "id": self.id})
        )
        while json.loads(await self.ws.recv())["type"] != "welcome":
            pass
        self.reader = asyncio.create_task(self._read(on_frame))
        for press_id, at_ns in list(self.outbox.items()):  # re-send what was never acknowledged
            await self._send_press(press_id, at_ns)

    async def press(self) -> None:
        self.seq += 1
        press_id = f"{self.id}-{self.seq}"
        self.outbox[press_id] = time.monotonic_ns()
        await self._send_press(press_id, self.outbox[press_id])

    async def _send_press(self, press_id: str, at_ns: int) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):  # if the hub is gone it stays in the outbox
            await self.ws.send(json.dumps({"type": "press", "press_id": press_id, "at_ns": at_ns}))

    async def _read(self, on_frame: Any) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "sync":
                    now = time.monotonic_ns()
                    reply = {"type": "sync_reply", "seq": frame["seq"], "t0_ns": frame["t0_ns"]}
                    await self.ws.send(json.dumps({**reply, "t1_ns": now, "t2_ns": now}))
                elif kind == "ack":
                    self.acked.add(frame["press_id"])
                    self.outbox.pop(frame["press_id"], None)
                elif kind == "result":
                    self.results[frame["press_id"]] = frame
                on_frame(frame)
        except ConnectionClosed:
            pass

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


class Frames:
    """Counts ack and result frames; wakes the killer at the chosen count."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.armed_round = 0
        self.new_round = asyncio.Event()

    def __call__(self, frame: dict[str, Any]) -> None:
        if frame["type"] in ("ack", "result"):
            self.count += 1
            if self.count >= self.target:
                self.reached.set()
        armed = frame["type"] == "round" and frame["state"] == "armed"
        if armed and frame["number"] > self.armed_round:
            self.armed_round = frame["number"]
            self.new_round.set()


async def _play(nodes: list[Node], frames: Frames, rng: random.Random) -> None:
    """One to three bursts of presses, each in the next round; repeats now and then."""
    for _ in range(rng.randint(1, 3)):
        round_before = frames.armed_round
        for node in rng.sample(nodes, rng.randint(1, len(nodes))):
            await node.press()
            if rng.random() < 0.25:
                await node.press()  # a second press in the same round: answered, not counted
        frames.new_round.clear()
        async with asyncio.timeout(5):
            while frames.armed_round <= round_before:
                await frames.new_round.wait()
                frames.new_round.clear()


def _state(hub: Any) -> dict[str, Any]:
    with urllib.request.urlopen(f"{hub.http}/api/state", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def _rounds_in_state(hub: Any, state: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The round on display and the 10 before it, whole: a picture lists only the first results
    of its earlier rounds, /api/history all of them."""
    number = state["round"]["number"]
    with urllib.request.urlopen(f"{hub.http}/api/history?before={number}", timeout=5) as response:
        rounds = {r["number"]: r for r in json.load(response)["history"]}
    rounds[number] = state["round"]
    return rounds


def _comparable_rounds(nodes: list[Node]) -> dict[int, dict[str, dict[str, Any]]]:
    """Results seen before the kill, by round, for rounds whose answered presses were all acked.

    The decision is sent to players without waiting for the disk. A press whose journal entry
    was not yet committed when the hub died is not acknowledged, so its node re-sends it; until
    then the restarted hub decides without it, and a round it took part in may come out
    differently. Rounds built only from acknowledged presses must come back exactly.
    """
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    unsafe: set[int] = set()
    for node in nodes:
        for press_id, result in node.results.items():
            by_round.setdefault(result["round"], {})[press_id] = result
            if press_id not in node.acked:
                unsafe.add(result["round"])
    return {number: seen for number, seen in by_round.items() if number not in unsafe}


def _written_roster(nodes: list[Node], joined_seq: dict[str, int]) -> set[str]:
    """Nodes whose roster entry was on disk when the hub died.

    A node's roster entry is queued when it joins, before its welcome, and nothing waits for it:
    a kill right after the last welcome may beat it to the disk, and the node is listed again
    when it reconnects. But the one writer commits in order and acknowledges a press only after
    its commit, so a node with an acknowledged press has its entry on disk, and an ack for a
    press made after every node had joined means every node's entry is.
    """
    written = {node.id for node in nodes if node.acked}
    made_after_joining = {
        f"{node.id}-{seq}" for node in nodes for seq in range(joined_seq[node.id] + 1, node.seq + 1)
    }
    if any(made_after_joining & node.acked for node in nodes):
        written |= {node.id for node in nodes}
    return written


def _check_database(db_path: Path, nodes: list[Node], final: bool) -> None:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute(
            "SELECT player, press_id, round, rank, flags FROM presses WHERE game = 1"
        ).fetchall()
        journalled = {
            json.loads(args)["press"]["press_id"]
            for (args,) in db.execute("SELECT args FROM journal WHERE kind = 'press'")
        }
    finally:
        db.close()
    copies = Counter((player, press_id) for player, press_id, *_ in rows)
    assert max(copies.values(), default=1) == 1
    for node in nodes:
        for press_id in node.acked:
            assert copies[(node.id, press_id)] == 1, f"acknowledged press {press_id} not saved"
            assert press_id in journalled
    counted: dict[int, list[tuple[str, int]]] = {}
    for player, _press_id, number, rank, flags in rows:
        if rank is not None and "repeat" not in flags.split(","):
            counted.setdefault(number, []).append((player, rank))
        if final:
            assert number is not None, f"press {_press_id} never decided"
    for number, entries in counted.items():
        players = [player for player, _ in entries]
        assert len(players) == len(set(players)), f"round {number} counts a player twice"
        assert sorted(rank for _, rank in entries) == list(range(1, len(entries) + 1))


def _check_state(
    hub: Any, state: dict[str, Any], seen: dict[int, dict[str, dict[str, Any]]]
) -> int:
    """Compare what players saw with the restarted hub's rounds; return how many matched."""
    rounds = _rounds_in_state(hub, state)
    matched = 0
    for number, results in seen.items():
        if number not in rounds:
            continue  # older than the hub keeps in memory; the database check covers it
        shown = {o["press_id"]: o for o in rounds[number]["results"] + rounds[number]["refused"]}
        for press_id, result in results.items():
            if press_id not in shown and rounds[number]["more_refused"] and result["flags"]:
                continue  # a player's later refusal of a kind already listed is only counted
            assert press_id in shown, f"round {number} lost press {press_id}"
            assert shown[press_id]["rank"] == result["rank"], (number, press_id)
            assert shown[press_id]["flags"] == result["flags"], (number, press_id)
            matched += 1
    return matched


async def test_sigkill_at_random_moments_loses_no_acknowledged_press(start_hub, tmp_path) -> None:
    seed = int(os.environ.get("BUZZER_CRASH_SEED", random.randrange(1 << 32)))
    print(f"crash test seed: {seed} (rerun with BUZZER_CRASH_SEED={seed})")
    rng = random.Random(seed)
    data = tmp_path / "data"
    hub = start_hub(config=CONFIG, data_dir=data)
    nodes = [Node(f"node-{i}") for i in range(NODES)]
    compared = kills_mid_flight = 0
    written: set[str] = set()  # nodes whose roster entry is on disk
    for _ in range(ITERATIONS):
        frames = Frames()
        for node in nodes:
            await node.connect(hub.url, frames)
        joined_seq = {node.id: node.seq for node in nodes}
        frames.target = rng.randint(0, 10)
        frames.reached.clear() if frames.target else frames.reached.set()
        play = asyncio.create_task(_play(nodes, frames, rng))
        reached = asyncio.create_task(frames.reached.wait())
        await asyncio.wait({play, reached}, return_when=asyncio.FIRST_COMPLETED)
        hub.kill()
        play.cancel()
        reached.cancel()
        await asyncio.gather(play, reached, return_exceptions=True)
        for node in nodes:
            await node.disconnect()
        kills_mid_flight += any(node.outbox for node in nodes)
        seen = _comparable_rounds(nodes)
        hub.start()
        _check_database(data / "results.db", nodes, final=False)
        state = _state(hub)
        compared += _check_state(hub, state, seen)
        roster = {player["id"]: player["online"] for player in state["players"]}
        written |= _written_roster(nodes, joined_seq)
        assert written <= roster.keys() <= {node.id for node in nodes}, (written, roster)
        assert not any(roster.values())  # the roster is back, all offline
        for node in nodes:
            node.results.clear()
    # The last outboxes go out, then a clean stop: everything must be decided and saved.
    frames = Frames()
    resent = {node.id: set(node.outbox) for node in nodes}
    for node in nodes:
        await node.connect(hub.url, frames)
    async with asyncio.timeout(10):
        while any(node.outbox or resent[node.id] - set(node.results) for node in nodes):
            frames.reached.clear()
            frames.target = frames.count + 1
            await frames.reached.wait()
    for node in nodes:
        await node.disconnect()
    assert hub.stop() == 0
    _check_database(data / "results.db", nodes, final=True)
    db = sqlite3.connect(data / "results.db")
    try:  # a clean stop writes everything queued: the whole roster is on disk
        assert {row[0] for row in db.execute("SELECT id FROM players")} == {n.id for n in nodes}
    finally:
        db.close()
    assert sum(len(node.acked) for node in nodes) > ITERATIONS  # the test did press
    assert compared > 0  # and did compare restored results with what players saw
    print(
        f"{ITERATIONS} kills, {kills_mid_flight} with presses unacknowledged, {compared} compared"
    )


async def test_tutorial_clients_survive_a_kill_and_new_ones_get_new_ids(
    start_hub, client_factory, tmp_path
) -> None:
    # Host-less: round 1 is armed as the hub starts. It is re-armed only long after this test:
    # the restart must find round 1 itself, however long the kill and the restart take.
    config = "[round]\nrelease_lead_ms = 0\nauto_arm_delay_s = 600\n"
    hub = start_hub(config=config, data_dir=tmp_path / "data")
    assert _state(hub)["round"]["state"] == "armed"
    async with connect(hub.url) as first:
        await first.send("buzz")
        assert await first.recv() == "First place!"
        # Tutorial clients get no ack. A node's ack is the barrier: the journal is written in
        # order, so once it is acknowledged everything before it is on disk too.
        node = await client_factory(hub.url, role="node", id="n1")
        await node.expect("welcome")
        await node.send(type="press", press_id="n1-1", at_ns=time.monotonic_ns())
        await node.expect("ack", press_id="n1-1")
    hub.kill()
    hub.start()
    state = _state(hub)
    assert [(r["player"], r["rank"]) for r in state["round"]["results"]] == [
        ("text-1", 1),
        ("n1", 2),
    ]
    async with connect(hub.url) as second:
        await second.send("buzz")
        answer = await second.recv()
    assert answer.startswith("Response time: ")  # ranked behind the restored presses
    assert [(r["player"], r["rank"]) for r in _state(hub)["round"]["results"]] == [
        ("text-1", 1),
        ("n1", 2),
        ("text-2", 3),
    ]


async def test_real_firmware_nodes_lose_nothing_across_kills(
    start_hub, start_node, mock_pins, tmp_path
) -> None:
    """The same promise with the node firmware itself (mock GPIO pins, real outbox)."""
    from firmware.node import Acked, Connected

    seed = int(os.environ.get("BUZZER_CRASH_SEED", random.randrange(1 << 32)))
    print(f"firmware crash test seed: {seed} (rerun with BUZZER_CRASH_SEED={seed})")
    rng = random.Random(seed)
    data = tmp_path / "data"
    hub = start_hub(config=CONFIG, data_dir=data)
    pins = [("GPIO17", "GPIO27"), ("GPIO5", "GPIO6"), ("GPIO13", "GPIO19")]
    nodes = [
        await start_node(hub.url, f"fw{i}", button_pin=button, led_pin=led, guard_ms=1)
        for i, (button, led) in enumerate(pins)
    ]
    marks = [0] * len(nodes)
    pressed: list[tuple[int, str]] = []
    for _ in range(int(os.environ.get("BUZZER_CRASH_FIRMWARE_ITERATIONS", "6"))):
        for node, mark in zip(nodes, marks, strict=True):
            await node.wait_for(Connected, after=mark, timeout=10)
        clicks = []
        for i in rng.sample(range(len(nodes)), rng.randint(1, len(nodes))):
            mark = nodes[i].mark()
            clicks.append((i, mark, (await click(mock_pins.pin(pins[i][0]), nodes[i])).press_id))
        pressed += [(i, press_id) for i, _, press_id in clicks]
        for i, mark, press_id in clicks[: rng.randint(0, len(clicks))]:  # then kill mid-flight
            await nodes[i].wait_for(Acked, lambda e, p=press_id: e.press_id == p, after=mark)
        await asyncio.to_thread(hub.kill)
        marks = [node.mark() for node in nodes]
        await asyncio.to_thread(hub.start)
        _check_firmware_presses(data / "results.db", nodes, Acked, final=False)
    for i, press_id in pressed:  # every press made is acknowledged in the end
        await nodes[i].wait_for(Acked, lambda e, p=press_id: e.press_id == p, timeout=10)
    for node in nodes:
        node.stop()
    assert await asyncio.to_thread(hub.stop) == 0
    _check_firmware_presses(data / "results.db", nodes, Acked, final=True)
    assert len(pressed) >= 6


def _check_firmware_presses(db_path: Path, nodes: list[Any], acked: type, final: bool) -> None:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT player, press_id, round, rank, flags FROM presses").fetchall()
    finally:
        db.close()
    copies = Counter((player, press_id) for player, press_id, *_ in rows)
    assert max(copies.values(), default=1) == 1
    for node in nodes:
        for event in node.events():
            if isinstance(event, acked):
                assert copies[(node.id, event.press_id)] == 1, event.press_id
    counted: dict[int, list[str]] = {}
    for player, _press_id, number, rank, flags in rows:
        if final:
            assert number is not None
        if rank is not None and "repeat" not in flags.split(","):
            counted.setdefault(number, []).append(player)
    for number, players in counted.items():
        assert len(players) == len(set(players)), f"round {number} counts a player twice"
