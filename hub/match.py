"""Matches: two (or more) teams of players, a format, the game log, undo, and the result.

:class:`MatchEngine` is the round engine with a game around it. Everything that changes a game
(a ruling and the points it gives, a bonus part, points given by hand, an undo, the start and end
of a match) is an input to its one entry point, :meth:`MatchEngine.apply`, like a press or an arm:
the journal records exactly these inputs, so a restart replays the match into the same log and
the same scores, and an undo replays as an undo. Scores are therefore never saved apart from the
inputs that made them.

**Undo** takes back the latest entry of the log (a ruling, a bonus part, points given by hand, a
wager) and keeps it in the log, marked undone. Its points come off the scoreboard. An undone
ruling of the question still being played also puts the round back as it was just before the
ruling (:meth:`RoundEngine.rewind`): a mistaken *Right* gives the floor back, so that the host can
rule it *Wrong* and the other team gets its rebound. Entries come back one at a time, newest first.

**Matches and games.** A match starts with a fresh engine (round 1, no scores, the match's teams)
and its start is the first input of a new *game* in the journal; ending it starts another game
of free play. So only the game in progress is ever replayed at a start: a finished match costs no
restore time, and its result is saved once, when it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, assert_never

from hub.formats import FREE_PLAY, Format
from hub.gamelog import (
    Awarded,
    BonusAnswer,
    BonusOpened,
    BonusScored,
    Buzz,
    Entry,
    Given,
    MatchEnded,
    MatchStarted,
    Question,
    Ruling,
    ScoresCleared,
    Undone,
)
from hub.round import (
    Answer,
    Arm,
    AssignTeam,
    Close,
    EngineInput,
    Event,
    GiveFloor,
    Outcome,
    PhaseChanged,
    Press,
    QuestionDead,
    QuestionRead,
    ReadQuestion,
    Reset,
    Right,
    RoundEngine,
    Ruled,
    Rules,
    TeamChanged,
    Tick,
    TimerFired,
    Wrong,
)
from hub.scores import Scoreboard, ScoreError
from wire import messages as msg
from wire.enums import AnswerKind, Flag, MatchStatus, Phase, TimerKind, TimerStage

#: Why a question ended unanswered when the host moved on without a timer or a wrong answer.
NO_ANSWER = "no answer"


@dataclass(frozen=True, slots=True)
class PlayerSetup:
    id: str
    name: str  # as the result prints it


@dataclass(frozen=True, slots=True)
class TeamSetup:
    name: str
    players: tuple[PlayerSetup, ...]


@dataclass(frozen=True, slots=True)
class MatchSetup:
    """What a match is: its number, name, packet, format and teams, fixed when it starts."""

    number: int
    name: str
    format: Format
    teams: tuple[TeamSetup, ...]
    packet: str | None = None

    def names(self) -> dict[str, str]:
        return {p.id: p.name for team in self.teams for p in team.players}

    def data(self) -> dict[str, Any]:
        """Plain data for the journal: the whole format goes with it (see :mod:`hub.formats`)."""
        return {
            "number": self.number,
            "name": self.name,
            "packet": self.packet,
            "format": self.format.data(),
            "teams": [
                {"name": t.name, "players": [{"id": p.id, "name": p.name} for p in t.players]}
                for t in self.teams
            ],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> MatchSetup:
        return cls(
            number=int(data["number"]),
            name=str(data["name"]),
            packet=data.get("packet"),
            format=Format.from_data(data["format"]),
            teams=tuple(
                TeamSetup(
                    str(team["name"]),
                    tuple(PlayerSetup(str(p["id"]), str(p["name"])) for p in team["players"]),
                )
                for team in data["teams"]
            ),
        )


# --- the inputs a game adds to the round engine's ---


@dataclass(frozen=True, slots=True)
class StartMatch:
    """A match begins: a fresh engine with the match's teams, format and rules."""

    KIND: ClassVar[str] = "match_start"
    setup: MatchSetup


@dataclass(frozen=True, slots=True)
class EndMatch:
    """The match is over: its result is final; free play follows, on a fresh engine."""

    KIND: ClassVar[str] = "match_end"


@dataclass(frozen=True, slots=True)
class Award:
    """Points given (or taken) by hand to a player (and the team they are in) or a team."""

    KIND: ClassVar[str] = "award"
    points: int
    player: str | None = None
    team: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScoreBonus:
    """The next part of the open bonus earned ``points`` (0: missed)."""

    KIND: ClassVar[str] = "bonus"
    points: int


@dataclass(frozen=True, slots=True)
class Undo:
    """Take back the latest entry of the game log."""

    KIND: ClassVar[str] = "undo"


@dataclass(frozen=True, slots=True)
class ClearScores:
    """Free play starts over: every total back to zero, a new log."""

    KIND: ClassVar[str] = "clear"


@dataclass(frozen=True, slots=True)
class SetValue:
    """The value of the clue being read and of the next ones (formats with clue values)."""

    KIND: ClassVar[str] = "value"
    points: int


@dataclass(frozen=True, slots=True)
class Wager:
    """A Daily Double: ``player`` wagered ``points`` and answered right or wrong. It is a
    question of its own, with no buzzing."""

    KIND: ClassVar[str] = "wager"
    player: str
    points: int
    correct: bool
    team: str | None = None


MatchInput = StartMatch | EndMatch | Award | ScoreBonus | Undo | ClearScores | SetValue | Wager
GameInput = EngineInput | MatchInput


@dataclass(slots=True)
class _Bonus:
    """The bonus being played, or played last in the current question."""

    question: int
    team: str
    parts: int
    part_value: int
    answered: int = 0
    read_ns: int | None = None  # when the part being played was read: its timer runs
    rang: bool = False  # its timer has rung

    @property
    def open(self) -> bool:
        return self.answered < self.parts


@dataclass(slots=True)
class _Log:
    """The game log and its scoreboard (a new game starts both afresh)."""

    questions: dict[int, Question] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    scores: Scoreboard = field(default_factory=Scoreboard)


class MatchEngine(RoundEngine):
    """A round engine that plays a game: rulings with points, bonuses, undo, matches."""

    def __init__(self, rules: Rules) -> None:
        super().__init__(rules)
        self._base_rules = rules
        self.match: MatchSetup | None = None
        self.status = MatchStatus.PLAYING
        self._log = _Log()
        self._bonus: _Bonus | None = None
        self._value: int | None = None
        self._before: dict[int, dict[str, object]] = {}  # ruling seq -> the round before it

    # --- what others read ---

    @property
    def scores(self) -> Scoreboard:
        return self._log.scores

    @property
    def format(self) -> Format | None:
        return self.match.format if self.match else None

    @property
    def questions(self) -> list[Question]:
        return list(self._log.questions.values())

    @property
    def entries(self) -> list[Entry]:
        return list(self._log.entries)

    @property
    def value(self) -> int | None:
        return self._value

    def open_bonus(self) -> _Bonus | None:
        """The bonus waiting for its next part, if one is."""
        bonus = self._bonus
        return bonus if bonus is not None and bonus.open else None

    def bonus_deadline(self) -> int | None:
        bonus = self.open_bonus()
        time = self.format.bonus_time_s if self.format else None
        if bonus is None or bonus.read_ns is None or time is None or bonus.rang:
            return None
        return bonus.read_ns + round(time * 1e9)

    @property
    def next_deadline(self) -> int | None:
        times = [t for t in (super().next_deadline, self.bonus_deadline()) if t is not None]
        return min(times) if times else None

    def last_entry(self) -> Entry | None:
        """What an undo would take back."""
        for entry in reversed(self._log.entries):
            if not entry.undone:
                return entry
        return None

    def floor_outcome(self) -> Outcome | None:
        """The counted press of the player who has the floor."""
        floor = self.floor()
        if floor is None or floor[0] is None or self.current is None:
            return None
        for outcome in self.current.ranked:
            if outcome.press.player == floor[0]:
                return outcome
        return None

    def interrupted(self) -> bool:
        """Whether the player with the floor buzzed before the question was read to the end."""
        outcome = self.floor_outcome()
        read = self.read_ns
        return outcome is not None and (read is None or outcome.press.rank_ns < read)

    @property
    def base_rules(self) -> Rules:
        """The hub's own rules, under a match's format."""
        return self._base_rules

    def set_base_rules(self, rules: Rules) -> None:
        """The hub's own rules (a config change at a restart); a match's format stays on top."""
        self._base_rules = rules
        self.rules = self.match.format.rules(rules) if self.match else rules

    # --- the one way in ---

    def apply(self, step: GameInput, now: int) -> list[Event]:
        """Feed one input, round or game: the journal records exactly these."""
        if not isinstance(step, Press | Tick):
            self._reshaped += 1  # see RoundEngine.ranking_key
        match step:
            case StartMatch(setup=setup):
                return self._start(setup, now)
            case EndMatch():
                return self._end(now)
            case Award():
                return self._award(step, now)
            case ScoreBonus(points=points):
                return self._score_bonus(points, now)
            case Undo():
                return self._undo(now)
            case ClearScores():
                self._log = _Log()
                self._bonus = None
                return [ScoresCleared()]
            case SetValue(points=points):
                return self._set_value(points)
            case Wager():
                return self._wager(step, now)
            case Right() | Wrong():
                return self._rule(step, now)
            case ReadQuestion() if self.open_bonus() is not None:
                return self._read_bonus_part(now)
            case Tick():
                return self._observe(super().apply(step, now)) + self._tick_bonus(now)
            case Arm() | Press() | Reset() | Close() | AssignTeam() | ReadQuestion() | GiveFloor():
                return self._observe(super().apply(step, now))
            case _:
                assert_never(step)

    # --- matches ---

    def _start(self, setup: MatchSetup, now: int) -> list[Event]:
        events = self._reset_game(now, setup)
        for team in setup.teams:
            for player in team.players:
                self.teams[player.id] = team.name
                events.append(TeamChanged(player.id, team.name))
        events.append(MatchStarted(setup.number, setup.name))
        return events

    def _end(self, now: int) -> list[Event]:
        setup = self.match
        ended: list[Event] = []
        if setup is not None:
            self._close_question()
            self.status = MatchStatus.ENDED
            ended.append(MatchEnded(setup.number, setup.name, report(self, setup.names())))
        return [*self._reset_game(now, None), *ended]

    def _reset_game(self, now: int, setup: MatchSetup | None) -> list[Event]:
        """A fresh engine for a new game (a match, or free play after one): nothing of the
        previous game carries over but the players' links. Presses stamped before ``now`` are
        stale, so a press re-sent from the previous game is never counted in this one."""
        # A press still waiting for its decision gets one: nobody waits for an answer that
        # never comes.
        decided = self._decide(now) if self.phase is Phase.ARMED and self._pending else []
        left = [TeamChanged(player, None) for player in sorted(self.teams)]
        self.match = setup
        self.status = MatchStatus.PLAYING
        self.rules = setup.format.rules(self._base_rules) if setup else self._base_rules
        self._fresh(now)
        self._log = _Log()
        self._bonus = None
        self._before = {}
        values = setup.format.values if setup else ()
        self._value = values[0] if values else None
        return [*decided, *left, PhaseChanged(0, Phase.IDLE)]

    # --- rulings ---

    def _rule(self, step: Right | Wrong, now: int) -> list[Event]:
        point = self.save_point()
        events = self._observe(super().apply(step, now))
        ruled = next((e for e in events if isinstance(e, Ruled)), None)
        if ruled is None:
            return events
        points = step.points or 0
        if ruled.correct:
            kind = AnswerKind.POWER if isinstance(step, Right) and step.power else AnswerKind.RIGHT
        else:
            kind = AnswerKind.NEG if points < 0 else AnswerKind.WRONG
        entry = Ruling(
            seq=self._next_seq(),
            question=self.question,
            points=points,
            round=ruled.round,
            player=ruled.player,
            team=ruled.team,
            correct=ruled.correct,
            kind=kind,
        )
        self._log.entries.append(entry)
        self._before[entry.seq] = point
        self._give(points, ruled.player, ruled.team, "right" if ruled.correct else "wrong", now)
        question = self._question_log()
        fmt = self.format
        if ruled.correct and question is not None:
            question.dead = None
            if fmt is not None and fmt.bonus_parts and ruled.team is not None:
                self._bonus = _Bonus(self.question, ruled.team, fmt.bonus_parts, fmt.bonus_part)
                question.bonus_team, question.bonus_parts = ruled.team, fmt.bonus_parts
                events.append(BonusOpened(self.question, ruled.team, fmt.bonus_parts))
        return events

    def _award(self, step: Award, now: int) -> list[Event]:
        self._log.entries.append(
            Given(
                seq=self._next_seq(),
                question=self.question,
                points=step.points,
                player=step.player,
                team=step.team,
                reason=step.reason,
            )
        )
        self._give(step.points, step.player, step.team, step.reason, now)
        return [Awarded(step.points, step.player, step.team, step.reason, self.number)]

    def _wager(self, step: Wager, now: int) -> list[Event]:
        """A question of its own: no round, one player, the wager won or lost."""
        self._close_question()
        self._question += 1
        self._read_ns = None
        question = Question(self.question, value=step.points, daily_double=True, over=True)
        self._log.questions[question.number] = question
        points = step.points if step.correct else -step.points
        self._log.entries.append(
            Given(
                seq=self._next_seq(),
                question=question.number,
                points=points,
                player=step.player,
                team=step.team,
                reason="wager",
                wager=True,
            )
        )
        self._give(points, step.player, step.team, "wager", now)
        return [Awarded(points, step.player, step.team, "wager", self.number)]

    def _set_value(self, points: int) -> list[Event]:
        self._value = points
        question = self._question_log()
        if question is not None and not question.over and not self._ruled_in(question.number):
            question.value = points
        return []

    # --- bonuses ---

    def _read_bonus_part(self, now: int) -> list[Event]:
        bonus = self.open_bonus()
        assert bonus is not None
        bonus.read_ns, bonus.rang = now, False
        return []

    def _score_bonus(self, points: int, now: int) -> list[Event]:
        bonus = self.open_bonus()
        if bonus is None:
            return []
        bonus.answered += 1
        bonus.read_ns, bonus.rang = None, False
        entry = BonusAnswer(
            seq=self._next_seq(),
            question=bonus.question,
            points=points,
            team=bonus.team,
            part=bonus.answered,
        )
        self._log.entries.append(entry)
        self._give(points, None, bonus.team, f"bonus part {bonus.answered}", now)
        return [BonusScored(bonus.question, bonus.team, bonus.answered, points)]

    def _tick_bonus(self, now: int) -> list[Event]:
        deadline = self.bonus_deadline()
        bonus = self.open_bonus()
        if deadline is None or bonus is None or now < deadline:
            return []
        bonus.rang = True
        return [TimerFired(self.number, TimerKind.BONUS, TimerStage.EXPIRED)]

    # --- undo ---

    def _undo(self, now: int) -> list[Event]:
        entry = self.last_entry()
        if entry is None:
            return []
        entry.undone = True
        events: list[Event] = []
        reason = "undo"
        match entry:
            case Ruling():
                self._give(-entry.points, entry.player, entry.team, reason, now)
                point = self._before.pop(entry.seq, None)
                if point is not None and entry.question == self.question:
                    if self._bonus is not None and self._bonus.question == entry.question:
                        self._bonus = None
                        question = self._question_log()
                        if question is not None:
                            question.bonus_team, question.bonus_parts = None, 0
                    events += self._observe(self.rewind(point, now))
                    question = self._question_log()
                    if question is not None:
                        question.dead, question.over = None, False
                    winner = self.current.winner if self.current else None
                    events.append(PhaseChanged(self.number, self.phase, winner=winner))
                else:  # a question already over: its points come off, and it may be unanswered
                    question = self._log.questions.get(entry.question)
                    if (
                        question is not None
                        and question.over
                        and not self._answered(question.number)
                    ):
                        question.dead = question.dead or NO_ANSWER
                text = f"{entry.kind} for {entry.player}"
            case BonusAnswer():
                self._give(-entry.points, None, entry.team, reason, now)
                bonus = self._bonus
                if bonus is not None and bonus.question == entry.question:
                    bonus.answered = entry.part - 1
                    bonus.read_ns, bonus.rang = None, False
                text = f"bonus part {entry.part} for {entry.team}"
            case Given():
                self._give(-entry.points, entry.player, entry.team, reason, now)
                if entry.wager:
                    question = self._log.questions.get(entry.question)
                    if question is not None:
                        question.dead = NO_ANSWER
                text = f"{entry.points:+d} to {entry.player or entry.team}"
            case _:
                raise AssertionError(f"unknown log entry {entry!r}")
        return [Undone(entry.question, f"undone: {text} (question {entry.question})"), *events]

    # --- the log ---

    def _next_seq(self) -> int:
        return len(self._log.entries) + 1

    def _question_log(self) -> Question | None:
        return self._log.questions.get(self.question)

    def _ruled_in(self, number: int) -> bool:
        return any(isinstance(e, Ruling) and e.question == number for e in self._log.entries)

    def _give(
        self, points: int, player: str | None, team: str | None, reason: str, now: int
    ) -> None:
        if not points or (player is None and team is None):
            return
        with contextlib.suppress(ScoreError):  # a full board: the referee refuses before that
            self._log.scores.award(points, now, player=player, team=team, reason=reason)

    def _observe(self, events: list[Event]) -> list[Event]:
        """Keep the log in step with what the rounds did: the questions' rounds, their counted
        presses, the questions that died."""
        for event in events:
            match event:
                case PhaseChanged(phase=Phase.ARMED, round=number):
                    self._round_armed(number)
                case Answer(outcome=outcome) if outcome.counted:
                    question = self._question_of(outcome.round)
                    if question is not None:
                        self._note_buzz(question, outcome)
                case QuestionRead(question=number, at_ns=at):
                    question = self._log.questions.get(number)
                    if question is not None:
                        question.read_ns = at
                case QuestionDead(question=number, reason=reason):
                    question = self._log.questions.get(number)
                    if question is not None:
                        question.dead, question.over = str(reason), True
                case _:
                    pass
        return events

    def _round_armed(self, number: int) -> None:
        current = self._question_log()
        if current is None:
            self._close_question()
            self._before = {}  # only the question being played can be rewound
            current = Question(self.question, value=self._value if self._has_values() else None)
            self._log.questions[current.number] = current
        current.rounds.append(number)

    def _close_question(self) -> None:
        """The question before a new one (or the match's end) is over: unanswered, it is dead;
        its bonus parts never played count 0."""
        for question in self._log.questions.values():
            if question.over:
                continue
            question.over = True
            if question.dead is None and not self._answered(question.number):
                question.dead = NO_ANSWER
        bonus = self._bonus
        if bonus is not None and bonus.open:
            while bonus.open:
                bonus.answered += 1
                self._log.entries.append(
                    BonusAnswer(
                        seq=self._next_seq(),
                        question=bonus.question,
                        points=0,
                        team=bonus.team,
                        part=bonus.answered,
                    )
                )
        self._bonus = None

    def _answered(self, number: int) -> bool:
        return any(
            isinstance(e, Ruling) and e.question == number and e.correct and not e.undone
            for e in self._log.entries
        )

    def _has_values(self) -> bool:
        return bool(self.format and self.format.values)

    def _question_of(self, round_number: int) -> Question | None:
        for question in reversed(self._log.questions.values()):
            if round_number in question.rounds:
                return question
        return None

    def _note_buzz(self, question: Question, outcome: Outcome) -> None:
        press = outcome.press
        if outcome.rank is None:
            return
        key = (outcome.round, press.player)
        if key in question.buzzed:
            return
        question.buzzed.add(key)
        question.buzzes.append(
            Buzz(
                round=outcome.round,
                rank=outcome.rank,
                player=press.player,
                team=self.teams.get(press.player),
                reaction_ns=outcome.reaction_ns,
                behind_ns=outcome.behind_ns,
                flags=tuple(sorted(outcome.flags)),
            )
        )


# --- what the console, the big screen and the exports are told ---


def format_view(fmt: Format) -> msg.FormatView:
    return msg.FormatView(
        name=fmt.name,
        title=fmt.title,
        tossup=fmt.tossup,
        power=fmt.power,
        neg=fmt.neg,
        wrong=fmt.wrong,
        bonus_parts=fmt.bonus_parts,
        bonus_part=fmt.bonus_part,
        values=list(fmt.values),
        wagers=fmt.wagers,
        one_buzz_per_team=fmt.one_buzz_per_team,
        rebound=fmt.rebound,
        tossup_time_ns=None if fmt.tossup_time_s is None else round(fmt.tossup_time_s * 1e9),
        bonus_time_ns=None if fmt.bonus_time_s is None else round(fmt.bonus_time_s * 1e9),
        questions=fmt.questions,
    )


def match_view(engine: MatchEngine) -> msg.MatchView | None:
    setup = engine.match
    if setup is None:
        return None
    return msg.MatchView(
        number=setup.number,
        name=setup.name,
        packet=setup.packet,
        format=format_view(setup.format),
        status=engine.status,
    )


def log_view(
    engine: MatchEngine,
    names: dict[str, str],
    last: int | None = None,
    buzzes: int | None = None,
) -> list[msg.QuestionView]:
    """The game log, question by question, undone entries included (marked); only the ``last``
    questions if given, and of each round's buzzes only the first ``buzzes`` (and those of
    players ruled on) if given, the rest counted."""
    names = {**names, **(engine.match.names() if engine.match else {})}
    questions = engine.questions
    if last is not None:
        questions = questions[-last:] if last > 0 else []
    shown = {question.number for question in questions}
    by_question: dict[int, list[Entry]] = {}
    for entry in engine.entries:
        if entry.question in shown:
            by_question.setdefault(entry.question, []).append(entry)
    part = engine.format.bonus_part if engine.format else 0
    return [
        _question_view(q, by_question.get(q.number, []), names, part, buzzes) for q in questions
    ]


def unsaid_log(log: list[msg.QuestionView], rounds: Collection[int]) -> list[msg.QuestionView]:
    """``log`` without the buzzes of rounds ``rounds``: their decisions wait for the disk, and
    no one hears a winner before the press it rests on is saved (a count of buzzes not listed
    may still include them: it names no one)."""
    if not rounds:
        return log
    return [
        replace(question, buzzes=[b for b in question.buzzes if b.round not in rounds])
        if any(b.round in rounds for b in question.buzzes)
        else question
        for question in log
    ]


def _question_view(
    question: Question,
    entries: list[Entry],
    names: dict[str, str],
    part_value: int,
    first: int | None = None,
) -> msg.QuestionView:
    shown = question.buzzes
    if first is not None:
        ruled = {(e.round, e.player) for e in entries if isinstance(e, Ruling)}
        shown = [b for b in shown if b.rank <= first or (b.round, b.player) in ruled]
    bonus = None
    if question.bonus_team is not None:
        bonus = msg.BonusView(
            team=question.bonus_team,
            parts=question.bonus_parts,
            part_value=part_value,
            answers=[
                msg.BonusPartView(seq=e.seq, part=e.part, points=e.points, undone=e.undone)
                for e in entries
                if isinstance(e, BonusAnswer)
            ],
        )
    return msg.QuestionView(
        number=question.number,
        value=question.value,
        read=question.read_ns is not None,
        daily_double=question.daily_double,
        dead=question.dead,
        over=question.over,
        buzzes=[
            msg.BuzzView(
                round=b.round,
                rank=b.rank,
                player=b.player,
                name=names.get(b.player, b.player),
                team=b.team,
                reaction_ns=b.reaction_ns,
                behind_ns=b.behind_ns,
                flags=[Flag(flag) for flag in b.flags],
            )
            for b in shown
        ],
        more_buzzes=len(question.buzzes) - len(shown),
        answers=[
            msg.AnswerView(
                seq=e.seq,
                round=e.round,
                player=e.player,
                name=names.get(e.player, e.player),
                team=e.team,
                kind=e.kind,
                points=e.points,
                undone=e.undone,
            )
            for e in entries
            if isinstance(e, Ruling)
        ],
        bonus=bonus,
        awards=[
            msg.AwardView(
                seq=e.seq,
                points=e.points,
                player=e.player,
                name=names.get(e.player, e.player) if e.player else None,
                team=e.team,
                reason=e.reason,
                wager=e.wager,
                undone=e.undone,
            )
            for e in entries
            if isinstance(e, Given)
        ],
    )


def report(
    engine: MatchEngine, names: dict[str, str], unsaid: Collection[int] = ()
) -> msg.MatchReport:
    """The whole match (or the free play so far) as the exports write it; the rounds ``unsaid``
    as they stood before their decisions (see :func:`unsaid_log`).

    Totals count only entries that stand (not undone). A team's points are its players' rulings,
    its bonuses and points given to it or its players by hand; a player's, their rulings and
    points given to them."""
    setup = engine.match
    names = {**names, **(setup.names() if setup else {})}
    questions = unsaid_log(log_view(engine, names), unsaid)
    standing = [e for e in engine.entries if not e.undone]
    if setup is not None:
        lineup = [(t.name, [p.id for p in t.players]) for t in setup.teams]
    else:
        grouped: dict[str, list[str]] = {}
        for player, team in sorted(engine.teams.items()):
            grouped.setdefault(team, []).append(player)
        lineup = sorted(grouped.items())
    teams = []
    for team_name, players in lineup:
        team_entries = [e for e in standing if _team_of(e) == team_name]
        bonus_points = sum(e.points for e in team_entries if isinstance(e, BonusAnswer))
        teams.append(
            msg.MatchTeamView(
                name=team_name,
                points=sum(e.points for e in team_entries),
                bonus_points=bonus_points,
                bonuses_heard=sum(1 for q in questions if q.bonus and q.bonus.team == team_name),
                players=[_player_view(p, names, standing) for p in players],
            )
        )
    match = match_view(engine) or msg.MatchView(
        number=0,
        name=FREE_PLAY.title,
        packet=None,
        format=format_view(FREE_PLAY),
        status=engine.status,
    )
    read = sum(1 for q in questions if not q.daily_double and (q.buzzes or q.over or q.answers))
    return msg.MatchReport(match=match, teams=teams, questions=questions, tossups_read=read)


def _team_of(entry: Entry) -> str | None:
    if isinstance(entry, Ruling | Given | BonusAnswer):
        return entry.team
    return None


def _player_view(player: str, names: dict[str, str], standing: list[Entry]) -> msg.MatchPlayerView:
    rulings = [e for e in standing if isinstance(e, Ruling) and e.player == player]
    given = [e for e in standing if isinstance(e, Given) and e.player == player]
    counts: dict[int, int] = {}
    for ruling in rulings:
        counts[ruling.points] = counts.get(ruling.points, 0) + 1
    return msg.MatchPlayerView(
        id=player,
        name=names.get(player, player),
        points=sum(e.points for e in (*rulings, *given)),
        answers=[
            msg.AnswerCountView(value=value, number=number)
            for value, number in sorted(counts.items(), reverse=True)
        ],
    )
