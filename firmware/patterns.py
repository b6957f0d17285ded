"""What the LED shows in each situation: a pure function from the node's situation to a pattern.

Every rule in the brief is one line of :func:`choose_pattern`, so each can be tested with plain
values and no pins, loop or clock:

==========================  ==========================================================
situation                   LED
==========================  ==========================================================
no hub found, unreachable   slow heartbeat: one short flash every 1.5 s
hub refused this node       two short flashes every 1.5 s (token, or its id taken)
early press / locked out    fast blink (for the timed lockout, or until the round ends)
first place                 solid on until the next round or a reset
ranked 2nd, 3rd, ...        one short blink per rank (capped), then off
armed, from the release     on (also while this node's press awaits its result)
setup problem, idle         three short flashes every 1.5 s (an input failed to open)
idle, closed, decided       off
==========================  ==========================================================

So a maker can tell from the box alone what is wrong: one flash, the hub is not found; two, it
turned the station away; three, the station itself is set up wrong. A connected station never
repeats a flash pattern while idle: it is dark, lit when armed, and shows the round's results.
The round's patterns win over a setup problem (a station whose keyboard failed but whose button
works still plays), and the link's over both.

:mod:`firmware.feedback` plays the chosen pattern on the pins.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.enums import Phase

RANK_BLINK_ON_MS = 150
RANK_BLINK_OFF_MS = 250
RANK_BLINK_GAP_MS = 300
RANK_BLINKS_MAX = 9
FAST_BLINK_MS = 60
HEARTBEAT_ON_MS = 120
HEARTBEAT_OFF_MS = 1380
FLASH_MS = 120  # one flash of a counted trouble pattern, and the gap between two
FLASH_GAP_MS = 120


@dataclass(frozen=True, slots=True)
class Pattern:
    """Levels held for some milliseconds; ``repeat`` loops them, else the last level stays."""

    name: str
    steps: tuple[tuple[bool, int], ...]
    repeat: bool = False

    @property
    def final(self) -> bool:
        return self.steps[-1][0]


OFF = Pattern("off", ((False, 0),))
SOLID = Pattern("on", ((True, 0),))
FAST_BLINK = Pattern("fast-blink", ((True, FAST_BLINK_MS), (False, FAST_BLINK_MS)), repeat=True)
HEARTBEAT = Pattern("heartbeat", ((True, HEARTBEAT_ON_MS), (False, HEARTBEAT_OFF_MS)), repeat=True)
REFUSED = Pattern(
    "refused",
    ((True, FLASH_MS), (False, FLASH_GAP_MS), (True, FLASH_MS), (False, 1500 - 3 * FLASH_MS)),
    repeat=True,
)
SETUP_ERROR = Pattern(
    "setup-error",
    (
        *((True, FLASH_MS), (False, FLASH_GAP_MS)) * 2,
        (True, FLASH_MS),
        (False, 1500 - 5 * FLASH_MS),
    ),
    repeat=True,
)
BEEPS = Pattern("beeps", ((True, 100), (False, 100), (True, 100), (False, 100), (True, 300)))


def rank_blinks(rank: int) -> Pattern:
    """Off for a moment (so the first blink is seen as one), then one blink per rank."""
    count = max(1, min(rank, RANK_BLINKS_MAX))
    steps: list[tuple[bool, int]] = [(False, RANK_BLINK_GAP_MS)]
    for _ in range(count):
        steps += [(True, RANK_BLINK_ON_MS), (False, RANK_BLINK_OFF_MS)]
    return Pattern(f"rank-{rank}", tuple(steps))


@dataclass(frozen=True, slots=True)
class Look:
    """The node's situation, as far as the LED is concerned."""

    link_up: bool
    phase: Phase = Phase.IDLE  # the round as the hub last described it
    released: bool = False  # armed and the release instant has passed (in the node's clock)
    locked_out: bool = False  # an early press, or the hub says so
    rank: int | None = None  # this node's counted rank in the round on display
    awaiting_result: bool = False  # pressed in this round, result not in yet
    refused: bool = False  # the link is down because the hub turned this node away
    setup_problem: bool = False  # an input (or output) could not be opened; the others work


def choose_pattern(look: Look) -> Pattern:
    if not look.link_up:
        return REFUSED if look.refused else HEARTBEAT
    if look.locked_out:
        return FAST_BLINK
    if look.rank == 1:
        return SOLID
    if look.rank is not None:
        return rank_blinks(look.rank)
    if look.awaiting_result and look.phase in (Phase.ARMED, Phase.DECIDED):
        return SOLID  # keep the armed light until the verdict, rather than a misleading "off"
    if look.phase is Phase.ARMED and look.released:
        return SOLID
    if look.setup_problem:
        return SETUP_ERROR
    return OFF
