"""A GPIO station against a real hub: button pin to press, LED pin history to pattern.

gpiozero's MockFactory stands in for the Pi's pins; everything else is real: the node object, the
``buzzer-hub`` process and the WebSocket over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from firmware.node import LedPattern, Pressed, Released, Resulted, RoundChanged
from hub import ctl
from tests.conftest import HOST_TOKEN
from tests.support.buttons import click as press_button
from wire.codec import as_data

HOST_MODE = "[round]\nrelease_lead_ms = 0\nhostless = false\n"
F, T = False, True


async def synced(hub: Any, node_id: str) -> None:
    """The hub can place this node's presses and release in its clock from now on."""
    await asyncio.to_thread(hub.wait_for_log, rf"node {node_id} synced")


async def host(hub: Any, command: str) -> dict[str, Any]:
    return as_data(await ctl.run(hub.url, HOST_TOKEN, command))


async def click(pins: Any, name: str, node: Any) -> None:
    """Press a button wired to ground until ``node`` has taken the press, then let go."""
    await press_button(pins.pin(name), node)


def levels(pins: Any, name: str) -> list[bool]:
    return [bool(state.state) for state in pins.pin(name).states]


def entries_for(state: dict[str, Any], player: str) -> list[dict[str, Any]]:
    round_ = state["round"]
    return [o for o in round_["results"] + round_["refused"] if o["player"] == player]


async def test_led_shows_first_place_solid_and_second_place_as_two_blinks(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    hub = start_hub(config=HOST_MODE)
    alice = await start_node(
        hub.url, "alice", button_pin="GPIO17", led_pin="GPIO27", buzzer_pin="GPIO22"
    )
    bob = await start_node(hub.url, "bob", button_pin="GPIO5", led_pin="GPIO6", buzzer_pin="GPIO23")
    await synced(hub, "alice")
    await synced(hub, "bob")
    await host(hub, "arm")
    await alice.wait_for(Released)
    await bob.wait_for(Released)

    await click(mock_pins, "GPIO17", alice)
    first = (await alice.wait_for(Resulted)).result
    await bob.wait_for(RoundChanged, lambda e: e.update.state == "decided")
    await click(mock_pins, "GPIO5", bob)
    second = (await bob.wait_for(Resulted)).result
    await bob.wait_for(LedPattern, lambda e: e.name == "rank-2:done")
    await alice.wait_for(LedPattern, lambda e: e.name == "buzzer:beeps:done")

    assert (first.rank, second.rank) == (1, 2)
    assert first.text.startswith("First place!")
    assert second.behind_ns is not None
    assert second.behind_ns > 0
    # off, lit at the release, flicker for the press, then solid for the win
    assert levels(mock_pins, "GPIO27") == [F, T, F, T]
    assert alice.feedback.pattern.name == "on"
    # off, lit at the release, off once Alice won, flicker for the press, then two blinks
    assert levels(mock_pins, "GPIO6") == [F, T, F, T, F, T, F, T, F]
    # the buzzer beeps three times for first place only
    assert levels(mock_pins, "GPIO22") == [F, T, F, T, F, T, F]
    assert levels(mock_pins, "GPIO23") == [F]


async def test_led_fast_blinks_after_an_early_press_and_stays_locked_out(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    hub = start_hub(config=HOST_MODE)
    carol = await start_node(hub.url, "carol", button_pin="GPIO13", led_pin="GPIO19")
    await synced(hub, "carol")

    await click(mock_pins, "GPIO13", carol)  # the round is not armed yet
    result = (await carol.wait_for(Resulted)).result
    mark = 0
    for _ in range(3):
        await carol.wait_for(LedPattern, lambda e: e.name == "fast-blink:cycle", after=mark)
        mark = carol.mark()

    assert "early" in result.flags
    assert result.text.startswith("Too early!")
    states = mock_pins.pin("GPIO19").states
    assert levels(mock_pins, "GPIO19")[:9] == [F, T, F, T, F, T, F, T, F]
    # fast: tens of milliseconds per level, nothing like the 1.4 s unreachable heartbeat
    assert all(state.timestamp < 0.5 for state in states[4:9])

    mark = carol.mark()
    await host(hub, "arm")
    update = (await carol.wait_for(RoundChanged, after=mark)).update
    assert update.state == "armed"
    assert update.locked_out
    assert carol.feedback.pattern.name == "fast-blink"


async def test_a_bounce_storm_is_one_press(start_hub: Any, start_node: Any, mock_pins: Any) -> None:
    hub = start_hub(config=HOST_MODE)
    dave = await start_node(hub.url, "dave", button_pin="GPIO17", led_pin="")
    await synced(hub, "dave")
    await host(hub, "arm")
    await dave.wait_for(Released)

    mark = dave.mark()
    button = mock_pins.pin("GPIO17")
    for _ in range(50):  # 100 edges in a few milliseconds, then held down
        button.drive_low()
        button.drive_high()
    await press_button(button, dave)
    result = (await dave.wait_for(Resulted, after=mark)).result
    presses = [e for e in dave.events(mark) if isinstance(e, Pressed)]
    state = await host(hub, "status")

    assert [s.state for s in button.states[-102:]] == [F, T] * 51  # the storm reached the pin
    assert len(presses) == 1
    assert result.rank == 1
    assert [e["press_id"] for e in entries_for(state, "dave")] == [presses[0].press_id]


async def test_nodes_with_offset_clocks_light_at_the_release_and_time_presses_right(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    """Everything a node stamps comes from its one injectable clock; the hub's sync absorbs any
    offset, so the release lands on time and reactions are measured in the right frame."""
    hub = start_hub(config="[round]\nrelease_lead_ms = 300\nhostless = false\n")
    ahead = await start_node(
        hub.url, "ahead", clock=lambda: time.monotonic_ns() + 3_000_000_000, led_pin=""
    )
    behind = await start_node(
        hub.url,
        "behind",
        clock=lambda: time.monotonic_ns() - 2_000_000_000,
        button_pin="GPIO5",
        led_pin="",
    )
    await synced(hub, "ahead")
    await synced(hub, "behind")
    await host(hub, "arm")
    released = [await ahead.wait_for(Released), await behind.wait_for(Released)]
    await click(mock_pins, "GPIO5", behind)
    await click(mock_pins, "GPIO17", ahead)
    results = [(await node.wait_for(Resulted)).result for node in (behind, ahead)]

    for release in released:
        assert release.synced
        # Lit at the instant in its own frame, not 2 or 3 s off by a clock's offset. How soon
        # after is the loop's timing, not a check: on a starved machine (both cores kept busy)
        # a node once lit 105 ms late, past the 50 ms this once asked.
        assert 0 <= release.late_ns < 1_000_000_000
    for result in results:
        assert result.rank is not None
        assert "early" not in result.flags
        assert result.reaction_ns is not None
        assert 0 <= result.reaction_ns < 1_000_000_000
