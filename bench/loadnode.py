"""A simulated player node for benchmarks: speaks protocol v1 like the firmware, presses on cue.

It answers the hub's clock sync from its own clock (the machine's monotonic clock plus an offset
of the caller's choosing, as a separate board would have) and presses at instants the benchmark
chooses. Because the benchmark picks the instant, it knows the true press time exactly and can
score the hub against it. A benchmark needs many of these in one process, which the firmware (GPIO
and LEDs, one node per process) is not built for. Its link is the firmware's: the kernel watches
it and the WebSocket ping is as rare (:mod:`firmware.keepalive`), so an idle room costs the hub
here what a room of stations does.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from firmware.keepalive import WATCHED

PROTOCOL = 1


class SimNode:
    """One node connection. ``offset_ns``: how far this node's clock reads ahead of the hub's."""

    def __init__(self, url: str, node_id: str, offset_ns: int = 0, name: str | None = None):
        self.url = url
        self.id = node_id
        self.name = name or node_id
        self.offset_ns = offset_ns
        self.round: dict[str, Any] = {}
        self.syncs_answered = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        #: When each result frame arrived (the machine's monotonic clock, no offset): a load
        #: benchmark needs the instant it was received, not when a waiting task got round to it.
        self.received_ns: dict[str, int] = {}

    def clock(self) -> int:
        """This node's monotonic clock."""
        return time.monotonic_ns() + self.offset_ns

    async def connect(self, timeout: float = 5.0) -> SimNode:
        self._ws = await connect(
            self.url,
            compression=None,
            open_timeout=timeout,
            **WATCHED,
        )
        hello = {"type": "hello", "protocol": PROTOCOL, "role": "node", "id": self.id}
        await self._ws.send(json.dumps({**hello, "name": self.name, "input": "gpio"}))
        async with asyncio.timeout(timeout):
            welcome = json.loads(await self._ws.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"{self.id}: the hub answered hello with {welcome}")
        self.round = welcome.get("round") or {}
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            t1 = self.clock()  # stamped first: the sync reply's receive time
            message = json.loads(frame)
            kind = message.get("type")
            if kind == "sync":
                reply = {"type": "sync_reply", "seq": message["seq"], "t0_ns": message["t0_ns"]}
                await self._ws.send(json.dumps({**reply, "t1_ns": t1, "t2_ns": self.clock()}))
                self.syncs_answered += 1
            elif kind == "round":
                self.round = message
            elif kind == "result":
                self.received_ns.setdefault(message["press_id"], t1 - self.offset_ns)
                future = self._results.setdefault(
                    message["press_id"], asyncio.get_running_loop().create_future()
                )
                if not future.done():
                    future.set_result(message)
            else:
                continue
            async with self._changed:
                self._changed.notify_all()

    async def wait_until(self, predicate: Any, timeout: float) -> None:
        """Wait (on received frames, with a timeout) until ``predicate(self)`` holds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def wait_armed(self, number: int, timeout: float = 5.0) -> dict[str, Any]:
        """The round update for round ``number`` with a release instant this node can act on."""
        await self.wait_until(
            lambda n: (
                n.round.get("number") == number
                and n.round.get("state") == "armed"
                and n.round.get("release_ns") is not None
            ),
            timeout,
        )
        return self.round

    async def press_at(self, hub_instant_ns: int, press_id: str) -> int:
        """Press at a hub-clock instant: stamped with this node's clock for exactly that instant.

        The press leaves when the instant has come (as from a real button) and its timestamp is
        the true press time in this node's clock. Returns the timestamp sent.
        """
        assert self._ws is not None
        wait = (hub_instant_ns - time.monotonic_ns()) / 1e9
        if wait > 0:
            await asyncio.sleep(wait)  # the moment the player presses: scheduled, not a wait
        at = hub_instant_ns + self.offset_ns
        await self._ws.send(json.dumps({"type": "press", "press_id": press_id, "at_ns": at}))
        return at

    async def result(self, press_id: str, timeout: float = 5.0) -> dict[str, Any]:
        future = self._results.setdefault(press_id, asyncio.get_running_loop().create_future())
        async with asyncio.timeout(timeout):
            return await future
