"""The hub's network side: accepts nodes, hosts and viewers, and moves events through the engine.

This module holds no game rules. Each received frame is stamped with ``time.monotonic_ns()`` once,
decoded by :mod:`wire.codec`, turned into hub time by :mod:`hub.clock`, and handed to
:class:`hub.round.RoundEngine`; whatever the engine returns is sent out at once. Sends use
:func:`websockets.broadcast` so that fanning a decision out to hundreds of players never waits on
any one of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from hub.auth import request_token, tokens_match
from hub.clock import ClockFilter, FilterSettings, SyncSample, adjudication_horizon
from hub.config import HubConfig, ms_to_ns
from hub.gate import Gate
from hub.guard import Guard
from hub.http import Routes
from hub.journal import RecordingEngine
from hub.round import (
    Acknowledge,
    Answer,
    Event,
    FloorChanged,
    PhaseChanged,
    PressIn,
    Ruled,
    TeamChanged,
    TimerFired,
)
from hub.scores import Scoreboard, ScoreError
from hub.store import StorageStatus, Store, csv_text, rows_from_engine
from hub.views import (
    game_view,
    history_view,
    plain_answer,
    result_text,
    round_view,
    ruling_text,
    seconds,
    timer_text,
)
from wire import codec, plain
from wire import messages as msg
from wire.enums import CloseCode, ErrorCode, InputKind, Phase, Role
from wire.tls import server_context

log = logging.getLogger("hub")

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
#: Plain-text clients before their first ping came back: the round trip is unknown.
UNKNOWN_RTT_UNCERTAINTY_NS = 10_000_000
PUBLISH_INTERVAL_NS = 50_000_000  # hosts and viewers get at most 20 state pictures a second
#: A state picture grows with the roster and the round's results (about 25 ms for a thousand of
#: each on a laptop core): pictures are spaced so that building them takes at most this share of
#: the event loop, which has presses and clock sync to serve.
PUBLISH_LOOP_SHARE = 0.2
HORIZON_REFRESH_NS = 500_000_000
OUTSTANDING_SYNCS = 16
BROWSER_REFUSED = "the host is not taking players from phones or laptops right now"


@dataclass(eq=False)
class Player:
    """Everything the hub knows about one player station, connected or not."""

    id: str
    name: str
    input: str
    team: str | None = None
    plain: bool = False
    clock: ClockFilter = field(default_factory=ClockFilter)
    connection: ServerConnection | None = None
    rtt_ns: int | None = None  # plain-text clients: measured with WebSocket pings
    last_seen_ns: int | None = None
    last_sync_ns: int | None = None
    syncs: dict[int, int] = field(default_factory=dict)  # outstanding sync seq -> t0
    task: asyncio.Task[None] | None = None  # clock sync (or ping) loop

    @property
    def online(self) -> bool:
        return self.connection is not None


class Hub:
    """One running hub: the engine, the roster and the connections."""

    def __init__(self, config: HubConfig, host_token: str, store: Store | None = None) -> None:
        self.config = config
        self.host_token = host_token
        self.engine = RecordingEngine(config.game.apply(config.round.rules()))
        self.store = store
        self.scores = Scoreboard()  # the persistence layer may replace it with a restored one
        self._game_applied = 0  # game commands applied so far, so a controller sees its effect
        self.players: dict[str, Player] = {}
        self.watchers: set[ServerConnection] = set()  # hosts and viewers
        self.server: Server | None = None
        self._plain_ids = itertools.count(1)
        self._tick: asyncio.TimerHandle | None = None
        self._publish: asyncio.TimerHandle | None = None
        self._last_publish_ns = 0
        self._publish_cost_ns = 0  # how long the last state picture took to build and send
        self._rng = random.Random()
        self._horizon_ns = 0
        self._horizon_at_ns: int | None = None
        self._filter_settings = FilterSettings(window=config.clock.window)
        self._background: set[asyncio.Task[None]] = set()
        # Whether /play pages may join; starts from the config, the host console can switch it.
        self.browser_players = config.server.browser_players
        limits = config.limits
        self.guard = Guard(
            limits.messages_per_s, limits.message_burst, limits.send_buffer_kb * 1024
        )

    # --- lifecycle ---

    async def start(self) -> None:
        server, security = self.config.server, self.config.security
        self._restore()
        gate = Gate(
            Routes(self.snapshot, self.results_csv, scheme="https" if security.tls else "http"),
            open_connections=self._open_connections,
            max_connections=self.config.limits.max_connections,
            node_token=server.node_token,
            host_token=self.host_token,
            origins=security.origins,
            tls=security.tls,
            token_required=security.token_before_upgrade,
        )
        tls = server_context(security.certfile, security.keyfile) if security.tls else None
        self._place_config_teams(time.monotonic_ns())

        async def listen(port: int) -> Server:
            return await serve(
                self._handle,
                server.host or None,
                port,
                process_request=gate,
                ssl=tls,
                compression=None,
                max_size=msg.MAX_CLIENT_FRAME_BYTES,
                ping_interval=20,
                ping_timeout=20,
                server_header="buzzer-beater",
            )

        self.server = await listen(server.port)
        # Port 0 on every interface: asyncio gives the IPv4 and the IPv6 socket each its own free
        # port, but the hub prints and announces one. Listen again on all of them at the port the
        # first got; should another program hold that port in the other family, draw anew.
        for attempt in range(1, 11):
            if len({sock.getsockname()[1] for sock in self.server.sockets}) == 1:
                break
            shared = self.port
            self.server.close()
            await self.server.wait_closed()
            try:
                self.server = await listen(shared)
            except OSError:
                if attempt == 10:
                    raise
                self.server = await listen(0)
        log.info("listening on %s", ", ".join(self.addresses))
        if self.config.round.hostless and self.engine.current is None:
            self._apply(self.engine.arm(time.monotonic_ns()))
        else:
            self._schedule_tick(time.monotonic_ns())  # a decision or re-arm may be overdue

    async def stop(self) -> None:
        """Close every connection with 1001 (going away) so clients know to reconnect."""
        if self.server is None:
            return
        log.info("shutting down: closing %d connections", len(self.server.connections))
        self.server.close(close_connections=True)
        await self.server.wait_closed()
        for handle in (self._tick, self._publish):
            if handle is not None:
                handle.cancel()

    @property
    def addresses(self) -> list[str]:
        assert self.server is not None
        names = []
        for sock in self.server.sockets:
            host, port = sock.getsockname()[:2]
            names.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return names

    def _open_connections(self) -> int:
        return len(self.server.all_connections) if self.server is not None else 0

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = next(iter(self.server.sockets)).getsockname()[1]
        return port

    # --- connections ---

    async def _handle(self, ws: ServerConnection) -> None:
        # The deadline covers the whole greeting, so a client cannot hold a connection open
        # by sending anything but a valid hello.
        deadline = self.config.limits.hello_timeout_s
        try:
            async with asyncio.timeout(deadline):
                first = await ws.recv()
                now = time.monotonic_ns()
                tutorial = isinstance(first, str) and not plain.speaks_json(first)
                decoded = None if tutorial else await self._await_hello(ws, first)
        except TimeoutError:
            log.warning("closed %s: no hello within %g s (close 4400)", _peer(ws), deadline)
            await ws.close(CloseCode.BAD_HELLO, f"no hello within {deadline:g} s")
            return
        except ConnectionClosed:
            return
        if tutorial:
            assert isinstance(first, str)
            await self._serve_plain(ws, first, now)
            return
        if decoded is None:
            return
        hello = decoded.message
        assert isinstance(hello, msg.Hello)
        if hello.role == Role.NODE:
            await self._serve_node(ws, hello, decoded)
        else:
            await self._serve_watcher(ws, hello, decoded)

    async def _await_hello(self, ws: ServerConnection, frame: str | bytes) -> codec.Decoded | None:
        """Read frames until a valid hello; answer each bad one with an error and keep waiting."""
        while True:
            if not self.guard.admit(ws, time.monotonic_ns()):
                return None
            decoded = codec.decode_client(frame)
            refusal = self._check_hello(decoded, ws)
            if refusal is None:
                assert isinstance(decoded, codec.Decoded)
                return decoded
            error, close_code = refusal
            self._send(ws, codec.error_frame(error))
            log.info("refused %s: %s", _peer(ws), error.message)
            if close_code is not None:
                await ws.close(close_code, error.message[:120])
                return None
            try:
                frame = await ws.recv()
            except ConnectionClosed:
                return None

    def _check_hello(
        self, decoded: codec.Decoded | codec.ProtocolError, ws: ServerConnection
    ) -> tuple[codec.ProtocolError, int | None] | None:
        """Why a first frame is not an acceptable hello, and the close code if it is final."""
        if isinstance(decoded, codec.ProtocolError):
            return decoded, None
        hello = decoded.message
        if isinstance(hello, msg.Hello) and hello.token is None and ws.request is not None:
            # A token presented in the upgrade request (URL or header) counts as the hello's.
            upgrade = request_token(ws.request.path, ws.request.headers.get("Authorization"))
            hello = dataclasses.replace(hello, token=upgrade)
        if not isinstance(hello, msg.Hello):
            return codec.ProtocolError(
                ErrorCode.HELLO_REQUIRED, 'say hello first: {"type":"hello",...}'
            ), None
        if hello.protocol != msg.PROTOCOL_VERSION:
            return codec.ProtocolError(
                ErrorCode.VERSION_MISMATCH,
                f"this hub speaks protocol {msg.PROTOCOL_VERSION}, the client {hello.protocol}; "
                "update the older of the two",
            ), CloseCode.VERSION_MISMATCH
        if hello.role == Role.NODE and hello.id is None:
            return codec.ProtocolError(
                ErrorCode.MISSING_FIELD, "a node's hello needs an 'id'"
            ), None
        if hello.role == Role.HOST and not tokens_match(hello.token or "", self.host_token):
            return codec.ProtocolError(
                ErrorCode.BAD_TOKEN, "wrong or missing host token; see the hub's log or config"
            ), CloseCode.BAD_TOKEN
        node_token = self.config.server.node_token
        if hello.role == Role.NODE and not tokens_match(hello.token, node_token):
            return codec.ProtocolError(
                ErrorCode.BAD_TOKEN, "wrong or missing node token; set the node's token"
            ), CloseCode.BAD_TOKEN
        browser = hello.role == Role.NODE and hello.input == InputKind.BROWSER
        if browser and not self.browser_players:
            return codec.ProtocolError(
                ErrorCode.NOT_ALLOWED, BROWSER_REFUSED
            ), CloseCode.INPUT_REFUSED
        return None

    async def _serve_node(
        self, ws: ServerConnection, hello: msg.Hello, decoded: codec.Decoded
    ) -> None:
        assert hello.id is not None
        player = self.players.get(hello.id)
        if player is None:
            player = Player(
                id=hello.id,
                name=hello.name or hello.id,
                input=hello.input or InputKind.GPIO,
                clock=ClockFilter(self._filter_settings),
            )
            self.players[hello.id] = player
        previous = player.connection
        if previous is not None:
            # A node that rebooted or lost its link comes back before the old connection times
            # out. Take over at once; the old link may be dead, so its close must not be awaited.
            log.info("node %s reconnected from %s; closing the older link", player.id, _peer(ws))
            self._leave(player, previous)
            self._spawn(previous.close(CloseCode.REPLACED, "replaced by a newer connection"))
        player.name = hello.name or player.name
        player.input = hello.input or player.input
        player.team = hello.team or player.team
        player.connection = ws
        # The node may have rebooted since its last link, and a monotonic clock starts over at
        # boot: samples from an earlier link say nothing about this one. A fresh burst syncs it
        # within a few tens of milliseconds, and the node holds re-sent presses until then.
        player.clock = ClockFilter(self._filter_settings)
        player.last_sync_ns = None
        self._horizon_at_ns = None
        now = time.monotonic_ns()
        player.last_seen_ns = now
        self._join_team(player, hello.team, now)
        self._save_player(player)
        log.info("node %s (%s, %s) joined from %s", player.id, player.name, player.input, _peer(ws))
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=Role.NODE,
            greeting=f"Hello {player.name}!",
            hub_ns=now,
            id=player.id,
            round=self._round_update(player),
        )
        self._send(ws, codec.encode(welcome))
        self._warn_unknown(ws, decoded)
        player.task = asyncio.create_task(self._sync_loop(player, ws))
        self._publish_soon(now)
        try:
            async for frame in ws:
                self._on_node_frame(player, ws, frame, time.monotonic_ns())
        except ConnectionClosed:
            pass
        finally:
            self._leave(player, ws)

    def _on_node_frame(
        self, player: Player, ws: ServerConnection, frame: str | bytes, now: int
    ) -> None:
        if not self.guard.admit(ws, now):
            return
        player.last_seen_ns = now
        decoded = codec.decode_client(frame)
        if isinstance(decoded, codec.ProtocolError):
            self._send(ws, codec.error_frame(decoded))
            return
        self._warn_unknown(ws, decoded)
        message = decoded.message
        if isinstance(message, msg.SyncReply):
            self._on_sync_reply(player, ws, message, now)
        elif isinstance(message, msg.Press):
            self._on_press(player, message, now)
        elif isinstance(message, msg.Hello):
            self._refuse(ws, ErrorCode.ALREADY_GREETED, "hello was already accepted")
        else:
            self._refuse(ws, ErrorCode.NOT_ALLOWED, f"'{message.TYPE}' needs the host role")

    def _leave(self, player: Player, ws: ServerConnection) -> None:
        if player.connection is not ws:
            return  # already replaced by a newer connection
        player.connection = None
        if player.task is not None:
            player.task.cancel()
        player.syncs.clear()
        log.info("%s %s left (%s)", "client" if player.plain else "node", player.id, _reason(ws))
        self._publish_soon(time.monotonic_ns())

    async def _serve_watcher(
        self, ws: ServerConnection, hello: msg.Hello, decoded: codec.Decoded
    ) -> None:
        now = time.monotonic_ns()
        log.info("%s joined from %s", hello.role, _peer(ws))
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=hello.role,
            greeting=f"Hello {hello.name or hello.role}!",
            hub_ns=now,
            round=self._round_update(None),
        )
        self._send(ws, codec.encode(welcome))
        self._warn_unknown(ws, decoded)
        self._send(ws, codec.encode(self._state(now)))
        self.watchers.add(ws)
        try:
            async for frame in ws:
                self._on_watcher_frame(ws, hello.role, frame, time.monotonic_ns())
        except ConnectionClosed:
            pass
        finally:
            self.watchers.discard(ws)
            log.info("%s left (%s)", hello.role, _reason(ws))

    def _on_watcher_frame(
        self, ws: ServerConnection, role: str, frame: str | bytes, now: int
    ) -> None:
        if not self.guard.admit(ws, now):
            return
        decoded = codec.decode_client(frame)
        if isinstance(decoded, codec.ProtocolError):
            self._send(ws, codec.error_frame(decoded))
            return
        self._warn_unknown(ws, decoded)
        message = decoded.message
        if isinstance(message, msg.RoundCommand) and role == Role.HOST:
            log.info("host %s: %s", _peer(ws), message.TYPE)
            if isinstance(message, msg.Arm):
                self._apply(self.engine.arm(now))
            elif isinstance(message, msg.Reset):
                self._apply(self.engine.reset(now))
            else:
                self._apply(self.engine.close(now))
            self._publish_soon(now, at_once=True)
        elif isinstance(message, msg.Players) and role == Role.HOST:
            self._set_browser_players(message.browser, now)
        elif isinstance(message, msg.GameCommand) and role == Role.HOST:
            self._on_game_command(ws, message, now)
        elif isinstance(message, msg.Hello):
            self._refuse(ws, ErrorCode.ALREADY_GREETED, "hello was already accepted")
        else:
            self._refuse(ws, ErrorCode.NOT_ALLOWED, f"a {role} cannot send '{message.TYPE}'")

    def _set_browser_players(self, allowed: bool, now: int) -> None:
        """Open or close the door for /play pages; closing it drops the pages already in.

        Their presses already recorded stay in the round; a dropped page sees why and waits."""
        self.browser_players = allowed
        log.info("host: browser players %s", "allowed" if allowed else "refused")
        if not allowed:
            for player in self.players.values():
                if player.input == InputKind.BROWSER and player.connection is not None:
                    ws = player.connection
                    self._send(
                        ws,
                        codec.error_frame(
                            codec.ProtocolError(ErrorCode.NOT_ALLOWED, BROWSER_REFUSED)
                        ),
                    )
                    self._leave(player, ws)
                    self._spawn(ws.close(CloseCode.INPUT_REFUSED, BROWSER_REFUSED[:120]))
        self._publish_soon(now, at_once=True)

    def _join_view(self) -> msg.JoinView:
        """What a player page needs to know before it joins (no secrets: just whether)."""
        return msg.JoinView(
            browser_players=self.browser_players,
            token_required=bool(self.config.server.node_token),
        )

    # --- tutorial clients ---

    async def _serve_plain(self, ws: ServerConnection, first: str, now: int) -> None:
        number = next(self._plain_ids)
        player = Player(id=f"text-{number}", name=f"Player {number}", input=InputKind.TEXT)
        player.plain = True
        player.connection = ws
        self.players[player.id] = player
        self._save_player(player)
        log.info("plain-text client %s joined from %s", player.id, _peer(ws))
        player.task = asyncio.create_task(self._ping_loop(player, ws))
        self._publish_soon(now)
        frame: str | bytes = first
        try:
            while True:
                self._on_plain_frame(player, ws, frame, now)
                frame = await ws.recv()
                now = time.monotonic_ns()
        except ConnectionClosed:
            pass
        finally:
            self._leave(player, ws)

    def _on_plain_frame(
        self, player: Player, ws: ServerConnection, frame: str | bytes, now: int
    ) -> None:
        if not self.guard.admit(ws, now):
            return
        player.last_seen_ns = now
        if isinstance(frame, bytes):
            self._send(ws, "Send text: buzz to press, anything else to set your name.")
        elif frame == plain.BUZZ:
            rtt = player.rtt_ns
            press = PressIn(
                player=player.id,
                press_id=f"{player.id}-{now}",
                at_ns=now - (rtt or 0) // 2,
                arrival_ns=now,
                uncertainty_ns=_plain_uncertainty(rtt),
                synced=False,
            )
            self._apply(self.engine.press(press, now, self._horizon(now)))
        else:
            player.name = frame[: msg.NAME_MAX_CHARS] if frame.isprintable() else player.name
            self._save_player(player)
            self._send(ws, f"Hello {frame}!")
            self._publish_soon(now)

    async def _ping_loop(self, player: Player, ws: ServerConnection) -> None:
        """Plain clients have no clock to sync; their round trip is measured with pings instead."""
        while True:
            try:
                waiter = await ws.ping()
                latency = await asyncio.wait_for(waiter, timeout=5)
            except (ConnectionClosed, TimeoutError):
                return
            player.rtt_ns = int(latency * 1e9)
            player.last_sync_ns = time.monotonic_ns()
            self._horizon_at_ns = None
            await asyncio.sleep(self.config.clock.sync_interval_s)

    # --- clock sync ---

    async def _sync_loop(self, player: Player, ws: ServerConnection) -> None:
        """A burst of sync exchanges on connect, then one every few seconds, for as long as the
        node is connected."""
        settings = self.config.clock
        for seq in itertools.count():
            t0 = time.monotonic_ns()
            player.syncs[seq] = t0
            player.syncs.pop(seq - OUTSTANDING_SYNCS, None)
            self._send(ws, codec.encode(msg.Sync(seq=seq, t0_ns=t0)))
            if seq < settings.burst:
                await asyncio.sleep(settings.burst_interval_ms / 1000)
            else:
                await asyncio.sleep(sync_gap_s(settings.sync_interval_s, self._rng))

    def _on_sync_reply(
        self, player: Player, ws: ServerConnection, reply: msg.SyncReply, now: int
    ) -> None:
        t0 = player.syncs.pop(reply.seq, None)
        if t0 is None or t0 != reply.t0_ns:
            self._send(
                ws,
                codec.encode(
                    msg.Warning(
                        code=ErrorCode.UNKNOWN_SYNC,
                        message=f"sync_reply {reply.seq} matches no outstanding sync; ignored",
                    )
                ),
            )
            return
        was_synced = player.clock.estimate is not None
        player.clock.add(SyncSample(t0, reply.t1_ns, reply.t2_ns, now))
        player.last_sync_ns = now
        estimate = player.clock.estimate
        if estimate is not None and not was_synced:
            log.info(
                "node %s synced: offset %+.6f s, rtt %.3f ms, uncertainty %.3f ms, bound %.3f ms",
                player.id,
                estimate.offset_ns / 1e9,
                estimate.rtt_ns / 1e6,
                estimate.uncertainty_ns / 1e6,
                estimate.bound_ns / 1e6,
            )
            self._horizon_at_ns = None
            # Now it can light its LED on the right instant, and re-send presses it made while
            # away: the hub can place their timestamps at last.
            self._send(ws, codec.encode(self._round_update(player)))
            self._publish_soon(now)  # the host sees the node turn synced without waiting

    def _horizon(self, now: int) -> int:
        """The adjudication horizon, recomputed at most twice a second (it is O(players))."""
        if self._horizon_at_ns is None or now - self._horizon_at_ns > HORIZON_REFRESH_NS:
            delays = []
            for player in self.players.values():
                if not player.online:
                    continue
                if player.plain:
                    if player.rtt_ns is not None:
                        delays.append(player.rtt_ns // 2)
                elif (estimate := player.clock.estimate) is not None:
                    delays.append(estimate.upload_ns)
            settings = self.config.round
            self._horizon_ns = adjudication_horizon(
                delays,
                ms_to_ns(settings.adjudication_margin_ms),
                ms_to_ns(settings.adjudication_cap_ms),
            )
            self._horizon_at_ns = now
        return self._horizon_ns

    # --- presses and the engine ---

    def _on_press(self, player: Player, message: msg.Press, now: int) -> None:
        estimate = player.clock.estimate
        floor = INPUT_UNCERTAINTY_NS.get(InputKind(player.input), 0)
        if estimate is not None:
            at = min(estimate.to_hub(message.at_ns), now)  # nothing is pressed after it arrives
            uncertainty = estimate.uncertainty_at(at) + floor
        else:  # not synced yet: the arrival time is all we have
            at, uncertainty = now, UNKNOWN_RTT_UNCERTAINTY_NS + floor
        press = PressIn(
            player=player.id,
            press_id=message.press_id,
            at_ns=at,
            arrival_ns=now,
            uncertainty_ns=uncertainty,
            raw_ns=message.at_ns,
            synced=estimate is not None,
        )
        self._apply(self.engine.press(press, now, self._horizon(now)))

    def _apply(self, events: list[Event]) -> None:
        """Send what the engine decided, then arrange the next tick and the hosts' update."""
        now = time.monotonic_ns()
        acks = [event for event in events if isinstance(event, Acknowledge)]
        # Results first: the players who pressed are waiting for them. The engine lists a
        # decision's phase change before its answers, and announcing it costs a frame to every
        # node: at 1,000 nodes that put the winner's result some 60 ms behind the decision.
        for event in events:
            if isinstance(event, Answer):
                self._answer(event)
        for event in events:
            if isinstance(event, PhaseChanged):
                self._announce(event)
            elif isinstance(event, FloorChanged | TimerFired | TeamChanged):
                self._game_event(event)
            # Ruled: announced with its points by _on_game_command, the only source of rulings
        self._persist(events, acks)
        self._schedule_tick(now)
        if events:
            self._publish_soon(now)

    def _send_acks(self, acks: list[Acknowledge]) -> None:
        for ack in acks:
            player = self.players.get(ack.player)
            if player is not None and not player.plain and player.connection is not None:
                self._send(player.connection, codec.encode(msg.Ack(press_id=ack.press_id)))

    def _answer(self, answer: Answer) -> None:
        outcome = answer.outcome
        player = self.players[outcome.press.player]
        if player.connection is None:
            return
        if player.plain:
            self._send(player.connection, plain_answer(outcome))
            return
        result = msg.Result(
            round=outcome.round,
            press_id=outcome.press.press_id,
            rank=outcome.rank,
            flags=sorted(outcome.flags),
            text=result_text(outcome),
            reaction_ns=outcome.reaction_ns,
            behind_ns=outcome.behind_ns,
            uncertainty_ns=outcome.press.uncertainty_ns,
            lockout_ns=outcome.lockout_ns,
        )
        self._send(player.connection, codec.encode(result))

    def _announce(self, change: PhaseChanged) -> None:
        if change.phase is Phase.ARMED and change.release_ns is not None:
            lead = change.release_ns - time.monotonic_ns()
            log.info("round %d armed: release in %.1f ms", change.round, lead / 1e6)
        elif change.phase is Phase.DECIDED and change.winner is not None:
            winner = self.players[change.winner.press.player]
            log.info(
                "round %d decided: %s first (reaction %s) after an adjudication wait of %.2f ms",
                change.round,
                winner.name,
                seconds(change.winner.reaction_ns or 0),
                (change.adjudication_wait_ns or 0) / 1e6,
            )
        else:
            log.info("round %d %s", change.round, change.phase)
        for player in self.players.values():
            if player.connection is not None and not player.plain:
                self._send(player.connection, codec.encode(self._round_update(player)))

    def _round_update(self, player: Player | None) -> msg.RoundUpdate:
        """The round as this node should show it, with the release instant in its own clock
        (``None``: as a host or viewer is welcomed, with no clock of its own)."""
        engine = self.engine
        if player is None:
            release_hub, locked, estimate = None, False, None
        else:
            release_hub, locked = engine.release_for(player.id)
            estimate = player.clock.estimate
        release = None
        if release_hub is not None and estimate is not None:
            release = estimate.to_node(release_hub)
        winner = engine.current.winner if engine.current else None
        return msg.RoundUpdate(
            number=engine.number,
            state=engine.phase,
            release_ns=release,
            synced=estimate is not None,
            locked_out=locked,
            winner=self.players[winner.press.player].name if winner else None,
        )

    def _schedule_tick(self, now: int) -> None:
        deadline = self.engine.next_deadline
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if deadline is not None:
            delay = max(0.0, (deadline - now) / 1e9)
            self._tick = asyncio.get_running_loop().call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        self._apply(self.engine.tick(time.monotonic_ns()))

    # --- hosts and viewers ---

    def _names(self) -> dict[str, str]:
        return {player.id: player.name for player in self.players.values()}

    def _state(self, now: int) -> msg.State:
        names = self._names()
        engine = self.engine
        return msg.State(
            hub_ns=now,
            round=round_view(engine.current, engine.phase, names, engine.teams),
            players=[self._player_view(pl, now) for pl in self.players.values()],
            history=history_view(engine.history, engine.current, names, engine.teams),
            game=self._game_view(names),
            storage=self._storage_view(),
            join=self._join_view(),
        )

    def snapshot(self) -> dict[str, Any]:
        """The JSON picture of the hub, as served on /api/state."""
        picture = codec.as_data(self._state(time.monotonic_ns()))
        del picture["hub_ns"]
        return picture

    def _player_view(self, player: Player, now: int) -> msg.PlayerView:
        estimate = player.clock.estimate
        plain = player.plain and player.rtt_ns is not None
        uncertainty: int | None
        bound: int | None
        if estimate is not None:
            uncertainty, bound = estimate.uncertainty_at(now), estimate.bound_at(now)
        elif plain:  # a tutorial client: half its ping round trip, in either direction
            uncertainty = bound = _plain_uncertainty(player.rtt_ns)
        else:
            uncertainty = bound = None
        return msg.PlayerView(
            id=player.id,
            name=player.name,
            input=InputKind(player.input),
            team=player.team,
            online=player.online,
            synced=estimate is not None,
            offset_ns=estimate.offset_ns if estimate else None,
            rtt_ns=estimate.rtt_ns if estimate else player.rtt_ns,
            uncertainty_ns=uncertainty,
            bound_ns=bound,
            upload_ns=estimate.upload_ns if estimate else None,
            drift_ppm=estimate.drift_ppm if estimate else None,
            last_sync_ns=player.last_sync_ns,
            last_seen_ns=player.last_seen_ns,
        )

    def _publish_soon(self, now: int, at_once: bool = False) -> None:
        """Coalesce state pictures: a burst of presses must not cost one full picture each."""
        if not self.watchers or (self._publish is not None and not at_once):
            return
        if self._publish is not None:
            self._publish.cancel()
        gap_ns = publish_gap_ns(self._publish_cost_ns)
        wait_ns = 0 if at_once else self._last_publish_ns + gap_ns - now
        loop = asyncio.get_running_loop()
        self._publish = loop.call_later(max(0.0, wait_ns / 1e9), self._publish_now)

    def _publish_now(self) -> None:
        self._publish = None
        now = time.monotonic_ns()
        self._last_publish_ns = now
        broadcast(self.guard.writable_among(self.watchers), codec.encode(self._state(now)))
        self._publish_cost_ns = time.monotonic_ns() - now

    # --- game play: host commands and their announcements ---

    def _on_game_command(self, ws: ServerConnection, message: msg.GameCommand, now: int) -> None:
        """Rulings, scores and teams from a host; a refusal goes back to that host only."""
        log.info("host %s: %s", _peer(ws), message.TYPE)
        engine = self.engine
        defaults = self.config.game
        if isinstance(message, msg.Wrong | msg.Right):
            if isinstance(message, msg.Wrong):
                events = engine.wrong(now, message.mode)
                points = defaults.points_wrong if message.points is None else message.points
            else:
                events = engine.right(now)
                points = defaults.points_right if message.points is None else message.points
            if not events:
                self._refuse_command(
                    ws,
                    message,
                    ErrorCode.NOTHING_TO_RULE,
                    f"'{message.TYPE}': nobody has the floor; arm and wait for a buzz",
                )
                return
            for event in events:
                if isinstance(event, Ruled):
                    self._announce_ruling(event, points, now)
            self._apply(events)
        elif isinstance(message, msg.Score):
            if (message.player is None) == (message.team is None):
                problem = "'score' needs a 'player' or a 'team', not both"
                self._refuse_command(ws, message, ErrorCode.BAD_FIELD, problem)
                return
            team = message.team if message.player is None else engine.teams.get(message.player)
            try:
                self._award(message.points, now, message.player, team, message.reason or "")
            except ScoreError as exc:
                self._refuse_command(ws, message, ErrorCode.BAD_FIELD, f"'score': {exc}")
                return
            log.info("score: %+d to %s", message.points, message.player or f"team {team}")
        elif isinstance(message, msg.SetTeam):
            self._apply(engine.assign_team(message.player, message.team, now))
        else:
            self.scores.clear()
            if self.store is not None:
                self.store.clear_scores()
            log.info("scores cleared")
        self._game_applied += 1
        self._publish_soon(now, at_once=True)

    def _announce_ruling(self, ruled: Ruled, points: int, now: int) -> None:
        """Award the ruling's points, then tell the player's node and every host and viewer."""
        if points:
            try:
                self._award(
                    points, now, ruled.player, ruled.team, "right" if ruled.correct else "wrong"
                )
            except ScoreError as exc:  # a full board must not stop the game
                log.warning("points for %s not recorded: %s", ruled.player, exc)
                points = 0
        player = self.players.get(ruled.player)
        name = player.name if player else ruled.player
        log.info("round %d: %s ruled %s", ruled.round, name, "right" if ruled.correct else "wrong")
        frame = codec.encode(
            msg.Ruling(
                round=ruled.round,
                player=ruled.player,
                name=name,
                correct=ruled.correct,
                text=ruling_text(ruled.correct, points),
                team=ruled.team,
                points=points,
            )
        )
        broadcast(self.guard.writable_among(self.watchers), frame)
        if player is not None and player.connection is not None and not player.plain:
            self._send(player.connection, frame)

    def _game_event(self, event: FloorChanged | TimerFired | TeamChanged) -> None:
        if isinstance(event, TeamChanged):
            if (player := self.players.get(event.player)) is not None:
                player.team = event.team
                self._save_player(player)
            log.info("player %s is now in team %s", event.player, event.team or "(none)")
            return
        if isinstance(event, FloorChanged):
            log.info("round %d: the floor passes to %s", event.round, event.player or "nobody")
            node = self.players.get(event.player) if event.player else None
            if node is None or node.connection is None or node.plain:
                return
            estimate = node.clock.estimate
            deadline = remaining = None
            if event.deadline_ns is not None:
                remaining = max(0, event.deadline_ns - time.monotonic_ns())
                if estimate is not None:
                    deadline = estimate.to_node(event.deadline_ns)
            offer = msg.Offer(
                round=event.round,
                text="Your turn to answer!",
                deadline_ns=deadline,
                remaining_ns=remaining,
            )
            self._send(node.connection, codec.encode(offer))
            return
        player = self.players.get(event.player) if event.player else None
        text = timer_text(event.timer, event.stage, player.name if player else event.player)
        log.info("round %d: %s", event.round, text)
        frame = codec.encode(
            msg.TimerNotice(
                round=event.round,
                timer=event.timer,
                stage=event.stage,
                text=text,
                player=event.player,
            )
        )
        broadcast(self.guard.writable_among(self.watchers), frame)
        if player is not None and player.connection is not None and not player.plain:
            self._send(player.connection, frame)

    def _award(
        self, points: int, now: int, player: str | None, team: str | None, reason: str
    ) -> None:
        """Add a scoreboard entry and save it (ScoreError: refused, nothing changed)."""
        self.scores.award(points, now, player=player, team=team, reason=reason)
        if self.store is not None:
            self.store.save_score(points, player, team, reason, self.engine.number)

    def _refuse_command(
        self, ws: ServerConnection, message: msg.GameCommand, code: ErrorCode, text: str
    ) -> None:
        self._send(ws, codec.error_frame(codec.ProtocolError(code, text), message.ref))

    def _place_config_teams(self, now: int) -> None:
        """The config's teams, for players the journal has not placed (a host's move stands)."""
        for player_id, team in self.config.game.team_of().items():
            if player_id not in self.engine.teams:
                self._apply(self.engine.assign_team(player_id, team, now))
        for player in self.players.values():  # a restored roster follows the restored engine
            player.team = self.engine.teams.get(player.id)

    def _join_team(self, player: Player, team: str | None, now: int) -> None:
        """A node's own team counts unless the config or a host already placed it."""
        if team is not None and player.id not in self.engine.teams:
            self._apply(self.engine.assign_team(player.id, team, now))
        player.team = self.engine.teams.get(player.id)

    def _game_view(self, names: dict[str, str]) -> msg.GameView:
        points = (self.config.game.points_right, self.config.game.points_wrong)
        return game_view(self.engine, self.scores, names, points, self._game_applied)

    # --- persistence (hub.store): restore at start, record each engine step, acks after commit ---

    def _restore(self) -> None:
        """Bring back the roster and the engine exactly as the last run left them."""
        store = self.store
        if store is None:
            return
        store.on_status = self._on_storage_status
        for player_id, name, input_kind, team in store.players():
            player = Player(
                id=player_id,
                name=name,
                input=input_kind or InputKind.GPIO,
                team=team,
                plain=input_kind == InputKind.TEXT,
                clock=ClockFilter(self._filter_settings),
            )
            self.players[player_id] = player
        plain = [int(i[5:]) for i in self.players if i.startswith("text-") and i[5:].isdigit()]
        self._plain_ids = itertools.count(max(plain, default=0) + 1)
        self.engine, _ = store.restore(
            self.config.game.apply(self.config.round.rules()), time.monotonic_ns(), time.time_ns()
        )
        for player_id in _players_in(self.engine):
            if player_id not in self.players:  # its roster row was lost with a failed write
                self.players[player_id] = Player(
                    id=player_id,
                    name=player_id,
                    input=InputKind.GPIO,
                    plain=player_id.startswith("text-"),
                    clock=ClockFilter(self._filter_settings),
                )
        restored_at = time.monotonic_ns()
        for points, scorer, team, reason in store.scores():
            try:
                self.scores.award(points, restored_at, player=scorer, team=team, reason=reason)
            except ScoreError as exc:
                log.warning("a saved score entry was skipped: %s", exc)
        store.start(asyncio.get_running_loop())
        # A decision or re-arm that fell due while the hub was down happens before anyone
        # connects, so the first state anyone sees is the settled one.
        self._apply(self.engine.tick(time.monotonic_ns()))

    def _persist(self, events: list[Event], acks: list[Acknowledge]) -> None:
        """Journal this engine step; acknowledge its presses only once that is committed."""
        calls = self.engine.take_calls()
        if not events:  # a call that returned nothing changed nothing: no need to replay it
            calls = []
        if self.store is None:
            self._send_acks(acks)
            return
        done = (lambda: self._send_acks(acks)) if acks else None
        self.store.record(calls, events, self.engine, done)

    def _save_player(self, player: Player) -> None:
        if self.store is not None:
            self.store.save_player(player.id, player.name, player.input, player.team)

    def _on_storage_status(self, status: StorageStatus) -> None:
        self._publish_soon(time.monotonic_ns(), at_once=True)

    def _storage_view(self) -> msg.StorageView:
        if self.store is None:
            return msg.StorageView(
                saving=False, path=None, message="memory-only: results are not saved"
            )
        return self.store.status.view()

    def results_csv(self) -> str:
        """Every press of the night as CSV (from the database, or from memory if not saved)."""
        if self.store is not None:
            text = self.store.results_csv()
            if text is not None:
                return text
        return csv_text(rows_from_engine(self.engine, self._names()))

    # --- helpers ---

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping a reference so it is not collected midway."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _send(self, ws: ServerConnection, frame: str) -> None:
        """Queue a frame without waiting for the peer: one slow reader never delays the others,
        and one that stops reading is dropped rather than buffered for without bound."""
        if self.guard.writable(ws):
            broadcast((ws,), frame)

    def _refuse(self, ws: ServerConnection, code: ErrorCode, message: str) -> None:
        self._send(ws, codec.error_frame(codec.ProtocolError(code, message)))

    def _warn_unknown(self, ws: ServerConnection, decoded: codec.Decoded) -> None:
        if decoded.unknown_fields:
            names = ", ".join(decoded.unknown_fields)
            self._send(
                ws,
                codec.encode(
                    msg.Warning(
                        code=ErrorCode.UNKNOWN_FIELD,
                        message=f"ignored unknown field(s) in '{decoded.message.TYPE}': {names}",
                    )
                ),
            )


#: Periodic syncs are spread this far either side of the interval (a fraction of it).
SYNC_JITTER = 0.25


def sync_gap_s(interval_s: float, rng: random.Random) -> float:
    """The wait before a node's next periodic sync: the interval, give or take SYNC_JITTER.

    Nodes that join together (a room powering up, every node returning after a hub restart)
    would otherwise sync in lockstep for ever: a thousand exchanges in a fraction of a second
    every interval, so that each sample waits behind the others, every node's measured upload
    delay grows, and with it the adjudication wait. Jitter spreads them over the interval
    within a few rounds.
    """
    return interval_s * rng.uniform(1 - SYNC_JITTER, 1 + SYNC_JITTER)


def publish_gap_ns(cost_ns: int) -> int:
    """Time from one state picture to the next: at least PUBLISH_INTERVAL_NS, and long enough that
    pictures costing ``cost_ns`` each take no more than PUBLISH_LOOP_SHARE of the loop."""
    return max(PUBLISH_INTERVAL_NS, round(cost_ns / PUBLISH_LOOP_SHARE))


def _plain_uncertainty(rtt_ns: int | None) -> int:
    """A tutorial client's press instant: the frame left it somewhere within the last round trip.

    Ranking it at arrival minus half the round trip is off by at most half the round trip, in
    either direction, however the path is split: that is its uncertainty and its bound at once.
    """
    rtt = UNKNOWN_RTT_UNCERTAINTY_NS * 2 if rtt_ns is None else rtt_ns
    return rtt // 2 + INPUT_UNCERTAINTY_NS[InputKind.TEXT]


def _players_in(engine: RecordingEngine) -> set[str]:
    records = [*engine.history, *([engine.current] if engine.current else [])]
    return {o.press.player for r in records for o in (*r.ranked, *r.refused)}


def _peer(ws: ServerConnection) -> str:
    address: Iterable[Any] | None = ws.remote_address
    if not address:
        return "?"
    host, port = list(address)[:2]
    return f"{host}:{port}"


def _reason(ws: ServerConnection) -> str:
    code = ws.close_code
    return f"close code {code}" if code is not None else "connection lost"
