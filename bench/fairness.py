"""Fairness benchmark: press-time ranking against arrival-order ranking, side by side.

    .venv/bin/python -m bench.fairness [--rounds N] [--skews 0,50,...] [--gaps 0.5,2,...]

Starts a real ``buzzer-hub`` on 127.0.0.1 and, for each delay skew, two simulated nodes
(:mod:`bench.loadnode`) with random clock offsets of up to 1000 s: one direct, one behind the delay
proxy with ``skew`` ms of latency in each direction. After a warm-up of syncing, rounds follow one
another with the gaps interleaved. Each round one of them (the two in turn) presses
first and the other ``gap`` ms later, at instants the benchmark chooses, so the truth is known.
The hub's ranking (press time in hub time) and an arrival-order ranking (the classic tutorial's:
who reached the server first, from ``arrival_ns`` in the same rounds) are both scored:

* right: the true first press is ranked first (for the hub: what players were told, ties included)
* gap error: |reported gap - true gap|, p50 and p99, in ms
* wait: the hub's adjudication wait (first arrival to announcement), p50, in ms

This measures; it does not pass or fail. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.harness import direct, direct_http
from bench.loadnode import SimNode
from tests.support.delay_proxy import Link, ProcessDelayProxy

TOKEN = "bench-host-token"
MS = 1_000_000
CONFIG = """
[round]
hostless = false
release_lead_ms = 20
adjudication_margin_ms = {margin}
adjudication_cap_ms = 500
[clock]
max_sync_interval_s = {longest}
"""


class Hub:
    """A real ``buzzer-hub`` subprocess on an ephemeral loopback port; ``longest``: the longest
    sync interval (2, the shortest: a fixed interval as before adaptive syncing)."""

    def __init__(self, workdir: Path, margin_ms: float, longest: float = 32.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "hub.toml"
        config.write_text(CONFIG.format(margin=margin_ms, longest=longest))
        binary = Path(sys.executable).parent / "buzzer-hub"
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [
                *(str(binary), "--host", "127.0.0.1", "--port", "0", "--config", str(config)),
                *("--data-dir", str(workdir / "data"), "--host-token", TOKEN),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if match := re.search(r"listening on \S+?:(\d+)", line):
                self.port = int(match.group(1))
                break
        else:
            raise RuntimeError("the hub exited before it listened")
        self.version = subprocess.run(
            [sys.executable, "-m", "pip", "show", "buzzer-beater"], capture_output=True, text=True
        ).stdout
        # Keep draining the log so the hub never blocks on a full pipe.
        asyncio.get_running_loop().run_in_executor(None, self._drain)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def snapshot(self) -> dict[str, Any]:
        """The hub's state as served on /api/state."""
        with direct_http.open(f"http://127.0.0.1:{self.port}/api/state", timeout=5) as r:
            state: dict[str, Any] = json.load(r)
        return state

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Host:
    """The host role: arms rounds and reads the hub's state pictures."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str) -> Host:
        ws = await direct(url)
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "host", "token": TOKEN}))
        return cls(ws)

    async def state(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                if message.get("type") == "state" and predicate(message):
                    return message

    async def arm(self, after: int) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "arm"}))
        state = await self.state(
            lambda s: s["round"]["number"] > after and s["round"]["state"] == "armed"
        )
        return state["round"]  # type: ignore[no-any-return]


@dataclass
class Cell:
    skew_ms: float
    gap_ms: float
    hub_right: int = 0
    arrival_right: int = 0
    ties: int = 0
    late: int = 0
    clamped: int = 0  # rounds in which a press claimed more than its link explains
    hub_errors: list[float] = field(default_factory=list)
    arrival_errors: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        return len(self.hub_errors)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_skew(
    hub: Hub,
    host: Host,
    skew_ms: float,
    gaps: list[float],
    rounds: int,
    rng: random.Random,
    warmup_s: float,
) -> list[Cell]:
    link = Link(skew_ms / 1000)
    with ProcessDelayProxy(hub.port, up=link, down=link) as proxy:
        tag = f"{skew_ms:g}".replace(".", "_")
        slow = SimNode(proxy.url, f"slow-{tag}", offset_ns=rng.randrange(-1000, 1000) * 10**9 + 7)
        fast = SimNode(hub.url, f"fast-{tag}", offset_ns=rng.randrange(-1000, 1000) * 10**9 - 3)
        await slow.connect(timeout=10)
        await fast.connect()
        ids = {slow.id, fast.id}
        # Both synced, and each with several samples beyond the minimum (the connect burst).
        await host.state(
            lambda s: sum(1 for p in s["players"] if p["id"] in ids and p["synced"]) == 2,
            timeout=10,
        )
        await slow.wait_until(lambda n: n.syncs_answered >= 8, timeout=10)
        # A node at an event is connected for a while before the host arms: let the filter see
        # a few periodic syncs too (this is the benchmark's pacing, not synchronisation).
        await asyncio.sleep(warmup_s)
        cells = [Cell(skew_ms, gap_ms) for gap_ms in gaps]
        number = 0
        # Gaps interleaved round by round, so that every gap meets estimates of the same age.
        for i in range(rounds * len(gaps)):
            cell = cells[i % len(gaps)]
            round_ = await host.arm(number)
            number = round_["number"]
            await asyncio.gather(slow.wait_armed(number), fast.wait_armed(number))
            first, second = (slow, fast) if (i // len(gaps)) % 2 == 0 else (fast, slow)
            gap = round(cell.gap_ms * MS)
            start = max(round_["release_ns"], time.monotonic_ns()) + 20 * MS
            await asyncio.gather(
                first.press_at(start, f"r{number}-a"),
                second.press_at(start + gap, f"r{number}-b"),
            )
            state = await host.state(
                lambda s, n=number: (
                    s["round"]["number"] == n
                    and s["round"]["state"] == "decided"
                    and len(s["round"]["results"]) == 2
                )
            )
            score(cell, state["round"], first.id, second.id, gap)
        state = await asyncio.to_thread(hub.snapshot)
        for player in state["players"]:
            node = {slow.id: slow, fast.id: fast}.get(player["id"])
            if node is not None and player["synced"]:
                CLOCKS.append(
                    (
                        skew_ms,
                        "slow" if node is slow else "fast",
                        (player["offset_ns"] - node.offset_ns) / MS,
                        player["uncertainty_ns"] / MS,
                        player["bound_ns"] / MS,
                        player["rtt_ns"] / MS,
                    )
                )
        await slow.close()
        await fast.close()
    return cells


CLOCKS: list[tuple[float, str, float, float, float, float]] = []


def score(cell: Cell, round_: dict[str, Any], first: str, second: str, gap_ns: int) -> None:
    by_player = {r["player"]: r for r in round_["results"]}
    a, b = by_player[first], by_player[second]
    cell.hub_right += round_["results"][0]["player"] == first
    cell.arrival_right += a["arrival_ns"] < b["arrival_ns"]
    cell.ties += "tie" in a["flags"]
    cell.late += "late" in a["flags"] or "late" in b["flags"]
    cell.clamped += "clamped" in a["flags"] or "clamped" in b["flags"]
    cell.hub_errors.append(abs((b["at_ns"] - a["at_ns"]) - gap_ns) / MS)
    cell.arrival_errors.append(abs((b["arrival_ns"] - a["arrival_ns"]) - gap_ns) / MS)
    cell.waits.append((round_["adjudication_wait_ns"] or 0) / MS)


def table(cells: list[Cell]) -> str:
    head = (
        "| skew ms | gap ms | rounds | hub right | ties | late | clamped "
        "| hub gap err p50 / p99 ms | arrival right | arrival gap err p50 / p99 ms "
        "| wait p50 / max ms |"
    )
    lines = [head, "|" + "---|" * 11]
    for c in cells:
        lines.append(
            f"| {c.skew_ms:g} | {c.gap_ms:g} | {c.rounds} | {100 * c.hub_right / c.rounds:.0f}% "
            f"| {c.ties} | {c.late} | {c.clamped} "
            f"| {percentile(c.hub_errors, 0.5):.3f} / {percentile(c.hub_errors, 0.99):.3f} "
            f"| {100 * c.arrival_right / c.rounds:.0f}% "
            f"| {percentile(c.arrival_errors, 0.5):.3f} / {percentile(c.arrival_errors, 0.99):.3f} "
            f"| {statistics.median(c.waits):.2f} / {max(c.waits):.2f} |"
        )
    return "\n".join(lines)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


# --- jitter profiles: does the hub stay right, honest about ties, and calibrated? ---


@dataclass(frozen=True)
class Profile:
    """The far node's link: each direction through the delay proxy (the near node is direct)."""

    name: str
    up: Link
    down: Link
    mean_jitter_ms: float  # what the target is stated for: under 5 ms


def each_way(name: str, link: Link, mean_jitter_ms: float) -> Profile:
    return Profile(name, link, link, mean_jitter_ms)


def exponential(mean_ms: float) -> Profile:
    """5 ms each way plus exponential jitter (Wi-Fi-like) of this mean, each way."""
    link = Link(0.005, exponential_s=mean_ms / 1000)
    return each_way(f"5 ms + exponential jitter, mean {mean_ms:g} ms, each way", link, mean_ms)


SPIKE = Link(0.005, exponential_s=0.001, spike_s=0.080, spike_every_s=10.0, spike_for_s=1.0)
PROFILES = {
    "loopback": each_way("loopback (both direct)", Link(), 0.0),
    "exp2": each_way(
        "5 ms + exponential, mean 2 ms, each way", Link(0.005, exponential_s=0.002), 2
    ),
    "exp5": each_way(
        "5 ms + exponential, mean 5 ms, each way", Link(0.005, exponential_s=0.005), 5
    ),
    "exp10": each_way(
        "5 ms + exponential, mean 10 ms, each way", Link(0.005, exponential_s=0.01), 10
    ),
    "asym": Profile(
        "asymmetric: 5 ms + exponential 20 ms up, 5 ms + exponential 2 ms down",
        Link(0.005, exponential_s=0.020),
        Link(0.005, exponential_s=0.002),
        11.0,
    ),
    "spike": each_way("5 ms + exponential 1 ms, +80 ms for 1 s in every 10 s, each way", SPIKE, 1),
}


@dataclass
class Tally:
    """One profile on one hub: rounds by gap, and every press's error against its claim."""

    profile: str
    hub: str
    rounds: dict[float, list[tuple[bool, bool, bool, bool, bool]]] = field(default_factory=dict)
    # Per press: far node?, |hub instant - true instant|, the stated uncertainty, clamped?, and
    # how long after the true instant it reached the hub (ms).
    presses: list[tuple[bool, float, float, bool, float]] = field(default_factory=list)
    waits_ms: list[float] = field(default_factory=list)
    gap_errors_ms: list[float] = field(default_factory=list)
    late: int = 0

    def calibration(self, clamped: bool | None = None) -> tuple[float, float, float]:
        """(share of errors within the stated uncertainty, stated p50, error p99), over every
        press, or over the clamped or unclamped ones only."""
        rows = [p for p in self.presses if clamped is None or p[3] is clamped]
        if not rows:
            return float("nan"), float("nan"), float("nan")
        covered = sum(error <= stated for _, error, stated, _, _ in rows) / len(rows)
        return (
            covered,
            percentile([r[2] for r in rows], 0.5),
            percentile([r[1] for r in rows], 0.99),
        )

    def clamped(self, far: bool) -> int:
        return sum(1 for p in self.presses if p[0] is far and p[3])

    def delay_p99(self, far: bool) -> float:
        return percentile([p[4] for p in self.presses if p[0] is far], 0.99)

    def add(
        self, gap_ms: float, far_first: bool, right: bool, tie: bool, flags: tuple[bool, bool]
    ) -> None:
        """``right``: the true first ranked first; ``flags``: whether either press says tie,
        and whether either says anything a host would look at (tie, late or clamped)."""
        self.rounds.setdefault(gap_ms, []).append((far_first, right, tie, *flags))

    def share(self, at_least_ms: float, below_ms: float = 1e9) -> tuple[int, int, int, int, int]:
        """(rounds, right, ties, wrong with no tie flag, wrong with no flag at all) over gaps in
        [at_least, below)."""
        rows = [r for gap, rs in self.rounds.items() if at_least_ms <= gap < below_ms for r in rs]
        right = sum(r[1] for r in rows)
        ties = sum(r[2] for r in rows)
        untied = sum(1 for r in rows if not r[1] and not r[3])
        unflagged = sum(1 for r in rows if not r[1] and not r[4])
        return len(rows), right, ties, untied, unflagged

    def split(self, below_ms: float) -> tuple[str, str]:
        """Near ties: the share ranked right when the far node was first, and when the near was."""
        rows = [r for gap, rs in self.rounds.items() if gap < below_ms for r in rs]
        out = []
        for far in (True, False):
            mine = [r for r in rows if r[0] is far]
            out.append(f"{100 * sum(r[1] for r in mine) / len(mine):.0f}%" if mine else "-")
        return out[0], out[1]


async def run_profile(
    hubs: dict[str, Hub],
    hosts: dict[str, Host],
    profile_key: str,
    gaps: list[float],
    rounds: int,
    rng: random.Random,
    warmup_s: float,
) -> list[Tally]:
    """The profile on every hub at once, rounds interleaved hub by hub and gap by gap, so that
    each hub meets the same machine load and the same age of clock estimates."""
    profile = PROFILES[profile_key]
    proxies: dict[str, ProcessDelayProxy] = {}
    pairs: dict[str, tuple[SimNode, SimNode]] = {}
    try:
        for name, hub in hubs.items():
            url = hub.url
            if profile_key != "loopback":
                proxies[name] = ProcessDelayProxy(hub.port, up=profile.up, down=profile.down)
                url = proxies[name].start().url
            offset = rng.randrange(-1000, 1000) * 10**9
            far = SimNode(url, f"far-{profile_key}", offset_ns=offset + 7)
            near = SimNode(hub.url, f"near-{profile_key}", offset_ns=-offset - 3)
            await far.connect(timeout=10)
            await near.connect()
            pairs[name] = (far, near)
        await asyncio.sleep(warmup_s)  # nodes at an event are connected a while before a round
        tallies = {name: Tally(profile_key, name) for name in hubs}
        numbers = dict.fromkeys(hubs, 0)
        for i in range(rounds * len(gaps)):
            gap_ms = gaps[i % len(gaps)]
            far_first = (i // len(gaps)) % 2 == 0
            for name in hubs:
                far, near = pairs[name]
                numbers[name] = await play_round(
                    hosts[name], far, near, far_first, gap_ms, numbers[name], tallies[name]
                )
        return list(tallies.values())
    finally:
        for far, near in pairs.values():
            await far.close()
            await near.close()
        for proxy in proxies.values():
            proxy.stop()


async def play_round(
    host: Host,
    far: SimNode,
    near: SimNode,
    far_first: bool,
    gap_ms: float,
    number: int,
    tally: Tally,
) -> int:
    round_ = await host.arm(number)
    number = round_["number"]
    await asyncio.gather(far.wait_armed(number), near.wait_armed(number))
    first, second = (far, near) if far_first else (near, far)
    gap = round(gap_ms * MS)
    start = max(round_["release_ns"], time.monotonic_ns()) + 20 * MS
    truth = {first.id: start, second.id: start + gap}
    await asyncio.gather(
        first.press_at(start, f"r{number}-a"), second.press_at(start + gap, f"r{number}-b")
    )
    state = await host.state(
        lambda s, n=number: (
            s["round"]["number"] == n
            and s["round"]["state"] == "decided"
            and len(s["round"]["results"]) == 2
        ),
        timeout=10,
    )
    results = state["round"]["results"]
    flags = {r["player"]: r["flags"] for r in results}
    tie = "tie" in results[0]["flags"]
    tied = any("tie" in f for f in flags.values())
    flagged = any({"tie", "late", "clamped"} & set(f) for f in flags.values())
    tally.add(gap_ms, far_first, results[0]["player"] == first.id, tie, (tied, flagged))
    for row in results:
        made = truth[row["player"]]
        tally.presses.append(
            (
                row["player"] == far.id,
                abs(row["at_ns"] - made) / MS,
                row["uncertainty_ns"] / MS,
                "clamped" in row["flags"],
                (row["arrival_ns"] - made) / MS,
            )
        )
        tally.late += "late" in row["flags"]
    at = {r["player"]: r["at_ns"] for r in results}
    tally.gap_errors_ms.append(abs((at[second.id] - at[first.id]) - gap) / MS)
    tally.waits_ms.append((state["round"]["adjudication_wait_ns"] or 0) / MS)
    return int(number)


def profile_table(tallies: list[Tally], near_below_ms: float = 5.0) -> str:
    """Ranking, and calibration: the presses' errors against what the hub stated, for every
    press and for those the hub did not have to clamp (clamped ones have their uncertainty
    widened to reach their claim, so they are covered by construction)."""
    head = (
        "| profile | hub | rounds, gap >= 5 ms | right | ties | wrong: no tie flag / no flag "
        "| near ties (< 5 ms) right: far first / near first "
        "| covered: all / unclamped | unclamped: stated p50 / error p99 ms | ratio "
        "| gap err p50 / p99 ms | clamped: far / near | made to arrival p99: far / near ms "
        "| late | wait p50 / max ms |"
    )
    lines = [head, "|" + "---|" * 15]
    for t in tallies:
        n, right, ties, untied, silent = t.share(near_below_ms)
        covered, _, _ = t.calibration()
        honest, stated, error = t.calibration(clamped=False)
        far, near = t.split(near_below_ms)
        lines.append(
            f"| {t.profile} | {t.hub} | {n} | {100 * right / n:.0f}% | {100 * ties / n:.0f}% "
            f"| {untied} / {silent} | {far} / {near} | {100 * covered:.1f}% / {100 * honest:.1f}% "
            f"| {stated:.3f} / {error:.3f} | {stated / error if error else float('inf'):.1f} "
            f"| {percentile(t.gap_errors_ms, 0.5):.3f} / {percentile(t.gap_errors_ms, 0.99):.3f} "
            f"| {t.clamped(True)} / {t.clamped(False)} "
            f"| {t.delay_p99(True):.1f} / {t.delay_p99(False):.1f} | {t.late} "
            f"| {statistics.median(t.waits_ms):.2f} / {max(t.waits_ms):.2f} |"
        )
    return "\n".join(lines)


async def main_profiles(args: argparse.Namespace) -> None:
    """Each profile against a hub with a fixed 2 s sync interval (as before adaptive syncing)
    and one as shipped, side by side."""
    rng = random.Random(args.seed)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        hubs = {
            "fixed 2 s sync": Hub(Path(workdir) / "fixed", args.margin_ms, longest=2.0),
            "adaptive sync": Hub(Path(workdir) / "adaptive", args.margin_ms),
        }
        hosts: dict[str, Host] = {}
        try:
            for name, hub in hubs.items():
                hosts[name] = await Host.open(hub.url)
                await hosts[name].state(lambda s: True)
            tallies: list[Tally] = []
            for key in args.profiles.split(","):
                tallies += await run_profile(
                    hubs, hosts, key, floats(args.gaps), args.rounds, rng, args.warmup_s
                )
                print(f"profile {key} done", file=sys.stderr, flush=True)
        except BaseException:
            for hub in hubs.values():
                print("\n".join(hub.log[-20:]), file=sys.stderr)
            raise
        finally:
            for host in hosts.values():
                await host.ws.close()
            for hub in hubs.values():
                await asyncio.to_thread(hub.stop)
    print(header())
    print(f"# load average (1, 5, 15 min): before {load_text(load)}, ", end="")
    print(f"after {load_text(os.getloadavg())}")
    for key in args.profiles.split(","):
        print(f"# {key}: {PROFILES[key].name}")
    print(profile_table(tallies))


def header() -> str:
    return (
        f"# {time.strftime('%Y-%m-%d')}, {platform.node()}: {platform.processor() or '?'}, "
        f"Python {platform.python_version()}, websockets {websockets.__version__}, "
        f"{platform.system()} {platform.release()}\n"
        f"# command: {' '.join(['python', '-m', 'bench.fairness', *sys.argv[1:]])}"
    )


def load_text(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.1f}" for x in load)


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        hub = Hub(Path(workdir), args.margin_ms)
        try:
            host = await Host.open(hub.url)
            await host.state(lambda s: True)  # the picture every new host gets
            cells: list[Cell] = []
            for skew in floats(args.skews):
                cells += await run_skew(
                    hub, host, skew, floats(args.gaps), args.rounds, rng, args.warmup_s
                )
                print(f"skew {skew:g} ms done", file=sys.stderr, flush=True)
            await host.ws.close()
        except BaseException:
            print("\n".join(hub.log[-40:]), file=sys.stderr)
            raise
        finally:
            await asyncio.to_thread(hub.stop)  # keep this loop free to answer the close frames
    print(header())
    print(table(cells))
    print("\n| skew ms | node | offset error ms | uncertainty ms | bound ms | min rtt ms |")
    print("|---|---|---|---|---|---|")
    for skew, which, error, uncertainty, bound, rtt in CLOCKS:
        row = f"| {skew:g} | {which} | {error:+.3f} | {uncertainty:.3f} | {bound:.3f} "
        print(row + f"| {rtt:.3f} |")
    hub_2ms = [c for c in cells if c.gap_ms >= 2]
    if hub_2ms:
        right = sum(c.hub_right for c in hub_2ms)
        total = sum(c.rounds for c in hub_2ms)
        worst = max(percentile(c.hub_errors, 1.0) for c in hub_2ms)
        arrival = sum(c.arrival_right for c in hub_2ms)
        clamped = sum(c.clamped for c in hub_2ms)
        print(
            f"\ngaps >= 2 ms: hub ranked {right}/{total} right ({clamped} rounds with a clamped "
            f"press), worst gap error {worst:.3f} ms; arrival order ranked {arrival}/{total} right"
        )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per cell (default 10)")
    parser.add_argument("--skews", default="0,10,50,100,150,200", help="one-way delays, ms")
    parser.add_argument("--gaps", default="0.5,1,2,5,10,50", help="press gaps, ms")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warmup-s", type=float, default=10.0, help="syncing before the first round (default 10)"
    )
    parser.add_argument(
        "--margin-ms", type=float, default=2.0, help="adjudication margin (default 2, as shipped)"
    )
    parser.add_argument(
        "--profiles",
        help=f"jitter profiles instead of the skew sweep, e.g. {','.join(PROFILES)}: each on a "
        "hub with a fixed 2 s sync interval and on one as shipped",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    asyncio.run(main_profiles(arguments) if arguments.profiles else main(arguments))
