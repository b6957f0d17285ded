"""The servers under test, as subprocesses, and what the benchmarks read from them.

A real ``buzzer-hub`` (optionally under cProfile) and the baseline server each run in a process of
their own on 127.0.0.1, so that their CPU time and memory can be read from ``/proc`` apart from the
load generator's: ``utime + stime`` from ``/proc/PID/stat`` and the peak resident size ``VmHWM``
from ``/proc/PID/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

TOKEN = "bench-host-token"
BENCH = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

HUB_CONFIG = """
[round]
hostless = false
release_lead_ms = 20

[discovery]
enabled = false

# The load generator stands in for hundreds of stations, all from 127.0.0.1: the per-address
# limits, meant for one machine among many, are lifted for it.
[limits]
tokenless_per_address = 0
new_ids_burst = 1000000
# A tutorial client sends nothing until its player presses, and the greeting deadline (10 s)
# closes a silent one; connecting a thousand of them on a busy machine takes longer than that.
hello_timeout_s = 300
"""


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float  # user + system time so far
    rss_kb: int  # resident now
    peak_rss_kb: int  # highest resident size so far (VmHWM)


def usage(pid: int) -> Usage:
    """CPU time and memory of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; field 3 is fields[0]
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return Usage(cpu, rss, peak)


#: Plain HTTP to the servers, as straight as :func:`direct`.
direct_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def direct(url: str, **options: Any) -> connect:
    """A client connection straight to ``url``, uncompressed as the classic tutorial's, and never
    through a web proxy the environment names (websockets follows one by default): the proxy
    would be measured instead of the server, or refuse the loopback address outright."""
    return connect(url, compression=None, proxy=None, **options)


class Server:
    """A server subprocess that prints ``listening on HOST:PORT`` on stderr or stdout."""

    def __init__(self, command: list[str], pattern: str, *, stdout: bool = False) -> None:
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
            text=True,
        )
        stream = self.proc.stdout if stdout else self.proc.stderr
        assert stream is not None
        for line in stream:
            self.log.append(line.rstrip())
            if match := re.search(pattern, line):
                self.port = int(match.group(1))
                break
        else:
            raise RuntimeError("the server exited before it listened:\n" + "\n".join(self.log))
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.log.append(line.rstrip())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def usage(self) -> Usage:
        return usage(self.proc.pid)

    def stop(self) -> None:
        """Terminate (cleanly: a profiled hub writes its profile on the way out)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_hub(
    workdir: Path, *, store: bool, profile: Path | None = None, bare: bool = False
) -> Server:
    """A real hub on a free loopback port; ``store``: save to SQLite, else ``--memory-only``;
    ``bare``: with its game bypassed (:mod:`bench.bare_hub`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "hub.toml"
    config.write_text(HUB_CONFIG)
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    command = [*python, str(BENCH / "bare_hub.py")] if bare else [*python, "-m", "hub"]
    command += ["--host", "127.0.0.1", "--port", "0"]
    command += ["--config", str(config), "--host-token", TOKEN]
    command += ["--data-dir", str(workdir / "data")] if store else ["--memory-only"]
    return Server(command, r"listening on \S+?:(\d+)")


def start_baseline(script: str = "baseline_server.py") -> Server:
    """The classic server (or another of the bench's servers that speak its protocol)."""
    command = [sys.executable, str(BENCH / script)]
    return Server(command, r"listening on 127\.0\.0\.1:(\d+)", stdout=True)


class Host:
    """The host role: arms rounds; a reader keeps the latest state picture."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.state: dict[str, Any] = {}
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Host:
        ws = await direct(url, max_size=None)
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "host", "token": TOKEN}))
        return cls(ws)

    async def _read(self) -> None:
        async for frame in self.ws:
            message = json.loads(frame)
            if message.get("type") == "state":
                self.state = message
                async with self._changed:
                    self._changed.notify_all()

    async def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> Any:
        """The first state picture (the latest or a later one) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: bool(self.state) and predicate(self.state))
        return self.state

    async def arm(self, timeout: float = 10.0) -> dict[str, Any]:
        """Arm the next round; returns the round as the hub announced it (with ``release_ns``)."""
        before = self.state.get("round", {}).get("number", 0) if self.state else 0
        await self.ws.send(json.dumps({"type": "arm"}))
        state = await self.wait(
            lambda s: s["round"]["number"] > before and s["round"]["state"] == "armed", timeout
        )
        return state["round"]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader


async def plain_reset(url: str) -> None:
    """Start a new round on the baseline server."""
    async with direct(url) as ws:
        await ws.send("reset")
        await ws.recv()
