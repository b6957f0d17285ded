"""A peer that stopped answering, noticed by the kernel rather than the program.

A pulled cable, a station or hub that lost power, a Wi-Fi out of range: none of them sends
anything, so neither end of a connection hears that it is gone. TCP keepalive has the kernel
probe a connection that has been quiet for ``idle_s``, every ``interval_s``; the peer's kernel
answers, never its program, so a program that is only busy (a long garbage collection, a slow
disk) is not taken for gone, and a probe costs neither program anything. ``TCP_USER_TIMEOUT`` then
ends the connection (``ETIMEDOUT``) once nothing sent, a probe or data, has been acknowledged for
``lost_s``; with keepalive on, it decides when the probes give up (tcp(7)). Data sent while the
peer is gone is retried instead of probing, and counts from when it was sent: the peer is given
up ``lost_s`` to twice that after it went quiet. A peer that runs but stops reading, its receive
window shut for ``lost_s``, is given up as well.

The station watches its link to the hub this way (:mod:`firmware.keepalive`), and the hub its
links to stations (:mod:`hub.server`).
"""

from __future__ import annotations

import errno
import socket
from typing import Any

#: How a kernel reports a peer that stopped answering: the timeout, or an unreachable host or
#: network that it heard of meanwhile (a router's ICMP, a failed ARP).
SILENT_PEER_ERRNOS = frozenset(
    {errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)
_OPTIONS = ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT")


class Unwatchable(OSError):
    """This connection or this system's TCP cannot be watched by the kernel."""


def watch(sock: Any, idle_s: int, interval_s: int, lost_s: float) -> None:
    """Have the kernel end this TCP connection once its peer has answered nothing for
    ``lost_s``; :class:`Unwatchable` where it cannot (``OSError`` for a socket already closed).
    (``sock``: a socket, or the ``TransportSocket`` asyncio hands out for one.)"""
    if sock is None:
        raise Unwatchable("the connection has no socket of its own")
    missing = [name for name in _OPTIONS if not hasattr(socket, name)]
    if missing:
        raise Unwatchable(f"this system's TCP has no {', '.join(missing)}")
    probes = max(1, round((lost_s - idle_s) / interval_s))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, round(lost_s * 1000))
