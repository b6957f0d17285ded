"""What the player sees and hears: the LED, the optional buzzer and the console line.

The choice of LED pattern is pure (:func:`choose_pattern` from a :class:`Look`), so every rule in
the brief is a plain function of the node's situation:

==========================  ==========================================================
situation                   LED
==========================  ==========================================================
hub unreachable             slow heartbeat
early press / locked out    fast blink (for the timed lockout, or until the round ends)
first place                 solid on until the next round or a reset
ranked 2nd, 3rd, ...        one short blink per rank (capped), then off
armed, from the release     on (also while this node's press awaits its result)
idle, closed, decided       off
==========================  ==========================================================

A press gets instant local proof: the LED flickers (inverts briefly) before the hub has answered.
The flicker always runs to its end and only then does a newer pattern start, so what the LED shows
is the same however the hub's frames happen to be timed.

:class:`Feedback` plays patterns on any objects with ``on()``/``off()`` (gpiozero ``LED`` and
``Buzzer``, or nothing at all on a laptop) from the asyncio loop; it never blocks the loop.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from firmware.config import NodeConfig

FLICKER_MS = 40
RANK_BLINK_ON_MS = 150
RANK_BLINK_OFF_MS = 250
RANK_BLINK_GAP_MS = 300
RANK_BLINKS_MAX = 9
FAST_BLINK_MS = 60
HEARTBEAT_ON_MS = 120
HEARTBEAT_OFF_MS = 1380


class Switch(Protocol):
    """An on/off output: gpiozero's LED and Buzzer both fit."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Pattern:
    """Levels held for some milliseconds; ``repeat`` loops them, else the last level stays."""

    name: str
    steps: tuple[tuple[bool, int], ...]
    repeat: bool = False

    @property
    def final(self) -> bool:
        return self.steps[-1][0]


OFF = Pattern("off", ((False, 0),))
SOLID = Pattern("on", ((True, 0),))
FAST_BLINK = Pattern("fast-blink", ((True, FAST_BLINK_MS), (False, FAST_BLINK_MS)), repeat=True)
HEARTBEAT = Pattern("heartbeat", ((True, HEARTBEAT_ON_MS), (False, HEARTBEAT_OFF_MS)), repeat=True)
BEEPS = Pattern("beeps", ((True, 100), (False, 100), (True, 100), (False, 100), (True, 300)))
SILENT = Pattern("silent", ((False, 0),))


def rank_blinks(rank: int) -> Pattern:
    """Off for a moment (so the first blink is seen as one), then one blink per rank."""
    count = max(1, min(rank, RANK_BLINKS_MAX))
    steps: list[tuple[bool, int]] = [(False, RANK_BLINK_GAP_MS)]
    for _ in range(count):
        steps += [(True, RANK_BLINK_ON_MS), (False, RANK_BLINK_OFF_MS)]
    return Pattern(f"rank-{rank}", tuple(steps))


@dataclass(frozen=True, slots=True)
class Look:
    """The node's situation, as far as the LED is concerned."""

    link_up: bool
    phase: str = "idle"  # the hub's round state: idle, armed, decided, closed
    released: bool = False  # armed and the release instant has passed (in the node's clock)
    locked_out: bool = False  # an early press, or the hub says so
    rank: int | None = None  # this node's counted rank in the round on display
    awaiting_result: bool = False  # pressed in this round, result not in yet


def choose_pattern(look: Look) -> Pattern:
    if not look.link_up:
        return HEARTBEAT
    if look.locked_out:
        return FAST_BLINK
    if look.rank == 1:
        return SOLID
    if look.rank is not None:
        return rank_blinks(look.rank)
    if look.awaiting_result and look.phase in ("armed", "decided"):
        return SOLID  # keep the armed light until the verdict, rather than a misleading "off"
    if look.phase == "armed" and look.released:
        return SOLID
    return OFF


class Feedback:
    """Plays LED and buzzer patterns and writes console lines.

    ``on_pattern`` is told the name of each pattern the LED starts, ``"<name>:cycle"`` after each
    round of a repeating one and ``"<name>:done"`` when a finite one ends: tests wait on those
    instead of on wall-clock time. The buzzer's are the same, prefixed ``"buzzer:"``.
    """

    def __init__(
        self,
        console: Callable[[str], None],
        led: Switch | None = None,
        buzzer: Switch | None = None,
        on_pattern: Callable[[str], None] | None = None,
    ) -> None:
        self.console = console
        self.led = led
        self.buzzer = buzzer
        self._on_pattern = on_pattern or (lambda name: None)
        self._pattern: Pattern | None = None
        self._led_task: asyncio.Task[None] | None = None
        self._buzzer_task: asyncio.Task[None] | None = None
        self._closed = False
        self._flicker_task: asyncio.Task[None] | None = None
        self._level: bool | None = None

    @property
    def pattern(self) -> Pattern | None:
        return self._pattern

    def say(self, line: str) -> None:
        self.console(line)

    def show(self, pattern: Pattern) -> None:
        """Switch the LED to ``pattern`` (after a running flicker); no-op if it is already on."""
        if pattern == self._pattern:
            return
        self._pattern = pattern
        if self._flicker_task is not None and not self._flicker_task.done():
            return  # the flicker starts the newest pattern when it ends
        self._start(pattern)

    def flicker(self) -> None:
        """Instant proof of a press: invert the LED briefly, then resume the current pattern."""
        if self.led is None or (self._flicker_task is not None and not self._flicker_task.done()):
            return
        self._cancel_led()
        self._flicker_task = asyncio.get_running_loop().create_task(self._flick())

    def beep(self) -> None:
        if self.buzzer is None:
            return
        if self._buzzer_task is not None:
            self._buzzer_task.cancel()
        self._buzzer_task = asyncio.get_running_loop().create_task(self._beep(self.buzzer))

    def close(self) -> None:
        self._closed = True
        for task in (self._led_task, self._buzzer_task, self._flicker_task):
            if task is not None:
                task.cancel()
        for switch in (self.led, self.buzzer):
            if switch is not None:
                switch.off()
                switch.close()

    # --- playing ---

    def _set(self, level: bool) -> None:
        if self.led is None or level == self._level:
            return
        self._level = level
        if level:
            self.led.on()
        else:
            self.led.off()

    def _cancel_led(self) -> None:
        if self._led_task is not None:
            self._led_task.cancel()
            self._led_task = None

    def _start(self, pattern: Pattern) -> None:
        self._cancel_led()
        self._on_pattern(pattern.name)
        if self.led is None:
            return
        if len(pattern.steps) == 1:  # steady: no task needed
            self._set(pattern.final)
            return
        self._led_task = asyncio.get_running_loop().create_task(self._run_led(pattern))

    async def _run_led(self, pattern: Pattern) -> None:
        while True:
            for level, ms in pattern.steps:
                self._set(level)
                await asyncio.sleep(ms / 1000)
            if not pattern.repeat:
                self._on_pattern(f"{pattern.name}:done")
                return
            self._on_pattern(f"{pattern.name}:cycle")

    async def _flick(self) -> None:
        current = bool(self._level)
        self._set(not current)
        await asyncio.sleep(FLICKER_MS / 1000)
        self._set(current)
        self._on_pattern("flicker:done")
        if self._pattern is not None:
            self._start(self._pattern)

    async def _beep(self, buzzer: Switch) -> None:
        self._on_pattern(f"buzzer:{BEEPS.name}")
        try:
            for level, ms in BEEPS.steps:
                if level:
                    buzzer.on()
                else:
                    buzzer.off()
                await asyncio.sleep(ms / 1000)
        finally:
            # A cancelled beep ends here only on the loop's next turn, possibly after close()
            # has already switched the buzzer off and released its pin.
            if not self._closed:
                buzzer.off()
        self._on_pattern(f"buzzer:{BEEPS.name}:done")


def open_switches(
    config: NodeConfig, say: Callable[[str], None], pin_factory: Any = None
) -> tuple[Switch | None, Switch | None]:
    """The LED and buzzer from the config; a station without them (a laptop) still plays."""
    led = _open_switch("LED", config.gpio.led_pin, say, pin_factory)
    buzzer = _open_switch("buzzer", config.gpio.buzzer_pin, say, pin_factory)
    return led, buzzer


def _open_switch(what: str, pin: str, say: Callable[[str], None], factory: Any) -> Switch | None:
    if not pin:
        return None
    from gpiozero import LED, Buzzer
    from gpiozero.exc import GPIOZeroError, PinFactoryFallback

    kind = LED if what == "LED" else Buzzer
    try:
        with warnings.catch_warnings():  # one line below says it all; no fallback chatter
            warnings.simplefilter("ignore", PinFactoryFallback)
            switch: Switch = kind(int(pin) if pin.isdigit() else pin, pin_factory=factory)
    except GPIOZeroError as exc:
        say(f"No {what} on pin {pin} ({exc}); the console shows everything instead.")
        return None
    return switch
