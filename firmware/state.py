"""Everything the node decides, apart from any socket, thread, pin or clock: a sans-I/O core.

In the style of the ``websockets`` library's ``Protocol``: the I/O layer (:mod:`firmware.link`)
stamps each event once with the node's monotonic clock and hands it to an entry point of
:class:`NodeState` together with that instant, ``now``; the entry point returns the actions that
carry its decision out (send this message, show this LED pattern, say this line, log this event,
wake me at T). Nothing here reads a clock, touches a socket or waits, so the same inputs always
give the same actions and every rule is tested with explicit instants.

Entry points, each taking ``now`` in node-clock nanoseconds:

- :meth:`~NodeState.opened`: a connection is up; the hello goes out.
- :meth:`~NodeState.receive`: a decoded frame from the hub (welcome, sync request, round update,
  ack, result, offer, ruling, timer, error or warning), or why it could not be decoded.
- :meth:`~NodeState.press`: the player pressed, at ``now``.
- :meth:`~NodeState.hub_found`: with ``hub = "auto"``, the hub chosen on the LAN.
- :meth:`~NodeState.link_lost`: the connection ended, or could not be made.
- :meth:`~NodeState.setup_problem`: an input could not be opened, while others work.
- :meth:`~NodeState.timer`: the wake-up asked for with :class:`WakeAt` is due.

The hub gives the release instant in this node's clock, so lighting the LED on time is a
comparison of two numbers here and one timer in the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never, cast

from firmware import discovery
from firmware.events import (
    Acked,
    Disconnected,
    HubFound,
    HubSaid,
    NodeEvent,
    Pressed,
    Refused,
    Released,
    Resulted,
    RoundChanged,
    Sent,
    SyncAnswered,
)
from firmware.outbox import Outbox, PendingPress
from firmware.patterns import Look, Pattern, choose_pattern
from wire import codec
from wire import messages as msg
from wire.enums import CloseCode, ErrorCode, Flag, InputKind, Phase, Role

if TYPE_CHECKING:  # the record only; importing wire.discovery would load the mDNS stack
    from wire.discovery import FoundHub

MS = 1_000_000
#: With no ack or no result for a press this long on a live link (a hub too busy, or a frame lost
#: inside it), send it again; the hub counts a press id once and answers a decided one again.
RESEND_AFTER_NS = 3_000 * MS
#: After a reconnect, old presses go once the hub says this node is synced, or after this long.
RESYNC_FLUSH_NS = 500 * MS
#: Distinct hub warnings told to the player once each; past that many, each is told every time.
WARNINGS_REMEMBERED = 64


# --- what the core asks of the I/O layer ---


@dataclass(frozen=True, slots=True)
class Send:
    """Write this message to the hub on the current link."""

    message: msg.Hello | msg.Press


@dataclass(frozen=True, slots=True)
class AnswerSync:
    """Answer a clock-sync request.

    The reply's ``t2_ns`` is the instant it leaves, which only the writer knows: the link stamps it
    as it writes the frame (take ``t1_ns`` as early and ``t2_ns`` as late as possible)."""

    seq: int
    t0_ns: int
    t1_ns: int


@dataclass(frozen=True, slots=True)
class Show:
    """Play this pattern on the LED from now on (after a running flicker)."""

    pattern: Pattern


@dataclass(frozen=True, slots=True)
class Flicker:
    """Instant proof of a press on the LED, before the hub has answered."""


@dataclass(frozen=True, slots=True)
class Beep:
    """The buzzer's pattern: first place, or the floor passed to this player."""


@dataclass(frozen=True, slots=True)
class Say:
    """One line on the player's console."""

    line: str


@dataclass(frozen=True, slots=True)
class Log:
    """An entry in the node's event log, for tests and tools."""

    event: NodeEvent


@dataclass(frozen=True, slots=True)
class WakeAt:
    """Call :meth:`NodeState.timer` once the node clock reads ``at_ns`` (None: no need).

    Each one replaces the one before; a timer that fires early is harmless, the core asks again."""

    at_ns: int | None


Action = Send | AnswerSync | Show | Flicker | Beep | Say | Log | WakeAt


# --- what the core is told ---


@dataclass(frozen=True, slots=True)
class Setup:
    """The station as the core needs to know it, resolved from its config by the I/O layer."""

    node_id: str
    name: str
    token: str = ""
    hub_name: str = ""  # with hub = "auto": only the hub announced under this name
    resync_flush_ns: int = RESYNC_FLUSH_NS
    resend_after_ns: int = RESEND_AFTER_NS
    press_lead_ns: int = 0  # a press leaves no sooner after its edge (a button's confirmation)


@dataclass(frozen=True, slots=True)
class Outage:
    """Why the last attempt to reach the hub ended, as the link saw it."""

    reason: str
    code: int | None = None  # the hub's close code (or its HTTP refusal, as the close it means)
    retry_s: float = 0.0  # how long the link waits before it tries again
    nothing_found: bool = False  # hub = "auto" and no hub could be used; reason says why


def code_refuses(code: int | None) -> bool:
    """Whether a close means the hub turned this node away (a bad token, its id taken), which
    waiting alone will not fix."""
    return code in (CloseCode.BAD_TOKEN, CloseCode.REPLACED)


class NodeState:
    """One station's view of its hub and its round, and its presses still in flight."""

    def __init__(self, setup: Setup, boot: str | None = None) -> None:
        self.setup = setup
        self.outbox = Outbox(setup.node_id, boot)
        self.linked = False  # the hub welcomed this node on the current connection
        self._reported = False  # the current outage was told to the player (once per outage)
        self._reported_reason = ""  # and the reason it was told with
        self._warned: set[str] = set()  # warnings the player was told (each once)
        self._refused = False  # the hub turned this node away (token, id): the LED says so
        self._setup_problem = False  # an input could not be opened: the LED says so while idle
        self._down_since: int | None = None  # when the current outage began; None: linked or new
        self._found_url: str | None = None  # the last hub named on the console
        self._round: msg.RoundUpdate | None = None
        self._released_round: int | None = None
        self._release_at: tuple[int, int] | None = None  # (round, release_ns) still to come
        self._rank: tuple[int, int] | None = None  # (round, rank) of this node's counted press
        self._lock: tuple[int, int | None] | None = None  # (round, until node ns or None)
        self._lock_ends: int | None = None  # a timed lockout's end: the LED changes then
        self._awaiting: set[str] = set()  # presses sent in this round whose result is not in
        self._flush_at: int | None = None  # when presses from before this link go regardless
        self._shown: Pattern | None = None
        self._wake: int | None = None  # the wake-up last asked for

    # --- entry points ---

    def opened(self, now: int, input_kind: InputKind) -> list[Action]:
        """A connection to the hub is open: introduce this station."""
        hello = msg.Hello(
            protocol=msg.PROTOCOL_VERSION,
            role=Role.NODE,
            id=self.setup.node_id,
            name=self.setup.name,
            input=input_kind,
            token=self.setup.token or None,
            press_lead_ns=self.setup.press_lead_ns or None,
        )
        return [Send(hello)]

    def receive(self, decoded: codec.Decoded | codec.ProtocolError, now: int) -> list[Action]:
        """A frame from the hub, arrived at ``now``."""
        if isinstance(decoded, codec.ProtocolError):
            line = f"The hub sent a frame this node does not understand: {decoded.message}"
            return [Say(line)]
        # The hub registry only decodes hub messages; fields a newer hub added are ignored.
        message = cast("msg.HubMessage", decoded.message)
        if not self.linked and not isinstance(message, msg.Welcome | msg.Error | msg.Warning):
            return []  # before the welcome, nothing else is meant for this node
        return self._finish(self._dispatch(message, now), now)

    def press(self, now: int, source: str) -> list[Action]:
        """The player pressed at ``now`` (stamped at the edge) on ``source``."""
        press = self.outbox.add(now, source)
        actions: list[Action] = [Log(Pressed(press.press_id, now, source)), Flicker()]
        if self.linked:
            actions.append(Say(f"Press registered ({source})."))
            actions += self._send(press, now, resend=False)
        else:
            line = f"Press registered ({source}); the hub is unreachable, sending it later."
            actions.append(Say(line))
        return self._finish(actions, now)

    def hub_found(
        self, chosen: FoundHub, url: str, found: list[FoundHub], now: int
    ) -> list[Action]:
        """With ``hub = "auto"``: ``chosen`` of the hubs that answered is the one connected to,
        at ``url`` (one of the addresses it announced)."""
        answered = tuple(sorted(u for hub in found for u in hub.urls))
        actions: list[Action] = [Log(HubFound(chosen.name, url, answered))]
        if url != self._found_url:  # once per new address, not once per retry
            self._found_url = url
            actions.append(Say(discovery.found_line(chosen, url, found)))
        return actions

    def link_lost(self, now: int, outage: Outage) -> list[Action]:
        """The connection ended or could not be made; the link tries again after
        ``outage.retry_s``. Each outage is told once, however many attempts it lasts."""
        first = not self._reported
        # A search that fails for a new reason (the station got an address, another hub
        # answered) is told again: the first reason may no longer be the one to act on.
        retold = outage.nothing_found and outage.reason != self._reported_reason
        self._reported = True
        self._reported_reason = outage.reason
        self.linked = False
        self._refused = code_refuses(outage.code)
        self._awaiting.clear()
        self.outbox.link_lost()
        self._flush_at = self._release_at = None
        actions: list[Action] = []
        code, retry = outage.code, outage.retry_s
        if code == CloseCode.BAD_TOKEN:
            actions += [
                Log(Refused(code, "bad token", retry)),
                Say(
                    f"The hub refused this node's token (close {code}); set --token or [node] "
                    f"token. Trying again in {retry:.0f} s."
                ),
            ]
        elif code == CloseCode.REPLACED:
            actions += [
                Log(Refused(code, "replaced", retry)),
                Say(
                    f"Another station connected with the id {self.setup.node_id!r} and took over; "
                    f"give each node its own --id. Trying again in {retry:.0f} s."
                ),
            ]
        elif (first or retold) and outage.nothing_found:
            actions.append(Say(f"Hub unreachable: {outage.reason}. Still looking."))
        elif first:
            actions.append(Say(f"Hub unreachable: {outage.reason}. Retrying every second or so."))
        if first:
            self._down_since = now
            actions.append(Log(Disconnected(outage.reason, code)))
        return self._finish(actions, now)

    def setup_problem(self, now: int, problem: bool) -> list[Action]:
        """Some press source (or the LED or buzzer) could not be opened while others work: the
        station plays on, and its LED says so while idle (the console has said what failed)."""
        self._setup_problem = problem
        return self._finish([], now)

    def timer(self, now: int) -> list[Action]:
        """The wake-up asked for is due (or nearly: what is not due yet is asked for again)."""
        self._wake = None  # the link's timer has fired: none is pending now
        actions: list[Action] = []
        if self._release_at is not None and now >= self._release_at[1]:
            number, release_ns = self._release_at
            self._release_at = None
            actions += self._release(number, release_ns, now)
        if self._flush_at is not None and now >= self._flush_at:
            self._flush_at = None
            actions += self._flush(now)
        if self._lock_ends is not None and now >= self._lock_ends:
            self._lock_ends = None  # the LED follows below
        if self.linked:
            for press in self.outbox.overdue(now, self.setup.resend_after_ns):
                actions += self._send(press, now, resend=True)
        return self._finish(actions, now)

    # --- frames from the hub ---

    def _dispatch(self, message: msg.HubMessage, now: int) -> list[Action]:
        match message:
            case msg.Welcome():
                return [] if self.linked else self._welcome(message, now)
            case msg.Sync():
                reply = AnswerSync(message.seq, message.t0_ns, now)
                return [reply, Log(SyncAnswered(message.seq))]
            case msg.RoundUpdate():
                return self._round_update(message, now)
            case msg.Ack():
                return [Log(Acked(message.press_id))] if self.outbox.ack(message.press_id) else []
            case msg.Result():
                return self._result(message, now)
            case msg.Offer():  # the floor came to this player without a press of theirs
                return [Beep(), Say(message.text)]
            case msg.Ruling() | msg.TimerNotice():
                return [Say(message.text)]
            case msg.Error() | msg.Warning():
                return self._hub_said(message)
            case msg.State():
                return []  # a picture for hosts and viewers, never meant for a node
            case _:
                assert_never(message)

    def _welcome(self, welcome: msg.Welcome, now: int) -> list[Action]:
        self.linked = True
        if self._down_since is not None:
            away = (now - self._down_since) / 1e9
            waiting = len(self.outbox)
            more = f"; sending {waiting} waiting press(es)" if waiting else ""
            actions: list[Action] = [
                Say(f"{welcome.greeting} Back in touch after {away:.1f} s{more}.")
            ]
        else:
            actions = [Say(welcome.greeting)]
        self._down_since = None
        self._reported = False
        self._reported_reason = ""
        self._refused = False
        # A hub that restarted may know nothing of the old round; take its word from here on.
        self._rank = self._lock = self._round = self._released_round = self._lock_ends = None
        # Presses from before the link wait until the hub can place them in this node's clock.
        if len(self.outbox):
            self._flush_at = now + self.setup.resync_flush_ns
        if welcome.round is not None:
            actions += self._round_update(welcome.round, now)
        return actions

    def _round_update(self, update: msg.RoundUpdate, now: int) -> list[Action]:
        previous = self._round
        self._round = update
        actions: list[Action] = [Log(RoundChanged(update))]
        if previous is None or previous.number != update.number:
            self._awaiting.clear()
        if self._flush_at is not None and update.synced:
            self._flush_at = None
            actions += self._flush(now)  # the hub can now place old presses in this node's clock
        if update.state is Phase.ARMED:
            return actions + self._arm(update, now)
        self._release_at = None
        if previous is not None and (previous.state, previous.number) != (
            update.state,
            update.number,
        ):
            line = self._phase_line(update)
            if line is not None:
                actions.append(Say(line))
        return actions

    def _phase_line(self, update: msg.RoundUpdate) -> str | None:
        if update.state is Phase.IDLE:
            return "Round reset: wait for the next one."
        if update.state is Phase.DECIDED and update.winner and not self._awaiting:
            return f"Round {update.number}: {update.winner} was first."
        if update.state is Phase.CLOSED:
            return f"Round {update.number} closed."
        return None

    def _arm(self, update: msg.RoundUpdate, now: int) -> list[Action]:
        """Light the LED at the release instant: at once if it has passed or is unknown."""
        if self._released_round == update.number:
            return []
        self._release_at = None
        if update.release_ns is None or now >= update.release_ns:
            return self._release(update.number, update.release_ns, now)
        self._release_at = (update.number, update.release_ns)
        return []

    def _release(self, number: int, release_ns: int | None, now: int) -> list[Action]:
        round_ = self._round
        if round_ is None or round_.number != number or round_.state is not Phase.ARMED:
            return []
        self._released_round = number
        late = 0 if release_ns is None else now - release_ns
        if release_ns is None:
            line = f"Round {number}: go! (clock not synced yet, so lit on arrival)"
        else:
            line = f"Round {number}: go!"
        return [Log(Released(number, release_ns is not None, late)), Say(line)]

    def _result(self, result: msg.Result, now: int) -> list[Action]:
        self._awaiting.discard(result.press_id)
        news = self.outbox.result(result.press_id)
        flags = set(result.flags)
        actions: list[Action] = []
        if result.rank is not None:
            self._rank = (result.round, result.rank)
            if news and result.rank == 1 and Flag.REPEAT not in flags:
                actions.append(Beep())
        if not news:  # a re-sent press answered again: its rank shows, nothing is said twice
            return actions
        if flags & {Flag.EARLY, Flag.LOCKED}:
            until = None if result.lockout_ns is None else now + result.lockout_ns
            self._lock = (result.round, until)
            self._lock_ends = until
        return [*actions, Log(Resulted(result)), Say(result.text)]

    def _hub_said(self, message: msg.Error | msg.Warning) -> list[Action]:
        level = "error" if isinstance(message, msg.Error) else "warning"
        actions: list[Action] = [Log(HubSaid(level, message.code, message.message))]
        if isinstance(message, msg.Warning):
            # Once each: an older hub warns of a field it does not know in every press.
            if message.message in self._warned:
                return actions
            if len(self._warned) < WARNINGS_REMEMBERED:
                self._warned.add(message.message)
        if message.code != ErrorCode.BAD_TOKEN:  # the close that follows says it better
            actions.append(Say(f"Hub {level}: {message.message}"))
        return actions

    # --- presses ---

    def _send(self, press: PendingPress, now: int, resend: bool) -> list[Action]:
        self.outbox.mark_sent(press.press_id, now)
        self._awaiting.add(press.press_id)
        message = msg.Press(press_id=press.press_id, at_ns=press.at_ns)
        return [Send(message), Log(Sent(press.press_id, resend))]

    def _flush(self, now: int) -> list[Action]:
        """Send every press that has not gone out on this link yet."""
        if not self.linked:
            return []
        return [action for p in self.outbox.unsent() for action in self._send(p, now, True)]

    # --- the LED and the next wake-up ---

    def look(self, now: int) -> Look:
        """The situation the LED shows while linked."""
        round_ = self._round
        if round_ is None:
            return Look(link_up=True, setup_problem=self._setup_problem)
        locked = round_.locked_out
        if self._lock is not None:
            lock_round, until = self._lock
            if round_.number <= lock_round and (until is None or now < until):
                locked = True
        rank = self._rank[1] if self._rank and self._rank[0] == round_.number else None
        return Look(
            link_up=True,
            phase=round_.state,
            released=round_.state is Phase.ARMED and self._released_round == round_.number,
            locked_out=locked,
            rank=rank,
            awaiting_result=bool(self._awaiting),
            setup_problem=self._setup_problem,
        )

    def _finish(self, actions: list[Action], now: int) -> list[Action]:
        """What every entry point ends with: the LED if it changed, the wake-up if it moved."""
        if self.linked:
            look: Look | None = self.look(now)
        elif self._down_since is not None:
            look = Look(link_up=False, refused=self._refused)
        else:
            look = None  # not linked yet and no attempt has failed: the LED stays dark
        if look is not None and (pattern := choose_pattern(look)) != self._shown:
            self._shown = pattern
            actions.append(Show(pattern))
        wake = self._next_wake()
        if wake != self._wake:
            self._wake = wake
            actions.append(WakeAt(wake))
        return actions

    def _next_wake(self) -> int | None:
        due = [self._flush_at, self._lock_ends]
        if self._release_at is not None:
            due.append(self._release_at[1])
        if self.linked:
            due.append(self.outbox.next_overdue(self.setup.resend_after_ns))
        known = [at for at in due if at is not None]
        return min(known) if known else None
