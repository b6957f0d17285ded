"""The hub's network side: WebSocket connections in, the core's outputs out.

This module holds no game rules. It listens (with :class:`hub.gate.Gate` in front of every
upgrade and :class:`hub.http.Routes` for plain HTTP), gives each connection a link number, stamps
every event with ``time.monotonic_ns()`` once and hands it to :class:`hub.core.machine.HubCore`,
then carries out what the core returns: frames are queued with :func:`websockets.broadcast` so
that fanning a decision out to hundreds of players never waits on any one of them, saves go to the
:class:`hub.recorder.Recorder`, and events to the log and the subscribers. One timer wakes the core
when it next needs to act.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, assert_never

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Event, State

from hub.auth import request_token, tokens_match
from hub.backlog import Backlog, Read
from hub.config import HubConfig
from hub.core.events import HubEvent, Listening, Stopped
from hub.core.machine import EARLY_WAKE_NS, HubCore
from hub.core.outputs import (
    Broadcast,
    Close,
    LinkId,
    Notify,
    Output,
    Ping,
    Save,
    Send,
    Watch,
)
from hub.gate import Gate
from hub.guard import Guard, peer
from hub.http import HISTORY_PAGE, Access, Routes
from hub.limits import NS_PER_S, RepeatFilter
from hub.recorder import Recorder
from wire import codec, tcpwatch
from wire import messages as msg
from wire.messages import MAX_CLIENT_FRAME_BYTES, MatchReport, StorageView
from wire.tls import server_context

log = logging.getLogger("hub")

#: Frames already read are handed over without a wait, so a client's whole burst (up to the
#: message budget's 200) would hold every other link's frames back: after this many in a row, the
#: others get a turn. Not after each one: the fairness sweep then ranked more of its 2 ms gaps
#: wrong, likely as a frame that came right behind another was stamped a loop turn late.
FRAMES_PER_TURN = 16

#: How many times per ``keepalive_s`` the keepalive looks at every link (see Server._keepalive):
#: a quiet link is pinged after ``keepalive_s`` to a quarter more, and closed as long after.
KEEPALIVE_LOOKS = 4
#: A round-trip ping whose pong has not come back by then is given up (the next one may).
PONG_TIMEOUT_NS = 5_000_000_000
#: How long any closing connection (a stop's 1001, a refusal's 4401...) waits for the peer to
#: answer the close frame before the hub drops it. The library's 10 s held every stop and
#: restart that long while one station was unplugged or frozen; a live peer answers within
#: milliseconds. A peer only slow still gets the close frame (the kernel delivers what was
#: sent); one that never does (a pulled cable) sees its connection lost, and reconnects.
CLOSE_TIMEOUT_S = 2.0
#: A stop waits this much longer for every connection to end, then drops those left.
STOP_GRACE_S = 1.0
#: The event loop's warnings about vanished peers: one line per kind this often.
LOOP_WARNINGS_INTERVAL_NS = 10_000_000_000
#: A station that stops answering (a pulled cable, a lost power supply: it sends nothing) is
#: noticed by the hub's kernel (:mod:`wire.tcpwatch`): it probes a station's link after
#: STATION_IDLE_S of silence, every STATION_PROBE_S, and ends the link once nothing has been
#: acknowledged for LOST_STATION_S (up to twice that if the hub was sending to it), as the
#: station's kernel does for its hub. The keepalive's ping alone took 40 to 50 s. At 1000 idle
#: stations the hub's kernel sent about 280 probes a second, its process's CPU unchanged.
STATION_IDLE_S, STATION_PROBE_S, LOST_STATION_S = 3, 1, 6.0
#: The frames that end a message (a continuation ends a fragmented one).
MESSAGE_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class GuardedConnection(ServerConnection):
    """A connection whose control frames (ping, pong) count in its message budget too: the
    library answers pings by itself, so a client could otherwise send them without limit. It
    notes when it last heard anything, for the keepalive (:meth:`Server._keepalive`), times
    the core's round-trip pings on the hub's own clock, and notes when each message was read.

    A message is handled by the connection's task, after whatever else the loop was doing: with a
    hundred nodes, a sync reply waited 0.6 ms at p90 and 8 ms at worst between being read and
    being handled. Placed by the moment it was read (:meth:`arrived_ns`), that wait no longer
    counts as the node's upload delay, which sets how long every round waits for presses. Every
    message read is also in the server's :class:`~hub.backlog.Backlog` until it is handled.

    The library times a ping with the event loop's clock, which on uvloop counts whole
    milliseconds: a loopback round trip came out as 0, a LAN's as 0, 1 or 2 ms, and a tutorial
    client's press is placed by half of it. Here a round trip runs from just before the ping is
    written to the moment its pong's frame is read, in nanoseconds, and reaches the core at once.
    """

    guard: Guard | None = None
    backlog: Backlog | None = None
    heard_ns = 0
    keepalive_pinged_ns: int | None = None  # the keepalive's ping not yet answered by a frame
    unanswered = False  # closed for want of a pong to the keepalive ping
    lost: Exception | None = None  # why the connection ended, if it did not end cleanly
    link: LinkId = 0
    on_round_trip: Callable[[LinkId, int, int], None] | None = None  # (link, rtt_ns, now)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._round_trips: dict[bytes, int] = {}  # payload -> sent at, for pings still out
        self._arrivals: deque[Read] = deque()  # each message not yet taken, as read

    def arrived_ns(self) -> int | None:
        """When the message just taken from the connection had its last frame read; from now
        on it counts as handled."""
        if not self._arrivals:
            return None
        entry = self._arrivals.popleft()
        entry.handled = True
        return entry.at_ns

    def drop_unread(self) -> None:
        """Messages read and never taken will not be handled: the connection has ended or is
        ending, or its task has (by a fault)."""
        while self._arrivals:
            self._arrivals.popleft().handled = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        super().connection_lost(exc)
        self.drop_unread()

    def set_connection_exc(self, exc: BaseException | None) -> None:
        """The library refused a message it had read (invalid UTF-8, too many fragments) and is
        closing: it waits up to CLOSE_TIMEOUT_S for the peer before the task hears of it, and a
        peer that never answers must not hold every round that long."""
        super().set_connection_exc(exc)
        self.drop_unread()

    def expect_pong(self, payload: bytes, sent_ns: int) -> None:
        """A round-trip ping with ``payload`` went out at ``sent_ns``: time its pong."""
        out = self._round_trips
        for old, sent in list(out.items()):  # one every few seconds at most: a handful
            if sent_ns - sent > PONG_TIMEOUT_NS:
                del out[old]  # given up
        out[payload] = sent_ns

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            now = self.heard_ns = time.monotonic_ns()
            guard = self.guard
            if (
                guard is not None
                and event.opcode in (Opcode.PING, Opcode.PONG)
                and not guard.admit(self, now)
            ):
                return
            if event.fin and event.opcode in MESSAGE_OPCODES:  # a message is complete
                # Only while open does the server's task take messages: frames sent ahead of
                # the handshake's answer (which may refuse it) or after the end never count.
                backlog = self.backlog if self.protocol.state is State.OPEN else None
                self._arrivals.append(Read(now) if backlog is None else backlog.read(now))
            elif event.opcode is Opcode.PONG and self._round_trips:
                sent = self._round_trips.pop(bytes(event.data), None)
                if sent is not None and now - sent <= PONG_TIMEOUT_NS and self.on_round_trip:
                    try:
                        self.on_round_trip(self.link, now - sent, now)
                    except Exception:  # a fault of ours must not cost the player the link
                        log.exception("round trip of link %d not taken", self.link)
        super().process_event(event)


class Server:
    """Connections to and from one :class:`HubCore`."""

    def __init__(
        self,
        config: HubConfig,
        core: HubCore,
        recorder: Recorder,
        on_event: Callable[[HubEvent], None],
    ) -> None:
        self.config = config
        self.core = core
        self.recorder = recorder
        self.on_event = on_event
        limits = config.limits
        self.guard = Guard(
            limits.messages_per_s, limits.message_burst, limits.send_buffer_kb * 1024
        )
        self.backlog = Backlog()
        self._cap_ns = core.horizon.cap_ns  # see _settled
        # A connection class of this server's own, so that each knows this server's guard.
        self._connection = type(
            "Connection",
            (GuardedConnection,),
            {"guard": self.guard, "backlog": self.backlog, "on_round_trip": self._round_trip},
        )
        self.websockets: WebSocketServer | None = None
        self._links: dict[LinkId, GuardedConnection] = {}
        self._numbers = itertools.count(1)
        self._wakeup: asyncio.TimerHandle | None = None
        self._wakeup_ns: int | None = None
        self._carrying = 0  # _carry calls under way (one inside another)
        self._unwatched = False  # the kernel could not watch a station's link: said once
        self._background: set[asyncio.Task[Any]] = set()
        self._tokenless: dict[str, int] = {}  # open connections without a token, per address
        self._served: tuple[msg.State | None, dict[Access, bytes]] = (None, {})
        self._keeping_alive: asyncio.Task[None] | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        server, security = self.config.server, self.config.security
        self.recorder.start(asyncio.get_running_loop(), self._storage_changed)
        quiet_loop_warnings()
        routes = Routes(
            self.snapshot,
            self.results_csv,
            scheme="https" if security.tls else "http",
            access=self.access,
            history=self.history_page,
            match_report=self.match_report,
            host_token=self.core.host_token,
        )
        gate = Gate(
            routes,
            tokenless=self._tokenless_counts,
            cooling=self.guard.cooling_down,
            tokenless_per_address=self.config.limits.tokenless_per_address,
            open_connections=self._open_connections,
            max_connections=self.config.limits.max_connections,
            node_token=server.node_token,
            host_token=self.core.host_token,
            origins=security.origins,
            tls=security.tls,
            token_required=security.token_before_upgrade,
        )
        tls = server_context(security.certfile, security.keyfile) if security.tls else None
        self._carry(self.core.start(time.monotonic_ns()))

        async def listen(port: int) -> WebSocketServer:
            return await serve(
                self._serve,
                server.host or None,
                port,
                process_request=gate,
                ssl=tls,
                compression=None,
                max_size=MAX_CLIENT_FRAME_BYTES,
                create_connection=self._connection,
                ping_interval=None,  # see _keepalive
                close_timeout=CLOSE_TIMEOUT_S,
                server_header="buzzer-beater",
            )

        self.websockets = await listen(server.port)
        # Port 0 on every interface: asyncio gives the IPv4 and the IPv6 socket each its own free
        # port, but the hub prints and announces one. Listen again on all of them at the port the
        # first got; should another program hold that port in the other family, draw anew.
        for attempt in range(1, 11):
            if len({sock.getsockname()[1] for sock in self.websockets.sockets}) == 1:
                break
            shared = self.port
            self.websockets.close()
            await self.websockets.wait_closed()
            try:
                self.websockets = await listen(shared)
            except OSError:
                if attempt == 10:
                    raise
                self.websockets = await listen(0)
        self._keeping_alive = asyncio.create_task(self._keepalive())
        self.on_event(Listening(tuple(self.addresses)))

    async def stop(self) -> None:
        """Close every connection with 1001 (going away) so clients know to reconnect."""
        if self.websockets is None:
            return
        if self._keeping_alive is not None:
            self._keeping_alive.cancel()  # links closing with 1001 are no keepalive's to fail
        log.info("shutting down: closing %d connections", len(self.websockets.connections))
        self.websockets.close(close_connections=True)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S + STOP_GRACE_S):
                await self.websockets.wait_closed()
        except TimeoutError:
            # Frames queued for a peer that stopped reading are drained before its close even
            # starts, and no close timeout covers that: it is dropped instead.
            stuck = [ws for ws in self.websockets.all_connections if ws.transport is not None]
            log.warning("shutting down: dropping %d connections that do not read", len(stuck))
            for ws in stuck:
                ws.transport.abort()
            await self.websockets.wait_closed()
        if self._wakeup is not None:
            self._wakeup.cancel()
        for task in list(self._background):
            task.cancel()
        self.on_event(Stopped())

    @property
    def addresses(self) -> list[str]:
        assert self.websockets is not None
        names = []
        for sock in self.websockets.sockets:
            host, port = sock.getsockname()[:2]
            names.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return names

    @property
    def port(self) -> int:
        assert self.websockets is not None
        port: int = next(iter(self.websockets.sockets)).getsockname()[1]
        return port

    def _open_connections(self) -> int:
        return len(self.websockets.all_connections) if self.websockets is not None else 0

    # --- connections ---

    async def _serve(self, ws: ServerConnection) -> None:
        assert isinstance(ws, GuardedConnection)  # made by this server (create_connection)
        link = ws.link = next(self._numbers)
        self._links[link] = ws
        request = ws.request
        token = None
        if request is not None:
            token = request_token(request.path, request.headers.get("Authorization"))
        address = peer(ws).rsplit(":", 1)[0]
        tokenless = not self._token_holder(token)
        if tokenless:
            self._tokenless[address] = self._tokenless.get(address, 0) + 1
        now = time.monotonic_ns()
        self._carry(self.core.connect(link, peer(ws), token, now))
        ws.heard_ns = now
        handled = 0
        try:
            async for frame in ws:
                now, arrived = time.monotonic_ns(), ws.arrived_ns()
                if self.guard.admit(ws, now):
                    self._carry(self.core.receive(link, frame, now, arrived, self._settled(now)))
                handled += 1
                if handled % FRAMES_PER_TURN == 0:
                    await asyncio.sleep(0)  # the other links' turn
        except ConnectionClosed:
            pass
        finally:
            ws.drop_unread()
            del self._links[link]
            if tokenless:
                left = self._tokenless.pop(address, 1) - 1
                if left:
                    self._tokenless[address] = left
            code = ws.close_code
            reason = f"close code {code}" if code is not None else "connection lost"
            if ws.unanswered:
                reason = f"no pong within {self.config.limits.keepalive_s:g} s, close code 1011"
            elif isinstance(ws.lost, OSError) and ws.lost.errno in tcpwatch.SILENT_PEER_ERRNOS:
                reason = "the station stopped answering or reading: check its power, cable, Wi-Fi"
            self._carry(self.core.disconnect(link, reason, time.monotonic_ns()))

    async def _keepalive(self) -> None:
        """The WebSocket library's keepalive, less the pings a link's own frames make needless,
        and with one timer for every link rather than one each.

        A link that went quiet for ``keepalive_s`` is pinged, and closed (1011) if nothing comes
        back within as long again (the silence may run a quarter longer: see below). But any frame
        shows the peer is there, and most links speak often: a node's sync replies and its
        pongs to the core's pings, the firmware's pings every 20 s, a tutorial client's library
        pinging on its own. Pinging those anyway cost a frame each way per link every 20 s (for
        a room of idle plain clients, half the hub's CPU). The links are looked at
        KEEPALIVE_LOOKS times per ``keepalive_s``: a timer per link woke the hub once per link
        and interval, a wake-up of its own each, which at idle cost more than the looking.
        """
        interval_ns = round(self.config.limits.keepalive_s * NS_PER_S)
        while True:
            await asyncio.sleep(interval_ns / KEEPALIVE_LOOKS / NS_PER_S)
            now = time.monotonic_ns()
            for ws in list(self._links.values()):
                try:
                    self._keepalive_look(ws, now, interval_ns)
                except Exception:  # one link's fault must not end the keepalive for all
                    log.exception("keepalive of link %d failed", ws.link)

    def _keepalive_look(self, ws: GuardedConnection, now: int, interval_ns: int) -> None:
        """Ping ``ws`` if it went quiet; close it if it has not answered its ping."""
        pinged = ws.keepalive_pinged_ns
        if pinged is not None and ws.heard_ns >= pinged:
            pinged = ws.keepalive_pinged_ns = None  # it answered
        if pinged is None:
            quiet = now - ws.heard_ns >= interval_ns - EARLY_WAKE_NS
            if quiet and self._send_ping(ws, os.urandom(4), "keepalive"):  # any frame answers
                ws.keepalive_pinged_ns = now
        elif now - pinged >= interval_ns - EARLY_WAKE_NS and ws.protocol.state is State.OPEN:
            # As the library's own keepalive: a close frame, then the connection ends without
            # waiting for the peer's (a pulled cable never sends one).
            ws.unanswered = True
            ws.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            ws.send_data()
            ws.transport.abort()

    # --- carrying the core's outputs out ---

    def _carry(self, outputs: list[Output]) -> None:
        self._carrying += 1
        try:
            self._carry_each(outputs)
        finally:
            self._carrying -= 1
        # Once, after all: carrying a step out can carry more (a save done at once, in memory).
        if not self._carrying:
            self._schedule()

    def _carry_each(self, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case Send(link=link, frame=frame):
                    ws = self._links.get(link)
                    if ws is not None and self.guard.writable(ws):
                        broadcast((ws,), frame)
                case Broadcast(links=links, frame=frame):
                    targets = [ws for link in links if (ws := self._links.get(link)) is not None]
                    broadcast(self.guard.writable_among(targets), frame)
                case Close(link=link, code=code, reason=reason):
                    if (ws := self._links.get(link)) is not None:
                        self._spawn(ws.close(code, reason))
                case Ping(link=link):
                    if (ws := self._links.get(link)) is not None:
                        self._ping(ws)
                case Save(record=record, ticket=ticket):
                    if ticket is None:
                        self.recorder.write(record, None)
                    else:
                        self.recorder.write(record, self._acker(ticket), self._loser(ticket))
                case Notify(event=event):
                    self.on_event(event)
                case Watch(link=link):  # after the kinds a burst is made of: once a station
                    if (ws := self._links.get(link)) is not None:
                        self._watch(ws)
                case _:
                    assert_never(output)

    def _acker(self, ticket: int) -> Callable[[], None]:
        """What runs on the loop once a journal step is committed: its acks go out."""
        return lambda: self._carry(self.core.saved(ticket, time.monotonic_ns()))

    def _loser(self, ticket: int) -> Callable[[], None]:
        """What runs on the loop if the store refuses a journal step on its own."""
        return lambda: self._carry(self.core.lost(ticket, time.monotonic_ns()))

    def _watch(self, ws: GuardedConnection) -> None:
        """Have the kernel notice when a station stops answering (see :class:`Watch`)."""
        if ws.transport.is_closing():  # a hello read before its link went: nothing to watch
            return
        try:
            sock = ws.transport.get_extra_info("socket")
            tcpwatch.watch(sock, STATION_IDLE_S, STATION_PROBE_S, LOST_STATION_S)
        except OSError as exc:
            if not isinstance(exc, tcpwatch.Unwatchable):
                return  # its socket went meanwhile: so did the station
            if not self._unwatched:
                self._unwatched = True
                log.warning(
                    "a lost station is noticed by the keepalive alone, after %g to %g s: %s",
                    2 * self.config.limits.keepalive_s,
                    2.5 * self.config.limits.keepalive_s,
                    exc,
                )

    def _ping(self, ws: GuardedConnection) -> None:
        """A round-trip ping, written at once; its pong reaches the core from the connection as
        it is read."""
        payload = os.urandom(8)  # unguessable: a pong sent ahead of its ping is no sample
        sent = time.monotonic_ns()
        if self._send_ping(ws, payload, "round-trip"):
            ws.expect_pong(payload, sent)  # no pong is read before this returns to the loop

    def _send_ping(self, ws: GuardedConnection, payload: bytes, what: str) -> bool:
        """Write a ping through the protocol, at once; False if the link is closing or the write
        failed. Not the library's ``ping()``, which keeps a future for every ping until a pong
        comes: from a peer that never answers, and speaks often enough never to be closed by the
        keepalive, that was one more every few seconds for as long as it stayed."""
        if ws.protocol.state is not State.OPEN:
            return False  # closing: nothing to measure or keep alive
        try:
            ws.protocol.send_ping(payload)
            ws.send_data()
        except Exception:  # as broadcast does: a write that fails loses this ping, nothing else
            log.debug("%s ping to link %d not written", what, ws.link, exc_info=True)
            return False
        return True

    def _round_trip(self, link: LinkId, rtt_ns: int, now: int) -> None:
        self._carry(self.core.pong(link, rtt_ns, now))

    def _schedule(self) -> None:
        """One timer, at the core's next wake-up.

        A timer already set for no later stays: moved to each event's new wake-up, a timer that
        was due would never fire while frames keep coming (they take turns with it). Waking
        before anything is due costs the core one look.
        """
        wake = self.core.next_wakeup()
        if self._wakeup_ns is not None and (wake is None or self._wakeup_ns <= wake):
            return
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self._wakeup_ns = wake
        if wake is not None:
            delay = max(0.0, (wake - time.monotonic_ns()) / 1e9)
            self._wakeup = asyncio.get_running_loop().call_later(delay, self._wake)

    def _settled(self, now: int) -> int | None:
        """Until when every message read has been handled, for the core's decisions; none read
        longer ago than the adjudication cap is waited for."""
        return self.backlog.settled_ns(now - self._cap_ns)

    def _wake(self) -> None:
        self._wakeup = self._wakeup_ns = None
        now = time.monotonic_ns()
        outputs = self.core.timer(now, self._settled(now))
        pictures = any(isinstance(o, Broadcast) and o.picture for o in outputs)
        self._carry(outputs)
        if pictures:
            self.core.published(time.monotonic_ns() - now)

    def _storage_changed(self, status: StorageView) -> None:
        self._carry(self.core.storage_changed(status, time.monotonic_ns()))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping a reference so it is not collected midway."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- plain HTTP ---

    def _token_holder(self, token: str | None) -> bool:
        """Whether an upgrade's token is the host's or (when one is set) the node token."""
        if token is None:
            return False
        node_token = self.config.server.node_token
        return tokens_match(token, self.core.host_token) or bool(
            node_token and tokens_match(token, node_token)
        )

    def _tokenless_counts(self, address: str) -> tuple[int, int]:
        """Open connections without a token: from ``address``, and in all."""
        return self._tokenless.get(address, 0), sum(self._tokenless.values())

    def access(self, request: Request) -> Access:
        """What a plain HTTP request may read, by its token (URL or header)."""
        token = request_token(request.path, request.headers.get("Authorization"))
        if token is not None and tokens_match(token, self.core.host_token):
            return Access.HOST
        node_token = self.config.server.node_token
        if not node_token or tokens_match(token, node_token):
            return Access.PUBLIC
        return Access.CLOSED

    async def snapshot(self, access: Access = Access.HOST) -> bytes:
        """The JSON picture of the hub as served on /api/state: the last one built (see
        :meth:`HubCore.picture`), encoded once per access level."""
        while True:
            started = time.monotonic_ns()
            picture, wait = self.core.picture(started)
            if wait <= 0:
                break
            await asyncio.sleep(wait / 1e9)  # a fresh picture is due then: pacing, not a guess
        built, encoded = self._served
        if built is not picture:
            encoded = {}
            self._served = (picture, encoded)
        body = encoded.get(access)
        if body is None:
            data = codec.as_data(picture)
            del data["hub_ns"]
            if access is not Access.HOST and data.get("storage"):
                data["storage"]["path"] = None  # where the hub keeps its files: the host's
            if access is Access.CLOSED:
                data = {"join": data["join"], "round": {"number": data["round"]["number"]}}
            body = encoded[access] = json.dumps(data).encode()
            self.core.published(time.monotonic_ns() - started)  # later pictures are paced by it
        return body

    def history_page(self, access: Access, before: int) -> bytes:
        """Earlier rounds than the picture holds, a page at a time (/api/history?before=N)."""
        rounds = self.core.history(before, HISTORY_PAGE)
        return json.dumps({"history": [codec.as_data(r) for r in rounds]}).encode()

    def results_csv(self) -> str:
        """Every press of the night as CSV (from the database, or from memory if not saved)."""
        return self.recorder.results_csv(self.core.engine, self.core.roster.names())

    def match_report(self, number: int | None) -> MatchReport | None:
        """A match's result: the match on (as it stands) or, when it is not the one asked for,
        the saved one (None: the match on, or else the latest)."""
        live = self.core.match_report(time.monotonic_ns())
        if live is not None and number in (None, live.match.number):
            return live
        last = self.core.fanout.last_result
        if number is None:
            return self.recorder.match_report(None) or last
        if last is not None and last.match.number == number:
            return last
        return self.recorder.match_report(number)

    # --- in-process commands ---

    def carry(self, outputs: list[Output]) -> None:
        """Carry out outputs the caller got from the core itself (the embedding API's commands)."""
        self._carry(outputs)


_LOOP_FILTER = RepeatFilter(LOOP_WARNINGS_INTERVAL_NS)


def quiet_loop_warnings() -> None:
    """Throttle the event loop's per-write warnings about peers that are gone (once a process)."""
    logger = logging.getLogger("asyncio")
    if _LOOP_FILTER not in logger.filters:
        logger.addFilter(_LOOP_FILTER)
