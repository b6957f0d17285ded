"""The hub's keepalive: a link gone quiet is pinged and, if no pong comes, closed; a link whose
own frames show it is there is not pinged at all."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from hub.core.events import Left
from hub.server import Server
from tests.conftest import InProcessHubs
from tests.integration.test_security import masked_text_frame, raw_websocket

KEEPALIVE = "[limits]\nkeepalive_s = 0.5\nhello_timeout_s = 60\n"


class PingCounting(ClientConnection):
    """A client connection that counts the pings it answers (the library answers them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinged = 0
        self.heard = asyncio.Event()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pinged += 1
            self.heard.set()
        super().process_event(event)


async def pings(ws: ClientConnection, at_least: int) -> None:
    """Wait until ``ws`` has been pinged ``at_least`` times."""
    assert isinstance(ws, PingCounting)
    while ws.pinged < at_least:
        ws.heard.clear()
        await ws.heard.wait()


async def test_a_node_that_stops_answering_is_closed_with_1011(run_hub: InProcessHubs) -> None:
    hub = await run_hub(KEEPALIVE)
    mark = hub.events.mark()
    mute = await asyncio.to_thread(raw_websocket, hub.port)  # never reads: never answers a ping
    try:
        hello = '{"type":"hello","protocol":1,"role":"node","id":"mute"}'
        await asyncio.to_thread(mute.sendall, masked_text_frame(hello))
        left = await hub.events.wait_for(
            Left, lambda event: event.who == "mute", after=mark, timeout=30
        )
        assert left.reason == "no pong within 0.5 s, close code 1011"
    finally:
        mute.close()


async def test_a_link_that_speaks_is_not_pinged_and_a_silent_one_stays_open(
    run_hub: InProcessHubs,
) -> None:
    hub = await run_hub(KEEPALIVE)
    options: dict[str, Any] = {"ping_interval": None, "create_connection": PingCounting}
    async with (
        connect(hub.url, **options) as silent,
        connect(hub.url, **options) as talking,
    ):
        for ws in (silent, talking):
            await ws.send('{"type":"hello","protocol":1,"role":"viewer"}')

        async def speak() -> None:
            while True:
                await talking.send('{"type":"hello","protocol":1,"role":"viewer"}')
                await asyncio.sleep(0.05)  # pacing: ten frames in each keepalive interval

        async def read() -> None:  # the errors it gets back: a full inbox would stall its close
            async for _ in talking:
                pass

        tasks = [asyncio.create_task(speak()), asyncio.create_task(read())]
        try:
            # The core's own pings as a link opens may come first.
            before, quiet_before = talking.pinged, silent.pinged
            await asyncio.wait_for(pings(silent, at_least=quiet_before + 4), timeout=60)
            assert talking.pinged - before <= 1, "a link that spoke was pinged anyway"
        finally:
            for task in tasks:
                task.cancel()
        # The silent link answered every ping by itself, and is still served.
        await silent.send('{"type":"hello","protocol":1,"role":"viewer"}')
        assert "already" in await asyncio.wait_for(_next_error(silent), timeout=10)


async def _next_error(ws: ClientConnection) -> str:
    async for frame in ws:
        if '"type":"error"' in str(frame):
            return str(frame)
    raise AssertionError("the link closed")


async def test_the_keepalive_is_one_timer_however_many_links(run_hub: InProcessHubs) -> None:
    """Every link is looked at by one task: a task (and a timer) per link woke an idle hub once
    per link and interval, each a wake-up of its own."""
    hub = await run_hub(KEEPALIVE)
    viewer = '{"type":"hello","protocol":1,"role":"viewer"}'
    async with contextlib.AsyncExitStack() as links:
        for _ in range(20):
            ws = await links.enter_async_context(connect(hub.url, ping_interval=None))
            await ws.send(viewer)
            await ws.recv()  # welcomed: served by the hub
        keepalives = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == Server._keepalive.__qualname__
        ]
        assert len(keepalives) == 1
