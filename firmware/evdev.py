"""A keyboard key read straight from Linux's input event devices, with the kernel's timestamps.

Why not the ``keyboard`` package: on Linux it needs root, and it stamps a key when its own thread
gets round to it. Why not the ``evdev`` package: it is published as source only (no wheels for a
Pi's aarch64 or armv7l), so installing it needs a compiler and kernel headers on every station,
and the offline install from a wheelhouse could not carry it. What the node needs of evdev is
small and stable kernel ABI, read here with the standard library:

- ``/dev/input/eventN`` yields ``struct input_event`` records: a ``struct timeval`` (two native
  longs: seconds and microseconds), ``__u16 type``, ``__u16 code``, ``__s32 value``; 24 bytes on
  64-bit systems, 16 on 32-bit ones (linux/input.h). A 32-bit userland on a 64-bit kernel gets
  the 32-bit layout.
- Key events have type ``EV_KEY`` and value 1 (down), 0 (up) or 2 (auto-repeat). ``EV_SYN``
  ``SYN_REPORT`` ends each packet; ``SYN_DROPPED`` says the kernel's buffer overflowed, and the
  events up to the next ``SYN_REPORT`` are to be ignored.
- The timestamps are ``CLOCK_REALTIME`` unless the reader asks otherwise with the
  ``EVIOCSCLOCKID`` ioctl (``_IOW('E', 0xa0, int)``), which this module does, for
  ``CLOCK_MONOTONIC``: the node's clock, which NTP never steps.
- ``EVIOCGBIT(EV_KEY, len)`` gives the keys a device has, so only keyboards with the configured
  key are read (not the power button or a mouse); ``EVIOCGNAME`` its name, for the console.

Reading needs no root: the devices belong to the ``input`` group, which the node's systemd unit
gives the node. The stamp of a press is the kernel's, taken when the key's interrupt arrived, so
how long the event loop took to get to it does not count; it is carried into the node's clock by
the age of the event (now minus the stamp, in the stamp's clock).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.handoff import Clock, Handoff, PressSink

#: struct input_event with native sizes and alignment: timeval (long, long), u16, u16, s32.
INPUT_EVENT: Final = struct.Struct("@llHHi")
EV_SYN: Final = 0x00
EV_KEY: Final = 0x01
SYN_REPORT: Final = 0
SYN_DROPPED: Final = 3
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
CLOCK_MONOTONIC: Final = 1
KEY_MAX: Final = 0x2FF

# ioctl request numbers, as linux/ioctl.h builds them: direction, size, type and number.
_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("E") << 8) | number


EVIOCSCLOCKID: Final = _ioc(_IOC_WRITE, 0xA0, struct.calcsize("i"))


def eviocgbit(event_type: int, length: int) -> int:
    return _ioc(_IOC_READ, 0x20 + event_type, length)


def eviocgname(length: int) -> int:
    return _ioc(_IOC_READ, 0x06, length)


#: Key names as the keyboard package spells them (``[keyboard] key``), to Linux key codes
#: (linux/input-event-codes.h).
KEY_CODES: Final[dict[str, int]] = {
    "space": 57,
    "enter": 28,
    "tab": 15,
    **{ch: code for code, ch in enumerate("1234567890", start=2)},
    **{ch: code for code, ch in enumerate("qwertyuiop", start=16)},
    **{ch: code for code, ch in enumerate("asdfghjkl", start=30)},
    **{ch: code for code, ch in enumerate("zxcvbnm", start=44)},
}


class EvdevError(Exception):
    """No device to read the key from; the message says why, in a line a maker can act on."""


@dataclass(frozen=True, slots=True)
class KeyEdge:
    """The key went down (``active``) or up at ``at_ns``, in the clock of the device's stamps."""

    active: bool
    at_ns: int


class KeyDecoder:
    """Turns a device's bytes into edges of one key: pure, so recorded streams test it.

    Reads may end inside a record (the rest comes with the next read); auto-repeat is no edge;
    after ``SYN_DROPPED`` nothing counts until the next ``SYN_REPORT``, which then counts as a
    release (an up may have been lost, and the press guard must not wait for it forever).
    """

    def __init__(self, code: int, layout: struct.Struct = INPUT_EVENT) -> None:
        self.code = code
        self.layout = layout
        self._partial = b""
        self._dropping = False

    def feed(self, data: bytes) -> list[KeyEdge]:
        data = self._partial + data
        whole = len(data) - len(data) % self.layout.size
        self._partial = data[whole:]
        edges: list[KeyEdge] = []
        for sec, usec, kind, code, value in self.layout.iter_unpack(data[:whole]):
            at_ns = sec * 1_000_000_000 + usec * 1_000
            if kind == EV_SYN and code == SYN_DROPPED:
                self._dropping = True
            elif kind == EV_SYN and code == SYN_REPORT and self._dropping:
                self._dropping = False
                edges.append(KeyEdge(False, at_ns))
            elif (
                not self._dropping
                and kind == EV_KEY
                and code == self.code
                and value in (KEY_DOWN, KEY_UP)  # auto-repeat (2) is no edge
            ):
                edges.append(KeyEdge(value == KEY_DOWN, at_ns))
        return edges


def encode(edges: list[tuple[int, int, int, int]]) -> bytes:
    """Records ``(at_ns, type, code, value)`` as the kernel writes them (for tests and tools)."""
    return b"".join(
        INPUT_EVENT.pack(at // 1_000_000_000, at % 1_000_000_000 // 1_000, kind, code, value)
        for at, kind, code, value in edges
    )


def key_code(name: str) -> int:
    code = KEY_CODES.get(name.lower())
    if code is None:
        known = "space, enter, tab, a-z, 0-9"
        raise EvdevError(f"the key {name!r} is not one the keyboard input knows ({known})")
    return code


def has_key(fd: int, code: int) -> bool | None:
    """Whether the device has the key; None if it cannot say (not an input device)."""
    bits = array.array("B", bytes(KEY_MAX // 8 + 1))
    try:
        fcntl.ioctl(fd, eviocgbit(EV_KEY, len(bits)), bits, True)
    except OSError:
        return None
    return bool(bits[code // 8] & (1 << (code % 8)))


def device_name(fd: int) -> str:
    buffer = array.array("B", bytes(256))
    try:
        length = fcntl.ioctl(fd, eviocgname(len(buffer)), buffer, True)
    except OSError:
        return ""
    return buffer.tobytes()[: max(0, length - 1)].decode(errors="replace")


def monotonic_stamps(fd: int) -> bool:
    """Ask the kernel for CLOCK_MONOTONIC stamps on this open device; False if it refuses (then
    the stamps stay CLOCK_REALTIME)."""
    try:
        fcntl.ioctl(fd, EVIOCSCLOCKID, struct.pack("i", CLOCK_MONOTONIC))
    except OSError:
        return False
    return True


class _Device:
    """One open event device: its decoder, and the clock its stamps are in."""

    def __init__(self, path: Path, fd: int, code: int, name: str) -> None:
        self.path = path
        self.fd = fd
        self.name = name or path.name
        self.decoder = KeyDecoder(code)
        # The clock to measure an event's age with: the one its stamps are in.
        self.stamp_clock: Callable[[], int] = (
            time.monotonic_ns if monotonic_stamps(fd) else time.time_ns
        )


class EvdevKey:
    """The configured key on every keyboard that has it, stamped by the kernel.

    Opening reads the capabilities of each event device in ``input_dir`` (or of the ``devices``
    given) and keeps those with the key; :class:`EvdevError` says why none could be kept.
    Reading is done on the event loop (``add_reader``): the stamps come from the kernel, so no
    thread is needed to stamp early. A device that goes away (a USB keyboard pulled) is closed and
    reported through ``on_problem``; the others, and the node's other inputs, carry on.
    """

    kind = "keyboard"

    def __init__(
        self,
        key: str,
        quiet_ns: int,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        sink: PressSink,
        *,
        input_dir: Path,
        devices: list[Path] | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        code = key_code(key)
        self._handoff = Handoff(self.kind, quiet_ns, loop, clock, sink)
        self._loop = loop
        self._clock = clock
        self._on_problem = on_problem or (lambda line: None)
        self.devices: list[_Device] = []
        denied: list[str] = []
        for path in devices if devices is not None else _event_paths(input_dir):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except PermissionError:
                denied.append(path.name)
                continue
            except OSError:
                continue
            # A device that cannot say (a recorded stream on a pipe) is read; one without the
            # key (a mouse, the power button) is not.
            if has_key(fd, code) is False:
                os.close(fd)
                continue
            device = _Device(path, fd, code, device_name(fd))
            try:
                loop.add_reader(fd, self._readable, device)
            except (OSError, ValueError):  # not pollable: a regular file
                os.close(fd)
                continue
            self.devices.append(device)
        if not self.devices:
            raise EvdevError(_nothing_readable(input_dir, key, denied))

    @property
    def names(self) -> list[str]:
        return [f"{device.name} ({device.path.name})" for device in self.devices]

    def _readable(self, device: _Device) -> None:
        try:
            data = os.read(device.fd, INPUT_EVENT.size * 64)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(device, exc.strerror or str(exc))
            return
        if not data:
            self._drop(device, "end of file")
            return
        edges = device.decoder.feed(data)
        if not edges:
            return
        # Each stamp's age, carried into the node's clock: both clocks read back to back.
        now_node, now_stamp = self._clock(), device.stamp_clock()
        for edge in edges:
            self._handoff.edge(edge.active, at_ns=now_node - max(0, now_stamp - edge.at_ns))

    def _drop(self, device: _Device, why: str) -> None:
        self._close_device(device)
        self.devices.remove(device)
        left = f"; still reading {', '.join(self.names)}" if self.devices else ""
        gone = "unplugged" if why in ("No such device", "end of file") else f"failed: {why}"
        self._on_problem(f"Keyboard {device.name} ({device.path.name}) {gone}{left}.")

    def _close_device(self, device: _Device) -> None:
        with contextlib.suppress(ValueError, OSError):  # a loop already closed has no reader
            self._loop.remove_reader(device.fd)
        with contextlib.suppress(OSError):
            os.close(device.fd)

    def close(self) -> None:
        for device in self.devices:
            self._close_device(device)
        self.devices = []


def _event_paths(input_dir: Path) -> list[Path]:
    try:
        names = [entry.name for entry in os.scandir(input_dir) if entry.name.startswith("event")]
    except OSError:
        return []
    return [input_dir / name for name in sorted(names, key=lambda n: (len(n), n))]


def _nothing_readable(input_dir: Path, key: str, denied: list[str]) -> str:
    if denied:
        group = _group_of(input_dir / denied[0])
        return (
            f"cannot read the keyboards in {input_dir} (permission denied for "
            f"{', '.join(denied[:3])}{'...' if len(denied) > 3 else ''}): the node's user must "
            f"be in the {group!r} group"
        )
    if key.lower() != "space":
        return f"no keyboard input device with the {key!r} key readable in {input_dir}"
    return f"no keyboard input device readable in {input_dir}"


def _group_of(path: Path) -> str:
    import grp

    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except (OSError, KeyError):
        return "input"
