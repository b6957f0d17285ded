"""A hand on a mock GPIO button: down, held until the node has taken the press, then up.

A node counts a press once the line has stayed active for its ``confirm_ms`` (a shorter blip is a
glitch and is ignored, as interference on a real cable must be). Driving a pin low and at once
high again makes exactly such a blip, so a test holds the button until the node reports the
press, as a player's finger does for tens of milliseconds.
"""

from __future__ import annotations

from typing import Any


async def click(pin: Any, node: Any, timeout: float = 5.0) -> Any:
    """Press ``pin`` (wired to ground: pressed reads low) until ``node`` reports the press; let
    go; return the node's ``Pressed`` event."""
    from firmware.node import Pressed

    mark = node.mark()
    pin.drive_low()
    try:
        return await node.wait_for(Pressed, after=mark, timeout=timeout)
    finally:
        pin.drive_high()
