"""LED pattern choice: each situation in the brief maps to one pattern."""

from __future__ import annotations

import pytest

from firmware.patterns import (
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
from wire.enums import Phase


@pytest.mark.parametrize(
    ("look", "pattern"),
    [
        (Look(link_up=False, phase=Phase.ARMED, rank=1), HEARTBEAT),
        (Look(link_up=True), OFF),
        (Look(link_up=True, phase=Phase.ARMED), OFF),  # armed, release instant not reached yet
        (Look(link_up=True, phase=Phase.ARMED, released=True), SOLID),
        (Look(link_up=True, phase=Phase.ARMED, released=True, locked_out=True), FAST_BLINK),
        (Look(link_up=True, phase=Phase.IDLE, locked_out=True), FAST_BLINK),
        (Look(link_up=True, phase=Phase.DECIDED, rank=1), SOLID),
        (Look(link_up=True, phase=Phase.DECIDED, rank=3), rank_blinks(3)),
        (Look(link_up=True, phase=Phase.DECIDED, awaiting_result=True), SOLID),
        (Look(link_up=True, phase=Phase.ARMED, awaiting_result=True), SOLID),
        (Look(link_up=True, phase=Phase.IDLE, awaiting_result=True), OFF),
        (Look(link_up=True, phase=Phase.DECIDED), OFF),
        (Look(link_up=True, phase=Phase.CLOSED), OFF),
        (Look(link_up=True, phase=Phase.CLOSED, released=True), OFF),
    ],
)
def test_pattern_for_each_situation(look: Look, pattern: Pattern) -> None:
    assert choose_pattern(look) == pattern


def test_a_phase_is_a_member_not_its_text() -> None:
    """The situation holds the hub's phase as the enum member the codec decoded."""
    assert Look(link_up=True).phase is Phase.IDLE


def on_pulses(pattern: Pattern) -> int:
    return sum(1 for level, _ in pattern.steps if level)


def test_one_blink_per_rank_capped_and_ending_dark() -> None:
    assert [on_pulses(rank_blinks(n)) for n in (2, 3, 5)] == [2, 3, 5]
    assert on_pulses(rank_blinks(250)) == RANK_BLINKS_MAX
    assert not rank_blinks(2).final
    assert not rank_blinks(2).repeat
    assert rank_blinks(2).steps[0][0] is False  # a dark gap first, so the first blink reads as one
