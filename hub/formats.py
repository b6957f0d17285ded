"""Game formats as data: what a right or wrong answer is worth, bonuses, timers, who may rebound.

A format is a plain frozen value. A match carries the whole format it was started with (in the
journal too), so a match replays with the values it was played with even if a later version of
the hub changes a default here. The numbers follow the rules their players know:

- **Quiz bowl** (ACF and NAQT style): a tossup is worth 10, 15 when answered before the power mark
  (a moderator's call: the console has a *Power* button), -5 for a wrong answer that interrupts
  the question (a *neg*) and 0 once the question has been read to the end; the team that gets a
  tossup hears a bonus of three parts worth 10 each. A team that answered wrong is out of the
  question; the other team may buzz until 5 seconds after the end of the question.
- **Jeopardy-style**: the host picks each clue's value, reads the clue, then arms; a right answer
  wins the value and a wrong one costs it; an early buzz locks the player out for 250 ms, counted
  again from every further early press; nobody ringing in within 5 s of the light ends the clue; a
  Daily Double is a wager by one player.
- **Classroom**: no penalties, one point a question, a wrong answer passes the question to the
  next fastest student, generous answer time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from hub.round import Rules
from wire.enums import ReboundMode

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Format:
    """Everything a match's rules need that is not the round engine's own business."""

    name: str  # the key: quizbowl, jeopardy, classroom
    title: str  # for people
    tossup: int  # a right answer
    power: int | None  # a right answer before the power mark; None: this format has none
    neg: int  # a wrong answer that interrupts the question (<= 0)
    wrong: int  # a wrong answer once the question has been read to the end (<= 0)
    bonus_parts: int  # parts of the bonus a team earns with a right answer; 0: no bonuses
    bonus_part: int  # points per bonus part
    values: tuple[int, ...] = ()  # clue values to pick from: a right answer wins the clue's value,
    # and a wrong one costs it (Jeopardy); empty: the tossup value
    wagers: bool = False  # a single player may wager on a clue (a Daily Double)
    one_buzz_per_team: bool = True
    rebound: ReboundMode = ReboundMode.REARM
    lockout_ms: float | None = None  # an early buzz's lockout; None: the hub's [round] lockout_ms
    tossup_time_s: float | None = None  # to buzz, after the question was read to the end
    buzz_window_s: float | None = None  # to buzz, after the light (the host arms after reading)
    bonus_time_s: float | None = None  # to answer a bonus part, after it was read
    answer_time_s: float | None = None  # to answer, with the floor; None: the hub's [game] one
    answer_warning_s: float | None = None
    questions: int = 0  # tossups in regulation, for "question 5 of 20"; 0: open-ended

    def rules(self, base: Rules) -> Rules:
        """The round rules of a match in this format, on top of the hub's own."""
        return replace(
            base,
            auto_arm_after_ns=None,  # a match is run by its moderator: nothing arms on its own
            one_buzz_per_team=self.one_buzz_per_team,
            rebound=self.rebound,
            lockout_ns=base.lockout_ns if self.lockout_ms is None else _ns(self.lockout_ms / 1e3),
            tossup_ns=_ns(self.tossup_time_s),
            buzz_window_ns=_ns(self.buzz_window_s),
            answer_ns=base.answer_ns if self.answer_time_s is None else _ns(self.answer_time_s),
            answer_warning_ns=(
                base.answer_warning_ns
                if self.answer_warning_s is None
                else _ns(self.answer_warning_s)
            ),
        )

    def with_timers(self, tossup_s: float | None, bonus_s: float | None) -> Format:
        """This format with the hub's configured timers, where the config sets them."""
        return replace(
            self,
            tossup_time_s=self.tossup_time_s
            if tossup_s is None or not self.tossup_time_s
            else tossup_s,
            bonus_time_s=self.bonus_time_s if bonus_s is None or not self.bonus_parts else bonus_s,
        )

    def data(self) -> dict[str, Any]:
        """The format as plain data (JSON-ready), e.g. for the journal."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Format:
        """A format written by :meth:`data`; unknown keys (a newer hub's) are left out."""
        known = {name for name in cls.__dataclass_fields__}
        fields = {key: value for key, value in data.items() if key in known}
        fields["values"] = tuple(fields.get("values", ()))
        fields["rebound"] = ReboundMode(fields.get("rebound", ReboundMode.REARM))
        return cls(**fields)


QUIZ_BOWL = Format(
    name="quizbowl",
    title="Quiz bowl",
    tossup=10,
    power=15,
    neg=-5,
    wrong=0,
    bonus_parts=3,
    bonus_part=10,
    tossup_time_s=5.0,
    bonus_time_s=5.0,
    questions=20,
)

JEOPARDY = Format(
    name="jeopardy",
    title="Jeopardy-style",
    tossup=200,
    power=None,
    neg=0,  # unused: with values, a wrong answer costs the clue's value
    wrong=0,
    bonus_parts=0,
    bonus_part=0,
    values=(200, 400, 600, 800, 1000),
    wagers=True,
    one_buzz_per_team=False,
    lockout_ms=250.0,
    buzz_window_s=5.0,  # the clue is read before the light: the time to ring in starts with it
    answer_time_s=5.0,
    answer_warning_s=2.0,
)

CLASSROOM = Format(
    name="classroom",
    title="Classroom",
    tossup=1,
    power=None,
    neg=0,
    wrong=0,
    bonus_parts=0,
    bonus_part=0,
    one_buzz_per_team=False,
    rebound=ReboundMode.NEXT,
    answer_time_s=20.0,
    answer_warning_s=5.0,
)

#: What a game is outside a match: the hub's [game] points, nothing else.
FREE_PLAY = Format(
    name="free",
    title="Free play",
    tossup=10,
    power=None,
    neg=0,
    wrong=0,
    bonus_parts=0,
    bonus_part=0,
    one_buzz_per_team=False,
)


def free_play(points_right: int, points_wrong: int) -> Format:
    """Free play with the hub's configured points for a right and a wrong answer."""
    return replace(FREE_PLAY, tossup=points_right, neg=points_wrong, wrong=points_wrong)


#: The formats a host can pick, by name.
FORMATS: dict[str, Format] = {f.name: f for f in (QUIZ_BOWL, JEOPARDY, CLASSROOM)}


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * NS_PER_S)
