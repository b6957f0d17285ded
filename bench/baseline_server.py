"""The classic arrival-order buzzer server, written the straightforward way: the baseline.

    .venv/bin/python bench/baseline_server.py [--port N]

This is the server the product grows from: a client sends the text ``buzz``; the first one hears
``First place!``, every later one ``Response time: 0.12 sec slower.`` (seconds since the first
buzz, 2 decimals), timed when the message *arrives*. Each connection's handler awaits its own
``send``; there is no clock sync, no adjudication wait, no store and no state for a host. It is
what a reader of the websockets tutorial would write, so that "faster than the classic server"
compares against something real rather than a straw man.

One addition, for the benchmark only: the text ``reset`` forgets the first buzz, so that one
server process can serve several rounds (the tutorial's never resets). It prints
``listening on 127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import time

from websockets.asyncio.server import ServerConnection, serve


class Buzzer:
    """Who buzzed first, by arrival; nothing else."""

    def __init__(self) -> None:
        self.first: float | None = None

    def answer(self, message: str | bytes) -> str | None:
        """The reply to one message, timed as it is handled: the tutorial's rule."""
        if message == "buzz":
            now = time.monotonic()
            if self.first is None:
                self.first = now
                return "First place!"
            return f"Response time: {now - self.first:.2f} sec slower."
        if message == "reset":
            self.first = None
            return "reset"
        return None

    async def handler(self, websocket: ServerConnection) -> None:
        async for message in websocket:
            reply = self.answer(message)
            if reply is not None:
                await websocket.send(reply)


async def until_stopped() -> None:
    """Return once the benchmark stops the server (SIGTERM) or a person does (Ctrl+C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()


async def main(port: int) -> None:
    buzzer = Buzzer()
    async with serve(buzzer.handler, "127.0.0.1", port) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on 127.0.0.1:{bound}", flush=True)
        await until_stopped()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    # The same allowance the hub gives itself: one socket per client.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(parser.parse_args().port))
