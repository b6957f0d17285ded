"""Full garbage collections only between rounds: when one is due, and that the collector itself
is left only its young generations."""

from __future__ import annotations

import asyncio
import gc
import sys
import time

from hub import heap
from hub.core.machine import Play
from hub.heap import Tidy
from tests.support.garbage import unreachable_cycle

S = 1_000_000_000


def test_a_full_collection_waits_a_minute_then_for_the_round_to_stop_being_in_play() -> None:
    tidy = Tidy(last_ns=0, every_ns=60 * S, at_least_ns=600 * S)
    assert not tidy.due(59 * S, Play.QUIET)
    assert tidy.due(60 * S, Play.QUIET)
    assert not tidy.due(61 * S, Play.ARMED)
    assert not tidy.due(599 * S, Play.ARMED)
    assert tidy.due(600 * S, Play.ARMED)  # a round left armed does not put it off for ever
    assert not tidy.due(600 * S, Play.PRESSING)  # nor does a player mashing a button, but
    assert tidy.due(1200 * S, Play.PRESSING)  # presses hold it off longest


def test_it_sleeps_until_one_is_due_then_looks_again_every_few_seconds() -> None:
    tidy = Tidy(last_ns=0, every_ns=60 * S)
    assert tidy.next_look(1 * S) == 60 * S
    assert tidy.next_look(60 * S) == 60 * S + heap.LOOK_AGAIN_NS
    assert tidy.next_look(100 * S) == 100 * S + heap.LOOK_AGAIN_NS


def test_settling_frees_cycles_then_freezes_the_start_and_takes_full_collections() -> None:
    thresholds = gc.get_threshold()
    garbage = unreachable_cycle()
    try:
        ours = heap.settle()
        assert garbage() is None
        assert gc.get_freeze_count() > 0
        young, middle, oldest = gc.get_threshold()
        assert (young, middle) == thresholds[:2]  # the young generations as CPython has them
        assert ours == (oldest == heap.NEVER)
        if sys.version_info < (3, 14):  # before the incremental collector, the hub's alone
            assert ours
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_keep_tidy_collects_once_the_round_is_no_longer_in_play() -> None:
    asked: list[Play] = []
    collected = asyncio.Event()

    def play(now: int) -> Play:
        asked.append(Play.ARMED if len(asked) < 3 else Play.QUIET)  # armed for three looks
        return asked[-1]

    def full_collection() -> tuple[int, int]:
        collected.set()
        return 0, 0

    start = time.monotonic_ns()
    tidy = Tidy(last_ns=start, every_ns=0, at_least_ns=3600 * S, look_again_ns=1_000_000)
    task = asyncio.create_task(heap.keep_tidy(play, tidy, full_collection))
    try:
        await asyncio.wait_for(collected.wait(), 10)
        assert asked[:4] == [Play.ARMED, Play.ARMED, Play.ARMED, Play.QUIET]
        assert tidy.last_ns > start  # counted from the collection
    finally:
        task.cancel()


async def test_a_collection_that_fails_is_tried_again_not_given_up() -> None:
    tries: list[int] = []
    second = asyncio.Event()

    def full_collection() -> tuple[int, int]:
        tries.append(time.monotonic_ns())
        if len(tries) == 1:
            raise MemoryError("no room to collect in")
        second.set()
        return 0, 0

    tidy = Tidy(last_ns=time.monotonic_ns(), every_ns=1_000_000, look_again_ns=1_000_000)
    task = asyncio.create_task(heap.keep_tidy(lambda now: Play.QUIET, tidy, full_collection))
    try:
        await asyncio.wait_for(second.wait(), 10)
        assert not task.done()
        assert tries[1] - tries[0] >= tidy.every_ns  # a minute's wait here, not a busy loop
    finally:
        task.cancel()
