"""The systemd notify protocol (sd_notify(3)), spoken directly: one datagram per message.

systemd passes the path of an ``AF_UNIX`` datagram socket in ``$NOTIFY_SOCKET`` (a leading ``@``
means a Linux abstract socket) and, when the unit has ``WatchdogSec=``, the interval in
``$WATCHDOG_USEC``. A ``Type=notify`` unit is "started" only once it sends ``READY=1``, so the
hub sends it after its port listens: a unit ordered after the hub then really finds it.

The watchdog pings are sent by an asyncio task on the hub's own event loop, not by a thread: a
loop that is stuck (a blocking call, an endless callback) stops pinging, and systemd restarts
the hub. Outside systemd every call here does nothing, so the hub runs the same by hand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

log = logging.getLogger("hub.notify")

#: Diagnostic only: when this environment variable holds a number of seconds, SIGUSR2 makes the
#: hub block its event loop for that long, to check that the watchdog notices a stuck hub.
STALL_ENV = "BUZZER_DEBUG_STALL_S"


class Notifier:
    """Sends notify messages to the socket named in ``$NOTIFY_SOCKET``, if there is one."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        if address and (address.startswith("/") or address.startswith("@")):
            # An abstract socket name starts with a NUL byte on the wire.
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields as one datagram; False if there is no socket or it failed.

        A failure is logged and otherwise ignored: a hub that cannot reach systemd still serves.
        """
        if self.address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("cannot notify systemd at %r: %s", self.address, exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s() -> float | None:
    """How often systemd wants a ping (half its ``WatchdogSec``), or None for no watchdog.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; a child that
    inherited the environment must not ping on its parent's behalf.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2 / 1_000_000 if value > 0 else None


async def watchdog(notifier: Notifier, interval_s: float) -> None:
    """Ping ``WATCHDOG=1`` every ``interval_s`` from the event loop until cancelled."""
    while True:
        notifier.send("WATCHDOG=1")
        await asyncio.sleep(interval_s)


def install_stall_handler(loop: asyncio.AbstractEventLoop) -> bool:
    """If ``$BUZZER_DEBUG_STALL_S`` is set, make SIGUSR2 block the loop that long (a diagnostic).

    Off unless the variable is set, so a stray signal never freezes a hub at an event.
    """
    value = os.environ.get(STALL_ENV)
    if not value:
        return False
    seconds = float(value)

    def stall() -> None:
        log.warning("diagnostic: blocking the event loop for %.1f s", seconds)
        time.sleep(seconds)  # deliberately blocking: this is what the watchdog must catch
        log.warning("diagnostic: event loop running again")

    loop.add_signal_handler(signal.SIGUSR2, stall)
    return True
