"""What a node reports about itself, for tests and tools: one value per thing that happened.

The node keeps a log of these (:class:`firmware.node.Node`'s ``events`` and ``wait_for``), so a
test waits for "the result arrived" or "the LED started blinking" instead of sleeping or reading
console text. The pure core (:mod:`firmware.state`) decides most of them; the link adds what only
it can see (a connection made, with the local time it was made).
"""

from __future__ import annotations

from dataclasses import dataclass

from wire import messages as msg


@dataclass(frozen=True, slots=True)
class Connected:
    url: str
    greeting: str
    round: msg.RoundUpdate | None
    at: float  # time.monotonic() when the welcome arrived, for measuring reconnects


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The hub turned this node away for a reason a quick retry cannot fix."""

    code: int
    reason: str
    retry_s: float


@dataclass(frozen=True, slots=True)
class RoundChanged:
    update: msg.RoundUpdate


@dataclass(frozen=True, slots=True)
class Released:
    round: int
    synced: bool  # False: lit on arrival, since the hub could not yet say when in this clock
    late_ns: int  # how long after the release instant the LED was switched (node clock)


@dataclass(frozen=True, slots=True)
class Pressed:
    press_id: str
    at_ns: int
    source: str


@dataclass(frozen=True, slots=True)
class Sent:
    press_id: str
    resend: bool


@dataclass(frozen=True, slots=True)
class Acked:
    press_id: str


@dataclass(frozen=True, slots=True)
class Resulted:
    result: msg.Result


@dataclass(frozen=True, slots=True)
class SyncAnswered:
    seq: int


@dataclass(frozen=True, slots=True)
class HubSaid:
    """An ``error`` or ``warning`` frame from the hub."""

    level: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class LedPattern:
    name: str


@dataclass(frozen=True, slots=True)
class HubFound:
    """With ``hub = "auto"``: the hub chosen from those that answered, and all that answered."""

    name: str
    url: str
    answered: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InputProblem:
    """An input could not be opened, or stopped working (a keyboard unplugged); others play on."""

    line: str


NodeEvent = (
    Connected
    | Disconnected
    | Refused
    | RoundChanged
    | Released
    | Pressed
    | Sent
    | Acked
    | Resulted
    | SyncAnswered
    | HubSaid
    | LedPattern
    | HubFound
    | InputProblem
)
