"""One physical press, one press event: the single way every input hands its edges to the node.

A source (a GPIO button, the keyboard package, a terminal) only turns its device's events into
edges or taps, stamped as close to the event as it can, and gives them to its :class:`Handoff`.
The handoff carries them to the asyncio loop, in order, drops bounce and auto-repeat with a
:class:`PressGuard`, and calls the node's sink once per press. Sources differ in their devices and
threads, never in these rules, so the rules live here once.

Two shapes of input exist:

- sources that report releases (a GPIO button, the keyboard package): a press counts when the input
  was released and the line had been quiet for ``quiet_ns``. Contact bounce is a burst of edges
  closer than that; auto-repeat is a string of downs with no up between them.
- sources that report only characters (a terminal): there is no release, so a character counts
  only after ``quiet_ns`` without any; a held key's repeats keep the line busy and never count.

A button also confirms each press (``confirm_ns``): the press is stamped with its first edge, and
counts once the line has then stayed active that long without a break, so that a glitch (a
spark, interference on a long cable: active for microseconds) is not a press, while contact
bounce, however long, never moves the stamp. The kernel's own debounce cannot do this: it
reports an edge only after the line has been stable, stamped that much after the first contact.

The guard is pure: every call takes ``now`` (the edge's timestamp in the node clock), so the rules
are tested with exact numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

#: Where presses go: ``sink(at_ns, kind)``, called on the loop thread.
PressSink = Callable[[int, str], None]
Clock = Callable[[], int]


class PressGuard:
    def __init__(self, quiet_ns: int, confirm_ns: int = 0) -> None:
        self.quiet_ns = quiet_ns
        self.confirm_ns = confirm_ns
        self._last_edge_ns: int | None = None
        self._down = False
        self._first_ns: int | None = None  # the first edge of a press not confirmed yet
        self._active_since: int | None = None  # while it may be confirmed: the last active edge

    def _quiet(self, now: int) -> bool:
        return self._last_edge_ns is None or now - self._last_edge_ns >= self.quiet_ns

    def edge(self, now: int, active: bool) -> bool:
        """A level change (True: pressed); returns whether it starts a new press (with
        ``confirm_ns``, never: a press is then only ever counted by :meth:`confirm`)."""
        quiet = self._quiet(now)
        self._last_edge_ns = now
        if self.confirm_ns:
            return self._candidate(now, active, quiet)
        if not active:
            self._down = False
            return False
        if self._down:  # auto-repeat, or a press edge without a release in between
            return False
        self._down = True
        return quiet

    def _candidate(self, now: int, active: bool, quiet: bool) -> bool:
        if not active:
            self._active_since = None
            self._down = False
            return False
        if quiet and not self._down:  # a press may start here (a glitch long past is forgotten)
            self._first_ns = now
        if self._first_ns is not None:  # bouncing, or the first edge itself
            self._active_since = now
        return False

    @property
    def due_ns(self) -> int | None:
        """When the press waiting for confirmation can be confirmed, if the line stays active."""
        if self._first_ns is None or self._active_since is None:
            return None
        return self._active_since + self.confirm_ns

    def confirm(self, now: int, active: bool = True) -> int | None:
        """The first edge's instant, once the line has stayed active ``confirm_ns`` (``active``:
        it still is, as the pin reads now, whatever edges are still on their way)."""
        due = self.due_ns
        if due is None or now < due or not active:
            return None
        stamp, self._first_ns, self._active_since = self._first_ns, None, None
        self._down = True
        return stamp

    def tap(self, now: int) -> bool:
        """A character with no release event; returns whether it starts a new press."""
        quiet = self._quiet(now)
        self._last_edge_ns = now
        return quiet


class Handoff:
    """An input's edges, from whatever thread its device calls back on, to presses on the loop.

    :meth:`edge` and :meth:`tap` may be called from any thread, the loop's own included: they
    only stamp and post. A source that knows its event's instant better than "now" (a timestamp
    from the kernel or the pin driver, already in the node clock) passes it as ``at_ns``;
    otherwise the handoff reads the clock first thing, as close to the edge as this process can.
    The guard then sees the edges on the loop thread in the order they were handed over, so it
    needs no lock.
    """

    def __init__(
        self,
        kind: str,
        quiet_ns: int,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        sink: PressSink,
        confirm_ns: int = 0,
        level: Callable[[], bool] | None = None,
    ) -> None:
        self.kind = kind
        self._guard = PressGuard(quiet_ns, confirm_ns)
        self._loop = loop
        self._clock = clock
        self._sink = sink
        self._level = level  # whether the input is active now (read when confirming)
        self._check: asyncio.TimerHandle | None = None

    def edge(self, active: bool, at_ns: int | None = None) -> None:
        """The input went down (``active``) or up."""
        at = self._clock() if at_ns is None else at_ns
        self._loop.call_soon_threadsafe(self._edge, at, active)

    def close(self) -> None:
        """No confirmation after this (the source is going away)."""
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def tap(self, at_ns: int | None = None) -> None:
        """The input reported a press with no release to follow (a character)."""
        at = self._clock() if at_ns is None else at_ns
        self._loop.call_soon_threadsafe(self._tap, at)

    def _edge(self, at: int, active: bool) -> None:
        if self._guard.edge(at, active):
            self._sink(at, self.kind)
        elif self._guard.confirm_ns:
            self._confirm_later()

    def _confirm_later(self) -> None:
        """Check for the confirmation when it is due (after each edge, until it is done)."""
        if self._check is not None:
            self._check.cancel()
            self._check = None
        due = self._guard.due_ns
        if due is not None:
            wait = max(0.0, (due - self._clock()) / 1e9)
            self._check = self._loop.call_later(wait, self._confirm)

    def _confirm(self) -> None:
        self._check = None
        active = self._level() if self._level is not None else True
        stamp = self._guard.confirm(self._clock(), active)
        if stamp is not None:
            self._sink(stamp, self.kind)
        elif active:
            self._confirm_later()  # not due yet by the node clock: look again then

    def _tap(self, at: int) -> None:
        if self._guard.tap(at):
            self._sink(at, self.kind)
