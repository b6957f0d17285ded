"""How a hub is found on the LAN: its DNS-SD service type and record, as plain values.

A maker should not have to type an IP address into every player station, and a DHCP lease can
change between events. So the hub registers a ``_buzzer-beater._tcp`` service (multicast DNS, the
way printers are found) with its port in the SRV record, every LAN address it has in the A
records, and in the TXT record the protocol it speaks and whether it wants TLS (``wss://``).
``hub.discovery`` announces it; :mod:`wire.browse` looks for it; ``firmware.discovery`` decides
which hub and address a node with ``hub = "auto"`` uses.

This module is the record alone, with no socket and no event loop, so the node's pure core and
its tests can name a found hub without loading the mDNS stack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from wire.messages import PROTOCOL_VERSION

SERVICE_TYPE: Final = "_buzzer-beater._tcp.local."


def txt_record(tls: bool) -> dict[str, str]:
    """What the hub's TXT record says: the protocol it speaks, the WebSocket path, and whether it
    serves ``wss://`` (a node that built ``ws://`` for a TLS hub would fail its handshake)."""
    return {"protocol": str(PROTOCOL_VERSION), "path": "/", "tls": "1" if tls else "0"}


def read_txt(properties: Mapping[bytes, bytes | None]) -> tuple[int | None, bool]:
    """The protocol version and the TLS flag from a TXT record; an older hub says neither."""
    value = properties.get(b"protocol")
    try:
        protocol = int(value) if value is not None else None
    except ValueError:
        protocol = None
    return protocol, properties.get(b"tls") == b"1"


@dataclass(frozen=True)
class FoundHub:
    """A hub seen on the LAN, with every address it announced (in the order they came)."""

    name: str
    addresses: tuple[str, ...]
    port: int
    protocol: int | None
    tls: bool = False

    def url_at(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"

    @property
    def urls(self) -> list[str]:
        return [self.url_at(address) for address in self.addresses]

    @property
    def url(self) -> str:
        """The first address's URL: what a listing shows; a node orders them itself."""
        return self.url_at(self.addresses[0]) if self.addresses else ""


@dataclass(frozen=True, order=True)
class LanAddress:
    """One IPv4 address of this machine on a LAN: its interface, address and prefix length."""

    interface: str
    address: str
    prefix: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.prefix}", strict=False)

    def __str__(self) -> str:
        return f"{self.interface} ({self.address}/{self.prefix})"


#: Interfaces that are not a LAN anyone else is on: container and VM bridges (their host side),
#: VPN tunnels. A hub announcing docker0's 172.17.0.1 sends nodes to an address they cannot reach.
VIRTUAL_PREFIXES: Final = (
    "docker",
    "br-",
    "veth",
    "virbr",
    "lxcbr",
    "lxdbr",
    "podman",
    "cni",
    "flannel",
    "cali",
    "weave",
    "kube",
    "vboxnet",
    "vmnet",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
)


def is_lan_interface(name: str, address: str, allowed: tuple[str, ...] = ()) -> bool:
    """Whether an interface's IPv4 address belongs in the announcement: not loopback, not a
    container bridge or tunnel. ``allowed`` (the hub's ``[discovery] interfaces``) overrides the
    guess: only those interfaces, whatever their names. Link-local addresses (169.254.x.x, as on
    a Pi's usb0 with no DHCP) stay: a node on the same cable can use them, and nodes rank them
    last."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified:
        return False
    if allowed:
        return name in allowed
    return not name.startswith(VIRTUAL_PREFIXES)
