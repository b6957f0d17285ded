#!/usr/bin/env python3
"""Flood benchmark: do honest players notice one client hammering the hub?

Runs a real ``buzzer-hub`` on 127.0.0.1 and a set of honest nodes that play rounds: the host arms,
one node presses at the release, and the winner's decision latency (press sent to result received)
is measured. The same rounds are played three times: in quiet; while one client in a separate
process floods the hub with junk under the default limits (it is cut off with close 4429 and
reconnects at once, over and over); and with the rate limit lifted, so every junk frame is decoded
and answered. The table goes to stdout, and with ``--write`` into docs/benchmarks.md.

    .venv/bin/python bench/flood.py [--nodes 10] [--rounds 100] [--repeat 3] [--write]

With ``--soak`` it runs the flood soak instead: one fresh hub (saving on) per kind of flood that the
rate limits let through (junk frames, hellos with new station ids, presses under the budget,
viewers with ``/api/state`` pollers, pings), and a quiet run beside them. Honest players play
rounds before, during and after each flood; their press-to-result p50/p99 and the hub's resident
memory are taken in each phase, and afterwards every saved round is read back to count presses
the busy hub heard too late to rank (a flood must not make it name the wrong winner). Bounded:
``--soak-rounds`` rounds a phase, every flood stops with its phase (and the hello flood after
3,000 hellos).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import json
import multiprocessing
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import direct, direct_http
from hub.store import export

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- flood:begin -->", "<!-- flood:end -->"
HOST_TOKEN = "bench-host-token"
LOOPBACK = "127.0.0.1"
BASE_CONFIG = "[round]\nhostless = false\nrelease_lead_ms = 0\n"
UNLIMITED = "[limits]\nmessages_per_s = 1000000\nmessage_burst = 1000000\n"


class Hub:
    """A buzzer-hub subprocess; its log is drained in a thread so the pipe never blocks it."""

    def __init__(self, config: str, folder: Path) -> None:
        path = folder / "hub.toml"
        path.write_text(config, encoding="utf-8")
        command = [
            str(Path(sys.executable).parent / "buzzer-hub"),
            "--config", str(path), "--host", LOOPBACK, "--port", "0",
            "--data-dir", str(folder / "data"), "--host-token", HOST_TOKEN,
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.port = 0
        self.waits_ms: list[float] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(15):
            raise RuntimeError("the hub did not start within 15 s")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            match = re.search(r"listening on \S+?:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                self._ready.set()
            wait = re.search(r"adjudication wait of ([\d.]+) ms", line)
            if wait:
                self.waits_ms.append(float(wait.group(1)))

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time the hub process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the hub process now (Linux /proc; 0 elsewhere)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0
        match = re.search(r"VmRSS:\s+(\d+)", status)
        return int(match.group(1)) / 1024 if match else 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Node:
    """An honest node: answers clock syncs at once and queues everything else (``keeps``
    False: drops it, as the host does with the pictures it never waits for)."""

    def __init__(self, ws: ClientConnection, node_id: str, *, keeps: bool = True) -> None:
        self.ws = ws
        self.id = node_id
        self.keeps = keeps
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.ws:
                message = json.loads(frame)
                if message["type"] == "sync":
                    now = time.monotonic_ns()
                    reply = {"type": "sync_reply", "seq": message["seq"], "t0_ns": message["t0_ns"]}
                    await self.ws.send(json.dumps({**reply, "t1_ns": now, "t2_ns": now}))
                elif self.keeps:
                    self.inbox.put_nowait(message)

    async def expect(self, kind: str, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                message = await self.inbox.get()
                if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                    return message


async def play(url: str, nodes: int, rounds: int, seed: int) -> list[float]:
    """Play ``rounds`` rounds; the winner's press-to-result latency of each, in ms."""
    rng = random.Random(seed)
    host_ws = await direct(url)
    await host_ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "host",
                                   "token": HOST_TOKEN}))  # fmt: skip
    host = Node(host_ws, "host")
    players = []
    for i in range(nodes):
        ws = await direct(url)
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "node", "id": f"n{i}"}))
        players.append(Node(ws, f"n{i}"))
    for player in players:
        await player.expect("welcome")
    latencies = []
    for number in range(rounds):
        await host.ws.send('{"type":"arm"}')
        releases = [(await p.expect("round", state="armed"))["release_ns"] for p in players]
        if None in releases:  # not synced yet: this round only warms up
            releases = [time.monotonic_ns()]
        await asyncio.sleep(max(0, max(releases) - time.monotonic_ns()) / 1e9 + 0.002)
        winner = rng.choice(players)
        press_id = f"{winner.id}-{number}"
        sent = time.monotonic_ns()
        await winner.ws.send(json.dumps({"type": "press", "press_id": press_id, "at_ns": sent}))
        await winner.expect("result", press_id=press_id)
        latencies.append((time.monotonic_ns() - sent) / 1e6)
        await host.ws.send('{"type":"reset"}')
        for player in players:
            await player.expect("round", state="idle")
    for client in [host, *players]:
        await client.ws.close()
        client.task.cancel()
    return latencies[5:]  # the first rounds run while the nodes' clocks are still syncing


def junk(rng: random.Random) -> str | bytes:
    """What the flooder sends: every frame costs the hub a decode, most an answer as well."""
    kind = rng.randrange(6)
    if kind == 0:
        seq = rng.randrange(10**9)
        return f'{{"type":"sync_reply","seq":{seq},"t0_ns":1,"t1_ns":1,"t2_ns":1}}'
    if kind == 1:
        return "{" + "x" * rng.randrange(10, 3000)
    if kind == 2:
        return rng.randbytes(rng.randrange(1, 500))
    if kind == 3:
        return "[" * 900 + "]" * 900
    if kind == 4:
        return '{"type":"arm"}'
    return '{"type":"press","press_id":"x","at_ns":"soon"}'


async def flood(url: str, stop: Any, flooding: Any, counts: Any) -> None:
    rng = random.Random(1)
    while not stop.is_set():
        try:
            async with direct(url, open_timeout=5) as ws:
                await ws.send('{"type":"hello","protocol":1,"role":"node","id":"flooder"}')
                flooding.set()
                reader = asyncio.create_task(_discard(ws))
                with contextlib.suppress(ConnectionClosed):
                    while not stop.is_set():
                        await ws.send(junk(rng))
                        counts[0] += 1
                        await asyncio.sleep(0)  # let the answers (and a close) be read
                reader.cancel()
        except (OSError, InvalidStatus, TimeoutError):
            pass
        counts[1] += 1


async def _discard(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


def flooder_main(url: str, stop: Any, flooding: Any, counts: Any, kind: str = "junk") -> None:
    cores = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and cores > 1:
        # The flooder gets a core of its own, as if it ran on another machine.
        os.sched_setaffinity(0, {cores - 1})
    floods = {
        "junk": flood,
        "hellos": flood_hellos,
        "presses": flood_presses,
        "viewers": flood_viewers,
        "pings": flood_pings,
    }
    asyncio.run(floods[kind](url, stop, flooding, counts))


HELLOS_AT_MOST = 3000


async def flood_hellos(url: str, stop: Any, flooding: Any, counts: Any) -> None:
    """One tokenless client saying hello with a new station id each time (issue 17's first
    flood): 3,000 of them at most."""
    flooding.set()
    for number in range(HELLOS_AT_MOST):
        if stop.is_set():
            return
        try:
            async with direct(url, open_timeout=5) as ws:
                hello = {"type": "hello", "protocol": 1, "role": "node", "id": f"fake-{number}"}
                await ws.send(json.dumps(hello))
                await ws.recv()
                counts[0] += 1
        except (OSError, InvalidStatus, TimeoutError, ConnectionClosed):
            counts[1] += 1


async def flood_presses(url: str, stop: Any, flooding: Any, counts: Any) -> None:
    """Twenty nodes pressing 45 times a second each: just under the 50-a-second budget."""
    nodes = []
    for i in range(20):
        ws = await direct(url)
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "node", "id": f"m{i}"}))
        nodes.append(Node(ws, f"m{i}"))
    flooding.set()
    sequence = 0
    while not stop.is_set():
        started = time.monotonic()
        for node in nodes:
            press = {"type": "press", "press_id": f"{node.id}-{sequence}"}
            with contextlib.suppress(ConnectionClosed):
                await node.ws.send(json.dumps({**press, "at_ns": time.monotonic_ns()}))
                counts[0] += 1
        sequence += 1
        await asyncio.sleep(max(0.0, 1 / 45 - (time.monotonic() - started)))  # the pace
    for node in nodes:
        await node.ws.close()
        node.task.cancel()


def _poll_state(url: str, stop: Any, counts: Any) -> None:
    http = url.replace("ws://", "http://") + "/api/state"
    while not stop.is_set():
        try:
            with direct_http.open(http, timeout=5) as response:
                response.read()
            counts[0] += 1
        except OSError:
            counts[1] += 1


async def flood_viewers(url: str, stop: Any, flooding: Any, counts: Any) -> None:
    """As many viewers as one address may open, and four scripts polling /api/state."""
    viewers = []
    for _ in range(100):
        try:
            ws = await direct(url, max_size=None, open_timeout=5)
        except (OSError, InvalidStatus, TimeoutError):
            counts[1] += 1
            continue
        await ws.send('{"type":"hello","protocol":1,"role":"viewer"}')
        viewers.append((ws, asyncio.create_task(_discard(ws))))
    pollers = [
        threading.Thread(target=_poll_state, args=(url, stop, counts), daemon=True)
        for _ in range(4)
    ]
    for poller in pollers:
        poller.start()
    flooding.set()
    await asyncio.to_thread(stop.wait)  # the viewers just sit there, reading
    for ws, task in viewers:
        await ws.close()
        task.cancel()
    for poller in pollers:
        poller.join(10)


async def flood_pings(url: str, stop: Any, flooding: Any, counts: Any) -> None:
    """WebSocket pings as fast as they go (the library answers each), reconnecting when cut."""
    while not stop.is_set():
        try:
            async with direct(url, open_timeout=5) as ws:
                await ws.send('{"type":"hello","protocol":1,"role":"viewer"}')
                flooding.set()
                reader = asyncio.create_task(_discard(ws))
                with contextlib.suppress(ConnectionClosed):
                    while not stop.is_set():
                        await ws.ping()
                        counts[0] += 1
                        await asyncio.sleep(0)
                reader.cancel()
        except (OSError, InvalidStatus, TimeoutError):
            pass
        counts[1] += 1


@dataclass
class Run:
    name: str
    latencies: list[float]
    frames: int = 0
    seconds: float = 0.0
    connections: int = 0
    hub_cpu_s: float = 0.0
    waits_ms: list[float] = field(default_factory=list)

    def row(self) -> str:
        data = sorted(self.latencies)
        p50 = statistics.median(data)
        p99 = data[min(len(data) - 1, round(0.99 * (len(data) - 1)))]
        rate = f"{self.frames / self.seconds:,.0f}" if self.frames else "—"
        extra = f"{self.connections:,}" if self.frames else "—"
        cpu = 100 * self.hub_cpu_s / self.seconds
        waits = sorted(self.waits_ms) or [0.0]
        wait99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
        return (
            f"| {self.name} | {len(data)} | {p50:.2f} | **{p99:.2f}** | {max(data):.2f} | "
            f"{wait99:.2f} | {cpu:.0f} % | {rate} | {extra} |"
        )


def scenario(name: str, config: str, flooding: bool, args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        hub = Hub(config, Path(folder))
        spawn = multiprocessing.get_context("spawn")
        stop, started = spawn.Event(), spawn.Event()
        counts = spawn.Array("q", 2)
        flooder = None
        if flooding:
            flooder = spawn.Process(target=flooder_main, args=(hub.url, stop, started, counts))
            flooder.start()
            if not started.wait(30):
                raise RuntimeError("the flooder did not connect within 30 s")
        frames, connections, begun = counts[0], counts[1], time.monotonic()
        cpu = hub.cpu_seconds()
        try:
            latencies = asyncio.run(play(hub.url, args.nodes, args.rounds, args.seed))
        finally:
            seconds = time.monotonic() - begun
            cpu = hub.cpu_seconds() - cpu
            frames, connections = counts[0] - frames, counts[1] - connections
            stop.set()
            if flooder is not None:
                flooder.join(10)
            hub.stop()
        return Run(name, latencies, frames, seconds, connections, cpu, hub.waits_ms[5:])


# --- the flood soak ---

SOAK_BEGIN, SOAK_END = "<!-- flood-soak:begin -->", "<!-- flood-soak:end -->"
SOAK_FLOODS = [
    ("quiet", None),
    ("junk frames (closed at 200, reconnecting)", "junk"),
    ("hellos with new station ids (3,000 at most)", "hellos"),
    ("20 nodes pressing 45 a second", "presses"),
    ("viewers from one address, 4 /api/state pollers", "viewers"),
    ("pings", "pings"),
]
SETTLE_S = 3.0  # after a flood stops: its connections close, the hub's buffers drain


class Game:
    """The honest side: a host and ``nodes`` nodes playing one round after another."""

    def __init__(self, host: Node, players: list[Node], rng: random.Random) -> None:
        self.host = host
        self.players = players
        self.rng = rng
        self.number = 0

    @classmethod
    async def open(cls, url: str, nodes: int, seed: int) -> Game:
        host_ws = await direct(url, max_size=None)
        await host_ws.send(
            json.dumps({"type": "hello", "protocol": 1, "role": "host", "token": HOST_TOKEN})
        )
        players = []
        for i in range(nodes):
            ws = await direct(url)
            await ws.send(
                json.dumps({"type": "hello", "protocol": 1, "role": "node", "id": f"n{i}"})
            )
            players.append(Node(ws, f"n{i}"))
        for player in players:
            await player.expect("welcome")
        game = cls(Node(host_ws, "host", keeps=False), players, random.Random(seed))
        for _ in range(5):  # warm-up rounds while the clocks sync
            await game.round()
        return game

    async def round(self) -> float:
        """One round; the winner's press-to-result time, ms."""
        self.number += 1
        await self.host.ws.send('{"type":"arm"}')
        releases = [(await p.expect("round", state="armed"))["release_ns"] for p in self.players]
        if None in releases:
            releases = [time.monotonic_ns()]
        await asyncio.sleep(max(0, max(releases) - time.monotonic_ns()) / 1e9 + 0.002)
        winner = self.rng.choice(self.players)
        press_id = f"{winner.id}-{self.number}"
        sent = time.monotonic_ns()
        await winner.ws.send(json.dumps({"type": "press", "press_id": press_id, "at_ns": sent}))
        await winner.expect("result", press_id=press_id)
        latency = (time.monotonic_ns() - sent) / 1e6
        await self.host.ws.send('{"type":"reset"}')
        for player in self.players:
            await player.expect("round", state="idle")
        return latency

    async def close(self) -> None:
        for client in [self.host, *self.players]:
            await client.ws.close()
            client.task.cancel()


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


@dataclass
class Soak:
    name: str
    phases: dict[str, Phase] = field(
        default_factory=lambda: {"before": Phase(), "during": Phase(), "after": Phase()}
    )
    frames: int = 0
    seconds: float = 0.0
    ranked: int = 0  # presses ranked in a round, over every phase and repeat
    late: int = 0  # of them, heard after the announcement though stamped before a ranked press
    overturned: int = 0  # of those, stamped before the round's first place: a wrong winner

    def count_late(self, data: Path) -> None:
        """Read the saved rounds as ``buzzer-hub export`` does, and count the presses a busy hub
        heard too late: a flood must not make the hub name the wrong winner."""
        out = io.StringIO()
        export(data, "json", out)
        presses = json.loads(out.getvalue())["presses"]
        first = {(p["game"], p["round"]): p["press_ns"] for p in presses if p["rank"] == 1}
        for press in presses:
            if press["rank"] is None:
                continue
            self.ranked += 1
            if "late" in press["flags"].split(","):
                self.late += 1
                winner = first.get((press["game"], press["round"]))
                if winner is not None and press["press_ns"] < winner:
                    self.overturned += 1

    def cells(self) -> str:
        out = []
        for phase in self.phases.values():
            data = sorted(phase.latencies)
            out.append(f"{statistics.median(data):.2f} / {percentile(data, 0.99):.2f}")
        rss = [statistics.median(p.rss_mb) for p in self.phases.values()]
        rate = f"{self.frames / self.seconds:,.0f}" if self.frames else "—"
        return " | ".join(out) + f" | {rss[0]:.1f} / {rss[1]:.1f} / {rss[2]:.1f} | {rate}"


def percentile(data: list[float], q: float) -> float:
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def soak_phases(hub: Hub, kind: str | None, args: argparse.Namespace, run: Soak) -> None:
    game = await Game.open(hub.url, args.nodes, args.seed)
    try:
        for _ in range(args.soak_rounds):
            run.phases["before"].latencies.append(await game.round())
        run.phases["before"].rss_mb.append(hub.rss_mb())
        spawn = multiprocessing.get_context("spawn")
        stop, started = spawn.Event(), spawn.Event()
        counts = spawn.Array("q", 2)
        flooder = None
        if kind is not None:
            flooder = spawn.Process(
                target=flooder_main, args=(hub.url, stop, started, counts, kind)
            )
            flooder.start()
            if not await asyncio.to_thread(started.wait, 60):
                raise RuntimeError(f"the {kind} flood did not start within 60 s")
        begun = time.monotonic()
        try:
            for _ in range(args.soak_rounds):
                run.phases["during"].latencies.append(await game.round())
            run.phases["during"].rss_mb.append(hub.rss_mb())
        finally:
            run.seconds += time.monotonic() - begun
            run.frames += counts[0]
            stop.set()
            if flooder is not None:
                await asyncio.to_thread(flooder.join, 30)
        await asyncio.sleep(SETTLE_S)  # pacing: the flood's connections close and drain
        for _ in range(args.soak_rounds):
            run.phases["after"].latencies.append(await game.round())
        run.phases["after"].rss_mb.append(hub.rss_mb())
    finally:
        await game.close()


def soak(args: argparse.Namespace) -> list[Soak]:
    runs = [Soak(name) for name, _ in SOAK_FLOODS]
    for _ in range(args.repeat):
        for run, (_, kind) in zip(runs, SOAK_FLOODS, strict=True):
            with tempfile.TemporaryDirectory() as folder:
                hub = Hub(BASE_CONFIG, Path(folder))
                try:
                    asyncio.run(soak_phases(hub, kind, args, run))
                finally:
                    hub.stop()
                run.count_late(Path(folder) / "data")
            print(f"{run.name}: {run.cells()}", file=sys.stderr, flush=True)
    return runs


def soak_report(runs: list[Soak], args: argparse.Namespace, load: tuple[float, float]) -> str:
    quiet = percentile(runs[0].phases["during"].latencies, 0.99)
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()}, load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end (other work on the machine "
        f"shows in every row); {args.nodes} honest nodes, {args.soak_rounds} rounds in each "
        f"phase, each flood {args.repeat} times interleaved with the others, a fresh hub "
        "(saving on, default limits) for each. Latency: the winner's press sent to its result "
        "received, on loopback, including the adjudication wait. RSS: the hub's resident "
        "memory at the end of each phase (median over the repeats).",
        "",
        "| flood | before p50 / p99 ms | during p50 / p99 ms | after p50 / p99 ms "
        "| RSS before / during / after MB | flood frames/s | during p99 vs quiet's during | RSS "
        "after vs before | presses ranked: heard late / stamped before the winner |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        during = percentile(run.phases["during"].latencies, 0.99)
        own = percentile(run.phases["before"].latencies, 0.99)
        before = statistics.median(run.phases["before"].rss_mb)
        after = statistics.median(run.phases["after"].rss_mb)
        ratio = during / quiet
        grew = after / before - 1
        lines.append(
            f"| {run.name} | {run.cells()} | {ratio:.2f}x "
            f"{'(met)' if ratio <= 2 else '(**not met**)'}; {during / own:.2f}x its own before "
            f"| {grew * 100:+.1f} % {'(met)' if grew <= 0.10 else '(**not met**)'} "
            f"| {run.ranked:,}: {run.late} / {run.overturned} |"
        )
    lines += [
        "",
        "Targets (issue 17): honest p99 during any flood within 2x of the quiet run's, and the "
        "hub's memory back within 10 % of where it was before the flood. The last column reads "
        "every round back from the hub's saved results (as `buzzer-hub export` does): presses "
        "heard after the announcement though stamped before a ranked one (flagged `late`), and "
        "of those, any stamped before the round's first place (the wrong winner named).",
        "",
        f"Reproduce: `.venv/bin/python bench/flood.py --soak --nodes {args.nodes} "
        f"--soak-rounds {args.soak_rounds} --repeat {args.repeat}` (add `--write` to update "
        "this section).",
    ]
    return "\n".join(lines)


def write_soak(body: str) -> None:
    heading = "## Flood soak: what each flood the limits let through costs the honest players"
    section = f"{heading}\n\n{SOAK_BEGIN}\n{body}\n{SOAK_END}\n"
    text = DOC.read_text(encoding="utf-8")
    if SOAK_BEGIN in text and SOAK_END in text:
        start = text.index(heading) if heading in text else text.index(SOAK_BEGIN)
        text = text[:start] + section + text[text.index(SOAK_END) + len(SOAK_END) + 1 :]
    else:
        marker = "<!-- bench/run.py: results -->"
        at = text.index(marker) if marker in text else len(text)
        text = text[:at].rstrip("\n") + "\n\n" + section + "\n" + text[at:]
    DOC.write_text(text, encoding="utf-8")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}"


def report(runs: list[Run], args: argparse.Namespace, load: float) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        f"Measured {today} on {machine()}, load average {load:.1f} at the start (other work on "
        f"the machine shows up in every row); {args.nodes} honest nodes, {args.rounds} rounds per "
        f"run, each case run {args.repeat} times interleaved with the others "
        "(the first 5 left out while clocks sync), one node presses at the release; latency is "
        "its press sent to its result received, on loopback, including the hub's adjudication "
        "wait.",
        "",
        "| run | rounds | p50 ms | p99 ms | max ms | wait p99 ms | hub CPU | flood frames/s "
        "| flooder reconnects |",
        "|---|---|---|---|---|---|---|---|---|",
        *(run.row() for run in runs),
        "",
        f"Reproduce: `.venv/bin/python bench/flood.py --nodes {args.nodes} --rounds {args.rounds} "
        f"--repeat {args.repeat}`"
        " (add `--write` to update this section).",
    ]
    return "\n".join(lines)


def write_section(body: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md, leaving the others alone."""
    heading = "## Flood: one hostile client, the others' decision latency"
    intro = (
        "One client floods the hub with junk (bad JSON, binary frames, deeply nested arrays, long\n"
        "frames, refused host commands, unknown sync replies) as fast as it can, from a separate\n"
        "process pinned to a core of its own (as if it were another machine); the hub and the\n"
        "honest nodes share the remaining cores. Under the default limits the flooder is closed\n"
        "with 4429 after 200 frames, the hub stops reading from it at once, and it reconnects and\n"
        "starts over; with the rate limit lifted every junk frame is decoded and answered.\n"
        '"wait" '
        "is the adjudication wait the hub logged for each decision: it follows the honest nodes'\n"
        "measured upload delays, so it grows when the machine is busy.\n"
    )
    section = f"{heading}\n\n{intro}\n{BEGIN}\n{body}\n{END}\n"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        start = text.index(heading) if heading in text else text.index(BEGIN)
        text = text[:start] + section + text[text.index(END) + len(END) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")


def keep_off_the_flooders_core() -> None:
    """The hub and the honest nodes share the other cores (children inherit this)."""
    cores = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and cores > 1:
        os.sched_setaffinity(0, set(range(cores - 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each case")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--soak", action="store_true", help="the flood soak (see above)")
    parser.add_argument("--soak-rounds", type=int, default=40, help="rounds in each phase")
    args = parser.parse_args()
    keep_off_the_flooders_core()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if args.soak:
        runs = soak(args)
        body = soak_report(runs, args, (load, os.getloadavg()[0]))
        print(body)
        if args.write:
            write_soak(body)
        return 0
    plans = [
        ("quiet", BASE_CONFIG, False),
        ("flood, default limits", BASE_CONFIG, True),
        ("flood, rate limit lifted", BASE_CONFIG + UNLIMITED, True),
    ]
    # Interleaved repeats: load from other work on the machine comes and goes, and should fall
    # on every run alike rather than on whichever happened to run at the time.
    runs = [Run(name, []) for name, _, _ in plans]
    for _ in range(args.repeat):
        for run, (name, config, flooding) in zip(runs, plans, strict=True):
            part = scenario(name, config, flooding, args)
            run.latencies += part.latencies
            run.waits_ms += part.waits_ms
            run.frames += part.frames
            run.seconds += part.seconds
            run.connections += part.connections
            run.hub_cpu_s += part.hub_cpu_s
    body = report(runs, args, load)
    print(body)
    if args.write:
        write_section(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
