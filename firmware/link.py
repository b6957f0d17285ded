"""The node's connection to its hub: the I/O half of the node, and no more than that.

:class:`Link` finds the hub (with ``hub = "auto"``, over mDNS), connects (the token on the
upgrade, TLS for ``wss://``), says hello and reads frames. Each frame is stamped with the node
clock once, first thing on arrival, decoded, and handed with that instant to the pure core
(:class:`firmware.state.NodeState`), which decides everything; the link carries out what the core
answers: frames to the hub, LED patterns and beeps, console lines, event-log entries, and one
timer for the core's next wake-up. When the connection ends it tells the core and tries again, with
jittered backoff capped at about a second (``retry_max_ms``), or after ``refused_retry_s`` when the
hub refused the node; :class:`NodeFatal` ends the node when retrying cannot help.

With ``hub = "auto"`` the link browses the LAN, lets :mod:`firmware.discovery` choose the hub,
and tries every address that hub announced, those on the station's own subnets first, until one
answers: a hub on its own access point and the venue's Wi-Fi is reachable at only one of them
from a given station. A hub that says it uses TLS is reached with ``wss://``. A link that was up
is first retried at the same address, since a restarted hub is usually back there before it is
announced again; an address that does not answer is looked up again (a hub that rebooted may
have a new address or port).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from http import HTTPStatus
from typing import assert_never

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State

from firmware import discovery
from firmware.config import AUTO_HUB, NodeConfig
from firmware.events import Connected, NodeEvent
from firmware.feedback import Feedback
from firmware.keepalive import UNWATCHED_PING_INTERVAL_S, WATCHED, WatchedConnection
from firmware.state import (
    Action,
    AnswerSync,
    Beep,
    Flicker,
    Log,
    NodeState,
    Outage,
    Say,
    Send,
    Show,
    WakeAt,
)
from wire import codec
from wire import messages as msg
from wire.browse import find_hubs, lan_addresses
from wire.discovery import FoundHub, LanAddress
from wire.enums import CloseCode, InputKind
from wire.errors import BuzzerError, TLSConfigError
from wire.tcpwatch import SILENT_PEER_ERRNOS
from wire.tls import context_for

Clock = Callable[[], int]
#: Browses the LAN for hubs, given the wanted hub name ("" for any); a test can pass its own.
Finder = Callable[[str], Awaitable[list[FoundHub]]]
#: This station's LAN addresses, read at each search; a test can pass its own.
LocalAddresses = Callable[[], list[LanAddress]]
#: What goes to the hub: a message (a press is stamped as it leaves), or a sync reply still to be
#: stamped as it leaves.
Outgoing = msg.Hello | msg.Press | AnswerSync

HELLO_TIMEOUT_S = 5.0
RETRY_FIRST_MS = 50.0
#: One browse: long enough for a hub's answer (20-120 ms) plus a resolve on a busy Wi-Fi.
BROWSE_S = 3.0
#: After the first answer, how long to listen for other hubs before choosing.
SETTLE_S = 0.5


class NodeFatal(BuzzerError):
    """Retrying cannot help (e.g. the hub speaks another protocol version); the message says why."""


async def browse(hub_name: str) -> list[FoundHub]:
    """The hubs answering one browse: the named one alone, or every one heard in the window."""
    if hub_name:
        return await find_hubs(BROWSE_S, match=lambda hub: discovery.same_name(hub.name, hub_name))
    return await find_hubs(BROWSE_S, settle=SETTLE_S)


class Link:
    """Keeps one station connected to its hub and carries out what its core decides."""

    def __init__(
        self,
        config: NodeConfig,
        state: NodeState,
        *,
        clock: Clock,
        say: Callable[[str], None],
        log: Callable[[NodeEvent], None],
        finder: Finder | None = None,
        local: LocalAddresses | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.url = config.node.hub
        self.discovering = config.node.hub == AUTO_HUB
        self.feedback: Feedback | None = None  # set by the node while it runs
        self._say = say
        self._log = log
        self._finder = finder or browse
        self._local = local or lan_addresses
        self._opened = False  # the current attempt's WebSocket opened: the hub was reached
        self._rng = rng or random.Random()
        self._open: ClientConnection | None = None  # the connection frames go out on
        self._timer: asyncio.TimerHandle | None = None
        self._told_unwatched = False

    # --- carrying out the core's decisions ---

    def carry(self, actions: list[Action], now: int) -> None:
        """Do what the core answered to an event stamped ``now``; call on the loop thread."""
        feedback = self.feedback
        for action in actions:
            match action:
                case Send(message=message):
                    self._write(message)
                case AnswerSync():
                    self._write(action)
                case Log(event=event):
                    self._log(event)
                case Say(line=line):
                    self._say(line)
                case Show(pattern=pattern):
                    if feedback is not None:
                        feedback.show(pattern)
                case Flicker():
                    if feedback is not None:
                        feedback.flicker()
                case Beep():
                    if feedback is not None:
                        feedback.beep()
                case WakeAt(at_ns=at_ns):
                    self._wake_at(at_ns, now)
                case _:
                    assert_never(action)

    def _write(self, item: Outgoing) -> None:
        """Write at once, in the order the core decided; a sync reply and a press get their
        send instant last thing before they leave.

        Not through ``send()``: a coroutine needs a task, and a press handed to a writer task
        left a turn of the loop later, behind whatever else was ready (the LED's flicker
        first). A press's time on the way counts in how long every round must wait for it.
        Between a connection's end and the core hearing of it nothing is written: the core
        sends again what it sent on a lost link, once the next one is up."""
        ws = self._open
        if ws is None or ws.protocol.state is not State.OPEN:
            return
        message: msg.Message
        if isinstance(item, AnswerSync):
            t2 = self.clock()
            message = msg.SyncReply(seq=item.seq, t0_ns=item.t0_ns, t1_ns=item.t1_ns, t2_ns=t2)
        elif isinstance(item, msg.Press):
            message = replace(item, sent_ns=self.clock())  # its time on this station
        else:
            message = item
        ws.protocol.send_text(codec.encode(message).encode())
        with contextlib.suppress(OSError, RuntimeError):  # the connection is ending: the
            ws.send_data()  # reader sees the end and reports it

    def _wake_at(self, at_ns: int | None, now: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if at_ns is not None:
            delay = max(0.0, (at_ns - now) / 1e9)
            self._timer = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        now = self.clock()
        self.carry(self.state.timer(now), now)

    # --- staying connected ---

    async def run(self, input_kind: InputKind) -> None:
        """Connect, and reconnect, until cancelled; NodeFatal when retrying cannot help."""
        try:
            await self._connect_forever(input_kind)
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def _connect_forever(self, input_kind: InputKind) -> None:
        attempt = 0
        url: str | None = None if self.discovering else self.url
        while True:
            if url is None:
                outage = await self._search(input_kind)
            else:
                outage = await self._connect(url, input_kind)
            linked = self.state.linked
            if linked:
                attempt = 0  # a link that was up starts the backoff afresh
                url = self.url  # and is tried again where it was up
            if outage.code == CloseCode.VERSION_MISMATCH:
                raise NodeFatal(
                    f"the hub at {self.url} speaks another protocol version than this node "
                    f"({msg.PROTOCOL_VERSION}); update the older of the two"
                )
            if outage.code in (CloseCode.BAD_TOKEN, CloseCode.REPLACED):
                delay = self.config.connection.refused_retry_s
            else:
                delay = self._retry_delay(attempt)
            now = self.clock()
            self.carry(self.state.link_lost(now, replace(outage, retry_s=delay)), now)
            if self.discovering and not linked:
                url = None  # that address did not answer: ask the LAN where the hub is now
            attempt += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int) -> float:
        """Exponential from 50 ms, capped, with jitter so a room of nodes does not reconnect in
        lockstep after a hub restart."""
        cap = self.config.connection.retry_max_ms
        base = min(cap, RETRY_FIRST_MS * 2.0 ** min(attempt, 16))
        jitter: float = self._rng.uniform(0.5, 1.0)
        return base * jitter / 1000

    async def _search(self, input_kind: InputKind) -> Outage:
        """Find the hub on the LAN and connect to it, trying each address it announced; the
        outage that ended the connection, or why no hub could be used (with what was tried)."""
        hub_name = self.config.node.hub_name
        local = self._local()
        try:
            found = await self._finder(hub_name)
        except OSError as exc:
            if not local:
                return Outage(discovery.missing_reason(hub_name, local), nothing_found=True)
            reason = f"cannot look for the hub on the LAN: {_os_reason(exc)}"
            return Outage(reason, nothing_found=True)
        chosen = discovery.choose(found, hub_name)
        if chosen is None:
            return Outage(discovery.missing_reason(hub_name, local, found), nothing_found=True)
        if self.config.node.cafile and not chosen.tls:
            return Outage(discovery.tls_mismatch_reason(chosen), nothing_found=True)
        tried: list[tuple[str, str]] = []
        for url in discovery.ordered_urls(chosen, local):
            outage = await self._connect(url, input_kind, (chosen, found))
            if self._opened or outage.code is not None:
                return outage  # the hub was reached there: whatever happened next stands
            tried.append((url, outage.reason))
        return Outage(discovery.unreachable_reason(chosen, tried), nothing_found=True)

    async def _connect(
        self,
        url: str,
        input_kind: InputKind,
        found: tuple[FoundHub, list[FoundHub]] | None = None,
    ) -> Outage:
        """One connection, kept until it ends: how it ended. ``found``: the hub chosen on the
        LAN and all that answered, named on the console once this address is reached."""
        self._opened = False
        self.url = url
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
                close_timeout=1,
                max_size=2**20,
                **WATCHED,  # direct, and how a lost hub is noticed: see firmware.keepalive
            ) as ws:
                self._opened = True
                self._tell_unwatched(ws)
                if found is not None:
                    now = self.clock()
                    self.carry(self.state.hub_found(found[0], url, found[1], now), now)
                try:
                    await self._session(ws, url, input_kind)
                except asyncio.CancelledError:  # stopping: say goodbye properly
                    await ws.close(1000, "node stopping")
                    raise
                code = ws.close_code
                if code == CloseCode.GOING_AWAY:
                    return Outage("the hub is shutting down", code)
                return Outage("the hub closed the connection", code)
        except InvalidURI:
            raise NodeFatal(f"{url!r} is not a hub address; use ws://HOST:PORT") from None
        except ConnectionClosed as exc:
            return Outage(closed_reason(exc), exc.rcvd.code if exc.rcvd else None)
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = (
                f"{url} answered HTTP {status}, not a hub's WebSocket; check the address and port"
            )
            if status == HTTPStatus.UNAUTHORIZED:  # the same refusal as a 4401 close, earlier
                return Outage(reason, CloseCode.BAD_TOKEN)
            return Outage(reason)
        except InvalidHandshake as exc:
            return Outage(f"{url} is not a Buzzer Beater hub ({exc})")
        except TimeoutError:
            return Outage(f"no answer from {url} within {HELLO_TIMEOUT_S:.0f} s")
        except OSError as exc:
            return Outage(f"cannot reach {url}: {_os_reason(exc)}")

    def _tell_unwatched(self, ws: ClientConnection) -> None:
        """Say once if this system's kernel cannot watch the link (the node pings more often)."""
        unwatched = ws.unwatched if isinstance(ws, WatchedConnection) else None
        if unwatched is not None and not self._told_unwatched:
            self._told_unwatched = True
            self._say(
                f"Note: pinging the hub every {UNWATCHED_PING_INTERVAL_S:g} s to notice if it is"
                f" lost ({unwatched.strerror or unwatched}); on Linux the kernel does it for free."
            )

    async def _session(self, ws: ClientConnection, url: str, input_kind: InputKind) -> None:
        """Hello, welcome, then every frame to the core until the connection ends."""
        self._open = ws
        try:
            now = self.clock()
            self.carry(self.state.opened(now, input_kind), now)
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                while not self.state.linked:
                    frame = await ws.recv()
                    now = self.clock()
                    decoded = codec.decode_hub(frame)
                    if isinstance(decoded, codec.Decoded) and isinstance(
                        decoded.message, msg.Welcome
                    ):
                        welcome = decoded.message
                        self._log(Connected(url, welcome.greeting, welcome.round, time.monotonic()))
                    self.carry(self.state.receive(decoded, now), now)
            async for frame in ws:
                now = self.clock()  # first thing: a sync request's arrival instant
                self.carry(self.state.receive(codec.decode_hub(frame), now), now)
        finally:
            self._open = None


#: The reason the WebSocket library gives a 1011 close when a ping goes unanswered.
PING_TIMEOUT_REASON = "keepalive ping timeout"


def closed_reason(exc: ConnectionClosed) -> str:
    """Why a connection to the hub ended, in words a host can act on."""
    sent, rcvd = exc.sent, exc.rcvd
    if rcvd is None and sent is not None and sent.reason == PING_TIMEOUT_REASON:
        # This station's ping went unanswered (the library then gives up on the close as well).
        return (
            "the hub did not answer a ping in time; check its power, its cable or the Wi-Fi,"
            " or restart buzzer-hub"
        )
    cause = exc.__cause__
    if rcvd is None and isinstance(cause, OSError) and cause.errno in SILENT_PEER_ERRNOS:
        return "the hub stopped answering; check its power, its cable or the Wi-Fi"
    if rcvd is None:
        return "the connection to the hub was lost"
    code, text = rcvd.code, rcvd.reason
    if code == CloseCode.GOING_AWAY:
        return "the hub is shutting down"
    if code == CloseCode.INTERNAL_ERROR and text == PING_TIMEOUT_REASON:
        return "the hub heard nothing from this station for too long; check this station's network"
    return f"the hub closed the connection ({code}{': ' + text if text else ''})"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host name; check the address"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "nothing listens there (is buzzer-hub running, on that port?)"
    return exc.strerror or str(exc)
