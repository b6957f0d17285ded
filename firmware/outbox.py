"""Presses the hub has not acknowledged yet: the node's promise that no press is ever lost.

Pure: no clock is read and no socket touched; callers pass ``now``. A press enters when it is made,
is sent (and re-sent after every reconnect, with its original timestamp) and leaves only when the
hub acknowledges its id. The hub counts a press id once, so re-sending is always safe.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace

from wire.messages import ID_PATTERN

#: A station that cannot reach its hub for a whole event still keeps this many presses; beyond it,
#: the oldest go first (they would be stale for any round by then).
MAX_PENDING = 1000
_NODE_PART_MAX = 48  # node id part of a press id; the rest is ".boot.counter" within 64 chars


@dataclass(frozen=True, slots=True)
class PendingPress:
    press_id: str
    at_ns: int  # the press instant in the node's clock: never changes on re-send
    source: str  # gpio, keyboard or terminal
    sends: int = 0  # over all links
    last_sent_ns: int | None = None  # None: not yet sent on the current link


def boot_tag() -> str:
    """Random per start, so press ids stay unique across restarts of the same node."""
    return secrets.token_hex(3)


class Outbox:
    """Unacknowledged presses, oldest first."""

    def __init__(self, node_id: str, boot: str | None = None) -> None:
        self._prefix = f"{node_id[:_NODE_PART_MAX]}.{boot or boot_tag()}"
        self._counter = 0
        self._pending: OrderedDict[str, PendingPress] = OrderedDict()
        self.dropped = 0  # presses pushed out by MAX_PENDING

    def add(self, at_ns: int, source: str) -> PendingPress:
        self._counter += 1
        press_id = f"{self._prefix}.{self._counter}"
        assert ID_PATTERN.fullmatch(press_id), press_id
        press = PendingPress(press_id, at_ns, source)
        self._pending[press_id] = press
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
            self.dropped += 1
        return press

    def mark_sent(self, press_id: str, now: int) -> None:
        press = self._pending.get(press_id)
        if press is not None:
            self._pending[press_id] = replace(press, sends=press.sends + 1, last_sent_ns=now)

    def link_lost(self) -> None:
        """Whatever was sent on a lost link may not have arrived: send it all again on the next."""
        for press_id, press in self._pending.items():
            self._pending[press_id] = replace(press, last_sent_ns=None)

    def ack(self, press_id: str) -> PendingPress | None:
        """Forget an acknowledged press; None if it was not (or no longer) pending."""
        return self._pending.pop(press_id, None)

    def pending(self) -> list[PendingPress]:
        return list(self._pending.values())

    def unsent(self) -> list[PendingPress]:
        return [press for press in self._pending.values() if press.last_sent_ns is None]

    def overdue(self, now: int, after_ns: int) -> list[PendingPress]:
        """Presses sent at least ``after_ns`` ago and still unacknowledged."""
        return [
            press
            for press in self._pending.values()
            if press.last_sent_ns is not None and now - press.last_sent_ns >= after_ns
        ]

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, press_id: object) -> bool:
        return press_id in self._pending
