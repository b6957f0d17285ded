"""The delay proxy the fairness tests rely on: it must delay each direction and never reorder.

Timing assertions here are lower bounds only (a chunk is never early), which hold on any machine;
a loaded machine may always be late, so nothing here bounds how late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.delay_proxy import (
    LOOPBACK,
    DelayProxy,
    Link,
    ProcessDelayProxy,
    ThreadedDelayProxy,
)


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[tuple[float, bytes]]]]:
    """A TCP echo server; also records when (monotonic seconds) each chunk reached it."""
    seen: list[tuple[float, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            seen.append((time.monotonic(), data))
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    yield server.sockets[0].getsockname()[1], seen
    server.close()


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(10):
        return await reader.readexactly(n)


async def test_each_direction_gets_its_own_latency(echo) -> None:
    port, seen = echo
    async with DelayProxy(port, up=Link(0.120), down=Link(0.040)) as proxy:
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
        sent = time.monotonic()
        writer.write(b"ping")
        assert await read_exactly(reader, 4) == b"ping"
        back = time.monotonic()
        writer.close()
    assert seen[0][0] - sent >= 0.120  # the uplink held it at least 120 ms
    assert back - seen[0][0] >= 0.040  # the downlink at least 40 ms
    assert proxy.stats["up"].chunks == 1
    assert proxy.stats["down"].bytes == 4


async def test_jitter_never_reorders(echo) -> None:
    """Chunks 1 ms apart with up to 30 ms of jitter each: later ones wait for earlier ones."""
    port, _ = echo
    async with DelayProxy(port, up=Link(0.005, jitter_s=0.030), seed=3) as proxy:
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
        payload = b"".join(f"<{i:04d}>".encode() for i in range(60))
        for i in range(60):
            writer.write(payload[i * 6 : i * 6 + 6])
            await writer.drain()
            await asyncio.sleep(0.001)  # pacing the sender, so that chunks stay separate
        assert await read_exactly(reader, len(payload)) == payload
        writer.close()
    delays = proxy.stats["up"].delays_s
    assert len(delays) > 5  # several chunks really were delayed separately
    assert min(delays) >= 0.005
    assert max(delays) - min(delays) > 0.005  # and the jitter was real


async def test_stop_cuts_open_connections(echo) -> None:
    port, _ = echo
    proxy = await DelayProxy(port).start()
    reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
    writer.write(b"x")
    assert await read_exactly(reader, 1) == b"x"
    await proxy.stop()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()


async def test_threaded_proxy_forwards_and_can_change_latency(echo) -> None:
    port, _ = echo
    with ThreadedDelayProxy(port) as proxy:
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
        writer.write(b"a")
        assert await read_exactly(reader, 1) == b"a"
        proxy.set_links(up=Link(0.080))
        sent = time.monotonic()
        writer.write(b"b")
        assert await read_exactly(reader, 1) == b"b"
        assert time.monotonic() - sent >= 0.080
        writer.close()


async def test_proxy_in_its_own_process_delays_both_directions(echo) -> None:
    port, seen = echo
    with ProcessDelayProxy(port, up=Link(0.060), down=Link(0.030)) as proxy:
        reader, writer = await asyncio.open_connection(LOOPBACK, proxy.port)
        sent = time.monotonic()
        writer.write(b"hello")
        assert await read_exactly(reader, 5) == b"hello"
        back = time.monotonic()
        writer.close()
    assert seen[0][0] - sent >= 0.060
    assert back - seen[0][0] >= 0.030
