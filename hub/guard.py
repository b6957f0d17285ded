"""Per-connection limits on open WebSockets: a message budget, and no unbounded send buffers.

The server asks :class:`Guard` before handling each received frame and before each send. A breach
closes that one connection with its documented code and logs one line; every other connection
carries on untouched, because nothing here ever waits on the offending peer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection

from hub.limits import LogThrottle, TokenBucket, too_slow
from wire.enums import CloseCode

log = logging.getLogger("hub.guard")

#: How long a dropped peer gets to answer the close frame before its socket is simply aborted.
DROP_GRACE_S = 1.0
DROP_LOG_INTERVAL_NS = 10_000_000_000
#: After a client is dropped for flooding, its address waits this long before it may open a
#: connection without a token again; token holders are not held back.
COOL_DOWN_NS = 5_000_000_000
ADDRESSES_COOLING = 4096


class Guard:
    """Message budgets and send-buffer limits for every open connection."""

    def __init__(self, messages_per_s: float, message_burst: int, send_buffer_bytes: int) -> None:
        self.messages_per_s = messages_per_s
        self.message_burst = message_burst
        self.send_buffer_bytes = send_buffer_bytes
        # Weak keys: a connection's budget disappears with the connection, no cleanup call needed.
        self._buckets: weakref.WeakKeyDictionary[ServerConnection, TokenBucket] = (
            weakref.WeakKeyDictionary()
        )
        self._dropping: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[None]] = set()
        # A flooder that reconnects each time it is dropped gets one line per address and
        # reason this often; the next one counts the rest.
        self._log_throttle = LogThrottle(DROP_LOG_INTERVAL_NS)
        # Addresses whose client was dropped for flooding, and until when they cool down.
        self._cooling: dict[str, int] = {}

    def admit(self, ws: ServerConnection, now_ns: int) -> bool:
        """Whether to handle a frame received at ``now_ns``; past the budget the peer is closed."""
        if ws in self._dropping:
            return False
        bucket = self._buckets.get(ws)
        if bucket is None:
            bucket = self._buckets[ws] = TokenBucket(self.messages_per_s, self.message_burst)
        if bucket.take(now_ns):
            return True
        self._drop(
            ws,
            CloseCode.RATE_LIMITED,
            "too many messages",
            f"more than {self.message_burst} frames at once or "
            f"{self.messages_per_s:g} a second sustained",
        )
        return False

    def cooling_down(self, address: str, now_ns: int) -> int:
        """Nanoseconds until ``address`` may open a connection without a token again, after
        one of its clients was dropped for flooding (0: it may now).

        A flooder that is cut off reconnects at once: without this each return would cost a
        handshake and a full budget of frames; with it, one HTTP answer."""
        until = self._cooling.get(address)
        if until is None or until <= now_ns:
            return 0
        return until - now_ns

    def writable(self, ws: ServerConnection) -> bool:
        """Whether a frame may be queued for ``ws``; a peer that stopped reading is dropped."""
        if ws in self._dropping:
            return False
        transport = ws.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        if not too_slow(buffered, self.send_buffer_bytes):
            return True
        self._drop(
            ws,
            CloseCode.TOO_SLOW,
            "too slow",
            f"{buffered // 1024} KiB unsent (limit {self.send_buffer_bytes // 1024} KiB)",
        )
        return False

    def writable_among(self, connections: Iterable[ServerConnection]) -> list[ServerConnection]:
        """The connections a broadcast may go to; the slow ones are dropped on the way."""
        return [ws for ws in connections if self.writable(ws)]

    def _drop(self, ws: ServerConnection, code: int, reason: str, detail: str) -> None:
        self._dropping.add(ws)
        if ws.transport is not None and not ws.transport.is_closing():
            # Stop reading at once: whatever the peer keeps sending now waits in its own
            # buffers, not in the hub's, and costs the hub no parsing.
            ws.transport.pause_reading()
        address = peer(ws).rsplit(":", 1)[0]
        now = time.monotonic_ns()
        if code == CloseCode.RATE_LIMITED:
            if len(self._cooling) >= ADDRESSES_COOLING:
                self._cooling = {a: t for a, t in self._cooling.items() if t > now}
            self._cooling[address] = now + COOL_DOWN_NS
        left_out = self._log_throttle.allow((address, reason), now)
        if left_out is not None:
            more = f" ({left_out} more from this address not logged)" if left_out else ""
            log.warning("dropped %s: %s (close %d): %s%s", peer(ws), reason, code, detail, more)
        task = asyncio.get_running_loop().create_task(self._close(ws, code, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, ws: ServerConnection, code: int, reason: str) -> None:
        """Send the close frame, but never wait on the peer for long: it may not be reading."""
        try:
            async with asyncio.timeout(DROP_GRACE_S):
                await ws.close(code, reason)
        except TimeoutError:
            pass
        finally:
            # Also when the transport is already closing: a graceful close still waits to flush
            # a buffer that a peer which is not reading never drains. A no-op once closed.
            if ws.transport is not None:
                ws.transport.abort()


def peer(ws: ServerConnection) -> str:
    """The peer's address and port, for the log."""
    address = ws.remote_address
    if not address:
        return "?"
    host, port = list(address)[:2]
    return f"{host}:{port}"
