"""Naming a found hub costs nothing: the record loads neither an event loop nor the mDNS stack.

The node's pure core and its tests use :class:`wire.discovery.FoundHub`; only the link and
``buzzer-hub find`` browse (:mod:`wire.browse`).
"""

from __future__ import annotations

from tests.unit.firmware.test_imports import among, loaded_after


def test_the_record_loads_no_event_loop_or_mdns_stack() -> None:
    loaded = loaded_after("wire.discovery", "firmware.discovery")
    assert {"wire.discovery", "firmware.discovery"} <= loaded
    assert among(loaded, ("asyncio", "zeroconf", "ifaddr", "socket")) == []


def test_the_browse_does_load_them() -> None:
    """The check above could fail: the browse module shows up with its stack."""
    loaded = loaded_after("wire.browse")
    assert {"asyncio", "zeroconf", "ifaddr"} <= set(
        among(loaded, ("asyncio", "zeroconf", "ifaddr"))
    )
