#!/usr/bin/env python3
"""What saving results costs: press-to-ack and press-to-result latency, with and without the store.

Runs a real ``buzzer-hub`` on 127.0.0.1 twice, once saving to a data directory (WAL,
synchronous=FULL) and once with ``--memory-only``; each round every node presses at once and
the script times, on the nodes' side:

- press -> ack: the ack waits for the commit, so this is the durability cost;
- press -> result for the winner: the decision, which must not wait for the disk (it includes
  the adjudication wait, the same in both runs).

    .venv/bin/python bench/store_latency.py [--rounds N] [--nodes N] [--repeat N] [--data-dir DIR]

--data-dir chooses the disk to measure (default: a temporary directory, often tmpfs or an SSD;
on a Pi, point it at the SD card).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import direct

HUB = str(Path(sys.executable).parent / "buzzer-hub")
CONFIG = """
[round]
hostless = true
auto_arm_delay_s = 0.03
release_lead_ms = 0
"""


class Node:
    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws, self.name = ws, name
        self.sent: dict[str, int] = {}
        self.acks: list[int] = []
        self.results: list[tuple[int, int]] = []  # (rank, latency)
        self.armed = asyncio.Event()
        self.synced = asyncio.Event()
        self.round = 0

    async def run(self) -> None:
        async for raw in self.ws:
            now = time.monotonic_ns()
            frame: dict[str, Any] = json.loads(raw)
            kind = frame["type"]
            if kind == "sync":
                await self.ws.send(
                    json.dumps(
                        {
                            "type": "sync_reply",
                            "seq": frame["seq"],
                            "t0_ns": frame["t0_ns"],
                            "t1_ns": now,
                            "t2_ns": now,
                        }
                    )
                )
            elif kind == "ack" and frame["press_id"] in self.sent:
                self.acks.append(now - self.sent[frame["press_id"]])
            elif kind == "result" and frame["press_id"] in self.sent and frame["rank"]:
                self.results.append((frame["rank"], now - self.sent[frame["press_id"]]))
            elif kind == "round" and frame["state"] == "armed":
                if frame["synced"]:
                    self.synced.set()
                if frame["number"] > self.round:
                    self.round = frame["number"]
                    self.armed.set()

    async def press(self, number: int) -> None:
        press_id = f"{self.name}-{number}"
        self.sent[press_id] = time.monotonic_ns()
        await self.ws.send(
            json.dumps({"type": "press", "press_id": press_id, "at_ns": self.sent[press_id]})
        )


def start_hub(config: Path, data: Path, memory_only: bool) -> tuple[subprocess.Popen[str], int]:
    command = [HUB, "--host", "127.0.0.1", "--port", "0", "--config", str(config)]
    command += ["--data-dir", str(data), "--host-token", "bench"]
    if memory_only:
        command.append("--memory-only")
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"listening on \S+?:(\d+)", line)
        if match:
            # Keep draining the log so that a full pipe never stalls the hub.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(match.group(1))
    raise SystemExit("the hub did not start")


async def measure(port: int, rounds: int, nodes_count: int) -> tuple[list[int], list[int]]:
    nodes = []
    for i in range(nodes_count):
        ws = await direct(f"ws://127.0.0.1:{port}")
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "node", "id": f"n{i}"}))
        nodes.append(Node(ws, f"n{i}"))
    readers = [asyncio.create_task(node.run()) for node in nodes]
    for node in nodes:  # clocks synced and round 1 armed: measure steady state only
        await asyncio.wait_for(node.synced.wait(), 10)
    for number in range(1, rounds + 1):
        for node in nodes:
            await asyncio.wait_for(node.armed.wait(), 10)
            node.armed.clear()
        await asyncio.gather(*(node.press(number) for node in nodes))
    for node in nodes:  # the last round's answers
        await asyncio.wait_for(node.armed.wait(), 10)
    for node in nodes:
        await node.ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    acks = [a for node in nodes for a in node.acks]
    winners = [latency for node in nodes for rank, latency in node.results if rank == 1]
    return acks, winners


def summary(name: str, values: list[int]) -> str:
    ms = sorted(v / 1e6 for v in values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{name:<26} n={len(ms):<5} median {statistics.median(ms):6.2f} ms   "
        f"p99 {p99:6.2f} ms   max {ms[-1]:6.2f} ms"
    )


def restore_time(directory: Path, rounds: int, nodes_count: int) -> tuple[float, float]:
    """Write a synthetic night through the real store, then time a restore (journal replay).

    Also returns the event loop's own share of saving: the mean time of ``Store.record`` (turn
    one engine step into statements and queue them), the only store work on the loop's path.
    """
    from hub.round import PressIn, Rules
    from hub.store import Store

    rules = Rules(auto_arm_after_ns=3_000_000_000)
    store = Store(directory)
    store.open()
    engine, _ = store.restore(rules, 0, time.time_ns())
    loop = asyncio.new_event_loop()
    store.start(loop)
    now = 0
    recording = 0.0
    for number in range(rounds):
        store.record(engine.take_calls(), engine.arm(now), engine, None)
        for i in range(nodes_count):
            press = PressIn(f"n{i}", f"n{i}-{number}", now + 100_000 * i, now + 200_000 * i)
            events = engine.press(press, now + 200_000 * i, 2_000_000)
            started = time.perf_counter()
            store.record(engine.take_calls(), events, engine, None)
            recording += time.perf_counter() - started
        now += 10_000_000
        store.record(engine.take_calls(), engine.tick(now), engine, None)
        now += 1_000_000_000
    store.close()
    loop.close()
    again = Store(directory)
    again.open()
    started = time.perf_counter()
    again.restore(rules, now, time.time_ns())
    elapsed = time.perf_counter() - started
    again.close()
    return elapsed, recording / (rounds * nodes_count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--data-dir", help="where to put the database (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hub.toml"
        config.write_text(CONFIG)
        measured: dict[bool, tuple[list[int], list[int]]] = {True: ([], []), False: ([], [])}
        for repeat in range(args.repeat):  # alternate, so that load from elsewhere hits both
            for memory_only in (True, False):
                data = (
                    Path(args.data_dir or tmp) / f"{'memory' if memory_only else 'saved'}{repeat}"
                )
                proc, port = start_hub(config, data, memory_only)
                try:
                    acks, winners = asyncio.run(measure(port, args.rounds, args.nodes))
                finally:
                    proc.terminate()
                    proc.wait(10)
                measured[memory_only][0].extend(acks)
                measured[memory_only][1].extend(winners)
        where = args.data_dir or tmp
        for memory_only, (acks, winners) in measured.items():
            label = "memory only" if memory_only else f"saving to {where}"
            print(f"{label}: {args.repeat} x {args.rounds} rounds x {args.nodes} nodes at once")
            print("  " + summary("press -> ack", acks))
            print("  " + summary("press -> winner's result", winners))
        rounds, presses = 500, 20
        seconds, per_press = restore_time(Path(args.data_dir or tmp) / "night", rounds, presses)
        print(f"loop time to queue one press for saving: {per_press * 1e6:.0f} us (mean)")
        print(f"restore of a night of {rounds} rounds x {presses} presses: {seconds * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
