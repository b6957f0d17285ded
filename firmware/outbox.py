"""Presses whose fate the node does not know yet: its promise that no press is ever lost.

Pure: no clock is read and no socket touched; callers pass ``now``. A press enters when it is made,
is sent (and re-sent after every reconnect, with its original timestamp) and leaves only when both
the hub's ``ack`` (the press is saved) and its ``result`` have arrived, in either order. An ack
alone is not enough: the result may have gone to a link that died before delivering it, and the
hub sends a result only to the node's connection of the moment. Re-sending is always safe, since
the hub counts a press id once and answers a decided press with the same result again.
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
    acked: bool = False  # the hub has saved it
    resulted: bool = False  # its result has arrived


def boot_tag() -> str:
    """Random per start, so press ids stay unique across restarts of the same node."""
    return secrets.token_hex(3)


class Outbox:
    """Presses still waiting for their ack or their result, oldest first."""

    def __init__(self, node_id: str, boot: str | None = None) -> None:
        self._prefix = f"{node_id[:_NODE_PART_MAX]}.{boot or boot_tag()}"
        self._counter = 0
        self._pending: OrderedDict[str, PendingPress] = OrderedDict()
        # Presses that left: a copy of their result (a re-sent press is answered again) is known
        # for what it is and not shown twice.
        self._finished: OrderedDict[str, None] = OrderedDict()
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

    def ack(self, press_id: str) -> bool:
        """Note the hub's ack; True the first time a pending press is acknowledged."""
        press = self._pending.get(press_id)
        if press is None or press.acked:
            return False
        self._settle(replace(press, acked=True))
        return True

    def result(self, press_id: str) -> bool:
        """Note a result; False only when this press's result is already in (a repeated copy).

        A result for a press this outbox never held or has dropped is news: True."""
        press = self._pending.get(press_id)
        if press is None:
            return press_id not in self._finished
        if press.resulted:
            return False
        self._settle(replace(press, resulted=True))
        return True

    def _settle(self, press: PendingPress) -> None:
        if not (press.acked and press.resulted):
            self._pending[press.press_id] = press
            return
        del self._pending[press.press_id]
        self._finished[press.press_id] = None
        while len(self._finished) > MAX_PENDING:
            self._finished.popitem(last=False)

    def pending(self) -> list[PendingPress]:
        return list(self._pending.values())

    def unsent(self) -> list[PendingPress]:
        return [press for press in self._pending.values() if press.last_sent_ns is None]

    def overdue(self, now: int, after_ns: int) -> list[PendingPress]:
        """Presses sent on this link at least ``after_ns`` ago and still waiting."""
        return [
            press
            for press in self._pending.values()
            if press.last_sent_ns is not None and now - press.last_sent_ns >= after_ns
        ]

    def next_overdue(self, after_ns: int) -> int | None:
        """When the first press sent on this link becomes overdue; None if none was sent."""
        sent = [p.last_sent_ns for p in self._pending.values() if p.last_sent_ns is not None]
        return min(sent) + after_ns if sent else None

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, press_id: object) -> bool:
        return press_id in self._pending
