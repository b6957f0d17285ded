"""When to ask each node for its clock, and each tutorial client for its round trip.

A node gets a burst of sync requests as it joins (its clock is unknown, and presses it made while
away wait until it is placed), then one every few seconds, jittered. Tutorial clients have no
clock to sync; their round trip is measured with WebSocket pings instead. Outstanding requests
are remembered per link so that a reply is matched to the request it answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hub.core.agenda import Agenda
from hub.core.outputs import LinkId

#: Sync requests a node may leave unanswered; older ones are forgotten.
OUTSTANDING_SYNCS = 16
#: Periodic syncs are spread this far either side of the interval (a fraction of it).
SYNC_JITTER = 0.25
NS_PER_S = 1_000_000_000


def sync_gap_ns(interval_ns: int, rng: random.Random) -> int:
    """The wait before a node's next periodic sync: the interval, give or take SYNC_JITTER.

    Nodes that join together (a room powering up, every node returning after a hub restart)
    would otherwise sync in lockstep for ever: a thousand exchanges in a fraction of a second
    every interval, so that each sample waits behind the others, every node's measured upload
    delay grows, and with it the adjudication wait. Jitter spreads them over the interval
    within a few rounds.
    """
    return round(interval_ns * rng.uniform(1 - SYNC_JITTER, 1 + SYNC_JITTER))


@dataclass(slots=True)
class _Exchange:
    """One link's sync requests: how many were sent, and those still unanswered."""

    sent: int = 0
    outstanding: dict[int, int] = field(default_factory=dict)  # seq -> t0


@dataclass
class SyncSchedule:
    burst: int  # requests right after a node joins
    burst_gap_ns: int
    interval_ns: int  # then one this often (jittered)
    rng: random.Random
    agenda: Agenda[tuple[str, LinkId]] = field(default_factory=Agenda)
    _exchanges: dict[LinkId, _Exchange] = field(default_factory=dict)

    def start_node(self, link: LinkId, now: int) -> None:
        self._exchanges[link] = _Exchange()
        self.agenda.set(("sync", link), now)

    def start_tutorial(self, link: LinkId, now: int) -> None:
        self.agenda.set(("ping", link), now)

    def stop(self, link: LinkId) -> None:
        self._exchanges.pop(link, None)
        self.agenda.cancel(("sync", link))
        self.agenda.cancel(("ping", link))

    def due(self, now: int) -> tuple[list[tuple[LinkId, int]], list[LinkId]]:
        """The syncs to send now, as (link, seq) with t0 = ``now``, and the links to ping."""
        syncs: list[tuple[LinkId, int]] = []
        pings: list[LinkId] = []
        for kind, link in self.agenda.pop_due(now):
            if kind == "ping":
                pings.append(link)
                self.agenda.set(("ping", link), now + self.interval_ns)
                continue
            exchange = self._exchanges.get(link)
            if exchange is None:
                continue
            seq = exchange.sent
            exchange.sent += 1
            exchange.outstanding[seq] = now
            exchange.outstanding.pop(seq - OUTSTANDING_SYNCS, None)
            burst = seq + 1 < self.burst
            gap = self.burst_gap_ns if burst else sync_gap_ns(self.interval_ns, self.rng)
            self.agenda.set(("sync", link), now + gap)
            syncs.append((link, seq))
        return syncs, pings

    def answer(self, link: LinkId, seq: int, t0_ns: int) -> bool:
        """Whether a reply matches a request still outstanding on this link (and forget it)."""
        exchange = self._exchanges.get(link)
        if exchange is None or exchange.outstanding.get(seq) != t0_ns:
            return False
        del exchange.outstanding[seq]
        return True

    def next(self) -> int | None:
        return self.agenda.next()
