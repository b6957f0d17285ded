"""How late an input path stamps a press, measured where this machine allows it.

    .venv/bin/python -m bench.input_paths [--presses 300]

The terminal: a pseudo-terminal stands in for the keyboard's tty. The benchmark writes a space
to it at an instant it notes (the key, as far as the node can know it), and the node's own
terminal source (:class:`firmware.inputs.TerminalKey`) stamps the press when its event loop finds
the terminal readable. The difference is how late the stamp is: what the hub's 2 ms allowance
for a terminal must cover. Presses are 20 ms apart, with the node's other work (none here)
absent, so this is the path itself on this machine's load.

A GPIO button's stamp is the pin driver's own time of the edge (see docs/timing.md): nothing in
this process can be late for it, and it needs a Pi to measure the driver. The keyboard needs an
input device (or /dev/uinput) this machine may not have; the benchmark says so and skips it.

This measures; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from bench.fairness import percentile
from firmware.config import NodeConfig, TerminalSection
from firmware.inputs import TerminalKey


async def terminal(presses: int) -> list[float]:
    """Milliseconds from the write to the stamp, per press."""
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()
    stamps: asyncio.Queue[int] = asyncio.Queue()
    config = NodeConfig(terminal=TerminalSection(repeat_guard_ms=1.0))
    key = TerminalKey(
        config, loop, time.monotonic_ns, lambda at, _: stamps.put_nowait(at), lambda _: None, slave
    )
    late: list[float] = []
    try:
        for _ in range(presses):
            written = time.monotonic_ns()
            os.write(master, b" ")
            stamp = await asyncio.wait_for(stamps.get(), 5)
            late.append((stamp - written) / 1e6)
            await asyncio.sleep(0.02)  # the next key, 20 ms on: pacing, not synchronisation
    finally:
        key.close()
        os.close(master)
        os.close(slave)
    return late


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    late = await terminal(args.presses)
    print(f"# {' '.join(['python', '-m', 'bench.input_paths', *sys.argv[1:]])}")
    print(f"# load average (1, 5 min): {load[0]:.1f} / {load[1]:.1f}")
    print("| input path | presses | stamp late p50 / p99 / max ms | allowance ms |")
    print("|---|---|---|---|")
    p50, p99 = percentile(late, 0.5), percentile(late, 0.99)
    print(f"| terminal (pty) | {len(late)} | {p50:.3f} / {p99:.3f} / {max(late):.3f} | 2 |")
    if not args.keyboard:
        print("| keyboard | - | not measured: no input device or /dev/uinput here | 1 |")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=300)
    args = parser.parse_args()
    args.keyboard = Path("/dev/uinput").exists() or Path("/dev/input").exists()
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
