"""When the hub's garbage collector may stop the loop: full collections between rounds.

CPython's collector runs a full collection on its own whenever the objects that survived its
younger collections have grown by a quarter. A full collection walks every object it tracks, and
with a thousand players connected (their connections, tasks and buffers) that stopped the loop for
50 to 60 ms in the benchmark's burst of presses: it came, as such collections do, when a burst had
just allocated the most. Nothing in that burst was cyclic garbage (every collection during the
hub's burst freed none); the hub's objects are freed by reference counting as they are let go.

So the hub does its full collections itself, when no round is in play (:class:`Tidy`), and leaves
the collector only its young generations, which are quick (a few ms at most, even in a burst) and
still free the cycles that die young. Whatever the hub holds at its start is frozen out of
collections altogether (:func:`settle`).

Python 3.14's incremental collector scans the old generation a slice at a time with each young
collection, and ignores the third threshold: there the hub leaves it be (its pauses are short by
design), and the full collections here come on top, as rarely.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from hub.core.machine import Play

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
#: The oldest generation's threshold counts younger collections; this many never come.
NEVER = 1_000_000_000
#: A full collection at most this often, when no round is in play.
TIDY_EVERY_NS = 60 * NS_PER_S
#: At least this often while a round stays armed, and twice this while presses keep coming
#: (between rounds, a player mashing a button): cycles must not pile up for an hour because a
#: host-less room re-arms itself or a round was left armed.
TIDY_AT_LEAST_NS = 10 * 60 * NS_PER_S
#: How often a due collection looks again whether the round has stopped being in play.
LOOK_AGAIN_NS = 5 * NS_PER_S


def settle() -> bool:
    """Freeze what the hub holds at its start, and take full collections from the collector.

    The modules, the config and the restored state live as long as the process: frozen, they are
    never walked again, and still freed by reference counting (one collection first, so no cycle
    is frozen in). Returns whether full collections are now the hub's alone (:func:`keep_tidy`):
    not on a collector that ignores the oldest generation's threshold.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    ours = gc.get_threshold()[2] == NEVER
    if not ours:
        log.debug("this Python's collector keeps its own old-generation scans")
    return ours


@dataclass
class Tidy:
    """When the next full collection is due. Pure: the time comes in."""

    last_ns: int
    every_ns: int = TIDY_EVERY_NS
    at_least_ns: int = TIDY_AT_LEAST_NS
    look_again_ns: int = LOOK_AGAIN_NS

    def due(self, now: int, play: Play) -> bool:
        since = now - self.last_ns
        if play is Play.QUIET:
            return since >= self.every_ns
        return since >= (self.at_least_ns if play is Play.ARMED else 2 * self.at_least_ns)

    def next_look(self, now: int) -> int:
        """When to look again, if a look at ``now`` found nothing due (in play, or too soon)."""
        return max(now + self.look_again_ns, self.last_ns + self.every_ns)


def collect() -> tuple[int, int]:
    """One full collection: the objects it freed, and how long it stopped the loop (ns)."""
    start = time.monotonic_ns()
    freed = gc.collect()
    return freed, time.monotonic_ns() - start


async def keep_tidy(
    play: Callable[[int], Play],
    tidy: Tidy | None = None,
    full_collection: Callable[[], tuple[int, int]] = collect,
) -> None:
    """Run full collections as :class:`Tidy` allows, asking ``play(now)`` about the round, until
    cancelled. One wake-up a minute at idle, one every few seconds while a round is in play.

    A fault here must not end it: the collector would then never collect the oldest generation
    again. It is logged, and the collection tried again when next due.
    """
    tidy = tidy or Tidy(time.monotonic_ns())
    now = time.monotonic_ns()
    while True:
        await asyncio.sleep(max(0, tidy.next_look(now) - now) / NS_PER_S)
        now = time.monotonic_ns()
        try:
            if not tidy.due(now, play(now)):
                continue
            freed, took = full_collection()
            log.debug("full garbage collection: %d objects freed in %.1f ms", freed, took / 1e6)
        except Exception:
            log.exception("full garbage collection failed; it is tried again later")
        now = tidy.last_ns = time.monotonic_ns()
