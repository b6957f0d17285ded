"""Playing patterns on the pins: what the LED and buzzer do, and a clean stop."""

from __future__ import annotations

import asyncio

from gpiozero import LED, Buzzer
from gpiozero.pins.mock import MockFactory

from firmware.feedback import Feedback
from firmware.patterns import SOLID, rank_blinks


async def test_closing_during_a_beep_releases_the_buzzer_without_an_error() -> None:
    """A node stopping while it beeps for first place: the cancelled beep must not touch the
    buzzer pin after close() released it (gpiozero raises GPIODeviceClosed then)."""
    buzzer = Buzzer(22, pin_factory=MockFactory())
    feedback = Feedback(buzzer=buzzer)
    feedback.beep()
    await asyncio.sleep(0)  # let the beep start: the buzzer is on
    assert buzzer.value
    task = feedback._buzzer_task
    assert task is not None
    feedback.close()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert buzzer.closed


async def test_a_pattern_plays_to_its_end_and_is_reported_by_name() -> None:
    pins = MockFactory()
    led = LED(27, pin_factory=pins)
    names: list[str] = []
    done = asyncio.Event()

    def seen(name: str) -> None:
        names.append(name)
        if name.endswith(":done"):
            done.set()

    feedback = Feedback(led=led, on_pattern=seen)
    feedback.show(rank_blinks(2))
    feedback.show(rank_blinks(2))  # the same pattern again: it does not start over
    await asyncio.wait_for(done.wait(), 5)
    levels = [bool(state.state) for state in pins.pin(27).states]
    feedback.show(SOLID)
    feedback.close()

    assert names == ["rank-2", "rank-2:done", "on"]
    assert levels == [False, True, False, True, False]
