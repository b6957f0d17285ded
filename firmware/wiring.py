"""``buzzer-node test-wiring``: check a station's button, LED and buzzer before an event.

A maker with a soldering iron wants to know, without a hub and without reading code, that the
LED lights, the buzzer sounds, and the button gives clean presses on the pin they chose; and when
something does not work, whether it is the wiring, the pin library or the permissions. So this
command reports the GPIO library in use and its chip, the device files' groups and whether this
user may open them, then lights the LED, sounds the buzzer, and prints every edge of the button
with the pin driver's timestamp (the kernel's, with lgpio) and how many bounce edges each press
had. It runs until Ctrl+C (or ``--seconds``). The node's service must be stopped first: it holds
the pins.

The bounce count is :class:`BounceCounter`, pure: edges in, lines out, tested with exact times.
"""

from __future__ import annotations

import asyncio
import glob
import grp
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.config import NodeConfig
from firmware.pins import PinSetupError, open_device, pin_name

LIGHT_S = 1.0
BEEP_S = 0.3
MS = 1_000_000


@dataclass
class BounceCounter:
    """Groups a button's edges into presses: an edge after ``quiet_ns`` without any starts a new
    burst; every further edge of the burst is a bounce of it."""

    quiet_ns: int
    edges: int = 0
    bursts: int = 0
    bounces: int = 0  # in the current burst
    _first_ns: int | None = None
    _last_ns: int | None = None

    def edge(self, at_ns: int, pressed: bool) -> str:
        """The line for one edge at ``at_ns`` (the pin driver's clock)."""
        self.edges += 1
        new_burst = self._last_ns is None or at_ns - self._last_ns >= self.quiet_ns
        if new_burst:
            self.bursts += 1
            self.bounces = 0
            self._first_ns = at_ns
            since = ""
        else:
            self.bounces += 1
            assert self._first_ns is not None
            since = f", +{(at_ns - self._first_ns) / MS:.3f} ms, bounce {self.bounces}"
        self._last_ns = at_ns
        what = "pressed" if pressed else "released"
        return f"edge {self.edges}: {what} at {at_ns / 1e9:.6f} s{since}"

    def summary(self) -> str:
        return f"{self.edges} edge(s) in {self.bursts} burst(s)."


def library_line(factory: Any) -> str:
    """Which pin library gpiozero loaded, and on which chip."""
    name = type(factory).__name__
    if name == "MockFactory":
        return "GPIO library: gpiozero's mock pins (GPIOZERO_PIN_FACTORY=mock): nothing is wired."
    chip = getattr(factory, "chip", None)
    on = f", on /dev/gpiochip{chip}" if chip is not None else ""
    return f"GPIO library: {name.removesuffix('Factory').lower()}{on}."


def access_lines() -> list[str]:
    """Who this process is, and whether it may open the GPIO chips and the keyboards."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    groups = sorted({_group(gid) for gid in (os.getegid(), *os.getgroups())})
    lines = [f"Running as {user}, in the groups {', '.join(groups)}."]
    for pattern, mode, what in (
        ("/dev/gpiochip*", os.R_OK | os.W_OK, "GPIO chips"),
        ("/dev/input/event*", os.R_OK, "input devices (keyboards)"),
    ):
        paths = sorted(glob.glob(pattern))
        if not paths:
            lines.append(f"{what}: none ({pattern} does not exist here).")
            continue
        owners = sorted({_group(os.stat(path).st_gid) for path in paths})
        usable = [path for path in paths if os.access(path, mode)]
        if len(usable) == len(paths):
            lines.append(f"{what}: {len(paths)}, group {'/'.join(owners)}; this user may use them.")
        else:
            lines.append(
                f"{what}: {len(paths)}, group {'/'.join(owners)}; this user may use "
                f"{len(usable)} of them: add it to the group (sudo adduser {user} "
                f"{owners[0]}) and log in again. The node's service is in the group already."
            )
    return lines


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


async def check_wiring(
    config: NodeConfig,
    say: Callable[[str], None],
    *,
    pin_factory: Any = None,
    stop: asyncio.Event | None = None,
    seconds: float | None = None,
) -> int:
    """Report, light, beep, then print button edges until ``stop`` is set, ``seconds`` pass or
    the task is cancelled; 0 if the pins could be opened, else 2 (with the reason said)."""
    from gpiozero import LED, Button, Buzzer

    gpio = config.gpio
    loop = asyncio.get_running_loop()
    devices: list[Any] = []
    try:
        button = open_device(
            "button",
            gpio.button_pin,
            lambda: Button(
                pin_name(gpio.button_pin), pull_up=gpio.pull_up, pin_factory=pin_factory
            ),
        )
        devices.append(button)
        say(library_line(button.pin_factory))
        for line in access_lines():
            say(line)
        if gpio.led_pin:
            led = open_device(
                "LED", gpio.led_pin, lambda: LED(pin_name(gpio.led_pin), pin_factory=pin_factory)
            )
            devices.append(led)
            say(f"LED on {gpio.led_pin}: on for {LIGHT_S:.0f} s.")
            led.on()
            await asyncio.sleep(LIGHT_S)  # a person looks at it: real time, not a handshake
            led.off()
        else:
            say("No LED set (led_pin is empty).")
        if gpio.buzzer_pin:
            high = gpio.buzzer_active_high
            buzzer = open_device(
                "buzzer",
                gpio.buzzer_pin,
                lambda: Buzzer(
                    pin_name(gpio.buzzer_pin), active_high=high, pin_factory=pin_factory
                ),
            )
            devices.append(buzzer)
            trigger = "high" if high else "low (buzzer_active_high = false)"
            say(f"Buzzer on {gpio.buzzer_pin}, sounding while {trigger}: one beep.")
            buzzer.on()
            await asyncio.sleep(BEEP_S)
            buzzer.off()
            say("If it sounded all along and went quiet for the beep, set buzzer_active_high.")
        else:
            say("No buzzer set (buzzer_pin is empty).")
    except PinSetupError as exc:
        say(f"buzzer-node test-wiring: {exc}")
        _close(devices)
        return 2

    counter = BounceCounter(round(gpio.guard_ms * MS))

    def changed(ticks: float, state: bool) -> None:  # a pin driver thread
        # gpiozero reports the level; with the pull-up a press pulls the pin low.
        pressed = (not state) if gpio.pull_up else bool(state)
        loop.call_soon_threadsafe(lambda: say(counter.edge(round(ticks * 1e9), pressed)))

    button.pin.when_changed = changed  # raw edges: no debounce, no press logic
    say(
        f"Press the button on {gpio.button_pin} ({'to ground' if gpio.pull_up else 'to 3.3 V'}); "
        "each edge is printed with its time and bounce count. Ctrl+C ends."
    )
    try:
        waiting = (stop or asyncio.Event()).wait()
        if seconds is not None:
            await asyncio.wait_for(waiting, seconds)
        else:
            await waiting
    except TimeoutError:
        pass
    finally:
        button.pin.when_changed = None
        _close(devices)
    say(counter.summary())
    return 0


def _close(devices: list[Any]) -> None:
    for device in devices:
        device.close()
