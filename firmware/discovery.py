"""How a node configured with ``hub = "auto"`` picks its hub from the ones announced on the LAN.

The browsing itself is :func:`wire.discovery.find_hubs`, run by the link
(:mod:`firmware.link`), so the service type and the record format live in one place for both
sides. What is decided here, without any socket, is the node's policy:

- A configured ``hub_name`` wins: only the hub announced under that name is used, and the browse
  returns as soon as it answers.
- Otherwise, when several hubs answer (two events in one school hall), the choice must not depend
  on which answered a few ms sooner, or stations would split between hubs at random. The node
  listens a short while after the first answer and takes the first by name (then address and
  port), preferring hubs that speak this node's protocol version, and says which it took.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wire.messages import PROTOCOL_VERSION

if TYPE_CHECKING:  # the record only; importing wire.discovery would load the mDNS stack
    from wire.discovery import FoundHub

NO_HUB = "no hub answers on the LAN"


def same_name(a: str, b: str) -> bool:
    """DNS-SD instance names compare without regard to case."""
    return a.casefold() == b.casefold()


def choose(found: list[FoundHub], hub_name: str = "") -> FoundHub | None:
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
            hub.address,
            hub.port,
        ),
    )


def found_line(chosen: FoundHub, found: list[FoundHub]) -> str:
    """The console line naming the hub taken, and the others a maker might have meant."""
    line = f"Found the hub {chosen.name!r} at {chosen.url} on the LAN."
    others = sorted({hub.name for hub in found if hub.url != chosen.url}, key=str.casefold)
    if others:
        names = ", ".join(repr(name) for name in others)
        line += f" Other hubs answering: {names}; set hub_name to choose one of them."
    return line


def missing_line(hub_name: str) -> str:
    """The one line shown while no hub is found, with what to do if it lasts."""
    what = f"no hub named {hub_name!r}" if hub_name else "no hub"
    return (
        f"Hub unreachable: {what} answers on the LAN (mDNS); still looking. If this lasts, is the "
        'hub running? Multicast may be blocked on this network: set hub = "ws://HOST:PORT".'
    )
