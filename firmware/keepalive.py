"""How a station notices that its hub is gone, at no cost to the hub's program.

A station must show a lost hub within seconds (:data:`LOST_HUB_S`): a pulled cable, a hub that
lost power, a Wi-Fi out of range. A WebSocket ping every 2 s did that, but every ping is a frame
that the hub's event loop reads and answers: with a thousand stations, 500 a second, several
times all the clock sync of an idle room, and on the Pi that hosts the hub each costs more.

The station's kernel asks instead. After :data:`IDLE_S` without a segment from the hub it sends
a TCP keepalive probe, which the hub's kernel answers, never its program. ``TCP_USER_TIMEOUT``
then closes the connection (``ETIMEDOUT``) once nothing the station sent, a probe or a press, has
been acknowledged for :data:`LOST_HUB_S`; with keepalive on, it decides when keepalive gives up
(tcp(7)). A hub that is only busy (a long garbage collection, a slow disk) is not dropped, as a
2 s ping with a 3 s timeout could drop a whole room at once.

The kernel answers for the hub's machine, not for its program: a hub program that hangs while
its machine runs is noticed by the WebSocket ping, now every :data:`PING_INTERVAL_S`, and sooner
by systemd's watchdog, which restarts it (docs/deploy.md): a restart closes every connection at
once. Where the kernel cannot be asked (a system without these socket options: not Linux), the
station pings as often as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection

from wire import tcpwatch

#: A lost hub is noticed this long after the station last heard from it, or, if the station sent
#: something since (a press, a sync reply), this long after the oldest of that: 5 to 10 s.
LOST_HUB_S = 5.0
#: Silence from the hub before the first probe, and then between probes.
IDLE_S = 2
PROBE_INTERVAL_S = 1
#: WebSocket pings to the hub, and how long each may take to come back, while the kernel
#: watches the link; where it cannot, as often as LOST_HUB_S needs.
PING_INTERVAL_S, PING_TIMEOUT_S = 20.0, 10.0
UNWATCHED_PING_INTERVAL_S, UNWATCHED_PING_TIMEOUT_S = 2.0, 3.0


def watch(sock: Any) -> None:
    """Have the kernel notice a hub that stopped answering on this TCP connection (see
    :data:`LOST_HUB_S`); ``OSError`` where it cannot. (``sock``: a socket, or the
    ``TransportSocket`` asyncio hands out for one.)"""
    tcpwatch.watch(sock, IDLE_S, PROBE_INTERVAL_S, LOST_HUB_S)


class WatchedConnection(ClientConnection):
    """A connection to the hub that its kernel watches from the start (before the opening
    handshake, and before the library's keepalive picks its interval). Open it with
    ``connect(url, **WATCHED)``."""

    unwatched: OSError | None = None  # why the kernel could not watch it: pinged often instead

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        try:
            watch(transport.get_extra_info("socket"))
        except OSError as exc:
            self.unwatched = exc
            self.ping_interval = UNWATCHED_PING_INTERVAL_S
            self.ping_timeout = UNWATCHED_PING_TIMEOUT_S


#: ``connect()``'s options for a station's link to its hub. Never through a web proxy that the
#: environment names (``https_proxy`` on a laptop from an office): the hub is on the LAN, where
#: such a proxy cannot reach it, and the kernel would watch the link to the proxy instead.
WATCHED: dict[str, Any] = {
    "create_connection": WatchedConnection,
    "ping_interval": PING_INTERVAL_S,
    "ping_timeout": PING_TIMEOUT_S,
    "proxy": None,
}
