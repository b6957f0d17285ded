"""``buzzer-node test-wiring`` on gpiozero's mock pins, and the one-line errors of pins that fail.

The mock pins record every level they take, so the test sees the LED lit and the buzzer sounded,
and drives the button's pin itself: a bouncy press is five edges within a millisecond.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from firmware.config import GpioSection, NodeConfig
from firmware.pins import PinSetupError, describe, open_device
from firmware.wiring import BounceCounter, check_wiring
from tests.conftest import console_script

MS = 1_000_000


class Console:
    """Lines said, and a wait for one that starts with some text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._said = asyncio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._said.set()

    async def wait_for(self, start: str, count: int = 1) -> list[str]:
        async with asyncio.timeout(10):
            while len(found := [line for line in self.lines if line.startswith(start)]) < count:
                self._said.clear()
                await self._said.wait()
        return found


def levels(pins: Any, name: str) -> list[bool]:
    return [bool(state.state) for state in pins.pin(name).states]


async def test_it_reports_lights_beeps_and_prints_each_edge_with_its_bounces(
    mock_pins: Any,
) -> None:
    config = NodeConfig(
        gpio=GpioSection(
            button_pin="GPIO17", led_pin="GPIO27", buzzer_pin="GPIO22", buzzer_active_high=False
        )
    )
    console, stop = Console(), asyncio.Event()
    task = asyncio.create_task(check_wiring(config, console, stop=stop))
    await console.wait_for("Press the button on GPIO17 (to ground)")

    button = mock_pins.pin("GPIO17")
    for _ in range(2):  # a press that bounces twice, then a clean release
        button.drive_low()
        button.drive_high()
    button.drive_low()
    await console.wait_for("edge ", count=5)
    stop.set()
    assert await task == 0

    assert console.lines[0] == (
        "GPIO library: gpiozero's mock pins (GPIOZERO_PIN_FACTORY=mock): nothing is wired."
    )
    assert console.lines[1].startswith("Running as ")
    assert any(line.startswith("GPIO chips: ") for line in console.lines)
    assert levels(mock_pins, "GPIO27") == [False, True, False]  # the LED lit, then off
    # A low-level-trigger buzzer: from the pin's first (undriven) level, quiet (high) as soon as
    # it is set up, low for the beep, quiet again.
    assert levels(mock_pins, "GPIO22")[1:] == [True, False, True]
    assert "Buzzer on GPIO22, sounding while low (buzzer_active_high = false): one beep." in (
        console.lines
    )
    edges = [line for line in console.lines if line.startswith("edge ")]
    assert [line.split(":")[1].split()[0] for line in edges] == [
        "pressed",
        "released",
        "pressed",
        "released",
        "pressed",
    ]
    assert "bounce" not in edges[0]  # the first edge of a press
    assert edges[4].endswith("bounce 4")
    assert console.lines[-1] == "5 edge(s) in 1 burst(s)."


def test_bounces_are_counted_per_press_with_exact_times() -> None:
    counter = BounceCounter(quiet_ns=50 * MS)
    t = 1_000 * MS
    assert counter.edge(t, True) == "edge 1: pressed at 1.000000 s"
    assert counter.edge(t + 300_000, False) == (
        "edge 2: released at 1.000300 s, +0.300 ms, bounce 1"
    )
    assert counter.edge(t + 49 * MS, True).endswith("+49.000 ms, bounce 2")
    # Quiet for 50 ms since the last edge: the release is a burst of its own.
    assert counter.edge(t + 99 * MS, False) == "edge 4: released at 1.099000 s"
    assert counter.summary() == "4 edge(s) in 2 burst(s)."


async def test_a_pin_that_cannot_be_used_ends_it_with_one_line(mock_pins: Any) -> None:
    config = NodeConfig(gpio=GpioSection(button_pin="GPIO17", led_pin="GPIO17"))
    console = Console()
    assert await check_wiring(config, console, seconds=5) == 2
    assert console.lines[-1] == (
        "buzzer-node test-wiring: cannot use the LED on pin GPIO17: this station already uses "
        "that pin for something else"
    )


class BusyError(Exception):
    """What lgpio raises for a pin another program holds: ``lgpio.error('GPIO busy')``."""


def test_a_busy_pin_is_one_line_not_a_traceback(mock_pins: Any) -> None:
    def claim() -> None:
        raise BusyError("'GPIO busy'")

    with pytest.raises(PinSetupError) as caught:
        open_device("button", "GPIO17", claim)
    assert str(caught.value) == (
        "cannot use the button on pin GPIO17: the pin is busy, held by another program (another "
        "buzzer-node, or a service using the same pin); stop it, or set another pin"
    )


def test_when_no_pin_library_loads_the_reasons_are_shown() -> None:
    from gpiozero.exc import BadPinFactory

    line = describe(
        "button",
        "GPIO17",
        BadPinFactory("Unable to load any default pin factory!"),
        ["lgpio: No module named 'lgpio'", "native: unable to determine the Pi's revision"],
    )
    assert line.startswith(
        "cannot use the button on pin GPIO17: no GPIO library works here (lgpio: No module named "
        "'lgpio'; native: unable to determine the Pi's revision);"
    )
    assert "Unable to load any default pin factory" not in line


def test_the_real_pin_stacks_failure_reaches_the_console() -> None:
    """On this machine no pin library loads: the node says which and why, in one line."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # no GPIOZERO_PIN_FACTORY: the real search
    done = subprocess.run(
        [console_script("buzzer-node"), "test-wiring", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode == 0:
        pytest.skip(f"a pin library works on this machine ({sys.platform}): nothing to report")
    assert done.returncode == 2
    assert "no GPIO library works here (lgpio: " in output
    assert "Traceback" not in output
