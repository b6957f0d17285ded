"""The hub announces itself on the LAN over mDNS/DNS-SD (the record is :mod:`wire.discovery`'s).

A hub that listens on loopback only is not announced: no other machine could reach it anyway,
and it keeps test and development hubs from advertising themselves on the LAN.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

import ifaddr
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from wire.discovery import SERVICE_TYPE, txt_record

log = logging.getLogger("hub.discovery")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce: the one the hub listens on, or every non-loopback one."""
    if host and host not in ("0.0.0.0", "::"):
        return [] if is_loopback(host) else [host]
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return sorted(set(found))


def instance_name(configured: str) -> str:
    return configured or f"Buzzer Beater on {socket.gethostname()}"


class Announcer:
    """Registers the hub's service while it runs; a failure is logged and the hub serves on."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = instance_name(name)
        self.host = host
        self.port = port
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    async def start(self) -> bool:
        addresses = lan_addresses(self.host)
        if not addresses:
            where = "loopback only" if is_loopback(self.host) else "no LAN address"
            log.info("discovery: not announcing (%s); nodes need the hub's URL", where)
            return False
        hostname = socket.gethostname().split(".")[0] or "buzzer-hub"
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            port=self.port,
            properties=txt_record(),
            server=f"{hostname}.local.",
            parsed_addresses=addresses,
        )
        try:
            self._zeroconf = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
            # Probing for a name clash and the first announcements take about a second.
            await self._zeroconf.async_register_service(self._info, allow_name_change=True)
        except (OSError, RuntimeError) as exc:
            log.warning("discovery: cannot announce the hub over mDNS: %s", exc)
            await self.stop()
            return False
        log.info(
            "discovery: announced %r on %s port %d",
            self._info.name.removesuffix("." + SERVICE_TYPE),
            ", ".join(addresses),
            self.port,
        )
        return True

    async def stop(self) -> None:
        """Say goodbye, so nodes forget this hub at once instead of when the record expires."""
        zc, self._zeroconf = self._zeroconf, None
        if zc is None:
            return
        try:
            if self._info is not None:
                await zc.async_unregister_service(self._info)
        except (OSError, RuntimeError) as exc:
            log.debug("discovery: goodbye failed: %s", exc)
        await zc.async_close()
