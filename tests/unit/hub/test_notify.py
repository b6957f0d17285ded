"""The watchdog's arithmetic and cadence, without systemd or a clock.

tests/integration/test_notify.py checks the datagrams a real hub sends to a real socket.
"""

from __future__ import annotations

import os
import types
from collections.abc import Generator

import pytest

from hub import notify


def test_watchdog_is_for_the_process_systemd_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval_s() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # a parent's watchdog, not ours
    assert notify.watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert notify.watchdog_interval_s() is None


def test_the_watchdog_pings_then_waits_half_the_interval_systemd_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "300000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    interval = notify.watchdog_interval_s()
    assert interval == 0.15
    happened: list[object] = []

    class Socket(notify.Notifier):
        def send(self, *fields: str) -> bool:
            happened.append(fields)
            return True

    @types.coroutine
    def sleep(seconds: float) -> Generator[None, None, None]:
        happened.append(seconds)
        yield  # the loop would run other work here

    monkeypatch.setattr(notify.asyncio, "sleep", sleep)
    pinging = notify.watchdog(Socket("@nobody"), interval)
    for _ in range(3):
        pinging.send(None)  # on until the next wait
    pinging.close()
    assert happened == [("WATCHDOG=1",), 0.15] * 3
