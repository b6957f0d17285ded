"""A press as the engine needs it: its instant in hub time, how far that may be off, and how long
an earlier press could still be in flight (the adjudication horizon).

A node stamps its press in its own monotonic clock; the clock filter turns that into hub time.
A tutorial client stamps nothing: its press was made somewhere within the last round trip before
the frame arrived. Neither may claim a press later than its arrival.
"""

from __future__ import annotations

from dataclasses import dataclass

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
#: The horizon is recomputed at most this often (it is O(players)), and whenever a clock moves.
HORIZON_REFRESH_NS = 500_000_000


def node_press(player: Player, press_id: str, at_ns: int, now: int) -> PressIn:
    """A node's press in hub time; unsynced, it is placed at its arrival."""
    estimate = player.clock.estimate
    floor = INPUT_UNCERTAINTY_NS[player.input]
    if estimate is not None:
        at = min(estimate.to_hub(at_ns), now)  # nothing is pressed after it arrives
        uncertainty = estimate.uncertainty_at(at) + floor
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
    )


def tutorial_press(player: Player, now: int) -> PressIn:
    """A tutorial client's ``buzz``: placed half its round trip before it arrived."""
    rtt = player.rtt_ns
    return PressIn(
        player=player.id,
        press_id=f"{player.id}-{now}",
        at_ns=now - (rtt or 0) // 2,
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


@dataclass
class Horizon:
    """The longest a press from any connected player could still be in flight, kept fresh."""

    margin_ns: int
    cap_ns: int
    _value: int = 0
    _at: int | None = None

    def stale(self) -> None:
        """A clock moved or a player came or went: recompute at the next press."""
        self._at = None

    def value(self, roster: Roster, now: int) -> int:
        if self._at is None or now - self._at > HORIZON_REFRESH_NS:
            delays = []
            for player in roster.online():
                if player.plain:
                    if player.rtt_ns is not None:
                        delays.append(player.rtt_ns // 2)
                elif (estimate := player.clock.estimate) is not None:
                    delays.append(estimate.upload_ns)
            self._value = adjudication_horizon(delays, self.margin_ns, self.cap_ns)
            self._at = now
        return self._value
