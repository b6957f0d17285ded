"""How a hub is found on the LAN: its DNS-SD service type and record, and the browse for it.

A maker should not have to type an IP address into every player station, and a DHCP lease can
change between events. So the hub registers a ``_buzzer-beater._tcp`` service (python-zeroconf,
the same multicast DNS that printers and AirPlay use) with its port and protocol version in the TXT
record (``hub.discovery`` announces it), and a node configured with ``hub = "auto"`` looks it up
(``firmware.discovery`` chooses among the answers). ``buzzer-hub find`` browses the same way. A
manual URL always works without any of this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from wire.messages import PROTOCOL_VERSION

SERVICE_TYPE: Final = "_buzzer-beater._tcp.local."
RESOLVE_TIMEOUT_MS: Final = 3000


def txt_record() -> dict[str, str]:
    """What the hub's TXT record says: the protocol it speaks, and the WebSocket path."""
    return {"protocol": str(PROTOCOL_VERSION), "path": "/"}


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
