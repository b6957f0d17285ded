"""LED pattern choice: each situation in the brief maps to one pattern."""

from __future__ import annotations

import pytest

from firmware.feedback import (
    FAST_BLINK,
    HEARTBEAT,
    OFF,
    RANK_BLINKS_MAX,
    SOLID,
    Look,
    Pattern,
    choose_pattern,
    rank_blinks,
)


@pytest.mark.parametrize(
    ("look", "pattern"),
    [
        (Look(link_up=False, phase="armed", rank=1), HEARTBEAT),
        (Look(link_up=True), OFF),
        (Look(link_up=True, phase="armed"), OFF),  # armed, release instant not reached yet
        (Look(link_up=True, phase="armed", released=True), SOLID),
        (Look(link_up=True, phase="armed", released=True, locked_out=True), FAST_BLINK),
        (Look(link_up=True, phase="idle", locked_out=True), FAST_BLINK),
        (Look(link_up=True, phase="decided", rank=1), SOLID),
        (Look(link_up=True, phase="decided", rank=3), rank_blinks(3)),
        (Look(link_up=True, phase="decided", awaiting_result=True), SOLID),
        (Look(link_up=True, phase="decided"), OFF),
        (Look(link_up=True, phase="closed"), OFF),
    ],
)
def test_pattern_for_each_situation(look: Look, pattern: Pattern) -> None:
    assert choose_pattern(look) == pattern


def on_pulses(pattern: Pattern) -> int:
    return sum(1 for level, _ in pattern.steps if level)


def test_one_blink_per_rank_capped_and_ending_dark() -> None:
    assert [on_pulses(rank_blinks(n)) for n in (2, 3, 5)] == [2, 3, 5]
    assert on_pulses(rank_blinks(250)) == RANK_BLINKS_MAX
    assert not rank_blinks(2).final
    assert not rank_blinks(2).repeat
    assert rank_blinks(2).steps[0][0] is False  # a dark gap first, so the first blink reads as one


async def test_closing_during_a_beep_releases_the_buzzer_without_an_error() -> None:
    """A node stopping while it beeps for first place: the cancelled beep must not touch the
    buzzer pin after close() released it (gpiozero raises GPIODeviceClosed then)."""
    import asyncio

    from gpiozero import Buzzer
    from gpiozero.pins.mock import MockFactory

    from firmware.feedback import Feedback

    buzzer = Buzzer(22, pin_factory=MockFactory())
    feedback = Feedback(console=lambda line: None, buzzer=buzzer)
    feedback.beep()
    await asyncio.sleep(0)  # let the beep start: the buzzer is on
    assert buzzer.value
    task = feedback._buzzer_task
    assert task is not None
    feedback.close()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert buzzer.closed
