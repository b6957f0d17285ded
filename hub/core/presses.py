"""A press as the engine needs it: its instant in hub time, how far that may be off, and how long
an earlier press could still be in flight (the adjudication horizon).

A node stamps its press in its own monotonic clock; the clock filter turns that into hub time.
A tutorial client stamps nothing: its press was made somewhere within the last round trip before
the frame arrived. Neither may claim a press later than its arrival.

A timestamp is a claim, and nothing checks it but the link it came over: a press cannot have
been made earlier than its arrival minus the longest its link's messages have lately taken. A
node's sync replies would say how long that is, but a node can hold them back to make its link
look slow; the WebSocket pings, answered by the protocol stack rather than the node's program,
say it instead, and a cap per kind of station bounds it. A press claiming more (a liar, or an
honest press held up longer than anything the link showed) is placed at the earliest credible
instant, its uncertainty widened to reach its claim, and flagged ``clamped`` for the host; the
engine ranks it as made at its arrival, the latest it can have been (:class:`hub.round.PressIn`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hub.clock import adjudication_horizon
from hub.core.roster import Player, Roster
from hub.round import PressIn
from wire.enums import InputKind

#: How far a timestamp may be off because of the input itself, on top of clock error: a GPIO edge
#: is stamped in a callback within about 0.1 ms; keyboards are polled (USB at 1 kHz); terminals
#: and browsers go through an event loop first.
INPUT_UNCERTAINTY_NS = {
    InputKind.GPIO: 100_000,
    InputKind.KEYBOARD: 1_000_000,
    InputKind.TERMINAL: 2_000_000,
    InputKind.BROWSER: 2_000_000,
    InputKind.TEXT: 1_000_000,
}
#: A press from a link whose clock is not known yet (or a tutorial client before its first pong).
UNKNOWN_RTT_UNCERTAINTY_NS = 10_000_000
#: Every player's delay is counted afresh this often (it is O(players)); in between, a player
#: whose delay moved (a join, a leave, a sync reply, a pong) is placed again on its own.
HORIZON_REFRESH_NS = 500_000_000


@dataclass(frozen=True)
class Trust:
    """What a press may claim: ``margin_ns`` for the time between the edge and the press leaving
    the node (which no exchange sees), and a cap per kind of station on what its link explains."""

    margin_ns: int = 10_000_000
    caps_ns: Mapping[InputKind, int] = field(default_factory=dict)

    def cap(self, kind: InputKind) -> int | None:
        return self.caps_ns.get(kind)


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def credible_upload(player: Player, trust: Trust) -> int | None:
    """How long before its arrival a press from this node may have been made, at most (the
    allowance aside); None while its clock is unknown.

    The longest of its recent ping round trips: the protocol stack answers pings, so they show
    the link and the node's own delays alike, and a node holding its sync replies back gains
    nothing. Before any ping has come back, the longest any recent sync reply took. Never more
    than the cap for its kind of station.
    """
    estimate = player.clock.estimate
    if estimate is None:
        return None
    high = player.pings.high_ns
    value = estimate.upload_max_ns if high is None else high
    return _capped(value, trust.cap(player.input))


def node_press(
    player: Player, press_id: str, at_ns: int, now: int, trust: Trust | None = None
) -> PressIn:
    """A node's press in hub time; unsynced, it is placed at its arrival."""
    estimate = player.clock.estimate
    floor = INPUT_UNCERTAINTY_NS[player.input]
    claimed = None
    if estimate is not None:
        at = min(estimate.to_hub(at_ns), now)  # nothing is pressed after it arrives
        uncertainty = estimate.uncertainty_at(at) + floor
        trust = trust or Trust()
        credible = credible_upload(player, trust)
        assert credible is not None
        earliest = now - credible - trust.margin_ns
        if at < earliest:
            claimed, at = at, earliest
            uncertainty += earliest - claimed  # it may still be honest: its claim stays in reach
    else:  # not synced yet: the arrival time is all we have
        at, uncertainty = now, UNKNOWN_RTT_UNCERTAINTY_NS + floor
    return PressIn(
        player=player.id,
        press_id=press_id,
        at_ns=at,
        arrival_ns=now,
        uncertainty_ns=uncertainty,
        raw_ns=at_ns,
        synced=estimate is not None,
        claimed_ns=claimed,
        by_arrival=claimed is not None,
    )


def tutorial_press(player: Player, now: int, trust: Trust | None = None) -> PressIn:
    """A tutorial client's ``buzz``: placed half its fastest recent round trip before it
    arrived (no more than its kind's cap)."""
    rtt = player.rtt_ns
    back = _capped((rtt or 0) // 2, trust.cap(player.input) if trust else None)
    return PressIn(
        player=player.id,
        press_id=f"{player.id}-{now}",
        at_ns=now - back,
        arrival_ns=now,
        uncertainty_ns=tutorial_uncertainty(rtt),
        synced=False,
    )


def tutorial_uncertainty(rtt_ns: int | None) -> int:
    """A tutorial client's press instant: the frame left it somewhere within the last round trip.

    Ranking it at arrival minus half the round trip is off by at most half the round trip, in
    either direction, however the path is split: that is its uncertainty and its bound at once.
    """
    rtt = UNKNOWN_RTT_UNCERTAINTY_NS * 2 if rtt_ns is None else rtt_ns
    return rtt // 2 + INPUT_UNCERTAINTY_NS[InputKind.TEXT]


_RECOUNT = object()  # a round key no state of play has: the heap is built afresh


@dataclass
class Horizon:
    """The longest a press from any connected player who could still be ranked could still be
    in flight, kept fresh.

    Each player counts with its upload delay (a node) or half its round trip (a tutorial
    client), held to what its pings show and to its kind's cap: one node cannot make every
    round wait longer than that, whatever its sync replies claim. A node's time before a press
    leaves it, which no exchange sees, counts on top: the least its hello says (a button's
    confirmation window), or what its recent presses spent on it if longer
    (:class:`hub.clock.PressLeads`; only synced presses the link explains count). Only the
    station says it, so no more than ``lead_cap_ns`` counts: a liar stretches a round by that
    much at most.

    A player whose press can no longer change the round (locked out of it, or already counted
    in it) is not waited for: twenty stations mashing between rounds, locked out by their early
    presses, made every honest round wait for their links, which the hub's own work on their
    presses had slowed.
    """

    margin_ns: int
    cap_ns: int
    caps_ns: Mapping[InputKind, int] = field(default_factory=dict)
    lead_cap_ns: int = 0  # the most of a node's time before its press leaves that counts
    _delay_of: dict[str, int] = field(default_factory=dict)  # every online player's delay
    # (-delay, id), longest first: the players who may still be ranked, and entries gone stale
    # (a delay since changed, a player gone) left in until they come to the top. Within one
    # round players only ever drop out, so one found out stays out: a burst of presses never
    # asks about it again (a thousand presses would otherwise ask about a million times).
    _heap: list[tuple[int, str]] = field(default_factory=list)
    _at: int | None = None
    _round: object = _RECOUNT

    def stale(self) -> None:
        """Count every player afresh at the next press (as happens every HORIZON_REFRESH_NS,
        for the clocks whose estimates moved since)."""
        self._at = None

    def update(self, player: Player, now: int) -> None:
        """One player's delay may have changed (it joined, left, or its round trip moved):
        place it again, without recounting everyone. A thousand tutorial clients joining with
        their first ``buzz`` would otherwise have every press of the burst recount them all."""
        if self._at is None:
            return
        delay = self._delay(player, now) if player.link is not None else None
        if delay is None:
            self._delay_of.pop(player.id, None)
        elif self._delay_of.get(player.id) != delay:
            self._delay_of[player.id] = delay
            heapq.heappush(self._heap, (-delay, player.id))
            if len(self._heap) > 2 * len(self._delay_of) + 64:  # stale entries pile up: an
                self._at = None  # idle hub's syncs move delays, and no press clears them

    def _delay(self, player: Player, now: int) -> int | None:
        cap = self.caps_ns.get(player.input)
        if player.plain:
            return None if player.rtt_ns is None else _capped(player.rtt_ns // 2, cap)
        estimate = player.clock.estimate
        if estimate is None:
            return None
        high = player.pings.high_ns
        upload = estimate.upload_ns if high is None else min(estimate.upload_ns, high)
        said = max(player.press_lead_ns, player.press_leads.high_ns(now) or 0)
        return _capped(upload + min(said, self.lead_cap_ns), cap)

    def value(
        self,
        roster: Roster,
        now: int,
        may_rank: Callable[[str], bool] | None = None,
        round_key: object = None,
    ) -> int:
        """The horizon for a press arriving at ``now``. ``may_rank`` tells the players whose
        presses could still be ranked (all of them if not given); ``round_key`` names the state
        of play it answers for, in which no player who could not be ranked ever can again."""
        if self._at is None or now - self._at > HORIZON_REFRESH_NS:
            self._delay_of = {
                player.id: delay
                for player in roster.online()
                if (delay := self._delay(player, now)) is not None
            }
            self._at = now
            self._round = _RECOUNT
        if may_rank is None:  # everyone counts (the heap holds only those who may be ranked)
            longest = max(self._delay_of.values(), default=0)
            return adjudication_horizon([longest], self.margin_ns, self.cap_ns)
        if round_key != self._round:
            self._heap = [(-delay, player) for player, delay in self._delay_of.items()]
            heapq.heapify(self._heap)
            self._round = round_key
        heap, longest = self._heap, 0
        while heap:
            delay, player = heap[0]
            if self._delay_of.get(player) == -delay and may_rank(player):
                longest = -delay
                break
            heapq.heappop(heap)
        return adjudication_horizon([longest], self.margin_ns, self.cap_ns)
