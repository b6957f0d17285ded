"""Garbage only the cyclic collector can free, to tell whether a collection ran."""

from __future__ import annotations

import weakref


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def unreachable_cycle() -> weakref.ref[object]:
    """A reference to an object in a cycle nothing else reaches: it stays until a full
    collection frees it (frozen first, it would stay for good)."""
    return weakref.ref(_Cycle())
