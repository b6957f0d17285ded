"""Zero-config discovery: the hub announces itself over mDNS/DNS-SD; nodes browse for it.

A maker should not have to type an IP address into every player station, and a DHCP lease can
change between events. So the hub registers a ``_buzzer-beater._tcp`` service (python-zeroconf,
the same multicast DNS that printers and AirPlay use) with its port and protocol version, and a
node configured with ``hub = "auto"`` looks it up. A manual URL always works without any of this.

A hub that listens on loopback only is not announced: no other machine could reach it anyway,
and it keeps test and development hubs from advertising themselves on the LAN.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import ifaddr
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from hub.protocol import PROTOCOL_VERSION

log = logging.getLogger("hub.discovery")

SERVICE_TYPE = "_buzzer-beater._tcp.local."
RESOLVE_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class FoundHub:
    """A hub seen on the LAN."""

    name: str
    address: str
    port: int
    protocol: int | None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"ws://{host}:{self.port}"


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
            properties={"protocol": str(PROTOCOL_VERSION), "path": "/"},
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


def _protocol_of(info: AsyncServiceInfo) -> int | None:
    value = info.properties.get(b"protocol")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def find_hubs(
    timeout: float,
    want: int = 1,
    *,
    settle: float = 0.0,
    match: Callable[[FoundHub], bool] | None = None,
) -> list[FoundHub]:
    """Browse the LAN for hubs: return ``settle`` seconds after ``want`` are resolved, or what
    there is after ``timeout`` seconds.

    ``settle`` lets a caller that must choose among several hubs hear every one that answers the
    same query (responders answer within about 120 ms), not just the fastest. ``match`` keeps
    only the hubs it accepts, so a caller looking for one named hub returns as soon as that one
    answers.
    """
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    found: list[FoundHub] = []
    enough = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()

    async def resolve(zc: Zeroconf, name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zc, RESOLVE_TIMEOUT_MS) or info.port is None:
            return
        label = name.removesuffix("." + SERVICE_TYPE)
        for address in info.parsed_addresses(IPVersion.V4Only):
            hub = FoundHub(label, address, info.port, _protocol_of(info))
            if match is None or match(hub):
                found.append(hub)
            break
        if len(found) >= want:
            enough.set()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            task = asyncio.create_task(resolve(zeroconf, name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(aiozc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        async with asyncio.timeout(timeout):
            await enough.wait()
            if settle > 0:
                await asyncio.sleep(settle)  # a listening window, cut short by the timeout
    except TimeoutError:
        pass
    finally:
        await browser.async_cancel()
        for task in list(pending):
            task.cancel()
        await aiozc.async_close()
    return list(found)
