"""When each of many small jobs is next due: a heap with lazy cancellation.

The hub keeps one wake-up for everything (a thousand nodes' clock syncs, greeting deadlines,
the round's own deadline), so finding what is due must not cost a scan of every connection.
Rescheduling or cancelling a job leaves its old heap entry behind; it is skipped when it surfaces.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Agenda(Generic[K]):
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, K]] = []
        self._due: dict[K, int] = {}
        self._order = itertools.count()  # equal times come out in the order they were set

    def set(self, key: K, when: int) -> None:
        """Due at ``when`` (replacing any earlier time for the same key)."""
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._order), key))

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)

    def when(self, key: K) -> int | None:
        return self._due.get(key)

    def pop_due(self, now: int) -> list[K]:
        """Every key due at or before ``now``, earliest first; each is then off the agenda."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._due.get(key) == when:
                del self._due[key]
                due.append(key)
        return due

    def next(self) -> int | None:
        """The earliest time anything is due, or None when nothing is."""
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._due)
