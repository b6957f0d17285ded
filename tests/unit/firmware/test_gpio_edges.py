"""A button is stamped at its first electrical edge: bounce never moves the stamp, a glitch is not
a press, and a held button bouncing on release is one press.

The pin is gpiozero's MockPin with edges at known instants, on a clock the test drives: the pin
driver's ticks (as lgpio's are: the kernel's instant of each edge, in the monotonic clock), the
node's clock (the same clock, ``OFFSET`` apart) and the moment the driver's callback runs (up to
``lag`` after the edge) are all chosen, so every stamp is checked to the nanosecond.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from firmware.config import GpioSection, NodeConfig, NodeSection
from firmware.inputs import GpioButton

MS = 1_000_000
US = 1_000
OFFSET = 123_456_789  # the node's clock reads this far ahead of the driver's monotonic ticks
START = 50_000 * MS  # the first edge of the scenario, in the driver's clock


class Clock:
    """What time it is, for the pin driver and (OFFSET apart) for the node."""

    def __init__(self) -> None:
        self.now_ns = START - 100 * MS

    def node(self) -> int:
        return self.now_ns + OFFSET


class ScriptedPin(MockPin):
    """A mock pin whose edges happen at given instants of the test's clock."""

    clock: Clock

    def edge_at(self, at_ns: int, pressed: bool, lag_ns: int = 0) -> None:
        """The line changes at ``at_ns``; the driver calls back ``lag_ns`` later (pull-up wiring:
        pressed reads low)."""
        self.clock.now_ns = max(self.clock.now_ns, at_ns + lag_ns)
        if self._state != (not pressed):  # a change of level (pressed reads low)
            self._state = not pressed
            self._last_change = at_ns / 1e9
            if self._when_changed is not None:
                self._call_when_changed()


class ScriptedFactory(MockFactory):
    def __init__(self, clock: Clock) -> None:
        super().__init__(pin_class=ScriptedPin)
        ScriptedPin.clock = clock
        self.clock = clock

    def ticks(self) -> float:  # type: ignore[override]
        return self.clock.now_ns / 1e9


class Button:
    """A GpioButton on a scripted pin, and the presses it hands to the node."""

    def __init__(self, confirm_ms: float = 1.0, guard_ms: float = 50.0) -> None:
        self.clock = Clock()
        self.factory = ScriptedFactory(self.clock)
        self.presses: list[int] = []
        self.pressed = asyncio.Event()
        config = NodeConfig(
            node=NodeSection(hub="ws://127.0.0.1:1", id="t", inputs=["gpio"]),
            gpio=GpioSection(button_pin="GPIO17", confirm_ms=confirm_ms, guard_ms=guard_ms),
        )
        loop = asyncio.get_running_loop()
        self.button = GpioButton(config, loop, self.clock.node, self._sink, self.factory)
        self.pin: ScriptedPin = self.factory.pin("GPIO17")

    def _sink(self, at_ns: int, kind: str) -> None:
        assert kind == "gpio"
        self.presses.append(at_ns - OFFSET)  # back in the driver's clock, to compare
        self.pressed.set()

    async def settle(self, until_ns: int) -> list[int]:
        """Let time reach ``until_ns`` (driver clock) and the node handle everything before it."""
        self.clock.now_ns = max(self.clock.now_ns, until_ns)
        handled = asyncio.Event()  # posted after every edge: set once they have all been handled
        asyncio.get_running_loop().call_soon_threadsafe(handled.set)
        await asyncio.wait_for(handled.wait(), 5)
        return self.presses

    async def next_press(self) -> int:
        self.pressed.clear()
        await asyncio.wait_for(self.pressed.wait(), 5)
        return self.presses[-1]

    def close(self) -> None:
        self.button.close()
        self.factory.close()


def bouncy_press(rng: random.Random, start: int, bounce_ns: int) -> list[tuple[int, bool]]:
    """Contact bounce: the line flips at random instants for ``bounce_ns``, then stays pressed."""
    edges = [(start, True)]
    t, pressed = start, True
    while True:
        t += rng.randrange(5 * US, 400 * US)
        if t >= start + bounce_ns:
            break
        pressed = not pressed
        edges.append((t, pressed))
    if not pressed:
        edges.append((t, True))
    return edges


@pytest.mark.parametrize("bounce_ms", [0, 0.5, 2, 5])
@pytest.mark.parametrize("lag_us", [0, 300, 3_000])
async def test_a_bouncing_press_is_stamped_at_its_first_edge(bounce_ms: float, lag_us: int) -> None:
    """0 to 5 ms of bounce, the driver's callbacks up to 3 ms late: the stamp is the first edge,
    whatever comes after it (the requirement is within 0.1 ms; here it is exact)."""
    rng = random.Random(round(bounce_ms * 10) + lag_us)
    button = Button()
    edges = bouncy_press(rng, START, round(bounce_ms * MS))
    for at, pressed in edges:
        button.pin.edge_at(at, pressed, lag_ns=lag_us * US)
    button.clock.now_ns = edges[-1][0] + 2 * MS
    stamp = await button.next_press()
    assert abs(stamp - START) <= 100 * US
    assert stamp == START
    assert button.presses == [START]  # and only one press, however many edges
    button.close()


async def test_glitches_of_20_us_are_not_presses() -> None:
    button = Button()
    for i in range(5):  # five glitches, 100 ms apart: interference on a long cable
        glitch = START + i * 100 * MS
        button.pin.edge_at(glitch, True)
        button.pin.edge_at(glitch + 20 * US, False)
        await button.settle(glitch + 50 * MS)
    assert button.presses == []
    real = START + 600 * MS  # a real press after them counts, stamped at its own edge
    button.pin.edge_at(real, True)
    button.clock.now_ns = real + 2 * MS
    assert await button.next_press() == real
    assert button.presses == [real]
    button.close()


async def test_a_held_button_bouncing_on_release_is_one_press() -> None:
    rng = random.Random(3)
    button = Button()
    for at, pressed in bouncy_press(rng, START, 3 * MS):
        button.pin.edge_at(at, pressed)
    button.clock.now_ns = START + 5 * MS
    assert await button.next_press() == START
    release = START + 800 * MS  # held for most of a second, then let go, bouncing for 5 ms
    t, pressed = release, False
    button.pin.edge_at(t, pressed)
    while t < release + 5 * MS:
        t += rng.randrange(20 * US, 300 * US)
        pressed = not pressed
        button.pin.edge_at(t, pressed)
    button.pin.edge_at(t + 10 * US, False)
    await button.settle(release + 40 * MS)
    await button.settle(release + 400 * MS)
    assert button.presses == [START]
    again = release + 500 * MS  # the next real press counts
    button.pin.edge_at(again, True)
    button.clock.now_ns = again + 2 * MS
    assert await button.next_press() == again
    button.close()


async def test_a_press_counts_only_once_the_line_stayed_active_long_enough() -> None:
    """Active for 0.9 ms, a break, then active for good: confirmed only after a full stretch,
    and still stamped with the very first edge."""
    button = Button(confirm_ms=1.0)
    button.pin.edge_at(START, True)
    button.pin.edge_at(START + 900 * US, False)
    button.pin.edge_at(START + 950 * US, True)
    await button.settle(START + 1_500 * US)
    assert button.presses == []  # 0.55 ms of the second stretch: not yet
    button.clock.now_ns = START + 2 * MS
    assert await button.next_press() == START
    button.close()


def test_a_negative_confirmation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="confirm_ms"):
        GpioSection(confirm_ms=-1.0)


async def test_the_pin_driver_does_no_debounce_of_its_own() -> None:
    """A driver debounce reports the edge only once the line has settled, stamped that late."""
    button = Button()
    pin: Any = button.pin
    assert pin.bounce is None
    assert pin.edges == "both"
    button.close()
