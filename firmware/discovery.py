"""How a node configured with ``hub = "auto"`` picks its hub, and the address to reach it at,
from what the LAN answered; and what it says when that fails.

The browsing itself is :func:`wire.browse.find_hubs`, run by the link (:mod:`firmware.link`).
What is decided here, without any socket, is the node's policy:

- A configured ``hub_name`` wins: only the hub announced under that name is used, and the browse
  returns as soon as it answers.
- Otherwise, when several hubs answer (two events in one school hall), the choice must not depend
  on which answered a few ms sooner, or stations would split between hubs at random. The node
  listens a short while after the first answer and takes the first by name (then port), preferring
  hubs that speak this node's protocol version, and says which it took.
- A hub announces every LAN address it has (its own access point, the venue's Wi-Fi, a USB link),
  and only some are reachable from a given station. The node tries them all, those on one of its
  own subnets first, link-local ones (169.254.x.x) last.
- When no hub can be used, the line says what was tried: on which of the station's interfaces
  it looked (or that it has no network address at all), which hubs answered if not the wanted
  one, which addresses it could not reach and why. "Multicast may be blocked" is offered only
  when the station is on a LAN and nothing answered, the one case where it is the likely cause.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from wire.discovery import FoundHub, LanAddress
from wire.messages import PROTOCOL_VERSION

NO_HUB = "no hub answers on the LAN"
MANUAL = 'set hub = "ws://HOST:PORT"'


def same_name(a: str, b: str) -> bool:
    """DNS-SD instance names compare without regard to case."""
    return a.casefold() == b.casefold()


def choose(found: Sequence[FoundHub], hub_name: str = "") -> FoundHub | None:
    """The hub to use, the same one whatever order the answers came in; None if none fits."""
    candidates = [hub for hub in found if not hub_name or same_name(hub.name, hub_name)]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda hub: (
            hub.protocol not in (None, PROTOCOL_VERSION),
            hub.name.casefold(),
            hub.name,
            hub.port,
            sorted(hub.addresses),
        ),
    )


def ordered_urls(hub: FoundHub, local: Sequence[LanAddress]) -> list[str]:
    """The hub's URLs in the order to try them: addresses on one of this station's subnets
    first, then the rest, link-local last; by address within each group, so every station on a
    network tries the same one first."""
    networks = [lan.network for lan in local]

    def rank(address: str) -> tuple[int, int]:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return 3, 0
        if any(ip in network for network in networks):
            return 0, int(ip)
        return (2 if ip.is_link_local else 1), int(ip)

    return [hub.url_at(address) for address in sorted(set(hub.addresses), key=rank)]


def found_line(chosen: FoundHub, url: str, found: Sequence[FoundHub]) -> str:
    """The console line naming the hub taken and the address reached, and the other hubs a maker
    might have meant."""
    line = f"Found the hub {chosen.name!r} at {url} on the LAN."
    others = sorted({hub.name for hub in found if hub.name != chosen.name}, key=str.casefold)
    if others:
        names = ", ".join(repr(name) for name in others)
        line += f" Other hubs answering: {names}; set hub_name to choose one of them."
    return line


def missing_reason(
    hub_name: str, local: Sequence[LanAddress], answered: Sequence[FoundHub] = ()
) -> str:
    """Why no hub could be chosen, with what was tried and what to do: one line's worth."""
    if not local:
        return (
            "this station has no network address yet (is the cable in, or the Wi-Fi joined?); "
            "looking again once it has one"
        )
    where = ", ".join(str(lan) for lan in local)
    if hub_name and answered:
        names = ", ".join(sorted({repr(hub.name) for hub in answered}, key=str.casefold))
        return (
            f"no hub named {hub_name!r} answers on {where}, only {names}; check hub_name "
            "against the hub's [discovery] name"
        )
    what = f"no hub named {hub_name!r}" if hub_name else "no hub"
    return (
        f"{what} answers on the LAN (mDNS) on {where}; is the hub running, on this network? "
        f"If it is, this network may block multicast (some guest Wi-Fi does): {MANUAL}"
    )


def unreachable_reason(chosen: FoundHub, tried: Sequence[tuple[str, str]]) -> str:
    """The hub answered on the LAN but none of its addresses could be reached: each, and why."""
    each = "; ".join(why if url in why else f"{url}: {why}" for url, why in tried)
    return (
        f"the hub {chosen.name!r} answers on the LAN but cannot be reached at any address it "
        f"announced ({each}); a firewall or client isolation may be in the way"
    )


def tls_mismatch_reason(chosen: FoundHub) -> str:
    """A station given a CA file expects TLS: connecting to a plain hub would quietly drop it."""
    return (
        f"the hub {chosen.name!r} does not use TLS, but this station has a cafile; give the hub "
        "a certificate ([security] in hub.toml) or remove cafile from this station"
    )
