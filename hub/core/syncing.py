"""When to ask each node for its clock, and each tutorial client for its round trip.

A node gets a burst of sync requests as it joins (its clock is unknown, and presses it made while
away wait until it is placed), then one every ``interval`` while its filter converges. As in NTP
(RFC 5905, section 7.3: the poll interval grows while the clock is stable), the gap then doubles
with every fast sample its fit predicted, up to ``max_interval``, for as long as the drift fit
stays good enough that unknown drift adds little before the next sync; a sample the fit did not
predict brings the gap back to ``interval``. A link with few fast samples to choose from (Wi-Fi's
jitter) is synced often all the same: each sample is a chance of a fast one. Every gap is
jittered. Outstanding requests are remembered per link so that a reply is matched to the request
it answers.

Every link also gets WebSocket pings, from its opening until it greets as a host or a viewer (a
player's link for its life): a few at first, then as rarely as its round trip stays put
(PING_GAPS_NS), and only at the longest gap while no player has joined on it. A tutorial client
has no clock to sync, so its round trip is all that places its presses; a node's round trip is
what its link can explain whatever its sync replies claim (see :mod:`hub.core.presses`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hub.clock import ClockEstimate, SyncSample
from hub.core.agenda import Agenda
from hub.core.outputs import LinkId

#: Sync requests a node may leave unanswered; older ones are forgotten.
OUTSTANDING_SYNCS = 16
#: Periodic syncs are spread this far either side of the interval (a fraction of it).
SYNC_JITTER = 0.25
NS_PER_S = 1_000_000_000
#: Pings as a link joins, this far apart; then from the shortest to the longest gap, doubling
#: while the link's round trip stays where it was.
PING_BURST = 3
PING_BURST_GAP_NS = 50_000_000
PING_GAPS_NS = (5_000_000_000, 60_000_000_000)
#: How much unknown drift may add to a node's uncertainty between two syncs: the gap grows only
#: while the fitted drift is known well enough for that (and a round tightens it again).
DRIFT_BUDGET_NS = 50_000
#: On a link with plenty of fast samples whose estimate is less sure than that anyway (a busy
#: host's), drift may add this share of the estimate's own uncertainty instead: 50 µs would hold
#: a link uncertain by 400 µs to syncing every few seconds, for a gain nobody could see.
DRIFT_SHARE = 0.25
#: Fast samples (see FilterSettings.good_delay_slack_ns) an estimate needs to count as having
#: plenty to choose from: then a slow sample the fit predicted leaves the gap as it is, where
#: it would otherwise halve it.
PLENTY_FAST = 4
#: The gap never exceeds this fraction of the time the clock's fit rests on.
SPAN_SHARE = 4


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
class _Pinging:
    """One link's pings: how many went out, and the gap before the next."""

    sent: int = 0
    gap_ns: int = PING_GAPS_NS[0]
    # No player on the link yet (a tutorial client that has not buzzed, a page still loading):
    # after its first pings, only the longest gap. A thousand silent clients would otherwise be
    # pinged a hundred times a second through their first minute, for presses none has made.
    waiting: bool = True


@dataclass(slots=True)
class _Exchange:
    """One link's sync requests: how many were sent, and those still unanswered."""

    sent: int = 0
    outstanding: dict[int, int] = field(default_factory=dict)  # seq -> t0
    gap_ns: int = 0  # the current periodic gap, before jitter (0: the schedule's interval)
    last_ns: int = 0  # when the latest request went out


@dataclass
class SyncSchedule:
    burst: int  # requests right after a node joins
    burst_gap_ns: int
    interval_ns: int  # then one this often (jittered) while converging
    rng: random.Random
    max_interval_ns: int = 0  # backing off at most to this (0: never beyond interval_ns)
    agenda: Agenda[tuple[str, LinkId]] = field(default_factory=Agenda)
    _exchanges: dict[LinkId, _Exchange] = field(default_factory=dict)
    _pinging: dict[LinkId, _Pinging] = field(default_factory=dict)

    def start_node(self, link: LinkId, now: int) -> None:
        """A node joined: sync it, and measure its round trip afresh with a burst of pings.
        Those from before its hello are not trusted to bound its claims: a page still loading,
        or a busy machine, answered them slowly, and the slowest round trip is how early a
        press from the link may claim to have been made. (Its player is marked
        :meth:`joined` as it takes the link's round trips.)"""
        self._exchanges[link] = _Exchange()
        self.agenda.set(("sync", link), now)
        self.start_pinging(link, now)

    def start_pinging(self, link: LinkId, now: int) -> None:
        self._pinging[link] = _Pinging()
        self.agenda.set(("ping", link), now)

    def joined(self, link: LinkId) -> None:
        """A player joined on this link: its round trip places presses from now on, and is
        measured as often as that needs."""
        pinging = self._pinging.get(link)
        if pinging is not None:
            pinging.waiting = False

    def stop(self, link: LinkId) -> None:
        self._exchanges.pop(link, None)
        self._pinging.pop(link, None)
        self.agenda.cancel(("sync", link))
        self.agenda.cancel(("ping", link))

    def due(self, now: int, by: int) -> tuple[list[tuple[LinkId, int]], list[LinkId]]:
        """The syncs to send now, as (link, seq) with t0 = ``now``, and the links to ping: those
        due by ``by``, a little early being as good as on time."""
        syncs: list[tuple[LinkId, int]] = []
        pings: list[LinkId] = []
        for kind, link in self.agenda.pop_due(by):
            if kind == "ping":
                pinging = self._pinging.get(link)
                if pinging is not None:
                    pinging.sent += 1
                    burst = pinging.sent < PING_BURST
                    longest = PING_GAPS_NS[1] if pinging.waiting else pinging.gap_ns
                    gap = PING_BURST_GAP_NS if burst else sync_gap_ns(longest, self.rng)
                    self.agenda.set(("ping", link), now + gap)
                    pings.append(link)
                continue
            exchange = self._exchanges.get(link)
            if exchange is None:
                continue
            seq = exchange.sent
            exchange.sent += 1
            exchange.last_ns = now
            exchange.outstanding[seq] = now
            exchange.outstanding.pop(seq - OUTSTANDING_SYNCS, None)
            burst = seq + 1 < self.burst
            gap = self.burst_gap_ns if burst else sync_gap_ns(self._gap(exchange), self.rng)
            self.agenda.set(("sync", link), now + gap)
            syncs.append((link, seq))
        return syncs, pings

    def _gap(self, exchange: _Exchange) -> int:
        return exchange.gap_ns or self.interval_ns

    def gap_ns(self, link: LinkId) -> int:
        """The link's current periodic gap (before jitter)."""
        exchange = self._exchanges.get(link)
        return self.interval_ns if exchange is None else self._gap(exchange)

    def adapt(
        self, link: LinkId, holds: bool, good: bool, estimate: ClockEstimate, settled: bool
    ) -> int:
        """A reply came in: set the gap before the next periodic sync, and return it.

        ``holds``: the fit before this sample predicted it; ``good``: the sample's round trip
        was close to the fastest (it says something precise about the clock); ``settled``: the
        filter has enough samples from after the link's first seconds to judge the link at all.
        A surprise brings the gap back to ``interval``. A good sample the fit predicted doubles
        it, as far as the drift budget and ``max_interval`` allow. A slow one halves it when the
        estimate has few fast samples to choose from (a jittery link: Wi-Fi's, where each sample
        is a chance of a fast one, as NTP polls more often when its jitter is high), and leaves
        it where the estimate has plenty (a link slowed now and then, by a busy host).
        """
        exchange = self._exchanges.get(link)
        if exchange is None:
            return self.interval_ns
        current = self._gap(exchange)
        gap = self.interval_ns
        plenty = estimate.fast_samples >= PLENTY_FAST
        drift = estimate.drift_error_ppm
        budget = max(DRIFT_BUDGET_NS, DRIFT_SHARE * estimate.uncertainty_ns if plenty else 0)
        limit = round(budget / drift * 1e6) if drift > 0 else self.max_interval_ns
        # A line predicts well only a fraction of the time it was fitted over: its drift error,
        # estimated from few samples, is itself uncertain.
        limit = min(limit, estimate.span_ns // SPAN_SHARE, self.max_interval_ns)
        if holds and settled and good:
            gap = max(gap, min(2 * current, limit))
        elif holds and settled:
            gap = max(gap, min(current if plenty else current // 2, limit))
        if gap != current and exchange.sent >= self.burst:
            # The next request was scheduled with the old gap when the last one went out.
            self.agenda.set(("sync", link), exchange.last_ns + sync_gap_ns(gap, self.rng))
        exchange.gap_ns = gap
        return gap

    def pinged(self, link: LinkId, steady: bool) -> None:
        """A pong came back; ``steady``: the round trip is where the link's recent ones were.
        The gap before the next ping doubles while it is (from the next one on), else shrinks
        to the shortest: a link whose round trip moved is measured again soon."""
        pinging = self._pinging.get(link)
        if pinging is not None:
            shortest, longest = PING_GAPS_NS
            pinging.gap_ns = min(2 * pinging.gap_ns, longest) if steady else shortest

    def hurry(self, link: LinkId, now: int) -> None:
        """Sync this link now (a round is about to need its clock)."""
        if link in self._exchanges:
            self.agenda.set(("sync", link), now)

    def answer(self, link: LinkId, seq: int, t0_ns: int) -> bool:
        """Whether a reply matches a request still outstanding on this link (and forget it)."""
        exchange = self._exchanges.get(link)
        if exchange is None or exchange.outstanding.get(seq) != t0_ns:
            return False
        del exchange.outstanding[seq]
        return True

    def next(self) -> int | None:
        return self.agenda.next()


def fit_holds(previous: ClockEstimate | None, sample: SyncSample) -> bool:
    """Whether a new sample is where the fit before it said it would be.

    Allowed: twice the estimate's own uncertainty there, plus half of how much longer the
    sample's round trip was than the fastest (it may have spent all of that in one direction).
    A clock that wandered further, say a crystal warming up, fails it: the schedule then
    tightens until the fit catches up.
    """
    if previous is None:
        return False
    mid = sample.midpoint_ns
    excess = max(0, sample.delay_ns - previous.rtt_ns)
    allowed = 2 * previous.uncertainty_at(mid) + excess // 2
    return abs(sample.offset_ns - previous.offset_at(mid)) <= allowed
