"""A floor: the least a server built on the ``websockets`` protocol core spends answering the
classic tutorial's clients, on the hub's event loop.

    .venv/bin/python bench/floor_server.py [--port N]

It answers as the classic server does (``First place!``, then ``Response time: 0.12 sec
slower.``; ``reset`` forgets the first buzz, for the benchmark), by arrival, but drives the
library's sans-I/O protocol (handshake, frames, pings, close) straight from an
:class:`asyncio.Protocol`: none of the library's asyncio layer (a task, a message queue, futures
per connection, keepalive and close timeouts, flow control). There is no game, no store and
nothing for a host. It reads frames, not messages: a ``buzz`` sent in fragments gets no answer
(the benchmark's clients never fragment).

It runs on the hub's event loop (uvloop when installed, as :mod:`hub.loop` chooses), where the
classic server runs on asyncio's own, as the tutorial's reader would run it; on asyncio's own
loop it cost about what the classic server does. A WebSocket answerer written by hand, without
the library, can spend less still. Side by side with the classic server and the hub in
``bench/run.py``'s plain-client burst, it shows what is left of a press's cost once the game
and the library's asyncio layer are gone. It prints ``listening on 127.0.0.1:PORT`` once it
accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from pathlib import Path
from typing import cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline_server import Buzzer, until_stopped
from hub import loop


class FloorConnection(asyncio.Protocol):
    """One client's connection, its bytes fed to the protocol and its answers written at once,
    all within the loop's callback: the least any server on the library's core can do."""

    def __init__(self, buzzer: Buzzer) -> None:
        self.buzzer = buzzer
        self.protocol = ServerProtocol()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle()

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        self._handle()
        return False

    def _handle(self) -> None:
        protocol = self.protocol
        for event in protocol.events_received():
            if isinstance(event, Request):
                protocol.send_response(protocol.accept(event))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                reply = self.buzzer.answer(bytes(event.data).decode(errors="replace"))
                if reply is not None:
                    protocol.send_text(reply.encode())
        assert self.transport is not None
        for data in protocol.data_to_send():
            if data:
                self.transport.write(data)
            else:  # the protocol is done with the connection
                self.transport.close()


async def main(port: int) -> None:
    buzzer = Buzzer()
    running = asyncio.get_running_loop()
    server = await running.create_server(lambda: FloorConnection(buzzer), "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    await until_stopped()
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # one socket per client, as the
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # classic server and the hub
    loop.run(main(parser.parse_args().port))
