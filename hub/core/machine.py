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
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import assert_never

from hub.auth import tokens_match
from hub.clock import FilterSettings, RoundTrips, SyncSample
from hub.config import HubConfig, ms_to_ns
from hub.core.agenda import Agenda
from hub.core.events import (
    BrowserPlayers,
    CentralChanged,
    Commanded,
    CommandRefused,
    HubEvent,
    Left,
    NodeJoined,
    PressTaken,
    Refused,
    StorageChanged,
    Synced,
    Trouble,
    TutorialJoined,
    TutorialJoins,
    WatcherJoined,
)
from hub.core.fanout import Fanout, only_counts
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
    Watch,
)
from hub.core.presses import Horizon, Trust, node_press, tutorial_press
from hub.core.referee import Referee, Step
from hub.core.roster import Known, Player, Roster
from hub.core.syncing import NS_PER_S, SyncSchedule, fit_holds
from hub.journal import RecordingEngine, press_fits
from hub.limits import LogThrottle, RunOfJoins, TokenBucket
from hub.match import report
from hub.round import Acknowledge, Answer, Arm, PhaseChanged, Press, Tick
from hub.views import history_view, undecided, undecided_game
from wire import codec, plain
from wire import messages as msg
from wire.enums import CloseCode, ErrorCode, InputKind, Phase, Role

MS = 1_000_000
BROWSER_REFUSED = "the host is not taking players from phones or laptops right now"
BAD_TIME = (
    "press not recorded: its time in the hub's clock is out of range (the node's clock replies "
    "were inconsistent); restart the node"
)
#: Host commands that act on a round's decision (its winner's floor, a match's result): while
#: that decision waits for the disk they wait for it to be told (HubCore._host_command).
RULES_ON_A_DECISION = (msg.Right, msg.Wrong, msg.Floor, msg.MatchEnd)
#: A refusal is logged once per address and kind this often; the next line counts the rest.
REFUSAL_LOG_INTERVAL_NS = 10 * 1_000_000_000
#: A tutorial client's join is logged at most once this often; the next line sums the others.
JOIN_LOG_INTERVAL_NS = 1_000_000_000
#: Addresses whose new-id budgets are remembered; past it, the full (unused) budgets are dropped.
ADDRESSES_KEPT = 4096
TOO_MANY_IDS = "too many new station ids from this address; a node keeps its id across reconnects"
#: How often offline players are looked for, and how long they stay listed once offline: a node
#: that reboots or changes Wi-Fi is back within seconds; a tutorial client never comes back
#: under the same id.
ROSTER_SWEEP_NS = 30 * 1_000_000_000
OFFLINE_KEPT_NS = 600 * 1_000_000_000
TUTORIAL_OFFLINE_KEPT_NS = 60 * 1_000_000_000
#: A wake-up may come this much before the time asked for: uvloop rounds each delay to whole
#: milliseconds and counts it from the loop's clock, itself in whole milliseconds as of the
#: start of the loop's turn. What may be done a little early (a sync, a ping, a picture, a
#: greeting's deadline) is done then, not at another wake-up a moment later; woken again and
#: again until its time, the hub spent four of every five wake-ups doing nothing at idle. The
#: round's deadline is the exception: it is met exactly, a wait for presses still in flight.
EARLY_WAKE_NS = 2 * MS
#: A round's deadline that has come while frames read before it still wait to be handled is
#: looked at again this often (a press among them decides it as it is handled).
HELD_LOOK_AGAIN_NS = 1 * MS
#: Presses count as lately taken this long: stragglers of a burst are still being answered, and
#: the host may be about to judge or re-arm.
PRESSING_FOR_NS = 5 * 1_000_000_000


class Play(Enum):
    """What a pause of the hub's loop would land in (:meth:`HubCore.play`)."""

    QUIET = "quiet"  # no round armed, no press lately
    ARMED = "armed"  # a round waits for presses
    PRESSING = "pressing"  # presses taken in the last few seconds: a burst may be under way


@dataclass
class Restored:
    """What the hub starts from: the last run's engine (with its game and scores) and roster,
    the number of the last match started and the result of the last one ended, as saved."""

    engine: RecordingEngine
    players: list[Known] = field(default_factory=list)
    storage: msg.StorageView = field(
        default_factory=lambda: msg.StorageView(
            saving=False, path=None, message="memory-only: results are not saved"
        )
    )
    last_match: int = 0
    last_result: msg.MatchReport | None = None


@dataclass(eq=False)
class Session:
    """One connection, from its opening to its end."""

    link: LinkId
    peer: str  # for the log: address and port
    upgrade_token: str | None  # a token presented with the upgrade request (URL or header)
    role: Role | None = None  # None until a hello is accepted (and for tutorial clients)
    player: Player | None = None  # nodes and tutorial clients
    heard: bool = False  # a frame has arrived (the first decides: JSON or plain text)
    # The link's round trips, measured from its opening: a tutorial client says nothing before
    # its first buzz, and that buzz is placed by them (see :meth:`HubCore.connect`).
    pings: RoundTrips = field(default_factory=RoundTrips)
    pinged_ns: int | None = None  # when the latest of them came back

    @property
    def greeted(self) -> bool:
        return self.role is not None or self.player is not None

    @property
    def address(self) -> str:
        """The peer's address without its port: what per-address limits count by."""
        return self.peer.rsplit(":", 1)[0] if ":" in self.peer else self.peer


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
        self.referee = Referee(restored.engine, config.game, config.match, restored.last_match)
        for player_id in _players_in(restored.engine):
            self.roster.ensure(player_id)  # its roster row was lost with a failed write
        for player in self.roster:  # a restored roster follows the restored engine
            player.team = restored.engine.teams.get(player.id)
        self.fanout = Fanout(self.roster, self.referee, last_result=restored.last_result)
        rounds = config.round
        margin = ms_to_ns(rounds.adjudication_margin_ms)
        caps = config.trust.caps_ns()
        self.trust = Trust(ms_to_ns(config.trust.allowance_ms), caps)
        lead_cap = ms_to_ns(config.trust.station_lead_ms)
        self.horizon = Horizon(margin, ms_to_ns(rounds.adjudication_cap_ms), caps, lead_cap)
        clock = config.clock
        self.syncs = SyncSchedule(
            burst=clock.burst,
            burst_gap_ns=ms_to_ns(clock.burst_interval_ms),
            interval_ns=round(clock.sync_interval_s * NS_PER_S),
            rng=rng or random.Random(),
            max_interval_ns=round(clock.max_sync_interval_s * NS_PER_S),
        )
        self.storage = restored.storage
        # A hub in a tournament: its link to the results database, as last reported.
        self.central: msg.CentralView | None = None
        # Whether /play pages may join; starts from the config, the host console can switch it.
        self.browser_players = config.server.browser_players
        self._sessions: dict[LinkId, Session] = {}
        self._hellos: Agenda[LinkId] = Agenda()
        self._acks: dict[int, list[Acknowledge]] = {}
        self._tickets = 0  # journal steps handed out to be saved, numbered in order
        self._committed = 0  # the last of them the disk has confirmed (they commit in order)
        # What players were about to be told, held until the steps it rests on are on disk:
        # the ticket that must be committed first, what was said (in order), whether all its
        # step changed for hosts was a count (its picture may wait: Fanout.publish_soon), and
        # the round it decides, if it is a decision's (see _welcome_round).
        self._held: deque[tuple[int, list[Output], bool, int | None]] = deque()
        # Host commands taken while a decision waits for the disk, in order (_host_command).
        self._commands_waiting: deque[tuple[LinkId | None, str, msg.HostCommand]] = deque()
        self._refusal_log = LogThrottle(REFUSAL_LOG_INTERVAL_NS)
        self._joins = RunOfJoins(JOIN_LOG_INTERVAL_NS)
        self._new_ids: dict[str, TokenBucket] = {}  # per address
        self._sweep_at: int | None = None
        self._pressed_ns: int | None = None  # the last press taken, for play()
        # A due deadline held for frames still waiting to be handled, and when to look again.
        self._look_again: tuple[int, int] | None = None
        # The engine's next deadline, and the engine and change count it was worked out for.
        self._deadline: int | None = None
        self._deadline_of: RecordingEngine | None = None
        self._deadline_at = -1

    @property
    def engine(self) -> RecordingEngine:
        return self.referee.engine

    # --- entry points ---

    def start(self, now: int) -> list[Output]:
        """Settle what the restart left: the config's teams, a decision or re-arm that fell due
        while the hub was down, host-less mode's first round. Before anyone connects, so the first
        state anyone sees is the settled one."""
        for player in self.roster:
            if player.last_seen_ns is None:  # restored: offline since (at most) now
                player.last_seen_ns = now
        self._sweep_at = now + ROSTER_SWEEP_NS
        step = self.referee.place_config_teams(now)
        if self.config.round.hostless and self.engine.current is None:
            self.referee.feed(Arm(), now, step)
        else:
            self.referee.feed(Tick(), now, step)
        return self._carry(step, now)

    def connect(self, link: LinkId, peer: str, upgrade_token: str | None, now: int) -> list[Output]:
        """A WebSocket opened; it has until the hello deadline to greet.

        It is pinged from now on, not from its greeting: a tutorial client's first ``buzz`` is
        its greeting, and would otherwise be placed with no round trip at all, while the pings
        that measure one landed amid the very burst of first presses they should place. A
        link that greets as a host or a viewer is no longer pinged."""
        self._sessions[link] = Session(link, peer, upgrade_token)
        deadline = round(self.config.limits.hello_timeout_s * NS_PER_S)
        self._hellos.set(link, now + deadline)
        self.syncs.start_pinging(link, now)
        return []

    def receive(
        self,
        link: LinkId,
        frame: str | bytes,
        now: int,
        arrived_ns: int | None = None,
        settled_ns: int | None = None,
    ) -> list[Output]:
        """A frame from ``link``, taken at ``now``.

        ``arrived_ns``: when it was read from the socket, if earlier (frames read together wait
        their turn behind one another's handling, milliseconds in a busy moment). The clock
        samples and presses it carries are placed by it: that wait is the hub's own, no delay
        of the network or the player. ``settled_ns``: every other frame read before then has
        been handled (None: every one read before ``now``); a round is decided on a press only
        once its deadline has passed by then too (see :class:`hub.round.Press`).
        """
        session = self._sessions.get(link)
        if session is None:
            return []
        arrived = now if arrived_ns is None else min(arrived_ns, now)
        player = session.player
        if player is not None and player.plain:
            player.last_seen_ns = now
            return self._tutorial_frame(player, frame, now, arrived, settled_ns)
        if not session.greeted:
            # The first frame decides for the connection's life: JSON, or the tutorial's text.
            first = not session.heard
            session.heard = True
            if first and isinstance(frame, str) and not plain.speaks_json(frame):
                return self._join_tutorial(session, frame, now, arrived, settled_ns)
            return self._greet(session, frame, now)
        decoded = codec.decode_client(frame)
        if isinstance(decoded, codec.ProtocolError):
            return [Send(link, codec.error_frame(decoded))]
        message = decoded.message
        assert isinstance(message, msg.ClientMessage)
        out = self._warn_unknown(link, decoded)
        if player is not None:
            player.last_seen_ns = now
            out.extend(self._node_message(player, message, now, arrived, settled_ns))
        else:
            out.extend(self._watcher_message(session, message, now))
        return out

    def disconnect(self, link: LinkId, reason: str, now: int) -> list[Output]:
        session = self._sessions.pop(link, None)
        self._hellos.cancel(link)
        if session is None:
            return []
        self.syncs.stop(link)
        player = session.player
        if player is not None:
            if player.link != link:
                return []  # already replaced by a newer link
            self._leave(player, now)
            kind = "client" if player.plain else "node"
            self.fanout.publish_soon(now)
            return [Notify(Left(player.id, kind, reason))]
        if session.role is not None:
            self.fanout.watchers.pop(link, None)
            return [Notify(Left(session.role, session.role, reason))]  # who: the role
        return []

    def pong(self, link: LinkId, rtt_ns: int, now: int) -> list[Output]:
        """A link's round trip, measured by the server's WebSocket ping."""
        session = self._sessions.get(link)
        if session is None:
            return []
        player = session.player
        if player is not None and player.link != link:
            return []
        pings = session.pings
        low, high = pings.low_ns, pings.high_ns
        steady = low is not None and high is not None and low <= rtt_ns <= max(2 * high, MS)
        pings.add(rtt_ns)
        session.pinged_ns = now
        self.syncs.pinged(link, steady)
        if player is not None:
            player.rtt_ns = pings.low_ns
            if player.plain:
                player.last_sync_ns = now
            self.horizon.update(player, now)
        return []

    def saved(self, ticket: int, now: int) -> list[Output]:
        """A journal step is committed: its presses are safe, so their nodes may forget them,
        and what was held until it was on disk may be told."""
        out = self._release(ticket, now)
        for ack in self._acks.pop(ticket, []):
            player = self.roster.get(ack.player)
            if player is not None and player.link is not None and not player.plain:
                out.append(Send(player.link, codec.encode(msg.Ack(press_id=ack.press_id))))
        return out

    def lost(self, ticket: int, now: int) -> list[Output]:
        """A journal step the store refused on its own (a value no column holds, or a fault of
        that step alone): it is not on disk and never will be. Its presses are not acknowledged
        (their nodes send them again), and what waited for it is told: holding it would hold
        every later result too."""
        self._acks.pop(ticket, None)
        return self._release(ticket, now)

    def _release(self, ticket: int, now: int) -> list[Output]:
        """What was held until step ``ticket`` (steps are settled in order)."""
        self._committed = max(self._committed, ticket)
        out: list[Output] = []
        while self._held and self._held[0][0] <= self._committed:
            _, told, counts, _ = self._held.popleft()
            out.extend(told)
            # Pictures were kept back while this was held: one is due as its step asked (even
            # if no host was there to ask: one may have joined since).
            self.fanout.publish_soon(now, lazily=counts)
        out.extend(self._commands_due(now))
        return out

    def storage_changed(self, status: msg.StorageView, now: int) -> list[Output]:
        """The disk's state changed. While it is failing, what was held for it is told at once:
        results wait for the disk only while the disk can keep the promise that they will
        survive a restart, and a room must not go without its results because a disk filled up
        (the console says that nothing is being saved)."""
        self.storage = status
        self.fanout.publish_soon(now, at_once=True)
        out: list[Output] = [Notify(StorageChanged(status.saving, status.message))]
        if not status.saving:
            while self._held:
                out.extend(self._held.popleft()[1])
            out.extend(self._commands_due(now))
        return out

    def central_changed(self, status: msg.CentralView, delivered: int, now: int) -> list[Output]:
        """The link to the tournament's results database reported; hosts see a change."""
        changed = status != self.central
        self.central = status
        if changed:
            self.fanout.publish_soon(now, at_once=True)
        event = CentralChanged(
            status.connected, status.waiting_matches, delivered, status.message, quiet=not changed
        )
        return [Notify(event)]

    def command(self, message: msg.HostCommand, now: int, peer: str = "in-process") -> list[Output]:
        """A host's command, as the console sends it; a refusal comes back as a Notify (from a
        later call, for a command that waits for a decision: see :meth:`_host_command`)."""
        return self._host_command(None, peer, message, now)

    def timer(self, now: int, settled_ns: int | None = None) -> list[Output]:
        """Everything due by ``now``: a decision's round frames, greeting deadlines, syncs and
        pings, the round's own deadline, the next state picture; all but the deadline also when
        due a little later (:data:`EARLY_WAKE_NS`). ``settled_ns``: every frame read before then
        has been handled (None: every one read before ``now``). The engine's deadlines (the
        round's decision, a re-arm, a game timer) wait for that as well: a press read before one
        may still wait its turn to be handled. The server counts no message read longer ago
        than the cap."""
        # A decision's round frames first: its results went out at the decision (or wait in
        # ``_held`` for the disk, and these behind them).
        out: list[Output] = []
        if rounds := self.fanout.decided_rounds():
            out = self._hold(rounds, None, False)
        soon = now + EARLY_WAKE_NS
        timeout = self.config.limits.hello_timeout_s
        for link in self._hellos.pop_due(soon):
            session = self._sessions.get(link)
            if session is not None and not session.greeted:
                self._end(session)
                reason = f"no hello within {timeout:g} s"
                out += self._refused(session, f"{reason} (close 4400)", True, now)
                out.append(Close(link, CloseCode.BAD_HELLO, reason))
        syncs, pings = self.syncs.due(now, soon)
        for link, seq in syncs:
            out.append(Send(link, codec.encode(msg.Sync(seq=seq, t0_ns=now))))
        out.extend(Ping(link) for link in pings)
        deadline = self._engine_deadline()
        handled = now if settled_ns is None else min(now, settled_ns)
        ticked = deadline is not None and deadline <= handled
        self._look_again = None
        if deadline is not None and deadline <= now and not ticked:  # held: see next_wakeup
            self._look_again = (deadline, now + HELD_LOOK_AGAIN_NS)
        if ticked:
            out.extend(self._carry(self.referee.feed(Tick(), now), now))
        if self._sweep_at is not None and soon >= self._sweep_at:
            self._sweep_at = now + ROSTER_SWEEP_NS
            self._sweep(now)
        joins = self._joins.summed(soon)
        if joins is not None:
            out.append(Notify(TutorialJoins(*joins)))
        # A picture waits for the next wake-up after what this one tells players (a decision
        # goes out before its picture is built, and so do its round frames: at 1,000 nodes
        # 7 ms and 25 ms of work), and while a round waits for presses in flight.
        if not (ticked or rounds or self._pictures_wait()):
            join = self._join_view()
            out.extend(self.fanout.publish(now, self.storage, join, self.central, by=soon))
        return out

    def _pictures_wait(self) -> bool:
        """Whether a state picture now must wait. While steps are held for the disk it would
        show what players have not been told yet. While a round waits for presses still in
        flight (its adjudication wait: ``adjudication_cap_ms`` at most, plus what the hub read
        and has yet to handle) it would be stale once the round is decided, and building it (a
        millisecond or more with a full room, several on a Pi) would hold up the very presses
        and decision the round is waiting for."""
        return bool(self._held) or self.engine.deadline_ns is not None

    def _sweep(self, now: int) -> None:
        """Offline players leave the list after a while (their scores and results stay): what
        a script inventing station ids adds is gone again within minutes."""
        current = self.engine.current
        in_round = {o.press.player for o in current.ranked} if current else set()
        scored = set(self.referee.scores.player_totals())
        gone = [
            player.id
            for player in self.roster
            if player.link is None
            and player.id not in in_round
            and player.id not in scored
            and now - (player.last_seen_ns or now)
            > (TUTORIAL_OFFLINE_KEPT_NS if player.plain else OFFLINE_KEPT_NS)
        ]
        for player_id in gone:
            self.roster.forget(player_id)
        if gone:
            self.fanout.publish_soon(now)

    def next_wakeup(self) -> int | None:
        """When :meth:`timer` must next be called, if ever.

        Asked after every event the server carries out (each press, each sync reply), so each
        part is cheap: the agendas' heads, and the engine's deadline as of its last change.
        """
        wake = self._engine_deadline()
        if self._look_again is not None and wake == self._look_again[0]:
            wake = max(wake, self._look_again[1])  # held for frames still waiting to be handled
        for when in (
            self.fanout.rounds_due,
            self._hellos.next(),
            self.syncs.next(),
            None if self._pictures_wait() else self.fanout.publish_at,
            self._sweep_at,
            self._joins.due_ns,
        ):
            if when is not None and (wake is None or when < wake):
                wake = when
        return wake

    def _engine_deadline(self) -> int | None:
        """The engine's next deadline, worked out again only after the engine changed (with a
        game on, working it out walks the floor and the game's timers)."""
        engine = self.engine
        if self._deadline_of is not engine or self._deadline_at != engine.changes:
            self._deadline = engine.next_deadline
            self._deadline_of, self._deadline_at = engine, engine.changes
        return self._deadline

    def play(self, now: int) -> Play:
        """How much a pause of the loop now could cost the players, for work that may stop it a
        while (a full garbage collection): presses taken lately, a round armed, or neither."""
        if self._pressed_ns is not None and now - self._pressed_ns < PRESSING_FOR_NS:
            return Play.PRESSING
        return Play.ARMED if self.engine.phase is Phase.ARMED else Play.QUIET

    def published(self, cost_ns: int) -> None:
        """How long the last state picture took the server to build and send."""
        self.fanout.published(cost_ns)

    def match_report(self, now: int) -> msg.MatchReport | None:
        """The match on, as it stands (None: no match is on)."""
        engine = self.engine
        if engine.match is None:
            return None
        return report(engine, self.roster.names(), self._held_decisions())

    def state(self, now: int) -> msg.State:
        """The whole picture, as hosts and viewers get it: built now; while results wait for
        the disk, the last one (see :meth:`_held_picture`)."""
        return self._held_picture(now) or self._built(now)

    def _built(self, now: int) -> msg.State:
        return self.fanout.state(now, self.storage, self._join_view(), self.central)

    def picture(self, now: int) -> tuple[msg.State, int]:
        """The picture ``/api/state`` serves and 0, or how long to wait for a fresh one (see
        :meth:`hub.core.fanout.Fanout.picture`); while results wait for the disk, the last one."""
        held = self._held_picture(now)
        if held is not None:
            return held, 0
        return self.fanout.picture(now, self.storage, self._join_view(), self.central)

    def _welcome_round(
        self, player: Player | None, link: LinkId
    ) -> tuple[msg.RoundUpdate, list[Output]]:
        """The round a node (or, with no player, a console) is welcomed with; and, for a node,
        what it is told once the disk has what was held.

        While a decision waits for the disk, no one hears its winner: the press it rests on may
        not be saved yet, and a restart would decide the round again without it. The round is
        shown as it stood before (armed); a node is sent it decided behind the held results, a
        console sees it in the picture that follows them."""
        update = self.fanout.round_update(player)
        if update.winner is None or update.number not in self._held_decisions():
            return update, []
        decided = Send(link, codec.encode(update))
        later = [] if player is None else self._hold([decided], None, False)
        return self.fanout.round_update(player, undecided=True), later

    def _held_picture(self, now: int) -> msg.State | None:
        """While results wait for the disk, the last picture: a fresh one would show a decision
        before the players hear it, and before a restart could restore it. If none was built
        yet (no console came before), one now, without a decision still held."""
        if not self._held:
            return None
        picture = self.fanout.last_picture
        if picture is None:
            picture = self._built(now)
            game = picture.game
            if game is not None:
                game = undecided_game(game, self._held_decisions(), picture.round.number)
            picture = replace(
                picture,
                round=self._unsaid(picture.round),
                history=self._unsaid_all(picture.history),
                game=game,
            )
        return picture

    def history(self, before: int, count: int) -> list[msg.RoundView]:
        """A page of earlier rounds: up to ``count`` numbered below ``before``, newest first
        (a decision still waiting for the disk, as it stood before it)."""
        engine = self.engine
        names = self.roster.names()
        pages = history_view(engine.history, engine.current, names, engine.teams, count, before)
        return self._unsaid_all(pages)

    def _unsaid(self, view: msg.RoundView) -> msg.RoundView:
        """``view``, or the round as it stood before its decision while that waits for the
        disk."""
        return undecided(view) if view.number in self._held_decisions() else view

    def _unsaid_all(self, views: list[msg.RoundView]) -> list[msg.RoundView]:
        return [self._unsaid(view) for view in views] if self._held else views

    # --- greeting ---

    def _greet(self, session: Session, frame: str | bytes, now: int) -> list[Output]:
        """A frame before the hello: the hello, or an error (and a close, if it is final)."""
        decoded = codec.decode_client(frame)
        refusal = self._check_hello(decoded, session)
        if refusal is not None:
            error, close = refusal
            out: list[Output] = [Send(session.link, codec.error_frame(error))]
            out += self._refused(session, error.message, close is not None, now)
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

    def _new_id_allowed(self, address: str, now: int) -> bool:
        """Whether ``address`` may introduce one more station id the hub has not seen."""
        bucket = self._new_ids.get(address)
        if bucket is None:
            if len(self._new_ids) >= ADDRESSES_KEPT:
                self._new_ids = {a: b for a, b in self._new_ids.items() if b.tokens < b.burst - 1}
            limits = self.config.limits
            bucket = self._new_ids[address] = TokenBucket(
                limits.new_ids_per_s, limits.new_ids_burst
            )
        return bucket.take(now)

    def _join_node(
        self, session: Session, hello: msg.Hello, decoded: codec.Decoded, now: int
    ) -> list[Output]:
        assert hello.id is not None
        if self.roster.get(hello.id) is None and not self._new_id_allowed(session.address, now):
            self._end(session)
            error = codec.ProtocolError(ErrorCode.TOO_MANY_IDS, TOO_MANY_IDS)
            return [
                Send(session.link, codec.error_frame(error, hello.ref)),
                *self._refused(session, f"{TOO_MANY_IDS} (close 4429)", True, now),
                Close(session.link, CloseCode.RATE_LIMITED, "too many new station ids"),
            ]
        player = self.roster.node(hello.id, hello.name, hello.input)
        player.press_lead_ns = hello.press_lead_ns or 0  # as much as counts: Horizon
        out: list[Output] = []
        previous = player.link
        if previous is not None:
            # A node that rebooted or lost its link comes back before the old link times out.
            # Take over at once; the old link may be dead, so its close is not waited for.
            self._leave(player, now)
            self._sessions.pop(previous, None)
            out.append(Close(previous, CloseCode.REPLACED, "replaced by a newer connection"))
        session.player = player
        player.link = session.link
        # The node may have rebooted since its last link, and a monotonic clock starts over at
        # boot: samples from an earlier link say nothing about this one. A fresh burst syncs it
        # within a few tens of milliseconds, and the node holds re-sent presses until then.
        player.clock = self.roster.fresh_clock()
        player.last_sync_ns = None
        session.pings, session.pinged_ns = RoundTrips(), None  # see SyncSchedule.start_node
        self.syncs.start_node(session.link, now)
        self._measured_by(player, session, now)
        player.last_seen_ns = now
        step = Step()
        self.referee.place(player.id, hello.team, now, step)
        player.team = self.engine.teams.get(player.id)
        out.append(
            Notify(NodeJoined(player.id, player.name, player.input, session.peer, bool(previous)))
        )
        out.append(Watch(session.link))
        out.append(Save(RosterEntry(player.id, player.name, player.input, player.team)))
        told, decided = self._welcome_round(player, session.link)
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=Role.NODE,
            greeting=plain.hello(player.name),
            hub_ns=now,
            id=player.id,
            round=told,
        )
        out.append(Send(session.link, codec.encode(welcome)))
        out.extend(decided)
        out.extend(self._warn_unknown(session.link, decoded))
        out.extend(self._carry(step, now))
        self.fanout.publish_soon(now)
        return out

    def _join_watcher(
        self, session: Session, hello: msg.Hello, decoded: codec.Decoded, now: int
    ) -> list[Output]:
        session.role = hello.role
        self.syncs.stop(session.link)  # hosts and viewers are not placed by their round trip
        welcome = msg.Welcome(
            protocol=msg.PROTOCOL_VERSION,
            role=hello.role,
            greeting=plain.hello(hello.name or hello.role),
            hub_ns=now,
            round=self._welcome_round(None, session.link)[0],
        )
        out: list[Output] = [
            Notify(WatcherJoined(hello.role, session.peer)),
            Send(session.link, codec.encode(welcome)),
            *self._warn_unknown(session.link, decoded),
            Send(session.link, codec.encode(self.state(now))),
        ]
        self.fanout.watchers[session.link] = hello.role
        return out

    def _join_tutorial(
        self, session: Session, first: str, now: int, arrived: int, settled: int | None
    ) -> list[Output]:
        self._hellos.cancel(session.link)
        if not self._new_id_allowed(session.address, now):  # each one is a new roster entry
            self._end(session)
            return [
                *self._refused(session, f"{TOO_MANY_IDS} (close 4429)", True, now),
                Close(session.link, CloseCode.RATE_LIMITED, "too many new clients"),
            ]
        player = self.roster.tutorial()
        player.link = session.link
        player.last_seen_ns = now
        session.player = player
        self._measured_by(player, session, now)
        player.last_sync_ns = session.pinged_ns
        self.fanout.publish_soon(now)
        out: list[Output] = [
            Notify(TutorialJoined(player.id, session.peer, not self._joins.loud(player.id, now))),
            Save(RosterEntry(player.id, player.name, player.input, player.team)),
        ]
        return out + self._tutorial_frame(player, first, now, arrived, settled)

    def _measured_by(self, player: Player, session: Session, now: int) -> None:
        """A player joining on a link takes the round trips measured on it (and only them: an
        earlier link's path may have been another)."""
        player.pings = session.pings
        player.rtt_ns = session.pings.low_ns
        self.horizon.update(player, now)
        self.syncs.joined(session.link)

    def _end(self, session: Session) -> None:
        """Forget a link the hub is closing: frames still in flight from it change nothing."""
        self._sessions.pop(session.link, None)
        self._hellos.cancel(session.link)
        self.syncs.stop(session.link)

    def _horizon(self, now: int) -> int:
        """How long the round waits for presses still in flight, from the players who could
        still be ranked in it (see :class:`Horizon`)."""
        engine = self.engine
        return self.horizon.value(self.roster, now, engine.may_still_rank, engine.ranking_key)

    def _leave(self, player: Player, now: int) -> None:
        if player.link is not None:
            self.syncs.stop(player.link)
        player.link = None
        self.horizon.update(player, now)

    # --- frames after the greeting ---

    def _tutorial_frame(
        self, player: Player, frame: str | bytes, now: int, arrived: int, settled: int | None
    ) -> list[Output]:
        assert player.link is not None
        if isinstance(frame, bytes):
            return [Send(player.link, plain.BINARY_HINT)]
        if frame == plain.BUZZ:
            press = tutorial_press(player, arrived, self.trust)
            return self._press(Press(press, self._horizon(now), settled), now)
        if frame.isprintable():
            self.roster.rename(player, frame[: msg.NAME_MAX_CHARS])
        self.fanout.publish_soon(now)
        return [
            Save(RosterEntry(player.id, player.name, player.input, player.team)),
            Send(player.link, plain.hello(frame)),
        ]

    def _node_message(
        self,
        player: Player,
        message: msg.ClientMessage,
        now: int,
        arrived: int,
        settled: int | None,
    ) -> list[Output]:
        assert player.link is not None
        match message:
            case msg.SyncReply():
                return self._sync_reply(player, message, now, arrived)
            case msg.Press():
                press = node_press(player, message.press_id, message.at_ns, arrived, self.trust)
                horizon = self._horizon(now)
                if not press_fits(press, horizon):
                    session = self._sessions[player.link]
                    return [
                        self._refusal(player.link, ErrorCode.BAD_TIME, BAD_TIME, message.ref),
                        *self._refused(session, BAD_TIME, False, now),
                    ]
                if press.claimed_ns is not None:
                    player.clamped += 1
                elif press.synced and message.sent_ns is not None:
                    # Its time on the node, for the rounds after this one (as much as counts).
                    player.press_leads.add(message.sent_ns - message.at_ns, now)
                    self.horizon.update(player, now)
                return self._press(Press(press, horizon, settled), now)
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
                | msg.MatchStart()
                | msg.MatchEnd()
                | msg.Read()
                | msg.BonusPart()
                | msg.Undo()
                | msg.ClueValue()
                | msg.Wager()
                | msg.Floor()
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
                | msg.MatchStart()
                | msg.MatchEnd()
                | msg.Read()
                | msg.BonusPart()
                | msg.Undo()
                | msg.ClueValue()
                | msg.Wager()
                | msg.Floor()
            ) if session.role is Role.HOST:
                return self._host_command(session.link, session.peer, message, now)
            case _:
                text = f"a {session.role} cannot send '{message.TYPE}'"
                ref = None if isinstance(message, msg.SyncReply) else message.ref
                return [self._refusal(session.link, ErrorCode.NOT_ALLOWED, text, ref)]

    def _host_command(
        self, link: LinkId | None, peer: str, message: msg.HostCommand, now: int
    ) -> list[Output]:
        """A host's command, now or, if it rules on a decision that waits for the disk, once
        that is told.

        A ruling taken then would be given on a winner no one has heard, and shown in the
        scores, the log and a match's result before the press it rests on is saved: a restart
        would bring back neither. The wait is the disk's, usually milliseconds. Commands behind
        a waiting one wait too, in order (an arm must not overtake the ruling before it); the
        others (an arm, a reset, the door for player pages) are never held up by the disk."""
        if self._commands_waiting or (
            isinstance(message, RULES_ON_A_DECISION) and self._held_decisions()
        ):
            self._commands_waiting.append((link, peer, message))
            return []
        return self._apply_host_command(link, peer, message, now)

    def _commands_due(self, now: int) -> list[Output]:
        """The host commands that waited for a decision, once none waits any more. They run
        where results are released: a fault in one must not cost the players those results,
        nor hold up the commands behind it."""
        out: list[Output] = []
        while self._commands_waiting and not self._held_decisions():
            link, peer, message = self._commands_waiting.popleft()
            try:
                out.extend(self._apply_host_command(link, peer, message, now))
            except Exception as exc:  # a fault of the hub's own
                text = f"host command '{message.TYPE}' from {peer} was dropped by a fault: {exc!r}"
                out.append(Notify(Trouble(text)))
        return out

    def _apply_host_command(
        self, link: LinkId | None, peer: str, message: msg.HostCommand, now: int
    ) -> list[Output]:
        out: list[Output] = [Notify(Commanded(peer, message.TYPE))]
        if isinstance(message, msg.Players):
            out.extend(self._set_browser_players(message.browser, now))
        else:
            step = self.referee.command(message, now, self.roster.names())
            if step.refusal is not None:
                out.append(Notify(CommandRefused(peer, message.TYPE, step.refusal.message)))
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
                self._leave(player, now)
                self._sessions.pop(link, None)
                out.append(Send(link, refusal))
                out.append(Close(link, CloseCode.INPUT_REFUSED, BROWSER_REFUSED[:120]))
                out.append(Notify(Left(player.id, "node", "refused by the host")))
        return out

    def _sync_reply(
        self, player: Player, reply: msg.SyncReply, now: int, arrived: int
    ) -> list[Output]:
        assert player.link is not None
        if not self.syncs.answer(player.link, reply.seq, reply.t0_ns):
            warning = msg.Warning(
                code=ErrorCode.UNKNOWN_SYNC,
                message=f"sync_reply {reply.seq} matches no outstanding sync; ignored",
            )
            return [Send(player.link, codec.encode(warning))]
        previous = player.clock.estimate
        sample = SyncSample(reply.t0_ns, reply.t1_ns, reply.t2_ns, arrived)
        player.clock.add(sample)
        player.last_sync_ns = now
        estimate = player.clock.estimate
        if estimate is not None:
            holds = fit_holds(previous, sample)
            slack = player.clock.settings.good_delay_slack_ns
            good = previous is not None and sample.delay_ns - previous.rtt_ns <= slack
            self.syncs.adapt(player.link, holds, good, estimate, player.clock.settled)
            self.horizon.update(player, now)
        if estimate is None or previous is not None:
            return []
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
        # Behind whatever is held (and so after a decision or an arm told before it).
        update = Send(player.link, codec.encode(self.fanout.round_update(player)))
        return [Notify(synced), *self._hold([update], None, False)]

    def _press(self, press: Press, now: int) -> list[Output]:
        self._pressed_ns = now
        taken = PressTaken(
            press.press.player, press.press.press_id, press.press.at_ns, press.press.arrival_ns
        )
        return [Notify(taken), *self._carry(self.referee.feed(press, now), now)]

    # --- carrying a step out ---

    def _carry(self, step: Step, now: int) -> list[Output]:
        """Tell everyone what a step changed, then save it; its acks wait for the save.

        What a step tells players about presses (results, and the decision with them) is held
        until the steps it rests on are on disk, so that no player is ever told a result a
        restart would not restore. A step deciding a round at its deadline rests on the presses
        before it: the restored hub, replaying them, reaches the same decision by itself. Any
        other step rests on itself (a press answered at once, a host's command that decided).
        """
        decides = None
        for event in step.events:
            if isinstance(event, PhaseChanged) and event.phase is Phase.ARMED:
                self._tighten(now)
            elif isinstance(event, PhaseChanged) and event.winner is not None:
                decides = event.round
        counts = only_counts(step)
        told = self.fanout.step(step, now, counts)
        acks = [event for event in step.events if isinstance(event, Acknowledge)]
        save: Save | None = None
        if step.calls or acks:
            self._tickets += 1
            ticket = self._tickets
            if acks:
                self._acks[ticket] = acks
            journal = JournalStep(tuple(step.calls), tuple(step.events), self.engine)
            save = Save(journal, ticket)
        needs = None
        if save is not None and any(isinstance(event, Answer) for event in step.events):
            replayed = all(isinstance(call.input, Tick) for call in step.calls)
            needs = self._tickets - 1 if replayed else self._tickets
        out = self._hold(told, needs, counts, decides)
        if save is not None:
            out.append(save)
        return out

    def _hold(
        self, told: list[Output], needs: int | None, counts: bool, decides: int | None = None
    ) -> list[Output]:
        """``told`` now, or once step ``needs`` is committed, never before what was held earlier;
        ``counts``: all the step changed for hosts was a count; ``decides``: the round it
        decides, if it is a decision (what follows it, naming the winner too, is durable once
        it is told)."""
        if not self._held and (
            needs is None or needs <= self._committed or not self.storage.saving
        ):
            return told
        self._held.append((needs or 0, told, counts, decides))
        return []

    def _held_decisions(self) -> set[int]:
        """The rounds whose decisions wait for the disk to be told."""
        return {decides for *_, decides in self._held if decides is not None}

    def _tighten(self, now: int) -> None:
        """A round is armed: sync at once every node whose replies have gone missing (nothing
        for twice its gap), so that the round does not meet a clock gone stale.

        Only those: syncing every node at each arm would put their samples where the hub is
        busiest, fanning the round out and taking presses, and an offset measured there is
        biased the same way every time, which no filter can see.
        """
        for player in self.roster.online():
            if player.plain or player.link is None or player.clock.estimate is None:
                continue
            last = player.last_sync_ns
            if last is not None and now - last > 2 * self.syncs.gap_ns(player.link):
                self.syncs.hurry(player.link, now)

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

    def _refused(self, session: Session, reason: str, closed: bool, now: int) -> list[Output]:
        """The log line for a refusal: at most one per address and reason per interval, so a
        client retrying in a loop (or many from one machine) cannot flood the log."""
        left_out = self._refusal_log.allow((session.address, reason), now)
        if left_out is None:
            return []
        return [Notify(Refused(session.peer, reason, closed=closed, left_out=left_out))]

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
