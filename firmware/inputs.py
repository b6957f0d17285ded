"""Press sources: a GPIO button, the keyboard's spacebar, or a terminal's spacebar.

Each source only turns its device's events into edges or taps for its
:class:`~firmware.handoff.Handoff`, which stamps them, carries them to the asyncio loop and calls
``sink(at_ns, source)`` once per press. ``at_ns`` is as close to the edge as the source allows:
the pin driver's own timestamp of the edge for a button (see :class:`GpioButton`), the kernel's
own stamp for a key read from Linux's event devices (:mod:`firmware.evdev`), the keyboard
package's hook thread on other systems, and when the terminal becomes readable for a terminal.

On Linux the keyboard is read through evdev: no root (the ``input`` group), kernel timestamps.
Elsewhere the ``keyboard`` package reads it, where it works without root. When neither can, the
node falls back to its terminal and says why in one line.

Inputs fail one at a time: :func:`open_inputs` opens each configured source on its own, and one
that cannot be opened (a keyboard missing on a button station, a busy pin on a keyboard station)
is reported in one line while the others play on; only when none opens does the node stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from firmware.config import NodeConfig
from firmware.evdev import EvdevError, EvdevKey
from firmware.handoff import Clock, Handoff, PressSink
from firmware.pins import PinSetupError, open_device, pin_name
from wire.errors import BuzzerError


class InputError(BuzzerError):
    """No usable press source; the message says what was tried and what to do instead."""


class PressSource(Protocol):
    kind: str

    def close(self) -> None: ...


def _ms(value: float) -> int:
    return round(value * 1_000_000)


# --- GPIO button ---


class GpioButton:
    """A button on a GPIO pin, stamped at its first electrical edge.

    The pin is read directly, with no debounce in the pin driver or the kernel (which would
    report an edge only once the line has been stable, that long after the first contact). Each
    edge comes with the pin driver's own timestamp (``ticks``) where it has one: lgpio's come
    from the kernel's line events, in the monotonic clock, so the stamp is the edge itself, not
    the moment this process got round to it. The handoff then counts a press once the line has
    stayed active ``confirm_ms`` (a glitch never does) and stamps it with its first edge.
    """

    kind = "gpio"

    def __init__(
        self,
        config: NodeConfig,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        sink: PressSink,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import InputDevice  # imported here: a laptop without gpio never needs it

        gpio = config.gpio
        self._clock = clock
        self._pull_up = gpio.pull_up
        self.device = InputDevice(
            pin_name(gpio.button_pin), pull_up=gpio.pull_up, pin_factory=pin_factory
        )
        self._factory = self.device.pin_factory
        self._handoff = Handoff(
            self.kind,
            _ms(gpio.guard_ms),
            loop,
            clock,
            sink,
            confirm_ns=_ms(gpio.confirm_ms),
            level=lambda: bool(self.device.is_active),
        )
        pin = self.device.pin
        pin.bounce = None
        pin.edges = "both"
        pin.when_changed = self._changed

    def _changed(self, ticks: Any, state: Any) -> None:
        """An edge, in the pin driver's thread: stamped with the driver's instant for it."""
        age = self._factory.ticks_diff(self._factory.ticks(), ticks)  # seconds since the edge
        at = self._clock() - max(0, round(age * 1e9))
        self._handoff.edge(bool(state) != self._pull_up, at_ns=at)

    def close(self) -> None:
        self._handoff.close()
        self.device.close()


# --- keyboard package ---


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or no descriptor at all
        return False


def over_ssh() -> bool:
    """Whether this session came in over SSH: the machine's own keyboard is then not the one
    the person at the terminal types on."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"))


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
        try:  # stdin may be closed, or replaced by something with no descriptor
            self.fd = sys.stdin.fileno() if fd is None else fd
            terminal = os.isatty(self.fd)
        except (OSError, ValueError, AttributeError):
            terminal = False
        if not terminal:
            raise InputError("standard input is not a terminal")
        if not _in_foreground(self.fd):
            # Changing a terminal's mode from its background would stop this process (SIGTTOU),
            # and reading it too (SIGTTIN): the node runs on without it.
            raise InputError(
                "the terminal belongs to the program in its foreground (this node was started "
                "in the background, e.g. with & or under timeout)"
            )
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
            # A node moved to the background since (Ctrl+Z, bg) may still restore the mode:
            # with SIGTTOU ignored the kernel lets it, instead of stopping the process.
            with contextlib.suppress(termios.error), _ttou_ignored():
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def _in_foreground(fd: int) -> bool:
    """Whether this process's group owns the terminal ``fd`` (True when it is not this process's
    controlling terminal at all: then no job control applies)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True


@contextlib.contextmanager
def _ttou_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, previous)


# --- choosing ---


@dataclass
class Opened:
    """The sources that opened, and one line for each configured input that could not."""

    sources: list[PressSource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def open_inputs(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    say: Callable[[str], None],
    pin_factory: Any = None,
    on_terminal_eof: Callable[[], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> Opened:
    """Open every configured source, each on its own: one that fails is a problem line, not the
    end of the others. Raise InputError only if none opens (after closing any that did).
    ``on_problem`` hears of a source that fails later (a keyboard unplugged)."""
    opened = Opened()
    kinds = list(config.node.inputs)
    spacebar_read = False  # by the keyboard: the terminal would give the same press twice
    try:
        for kind in kinds:
            try:
                if kind == "gpio":
                    opened.sources.append(_open_gpio(config, loop, clock, sink, pin_factory))
                elif kind == "keyboard":
                    source = _open_keyboard(
                        config, loop, clock, sink, say, kinds, on_terminal_eof, on_problem
                    )
                    if source is not None:
                        opened.sources.append(source)
                        spacebar_read = source.kind == "keyboard"
                elif kind == "terminal":
                    if spacebar_read:
                        say("Reading the spacebar from the keyboard; the terminal is not read.")
                        continue
                    opened.sources.append(
                        _open_terminal(config, loop, clock, sink, say, on_terminal_eof)
                    )
            except InputError as exc:
                opened.problems.append(str(exc))
        if not opened.sources:
            if len(opened.problems) == 1:
                raise InputError(opened.problems[0])
            raise InputError("no input works: " + "; ".join(opened.problems))
    except BaseException:
        for source in opened.sources:
            source.close()
        raise
    for problem in opened.problems:
        using = ", ".join(source.kind for source in opened.sources)
        say(f"Input problem: {problem}. Playing on with: {using}.")
    return opened


def _open_keyboard(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    say: Callable[[str], None],
    kinds: list[str],
    on_terminal_eof: Callable[[], None] | None,
    on_problem: Callable[[str], None] | None,
) -> PressSource | None:
    """The keyboard: evdev on Linux, the keyboard package elsewhere, else the terminal (None when
    the terminal is configured too and opens in its own turn)."""
    key = config.keyboard.key
    if over_ssh() and _stdin_is_terminal():
        problem = "over SSH the machine's own keyboard is not the one you are typing on"
    elif sys.platform == "linux":
        try:
            evdev = EvdevKey(
                key,
                _ms(config.keyboard.guard_ms),
                loop,
                clock,
                sink,
                input_dir=Path(config.keyboard.input_dir),
                on_problem=on_problem,
            )
        except EvdevError as exc:
            problem = str(exc)
        else:
            say(f"Press {key} to buzz (keyboard: {', '.join(evdev.names)}).")
            return evdev
    else:  # the keyboard package works without root on Windows and most desktops
        try:
            keyboard = KeyboardKey(config, loop, clock, sink)
        except (ImportError, OSError) as exc:
            problem = f"the keyboard package cannot read it ({exc})"
        else:
            say(f"Press {key} to buzz (keyboard).")
            return keyboard
    if "terminal" in kinds:
        say(f"Keyboard input unavailable ({problem}); using the terminal instead.")
        return None
    say(f"Keyboard input unavailable ({problem}); reading the terminal instead.")
    try:
        terminal = TerminalKey(config, loop, clock, sink, say, on_eof=on_terminal_eof)
    except InputError as exc:
        raise InputError(
            f"no spacebar to read: {problem}, and {exc}; run the node in a terminal, add its "
            "user to the input group, or use --input gpio"
        ) from None
    say("Press space to buzz (terminal).")
    return terminal


def _open_terminal(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    say: Callable[[str], None],
    on_eof: Callable[[], None] | None,
) -> TerminalKey:
    try:
        terminal = TerminalKey(config, loop, clock, sink, say, on_eof=on_eof)
    except InputError as exc:
        raise InputError(
            f"--input terminal: {exc}; run the node in a terminal or choose another input"
        ) from None
    say("Press space to buzz (terminal).")
    return terminal


def _open_gpio(
    config: NodeConfig,
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    sink: PressSink,
    pin_factory: Any,
) -> GpioButton:
    pin = config.gpio.button_pin
    try:
        return open_device(
            "button", pin, lambda: GpioButton(config, loop, clock, sink, pin_factory)
        )
    except PinSetupError as exc:
        raise InputError(str(exc)) from None
