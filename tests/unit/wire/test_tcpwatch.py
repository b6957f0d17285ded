"""The kernel's watch of a TCP link: what cannot be watched says why, and a link that went
before it could be watched is told apart (its station is gone anyway, see hub.server)."""

from __future__ import annotations

import os
import socket

import pytest

from wire.tcpwatch import Unwatchable, watch

linux_only = pytest.mark.skipif(
    not hasattr(socket, "TCP_USER_TIMEOUT") and os.environ.get("CI") != "true",
    reason="the kernel's TCP options are Linux's",
)


@linux_only
def test_probes_give_up_when_the_user_timeout_does() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        watch(sock, idle_s=4, interval_s=2, lost_s=10.0)
        tcp = socket.IPPROTO_TCP
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(tcp, socket.TCP_KEEPIDLE) == 4
        assert sock.getsockopt(tcp, socket.TCP_KEEPINTVL) == 2
        assert sock.getsockopt(tcp, socket.TCP_KEEPCNT) == 3  # 4 s + 3 probes 2 s apart: 10 s
        assert sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT) == 10_000


def test_a_connection_without_a_socket_is_unwatchable() -> None:
    with pytest.raises(Unwatchable, match="no socket of its own"):
        watch(None, idle_s=4, interval_s=2, lost_s=10.0)


@linux_only
def test_a_socket_already_closed_is_no_unwatchable_system() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.close()
    with pytest.raises(OSError, match="Bad file descriptor") as raised:
        watch(sock, idle_s=4, interval_s=2, lost_s=10.0)
    assert not isinstance(raised.value, Unwatchable)
