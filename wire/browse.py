"""Browsing the LAN for hubs over mDNS (python-zeroconf), and this machine's LAN addresses.

Apart from :mod:`wire.discovery` so that naming a found hub never loads an event loop or the mDNS
stack: only the node's link and ``buzzer-hub find`` browse, and the hub's announcer lists
addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Final

import ifaddr
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from wire.discovery import SERVICE_TYPE, FoundHub, LanAddress, is_lan_interface, read_txt

RESOLVE_TIMEOUT_MS: Final = 3000


def lan_addresses(allowed: tuple[str, ...] = ()) -> list[LanAddress]:
    """This machine's IPv4 addresses on real LAN interfaces, read afresh on every call (a DHCP
    lease or a hotspot can come and go while a hub or node runs)."""
    found = {
        LanAddress(adapter.nice_name, ip.ip, ip.network_prefix)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and is_lan_interface(adapter.nice_name, ip.ip, allowed)
    }
    return sorted(found)


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
    answers. Each hub comes with every IPv4 address it announced: a hub on two networks (its own
    access point and the venue's Wi-Fi) is reachable at only one of them from a given node.
    """
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    resolved: list[AsyncServiceInfo] = []
    enough = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()

    async def resolve(zc: Zeroconf, name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zc, RESOLVE_TIMEOUT_MS) or info.port is None:
            return
        hub = _hub_of(info)
        if hub is not None and (match is None or match(hub)):
            resolved.append(info)
        if len(resolved) >= want:
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
        # A resolve completes with the first address heard; a hub on several networks may have
        # sent the others in a later packet of the same window, and the cache has them all.
        for info in resolved:
            info.load_from_cache(aiozc.zeroconf)
        await aiozc.async_close()
    return [hub for hub in map(_hub_of, resolved) if hub is not None]


def _hub_of(info: AsyncServiceInfo) -> FoundHub | None:
    addresses = sorted(info.parsed_addresses(IPVersion.V4Only), key=ipaddress.IPv4Address)
    if info.port is None or not addresses:
        return None
    protocol, tls = read_txt(info.properties)
    name = info.name.removesuffix("." + SERVICE_TYPE)
    return FoundHub(name, tuple(addresses), info.port, protocol, tls)
