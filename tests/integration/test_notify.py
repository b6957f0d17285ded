"""The hub speaks systemd's notify protocol to a real AF_UNIX datagram socket.

Each test binds the socket that systemd would, passes it in ``NOTIFY_SOCKET`` to a real
``buzzer-hub`` subprocess, and reads what arrives. Waiting is on datagrams, with timeouts. The
kernel stamps each datagram as it arrives, so when a ping was sent is known however late this
test reads it. How often the hub pings is checked exactly in tests/unit/hub/test_notify.py.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from websockets.sync.client import connect

WATCHDOG_USEC = 300_000  # systemd would give up after 0.3 s; the hub must ping every 0.15 s
STALL_S = 1.5
#: Linux's option for a nanosecond arrival stamp on each datagram (Python names no constant).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class NotifySocket:
    """The receiving end systemd holds: collects datagrams as lists of KEY=value fields."""

    def __init__(self, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._dir: str | None = None
        if abstract:
            name = f"buzzer-notify-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            # A short path: AF_UNIX paths are limited to 107 bytes, pytest's tmp_path may not be.
            self._dir = tempfile.mkdtemp(prefix="bb-notify-")
            path = str(Path(self._dir) / "notify")
            self.sock.bind(path)
            self.env = path

    def receive(self, timeout: float) -> tuple[float, list[str]] | None:
        """The next datagram and when it arrived (wall clock, as the kernel stamped it), or None
        after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
        except TimeoutError:
            return None
        (level, kind, stamp), *_ = ancillary
        assert (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS)
        seconds, nanoseconds = struct.unpack("qq", stamp[:16])
        return seconds + nanoseconds / 1e9, data.decode().split("\n")

    def expect(
        self, field: str, timeout: float = 10.0, after: float = 0.0
    ) -> tuple[float, list[str]]:
        """Read datagrams until one carries ``field`` (and arrived after ``after``, wall clock);
        fail after ``timeout``. Every datagram read on the way is kept in ``passed``."""
        deadline = time.monotonic() + timeout
        self.passed: list[tuple[float, list[str]]] = []
        while (left := deadline - time.monotonic()) > 0:
            got = self.receive(left)
            if got is None:
                break
            self.passed.append(got)
            if field in got[1] and got[0] > after:
                return got
        seen = [fields for _, fields in self.passed[-5:]]
        raise AssertionError(f"no {field} within {timeout} s; got {seen}")

    def drain(self) -> list[list[str]]:
        """Everything already queued, without waiting."""
        self.sock.setblocking(False)
        queued = []
        try:
            while True:
                queued.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            return queued

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)


def _bind(monkeypatch: pytest.MonkeyPatch, abstract: bool) -> NotifySocket:
    sock = NotifySocket(abstract=abstract)
    monkeypatch.setenv("NOTIFY_SOCKET", sock.env)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    return sock


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NotifySocket]:
    """A socket at a file path, then one with an abstract ('@') name."""
    sock = _bind(monkeypatch, abstract=request.param == "abstract")
    yield sock
    sock.close()


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = _bind(monkeypatch, abstract=False)
    yield sock
    sock.close()


def logged_at(line: str) -> float:
    """When the hub wrote a log line (wall clock; the log's stamps have milliseconds)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_ready_after_listening_watchdog_pings_stopping_on_sigterm(
    start_hub, notify_socket: NotifySocket
) -> None:
    hub = start_hub()
    _, ready = notify_socket.expect("READY=1")
    status = next(f for f in ready if f.startswith("STATUS="))
    assert f"127.0.0.1:{hub.port}" in status
    # READY means the port listens: a client connects and is answered right away.
    with connect(hub.url, open_timeout=5) as ws:
        ws.send("Ready")
        assert ws.recv(timeout=5) == "Hello Ready!"

    # The pings keep coming while the hub runs.
    for _ in range(9):
        notify_socket.expect("WATCHDOG=1")

    assert hub.stop(signal.SIGTERM) == 0
    queued = notify_socket.drain()
    stopping = [i for i, fields in enumerate(queued) if "STOPPING=1" in fields]
    assert stopping, queued
    after = queued[stopping[0] + 1 :]
    assert not any("WATCHDOG=1" in fields for fields in after), after


def test_stalled_event_loop_stops_watchdog_pings(
    start_hub, path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify_socket = path_socket
    monkeypatch.setenv("BUZZER_DEBUG_STALL_S", str(STALL_S))
    hub = start_hub()
    notify_socket.expect("READY=1")
    notify_socket.expect("WATCHDOG=1", timeout=2.0)
    mark = len(hub.lines)
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGUSR2)
    # The diagnostic's own two lines (its product) are written by the loop's thread as it
    # blocks and as it runs again: they mark the stall.
    blocked = logged_at(hub.wait_for_log(r"diagnostic: blocking the event loop", since=mark))
    running = logged_at(hub.wait_for_log(r"diagnostic: event loop running again", since=mark))
    assert running - blocked >= STALL_S - 0.001  # the stamps have milliseconds
    # When the loop runs again, so do the pings; while it was blocked (from a millisecond past
    # the first line's stamp, its stamp being cut to milliseconds) none came, though ten were due.
    notify_socket.expect("WATCHDOG=1", after=running)
    during = [
        (at, fields)
        for at, fields in notify_socket.passed
        if blocked + 0.001 <= at < running and "WATCHDOG=1" in fields
    ]
    assert during == []


def test_without_stall_variable_sigusr2_does_not_stall(start_hub, monkeypatch) -> None:
    """The diagnostic is off in production: SIGUSR2 then takes Python's default (terminate)."""
    monkeypatch.delenv("BUZZER_DEBUG_STALL_S", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    hub = start_hub()
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGUSR2)
    assert hub.proc.wait(timeout=10) == -signal.SIGUSR2
    assert not any("diagnostic" in line for line in hub.lines)


def test_a_missing_notify_socket_is_logged_and_the_hub_serves_on(
    start_hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@buzzer-notify-test-nobody-listens")
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    hub = start_hub()
    hub.wait_for_log(r"cannot notify systemd")
    with connect(hub.url, open_timeout=5) as ws:
        ws.send("Still")
        assert ws.recv(timeout=5) == "Hello Still!"
    assert hub.stop(signal.SIGTERM) == 0
