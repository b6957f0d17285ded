"""A press in hub time: converted through the node's clock, never later than its arrival, and
the horizon an earlier press could still be in flight."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clock import FilterSettings, SyncSample
from hub.core.presses import (
    INPUT_UNCERTAINTY_NS,
    UNKNOWN_RTT_UNCERTAINTY_NS,
    Horizon,
    Trust,
    node_press,
    tutorial_press,
    tutorial_uncertainty,
)
from hub.core.roster import Roster
from wire.enums import InputKind

MS = 1_000_000
OFFSET = 3_000 * MS


def synced_roster() -> Roster:
    roster = Roster(FilterSettings())
    player = roster.node("n", None, InputKind.GPIO)
    player.link = 1
    for i in range(5):  # 1 ms each way, the node's clock 3 s ahead
        t0 = i * 20 * MS
        player.clock.add(SyncSample(t0, t0 + MS + OFFSET, t0 + MS + OFFSET, t0 + 2 * MS))
    return roster


def test_a_synced_press_is_placed_by_the_clock_and_never_after_its_arrival() -> None:
    roster = synced_roster()
    player = roster.players["n"]
    press = node_press(player, "n.1", 500 * MS + OFFSET, now=510 * MS)
    assert abs(press.at_ns - 500 * MS) <= press.uncertainty_ns
    assert press.uncertainty_ns >= INPUT_UNCERTAINTY_NS[InputKind.GPIO]
    assert press.raw_ns == 500 * MS + OFFSET
    future = node_press(player, "n.2", 900 * MS + OFFSET, now=600 * MS)
    assert future.at_ns == 600 * MS  # a claim later than its arrival is its arrival


def test_a_clamped_press_spans_its_claim_to_its_arrival_and_is_ranked_by_its_arrival() -> None:
    """Lately its link took up to 40 ms (a slow pong): a press claiming 51 ms before its arrival
    is 1 ms beyond what the link and the allowance explain. Placed at the earliest instant they
    do, it may have been made at its claim or as late as its arrival, and no earlier than its
    claim: its span says so, and no more (an honest press made before that claim is no tie)."""
    roster = synced_roster()
    player = roster.players["n"]
    player.pings.add(40 * MS)
    trust = Trust()  # the allowance: 10 ms
    press = node_press(player, "n.1", 459 * MS + OFFSET, now=510 * MS, trust=trust)
    assert press.claimed_ns is not None
    assert press.at_ns == 510 * MS - 40 * MS - trust.margin_ns
    assert press.rank_ns == press.high_ns == 510 * MS
    stated = press.uncertainty_ns - (press.at_ns - press.claimed_ns)  # the clock's and input's
    assert 0 < stated < MS
    assert press.low_ns == press.claimed_ns - stated


def test_an_unsynced_press_is_placed_at_arrival_and_says_so() -> None:
    roster = Roster(FilterSettings())
    player = roster.node("m", None, InputKind.BROWSER)
    press = node_press(player, "m.1", 123, now=7 * MS)
    assert (press.at_ns, press.synced) == (7 * MS, False)
    assert (
        press.uncertainty_ns == UNKNOWN_RTT_UNCERTAINTY_NS + INPUT_UNCERTAINTY_NS[InputKind.BROWSER]
    )


def test_a_tutorial_buzz_is_half_its_round_trip_before_arrival() -> None:
    roster = Roster(FilterSettings())
    client = roster.tutorial()
    client.rtt_ns = 8 * MS
    press = tutorial_press(client, now=100 * MS)
    assert press.at_ns == 96 * MS
    assert (
        press.uncertainty_ns
        == tutorial_uncertainty(8 * MS)
        == 4 * MS + INPUT_UNCERTAINTY_NS[InputKind.TEXT]
    )


def test_the_horizon_is_the_slowest_online_upload_plus_the_margin_under_the_cap() -> None:
    roster = synced_roster()
    horizon = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    upload = roster.players["n"].clock.estimate.upload_ns  # type: ignore[union-attr]
    assert horizon.value(roster, now=0) == upload + 2 * MS
    client = roster.tutorial()
    client.link, client.rtt_ns = 2, 40 * MS
    assert horizon.value(roster, now=1) == upload + 2 * MS  # cached until stale
    horizon.stale()
    assert horizon.value(roster, now=2) == 20 * MS + 2 * MS
    client.rtt_ns = 2_000 * MS
    horizon.stale()
    assert horizon.value(roster, now=3) == 500 * MS


def test_the_horizon_leaves_out_players_whose_presses_can_no_longer_be_ranked() -> None:
    roster = synced_roster()
    horizon = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    upload = roster.players["n"].clock.estimate.upload_ns  # type: ignore[union-attr]
    client = roster.tutorial()
    client.link, client.rtt_ns = 2, 40 * MS
    assert horizon.value(roster, now=0) == 20 * MS + 2 * MS
    # the tutorial client is locked out (or already counted): the node's link is what counts
    out = {client.id}
    assert horizon.value(roster, 1, lambda p: p not in out, round_key=1) == upload + 2 * MS
    out.add("n")
    assert horizon.value(roster, 2, lambda p: p not in out, round_key=1) == 2 * MS
    # another round (or an input that can let players back in): everyone counts again
    out.clear()
    assert horizon.value(roster, 3, lambda p: p not in out, round_key=2) == 20 * MS + 2 * MS


class Counted:
    """Who is counted in the round, and how often the horizon asked about anyone."""

    def __init__(self) -> None:
        self.players: set[str] = set()
        self.asked = 0

    def may_rank(self, player: str) -> bool:
        self.asked += 1
        return player not in self.players


def test_a_burst_of_presses_asks_about_each_player_about_once() -> None:
    """A thousand players pressing in one round: each press would otherwise walk past every
    player already counted, a million questions for the burst."""
    roster = Roster(FilterSettings())
    for i in range(1000):
        client = roster.tutorial()
        client.link, client.rtt_ns = i + 1, (i + 1) * 10_000  # the last to join, the slowest
    horizon = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    counted = Counted()
    by_delay = sorted(roster.online(), key=lambda p: p.rtt_ns or 0, reverse=True)
    for player in by_delay:  # the slowest links press first: the worst order for the search
        expected = (player.rtt_ns or 0) // 2 + 2 * MS
        assert horizon.value(roster, 0, counted.may_rank, round_key=7) == expected
        counted.players.add(player.id)
    assert counted.asked <= 2 * 1000


def test_a_burst_of_first_presses_asks_about_each_player_about_once() -> None:
    """A room of tutorial clients whose first ``buzz`` is their join: each joins (its round
    trip already measured) and at once presses, in no order of delay."""
    roster = Roster(FilterSettings())
    horizon = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    counted = Counted()
    horizon.value(roster, 0, counted.may_rank, round_key=7)
    for i in random.Random(4).sample(range(1000), 1000):
        client = roster.tutorial()
        client.link, client.rtt_ns = i + 1, (i + 1) * 10_000
        horizon.update(client, 0)
        waiting = (p for p in roster.online() if p.id not in counted.players)
        longest = max((p.rtt_ns or 0) // 2 for p in waiting)
        assert horizon.value(roster, 0, counted.may_rank, round_key=7) == longest + 2 * MS
        counted.players.add(client.id)
    assert counted.asked <= 2 * 1000


def test_delays_that_keep_moving_between_presses_leave_no_pile_behind() -> None:
    """An idle hub's syncs and pongs move its nodes' delays all night, and no press comes to
    clear the entries they leave behind."""
    roster = Roster(FilterSettings())
    clients = [roster.tutorial() for _ in range(10)]
    for link, client in enumerate(clients, 1):
        client.link, client.rtt_ns = link, MS
    horizon = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    horizon.value(roster, 0, lambda player: True, round_key=1)
    for i in range(10_000):
        client = clients[i % 10]
        client.rtt_ns = (i % 7 + 1) * MS
        horizon.update(client, 0)
        assert len(horizon._heap) <= 2 * len(clients) + 65
    longest = max(c.rtt_ns or 0 for c in clients) // 2
    assert horizon.value(roster, 1, lambda player: True, round_key=1) == longest + 2 * MS


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "leave", "pong", "out", "press"]),
            st.integers(0, 7),  # which client
            st.integers(0, 60),  # a round trip, ms
        ),
        max_size=60,
    )
)
def test_players_placed_one_by_one_give_the_horizon_a_full_recount_would(
    script: list[tuple[str, int, int]],
) -> None:
    """Joins, leaves and round trips that move are placed one player at a time (a burst of a
    thousand tutorial clients joining with their first buzz would otherwise recount everyone
    for every press); whatever the order, the horizon is the one counted from scratch."""
    roster = Roster(FilterSettings())
    clients = [roster.tutorial() for _ in range(8)]
    placed = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
    out: set[str] = set()
    key = 0
    for now, (action, which, rtt_ms) in enumerate(script):
        client = clients[which]
        if action == "join":
            client.link, client.rtt_ns = which + 1, rtt_ms * MS
        elif action == "leave":
            client.link = None
        elif action == "pong":
            client.rtt_ns = rtt_ms * MS
        elif action == "out":
            out.add(client.id)  # counted in this round, or locked out of it
        else:
            key += 1  # another round: everyone may be ranked again
            out.clear()
        placed.update(client, now)
        recount = Horizon(margin_ns=2 * MS, cap_ns=500 * MS)
        may_rank = lambda p: p not in out  # noqa: E731
        expected = recount.value(roster, now, may_rank, round_key=key)
        assert placed.value(roster, now, may_rank, round_key=key) == expected
