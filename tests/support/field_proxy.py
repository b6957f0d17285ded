"""A WebSocket proxy that makes a hub look newer: every JSON object it sends gains a field.

A later protocol version may add fields to any message and to any object inside one (a
``welcome``'s ``round``, a ``state``'s players); clients must ignore what they do not know. This
proxy sits between one client and a real hub and, in every JSON frame the hub sends, adds the same
field to every object at every depth. Frames from the client, and text that is not JSON (the
tutorial protocol), pass unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

LOOPBACK = "127.0.0.1"


def with_field(value: Any, name: str, extra: Any) -> Any:
    """``value`` with ``name: extra`` added to every object in it, however deep."""
    if isinstance(value, dict):
        return {**{key: with_field(item, name, extra) for key, item in value.items()}, name: extra}
    if isinstance(value, list):
        return [with_field(item, name, extra) for item in value]
    return value


class FieldInjectingProxy:
    """Listens on 127.0.0.1 (an ephemeral port) and forwards each connection to ``target``.

    ``frames`` holds every hub frame as the client received it (decoded), in order, so a test
    can check what was added where."""

    def __init__(self, target: str, name: str = "x_future", extra: Any = 1) -> None:
        self.target = target
        self.name = name
        self.extra = extra
        self.frames: list[dict[str, Any]] = []
        self.port = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await serve(self._relay, LOOPBACK, 0, compression=None)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _newer(self, frame: str | bytes) -> str | bytes:
        if isinstance(frame, bytes):
            return frame
        try:
            data = json.loads(frame)
        except ValueError:
            return frame
        data = with_field(data, self.name, self.extra)
        if isinstance(data, dict):
            self.frames.append(data)
        return json.dumps(data, separators=(",", ":"))

    async def _relay(self, client: ServerConnection) -> None:
        auth = client.request.headers.get("Authorization") if client.request else None
        path = client.request.path if client.request else "/"
        async with connect(
            self.target + path,
            additional_headers={"Authorization": auth} if auth else None,
            compression=None,
        ) as hub:
            pumps = [
                asyncio.create_task(self._pump(client, hub, lambda frame: frame)),
                asyncio.create_task(self._pump(hub, client, self._newer)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await client.close()

    @staticmethod
    async def _pump(
        source: ServerConnection | ClientConnection,
        dest: ServerConnection | ClientConnection,
        change: Callable[[str | bytes], str | bytes],
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in source:
                await dest.send(change(frame))
