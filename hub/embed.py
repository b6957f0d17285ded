"""Run a hub inside another program: start it, hear what happens in it, act as its host.

This is how the command line runs a hub, and how tests and tools do::

    async with running_hub(config, host_token="secret", data_dir=tmp) as hub:
        mark = hub.events.mark()
        node = await connect(hub.url)                   # real clients, real sockets
        ...
        hub.command(messages.Arm())                     # what the host console sends
        decided = await hub.events.wait_for(Decided, after=mark)

Every event the hub logs is a value of :data:`hub.core.events.HubEvent` (a node joined or synced,
a round armed or decided, a ruling, storage stopped saving, ...). Waiting for one waits for
exactly what the log line says, with a timeout, instead of parsing log text or sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from hub.central import CentralLink, offline
from hub.config import HubConfig
from hub.core.events import HubEvent, PressTaken
from hub.core.machine import HubCore
from hub.recorder import Recorder
from hub.server import Server
from wire import messages as msg

log = logging.getLogger("hub")

E = TypeVar("E")
EVENTS_KEPT = 10_000


class EventLog:
    """The hub's recent events, numbered, with a way to wait for the next that matches."""

    def __init__(self, size: int = EVENTS_KEPT) -> None:
        self._log: deque[tuple[int, HubEvent]] = deque(maxlen=size)
        self._next = 0
        self._changed = asyncio.Event()

    def append(self, event: HubEvent) -> None:
        if isinstance(event, PressTaken):  # one per press: heard by listeners, not kept
            return
        self._log.append((self._next, event))
        self._next += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def mark(self) -> int:
        """A position in the log: pass it as ``after`` to see only later events."""
        return self._next

    def events(self, after: int = 0) -> list[HubEvent]:
        return [event for seq, event in self._log if seq >= after]

    async def wait_for(
        self,
        kind: type[E],
        match: Callable[[E], bool] | None = None,
        *,
        timeout: float = 10.0,
        after: int = 0,
    ) -> E:
        """The first event of ``kind`` (for which ``match`` holds) logged at or after ``after``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    for seq, event in list(self._log):
                        wanted = seq >= after and isinstance(event, kind)
                        if wanted and (match is None or match(event)):  # type: ignore[arg-type]
                            return event  # type: ignore[return-value]
                    await changed.wait()
        except TimeoutError:
            recent = "; ".join(e.describe() for e in self.events(after)[-8:])
            raise TimeoutError(
                f"no {kind.__name__} event within {timeout} s; recent: {recent or 'none'}"
            ) from None


class RunningHub:
    """A hub serving in this process's event loop."""

    def __init__(
        self,
        config: HubConfig,
        host_token: str,
        recorder: Recorder,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.host_token = host_token
        self.recorder = recorder
        self.events = EventLog()
        self._listeners: list[Callable[[HubEvent], None]] = []
        restored = recorder.restore(config, time.monotonic_ns(), time.time_ns())
        self.core = HubCore(config, host_token, restored, rng)
        self.server = Server(config, self.core, recorder, self._event)
        self.central: CentralLink | None = None
        tournament = config.tournament
        if tournament.enabled and tournament.room:
            self.central = recorder.central_link(tournament, self._central_status)
            if self.central is None:
                self.core.central = offline(
                    tournament, "this room saves no results, so none can be sent: see the storage"
                )

    async def start(self) -> None:
        await self.server.start()
        if self.central is not None:
            self.central.start()

    async def stop(self) -> None:
        if self.central is not None:
            await self.central.stop()
        await self.server.stop()

    async def saved(self) -> None:
        """Return once every step the hub has taken so far is on disk: its file, read now,
        holds them (a writer thread saves them behind the loop, which goes on meanwhile)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def committed() -> None:
            if not done.done():  # the waiter may have given up
                done.set_result(None)

        self.recorder.after_queued(committed)
        await done

    def _central_status(self, status: msg.CentralView, delivered: int) -> None:
        self.server.carry(self.core.central_changed(status, delivered, time.monotonic_ns()))

    def listen(self, listener: Callable[[HubEvent], None]) -> None:
        """Call ``listener`` with every event from now on (on the loop, as it happens)."""
        self._listeners.append(listener)

    def _event(self, event: HubEvent) -> None:
        if log.isEnabledFor(event.level):  # a press's debug line is not even worded otherwise
            log.log(event.level, "%s", event.describe())
        self.events.append(event)
        for listener in self._listeners:
            listener(event)

    # --- where it is ---

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def addresses(self) -> list[str]:
        return self.server.addresses

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.security.tls else "ws"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def http(self) -> str:
        scheme = "https" if self.config.security.tls else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def _host(self) -> str:
        host = self.config.server.host or "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    # --- acting as its host ---

    def command(self, message: msg.HostCommand) -> None:
        """Apply a host command, as the console sends it (arm, reset, right, score, ...). A
        ruling on a decision that waits for the disk is applied once that is told, usually
        milliseconds later (docs/protocol.md, section 14): wait for its event before
        :meth:`saved`, which covers only the steps taken so far."""
        now = time.monotonic_ns()
        self.server.carry(self.core.command(message, now))

    def state(self) -> msg.State:
        """The whole picture, as hosts and viewers see it."""
        return self.core.state(time.monotonic_ns())


@asynccontextmanager
async def running_hub(
    config: HubConfig,
    *,
    host_token: str,
    data_dir: Path | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[RunningHub]:
    """A hub serving for the duration of the block; ``data_dir`` None keeps nothing on disk."""
    recorder = Recorder.open(data_dir)
    try:
        hub = RunningHub(config, host_token, recorder, rng)
        await hub.start()
        try:
            yield hub
        finally:
            await hub.stop()
    finally:
        recorder.close()
