"""What players, tutorial clients and hosts are told, byte for byte."""

from __future__ import annotations

import dataclasses

import pytest

from hub.round import Outcome, PressIn, RoundRecord
from hub.views import (
    history_view,
    ordinal,
    plain_answer,
    press_view,
    result_text,
    round_view,
)
from wire.codec import as_data
from wire.enums import Flag, InputKind, Phase
from wire.messages import PlayerView, PressView, RoundView

MS = 1_000_000


def outcome(
    rank: int | None = None,
    behind_ns: int | None = None,
    reaction_ns: int | None = None,
    flags: frozenset[Flag] = frozenset(),
    lockout_ns: int | None = None,
    player: str = "p1",
) -> Outcome:
    press = PressIn(player, "x1", at_ns=5, arrival_ns=7, uncertainty_ns=3, raw_ns=11)
    return Outcome(1, press, rank, reaction_ns, behind_ns, flags, lockout_ns)


@pytest.mark.parametrize(
    ("behind_ns", "text"),
    [
        (100 * MS, "Response time: 0.1 sec slower."),
        (370 * MS, "Response time: 0.37 sec slower."),
        (12 * MS, "Response time: 0.01 sec slower."),
        (4 * MS, "Response time: 0.0 sec slower."),
        (0, "Response time: 0.0 sec slower."),
        (1_500 * MS, "Response time: 1.5 sec slower."),
        (2_000 * MS, "Response time: 2.0 sec slower."),
        (123_456 * MS, "Response time: 123.46 sec slower."),
    ],
)
def test_tutorial_response_time_is_printed_as_python_prints_round(
    behind_ns: int, text: str
) -> None:
    assert plain_answer(outcome(rank=2, behind_ns=behind_ns, reaction_ns=1)) == text


def test_tutorial_first_place_and_too_early() -> None:
    assert plain_answer(outcome(rank=1, behind_ns=0, reaction_ns=1)) == "First place!"
    # A repeat of the winning press repeats the answer.
    repeat = outcome(rank=1, behind_ns=0, reaction_ns=1, flags=frozenset({Flag.REPEAT}))
    assert plain_answer(repeat) == "First place!"
    assert plain_answer(outcome(flags=frozenset({Flag.EARLY}))) == "Too early!"
    assert plain_answer(outcome(flags=frozenset({Flag.LOCKED}))) == "Too early!"
    assert plain_answer(outcome(flags=frozenset({Flag.CLOSED}))) == "Round closed."
    assert plain_answer(outcome(flags=frozenset({Flag.STALE}))) == "Round closed."


def test_player_result_lines() -> None:
    assert result_text(outcome(rank=1, behind_ns=0, reaction_ns=342 * MS)) == (
        "First place! (reaction 0.342 s)"
    )
    assert result_text(outcome(rank=2, behind_ns=12 * MS, reaction_ns=354 * MS)) == (
        "Second, 0.012 s behind (reaction 0.354 s)"
    )
    tie = outcome(rank=2, behind_ns=0, reaction_ns=354 * MS, flags=frozenset({Flag.TIE}))
    assert (
        result_text(tie)
        == "Second, 0.000 s behind (reaction 0.354 s), a tie within clock uncertainty"
    )
    repeat = outcome(rank=1, behind_ns=0, reaction_ns=MS, flags=frozenset({Flag.REPEAT}))
    assert result_text(repeat) == "Already counted: First place! (reaction 0.001 s)"
    assert result_text(outcome(flags=frozenset({Flag.EARLY}))) == (
        "Too early! Locked out until the next round."
    )
    assert result_text(outcome(flags=frozenset({Flag.EARLY}), lockout_ns=250 * MS)) == (
        "Too early! Locked out for 0.250 s."
    )
    assert result_text(outcome(flags=frozenset({Flag.LOCKED}))) == (
        "Locked out: wait for the next round."
    )
    assert result_text(outcome(flags=frozenset({Flag.STALE}))).startswith("That press belongs")
    assert result_text(outcome(flags=frozenset({Flag.CLOSED}))) == (
        "The round is closed; not counted."
    )


@pytest.mark.parametrize(
    ("rank", "word"),
    [
        *[(1, "First"), (2, "Second"), (3, "Third"), (4, "4th"), (11, "11th"), (12, "12th")],
        *[(13, "13th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (101, "101st"), (111, "111th")],
    ],
)
def test_ordinals(rank: int, word: str) -> None:
    assert ordinal(rank) == word


def test_round_and_history_views() -> None:
    names = {"p1": "Alice"}
    teams = {"p1": "red"}
    assert round_view(None, Phase.IDLE, names, teams) == RoundView(number=0, state=Phase.IDLE)
    first = RoundRecord(number=1, armed_ns=0, release_ns=10)
    won = outcome(rank=1, behind_ns=0, reaction_ns=4)
    first.ranked.append(won)
    first.refused.append(outcome(flags=frozenset({Flag.REPEAT, Flag.TIE}), player="p2"))
    body = round_view(first, Phase.DECIDED, names, teams)
    assert body.winner == "Alice"
    assert body.state is Phase.DECIDED
    assert body.results == [press_view(won, names, teams)]
    assert body.results[0] == PressView(
        rank=1,
        player="p1",
        name="Alice",
        press_id="x1",
        reaction_ns=4,
        behind_ns=0,
        uncertainty_ns=3,
        flags=[],
        at_ns=5,
        raw_ns=11,
        arrival_ns=7,
        team="red",
    )
    assert body.refused[0].name == "p2"  # unknown players are shown by id
    assert body.refused[0].team is None
    assert body.refused[0].flags == [Flag.REPEAT, Flag.TIE]
    second = RoundRecord(number=2, armed_ns=20, release_ns=30)
    history = history_view([first, second], second, names, teams)
    assert [r.number for r in history] == [1]
    assert history_view([first, second], None, names, teams)[0].number == 2  # newest first


def test_roster_entry_as_data_is_every_field() -> None:
    view = PlayerView(
        id="n1",
        name="Ann",
        input=InputKind.GPIO,
        team=None,
        online=True,
        synced=True,
        offset_ns=-5,
        rtt_ns=800_000,
        uncertainty_ns=400_000,
        bound_ns=450_000,
        upload_ns=410_000,
        drift_ppm=1.5,
        last_sync_ns=10,
        last_seen_ns=None,
    )
    assert as_data(view) == dataclasses.asdict(view)


def test_an_earlier_round_in_a_picture_lists_its_first_results_and_counts_the_rest() -> None:
    """A round of a thousand players must not put a thousand results into every picture for
    the next ten rounds: a picture's history lists the first few, a page of history them all."""
    big = RoundRecord(number=1, armed_ns=0, release_ns=10)
    for rank in range(1, 1001):
        big.ranked.append(outcome(rank=rank, behind_ns=rank, reaction_ns=rank, player=f"p{rank}"))
    big.refused.extend(outcome(flags=frozenset({Flag.EARLY}), player=f"e{i}") for i in range(30))
    big.more_refused = 70
    summary = history_view([big], None, {}, {}, results=5)[0]
    assert [r.rank for r in summary.results] == [1, 2, 3, 4, 5]
    assert summary.more_results == 995
    assert summary.refused == []
    assert summary.more_refused == 100
    whole = history_view([big], None, {}, {})[0]
    assert len(whole.results) == 1000
    assert len(whole.refused) == 30
    assert (whole.more_results, whole.more_refused) == (0, 70)
    assert summary == dataclasses.replace(
        whole, results=whole.results[:5], refused=[], more_results=995, more_refused=100
    )
