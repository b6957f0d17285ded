"""The keyboard input against a real kernel input device: a virtual keyboard made with uinput.

Where the machine has ``/dev/uinput`` (the kernel's CONFIG_INPUT_UINPUT, as on Raspberry Pi OS),
the test creates a keyboard with a space key, presses it, and checks that the node stamps the
press with the kernel's CLOCK_MONOTONIC time: between the moment the test wrote the event and
the moment the node logged it. Elsewhere it is skipped; the recorded streams of
test_node_inputs.py and tests/unit/firmware/test_evdev.py cover the same code without a kernel
device.

uinput's interface (linux/uinput.h): set the event types and keys with ``UI_SET_EVBIT`` and
``UI_SET_KEYBIT``, describe the device with ``UI_DEV_SETUP`` (``struct uinput_setup``: a
``struct input_id`` of four u16, an 80-byte name, a u32), create it with ``UI_DEV_CREATE``, then
write ``struct input_event`` records to it; the kernel stamps them itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.config import KeyboardSection, NodeConfig, NodeSection
from firmware.evdev import EV_KEY, EV_SYN, SYN_REPORT, encode
from firmware.node import Connected, Pressed
from tests.support.nodes import RunningNodes

UINPUT = Path("/dev/uinput")
SPACE = 57
NAME = b"buzzer-beater test keyboard"
SETUP = struct.Struct("HHHH80sI")


def _ioc(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("U") << 8) | number


UI_DEV_CREATE = _ioc(0, 1, 0)
UI_DEV_DESTROY = _ioc(0, 2, 0)
UI_DEV_SETUP = _ioc(1, 3, SETUP.size)
UI_SET_EVBIT = _ioc(1, 100, struct.calcsize("i"))
UI_SET_KEYBIT = _ioc(1, 101, struct.calcsize("i"))


def kernel_built_without_uinput() -> bool:
    """Whether this kernel's own configuration says it has no uinput at all (then no setup of
    the machine can give it one); False where the configuration cannot be read."""
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{os.uname().release}")):
        try:
            with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as config:
                text = config.read()
        except OSError:
            continue
        return "CONFIG_INPUT_UINPUT=" not in text
    return False


@pytest.fixture
def virtual_keyboard(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A uinput keyboard with a space key, and a folder holding only its event device.

    Skipped where none can be made; under CI only where the kernel itself has no uinput (a
    missing module or a permission is CI's to fix, so there it fails)."""
    if not os.access(UINPUT, os.W_OK):
        if kernel_built_without_uinput():
            pytest.skip("this kernel is built without uinput (CONFIG_INPUT_UINPUT is not set)")
        why = f"no writable {UINPUT} (load the uinput module, or run as a user who may write it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI must run the virtual keyboard test")
        pytest.skip(why)
    fd = os.open(UINPUT, os.O_WRONLY | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, UI_SET_EVBIT, EV_KEY)
        fcntl.ioctl(fd, UI_SET_KEYBIT, SPACE)
        fcntl.ioctl(fd, UI_DEV_SETUP, SETUP.pack(0x03, 0x1209, 0x0001, 1, NAME, 0))
        fcntl.ioctl(fd, UI_DEV_CREATE)
        folder = tmp_path / "input"
        folder.mkdir()
        (folder / "event0").symlink_to(_event_device(NAME.decode()))
        yield fd, folder
    finally:
        fcntl.ioctl(fd, UI_DEV_DESTROY)
        os.close(fd)


def _event_device(name: str, timeout: float = 5.0) -> Path:
    """The /dev/input/eventN of the input device called ``name``, once the kernel made it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for device in Path("/sys/class/input").glob("input*"):
            try:
                if (device / "name").read_text().strip() != name:
                    continue
            except OSError:
                continue
            for event in device.glob("event*"):
                path = Path("/dev/input") / event.name
                if path.exists():
                    return path
        time.sleep(0.01)  # the kernel and devtmpfs are making the device: nothing to wait on
    raise AssertionError(f"no event device for {name!r} within {timeout} s")


async def test_a_virtual_keyboards_press_is_stamped_in_the_kernels_monotonic_clock(
    start_hub: Any, mock_pins: Any, virtual_keyboard: tuple[int, Path]
) -> None:
    fd, folder = virtual_keyboard
    hub = start_hub()
    nodes = RunningNodes()
    config = NodeConfig(
        node=NodeSection(hub=hub.url, id="kbd", inputs=["keyboard"]),
        keyboard=KeyboardSection(input_dir=str(folder)),
    )
    lines: list[str] = []
    node = nodes.start(config, console=lines.append)
    try:
        await node.wait_for(Connected)
        assert any(NAME.decode() in line for line in lines)
        mark = node.mark()
        before = time.monotonic_ns()
        os.write(fd, encode([(0, EV_KEY, SPACE, 1), (0, EV_SYN, SYN_REPORT, 0)]))
        os.write(fd, encode([(0, EV_KEY, SPACE, 0), (0, EV_SYN, SYN_REPORT, 0)]))
        pressed = await node.wait_for(Pressed, after=mark)
        after = time.monotonic_ns()
        assert pressed.source == "keyboard"
        assert before <= pressed.at_ns <= after
    finally:
        await asyncio.wait_for(nodes.stop_all(), 10)
