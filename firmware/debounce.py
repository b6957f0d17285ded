"""One physical press, one press event: bounce and key auto-repeat filtered out.

Pure: every call takes ``now`` (the edge's timestamp in the node clock), so the rules are tested
with exact numbers. Two shapes of input exist:

- sources that report releases (a GPIO button, the keyboard package): a press counts when the input
  was released and the line had been quiet for ``quiet_ns``. Contact bounce is a burst of edges
  closer than that; auto-repeat is a string of downs with no up between them.
- sources that report only characters (a terminal): there is no release, so a character counts
  only after ``quiet_ns`` without any; a held key's repeats keep the line busy and never count.
"""

from __future__ import annotations


class PressGuard:
    def __init__(self, quiet_ns: int) -> None:
        self.quiet_ns = quiet_ns
        self._last_edge_ns: int | None = None
        self._down = False

    def _quiet(self, now: int) -> bool:
        return self._last_edge_ns is None or now - self._last_edge_ns >= self.quiet_ns

    def edge(self, now: int, active: bool) -> bool:
        """A level change (True: pressed); returns whether it starts a new press."""
        quiet = self._quiet(now)
        self._last_edge_ns = now
        if not active:
            self._down = False
            return False
        if self._down:  # auto-repeat, or a press edge without a release in between
            return False
        self._down = True
        return quiet

    def tap(self, now: int) -> bool:
        """A character with no release event; returns whether it starts a new press."""
        quiet = self._quiet(now)
        self._last_edge_ns = now
        return quiet
