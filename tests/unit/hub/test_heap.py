"""Full garbage collections only between rounds: when one is due, and that the collector itself
is left only its young generations."""

from __future__ import annotations

import asyncio
import gc
import time

from hub import heap
from hub.heap import Tidy

S = 1_000_000_000


def test_a_full_collection_waits_a_minute_then_for_the_round_to_stop_being_in_play() -> None:
    tidy = Tidy(last_ns=0, every_ns=60 * S, at_least_ns=600 * S)
    assert not tidy.due(59 * S, in_play=False)
    assert tidy.due(60 * S, in_play=False)
    assert not tidy.due(61 * S, in_play=True)
    assert not tidy.due(599 * S, in_play=True)
    assert tidy.due(600 * S, in_play=True)  # a round left armed does not put it off for ever


def test_it_sleeps_until_one_is_due_then_looks_again_every_few_seconds() -> None:
    tidy = Tidy(last_ns=0, every_ns=60 * S)
    assert tidy.next_look(1 * S) == 60 * S
    assert tidy.next_look(60 * S) == 60 * S + heap.LOOK_AGAIN_NS
    assert tidy.next_look(100 * S) == 100 * S + heap.LOOK_AGAIN_NS


def test_settling_freezes_the_start_and_takes_full_collections_from_the_collector() -> None:
    thresholds = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0
        young, middle, oldest = gc.get_threshold()
        assert (young, middle) == thresholds[:2]  # the young generations as CPython has them
        assert oldest == heap.NEVER
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_keep_tidy_collects_once_the_round_is_no_longer_in_play() -> None:
    asked: list[bool] = []
    collected = asyncio.Event()

    def in_play(now: int) -> bool:
        asked.append(len(asked) < 3)  # in play for the first three looks
        return asked[-1]

    def full_collection() -> tuple[int, int]:
        collected.set()
        return 0, 0

    start = time.monotonic_ns()
    tidy = Tidy(last_ns=start, every_ns=0, at_least_ns=3600 * S, look_again_ns=1_000_000)
    task = asyncio.create_task(heap.keep_tidy(in_play, tidy, full_collection))
    try:
        await asyncio.wait_for(collected.wait(), 10)
        assert asked[:4] == [True, True, True, False]
        assert tidy.last_ns > start  # counted from the collection
    finally:
        task.cancel()
