"""Press sources: a GPIO button, the keyboard's spacebar, or a terminal's spacebar.

Each source only turns its device's events into edges or taps for its
:class:`~firmware.handoff.Handoff`, which stamps them, carries them to the asyncio loop and calls
``sink(at_ns, source)`` once per press. ``at_ns`` is read from the node's clock as close to the
edge as the source allows: inside gpiozero's edge callback (its own thread) for a button, inside
the keyboard package's hook thread for a key, and when the terminal becomes readable for a
terminal.

``keyboard`` reads ``/dev/input`` and needs root; :func:`keyboard_problem` says why it cannot work
here *before* it is started, because the package fails inside its own thread where no caller can
catch it. :func:`open_inputs` then falls back to the terminal and says so in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import termios
import tty
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from firmware.config import NodeConfig
from firmware.handoff import Clock, Handoff, PressSink
from wire.errors import BuzzerError

PROC_INPUT_DEVICES = Path("/proc/bus/input/devices")


class InputError(BuzzerError):
    """No usable press source; the message says what was tried and what to do instead."""


class PressSource(Protocol):
    kind: str

    def close(self) -> None: ...


def _ms(value: float) -> int:
    return round(value * 1_000_000)


def pin_name(value: str) -> str | int:
    """gpiozero takes "GPIO17", "BOARD11" or a Broadcom number; a bare "17" means the number."""
    return int(value) if value.isdigit() else value


# --- GPIO button ---


class GpioButton:
    kind = "gpio"

    def __init__(
        self,
        config: NodeConfig,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        sink: PressSink,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import Button  # imported here: a laptop without gpio never needs it

        gpio = config.gpio
        self._handoff = Handoff(self.kind, _ms(gpio.guard_ms), loop, clock, sink)
        self.button = Button(
            pin_name(gpio.button_pin),
            pull_up=gpio.pull_up,
            bounce_time=gpio.bounce_ms / 1000 if gpio.bounce_ms > 0 else None,
            pin_factory=pin_factory,
        )
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released

    def _pressed(self) -> None:
        self._handoff.edge(True)

    def _released(self) -> None:
        self._handoff.edge(False)

    def close(self) -> None:
        self.button.close()


# --- keyboard package ---


def keyboard_problem(config: NodeConfig) -> str | None:
    """Why the keyboard package cannot read the spacebar here, or None if it should work."""
    if sys.platform != "linux":
        return None  # it works without root elsewhere; failures surface when hooking
    if os.geteuid() != 0:
        return "the keyboard package needs root to read /dev/input"
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return "over SSH the machine's own keyboard is not the one you are typing on"
    input_dir = Path(config.keyboard.input_dir)
    try:
        listing = PROC_INPUT_DEVICES.read_text(encoding="utf-8", errors="replace")
    except OSError:
        listing = ""
    events = [
        match.group(1)
        for block in listing.split("\n\n")
        if re.search(r"H: Handlers=.*\bkbd\b", block)
        for match in [re.search(r"\b(event\d+)\b", block)]
        if match
    ]
    readable = [name for name in events if os.access(input_dir / name, os.R_OK)]
    if not readable:
        return f"no keyboard input device readable in {input_dir}"
    return None


class KeyboardKey:
    kind = "keyboard"

    def __init__(
        self, config: NodeConfig, loop: asyncio.AbstractEventLoop, clock: Clock, sink: PressSink
    ) -> None:
        import keyboard

        self._handoff = Handoff(self.kind, _ms(config.keyboard.guard_ms), loop, clock, sink)
        self._keyboard = keyboard
        self._hook = keyboard.hook_key(config.keyboard.key, self._event)

    def _event(self, event: Any) -> None:
        self._handoff.edge(event.event_type == "down")

    def close(self) -> None:
        self._keyboard.unhook(self._hook)


# --- terminal ---


class TerminalKey:
    """The spacebar read from a terminal in cbreak mode (no Enter needed, no echo).

    The terminal's previous mode is restored by :meth:`close`, which the node calls on every exit
    path (normal end, Ctrl+C, SIGTERM, an exception).
    """

    kind = "terminal"

    def __init__(
        self,
        config: NodeConfig,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        sink: PressSink,
        say: Callable[[str], None],
        fd: int | None = None,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(self.fd):
            raise InputError("standard input is not a terminal")
        self._handoff = Handoff(self.kind, _ms(config.terminal.repeat_guard_ms), loop, clock, sink)
        self._loop = loop
        self._clock = clock
        self._on_eof = on_eof
        self._say = say
        self._saved: list[Any] | None = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        at = self._clock()
        try:
            data = os.read(self.fd, 256)
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self.fd)
            if self._on_eof is not None:
                self._on_eof()
            return
        # Several characters in one read arrived together: they share one instant.
        for byte in data:
            if byte == ord(" "):
                self._handoff.tap(at)
            elif chr(byte).isprintable() or byte in (ord("\n"), ord("\r")):
                self._say("Press space to buzz (Ctrl+C quits).")

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        if self._saved is not None:
            with contextlib.suppress(termios.error):  # a terminal that is gone needs nothing
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


# --- choosing ---


def open_inputs(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    say: Callable[[str], None],
    pin_factory: Any = None,
    on_terminal_eof: Callable[[], None] | None = None,
) -> list[PressSource]:
    """Open every configured source, the keyboard falling back to the terminal; raise InputError
    if none can be opened (after closing those that were)."""
    sources: list[PressSource] = []
    kinds = list(config.node.inputs)
    if "keyboard" in kinds and "terminal" in kinds and keyboard_problem(config) is None:
        kinds.remove("terminal")  # the same spacebar: one press must not arrive twice
        say("Reading the spacebar through the keyboard package; the terminal is not read.")
    try:
        for kind in kinds:
            if kind == "gpio":
                sources.append(_open_gpio(config, loop, clock, sink, pin_factory))
            elif kind == "keyboard":
                problem = keyboard_problem(config)
                if problem is None:
                    sources.append(KeyboardKey(config, loop, clock, sink))
                    say(f"Press {config.keyboard.key} to buzz (keyboard).")
                    continue
                if "terminal" in kinds:
                    say(f"Keyboard input unavailable ({problem}); using the terminal instead.")
                    continue
                say(f"Keyboard input unavailable ({problem}); reading the terminal instead.")
                try:
                    terminal = TerminalKey(config, loop, clock, sink, say, on_eof=on_terminal_eof)
                    sources.append(terminal)
                except InputError as exc:
                    raise InputError(
                        f"no spacebar to read: {problem}, and {exc}; run the node in a terminal, "
                        "as root on a machine with a keyboard, or use --input gpio"
                    ) from None
                say("Press space to buzz (terminal).")
            elif kind == "terminal":
                try:
                    terminal = TerminalKey(config, loop, clock, sink, say, on_eof=on_terminal_eof)
                    sources.append(terminal)
                except InputError as exc:
                    raise InputError(
                        f"--input terminal: {exc}; run the node in a terminal or choose another "
                        "input"
                    ) from None
                say("Press space to buzz (terminal).")
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def _open_gpio(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    pin_factory: Any,
) -> GpioButton:
    from gpiozero.exc import GPIOZeroError, PinFactoryFallback

    try:
        with warnings.catch_warnings():  # the error below names the problem once
            warnings.simplefilter("ignore", PinFactoryFallback)
            return GpioButton(config, loop, clock, sink, pin_factory)
    except GPIOZeroError as exc:
        raise InputError(
            f"cannot use the button on pin {config.gpio.button_pin}: {exc}; on a machine "
            "without GPIO use --input keyboard or terminal (or GPIOZERO_PIN_FACTORY=mock to try)"
        ) from None
