"""The hub without its sockets: every event goes in with its ``now``, what to do comes out.

In the style of the ``websockets`` library's sans-I/O protocol: the asyncio server stamps each
event once (``time.monotonic_ns()``) and calls one entry point (:meth:`HubCore.connect`,
:meth:`~HubCore.receive`, :meth:`~HubCore.disconnect`, :meth:`~HubCore.pong`,
:meth:`~HubCore.saved`, :meth:`~HubCore.timer`, or a host :meth:`~HubCore.command` from the
embedding API); it carries out the outputs it gets back, and calls :meth:`HubCore.timer` again at
:meth:`HubCore.next_wakeup`. Nothing here reads a clock or touches a socket, so every rule of the
hub, including who is told what in which order, is tested with explicit times and no network.

The jobs are split by module: :mod:`~hub.core.roster` (who a player is, apart from their link),
:mod:`~hub.core.syncing` (when to sync whose clock), :mod:`~hub.core.presses` (a press in hub time,
and the adjudication horizon), :mod:`~hub.core.referee` (the engine, scores, teams and host
commands), :mod:`~hub.core.fanout` (what each audience hears). This module greets connections,
routes their frames, and keeps the one agenda.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import assert_never

from hub.auth import tokens_match
from hub.clock import FilterSettings, SyncSample
from hub.config import HubConfig, ms_to_ns
from hub.core.agenda import Agenda
from hub.core.events import (
    BrowserPlayers,
    Commanded,
    HubEvent,
    Left,
    NodeJoined,
    PressTaken,
    Refused,
    StorageChanged,
    Synced,
    TutorialJoined,
    WatcherJoined,
)
from hub.core.fanout import Fanout
from hub.core.outputs import (
    Close,
    JournalStep,
    LinkId,
    Notify,
    Output,
    Ping,
    RosterEntry,
    Save,
    Send,
)
from hub.core.presses import Horizon, node_press, tutorial_press
from hub.core.referee import Referee, Step
from hub.core.roster import Known, Player, Roster
from hub.core.syncing import NS_PER_S, SyncSchedule
from hub.journal import RecordingEngine
from hub.round import Acknowledge, Arm, Press, Tick
from hub.scores import Scoreboard
from wire import codec, plain
from wire import messages as msg
from wire.enums import CloseCode, ErrorCode, InputKind, Role

BROWSER_REFUSED = "the host is not taking players from phones or laptops right now"


@dataclass
class Restored:
    """What the hub starts from: the last run's engine, roster and scores, as saved."""

    engine: RecordingEngine
    players: list[Known] = field(default_factory=list)
    storage: msg.StorageView = field(
        default_factory=lambda: msg.StorageView(
            saving=False, path=None, message="memory-only: results are not saved"
        )
    )
    scores: Scoreboard = field(default_factory=Scoreboard)


@dataclass(eq=False)
class Session:
    """One connection, from its opening to its end."""

    link: LinkId
    peer: str  # for the log: address and port
    upgrade_token: str | None  # a token presented with the upgrade request (URL or header)
    role: Role | None = None  # None until a hello is accepted (and for tutorial clients)
    player: Player | None = None  # nodes and tutorial clients
    heard: bool = False  # a frame has arrived (the first decides: JSON or plain text)

    @property
    def greeted(self) -> bool:
        return self.role is not None or self.player is not None


class HubCore:
    def __init__(
        self,
        config: HubConfig,
        host_token: str,
        restored: Restored,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.host_token = host_token
        self.roster = Roster(FilterSettings(window=config.clock.window))
        self.roster.restore(restored.players)
        self.referee = Referee(restored.engine, restored.scores, config.game)
        for player_id in _players_in(restored.engine):
            self.roster.ensure(player_id)  # its roster row was lost with a failed write
        for player in self.roster:  # a restored roster follows the restored engine
            player.team = restored.engine.teams.get(player.id)
        self.fanout = Fanout(self.roster, self.referee)
        rounds = config.round
        self.horizon = Horizon(
            ms_to_ns(rounds.adjudication_margin_ms), ms_to_ns(rounds.adjudication_cap_ms)
        )
        clock = config.clock
        self.syncs = SyncSchedule(
            burst=clock.burst,
            burst_gap_ns=ms_to_ns(clock.burst_interval_ms),
            interval_ns=round(clock.sync_interval_s * NS_PER_S),
            rng=rng or random.Random(),
        )
        self.storage = restored.storage
        # Whether /play pages may join; starts from the config, the host console can switch it.
        self.browser_players = config.server.browser_players
        self._sessions: dict[LinkId, Session] = {}
        self._hellos: Agenda[LinkId] = Agenda()
        self._acks: dict[int, list[Acknowledge]] = {}
        self._tickets = 0

    @property
    def engine(self) -> RecordingEngine:
        return self.referee.engine

    # --- entry points ---

    def start(self, now: int) -> list[Output]:
        """Settle what the restart left: the config's teams, a decision or re-arm that fell due
        while the hub was down, host-less mode's first round. Before anyone connects, so the first
        state anyone sees is the settled one."""
        step = self.referee.place_config_teams(now)
        if self.config.round.hostless and self.engine.current is None:
            self.referee.feed(Arm(), now, step)
        else:
            self.referee.feed(Tick(), now, step)
        return self._carry(step, now)

    def connect(self, link: LinkId, peer: str, upgrade_token: str | None, now: int) -> list[Output]:
        """A WebSocket opened; it has until the hello deadline to greet."""
        self._sessions[link] = Session(link, peer, upgrade_token)
        deadline = round(self.config.limits.hello_timeout_s * NS_PER_S)
        self._hellos.set(link, now + deadline)
        return []

    def receive(self, link: LinkId, frame: str | bytes, now: int) -> list[Output]:
        session = self._sessions.get(link)
        if session is None:
            return []
        player = session.player
        if player is not None and player.plain:
            player.last_seen_ns = now
            return self._tutorial_frame(player, frame, now)
        if not session.greeted:
            # The first frame decides for the connection's life: JSON, or the tutorial's text.
            first = not session.heard
            session.heard = True
            if first and isinstance(frame, str) and not plain.speaks_json(frame):
                return self._join_tutorial(session, frame, now)
            return self._greet(session, frame, now)
        decoded = codec.decode_client(frame)
        if isinstance(decoded, codec.ProtocolError):
            return [Send(link, codec.error_frame(decoded))]
        message = decoded.message
        assert isinstance(message, msg.ClientMessage)
        out = self._warn_unknown(link, decoded)
        if player is not None:
            player.last_seen_ns = now
            out.extend(self._node_message(player, message, now))
        else:
            out.extend(self._watcher_message(session, message, now))
        return out

    def disconnect(self, link: LinkId, reason: str, now: int) -> list[Output]:
        session = self._sessions.pop(link, None)
        self._hellos.cancel(link)
        if session is None:
            return []
        player = session.player
        if player is not None:
            if player.link != link:
                return []  # already replaced by a newer link
            self._leave(player)
            kind = "client" if player.plain else "node"
            self.fanout.publish_soon(now)
            return [Notify(Left(player.id, kind, reason))]
        if session.role is not None:
            self.fanout.watchers.pop(link, None)
            return [Notify(Left(session.role, session.role, reason))]  # who: the role
        return []

    def pong(self, link: LinkId, rtt_ns: int, now: int) -> list[Output]:
        """A tutorial client's round trip, measured by the server's WebSocket ping."""
        session = self._sessions.get(link)
        if session is None or session.player is None:
            return []
        session.player.rtt_ns = rtt_ns
        session.player.last_sync_ns = now
        self.horizon.stale()
        return []

    def saved(self, ticket: int, now: int) -> list[Output]:
        """A journal step is committed: its presses are safe, so their nodes may forget them."""
        out: list[Output] = []
        for ack in self._acks.pop(ticket, []):
            player = self.roster.get(ack.player)
            if player is not None and player.link is not None and not player.plain:
                out.append(Send(player.link, codec.encode(msg.Ack(press_id=ack.press_id))))
        return out

    def storage_changed(self, status: msg.StorageView, now: int) -> list[Output]:
        self.storage = status
        self.fanout.publish_soon(now, at_once=True)
        return [Notify(StorageChanged(status.saving, status.message))]

    def command(self, message: msg.HostCommand, now: int, peer: str = "in-process") -> list[Output]:
        """A host's command, as the console sends it; a refusal comes back as a Notify."""
        return self._host_command(None, peer, message, now)

    def timer(self, now: int) -> list[Output]:
        """Everything due by ``now``: greeting deadlines, syncs and pings, the round's own
        deadline, the next state picture."""
        out: list[Output] = []
        timeout = self.config.limits.hello_timeout_s
        for link in self._hellos.pop_due(now):
            session = self._sessions.get(link)
            if session is not None and not session.greeted:
                self._end(session)
                reason = f"no hello within {timeout:g} s"
                out.append(Notify(Refused(session.peer, f"{reason} (close 4400)", closed=True)))
                out.append(Close(link, CloseCode.BAD_HELLO, reason))
        syncs, pings = self.syncs.due(now)
        for link, seq in syncs:
            out.append(Send(link, codec.encode(msg.Sync(seq=seq, t0_ns=now))))
        out.extend(Ping(link) for link in pings)
        deadline = self.engine.next_deadline
        if deadline is not None and deadline <= now:
            out.extend(self._carry(self.referee.feed(Tick(), now), now))
        out.extend(self.fanout.publish(now, self.storage, self._join_view()))
        return out

    def next_wakeup(self) -> int | None:
        """When :meth:`timer` must next be called, if ever."""
        times = [
            self._hellos.next(),
            self.syncs.next(),
            self.engine.next_deadline,
            self.fanout.publish_at,
        ]
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def published(self, cost_ns: int) -> None:
        """How long the last state picture took the server to build and send."""
        self.fanout.published(cost_ns)

    def state(self, now: int) -> msg.State:
        """The whole picture, as hosts and viewers get it (and ``/api/state`` serves)."""
        return self.fanout.state(now, self.storage, self._join_view())

    # --- greeting ---

    def _greet(self, session: Session, frame: str | bytes, now: int) -> list[Output]:
        """A frame before the hello: the hello, or an error (and a close, if it is final)."""
        decoded = codec.decode_client(frame)
        refusal = self._check_hello(decoded, session)
        if refusal is not None:
            error, close = refusal
            out: list[Output] = [
                Send(session.link, codec.error_frame(error)),
                Notify(Refused(session.peer, error.message, closed=close is not None)),
            ]
            if close is not None:  # final: whatever else it sends is not read
                self._end(session)
                out.append(Close(session.link, close, error.message[:120]))
            return out
        assert isinstance(decoded, codec.Decoded)
        hello = decoded.message
        assert isinstance(hello, msg.Hello)
        self._hellos.cancel(session.link)
        if hello.role is Role.NODE:
            return self._join_node(session, hello, decoded, now)
        return self._join_watcher(session, hello, decoded, now)

    def _check_hello(
        self, decoded: codec.Decoded | codec.ProtocolError, session: Session
    ) -> tuple[codec.ProtocolError, CloseCode | None] | None:
        """Why a first frame is not an acceptable hello, and the close code if it is final."""
        if isinstance(decoded, codec.ProtocolError):
            return decoded, None
        hello = decoded.message
        if not isinstance(hello, msg.Hello):
            return codec.ProtocolError(
                ErrorCode.HELLO_REQUIRED, 'say hello first: {"type":"hello",...}'
            ), None
        if hello.token is None and session.upgrade_token is not None:
            # A token presented in the upgrade request (URL or header) counts as the hello's.
            hello = replace(hello, token=session.upgrade_token)
        if hello.protocol != msg.PROTOCOL_VERSION:
            return codec.ProtocolError(
                ErrorCode.VERSION_MISMATCH,
                f"this hub speaks protocol {msg.PROTOCOL_VERSION}, the client {hello.protocol}; "
                "update the older of the two",
            ), CloseCode.VERSION_MISMATCH
        if hello.role is Role.NODE and hello.id is None:
            problem = "a node's hello needs an 'id'"
            return codec.ProtocolError(ErrorCode.MISSING_FIELD, problem), None
        if hello.role is Role.HOST and not tokens_match(hello.token or "", self.host_token):
            return codec.ProtocolError(
                ErrorCode.BAD_TOKEN, "wrong or missing host token; see the hub's log or config"
            ), CloseCode.BAD_TOKEN
        node_token = self.config.server.node_token
        if hello.role is Role.NODE and not tokens_match(hello.token, node_token):
            return codec.ProtocolError(
                ErrorCode.BAD_TOKEN, "wrong or missing node token; set the node's token"
            ), CloseCode.BAD_TOKEN
        browser = hello.role is Role.NODE and hello.input is InputKind.BROWSER
        if browser and not self.browser_players:
            refused = codec.ProtocolError(ErrorCode.NOT_ALLOWED, BROWSER_REFUSED)
            return refused, CloseCode.INPUT_REFUSED
        return None

    def _join_node(
        self, session: Session, hello: msg.Hello, decoded: codec.Decoded, now: int
    ) -> list[Output]:
        assert hello.id is not None
        player = self.roster.node(hello.id, hello.name, hello.input)
        out: list[Output] = []
        previous = player.link
        if previous is not None:
            # A node that rebooted or lost its link comes back before the old link times out.
            # Take over at once; the old link may be dead, so its close is not waited for.
            self._leave(player)
            self._sessions.pop(previous, None)
            out.append(Close(previous, CloseCode.REPLACED, "replaced by a newer connection"))
        session.player = player
        player.link = session.link
        # The node may have rebooted since its last link, and a monotonic clock starts over at
        # boot: samples from an earlier link say nothing about this one. A fresh burst syncs it
        # within a few tens of milliseconds, and the node holds re-sent presses until then.
        player.clock = self.roster.fresh_clock()
        player.last_sync_ns = None
        player.last_seen_ns = now
        self.horizon.stale()
        step = Step()
        self.referee.place(player.id, hello.team, now, step)
        player.team = self.engine.teams.get(player.id)
        out.append(
            Notify(NodeJoined(player.id, player.name, player.input, session.peer, bool(previous)))
        )
        out.append(Save(RosterEntry(player.id, player.name, player.input, player.team)))
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=Role.NODE,
            greeting=plain.hello(player.name),
            hub_ns=now,
            id=player.id,
            round=self.fanout.round_update(player),
        )
        out.append(Send(session.link, codec.encode(welcome)))
        out.extend(self._warn_unknown(session.link, decoded))
        self.syncs.start_node(session.link, now)
        out.extend(self._carry(step, now))
        self.fanout.publish_soon(now)
        return out

    def _join_watcher(
        self, session: Session, hello: msg.Hello, decoded: codec.Decoded, now: int
    ) -> list[Output]:
        session.role = hello.role
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=hello.role,
            greeting=plain.hello(hello.name or hello.role),
            hub_ns=now,
            round=self.fanout.round_update(None),
        )
        out: list[Output] = [
            Notify(WatcherJoined(hello.role, session.peer)),
            Send(session.link, codec.encode(welcome)),
            *self._warn_unknown(session.link, decoded),
            Send(session.link, codec.encode(self.state(now))),
        ]
        self.fanout.watchers[session.link] = hello.role
        return out

    def _join_tutorial(self, session: Session, first: str, now: int) -> list[Output]:
        self._hellos.cancel(session.link)
        player = self.roster.tutorial()
        player.link = session.link
        player.last_seen_ns = now
        session.player = player
        self.syncs.start_tutorial(session.link, now)
        self.fanout.publish_soon(now)
        out: list[Output] = [
            Notify(TutorialJoined(player.id, session.peer)),
            Save(RosterEntry(player.id, player.name, player.input, player.team)),
        ]
        return out + self._tutorial_frame(player, first, now)

    def _end(self, session: Session) -> None:
        """Forget a link the hub is closing: frames still in flight from it change nothing."""
        self._sessions.pop(session.link, None)
        self._hellos.cancel(session.link)

    def _leave(self, player: Player) -> None:
        if player.link is not None:
            self.syncs.stop(player.link)
        player.link = None
        self.horizon.stale()

    # --- frames after the greeting ---

    def _tutorial_frame(self, player: Player, frame: str | bytes, now: int) -> list[Output]:
        assert player.link is not None
        if isinstance(frame, bytes):
            return [Send(player.link, plain.BINARY_HINT)]
        if frame == plain.BUZZ:
            horizon = self.horizon.value(self.roster, now)
            return self._press(Press(tutorial_press(player, now), horizon), now)
        player.name = frame[: msg.NAME_MAX_CHARS] if frame.isprintable() else player.name
        self.fanout.publish_soon(now)
        return [
            Save(RosterEntry(player.id, player.name, player.input, player.team)),
            Send(player.link, plain.hello(frame)),
        ]

    def _node_message(self, player: Player, message: msg.ClientMessage, now: int) -> list[Output]:
        assert player.link is not None
        match message:
            case msg.SyncReply():
                return self._sync_reply(player, message, now)
            case msg.Press():
                press = node_press(player, message.press_id, message.at_ns, now)
                return self._press(Press(press, self.horizon.value(self.roster, now)), now)
            case msg.Hello():
                return [self._already_greeted(player.link, message.ref)]
            case (
                msg.Arm()
                | msg.Reset()
                | msg.CloseRound()
                | msg.Players()
                | msg.Wrong()
                | msg.Right()
                | msg.Score()
                | msg.SetTeam()
                | msg.ClearScores()
            ):
                text = f"'{message.TYPE}' needs the host role"
                return [self._refusal(player.link, ErrorCode.NOT_ALLOWED, text, message.ref)]
            case _:
                assert_never(message)

    def _watcher_message(
        self, session: Session, message: msg.ClientMessage, now: int
    ) -> list[Output]:
        match message:
            case msg.Hello():
                return [self._already_greeted(session.link, message.ref)]
            case (
                msg.Arm()
                | msg.Reset()
                | msg.CloseRound()
                | msg.Players()
                | msg.Wrong()
                | msg.Right()
                | msg.Score()
                | msg.SetTeam()
                | msg.ClearScores()
            ) if session.role is Role.HOST:
                return self._host_command(session.link, session.peer, message, now)
            case _:
                text = f"a {session.role} cannot send '{message.TYPE}'"
                ref = None if isinstance(message, msg.SyncReply) else message.ref
                return [self._refusal(session.link, ErrorCode.NOT_ALLOWED, text, ref)]

    def _host_command(
        self, link: LinkId | None, peer: str, message: msg.HostCommand, now: int
    ) -> list[Output]:
        out: list[Output] = [Notify(Commanded(peer, message.TYPE))]
        if isinstance(message, msg.Players):
            out.extend(self._set_browser_players(message.browser, now))
        else:
            step = self.referee.command(message, now)
            if step.refusal is not None:
                if link is not None:
                    out.append(Send(link, codec.error_frame(step.refusal, message.ref)))
                return out
            out.extend(self._carry(step, now))
        self.fanout.publish_soon(now, at_once=True)
        return out

    def _set_browser_players(self, allowed: bool, now: int) -> list[Output]:
        """Open or close the door for /play pages; closing it drops the pages already in.

        Their presses already recorded stay in the round; a dropped page sees why and waits."""
        self.browser_players = allowed
        out: list[Output] = [Notify(BrowserPlayers(allowed))]
        if allowed:
            return out
        refusal = codec.error_frame(codec.ProtocolError(ErrorCode.NOT_ALLOWED, BROWSER_REFUSED))
        for player in list(self.roster.online()):
            if player.input is InputKind.BROWSER and player.link is not None:
                link = player.link
                self._leave(player)
                self._sessions.pop(link, None)
                out.append(Send(link, refusal))
                out.append(Close(link, CloseCode.INPUT_REFUSED, BROWSER_REFUSED[:120]))
                out.append(Notify(Left(player.id, "node", "refused by the host")))
        return out

    def _sync_reply(self, player: Player, reply: msg.SyncReply, now: int) -> list[Output]:
        assert player.link is not None
        if not self.syncs.answer(player.link, reply.seq, reply.t0_ns):
            warning = msg.Warning(
                code=ErrorCode.UNKNOWN_SYNC,
                message=f"sync_reply {reply.seq} matches no outstanding sync; ignored",
            )
            return [Send(player.link, codec.encode(warning))]
        was_synced = player.clock.estimate is not None
        player.clock.add(SyncSample(reply.t0_ns, reply.t1_ns, reply.t2_ns, now))
        player.last_sync_ns = now
        estimate = player.clock.estimate
        if estimate is None or was_synced:
            return []
        self.horizon.stale()
        self.fanout.publish_soon(now)  # the host sees the node turn synced without waiting
        # Now it can light its LED on the right instant, and re-send presses it made while
        # away: the hub can place their timestamps at last.
        synced = Synced(
            player.id,
            estimate.offset_ns,
            estimate.rtt_ns,
            estimate.uncertainty_ns,
            estimate.bound_ns,
        )
        return [Notify(synced), Send(player.link, codec.encode(self.fanout.round_update(player)))]

    def _press(self, press: Press, now: int) -> list[Output]:
        taken = PressTaken(press.press.player, press.press.press_id, press.press.at_ns, now)
        return [Notify(taken), *self._carry(self.referee.feed(press, now), now)]

    # --- carrying a step out ---

    def _carry(self, step: Step, now: int) -> list[Output]:
        """Tell everyone what a step changed, then save it; its acks wait for the save."""
        out = self.fanout.step(step, now)
        out.extend(Save(record) for record in step.records)
        acks = [event for event in step.events if isinstance(event, Acknowledge)]
        if step.calls or acks:
            ticket = None
            if acks:
                self._tickets += 1
                ticket = self._tickets
                self._acks[ticket] = acks
            journal = JournalStep(tuple(step.calls), tuple(step.events), self.engine)
            out.append(Save(journal, ticket))
        return out

    def _join_view(self) -> msg.JoinView:
        """What a player page needs to know before it joins (no secrets: just whether)."""
        return msg.JoinView(
            browser_players=self.browser_players,
            token_required=bool(self.config.server.node_token),
        )

    def _warn_unknown(self, link: LinkId, decoded: codec.Decoded) -> list[Output]:
        if not decoded.unknown_fields:
            return []
        names = ", ".join(decoded.unknown_fields)
        warning = msg.Warning(
            code=ErrorCode.UNKNOWN_FIELD,
            message=f"ignored unknown field(s) in '{decoded.message.TYPE}': {names}",
        )
        return [Send(link, codec.encode(warning))]

    def _refusal(self, link: LinkId, code: ErrorCode, text: str, ref: str | None = None) -> Send:
        """An error frame for one refused message, echoing its ``ref`` so a client can match."""
        return Send(link, codec.error_frame(codec.ProtocolError(code, text), ref))

    def _already_greeted(self, link: LinkId, ref: str | None) -> Send:
        return self._refusal(link, ErrorCode.ALREADY_GREETED, "hello was already accepted", ref)


def _players_in(engine: RecordingEngine) -> set[str]:
    records = [*engine.history, *([engine.current] if engine.current else [])]
    return {o.press.player for r in records for o in (*r.ranked, *r.refused)}


def notes(outputs: list[Output]) -> list[HubEvent]:
    """The events among a step's outputs (for tests and the embedding API)."""
    return [output.event for output in outputs if isinstance(output, Notify)]
