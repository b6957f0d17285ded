"""A TCP proxy on 127.0.0.1 that delays each direction of a connection: a user-space netem.

Fairness is only visible when links differ, and the kernel's traffic shaping (``tc netem``) needs
privileges that test machines do not have. This proxy sits between one client and one server and
holds every chunk it reads for the direction's latency plus a random jitter before passing it on.
Each direction has its own :class:`Link`: a fixed latency, uniform jitter, exponential jitter
(Wi-Fi-like: mostly small, now and then long), and load spikes (every so often, for a while,
every chunk takes that much longer: a busy access point).

Order is preserved: a chunk is never delivered before one read earlier in the same direction
(TCP's own guarantee, which a real delayed link keeps too), so jitter stretches gaps but never
reorders. The delay is applied to chunks as ``read()`` returns them; WebSocket frames of a few
hundred bytes travel in one chunk each.

Timers on an asyncio loop fire up to about a millisecond late (epoll has millisecond resolution),
independently in each direction. :class:`ThreadedDelayProxy` runs the proxy on its own loop in its
own thread so that work on the test's loop does not add to that.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

LOOPBACK = "127.0.0.1"
CHUNK = 65536

#: A hub for tests with a node behind this proxy (150 ms each way): a release lead longer than
#: the one-way delay, so the slow node learns the release instant in time; an adjudication
#: margin a loaded test machine cannot exceed (the product default of 2 ms suits a LAN); and a
#: fast sync burst so the filter has a choice of good samples on the slow link.
SLOW_LINK_HUB_CONFIG = """
[round]
hostless = false
release_lead_ms = 400
adjudication_margin_ms = 100
adjudication_cap_ms = 1000
[clock]
burst = 16
burst_interval_ms = 10
sync_interval_s = 0.5
"""


@dataclass(frozen=True, slots=True)
class Link:
    """One direction of a path: a fixed latency, a uniformly random extra of up to ``jitter_s``,
    an exponentially distributed extra of mean ``exponential_s``, and, for ``spike_for_s`` of
    every ``spike_every_s`` (counted from the proxy's start), ``spike_s`` more."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    exponential_s: float = 0.0
    spike_s: float = 0.0
    spike_every_s: float = 0.0
    spike_for_s: float = 0.0

    def delay(self, rng: random.Random, elapsed_s: float = 0.0) -> float:
        """The delay for a chunk read ``elapsed_s`` after the proxy started."""
        delay = self.latency_s
        if self.jitter_s:
            delay += rng.uniform(0.0, self.jitter_s)
        if self.exponential_s:
            delay += rng.expovariate(1 / self.exponential_s)
        spiking = self.spike_every_s and elapsed_s % self.spike_every_s < self.spike_for_s
        if spiking:
            delay += self.spike_s
        return delay

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Link:
        return cls(**json.loads(text))


@dataclass
class DirectionStats:
    chunks: int = 0
    bytes: int = 0
    delays_s: list[float] = field(default_factory=list)  # read to write, as actually delivered


class DelayProxy:
    """Listens on 127.0.0.1 (an ephemeral port) and forwards each connection to ``target``.

    ``up`` delays what the client sends (node to hub); ``down`` what the server sends back.
    Both may be changed while running; a change applies to chunks read afterwards.
    """

    def __init__(
        self,
        target_port: int,
        up: Link | None = None,
        down: Link | None = None,
        *,
        target_host: str = LOOPBACK,
        seed: int | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.up = up or Link()
        self.down = down or Link()
        self.stats = {"up": DirectionStats(), "down": DirectionStats()}
        self._rng = random.Random(seed)
        self._started = 0.0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    async def start(self) -> Self:
        self._started = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every proxied connection (as a pulled cable would)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, server_w))
        pumps = [
            self._spawn(self._pump(client_r, server_w, lambda: self.up, self.stats["up"])),
            self._spawn(self._pump(server_r, client_w, lambda: self.down, self.stats["down"])),
        ]
        await asyncio.gather(*pumps, return_exceptions=True)
        for writer in (client_w, server_w):
            writer.close()
            self._writers.discard(writer)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: Callable[[], Link],
        stats: DirectionStats,
    ) -> None:
        """Read as fast as the sender sends; deliver each chunk when its delay is up, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, float, bytes]] = asyncio.Queue()
        deliver = self._spawn(self._deliver(queue, writer, stats))
        last_due = 0.0
        try:
            while data := await reader.read(CHUNK):
                now = loop.time()
                delay = link().delay(self._rng, now - self._started)
                due = max(now + delay, last_due)  # never overtake
                last_due = due
                queue.put_nowait((now, due, data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            queue.put_nowait((0.0, last_due, b""))  # end of stream, after everything before it
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await deliver

    async def _deliver(
        self,
        queue: asyncio.Queue[tuple[float, float, bytes]],
        writer: asyncio.StreamWriter,
        stats: DirectionStats,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            read_at, due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # this is the link's latency, not synchronisation
            if not data:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            writer.write(data)
            stats.chunks += 1
            stats.bytes += len(data)
            stats.delays_s.append(loop.time() - read_at)
            await writer.drain()


class ThreadedDelayProxy:
    """A :class:`DelayProxy` on its own event loop in a background thread.

    The proxy's timers then fire on time even while the test's own loop is busy (running nodes,
    a load generator). Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, target_port: int, up: Link | None = None, down: Link | None = None, **kw: Any
    ):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.proxy = DelayProxy(target_port, up, down, **kw)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def url(self) -> str:
        return self.proxy.url

    def _run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def start(self) -> Self:
        self._thread.start()
        self._run(self.proxy.start())
        return self

    def set_links(self, up: Link | None = None, down: Link | None = None) -> None:
        """Change the delays while running; on return they apply to every chunk read next."""

        async def apply() -> None:
            if up is not None:
                self.proxy.up = up
            if down is not None:
                self.proxy.down = down

        self._run(apply())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessDelayProxy:
    """A :class:`DelayProxy` in a process of its own.

    A thread shares the interpreter lock with the test's own loop, which can hold it for
    milliseconds at a time (the default switch interval is 5 ms): a link that should take 150 ms
    then takes 155 ms now and then, unevenly in the two directions. A process has no such
    coupling, so timing-sensitive tests and benchmarks use this one.
    """

    def __init__(self, target_port: int, up: Link | None = None, down: Link | None = None):
        self.target_port = target_port
        self.up, self.down = up or Link(), down or Link()
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        args = [str(self.target_port), self.up.to_json(), self.down.to_json()]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.delay_proxy", *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        stdout = self._proc.stdout
        assert stdout is not None
        ready = threading.Event()
        line: list[str] = []

        def read_port() -> None:
            line.append(stdout.readline())
            ready.set()

        threading.Thread(target=read_port, daemon=True).start()
        if not ready.wait(timeout) or not line[0].strip().isdigit():
            self.stop()
            raise RuntimeError(f"the delay proxy did not start: {line}")
        self.port = int(line[0])
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _serve(argv: list[str]) -> None:
    port, up, down = argv
    proxy = await DelayProxy(int(port), Link.from_json(up), Link.from_json(down)).start()
    print(proxy.port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()


if __name__ == "__main__":
    # python -m tests.support.delay_proxy TARGET_PORT UP_LINK_JSON DOWN_LINK_JSON
    asyncio.run(_serve(sys.argv[1:]))
