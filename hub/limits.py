"""Pure limit arithmetic: per-connection message budgets and the connection cap.

No sockets and no clock reads: callers pass ``now`` in nanoseconds, so the rules can be tested
with exact timestamps and reused by anything that needs the same budget (the firmware, a bench).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class TokenBucket:
    """A budget of ``burst`` messages that refills at ``rate`` messages per second.

    A token bucket rather than a fixed window: a node's burst of clock-sync replies right after it
    connects, followed by a press, must pass, while a client that keeps sending faster than any
    real station could is stopped within ``burst`` messages.
    """

    rate: float
    burst: int
    tokens: float = field(init=False)
    updated_ns: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a rate above zero and a burst of at least 1")
        self.tokens = float(self.burst)

    def take(self, now_ns: int) -> bool:
        """Spend one token for a message arriving at ``now_ns``; False when the budget is gone."""
        if self.updated_ns is not None and now_ns > self.updated_ns:
            earned = (now_ns - self.updated_ns) * self.rate / NS_PER_S
            self.tokens = min(float(self.burst), self.tokens + earned)
        if self.updated_ns is None or now_ns > self.updated_ns:
            self.updated_ns = now_ns
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def room_for_connection(open_connections: int, max_connections: int) -> bool:
    """Whether one more connection fits under the cap (0 means no cap)."""
    return max_connections == 0 or open_connections < max_connections


def too_slow(buffered_bytes: int, limit_bytes: int) -> bool:
    """Whether a peer has left so much unsent data queued that it must be dropped (0: no limit).

    Checked before each send: a peer that reads normally drains its buffer between two frames;
    one that stops reading only ever grows it.
    """
    return limit_bytes > 0 and buffered_bytes > limit_bytes


@dataclass(slots=True)
class RunOfJoins:
    """Tutorial clients joining, one log line per ``interval_ns``; the others are summed in one
    line once the interval is over.

    A tutorial client's first ``buzz`` is its greeting, so a room of them joins within the burst
    of their first presses: a line each cost the hub about 25 µs there (the burst took a fifth
    less CPU without them), and put a thousand lines in a Pi's journal. Each join is still told,
    at debug level.
    """

    interval_ns: int
    count: int = 0  # joins since the last line, not yet in one
    first: str = ""
    last: str = ""
    _line_ns: int | None = None  # when the last line was written

    def loud(self, player: str, now_ns: int) -> bool:
        """Whether this join gets a line of its own (else it is counted for the next sum)."""
        line = self._line_ns
        if self.count == 0 and (line is None or now_ns - line >= self.interval_ns):
            self._line_ns = now_ns
            return True
        self.first = self.first or player
        self.last = player
        self.count += 1
        return False

    @property
    def due_ns(self) -> int | None:
        """When the joins counted are to be summed (None: none are)."""
        if self.count == 0 or self._line_ns is None:
            return None
        return self._line_ns + self.interval_ns

    def summed(self, now_ns: int) -> tuple[int, str, str] | None:
        """The joins counted, once their interval is over: how many, the first and the last."""
        due = self.due_ns
        if due is None or now_ns < due:
            return None
        run = (self.count, self.first, self.last)
        self._line_ns, self.count, self.first, self.last = now_ns, 0, "", ""
        return run


class LogThrottle:
    """At most one log line per key (say, an address and a refusal) per interval.

    A script retrying a refused upgrade in a loop would otherwise write a line per attempt and fill
    the journal; the next line that does get through says how many were left out.
    """

    def __init__(self, interval_ns: int, capacity: int = 1024) -> None:
        self.interval_ns = interval_ns
        self.capacity = capacity
        self._last: dict[object, tuple[int, int]] = {}  # key -> (logged at, suppressed since)

    def allow(self, key: object, now_ns: int) -> int | None:
        """None to stay quiet; otherwise log, mentioning the returned count of quiet refusals."""
        entry = self._last.get(key)
        if entry is not None and now_ns - entry[0] < self.interval_ns:
            self._last[key] = (entry[0], entry[1] + 1)
            return None
        if entry is None and len(self._last) >= self.capacity:
            self._forget(now_ns)
        self._last[key] = (now_ns, 0)
        return 0 if entry is None else entry[1]

    def _forget(self, now_ns: int) -> None:
        """Make room: drop keys whose interval is over, or else the oldest half."""
        expired = [k for k, (at, _) in self._last.items() if now_ns - at >= self.interval_ns]
        for key in expired or list(self._last)[: self.capacity // 2]:
            del self._last[key]


class RepeatFilter(logging.Filter):
    """Lets one record of each message through per interval; the next one says how many like it
    were held back.

    For the event loop's own warnings about peers that vanished mid-write ("socket.send()
    raised exception."): twenty clients that ping and disappear produced thousands of them in
    two seconds. Records carry their creation time, so no clock is read here.
    """

    def __init__(self, interval_ns: int) -> None:
        super().__init__()
        self._throttle = LogThrottle(interval_ns)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg if isinstance(record.msg, str) else repr(record.msg))
        left_out = self._throttle.allow(key, round(record.created * NS_PER_S))
        if left_out is None:
            return False
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like it not logged)"
        return True
