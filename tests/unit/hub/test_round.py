"""The round engine, driven with explicit timestamps (all in hub nanoseconds)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.match import EndMatch, MatchEngine
from hub.round import (
    Acknowledge,
    Answer,
    Arm,
    AssignTeam,
    Event,
    Outcome,
    PhaseChanged,
    PressIn,
    RoundEngine,
    Rules,
    TieRule,
    _SeenPresses,
)
from wire.enums import Flag, Phase

MS = 1_000_000
S = 1_000 * MS


def press(
    player: str,
    at_ms: float,
    arrival_ms: float | None = None,
    press_id: str | None = None,
    uncertainty_ms: float = 0.0,
    synced: bool = True,
) -> PressIn:
    at = round(at_ms * MS)
    arrival = at if arrival_ms is None else round(arrival_ms * MS)
    return PressIn(
        player=player,
        press_id=press_id or f"{player}-{at_ms}",
        at_ns=at,
        arrival_ns=arrival,
        uncertainty_ns=round(uncertainty_ms * MS),
        synced=synced,
    )


def answers(events: list[Event]) -> dict[str, Outcome]:
    """The outcome each player is told, by player (the last one if several)."""
    return {e.outcome.press.player: e.outcome for e in events if isinstance(e, Answer)}


def phases(events: list[Event]) -> list[Phase]:
    return [e.phase for e in events if isinstance(e, PhaseChanged)]


def armed_engine(**rules: object) -> RoundEngine:
    """An engine armed at t=0 with the release at t=0 unless the rules say otherwise."""
    engine = RoundEngine(Rules(**rules))  # type: ignore[arg-type]
    engine.arm(0)
    return engine


# --- ranking, reaction times, deltas ---------------------------------------------------------


def test_ranks_by_press_time_not_arrival() -> None:
    engine = armed_engine()
    # Bob's press arrives first but was made later than Alice's, which is still in flight.
    first = engine.press(press("bob", 30, arrival_ms=31), now=31 * MS, horizon_ns=50 * MS)
    assert first == [Acknowledge("bob", "bob-30")]
    assert engine.phase is Phase.ARMED
    second = engine.press(press("alice", 20, arrival_ms=45), now=45 * MS, horizon_ns=50 * MS)
    assert second == [Acknowledge("alice", "alice-20")]
    assert engine.next_deadline == 70 * MS  # the earliest press + the horizon

    assert engine.tick(70 * MS - 1) == []
    events = engine.tick(70 * MS)
    assert phases(events) == [Phase.DECIDED]
    told = answers(events)
    assert told["alice"].rank == 1
    assert told["bob"].rank == 2
    assert told["alice"].reaction_ns == 20 * MS
    assert told["bob"].reaction_ns == 30 * MS
    assert told["alice"].behind_ns == 0
    assert told["bob"].behind_ns == 10 * MS
    assert engine.current is not None
    assert engine.current.winner is told["alice"]
    assert engine.current.adjudication_wait_ns == 70 * MS - 31 * MS


def test_reaction_time_counts_from_the_release_not_the_arm() -> None:
    engine = RoundEngine(Rules(release_lead_ns=100 * MS))
    (changed,) = engine.arm(5 * MS)
    assert isinstance(changed, PhaseChanged)
    assert changed.release_ns == 105 * MS
    told = answers(engine.press(press("alice", 342.5), now=343 * MS))
    assert told["alice"].rank == 1
    assert told["alice"].reaction_ns == round(237.5 * MS)


def test_decides_at_once_when_the_horizon_has_passed() -> None:
    engine = armed_engine()
    events = engine.press(press("alice", 10, arrival_ms=20), now=20 * MS, horizon_ns=5 * MS)
    assert phases(events) == [Phase.DECIDED]
    assert answers(events)["alice"].rank == 1
    assert engine.next_deadline is None


def test_adjudication_wait_is_capped_from_the_first_arrival() -> None:
    engine = armed_engine(adjudication_cap_ns=100 * MS)
    engine.press(press("alice", 10, arrival_ms=20), now=20 * MS, horizon_ns=10 * S)
    assert engine.next_deadline == 120 * MS
    # An earlier-stamped press pulls the deadline in (earliest press + horizon), never out.
    engine.press(press("bob", 5, arrival_ms=30), now=30 * MS, horizon_ns=50 * MS)
    assert engine.next_deadline == 55 * MS
    engine.press(press("carol", 40, arrival_ms=50), now=50 * MS, horizon_ns=10 * S)
    assert engine.next_deadline == 55 * MS
    told = answers(engine.tick(55 * MS))
    assert [told[p].rank for p in ("bob", "alice", "carol")] == [1, 2, 3]
    assert told["carol"].behind_ns == 35 * MS


# --- early presses and lockout -----------------------------------------------------------------


def test_early_press_locks_out_until_the_next_arm() -> None:
    engine = RoundEngine(Rules(release_lead_ns=100 * MS))
    engine.arm(0)
    early = answers(engine.press(press("alice", 50), now=50 * MS))["alice"]
    assert early.rank is None
    assert early.flags == {Flag.EARLY}
    assert early.lockout_ns is None
    _, locked = engine.release_for("alice")
    assert locked
    again = answers(engine.press(press("alice", 200), now=200 * MS))["alice"]
    assert again.flags == {Flag.LOCKED}
    assert again.rank is None
    told = answers(engine.press(press("bob", 210), now=210 * MS))
    assert told["bob"].rank == 1  # the locked-out press did not take first place
    assert engine.current is not None
    assert [o.press.player for o in engine.current.refused] == ["alice", "alice"]

    engine.arm(1 * S)  # the next arm lifts the lockout
    assert engine.release_for("alice") == (1 * S + 100 * MS, False)
    told = answers(engine.press(press("alice", 1200), now=1200 * MS))
    assert told["alice"].rank == 1


def test_press_while_idle_is_early_for_the_coming_round() -> None:
    engine = RoundEngine(Rules())
    early = answers(engine.press(press("alice", 10), now=10 * MS))["alice"]
    assert early.flags == {Flag.EARLY}
    assert early.round == 1
    engine.arm(20 * MS)
    assert engine.current is not None
    assert [o.press.press_id for o in engine.current.refused] == ["alice-10"]
    locked = answers(engine.press(press("alice", 30), now=30 * MS))["alice"]
    assert locked.flags == {Flag.LOCKED}
    assert answers(engine.press(press("bob", 40), now=40 * MS))["bob"].rank == 1


def test_timed_lockout_ends_and_restarts_on_another_early_press() -> None:
    engine = RoundEngine(Rules(release_lead_ns=1 * S, lockout_ns=250 * MS))
    engine.arm(0)
    first = answers(engine.press(press("alice", 800), now=800 * MS))["alice"]
    assert first.flags == {Flag.EARLY}
    assert first.lockout_ns == 250 * MS
    # A second early press restarts the lockout: 950 + 250 = 1200 instead of 1050.
    answers(engine.press(press("alice", 950), now=950 * MS))
    locked = answers(engine.press(press("alice", 1100), now=1100 * MS))["alice"]
    assert locked.flags == {Flag.LOCKED}
    assert locked.rank is None
    free = answers(engine.press(press("alice", 1200), now=1200 * MS))["alice"]
    assert free.rank == 1
    assert free.reaction_ns == 200 * MS


# --- repeats, duplicates, late presses ---------------------------------------------------------


def test_repeat_is_answered_but_not_counted() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10, press_id="a1"), now=10 * MS)
    engine.press(press("bob", 20, press_id="b1"), now=20 * MS)
    events = engine.press(press("alice", 30, press_id="a2"), now=30 * MS)
    assert events[0] == Acknowledge("alice", "a2")
    repeat = answers(events)["alice"]
    assert Flag.REPEAT in repeat.flags
    assert repeat.rank == 1  # the answer repeats the counted result
    assert not repeat.counted
    assert engine.current is not None
    assert [o.press.press_id for o in engine.current.ranked] == ["a1", "b1"]
    assert [o.press.press_id for o in engine.current.refused] == ["a2"]


def test_a_repeat_counted_but_not_listed_is_never_counted_in_a_later_round() -> None:
    """A player's third press of a round, a repeat like the second, is counted (not listed).
    Re-sent after a reconnect into the next round, unsynced (placed at its arrival), it must be
    answered as the repeat it was, not judged afresh there, where it would count."""
    engine = armed_engine()
    engine.press(press("alice", 10, press_id="a1"), now=10 * MS)
    engine.press(press("alice", 20, press_id="a2"), now=20 * MS)
    third = press("alice", 30, press_id="a3")
    engine.press(third, now=30 * MS)
    assert engine.current is not None
    assert [o.press.press_id for o in engine.current.refused] == ["a2"]
    assert engine.current.more_refused == 1
    engine.reset(40 * MS)
    engine.arm(50 * MS)
    resent = PressIn("alice", "a3", 60 * MS, 60 * MS, synced=False)
    events = engine.press(resent, now=60 * MS)
    told = answers(events)["alice"]
    assert (told.press.press_id, told.round, Flag.REPEAT in told.flags) == ("a3", 1, True)
    assert engine.current is not None
    assert engine.current.ranked == []  # nothing counts in round 2


def test_repeat_during_adjudication_is_answered_at_the_decision() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10, press_id="a1"), now=10 * MS, horizon_ns=100 * MS)
    assert engine.press(press("alice", 15, press_id="a2"), now=15 * MS, horizon_ns=100 * MS) == [
        Acknowledge("alice", "a2")
    ]
    events = engine.tick(110 * MS)
    told = [e.outcome for e in events if isinstance(e, Answer)]
    assert [(o.press.press_id, o.rank, Flag.REPEAT in o.flags) for o in told] == [
        ("a1", 1, False),
        ("a2", 1, True),
    ]


def test_the_same_press_id_is_never_counted_twice() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10, press_id="a1"), now=10 * MS, horizon_ns=100 * MS)
    # Re-sent while still being adjudicated (a reconnect): acknowledged again, nothing else.
    assert engine.press(press("alice", 10, press_id="a1"), now=20 * MS, horizon_ns=100 * MS) == [
        Acknowledge("alice", "a1")
    ]
    first = answers(engine.tick(110 * MS))["alice"]
    # Re-sent after the decision: the same answer, still one counted press.
    events = engine.press(press("alice", 10, press_id="a1"), now=200 * MS)
    assert events == [Acknowledge("alice", "a1"), Answer(first)]
    assert engine.current is not None
    assert len(engine.current.ranked) == 1
    assert engine.current.refused == []
    # Even in a later round the old press id is recognised, not counted afresh.
    engine.arm(1 * S)
    again = engine.press(press("alice", 1100, press_id="a1"), now=1100 * MS)
    assert again == [Acknowledge("alice", "a1"), Answer(first)]
    assert engine.current.ranked == []


def test_late_press_is_recorded_and_flagged_without_overturning_the_winner() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10), now=10 * MS)  # horizon 0: decided at once
    engine.press(press("bob", 50), now=50 * MS)
    assert engine.phase is Phase.DECIDED
    late = answers(engine.press(press("carol", 5, arrival_ms=60), now=60 * MS))["carol"]
    assert late.rank == 3
    assert Flag.LATE in late.flags
    assert late.behind_ns == 0
    assert engine.current is not None
    assert engine.current.winner is not None
    assert engine.current.winner.press.player == "alice"
    # Stamped before Bob's ranked press (though after Carol's late one): late as well.
    also_late = answers(engine.press(press("dave", 20, arrival_ms=70), now=70 * MS))["dave"]
    assert also_late.rank == 4
    assert Flag.LATE in also_late.flags
    assert also_late.behind_ns == 10 * MS
    slow = answers(engine.press(press("erin", 80), now=80 * MS))["erin"]
    assert slow.rank == 5
    assert Flag.LATE not in slow.flags


# --- ties --------------------------------------------------------------------------------------


def test_presses_within_their_combined_uncertainty_are_a_tie_broken_by_arrival() -> None:
    engine = armed_engine(tie_rule=TieRule.ARRIVAL)  # a choice; the default is the estimate
    engine.press(press("alice", 10, arrival_ms=20, uncertainty_ms=2), now=20 * MS, horizon_ns=S)
    engine.press(press("bob", 11, arrival_ms=15, uncertainty_ms=2), now=25 * MS, horizon_ns=S)
    told = answers(engine.tick(1010 * MS))
    assert told["bob"].rank == 1  # reached the hub first
    assert told["alice"].rank == 2
    assert Flag.TIE in told["alice"].flags
    assert Flag.TIE in told["bob"].flags
    assert told["alice"].behind_ns == 0  # never negative, even when the tie rule reorders


def test_timestamp_tie_rule_trusts_the_timestamps() -> None:
    engine = armed_engine(tie_rule=TieRule.TIMESTAMP)
    engine.press(press("alice", 10, arrival_ms=20, uncertainty_ms=2), now=20 * MS, horizon_ns=S)
    engine.press(press("bob", 11, arrival_ms=15, uncertainty_ms=2), now=25 * MS, horizon_ns=S)
    told = answers(engine.tick(1010 * MS))
    assert told["alice"].rank == 1
    assert told["bob"].rank == 2
    assert Flag.TIE in told["bob"].flags
    assert told["bob"].behind_ns == 1 * MS


def test_presses_further_apart_than_their_uncertainty_are_no_tie() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10, arrival_ms=20, uncertainty_ms=0.4), now=20 * MS, horizon_ns=S)
    engine.press(press("bob", 11, arrival_ms=15, uncertainty_ms=0.6), now=25 * MS, horizon_ns=S)
    told = answers(engine.tick(1010 * MS))
    assert told["alice"].rank == 1
    assert told["alice"].flags == frozenset()
    assert told["bob"].flags == frozenset()


def test_press_after_the_decision_within_a_ranked_press_uncertainty_is_a_tie() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10), now=10 * MS)  # decided at once
    engine.press(press("bob", 50, uncertainty_ms=5), now=50 * MS)
    engine.press(press("carol", 5, arrival_ms=60), now=60 * MS)  # late
    # Dave's press is within Bob's uncertainty: not late, but a tie with Bob, although the
    # press ranked just before his is Carol's.
    dave = answers(engine.press(press("dave", 47, arrival_ms=70), now=70 * MS))["dave"]
    assert dave.rank == 4
    assert dave.flags == {Flag.TIE}


def test_unsynced_press_is_flagged() -> None:
    engine = armed_engine()
    told = answers(engine.press(press("alice", 10, synced=False), now=10 * MS))
    assert told["alice"].flags == {Flag.UNSYNCED}


# --- reset, close, stale, host-less ------------------------------------------------------------


def test_reset_decides_waiting_presses_and_goes_idle() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10), now=10 * MS, horizon_ns=S)
    events = engine.reset(20 * MS)
    assert phases(events) == [Phase.DECIDED, Phase.IDLE]
    assert answers(events)["alice"].rank == 1  # a round cut short never swallows a press
    assert engine.phase is Phase.IDLE
    assert engine.next_deadline is None
    assert [r.number for r in engine.history] == [1]
    assert engine.reset(30 * MS) == []  # already idle
    after = answers(engine.press(press("bob", 40), now=40 * MS))["bob"]
    assert after.flags == {Flag.EARLY}


def test_close_stops_taking_presses_but_keeps_the_round() -> None:
    engine = armed_engine(auto_arm_after_ns=3 * S)
    engine.press(press("alice", 10), now=10 * MS, horizon_ns=S)
    events = engine.close(20 * MS)
    assert phases(events) == [Phase.DECIDED, Phase.CLOSED]
    assert engine.phase is Phase.CLOSED
    assert engine.next_deadline is None  # closing also stops host-less re-arming
    # A press while closed does not count in this round: it is early for the next one.
    refused = answers(engine.press(press("bob", 30), now=30 * MS))["bob"]
    assert refused.flags == {Flag.EARLY}
    assert refused.rank is None
    assert refused.round == 2
    assert engine.current is not None
    assert engine.current.number == 1
    assert [o.press.player for o in engine.current.ranked] == ["alice"]
    assert engine.close(40 * MS) == []
    assert phases(engine.arm(50 * MS)) == [Phase.ARMED]
    assert engine.release_for("bob") == (50 * MS, True)  # locked out of round 2


def test_press_stamped_in_an_earlier_round_is_stale() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10), now=10 * MS)
    engine.arm(1 * S)
    # Made during round 1, delivered only now (say after a reconnect): not round 2's.
    stale = answers(engine.press(press("bob", 500, arrival_ms=1100), now=1100 * MS))["bob"]
    assert stale.flags == {Flag.STALE}
    assert stale.round == 2
    assert stale.rank is None
    assert answers(engine.press(press("bob", 1050), now=1100 * MS))["bob"].rank == 1


def test_hostless_mode_rearms_after_each_decision() -> None:
    engine = RoundEngine(Rules(auto_arm_after_ns=3 * S))
    engine.arm(0)
    engine.press(press("alice", 10), now=10 * MS)
    assert engine.phase is Phase.DECIDED
    assert engine.next_deadline == 10 * MS + 3 * S
    assert engine.tick(10 * MS + 3 * S - 1) == []
    events = engine.tick(10 * MS + 3 * S)
    assert phases(events) == [Phase.ARMED]
    assert engine.number == 2
    # Alice may press again in the new round.
    assert answers(engine.press(press("alice", 3100), now=3100 * MS))["alice"].rank == 1


def test_without_hostless_mode_a_decided_round_stays_on_display() -> None:
    engine = armed_engine()
    engine.press(press("alice", 10), now=10 * MS)
    assert engine.next_deadline is None
    assert engine.tick(3600 * S) == []
    assert engine.phase is Phase.DECIDED


# --- properties over arbitrary event sequences -------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str  # arm, reset, close, tick, press
    advance_ns: int
    player: int = 0
    press_id: int = 0
    back_ns: int = 0
    uncertainty_ns: int = 0
    horizon_ns: int = 0


ops = st.builds(
    Op,
    kind=st.sampled_from(["arm", "reset", "close", "tick", "press", "press", "press", "press"]),
    advance_ns=st.integers(0, 400 * MS),
    player=st.integers(0, 4),
    press_id=st.integers(0, 5),
    back_ns=st.integers(0, 600 * MS),
    uncertainty_ns=st.integers(0, 30 * MS),
    horizon_ns=st.integers(0, 800 * MS),
)
rule_sets = st.builds(
    Rules,
    release_lead_ns=st.sampled_from([0, 100 * MS]),
    lockout_ns=st.sampled_from([None, 250 * MS]),
    tie_rule=st.sampled_from(list(TieRule)),
    adjudication_cap_ns=st.sampled_from([50 * MS, 500 * MS]),
    auto_arm_after_ns=st.sampled_from([None, 0, 300 * MS]),
    history_rounds=st.sampled_from([1, 2, 50]),  # short ones forget press ids within a program
)


@settings(max_examples=250, deadline=None)
@given(rules=rule_sets, program=st.lists(ops, max_size=60))
def test_any_sequence_of_events_keeps_the_round_invariants(rules: Rules, program: list[Op]) -> None:
    engine = RoundEngine(rules)
    now = 0
    told: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    # The round the engine was in when each answer was given: a press id is remembered for as
    # long as its round is in the history (the memory must not grow with the night).
    when: dict[tuple[str, str], list[int]] = defaultdict(list)
    pressed: set[tuple[str, str]] = set()
    stamps: dict[tuple[str, str], int] = {}
    for op in program:
        now += op.advance_ns
        if op.kind == "press":
            key = (f"p{op.player}", f"id{op.press_id}")
            pressed.add(key)
            # A re-sent press carries the stamp it was made with.
            stamp = stamps.setdefault(key, now - op.back_ns)
            incoming = PressIn(key[0], key[1], stamp, now, op.uncertainty_ns)
            events = engine.press(incoming, now, op.horizon_ns)
            assert events[0] == Acknowledge(*key), "every press is acknowledged at once"
        elif op.kind == "tick":
            events = engine.tick(now)
        else:
            events = getattr(engine, op.kind)(now)
        for event in events:
            if isinstance(event, Answer):
                o = event.outcome
                told[(o.press.player, o.press.press_id)].append(o)
                when[(o.press.player, o.press.press_id)].append(engine.number)
        deadline = engine.next_deadline
        assert deadline is None or engine.phase in (Phase.ARMED, Phase.DECIDED)
    events = engine.reset(now + 1)
    for event in events:
        if isinstance(event, Answer):
            o = event.outcome
            told[(o.press.player, o.press.press_id)].append(o)
            when[(o.press.player, o.press.press_id)].append(engine.number)

    records = list(engine.history)
    if engine.current is not None and engine.current not in records:
        records.append(engine.current)
    counted: list[tuple[str, str]] = []
    for record in records:
        ranks = [o.rank for o in record.ranked]
        assert ranks == list(range(1, len(ranks) + 1)), "ranks are 1..n without gaps"
        firsts = [o for o in record.ranked if o.rank == 1]
        assert len(firsts) <= 1, "at most one first place per round"
        players = [o.press.player for o in record.ranked]
        assert len(players) == len(set(players)), "one counted press per player per round"
        for o in record.ranked:
            assert o.behind_ns is not None
            assert o.behind_ns >= 0, "deltas are never negative"
            assert o.round == record.number
            assert o.counted
        for o in record.refused:
            assert not o.counted
        plain = [o.press.at_ns for o in record.ranked if not o.flags & {Flag.LATE, Flag.TIE}]
        assert plain == sorted(plain), "without a tie or a late flag, rank follows press time"
        counted.extend((o.press.player, o.press.press_id) for o in record.ranked)
    assert len(counted) == len(set(counted)), "each (player, press id) is counted at most once"

    assert set(told) == pressed, "every press is answered by the end"
    for key, outcomes in told.items():
        # A counted press is told the same whenever it is re-sent while its round is remembered;
        # a refused one stays refused (a player's later refusals of one kind are not remembered,
        # so a re-send of one is judged afresh, and never counted).
        window = rules.history_rounds
        remembered = [
            o
            for o, number in zip(outcomes, when[key], strict=True)
            if number < when[key][0] + window
        ]
        if outcomes[0].counted:
            assert all(o == outcomes[0] for o in remembered), f"{key} was told different things"
        else:
            assert not any(o.counted for o in outcomes), f"{key} was refused, then counted"
        assert all(o.behind_ns is None or o.behind_ns >= 0 for o in outcomes)
    first_places: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for key, outcomes in told.items():
        if outcomes[0].rank == 1 and outcomes[0].counted:
            first_places[outcomes[0].round].add(key)
    assert all(len(keys) == 1 for keys in first_places.values()), "one winner told per round"


def test_players_only_drop_out_of_the_ranking_while_its_key_stays() -> None:
    """What lets the adjudication horizon skip players for good within a round: presses and
    ticks only take players out; anything else that could let one back in changes the key."""
    engine = armed_engine()
    key = engine.ranking_key
    assert engine.may_still_rank("alice")
    engine.press(press("alice", 10, press_id="a1"), now=10 * MS, horizon_ns=100 * MS)
    assert not engine.may_still_rank("alice")  # counted: another press would be a repeat
    assert engine.may_still_rank("bob")
    assert engine.ranking_key == key
    engine.apply(AssignTeam("bob", "red"), now=20 * MS)
    assert engine.ranking_key != key
    key = engine.ranking_key
    engine.tick(200 * MS)  # decided: another phase
    assert engine.ranking_key != key
    engine.apply(Arm(), now=300 * MS)
    assert engine.may_still_rank("alice")  # a new round: everyone may press again


def test_a_new_match_never_brings_back_a_ranking_key_of_the_state_before() -> None:
    """A match starts the rounds over (round 1 again): were the key to come back too, the
    horizon would keep skipping a player counted in the earlier round of that number, and the
    new round would not wait for its press."""
    engine = MatchEngine(Rules())
    engine.apply(Arm(), now=0)
    keys = {engine.ranking_key}
    engine.apply(EndMatch(), now=10 * MS)
    engine.apply(Arm(), now=20 * MS)
    assert engine.ranking_key not in keys


class _Watched:
    """An outcome stand-in that counts how often its round is read."""

    reads = 0

    def __init__(self, number: int) -> None:
        self._round = number

    @property
    def round(self) -> int:
        _Watched.reads += 1
        return self._round


def test_forgetting_the_oldest_round_looks_only_at_its_own_press_ids() -> None:
    """An arm forgets the round leaving the history; a room mashing through long rounds holds
    tens of thousands of ids, and looking at every one of them held the loop at every arm."""
    seen = _SeenPresses()
    for number in range(1, 11):
        for i in range(100):
            seen[(f"p{i % 20}", f"r{number}-{i}")] = _Watched(number)  # type: ignore[assignment]
    seen[("p0", "waiting")] = None  # a press still waiting for its decision
    seen[("p1", "r1-1")] = _Watched(5)  # type: ignore[assignment]  # judged again, in round 5
    _Watched.reads = 0
    seen.forget_before(2)
    assert _Watched.reads <= 100  # round 1's ids, not the 900 kept
    assert ("p0", "r1-0") not in seen
    assert ("p1", "r1-1") in seen  # its outcome is round 5's now
    assert ("p0", "waiting") in seen
    assert ("p0", "r2-0") in seen
    assert len(seen) == 1 + 1 + 900
    seen.forget_before(6)
    assert ("p1", "r1-1") not in seen
    assert ("p0", "r5-0") not in seen
    assert ("p0", "r6-0") in seen
    assert len(seen) == 1 + 500
