"""What keeping clocks in sync costs an idle hub: a fixed 2 s interval against the adaptive one.

    .venv/bin/python -m bench.sync_cost [--nodes 100] [--settle-s 120] [--measure-s 30] [--repeat 2]

For each schedule in turn (alternated, so that load from elsewhere on the machine hits both
alike), a real ``buzzer-hub`` (memory only) gets ``--nodes`` simulated nodes
(:mod:`bench.loadnode`, answering every sync at once, as the firmware does). After ``--settle-s``
(the adaptive schedule backs off over the first minute or so), the hub's CPU time is read from
``/proc`` over ``--measure-s``, and the nodes count the sync requests they answered. No rounds,
no host: what is left is the sync exchanges, the pings and the idle loop.

This measures; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Server
from bench.loadnode import SimNode

SCHEDULES = {"fixed 2 s": 2.0, "adaptive (2 to 32 s)": 32.0}
CONFIG = """
[round]
hostless = false
[clock]
sync_interval_s = 2.0
max_sync_interval_s = {longest}
[discovery]
enabled = false
"""


async def measure(
    name: str, longest: float, nodes: int, settle_s: float, measure_s: float
) -> tuple[float, float]:
    """(hub CPU, % of one core; sync exchanges per node per minute) once settled."""
    with tempfile.TemporaryDirectory() as workdir:
        config = Path(workdir) / "hub.toml"
        config.write_text(CONFIG.format(longest=longest))
        command = [sys.executable, "-m", "hub", "--host", "127.0.0.1", "--port", "0"]
        command += ["--config", str(config), "--memory-only"]
        hub = Server(command, r"listening on \S+?:(\d+)")
        sims: list[SimNode] = []
        try:
            for i in range(nodes):
                sims.append(await SimNode(hub.url, f"n{i}", offset_ns=i * 1_000_003).connect())
            await asyncio.sleep(settle_s)  # the schedule settles; this is the benchmark's pacing
            before, answered = hub.usage().cpu_s, sum(s.syncs_answered for s in sims)
            started = time.monotonic()
            await asyncio.sleep(measure_s)
            elapsed = time.monotonic() - started
            cpu = (hub.usage().cpu_s - before) / elapsed * 100
            syncs = (sum(s.syncs_answered for s in sims) - answered) / nodes / elapsed * 60
        finally:
            for sim in sims:
                await sim.close()
            hub.stop()
    print(f"{name}: {cpu:.2f} % of a core, {syncs:.1f} syncs/node/min", file=sys.stderr)
    return cpu, syncs


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SCHEDULES}
    for _ in range(args.repeat):
        for name, longest in SCHEDULES.items():
            runs[name].append(
                await measure(name, longest, args.nodes, args.settle_s, args.measure_s)
            )
    after = os.getloadavg()
    print(f"# {' '.join(['python', '-m', 'bench.sync_cost', *sys.argv[1:]])}")
    print(f"# load average before {load[0]:.1f} / {load[1]:.1f}, ", end="")
    print(f"after {after[0]:.1f} / {after[1]:.1f}")
    print("| schedule | nodes | hub CPU, % of one core (runs) | median ", end="")
    print("| sync exchanges per node per minute |")
    print("|---|---|---|---|---|")
    for name, results in runs.items():
        cpus = ", ".join(f"{cpu:.2f}" for cpu, _ in results)
        median = statistics.median(cpu for cpu, _ in results)
        syncs = statistics.median(rate for _, rate in results)
        print(f"| {name} | {args.nodes} | {cpus} | {median:.2f} | {syncs:.1f} |")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--settle-s", type=float, default=120.0)
    parser.add_argument("--measure-s", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=2)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
