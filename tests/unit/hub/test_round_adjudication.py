"""Adjudication with explicit timestamps: the adaptive wait, ties and late presses.

The horizon the wait is computed from is tested with the clock maths (test_clock.py); here it is
only used.

Times are hub nanoseconds. The round is armed at 0 with no lead, so presses count from 0.
"""

from __future__ import annotations

import pytest

from hub.clock import adjudication_horizon
from hub.round import Answer, Event, Outcome, PhaseChanged, PressIn, RoundEngine, Rules, TieRule
from wire.enums import Flag, Phase

MS = 1_000_000
US = 1_000
START = 1_000 * MS  # the instant every scenario's first press is made


def armed(**rules: object) -> RoundEngine:
    engine = RoundEngine(Rules(**rules))  # type: ignore[arg-type]
    engine.arm(0, lead_ns=0)
    return engine


def press(player: str, at: int, arrival: int, uncertainty: int = 100 * US) -> PressIn:
    return PressIn(player, f"{player}-1", at_ns=at, arrival_ns=arrival, uncertainty_ns=uncertainty)


def answers(events: list[Event]) -> dict[str, Outcome]:
    return {e.outcome.press.player: e.outcome for e in events if isinstance(e, Answer)}


def decided(events: list[Event]) -> PhaseChanged | None:
    return next(
        (e for e in events if isinstance(e, PhaseChanged) and e.phase is Phase.DECIDED), None
    )


# --- the wait ---


def test_slow_link_press_made_earlier_wins_although_it_arrives_later() -> None:
    """The fast node presses 5 ms after the slow one but arrives 145 ms before it."""
    engine = armed()
    horizon = adjudication_horizon([150 * MS, 200 * US], 2 * MS, 500 * MS)
    fast = press("fast", START + 5 * MS, START + 5 * MS + 200 * US)
    slow = press("slow", START, START + 150 * MS)
    assert decided(engine.press(fast, fast.arrival_ns, horizon)) is None
    assert engine.deadline_ns == fast.at_ns + horizon
    assert decided(engine.press(slow, slow.arrival_ns, horizon)) is None
    # The slow press is earlier: now only something earlier than it is worth waiting for.
    assert engine.deadline_ns == slow.at_ns + horizon
    assert engine.tick(engine.deadline_ns - 1) == []
    events = engine.tick(engine.deadline_ns)
    change = decided(events)
    assert change is not None
    assert change.winner is not None
    assert change.winner.press.player == "slow"
    results = answers(events)
    assert results["fast"].rank == 2
    assert results["fast"].behind_ns == 5 * MS
    assert results["slow"].reaction_ns == START
    assert not results["fast"].flags


def test_wait_is_measured_from_the_first_arrival() -> None:
    """On a LAN the wait is the horizon minus what the first press already spent in flight."""
    engine = armed()
    horizon = adjudication_horizon([150 * US, 300 * US], 2 * MS, 500 * MS)
    first = press("a", START, START + 250 * US)
    engine.press(first, first.arrival_ns, horizon)
    change = decided(engine.tick(START + horizon))
    assert change is not None
    assert change.adjudication_wait_ns == horizon - 250 * US
    assert engine.current is not None
    assert engine.current.adjudication_wait_ns == 2_050 * US


def test_wait_never_exceeds_the_cap() -> None:
    engine = armed(adjudication_cap_ns=100 * MS)
    first = press("a", START, START + 1 * MS)
    engine.press(first, first.arrival_ns, horizon_ns=400 * MS)
    assert engine.deadline_ns == first.arrival_ns + 100 * MS


def test_press_already_past_its_deadline_is_decided_at_once() -> None:
    """A press that spent longer in flight than the horizon: nothing earlier can still come."""
    engine = armed()
    late_arrival = press("a", START, START + 10 * MS)
    change = decided(engine.press(late_arrival, late_arrival.arrival_ns, horizon_ns=3 * MS))
    assert change is not None
    assert change.adjudication_wait_ns == 0


def test_press_after_the_decision_stamped_earlier_is_flagged_late_not_promoted() -> None:
    engine = armed()
    horizon = 3 * MS
    a = press("a", START, START + 1 * MS)
    engine.press(a, a.arrival_ns, horizon)
    engine.tick(START + horizon)
    # An earlier press from a node whose link stalled well beyond its measured delay.
    b = press("b", START - 4 * MS, START + 80 * MS)
    results = answers(engine.press(b, b.arrival_ns, horizon))
    assert results["b"].rank == 2
    assert Flag.LATE in results["b"].flags
    assert engine.current is not None
    assert engine.current.winner is not None
    assert engine.current.winner.press.player == "a"


def test_later_press_after_the_decision_is_ranked_without_flags() -> None:
    engine = armed()
    a = press("a", START, START + 1 * MS)
    engine.press(a, a.arrival_ns, 3 * MS)
    engine.tick(START + 3 * MS)
    b = press("b", START + 40 * MS, START + 41 * MS)
    results = answers(engine.press(b, b.arrival_ns, 3 * MS))
    assert results["b"].rank == 2
    assert results["b"].behind_ns == 40 * MS
    assert results["b"].flags == frozenset()


def test_a_press_after_the_decision_within_a_wide_span_is_flagged_tie() -> None:
    """A phone's press (a wide span) comes second between two tight ones. A fourth press, made
    within the phone's span but clear of every other, comes in after the decision: it may have
    been made before the phone's, so it is flagged a tie, though it ties neither the press
    ranked before it, nor the latest, nor the winner."""
    engine = armed()
    first = press("first", START, START + 1 * MS)
    phone = press("phone", START + 2 * MS, START + 3 * MS, uncertainty=20 * MS)
    third = press("third", START + 6 * MS, START + 7 * MS)
    ranked = decide_all(engine, first, phone, third)
    assert [ranked[p].rank for p in ("first", "phone", "third")] == [1, 2, 3]
    fourth = press("fourth", START + 15 * MS, START + 60 * MS)
    outcome = answers(engine.press(fourth, fourth.arrival_ns, 3 * MS))["fourth"]
    assert outcome.rank == 4
    assert outcome.flags == {Flag.TIE}


def test_a_late_press_within_the_winners_span_is_flagged_late_and_tie() -> None:
    """The winner's span is wide; the second press is clear of it. A press made within the
    winner's span, before the second, comes in after the decision: late, and a tie for first."""
    engine = armed()
    phone = press("phone", START, START + 1 * MS, uncertainty=20 * MS)
    second = press("second", START + 25 * MS, START + 26 * MS)
    ranked = decide_all(engine, phone, second)
    assert ranked["phone"].rank == 1
    assert not ranked["second"].flags
    stalled = press("stalled", START + 15 * MS, START + 90 * MS)
    outcome = answers(engine.press(stalled, stalled.arrival_ns, 3 * MS))["stalled"]
    assert outcome.rank == 3
    assert outcome.flags == {Flag.LATE, Flag.TIE}


# --- ties ---


def decide_two(engine: RoundEngine, *presses: PressIn) -> dict[str, Outcome]:
    for p in sorted(presses, key=lambda p: p.arrival_ns):
        engine.press(p, p.arrival_ns, 10 * MS)
    assert engine.deadline_ns is not None
    return answers(engine.tick(engine.deadline_ns))


def test_presses_closer_than_their_combined_uncertainty_tie_and_arrival_breaks_it() -> None:
    engine = armed(tie_rule=TieRule.ARRIVAL)  # a choice; the default is the earliest estimate
    early = press("early", START, START + 2 * MS, uncertainty=300 * US)
    late = press("late", START + 500 * US, START + 1 * MS, uncertainty=300 * US)
    results = decide_two(engine, early, late)
    assert Flag.TIE in results["early"].flags
    assert Flag.TIE in results["late"].flags
    assert results["late"].rank == 1  # arrived first
    assert results["early"].rank == 2
    assert results["early"].behind_ns == 0  # never negative


def test_timestamp_tie_rule_trusts_the_timestamps() -> None:
    engine = armed(tie_rule=TieRule.TIMESTAMP)
    early = press("early", START, START + 2 * MS, uncertainty=300 * US)
    late = press("late", START + 500 * US, START + 1 * MS, uncertainty=300 * US)
    results = decide_two(engine, early, late)
    assert results["early"].rank == 1
    assert results["late"].behind_ns == 500 * US
    assert Flag.TIE in results["late"].flags


def test_a_gap_of_exactly_the_combined_uncertainty_is_not_a_tie() -> None:
    engine = armed()
    early = press("early", START, START + 2 * MS, uncertainty=300 * US)
    late = press("late", START + 600 * US, START + 1 * MS, uncertainty=300 * US)
    results = decide_two(engine, early, late)
    assert results["early"].rank == 1
    assert not results["early"].flags
    assert not results["late"].flags


@pytest.mark.parametrize("rule", list(TieRule))
def test_ties_do_not_chain_past_a_clear_gap(rule: TieRule) -> None:
    """a ties b and b ties c, but a is clearly before c: c must never be ranked above a."""
    engine = armed(tie_rule=rule)
    a = press("a", START, START + 3 * MS, uncertainty=250 * US)
    b = press("b", START + 400 * US, START + 2 * MS, uncertainty=250 * US)
    c = press("c", START + 800 * US, START + 1 * MS, uncertainty=250 * US)
    results = decide_two(engine, a, b, c)
    assert results["a"].rank is not None
    assert results["c"].rank is not None
    assert results["a"].rank < results["c"].rank
    # Each near call is still shown to the host.
    assert all(Flag.TIE in results[name].flags for name in "abc")


# --- clamped presses: a claim beyond what the link explains ---


def decide_all(engine: RoundEngine, *presses: PressIn) -> dict[str, Outcome]:
    """Each press as it arrives (the last may be past the deadline, and decide at once)."""
    events: list[Event] = []
    for p in sorted(presses, key=lambda p: p.arrival_ns):
        events += engine.press(p, p.arrival_ns, 10 * MS)
    if engine.deadline_ns is not None:
        events += engine.tick(engine.deadline_ns)
    return answers(events)


def clamped(player: str, claim: int, earliest: int, arrival: int) -> PressIn:
    """A press claiming ``claim``, clamped to ``earliest`` (its arrival minus what its link
    explains), as hub.core.presses places it: its uncertainty reaching back to the claim, and
    ranked by its arrival."""
    return PressIn(
        player,
        f"{player}-1",
        at_ns=earliest,
        arrival_ns=arrival,
        uncertainty_ns=100 * US + earliest - claim,
        claimed_ns=claim,
        by_arrival=True,
    )


@pytest.mark.parametrize("rule", list(TieRule))
def test_a_clamped_press_is_ranked_behind_every_press_made_before_it_arrived(
    rule: TieRule,
) -> None:
    """Placed at the earliest instant its link explains, the liar is ahead of both honest
    presses, which are clearly apart from each other. The honest press in between used to
    close the tie group before the second one, so the liar came second, ahead of a press made
    30 ms before it arrived; ranked by its arrival, it comes after both."""
    engine = armed(tie_rule=rule)
    first = press("first", START + 5 * MS, START + 6 * MS, uncertainty=MS)
    second = press("second", START + 10 * MS, START + 11 * MS, uncertainty=MS)
    liar = clamped("liar", START - MS, START, START + 40 * MS)
    results = decide_all(engine, first, second, liar)
    assert [results[name].rank for name in ("first", "second", "liar")] == [1, 2, 3]
    assert Flag.TIE not in results["first"].flags  # a clear winner: the floor is not contested
    floor = engine.floor()
    assert floor is not None
    assert floor[0] == "first"
    assert Flag.TIE in results["second"].flags  # the liar may have been made before it
    assert results["liar"].flags == {Flag.CLAMPED, Flag.TIE}
    # Timed as it is ranked: from its arrival.
    assert results["liar"].behind_ns == 35 * MS
    assert results["liar"].reaction_ns == START + 40 * MS


def test_a_clamped_winner_is_timed_from_its_arrival() -> None:
    """Nothing was made before it arrived: it wins, and the next press is behind by the time
    from its arrival, not from the instant its link could have allowed."""
    engine = armed()
    alone = clamped("alone", START + MS, START + 10 * MS, START + 60 * MS)
    later = press("later", START + 70 * MS, START + 71 * MS, uncertainty=MS)
    results = decide_all(engine, alone, later)
    assert results["alone"].rank == 1
    assert results["later"].behind_ns == 10 * MS


def test_a_clamped_press_that_arrived_before_another_was_made_still_beats_it() -> None:
    """Two clamped presses and an honest one: the first clamped press reached the hub before the
    honest press was made, so it was certainly first; the second arrived long after."""
    engine = armed()
    quick = clamped("quick", START + 4 * MS, START + 5 * MS, START + 20 * MS)
    honest = press("honest", START + 30 * MS, START + 31 * MS, uncertainty=MS)
    slow = clamped("slow", START - MS, START, START + 100 * MS)
    outcomes = decide_all(engine, quick, honest, slow)
    assert [outcomes[name].rank for name in ("quick", "honest", "slow")] == [1, 2, 3]
    assert Flag.TIE not in outcomes["quick"].flags
    assert Flag.TIE in outcomes["slow"].flags


@pytest.mark.parametrize("rule", [TieRule.EARLIEST, TieRule.HOST])
def test_a_press_made_before_a_clamped_press_claims_is_no_tie_with_it(rule: TieRule) -> None:
    """Its span reaches back to its claim, not beyond: an honest press 30 ms before that claim
    wins outright, and with the host's tie rule the floor is not held for the host."""
    engine = armed(tie_rule=rule)
    honest = press("honest", START - 30 * MS, START - 29 * MS, uncertainty=MS)
    held_up = clamped("held-up", START - MS, START, START + 40 * MS)
    results = decide_all(engine, honest, held_up)
    assert results["honest"].rank == 1
    assert not results["honest"].flags
    floor = engine.floor()
    assert floor is not None
    assert floor[0] == "honest"


def test_a_press_after_the_decision_is_flagged_late_past_a_clamped_one() -> None:
    """A clamped press ranked after the decision, its span from before the winner to long after,
    is no reason to stop calling a late press late: that press was stamped clearly before the
    winner, and late is judged against the ranked press placed latest, not ranked latest."""
    engine = armed()
    winner = press("winner", START + 100 * MS, START + 101 * MS, uncertainty=MS)
    engine.press(winner, winner.arrival_ns, 10 * MS)
    assert decided(engine.tick(START + 110 * MS)) is not None
    held_up = clamped("held-up", START + 89 * MS, START + 90 * MS, START + 200 * MS)
    assert answers(engine.press(held_up, held_up.arrival_ns))["held-up"].rank == 2
    late = press("late", START + 95 * MS, START + 300 * MS, uncertainty=MS)
    outcome = answers(engine.press(late, late.arrival_ns))["late"]
    assert outcome.rank == 3
    assert Flag.LATE in outcome.flags


@pytest.mark.parametrize("winner_clamped", [True, False], ids=["clamped winner", "clamped second"])
def test_a_press_made_before_a_ranked_clamped_press_arrived_is_flagged_late(
    winner_clamped: bool,
) -> None:
    """Decided without it, a press made before a ranked clamped press arrived would have been
    ranked ahead of it: it comes in after the decision, is ranked last, and is flagged late for
    the host, as any press made earlier than one already ranked."""
    engine = armed()
    ranked = [clamped("liar", START + MS, START + 10 * MS, START + 60 * MS)]
    if not winner_clamped:
        ranked.insert(0, press("winner", START + 5 * MS, START + 6 * MS, uncertainty=MS))
    decided_first = decide_all(engine, *ranked)
    assert decided_first["liar"].rank == len(ranked)
    honest = press("honest", START + 55 * MS, START + 90 * MS, uncertainty=MS)
    outcome = answers(engine.press(honest, honest.arrival_ns))["honest"]
    assert outcome.rank == len(ranked) + 1
    assert Flag.LATE in outcome.flags
    # One made after the clamped press arrived is not.
    after = press("after", START + 61 * MS, START + 95 * MS, uncertainty=MS)
    assert Flag.LATE not in answers(engine.press(after, after.arrival_ns))["after"].flags


def test_a_press_after_a_clamped_one_arrived_is_not_late_at_negative_hub_times() -> None:
    """Hub times before the clock's zero come back in a replay after a reboot (each entry moved
    by the same shift): the latest arrival ranked by it is a time like any other."""
    engine = RoundEngine(Rules())
    base = -10_000 * MS
    engine.arm(base, lead_ns=0)
    alone = clamped("alone", base + MS, base + 10 * MS, base + 60 * MS)
    assert decide_all(engine, alone)["alone"].rank == 1
    after = press("after", base + 100 * MS, base + 130 * MS, uncertainty=MS)
    outcome = answers(engine.press(after, after.arrival_ns))["after"]
    assert outcome.rank == 2
    assert Flag.LATE not in outcome.flags
