"""What each audience hears when something happens, and when hosts get a fresh picture.

- The player who pressed: their result (a line of text for a tutorial client, a ``result`` frame
  for a node), before anything else, since they are the ones waiting.
- Every node: the round as it should show it (``round``), with the release instant in that
  node's own clock; the node offered the floor: an ``offer``; the ruled node: the ``ruling``.
- Hosts and viewers: rulings and timer notices at once, and the whole ``state`` picture, paced:
  a burst of presses must not cost one full picture each (and none is built while a round waits
  for presses in flight: see ``HubCore._pictures_wait``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.core.events import (
    Armed,
    BonusPartScored,
    Decided,
    EntryUndone,
    FloorPassed,
    HubEvent,
    MatchBegun,
    MatchOver,
    PhaseEntered,
    QuestionEnded,
    ReadToTheEnd,
    RulingGiven,
    Scored,
    ScoresReset,
    TeamSet,
    TimerRang,
)
from hub.core.outputs import Broadcast, LinkId, Notify, Output, RosterEntry, Save, Send
from hub.core.presses import tutorial_uncertainty
from hub.core.referee import Referee, Ruling, Step
from hub.core.roster import Player, Roster
from hub.gamelog import (
    Awarded,
    BonusOpened,
    BonusScored,
    MatchEnded,
    MatchStarted,
    ScoresCleared,
    Undone,
)
from hub.round import (
    Acknowledge,
    Answer,
    FloorChanged,
    Outcome,
    PhaseChanged,
    QuestionDead,
    QuestionRead,
    Ruled,
    TeamChanged,
    TimerFired,
)
from hub.views import (
    game_view,
    history_view,
    plain_answer,
    result_text,
    round_view,
    ruling_text,
    timer_text,
)
from wire import messages as msg
from wire.codec import encode
from wire.enums import Phase, Role

#: Earlier rounds in a state picture; older ones are fetched a page at a time (/api/history), so
#: a picture stays the same size however long the night.
HISTORY_IN_PICTURE = 10
#: Of each earlier round, a state picture lists the first results only (the console shows five)
#: and counts the rest and the refusals: a room of a thousand, or twenty mashers, would
#: otherwise put every press of ten rounds into every picture. Whole rounds: /api/history.
HISTORY_RESULTS_IN_PICTURE = 5
#: A picture served on /api/state is rebuilt when older than this even if nothing was marked as
#: changed (clock estimates move between pictures).
PICTURE_MAX_AGE_NS = 1_000_000_000
#: Hosts and viewers get at most 20 state pictures a second.
PUBLISH_INTERVAL_NS = 50_000_000
#: A state picture grows with the roster and the round's results (about 25 ms for a thousand of
#: each on a laptop core): pictures are spaced so that building them takes at most this share of
#: the event loop, which has presses and clock sync to serve.
PUBLISH_LOOP_SHARE = 0.2
#: A picture whose only news is a count (a refused press like one already listed, a re-sent
#: press answered again) waits up to this long: a player mashing a button, or a flood of
#: presses within the budget, would otherwise redraw every host's picture 20 times a second.
LAZY_PUBLISH_NS = 1_000_000_000


def only_counts(step: Step) -> bool:
    """Whether all a step changes for hosts is a count: refusals like ones already listed, or
    re-sent presses answered again (with their acks)."""
    answers = [event for event in step.events if isinstance(event, Answer)]
    return (
        bool(answers)
        and not (step.rulings or step.notes)
        and not any(answer.listed for answer in answers)
        and all(isinstance(event, Acknowledge | Answer) for event in step.events)
    )


def publish_gap_ns(cost_ns: int) -> int:
    """Time from one state picture to the next: at least PUBLISH_INTERVAL_NS, and long enough that
    pictures costing ``cost_ns`` each take no more than PUBLISH_LOOP_SHARE of the loop."""
    return max(PUBLISH_INTERVAL_NS, round(cost_ns / PUBLISH_LOOP_SHARE))


@dataclass
class Fanout:
    roster: Roster
    referee: Referee
    watchers: dict[LinkId, Role] = field(default_factory=dict)
    publish_at: int | None = None  # when the next state picture is due, if one is
    last_result: msg.MatchReport | None = None  # the last match that ended
    _last_publish_ns: int = 0
    _publish_cost_ns: int = 0
    _picture: msg.State | None = None  # the last picture built, for /api/state
    _changed: bool = True  # something changed since that picture
    #: When a decision whose round frames to the nodes are still to go out was made (see
    #: :meth:`step`).
    rounds_due: int | None = None

    # --- one step of the game ---

    def step(self, step: Step, now: int, counts_only: bool) -> list[Output]:
        """Tell everyone what ``step`` changed, in the order they need to hear it;
        ``counts_only``: :func:`only_counts` of it (its picture may wait)."""
        # A ruling first: the player hears "Wrong." before the rebound's new round.
        out: list[Output] = [o for ruling in step.rulings for o in self.ruling(ruling)]
        # Then results: the players who pressed are waiting for them. The engine lists a
        # decision's phase change before its answers, and announcing it costs a frame to every
        # node: at 1,000 nodes that put the winner's result some 60 ms behind the decision.
        # Building those frames took as long again before any result could be written (7 ms
        # at 1,000 nodes), so a decision's are built once its results are out: the core asks
        # for them at its next wake-up, due at once (:meth:`decided_rounds`).
        for event in step.events:
            if isinstance(event, Answer):
                out.extend(self.answer(event.outcome))
        for event in step.events:
            match event:
                case PhaseChanged(phase=Phase.DECIDED):
                    out.append(Notify(self.note(event, now)))
                    self.rounds_due = now
                case PhaseChanged():
                    out.extend(self.announce(event, now))
                case FloorChanged():
                    out.extend(self.offer(event, now))
                case TimerFired():
                    out.extend(self.timer(event))
                case TeamChanged():
                    out.extend(self.team(event))
                case QuestionDead(question=number, reason=reason):
                    out.append(Notify(QuestionEnded(number, str(reason))))
                case QuestionRead(question=number):
                    out.append(Notify(ReadToTheEnd(number)))
                case MatchStarted(number=number, name=name):
                    engine = self.referee.engine
                    fmt = engine.format.title if engine.format else "?"
                    teams = tuple(team.name for team in engine.match.teams) if engine.match else ()
                    out.append(Notify(MatchBegun(number, name, fmt, teams)))
                case MatchEnded(number=number, name=name, report=report):
                    self.last_result = report
                    final = tuple((team.name, team.points) for team in report.teams)
                    out.append(Notify(MatchOver(number, name, final)))
                case BonusScored(question=number, team=team, part=part, points=points):
                    out.append(Notify(BonusPartScored(number, team, part, points)))
                case Awarded(points=points, player=player, team=team):
                    out.append(Notify(Scored(points, player, team)))
                case Undone(text=text):
                    out.append(Notify(EntryUndone(text)))
                case ScoresCleared():
                    out.append(Notify(ScoresReset()))
                case Acknowledge() | Answer() | Ruled() | BonusOpened():
                    pass  # acks follow the commit; answers went first; rulings come with points
        out.extend(Notify(note) for note in step.notes)
        if step.events or step.rulings or step.notes:
            self.publish_soon(now, lazily=counts_only)
        return out

    def answer(self, outcome: Outcome) -> list[Output]:
        player = self.roster.get(outcome.press.player)
        if player is None or player.link is None:
            return []
        if player.plain:
            return [Send(player.link, plain_answer(outcome))]
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
        return [Send(player.link, encode(result))]

    def announce(self, change: PhaseChanged, now: int) -> list[Output]:
        """Every node's round, in its own clock; and the event for the log."""
        return [Notify(self.note(change, now)), *self.rounds()]

    def note(self, change: PhaseChanged, now: int) -> HubEvent:
        """A phase change as the log tells it."""
        if change.phase is Phase.ARMED and change.release_ns is not None:
            return Armed(change.round, change.release_ns, change.release_ns - now)
        if change.phase is Phase.DECIDED and change.winner is not None:
            winner = change.winner
            return Decided(
                change.round,
                winner.press.player,
                self.name_of(winner.press.player),
                winner.reaction_ns or 0,
                change.adjudication_wait_ns or 0,
            )
        return PhaseEntered(change.round, change.phase)

    def decided_rounds(self) -> list[Output]:
        """A decision's round frames to the nodes, if they are still to go out."""
        if self.rounds_due is None:
            return []
        return self.rounds()

    def rounds(self) -> list[Output]:
        """Every node's round as it stands, in its own clock. These frames tell the whole
        round, so they stand in for any a decision still had to send."""
        self.rounds_due = None
        # Nodes whose round reads the same (no release instant of their own: a decision, a
        # reset, or not synced) share one frame, encoded once and written in one broadcast.
        out: list[Output] = []
        groups: dict[msg.RoundUpdate, list[LinkId]] = {}
        for player in self.roster.online():
            if not player.plain and player.link is not None:
                groups.setdefault(self.round_update(player), []).append(player.link)
        for update, links in groups.items():
            frame = encode(update)
            out.append(Send(links[0], frame) if len(links) == 1 else Broadcast(tuple(links), frame))
        return out

    def round_update(self, player: Player | None, undecided: bool = False) -> msg.RoundUpdate:
        """The round as this node should show it, with the release instant in its own clock
        (``None``: as a host or viewer is welcomed, with no clock of its own). ``undecided``:
        as it stood before its decision (armed, locked out or not), while the decision waits
        for the disk: for a node being welcomed, whose clock is not synced yet, with no release
        instant."""
        engine = self.referee.engine
        release_hub, locked, estimate = None, False, None
        if player is not None:
            release_hub, locked = engine.release_for(player.id)  # none once decided
            if undecided:
                locked = not engine.eligible(player.id)
            estimate = player.clock.estimate
        release = None
        if release_hub is not None and estimate is not None:
            release = estimate.to_node(release_hub)
        current = engine.current
        winner = current.winner if current and not undecided else None
        return msg.RoundUpdate(
            number=engine.number,
            state=Phase.ARMED if undecided else engine.phase,
            release_ns=release,
            synced=estimate is not None,
            locked_out=locked,
            winner=self.name_of(winner.press.player) if winner else None,
            out=player is not None and engine.is_out(player.id),
        )

    def offer(self, event: FloorChanged, now: int) -> list[Output]:
        """The floor passed down the ranking: the node that has it now is told so."""
        out: list[Output] = [Notify(FloorPassed(event.round, event.player))]
        node = self.roster.get(event.player) if event.player else None
        if node is None or node.link is None or node.plain:
            return out
        estimate = node.clock.estimate
        deadline = remaining = None
        if event.deadline_ns is not None:
            remaining = max(0, event.deadline_ns - now)
            if estimate is not None:
                deadline = estimate.to_node(event.deadline_ns)
        offer = msg.Offer(
            round=event.round,
            text="Your turn to answer!",
            deadline_ns=deadline,
            remaining_ns=remaining,
        )
        out.append(Send(node.link, encode(offer)))
        return out

    def timer(self, event: TimerFired) -> list[Output]:
        player = self.roster.get(event.player) if event.player else None
        text = timer_text(
            event.timer, event.stage, self.name_of(event.player) if event.player else None
        )
        frame = encode(
            msg.TimerNotice(
                round=event.round,
                timer=event.timer,
                stage=event.stage,
                text=text,
                player=event.player,
            )
        )
        return [Notify(TimerRang(event.round, text)), *self._to_watchers_and(player, frame)]

    def team(self, event: TeamChanged) -> list[Output]:
        out: list[Output] = [Notify(TeamSet(event.player, event.team))]
        player = self.roster.get(event.player)
        if player is not None:
            player.team = event.team
            out.append(Save(RosterEntry(player.id, player.name, player.input, player.team)))
        return out

    def name_of(self, player: str) -> str:
        """A player's name as the match prints it, or else as their station gave it."""
        match = self.referee.engine.match
        names = match.names() if match is not None else {}
        return names.get(player) or self.roster.name_of(player)

    def ruling(self, ruling: Ruling) -> list[Output]:
        ruled = ruling.ruled
        player = self.roster.get(ruled.player)
        name = self.name_of(ruled.player)
        frame = encode(
            msg.Ruling(
                round=ruled.round,
                player=ruled.player,
                name=name,
                correct=ruled.correct,
                text=ruling_text(ruled.correct, ruling.points),
                team=ruled.team,
                points=ruling.points,
            )
        )
        note = RulingGiven(ruled.round, ruled.player, name, ruled.correct, ruling.points)
        return [Notify(note), *self._to_watchers_and(player, frame)]

    def _to_watchers_and(self, player: Player | None, frame: str) -> list[Output]:
        out: list[Output] = [Broadcast(tuple(self.watchers), frame)] if self.watchers else []
        if player is not None and player.link is not None and not player.plain:
            out.append(Send(player.link, frame))
        return out

    # --- the whole picture, for hosts and viewers ---

    def state(
        self,
        now: int,
        storage: msg.StorageView,
        join: msg.JoinView,
        central: msg.CentralView | None = None,
    ) -> msg.State:
        names = self.roster.names()
        engine = self.referee.engine
        if engine.match is not None:
            names = {**names, **engine.match.names()}
        return msg.State(
            hub_ns=now,
            round=round_view(engine.current, engine.phase, names, engine.teams),
            players=[self.player_view(player, now) for player in self.roster],
            history=history_view(
                engine.history,
                engine.current,
                names,
                engine.teams,
                HISTORY_IN_PICTURE,
                results=HISTORY_RESULTS_IN_PICTURE,
            ),
            game=game_view(
                engine,
                names,
                self.referee.defaults(),
                self.referee.applied,
                self.last_result,
                self.referee.free,
            ),
            storage=storage,
            join=join,
            central=central,
        )

    def player_view(self, player: Player, now: int) -> msg.PlayerView:
        estimate = player.clock.estimate
        uncertainty: int | None = None
        bound: int | None = None
        if estimate is not None:
            uncertainty, bound = estimate.uncertainty_at(now), estimate.bound_at(now)
        elif player.plain and player.rtt_ns is not None:
            # a tutorial client: half its ping round trip, in either direction
            uncertainty = bound = tutorial_uncertainty(player.rtt_ns)
        return msg.PlayerView(
            id=player.id,
            name=player.name,
            input=player.input,
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
            clamped=player.clamped,
        )

    # --- pacing ---

    def picture(
        self,
        now: int,
        storage: msg.StorageView,
        join: msg.JoinView,
        central: msg.CentralView | None = None,
    ) -> tuple[msg.State, int]:
        """The picture ``/api/state`` serves, and 0; or the last one and how long to wait for
        a fresh one.

        The last picture is served as long as nothing changed (and it is younger than
        :data:`PICTURE_MAX_AGE_NS`). After a change it is rebuilt, but never sooner after the
        last build than building pictures would take more than PUBLISH_LOOP_SHARE of the loop:
        a reader then waits that long (and every reader in that time shares the one rebuild),
        so however often ``/api/state`` is asked it costs at most that share, and a reader
        still sees what happened before it asked.
        """
        old = self._picture
        if old is not None:
            age = now - old.hub_ns
            if age < PICTURE_MAX_AGE_NS and not self._changed:
                return old, 0
            wait = round(self._publish_cost_ns / PUBLISH_LOOP_SHARE) - age
            if wait > 0:
                return old, wait
        return self._build(now, storage, join, central), 0

    def _build(
        self,
        now: int,
        storage: msg.StorageView,
        join: msg.JoinView,
        central: msg.CentralView | None = None,
    ) -> msg.State:
        picture = self._picture = self.state(now, storage, join, central)
        self._changed = False
        return picture

    @property
    def last_picture(self) -> msg.State | None:
        """The last picture built (published or served), if any."""
        return self._picture

    def publish_soon(self, now: int, at_once: bool = False, lazily: bool = False) -> None:
        """Coalesce state pictures: one is due at most every publish gap, or now if asked;
        ``lazily`` (only a count changed) within :data:`LAZY_PUBLISH_NS` at most."""
        self._changed = True
        if not self.watchers:
            return
        if at_once:
            self.publish_at = now
        elif self.publish_at is None:
            gap = publish_gap_ns(self._publish_cost_ns)
            if lazily:
                gap = max(gap, LAZY_PUBLISH_NS)
            self.publish_at = max(now, self._last_publish_ns + gap)
        elif not lazily:  # something to see: sooner than a lazy picture was due
            soon = max(now, self._last_publish_ns + publish_gap_ns(self._publish_cost_ns))
            self.publish_at = min(self.publish_at, soon)

    def publish(
        self,
        now: int,
        storage: msg.StorageView,
        join: msg.JoinView,
        central: msg.CentralView | None = None,
        *,
        by: int,
    ) -> list[Output]:
        """The picture, if one is due by ``by``."""
        if self.publish_at is None or by < self.publish_at:
            return []
        self.publish_at = None
        self._last_publish_ns = now
        if not self.watchers:
            return []
        frame = encode(self._build(now, storage, join, central))
        return [Broadcast(tuple(self.watchers), frame, picture=True)]

    def published(self, cost_ns: int) -> None:
        """How long the last picture took to build and send: later ones are spaced by it."""
        self._publish_cost_ns = cost_ns
