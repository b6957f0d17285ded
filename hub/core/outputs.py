"""What the hub core asks its I/O layer to do: every entry point returns a list of these.

The core never holds a socket: a connection is a :data:`LinkId` the server gave it, and frames
are already encoded (a frame fanned out to a thousand links is encoded once, in a
:class:`Broadcast`). Saving goes through :class:`Save`: the server hands the record to the
recorder, and once it is committed calls the core's ``saved(ticket)``, which is when a press is
acknowledged: an ack is the hub's promise that the press survives a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.events import HubEvent
from hub.journal import Call, RecordingEngine
from hub.round import Event
from wire.enums import CloseCode, InputKind

#: The server's name for one connection; the core only compares these.
LinkId = int


@dataclass(frozen=True, slots=True)
class Send:
    link: LinkId
    frame: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One frame to many links, without waiting on any of them."""

    links: tuple[LinkId, ...]
    frame: str
    picture: bool = False  # a state picture: the server reports what it cost (pacing)


@dataclass(frozen=True, slots=True)
class Close:
    link: LinkId
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Measure a player link's round trip with a WebSocket ping; report it to ``pong``."""

    link: LinkId


@dataclass(frozen=True, slots=True)
class Watch:
    """``link`` is a station's: have its kernel notice when the station stops answering (a
    pulled cable, a lost power supply, see :mod:`wire.tcpwatch`), so that the host sees it gone
    within seconds. A station's kernel already watches its end of the link the same way."""

    link: LinkId


# --- what is saved ---


@dataclass(frozen=True, slots=True)
class JournalStep:
    """Engine inputs to journal and the events they produced (for the derived tables: rounds,
    presses, scores and matches). Points live in the journal with the inputs that gave them."""

    calls: tuple[Call, ...]
    events: tuple[Event, ...]
    engine: RecordingEngine  # read at once, on the loop, for the rounds it changed


@dataclass(frozen=True, slots=True)
class RosterEntry:
    player: str
    name: str
    input: InputKind
    team: str | None


Record = JournalStep | RosterEntry


@dataclass(frozen=True, slots=True)
class Save:
    """Write ``record``; with a ticket, call the core's ``saved(ticket)`` once it is committed."""

    record: Record
    ticket: int | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """Something happened that the log and the embedding API's subscribers hear about."""

    event: HubEvent


Output = Send | Broadcast | Close | Ping | Watch | Save | Notify
