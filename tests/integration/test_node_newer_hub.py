"""A newer hub does not break the node: fields it does not know, at any depth, are ignored.

A real ``buzzer-hub`` process, a real node with mock GPIO pins, and between them a proxy that adds
a field to every object of every message the hub sends (tests/support/field_proxy.py), as a hub
of a later protocol version might.
"""

from __future__ import annotations

from typing import Any

from firmware.node import (
    Acked,
    Connected,
    HubSaid,
    LedPattern,
    Released,
    Resulted,
    RoundChanged,
    SyncAnswered,
)
from tests.conftest import HOST_TOKEN
from tests.support.buttons import click
from tests.support.field_proxy import FieldInjectingProxy
from wire.enums import Phase

HOST_MODE = "[round]\nrelease_lead_ms = 300\nhostless = false\n"
F, T = False, True


async def test_a_node_plays_a_whole_round_against_a_hub_that_adds_fields_everywhere(
    start_hub: Any, start_node: Any, client_factory: Any, mock_pins: Any
) -> None:
    hub = start_hub(config=HOST_MODE)
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("welcome")
    lines: list[str] = []
    async with FieldInjectingProxy(hub.url) as proxy:
        node = await start_node(
            proxy.url, "nova", button_pin="GPIO17", led_pin="GPIO27", console=lines.append
        )
        connected = await node.wait_for(Connected)
        await node.wait_for(SyncAnswered)
        await node.wait_for(RoundChanged, lambda e: e.update.synced)  # the hub can place it now

        await host.send(type="arm")
        released = await node.wait_for(Released)
        mark = node.mark()
        pressed = await click(mock_pins.pin("GPIO17"), node)
        result = (await node.wait_for(Resulted, after=mark)).result
        await node.wait_for(Acked, lambda e: e.press_id == pressed.press_id, after=mark)
        decided = await node.wait_for(
            RoundChanged, lambda e: e.update.state is Phase.DECIDED, after=mark
        )
        await node.wait_for(LedPattern, lambda e: e.name == "on", after=mark)
        led = [bool(state.state) for state in mock_pins.pin("GPIO27").states]
        pattern = node.feedback.pattern
        frames = list(proxy.frames)

    # The hub really was "newer", at every depth of every kind of message the round used.
    kinds = {frame["type"] for frame in frames}
    assert {"welcome", "sync", "round", "ack", "result"} <= kinds
    assert all(frame["x_future"] == 1 for frame in frames)
    assert all(frame["round"]["x_future"] == 1 for frame in frames if frame["type"] == "welcome")

    # ...and the node played the round as with any hub.
    assert connected.round is not None
    assert connected.round.number == 0
    assert released.synced
    assert result.press_id == pressed.press_id
    assert result.rank == 1
    assert result.text.startswith("First place!")
    assert decided.update.winner == "nova"
    assert not any("does not understand" in line for line in lines)
    assert not any(isinstance(event, HubSaid) for event in node.events())
    # off, lit at the release, flicker for the press, then solid for first place
    assert led == [F, T, F, T]
    assert pattern.name == "on"
