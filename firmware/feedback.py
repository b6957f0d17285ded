"""What the player sees and hears: the LED and the optional buzzer, played on the pins.

Which pattern to show is decided elsewhere (:func:`firmware.patterns.choose_pattern`); this module
only plays it. A press gets instant local proof: the LED flickers (inverts briefly) before the hub
has answered. The flicker always runs to its end and only then does a newer pattern start, so what
the LED shows is the same however the hub's frames happen to be timed.

:class:`Feedback` plays patterns on any objects with ``on()``/``off()`` (gpiozero ``LED`` and
``Buzzer``, or nothing at all on a laptop) from the asyncio loop; it never blocks the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from firmware.config import NodeConfig
from firmware.patterns import BEEPS, Pattern
from firmware.pins import PinSetupError, open_device, pin_name

FLICKER_MS = 40


class Switch(Protocol):
    """An on/off output: gpiozero's LED and Buzzer both fit."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


class Feedback:
    """Plays LED and buzzer patterns.

    ``on_pattern`` is told the name of each pattern the LED starts, ``"<name>:cycle"`` after each
    round of a repeating one and ``"<name>:done"`` when a finite one ends: tests wait on those
    instead of on wall-clock time. The buzzer's are the same, prefixed ``"buzzer:"``.
    """

    def __init__(
        self,
        led: Switch | None = None,
        buzzer: Switch | None = None,
        on_pattern: Callable[[str], None] | None = None,
    ) -> None:
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
) -> tuple[Switch | None, Switch | None, list[str]]:
    """The LED and buzzer from the config, and a line for each that failed; a station without
    them (a laptop) still plays, and the console shows everything."""
    from gpiozero import LED, Buzzer

    gpio = config.gpio
    problems: list[str] = []
    led = buzzer = None
    if gpio.led_pin:
        pin = gpio.led_pin
        try:
            led = open_device("LED", pin, lambda: LED(pin_name(pin), pin_factory=pin_factory))
        except PinSetupError as exc:
            problems.append(str(exc))
    if gpio.buzzer_pin:
        pin, high = gpio.buzzer_pin, gpio.buzzer_active_high
        try:
            buzzer = open_device(
                "buzzer",
                pin,
                lambda: Buzzer(pin_name(pin), active_high=high, pin_factory=pin_factory),
            )
        except PinSetupError as exc:
            problems.append(str(exc))
    for problem in problems:
        say(f"Output problem: {problem}; the console shows everything instead.")
    return led, buzzer, problems
