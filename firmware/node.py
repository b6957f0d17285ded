"""The player station: one connection to the hub, kept alive forever, and the round as seen here.

A :class:`Node` connects, says hello, answers clock-sync requests at once, lights the LED at the
release instant the hub gives in this node's own clock, sends presses and shows their results. It
reconnects with jittered backoff capped at about a second; presses made meanwhile wait in the
:class:`~firmware.outbox.Outbox` and are re-sent with their original timestamps.

With ``hub = "auto"`` the node finds the hub over mDNS (:mod:`firmware.discovery`) before each
connection that needs it: at start, and whenever the last known address stops answering (a hub
that rebooted may have a new address or port). A link that was up is first retried at the same
address, since a restarted hub is usually back there before it is announced again.

Every timestamp the node produces (press instants, sync ``t1``/``t2``, release scheduling) comes
from the one ``clock`` given to the constructor (default :func:`time.monotonic_ns`). A test can give
a node any offset, e.g. ``clock=lambda: time.monotonic_ns() + 3_000_000_000``, and the hub's sync
must absorb it.

For tests and tools the node keeps a log of what happened, as :data:`NodeEvent` values, and lets a
caller wait for one instead of sleeping::

    node = Node(config, clock=clock, console=lines.append)
    task = asyncio.create_task(node.run())
    await node.wait_for(Connected)
    mark = node.mark()                      # only events after this point
    node.press(clock(), "gpio")             # or drive a real (or mock) button pin
    result = await node.wait_for(Resulted, after=mark)
    node.stop(); await task

Events: :class:`Connected`, :class:`Disconnected`, :class:`Refused`, :class:`RoundChanged`,
:class:`Released`, :class:`Pressed`, :class:`Sent`, :class:`Acked`, :class:`Resulted`,
:class:`SyncAnswered`, :class:`HubSaid`, :class:`LedPattern` (LED and buzzer patterns),
:class:`HubFound` (with ``hub = "auto"``).
``run()`` returns after ``stop()`` and raises :class:`NodeFatal` when retrying cannot help (a
protocol version mismatch, a malformed hub address).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from firmware import discovery
from firmware.config import AUTO_HUB, NodeConfig
from firmware.feedback import Feedback, open_switches
from firmware.inputs import PressSource, open_inputs
from firmware.outbox import Outbox, PendingPress
from firmware.patterns import Look, choose_pattern
from wire import codec
from wire import messages as msg
from wire.enums import CloseCode, ErrorCode, Flag, InputKind, Phase, Role
from wire.errors import BuzzerError, TLSConfigError
from wire.tls import context_for

Clock = Callable[[], int]

HELLO_TIMEOUT_S = 5.0
RETRY_FIRST_MS = 50.0
#: With no answer to a press this long on a live link (a hub too busy or a frame lost inside it),
#: send it again; the hub counts a press id once.
RESEND_AFTER_NS = 3_000_000_000
EVENT_LOG_SIZE = 10_000


class NodeFatal(BuzzerError):
    """Retrying cannot help (e.g. the hub speaks another protocol version); the message says why."""


# --- what the node reports ---


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
)
E = TypeVar("E", bound=NodeEvent)


def print_line(line: str) -> None:
    print(line, flush=True)


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        clock: Clock = time.monotonic_ns,
        console: Callable[[str], None] = print_line,
        pin_factory: Any = None,
        rng: random.Random | None = None,
        boot: str | None = None,
        finder: discovery.Finder | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.console = console
        self.pin_factory = pin_factory
        self.id = config.node_id
        self.name = config.display_name
        self.url = config.node.hub
        self.discovering = config.node.hub == AUTO_HUB
        self._finder = finder or discovery.browse
        self._found_url: str | None = None  # the last hub announced on the console
        self.outbox = Outbox(self.id, boot)
        self._rng = rng or random.Random()
        self._log: deque[tuple[int, NodeEvent]] = deque(maxlen=EVENT_LOG_SIZE)
        self._seq = 0
        self._wake: asyncio.Event | None = None
        self._ws: ClientConnection | None = None
        self._linked = False
        self._down_since: float | None = None
        self._round: msg.RoundUpdate | None = None
        self._released_round: int | None = None
        self._release_timer: asyncio.TimerHandle | None = None
        self._rank: tuple[int, int] | None = None  # (round, rank) of this node's counted press
        self._lock: tuple[int, int | None] | None = None  # (round, until node ns or None)
        self._lock_timer: asyncio.TimerHandle | None = None
        self._awaiting: set[str] = set()  # presses whose result has not come yet
        self._flush_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.feedback: Feedback | None = None
        self.sources: list[PressSource] = []

    # --- the test and tool API ---

    def mark(self) -> int:
        """A position in the event log: pass it as ``after`` to see only later events."""
        return self._seq

    def events(self, after: int = 0) -> list[NodeEvent]:
        return [event for seq, event in self._log if seq >= after]

    async def wait_for(
        self,
        kind: type[E],
        match: Callable[[E], bool] | None = None,
        *,
        timeout: float = 5.0,
        after: int = 0,
    ) -> E:
        """The first event of ``kind`` (matching ``match``) logged at or after ``after``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for seq, event in list(self._log):
                        wanted = seq >= after and isinstance(event, kind)
                        if wanted and (match is None or match(event)):  # type: ignore[arg-type]
                            return event  # type: ignore[return-value]
                    if self._wake is None:
                        self._wake = asyncio.Event()
                    await self._wake.wait()
        except TimeoutError:
            recent = ", ".join(type(e).__name__ for e in self.events(after)[-12:])
            raise TimeoutError(
                f"node {self.id}: no {kind.__name__} within {timeout} s; recent: {recent}"
            ) from None

    def _emit(self, event: NodeEvent) -> None:
        self._log.append((self._seq, event))
        self._seq += 1
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    # --- running ---

    async def run(self) -> None:
        """Open inputs and outputs, then stay connected until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        self._stopping = False
        led, buzzer = open_switches(self.config, self.console, self.pin_factory)
        self.feedback = Feedback(led, buzzer, lambda n: self._emit(LedPattern(n)))
        try:
            self.sources = open_inputs(
                self.config,
                loop,
                self.clock,
                self.press,
                self.console,
                self.pin_factory,
                on_terminal_eof=self._terminal_closed,
            )
            self._main = asyncio.create_task(self._connect_forever())
            try:
                await self._main
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
        finally:
            for source in self.sources:
                source.close()
            self.sources = []
            for handle in (self._release_timer, self._flush_timer, self._lock_timer):
                if handle is not None:
                    handle.cancel()
            for task in list(self._tasks):
                task.cancel()
            self.feedback.close()

    def stop(self) -> None:
        self._stopping = True
        if self._main is not None:
            self._main.cancel()

    def _terminal_closed(self) -> None:
        self.console("The terminal closed; stopping.")
        self.stop()

    async def _connect_forever(self) -> None:
        attempt = 0
        url: str | None = None if self.discovering else self.url
        while True:
            code: int | None = None
            if url is None:
                url, reason = await self._discover()
            if url is not None:
                code, reason = await self._link(url)
            linked = self._linked
            if linked:
                attempt = 0  # a link that was up starts the backoff afresh
            delay = self._after_link_lost(reason, code, attempt, searching=url is None)
            if self.discovering and not linked:
                url = None  # that address did not answer: ask the LAN where the hub is now
            attempt += 1
            await asyncio.sleep(delay)

    async def _discover(self) -> tuple[str | None, str]:
        """The URL of the hub to use, or None and why not."""
        hub_name = self.config.node.hub_name
        try:
            found = await self._finder(hub_name)
        except OSError as exc:
            return None, f"cannot look for the hub on the LAN: {_os_reason(exc)}"
        chosen = discovery.choose(found, hub_name)
        if chosen is None:
            return None, discovery.NO_HUB
        self.url = chosen.url
        self._emit(HubFound(chosen.name, chosen.url, tuple(sorted(h.url for h in found))))
        if chosen.url != self._found_url:  # once per new address, not once per retry
            self._found_url = chosen.url
            self.console(discovery.found_line(chosen, found))
        return chosen.url, ""

    async def _link(self, url: str) -> tuple[int | None, str]:
        """One connection, kept until it ends: the close code and why it ended."""
        code: int | None = None
        token = self.config.node.token
        try:
            tls = context_for(url, self.config.node.cafile or None)
        except TLSConfigError as exc:
            raise NodeFatal(str(exc)) from None
        try:
            async with connect(
                url,
                # The token rides on the upgrade too, so a hub that checks it there refuses a
                # wrong one before spending a connection on it (the hello carries it as well).
                additional_headers={"Authorization": f"Bearer {token}"} if token else None,
                ssl=tls,
                open_timeout=HELLO_TIMEOUT_S,
                compression=None,
                ping_interval=2,
                ping_timeout=3,
                close_timeout=1,
                max_size=2**20,
            ) as ws:
                self._ws = ws
                try:
                    await self._session(ws)
                except asyncio.CancelledError:  # stopping: say goodbye properly
                    await ws.close(1000, "node stopping")
                    raise
                finally:
                    self._ws = None
                code = ws.close_code
                reason = (
                    "the hub is shutting down"
                    if code == CloseCode.GOING_AWAY
                    else "the hub closed the connection"
                )
        except InvalidURI:
            raise NodeFatal(f"{url!r} is not a hub address; use ws://HOST:PORT") from None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            reason = _closed_reason(exc)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == HTTPStatus.UNAUTHORIZED:  # the same refusal as a 4401 close, earlier
                code = CloseCode.BAD_TOKEN
            reason = (
                f"{url} answered HTTP {status}, not a hub's WebSocket; check the address and port"
            )
        except InvalidHandshake as exc:
            reason = f"{url} is not a Buzzer Beater hub ({exc})"
        except TimeoutError:
            reason = f"no answer from {url} within {HELLO_TIMEOUT_S:.0f} s"
        except OSError as exc:
            reason = f"cannot reach {url}: {_os_reason(exc)}"
        return code, reason

    def _retry_delay(self, attempt: int) -> float:
        """Exponential from 50 ms, capped, with jitter so a room of nodes does not reconnect in
        lockstep after a hub restart."""
        cap = self.config.connection.retry_max_ms
        base = min(cap, RETRY_FIRST_MS * 2.0 ** min(attempt, 16))
        jitter: float = self._rng.uniform(0.5, 1.0)
        return base * jitter / 1000

    def _after_link_lost(
        self, reason: str, code: int | None, attempt: int, searching: bool = False
    ) -> float:
        """Show the outage, and decide how long to wait before the next try.

        ``searching``: no hub was found on the LAN, so there was no address to try."""
        was_linked = self._linked
        self._linked = False
        self._awaiting.clear()
        self.outbox.link_lost()
        for timer in (self._flush_timer, self._release_timer):
            if timer is not None:
                timer.cancel()
        self._flush_timer = self._release_timer = None
        if code == CloseCode.VERSION_MISMATCH:
            raise NodeFatal(
                f"the hub at {self.url} speaks another protocol version than this node "
                f"({msg.PROTOCOL_VERSION}); update the older of the two"
            )
        retry = self._retry_delay(attempt)
        if code == CloseCode.BAD_TOKEN:
            retry = self.config.connection.refused_retry_s
            message = (
                f"The hub refused this node's token (close {code}); set --token or [node] token. "
                f"Trying again in {retry:.0f} s."
            )
            self._emit(Refused(code, "bad token", retry))
            self.console(message)
        elif code == CloseCode.REPLACED:
            retry = self.config.connection.refused_retry_s
            self._emit(Refused(code, "replaced", retry))
            self.console(
                f"Another station connected with the id {self.id!r} and took over; give each "
                f"node its own --id. Trying again in {retry:.0f} s."
            )
        elif searching and attempt == 0 and reason == discovery.NO_HUB:
            self.console(discovery.missing_line(self.config.node.hub_name))
        elif was_linked or attempt == 0:
            self.console(f"Hub unreachable: {reason}. Retrying every second or so.")
        if was_linked or attempt == 0:
            self._down_since = time.monotonic()
            self._emit(Disconnected(reason, code))
        self._show()
        return retry

    async def _session(self, ws: ClientConnection) -> None:
        # The source actually in use (a keyboard may have fallen back to the terminal): the hub
        # sets its timestamp uncertainty by it.
        primary = self.sources[0].kind if self.sources else self.config.node.inputs[0]
        hello = msg.Hello(
            protocol=msg.PROTOCOL_VERSION,
            role=Role.NODE,
            id=self.id,
            name=self.name,
            input=InputKind(primary),
            token=self.config.node.token or None,
        )
        await ws.send(codec.encode(hello))
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            while True:
                message = self._decode(await ws.recv())
                if isinstance(message, msg.Welcome):
                    break
        self._on_welcome(message)
        async for frame in ws:
            t1 = self.clock()  # first thing: the arrival instant of a sync frame
            message = self._decode(frame)
            if isinstance(message, msg.Sync):
                t2 = self.clock()
                await ws.send(
                    codec.encode(
                        msg.SyncReply(seq=message.seq, t0_ns=message.t0_ns, t1_ns=t1, t2_ns=t2)
                    )
                )
                self._emit(SyncAnswered(message.seq))
                self._resend_overdue()
            elif message is not None:
                self._on_message(message)

    def _decode(self, frame: str | bytes) -> msg.Message | None:
        decoded = codec.decode_hub(frame)
        if isinstance(decoded, codec.ProtocolError):
            self.console(f"The hub sent a frame this node does not understand: {decoded.message}")
            return None
        message = decoded.message
        if isinstance(message, msg.Error | msg.Warning):
            level = "error" if isinstance(message, msg.Error) else "warning"
            self._emit(HubSaid(level, message.code, message.message))
            if message.code != ErrorCode.BAD_TOKEN:  # the close that follows says it better
                self.console(f"Hub {level}: {message.message}")
        return message

    # --- link up ---

    def _on_welcome(self, welcome: msg.Welcome) -> None:
        self._linked = True
        round_ = welcome.round
        if self._down_since is not None:
            away = time.monotonic() - self._down_since
            waiting = len(self.outbox)
            more = f"; sending {waiting} waiting press(es)" if waiting else ""
            self.console(f"{welcome.greeting} Back in touch after {away:.1f} s{more}.")
        else:
            self.console(welcome.greeting)
        self._down_since = None
        # A hub that restarted knows nothing of the old round; take its word from here on.
        self._rank = None
        self._lock = None
        self._round = None
        self._released_round = None
        self._emit(Connected(self.url, welcome.greeting, round_, time.monotonic()))
        # Presses from before the link wait until the hub can place them in this node's clock.
        if len(self.outbox):
            delay = self.config.connection.resync_flush_ms / 1000
            self._flush_timer = asyncio.get_running_loop().call_later(delay, self._flush)
        if round_ is not None:
            self._on_round(round_)
        else:
            self._show()

    def _flush(self) -> None:
        """Send every press that has not gone out on this link yet."""
        self._flush_timer = None
        if not self._linked:
            return
        for press in self.outbox.unsent():
            self._send_press(press, resend=True)

    def _send_press(self, press: PendingPress, resend: bool) -> None:
        ws = self._ws
        if ws is None or not self._linked:
            return
        frame = codec.encode(msg.Press(press_id=press.press_id, at_ns=press.at_ns))
        self.outbox.mark_sent(press.press_id, self.clock())
        self._awaiting.add(press.press_id)
        self._spawn(self._send_frame(ws, frame))
        self._emit(Sent(press.press_id, resend))

    async def _send_frame(self, ws: ClientConnection, frame: str) -> None:
        # On a closed link the press stays in the outbox and goes again after the reconnect.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)

    def _resend_overdue(self) -> None:
        for press in self.outbox.overdue(self.clock(), RESEND_AFTER_NS):
            self._send_press(press, resend=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- frames from the hub ---

    def _on_message(self, message: msg.Message) -> None:
        if isinstance(message, msg.RoundUpdate):
            self._on_round(message)
        elif isinstance(message, msg.Ack):
            if self.outbox.ack(message.press_id):
                self._emit(Acked(message.press_id))
        elif isinstance(message, msg.Result):
            self._on_result(message)
        elif isinstance(message, msg.Offer | msg.Ruling | msg.TimerNotice):
            self._on_game(message)

    def _on_game(self, message: msg.Offer | msg.Ruling | msg.TimerNotice) -> None:
        """Game play: the answer passed to this player, the host's ruling, an answer timer."""
        if isinstance(message, msg.Offer) and self.feedback is not None:
            self.feedback.beep()  # the floor came to this player without a press of theirs
        self.console(message.text)

    def _on_round(self, update: msg.RoundUpdate) -> None:
        previous = self._round
        self._round = update
        self._emit(RoundChanged(update))
        if previous is None or previous.number != update.number:
            self._awaiting.clear()
        if self._flush_timer is not None and update.synced:
            self._flush_timer.cancel()
            self._flush()  # the hub can now place old presses in this node's clock
        if update.state is Phase.ARMED:
            self._schedule_release(update)
        elif previous is not None and (previous.state, previous.number) != (
            update.state,
            update.number,
        ):
            if update.state is Phase.IDLE:
                self.console("Round reset: wait for the next one.")
            elif update.state is Phase.DECIDED and update.winner and not self._awaiting:
                self.console(f"Round {update.number}: {update.winner} was first.")
            elif update.state is Phase.CLOSED:
                self.console(f"Round {update.number} closed.")
        self._show()

    def _schedule_release(self, update: msg.RoundUpdate) -> None:
        if self._released_round == update.number:
            return
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if update.release_ns is None:
            self._release(update.number, None)
            return
        delay = (update.release_ns - self.clock()) / 1e9
        loop = asyncio.get_running_loop()
        self._release_timer = loop.call_later(
            max(0.0, delay), self._release, update.number, update.release_ns
        )

    def _release(self, number: int, release_ns: int | None) -> None:
        self._release_timer = None
        round_ = self._round
        if round_ is None or round_.number != number or round_.state is not Phase.ARMED:
            return
        self._released_round = number
        late = 0 if release_ns is None else self.clock() - release_ns
        self._emit(Released(number, release_ns is not None, late))
        if release_ns is None:
            self.console(f"Round {number}: go! (clock not synced yet, so lit on arrival)")
        else:
            self.console(f"Round {number}: go!")
        self._show()

    def _on_result(self, result: msg.Result) -> None:
        self._awaiting.discard(result.press_id)
        news = self.outbox.result(result.press_id)
        flags = set(result.flags)
        if result.rank is not None:
            self._rank = (result.round, result.rank)
            if news and result.rank == 1 and Flag.REPEAT not in flags and self.feedback is not None:
                self.feedback.beep()
        if not news:  # a re-sent press answered again: its rank shows, but nothing is said twice
            self._show()
            return
        if flags & {Flag.EARLY, Flag.LOCKED}:
            until = None
            if result.lockout_ns is not None:
                until = self.clock() + result.lockout_ns
                loop = asyncio.get_running_loop()
                if self._lock_timer is not None:
                    self._lock_timer.cancel()
                self._lock_timer = loop.call_later(result.lockout_ns / 1e9, self._show)
            self._lock = (result.round, until)
        self._emit(Resulted(result))
        self.console(result.text)
        self._show()

    # --- presses ---

    def press(self, at_ns: int, source: str) -> None:
        """A press made at ``at_ns`` (this node's clock); call on the loop thread."""
        press = self.outbox.add(at_ns, source)
        self._emit(Pressed(press.press_id, at_ns, source))
        if self.feedback is not None:
            self.feedback.flicker()
        if self._linked:
            self.console(f"Press registered ({source}).")
            self._send_press(press, resend=False)
        else:
            self.console(f"Press registered ({source}); the hub is unreachable, sending it later.")

    # --- the LED ---

    def look(self) -> Look:
        round_ = self._round
        now = self.clock()
        if round_ is None:
            return Look(link_up=True)
        locked = round_.locked_out
        if self._lock is not None:
            lock_round, until = self._lock
            if round_.number <= lock_round and (until is None or now < until):
                locked = True
        rank = self._rank[1] if self._rank and self._rank[0] == round_.number else None
        return Look(
            link_up=self._linked,
            phase=round_.state,
            released=round_.state is Phase.ARMED and self._released_round == round_.number,
            locked_out=locked,
            rank=rank,
            awaiting_result=bool(self._awaiting),
        )

    def _show(self) -> None:
        if self.feedback is None:
            return
        # Unlinked: off until a first attempt has failed, then the unreachable heartbeat.
        look = self.look() if self._linked else Look(link_up=self._down_since is None)
        self.feedback.show(choose_pattern(look))


def _closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "the connection to the hub was lost"
    code, text = exc.rcvd.code, exc.rcvd.reason
    if code == CloseCode.GOING_AWAY:
        return "the hub is shutting down"
    return f"the hub closed the connection ({code}{': ' + text if text else ''})"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host name; check the address"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "nothing listens there (is buzzer-hub running, on that port?)"
    return exc.strerror or str(exc)
