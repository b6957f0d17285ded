"""How a station notices a lost hub: its kernel's keepalive, the WebSocket ping only as a backstop
(and as before where the kernel cannot help)."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, CloseCode

from firmware.keepalive import (
    IDLE_S,
    LOST_HUB_S,
    PING_INTERVAL_S,
    PING_TIMEOUT_S,
    PROBE_INTERVAL_S,
    UNWATCHED_PING_INTERVAL_S,
    UNWATCHED_PING_TIMEOUT_S,
    WATCHED,
    WatchedConnection,
    watch,
)
from firmware.link import PING_TIMEOUT_REASON, closed_reason

linux_only = pytest.mark.skipif(
    not hasattr(socket, "TCP_USER_TIMEOUT") and os.environ.get("CI") != "true",
    reason="the kernel's TCP options are Linux's",
)


def options(sock: socket.socket) -> dict[str, int]:
    tcp = socket.IPPROTO_TCP
    return {
        "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle_s": sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
        "interval_s": sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
        "probes": sock.getsockopt(tcp, socket.TCP_KEEPCNT),
        "user_timeout_ms": sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
    }


@linux_only
def test_the_kernel_gives_up_on_a_silent_hub_after_the_lost_hub_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        watch(sock)
        set_ = options(sock)
    assert set_ == {
        "keepalive": 1,
        "idle_s": IDLE_S,
        "interval_s": PROBE_INTERVAL_S,
        "probes": 3,
        "user_timeout_ms": round(LOST_HUB_S * 1000),
    }
    # The probes alone would end the link at the same moment as the user timeout.
    assert set_["idle_s"] + set_["probes"] * set_["interval_s"] == LOST_HUB_S


def test_a_connection_without_a_socket_cannot_be_watched() -> None:
    with pytest.raises(OSError, match="no socket"):
        watch(None)


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    """A WebSocket server on loopback that only reads."""

    async def read(ws: ServerConnection) -> None:
        async for _ in ws:
            pass

    async with serve(read, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def open_watched(url: str) -> ClientConnection:
    return await connect(url, **WATCHED)


@linux_only
async def test_a_watched_connection_pings_rarely_and_its_socket_is_watched(
    server_url: str,
) -> None:
    ws = await open_watched(server_url)
    try:
        assert isinstance(ws, WatchedConnection)
        assert ws.unwatched is None
        assert (ws.ping_interval, ws.ping_timeout) == (PING_INTERVAL_S, PING_TIMEOUT_S)
        sock = ws.transport.get_extra_info("socket")
        assert options(sock)["user_timeout_ms"] == round(LOST_HUB_S * 1000)
        assert ws.keepalive_task is not None  # the backstop ping still runs
    finally:
        await ws.close()


async def test_where_the_kernel_cannot_watch_the_station_pings_often(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(socket, "TCP_USER_TIMEOUT", raising=False)  # as on a system without it
    ws = await open_watched(server_url)
    try:
        assert isinstance(ws, WatchedConnection)
        assert ws.unwatched is not None
        assert "TCP_USER_TIMEOUT" in str(ws.unwatched)
        assert (ws.ping_interval, ws.ping_timeout) == (
            UNWATCHED_PING_INTERVAL_S,
            UNWATCHED_PING_TIMEOUT_S,
        )
        assert UNWATCHED_PING_INTERVAL_S + UNWATCHED_PING_TIMEOUT_S <= LOST_HUB_S
    finally:
        await ws.close()


def closed(
    *,
    sent: Close | None = None,
    rcvd: Close | None = None,
    cause: BaseException | None = None,
) -> ConnectionClosed:
    both = rcvd is not None and sent is not None
    exc = ConnectionClosed(rcvd, sent, rcvd_then_sent=True if both else None)
    exc.__cause__ = cause
    return exc


PING_TIMED_OUT = Close(CloseCode.INTERNAL_ERROR, PING_TIMEOUT_REASON)


@pytest.mark.parametrize(
    "cause",
    [
        TimeoutError(errno.ETIMEDOUT, "Connection timed out"),  # the kernel gave up
        OSError(errno.EHOSTUNREACH, "No route to host"),  # and heard why meanwhile
        OSError(errno.ENETUNREACH, "Network is unreachable"),
    ],
)
def test_a_hub_the_kernel_gave_up_on_is_reported_as_gone_silent(cause: OSError) -> None:
    assert closed_reason(closed(cause=cause)) == (
        "the hub stopped answering; check its power, its cable or the Wi-Fi"
    )


def test_an_unanswered_ping_is_reported_as_such_whatever_the_close_then_timed_out() -> None:
    # The library fails the link with 1011, then gives up waiting for the hub to close it too.
    timed_out = TimeoutError("timed out while closing connection")
    reason = closed_reason(closed(sent=PING_TIMED_OUT, cause=timed_out))
    assert reason.startswith("the hub did not answer a ping in time;")
    assert closed_reason(closed(cause=timed_out)) == "the connection to the hub was lost"
    other = Close(CloseCode.INTERNAL_ERROR, "")  # this station's own fault, not a ping's
    assert closed_reason(closed(sent=other)) == "the connection to the hub was lost"


def test_a_hub_closing_the_link_is_reported_by_its_code() -> None:
    going_away = Close(CloseCode.GOING_AWAY, "")
    gone_silent = TimeoutError(errno.ETIMEDOUT, "Connection timed out")
    assert closed_reason(closed(rcvd=going_away)) == "the hub is shutting down"
    assert closed_reason(closed(rcvd=going_away, cause=gone_silent)) == "the hub is shutting down"
    assert closed_reason(closed(rcvd=Close(4429, ""))) == "the hub closed the connection (4429)"
    # The hub's own keepalive heard nothing from this station: the station's network, not the hub.
    assert closed_reason(closed(rcvd=PING_TIMED_OUT, sent=PING_TIMED_OUT)) == (
        "the hub heard nothing from this station for too long; check this station's network"
    )
