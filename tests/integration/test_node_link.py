"""The station's link to a real hub in this event loop: when a press is written.

A press is written to the socket as it is made, in the same turn of the loop: a press waiting a
turn behind whatever else was ready (the LED's flicker) counts in how long every round must wait
for presses in flight. The hub serves in the test's own loop, so its side of the connection can
be looked at while the loop is held: whatever the kernel has for it then was written at once.
"""

from __future__ import annotations

import asyncio
import select
import time
from typing import Any

from firmware.node import Node, Pressed, Resulted
from hub.core.events import Synced
from hub.embed import RunningHub


def hub_side(hub: RunningHub, node: Node) -> int:
    """The file descriptor of the hub's end of ``node``'s connection."""
    ws = node.link._open
    assert ws is not None
    ours = ws.transport.get_extra_info("socket").getsockname()
    for conn in hub.server._links.values():
        theirs = conn.transport.get_extra_info("socket")
        if theirs.getpeername() == ours:
            return int(theirs.fileno())
    raise AssertionError("the hub has no connection from this node")


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


async def test_a_press_is_written_in_the_same_turn_of_the_loop_as_it_is_made(
    run_hub: Any, start_node: Any
) -> None:
    # A stall of this busy machine between the write and the read must not clamp the press.
    hub = await run_hub("[trust]\nallowance_ms = 400\n", memory_only=True)
    node = await start_node(hub.url, "alice")
    await hub.events.wait_for(Synced, lambda e: e.player == "alice")
    peer = hub_side(hub, node)
    for _ in range(1000):  # the hub reads what was written so far (a sync reply, a pong)
        if not readable(peer, 0):
            break
        await asyncio.sleep(0)
    assert not readable(peer, 0)
    mark = node.mark()
    # As the button's edge calls it once confirmed, here 2 ms after the edge.
    node.press(time.monotonic_ns() - 2_000_000, "gpio")
    assert readable(peer, 5.0)  # and the loop has not turned since: it was written at once
    pressed = await node.wait_for(Pressed, after=mark)
    # The hub read it and answered it (early or not: the round does not matter here), and
    # knows from the frame how long the press spent on the station.
    await node.wait_for(Resulted, lambda e: e.result.press_id == pressed.press_id, after=mark)
    alice = hub.core.roster.get("alice")
    assert alice is not None
    lead = alice.press_leads.high_ns(time.monotonic_ns())
    assert lead is not None
    assert 2_000_000 <= lead < 400_000_000


async def test_a_button_station_tells_the_hub_how_long_its_presses_take_to_count(
    run_hub: Any, start_node: Any
) -> None:
    """A press counts once the line stayed active ``confirm_ms``, so it leaves that long after
    its edge at least: the hub waits that much longer for it."""
    hub = await run_hub(memory_only=True)
    await start_node(hub.url, "button", confirm_ms=3.5)
    await hub.events.wait_for(Synced, lambda e: e.player == "button")
    button = hub.core.roster.get("button")
    assert button is not None
    assert button.press_lead_ns == 3_500_000
