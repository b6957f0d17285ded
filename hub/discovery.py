"""The hub announces itself on the LAN over mDNS/DNS-SD (the record is :mod:`wire.discovery`'s),
and keeps announcing as the network changes.

At a venue everything is often switched on at once, and the router is the last to boot: the hub
then starts with no LAN address at all, gets one a minute later, and may get another when a lease
changes or the hub's own access point comes up. So the announcer does not compute its addresses
once. It listens to the kernel's address notifications (rtnetlink: a socket bound to the
``RTMGRP_LINK`` and ``RTMGRP_IPV4_IFADDR`` multicast groups) and, as a fallback where those are
not available, looks again every :data:`CHECK_S` seconds; whenever the set of LAN addresses
differs from the one announced, it says goodbye on the old ones and announces the new ones.

Every real LAN address is announced (a Pi can be on the venue's Wi-Fi, its own access point and
a USB gadget link at once), never loopback or a container bridge (``wire.discovery``'s
``is_lan_interface``): each node picks the address on its own subnet. ``[discovery] interfaces``
narrows the announcement to named interfaces where the guess is wrong.

A hub that listens on loopback only is not announced: no other machine could reach it anyway,
and it keeps test and development hubs from advertising themselves on the LAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from typing import Final

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from wire.browse import lan_addresses
from wire.discovery import SERVICE_TYPE, txt_record

log = logging.getLogger("hub.discovery")

#: How often the addresses are looked at when no kernel notification says they changed.
CHECK_S: Final = 30.0
#: rtnetlink multicast groups (linux/rtnetlink.h): RTNLGRP_LINK is 1 and RTNLGRP_IPV4_IFADDR is
#: 5; the legacy bind mask has bit (group - 1) set for each.
RTMGRP_LINK: Final = 0x1
RTMGRP_IPV4_IFADDR: Final = 0x10
NETLINK_ROUTE: Final = 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def addresses_to_announce(host: str, interfaces: tuple[str, ...] = ()) -> list[str]:
    """The IPv4 addresses to announce: the one the hub listens on, or every LAN one it has."""
    if host and host not in ("0.0.0.0", "::"):
        return [] if is_loopback(host) else [host]
    return sorted({lan.address for lan in lan_addresses(interfaces)})


def instance_name(configured: str) -> str:
    return configured or f"Buzzer Beater on {socket.gethostname()}"


class AddressWatch:
    """Wakes its waiter when the kernel reports an address or link change, or after a timeout.

    Only a trigger: what changed is read afresh by the caller, so the netlink messages themselves
    are drained unparsed. Where no netlink socket can be had (not Linux, a sandbox without
    AF_NETLINK) the wait is just the timeout: a periodic check.
    """

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self._sock: socket.socket | None = None
        if sys.platform != "linux":
            return
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
            sock.setblocking(False)
        except OSError as exc:
            log.debug(
                "discovery: no address notifications (%s); checking every %.0f s", exc, CHECK_S
            )
            return
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    @property
    def notified(self) -> bool:
        """Whether changes arrive as they happen, not only at each periodic check."""
        return self._sock is not None

    def _readable(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._sock.recv(65536):
                pass
        self._changed.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next change, or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        self._changed.clear()

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


class Announcer:
    """Keeps the hub's service registered on its current LAN addresses while :meth:`run` runs;
    a failure is logged and the hub serves on."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        tls: bool = False,
        interfaces: tuple[str, ...] = (),
        check_s: float = CHECK_S,
    ) -> None:
        self.name = instance_name(name)
        self.host = host
        self.port = port
        self.tls = tls
        self.interfaces = interfaces
        self.check_s = check_s
        self.announced: list[str] = []
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    async def run(self) -> None:
        """Announce now and after every address change, until cancelled (then say goodbye)."""
        if is_loopback(self.host):
            log.info("discovery: not announcing (loopback only); nodes need the hub's URL")
            return
        watch = AddressWatch()
        seen: list[str] | None = None  # the addresses last acted on (a failure is not retried
        try:  # until they change, so a broken network is not hammered every few seconds)
            while True:
                addresses = addresses_to_announce(self.host, self.interfaces)
                if addresses != seen:
                    seen = addresses
                    await self._withdraw()
                    if addresses:
                        await self._announce(addresses)
                    else:
                        how = "as soon as one appears" if watch.notified else "when one appears"
                        log.info("discovery: no LAN address yet; the hub is announced %s", how)
                await watch.wait(self.check_s)
        finally:
            watch.close()
            await asyncio.shield(self._withdraw())

    async def _announce(self, addresses: list[str]) -> None:
        hostname = socket.gethostname().split(".")[0] or "buzzer-hub"
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            port=self.port,
            properties=txt_record(self.tls),
            server=f"{hostname}.local.",
            parsed_addresses=addresses,
        )
        try:
            zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        except (OSError, RuntimeError) as exc:
            log.warning("discovery: cannot announce the hub over mDNS: %s", exc)
            return
        self._zeroconf, self._info, self.announced = zeroconf, info, addresses
        try:
            # Probing for a name clash and the first announcements take about a second.
            await zeroconf.async_register_service(info, allow_name_change=True)
        except (OSError, RuntimeError) as exc:
            log.warning("discovery: cannot announce the hub over mDNS: %s", exc)
            await self._withdraw(goodbye=False)
            return
        log.info(
            "discovery: announced %r on %s port %d%s",
            info.name.removesuffix("." + SERVICE_TYPE),
            ", ".join(addresses),
            self.port,
            " (TLS)" if self.tls else "",
        )

    async def _withdraw(self, goodbye: bool = True) -> None:
        """Say goodbye, so nodes forget the old addresses at once instead of when the record
        expires; an address already gone makes the goodbye fail, which is harmless."""
        zc, info = self._zeroconf, self._info
        self._zeroconf = self._info = None
        self.announced = []
        if zc is None:
            return
        try:
            if goodbye and info is not None:
                await zc.async_unregister_service(info)
        except (OSError, RuntimeError) as exc:
            log.debug("discovery: goodbye failed: %s", exc)
        with contextlib.suppress(OSError, RuntimeError):
            await zc.async_close()
