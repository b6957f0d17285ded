"""Load generator: many simulated nodes in worker processes, pressing at instants chosen here.

The nodes must not share the hub's event loop (nor one loop among all of them): a thousand
connections answering clock sync and pressing within 10 ms would then measure the generator, not
the hub. So a :class:`Fleet` starts a few worker processes; each runs an asyncio loop with many
connections, and the parent hands out work over a pipe:

- ``node`` connections are :class:`bench.loadnode.SimNode` (the fairness benchmark's simulated
  node: protocol v1, sync answered from its own clock, which here runs a random offset of up to
  1000 s away from the hub's);
- ``plain`` connections speak the classic tutorial's text protocol (``buzz``), for the baseline;
- one ``firmware`` node is the real :class:`firmware.node.Node` with gpiozero mock pins, pressed by
  driving its button pin, so the time to the winner's own feedback pattern is the firmware's.

Press instants are in the machine's monotonic clock, which on one machine is also the hub's: the
generator knows the true press time of every press, and result times are stamped when the frame
is read, in the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection

from bench.harness import direct
from bench.loadnode import SimNode

#: Connections each worker opens at once: enough to fill the hub's listen backlog quickly, few
#: enough that SYNs are not dropped (a dropped SYN costs a one-second retransmission).
CONNECT_AT_ONCE = 16
RESULT_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One press as the generator saw it. Times in the machine's monotonic clock, ns."""

    node: str
    press_id: str
    pressed_ns: int  # the true press instant
    result_ns: int | None  # the result frame arrived (None: none within the timeout)
    rank: int | None
    feedback_ns: int | None = None  # firmware node only: its winner's pattern started
    counted_ns: int | None = None  # firmware node only: it counted the press (confirmed, sent)


def raise_open_files_limit() -> None:
    """One socket per simulated node: lift the soft limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class PlainClient:
    """A tutorial client: sends ``buzz``, reads one line of text back."""

    def __init__(self, url: str, node_id: str) -> None:
        self.url = url
        self.id = node_id
        self._ws: ClientConnection | None = None

    async def connect(self) -> PlainClient:
        self._ws = await direct(self.url, open_timeout=30)
        return self

    async def press(self, instant_ns: int, press_id: str) -> Outcome:
        assert self._ws is not None
        await _sleep_until(instant_ns)
        await self._ws.send("buzz")
        async with asyncio.timeout(RESULT_TIMEOUT_S):
            answer = await self._ws.recv()
        received = time.monotonic_ns()
        rank = 1 if answer == "First place!" else None
        return Outcome(self.id, press_id, instant_ns, received, rank)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


async def _sleep_until(instant_ns: int) -> None:
    wait = (instant_ns - time.monotonic_ns()) / 1e9
    if wait > 0:
        await asyncio.sleep(wait)  # the player's moment, chosen by the benchmark


async def _sim_press(node: SimNode, instant_ns: int, press_id: str) -> Outcome:
    await node.press_at(instant_ns, press_id)
    try:
        result = await node.result(press_id, timeout=RESULT_TIMEOUT_S)
    except TimeoutError:
        return Outcome(node.id, press_id, instant_ns, None, None)
    return Outcome(node.id, press_id, instant_ns, node.received_ns[press_id], result.get("rank"))


class FirmwareProbe:
    """The real node firmware with mock pins, its event log stamped as events happen.

    The LED is lit from the release until the verdict and stays lit for first place, so the
    winner's first distinct feedback is the buzzer's winner pattern (three beeps), started from
    the same result handler that sets the LED: that start is what ``feedback_ns`` records.
    """

    BUTTON, LED, BUZZER = "GPIO17", "GPIO27", "GPIO22"

    def __init__(self, url: str, node_id: str) -> None:
        from gpiozero import Device
        from gpiozero.pins.mock import MockFactory

        from firmware.config import ConnectionSection, GpioSection, NodeConfig, NodeSection
        from firmware.node import Node

        Device.pin_factory = MockFactory()
        self.pins = Device.pin_factory
        config = NodeConfig(
            node=NodeSection(hub=url, id=node_id, name=node_id, inputs=["gpio"]),
            gpio=GpioSection(button_pin=self.BUTTON, led_pin=self.LED, buzzer_pin=self.BUZZER),
            connection=ConnectionSection(),
        )
        stamps: list[tuple[int, Any]] = []

        class StampedNode(Node):
            def _emit(self, event: Any) -> None:
                stamps.append((time.monotonic_ns(), event))
                super()._emit(event)

        self.id = node_id
        self.stamps = stamps
        self.node = StampedNode(config, console=lambda line: None)
        self.task: asyncio.Task[None] | None = None
        self.beeping_since: int | None = None  # event log mark before the latest beeps

    async def start(self) -> None:
        from firmware.node import Connected

        self.task = asyncio.create_task(self.node.run())
        await self.node.wait_for(Connected, timeout=30)

    async def press(self, instant_ns: int) -> Outcome:
        from firmware.node import LedPattern, Pressed, Resulted

        mark = self.node.mark()
        start = len(self.stamps)
        await _sleep_until(instant_ns)
        pin = self.pins.pin(self.BUTTON)
        pin.drive_low()  # the button goes down: the firmware stamps this edge
        try:  # and stays down until the firmware has confirmed the press (a blip is a glitch)
            pressed = await self.node.wait_for(Pressed, after=mark, timeout=5)
        finally:
            pin.drive_high()
        try:
            await self.node.wait_for(
                Resulted, lambda e: e.result.press_id == pressed.press_id, after=mark, timeout=10
            )
            with contextlib.suppress(TimeoutError):
                await self.node.wait_for(
                    LedPattern, lambda e: e.name == "buzzer:beeps", after=mark, timeout=1
                )
        except TimeoutError:
            return Outcome(self.id, pressed.press_id, pressed.at_ns, None, None)
        result_ns = feedback_ns = counted_ns = None
        rank = None
        for at, event in self.stamps[start:]:
            if isinstance(event, Pressed) and event.press_id == pressed.press_id:
                counted_ns = at
            if isinstance(event, Resulted) and event.result.press_id == pressed.press_id:
                result_ns, rank = at, event.result.rank
            if isinstance(event, LedPattern) and event.name == "buzzer:beeps":
                feedback_ns = at
                self.beeping_since = mark
        return Outcome(
            self.id, pressed.press_id, pressed.at_ns, result_ns, rank, feedback_ns, counted_ns
        )

    async def close(self) -> None:
        from firmware.node import LedPattern

        # Let a winner's beeps finish first: stopping the node mid-pattern closes the buzzer pin
        # under the running pattern, which then fails to switch it off.
        if self.beeping_since is not None:
            with contextlib.suppress(TimeoutError):
                await self.node.wait_for(
                    LedPattern,
                    lambda e: e.name == "buzzer:beeps:done",
                    after=self.beeping_since,
                    timeout=3,
                )
        self.node.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


# --- the worker process ---


class Worker:
    """One process's connections, driven by commands from the parent."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sims: dict[str, SimNode] = {}
        self.plains: dict[str, PlainClient] = {}
        self.probe: FirmwareProbe | None = None

    async def connect(self, url: str, ids: Sequence[str], kind: str) -> int:
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)

        async def one(node_id: str) -> None:
            async with gate:
                if kind == "node":
                    offset = self.rng.randrange(-1000 * 10**9, 1000 * 10**9)
                    self.sims[node_id] = await SimNode(url, node_id, offset).connect(timeout=30)
                else:
                    self.plains[node_id] = await PlainClient(url, node_id).connect()

        await asyncio.gather(*(one(i) for i in ids))
        return len(ids)

    async def firmware(self, url: str, node_id: str) -> int:
        self.probe = FirmwareProbe(url, node_id)
        await self.probe.start()
        return 1

    async def press(self, schedule: Sequence[tuple[str, int, str]]) -> list[Outcome]:
        jobs = []
        for node_id, instant, press_id in schedule:
            if self.probe is not None and node_id == self.probe.id:
                jobs.append(self.probe.press(instant))
            elif node_id in self.sims:
                jobs.append(_sim_press(self.sims[node_id], instant, press_id))
            else:
                jobs.append(self.plains[node_id].press(instant, press_id))
        return list(await asyncio.gather(*jobs))

    async def close(self) -> int:
        closing = [n.close() for n in (*self.sims.values(), *self.plains.values())]
        if self.probe is not None:
            closing.append(self.probe.close())
        await asyncio.gather(*closing, return_exceptions=True)
        count = len(closing)
        self.sims.clear()
        self.plains.clear()
        self.probe = None
        return count


def _worker_main(pipe: Connection, seed: int) -> None:
    raise_open_files_limit()
    asyncio.run(_serve(pipe, seed))


async def _serve(pipe: Connection, seed: int) -> None:
    worker = Worker(seed)
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "exit":
            await worker.close()
            return
        try:
            reply: Any = await getattr(worker, command)(*args)
        except Exception as exc:  # reported to the parent, which raises it there
            reply = RuntimeError(f"worker {command}: {type(exc).__name__}: {exc}")
        pipe.send(reply)


# --- the parent's handle ---


class Fleet:
    """Worker processes and the connections they hold, addressed by node id.

    ``workers`` processes share the simulated and plain connections; one more holds the firmware
    node alone.
    """

    def __init__(self, workers: int, seed: int = 1) -> None:
        context = multiprocessing.get_context("spawn")  # a clean interpreter, no inherited loop
        self._pipes: list[Connection] = []
        self._procs = []
        # Process 0 holds only the firmware node: a station is a device of its own, and its
        # timing must not wait behind hundreds of simulated nodes sharing its loop.
        for index in range(workers + 1):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_worker_main, args=(theirs, seed * 1000 + index))
            proc.daemon = True
            proc.start()
            self._pipes.append(mine)
            self._procs.append(proc)
        self._where: dict[str, int] = {}

    async def _ask(self, orders: dict[int, tuple[Any, ...]]) -> list[Any]:
        for index, order in orders.items():
            self._pipes[index].send(order)
        replies = await asyncio.gather(
            *(asyncio.to_thread(self._pipes[index].recv) for index in orders)
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return list(replies)

    async def connect(self, url: str, ids: Sequence[str], kind: str) -> None:
        """Open ``kind`` ("node" or "plain") connections with these ids, spread over the workers."""
        shares: dict[int, list[str]] = {}
        for position, node_id in enumerate(ids):
            index = 1 + position % (len(self._pipes) - 1)
            shares.setdefault(index, []).append(node_id)
            self._where[node_id] = index
        await self._ask({i: ("connect", url, share, kind) for i, share in shares.items()})

    async def firmware(self, url: str, node_id: str) -> None:
        """Start the real firmware node, in the process kept for it."""
        self._where[node_id] = 0
        await self._ask({0: ("firmware", url, node_id)})

    async def press(self, schedule: Sequence[tuple[str, int, str]]) -> list[Outcome]:
        """Press ``(node id, instant ns, press id)``; returns when every result is in."""
        shares: dict[int, list[tuple[str, int, str]]] = {}
        for item in schedule:
            shares.setdefault(self._where[item[0]], []).append(item)
        replies = await self._ask({i: ("press", share) for i, share in shares.items()})
        return [outcome for reply in replies for outcome in reply]

    async def close_all(self) -> None:
        await self._ask({i: ("close",) for i in range(len(self._pipes))})
        self._where.clear()

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit",))
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
