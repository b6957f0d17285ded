"""Messages read from the sockets and not yet handled: until when the hub has handled all it read.

Each connection's messages are handled by that connection's task. Frames read in one turn of the
event loop (every socket that was ready) are therefore handled one after another, in whatever
order the tasks run, and in a burst the last may wait many milliseconds behind the first. A round
must not be decided while a press read before its deadline still waits its turn: that press may
be the earliest. :class:`Backlog` tells how far the hub has got (:meth:`Backlog.settled_ns`); the
core holds a decision until then (:class:`hub.round.Press`).
"""

from __future__ import annotations

from collections import deque


class Read:
    """One message read: when, and whether it has been handled since."""

    __slots__ = ("at_ns", "handled")

    def __init__(self, at_ns: int) -> None:
        self.at_ns = at_ns
        self.handled = False


class Backlog:
    """Every message read and not yet handled, in the order read (which is the order of time)."""

    def __init__(self) -> None:
        self._reads: deque[Read] = deque()

    def read(self, at_ns: int) -> Read:
        """A message was read at ``at_ns``; mark the returned :class:`Read` handled once it is."""
        entry = Read(at_ns)
        self._reads.append(entry)
        return entry

    def settled_ns(self, floor_ns: int) -> int | None:
        """When the oldest message still waiting was read: every one read before has been
        handled. None: none waits. A message read before ``floor_ns`` no longer counts, handled
        or not: one left unhandled by a fault must not hold every later round (the server
        passes the adjudication cap's age). Entries are dropped from the front as they come
        to it, so a burst costs one step per message."""
        reads = self._reads
        while reads and (reads[0].handled or reads[0].at_ns < floor_ns):
            reads.popleft()
        return reads[0].at_ns if reads else None
