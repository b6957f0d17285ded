"""A station's inputs fail one at a time, and its keyboard is read with the kernel's stamps.

The keyboard's events come either from a virtual keyboard made with uinput (where the machine
has /dev/uinput) or from a recorded stream written into a FIFO that stands where the event
device would be: the bytes are the kernel's ``struct input_event`` records either way, and the
node reads them with the same code. A FIFO cannot switch its stamps to CLOCK_MONOTONIC, so the
recorded stamps are CLOCK_REALTIME, as a device's are before the node asks for the other clock.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.config import GpioSection, KeyboardSection, NodeConfig, NodeSection
from firmware.evdev import EV_KEY, EV_SYN, SYN_REPORT, encode
from firmware.node import (
    Connected,
    Disconnected,
    InputProblem,
    LedPattern,
    Node,
    Pressed,
    Released,
    Resulted,
)
from hub import ctl
from tests.conftest import HOST_TOKEN, console_script
from tests.support.buttons import click
from tests.support.nodes import RunningNodes

SPACE = 57
MS = 1_000_000
HOST_MODE = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


@pytest.fixture
async def station(mock_pins: Any) -> AsyncIterator[Callable[..., Node]]:
    """Nodes with the given inputs and keyboard folder; stopped after the test."""
    nodes = RunningNodes()

    def start(url: str, inputs: list[str], input_dir: Path, lines: list[str]) -> Node:
        config = NodeConfig(
            node=NodeSection(hub=url, id="box", inputs=inputs),
            gpio=GpioSection(button_pin="GPIO17", led_pin="GPIO27"),
            keyboard=KeyboardSection(input_dir=str(input_dir)),
        )
        return nodes.start(config, console=lines.append)

    yield start
    await nodes.stop_all()


async def test_a_station_whose_keyboard_fails_keeps_its_button(
    start_hub: Any, station: Any, mock_pins: Any, tmp_path: Path
) -> None:
    hub = start_hub(config=HOST_MODE)
    lines: list[str] = []
    node = station(hub.url, ["gpio", "keyboard"], tmp_path, lines)  # no keyboard, no terminal
    await node.wait_for(Connected)
    # The LED says something is wrong while idle: three short flashes, over and over.
    await node.wait_for(LedPattern, lambda e: e.name == "setup-error:cycle")
    [problem] = [line for line in lines if line.startswith("Input problem:")]
    assert problem == (
        f"Input problem: no spacebar to read: no keyboard input device readable in {tmp_path}, "
        "and standard input is not a terminal; run the node in a terminal, add its user to the "
        "input group, or use --input gpio. Playing on with: gpio."
    )

    mark = node.mark()
    await ctl.run(hub.url, HOST_TOKEN, "arm")
    await node.wait_for(Released, after=mark)
    pressed = await click(mock_pins.pin("GPIO17"), node)
    result = await node.wait_for(Resulted, after=mark)
    assert result.result.rank == 1
    assert pressed.source == "gpio"


def test_under_the_service_a_keyboard_without_root_or_terminal_leaves_the_button_playing(
    start_hub: Any, tmp_path: Path
) -> None:
    """The unit's case: stdin is /dev/null and no keyboard is readable. The node used to exit 2
    (and systemd restarted it every second); now it plays with its button."""
    hub = start_hub(config=HOST_MODE)
    config = tmp_path / "node.toml"
    config.write_text(f'[keyboard]\ninput_dir = "{tmp_path}"\n')
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
    args = ["--hub", hub.url, "--id", "box", "--input", "gpio,keyboard", "--config", str(config)]
    proc = subprocess.Popen(
        [console_script("buzzer-node"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        hub.wait_for_log(r"node box \(box, gpio\) joined from 127\.0\.0\.1:", timeout=20)
        assert proc.poll() is None
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Input problem: no spacebar to read:" in output
    assert "Traceback" not in output


@pytest.fixture
def recorded_device(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO named like an event device, and its write end (held open, so the node reading it
    never sees an end of file until the test closes it)."""
    folder = tmp_path / "input"
    folder.mkdir()
    fifo = folder / "event0"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        yield folder, writer
    finally:
        with contextlib.suppress(OSError):  # the test may have closed it: a keyboard pulled
            os.close(writer)


async def test_a_key_press_is_stamped_when_the_kernel_saw_it_not_when_it_was_read(
    start_hub: Any, station: Any, recorded_device: tuple[Path, int]
) -> None:
    folder, writer = recorded_device
    hub = start_hub(config=HOST_MODE)
    lines: list[str] = []
    node = station(hub.url, ["keyboard"], folder, lines)
    await node.wait_for(Connected)
    assert "Press space to buzz (keyboard: event0 (event0))." in lines

    # The press happened 300 ms ago (the stamps are the kernel's, in CLOCK_REALTIME here); the
    # node reads it only now.
    seen_real, seen_mono = time.time_ns(), time.monotonic_ns()
    stamp = seen_real - 300 * MS
    mark = node.mark()
    os.write(
        writer,
        encode(
            [
                (stamp, EV_KEY, SPACE, 1),
                (stamp, EV_SYN, SYN_REPORT, 0),
                (stamp + 80 * MS, EV_KEY, SPACE, 0),
                (stamp + 80 * MS, EV_SYN, SYN_REPORT, 0),
            ]
        ),
    )
    pressed = await node.wait_for(Pressed, after=mark)
    assert pressed.source == "keyboard"
    # In the node's clock: 300 ms before it was written, to within the two clock reads.
    assert abs(pressed.at_ns - (seen_mono - 300 * MS)) < 5 * MS

    # The keyboard goes away: said, and the LED will show the setup problem once the early
    # press's lockout is over (the round's patterns come first); the node runs on.
    mark = node.mark()
    os.close(writer)
    lost = await node.wait_for(InputProblem, after=mark)
    assert lost.line == "Keyboard event0 (event0) unplugged."
    assert lost.line in lines
    assert node.state.look(time.monotonic_ns()).setup_problem
    assert not any(isinstance(e, Disconnected) for e in node.events(mark))
