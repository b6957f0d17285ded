"""Fair ranking over real sockets: a real hub, real player nodes, clocks seconds apart, a slow link.

The fairness rules themselves are tested to the nanosecond on a simulated network
(tests/unit/hub/core/test_fairness.py), and measured against an arrival-order server by
``bench/fairness.py``. This is the smoke test that they hold end to end: the firmware's
:class:`firmware.node.Node` with gpiozero's MockFactory pins and an injected clock (this machine's
monotonic clock plus seconds), one node behind the delay proxy with 150 ms each way, the hub in
the test's event loop. A press is made by driving a button pin; the node's own stamp of the edge,
minus its known offset, is the true press instant in hub time.

Every tolerance is one the hub states: a reported gap is right within the two presses'
uncertainties, a clock offset within its bound. The presses are 20 ms apart,
far below the slow link's 150 ms and far above what the hub is unsure of on a quiet machine; on a
busy one its uncertainty grows, and the hub must then say so (a tie, a late press): such a round
is played again.

The last test holds the hub's loop on each press, as a busy Pi's would be in a burst: a round is
decided only once every press read before its deadline has been handled (hub/backlog.py).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from firmware.node import Node, Pressed, Released, Resulted, SyncAnswered
from hub.core.events import Armed, Decided, PressTaken, Synced
from hub.embed import RunningHub
from tests.conftest import InProcessHubs, state_of
from tests.e2e.conftest import FakeClockNode
from tests.support.delay_proxy import SLOW_LINK_HUB_CONFIG, Link, ProcessDelayProxy
from tests.support.spans import stated_span
from wire import messages as msg

MS = 1_000_000
ONE_WAY_NS = 150 * MS
GAP_NS = 20 * MS
ROUNDS = 4
SLOW_OFFSET_NS = 3_217 * MS + 123_457  # the slow node's clock reads 3.2 s ahead of the hub's
FAST_OFFSET_NS = -5_008 * MS - 98_765  # the fast node's 5 s behind


def offset_clock(offset_ns: int) -> Any:
    return lambda: time.monotonic_ns() + offset_ns


def press_apart(pins: Any, first: str, second: str, at_ns: int, gap_ns: int) -> None:
    """Press ``first`` (pin driven low) at the hub-clock instant ``at_ns`` and ``second`` at least
    ``gap_ns`` after the first edge really came; sleep most of the way, then spin.

    The pin callbacks stamp the edges in this thread, which competes with the event loop's
    thread for the interpreter lock (a short switch interval keeps the loop from holding it
    across an edge). A busy machine may still delay an edge; the nodes' stamps say when each
    came, and the second never comes less than ``gap_ns`` after the first. The buttons stay
    down (a node counts a press once its line stayed active ``confirm_ms``): :func:`let_go`
    once the nodes have taken the presses.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        _wait_until(at_ns)
        pins.pin(first).drive_low()
        _wait_until(time.monotonic_ns() + gap_ns)
        pins.pin(second).drive_low()
    finally:
        sys.setswitchinterval(interval)


def let_go(pins: Any, *names: str) -> None:
    for name in names:
        pins.pin(name).drive_high()


def _wait_until(instant_ns: int) -> None:
    while (left := instant_ns - time.monotonic_ns()) > 0:
        if left > 2 * MS:
            time.sleep((left - 2 * MS) / 1e9)


@dataclass
class Played:
    slow_true_ns: int  # when each edge was stamped, in hub time (the truth)
    fast_true_ns: int
    slow_raw_ns: int  # the stamp as the slow node took it, in its own clock
    slow: msg.Result  # what each player was told
    fast: msg.Result
    decided: Decided
    round: dict[str, Any]  # the round as the host sees it

    @property
    def true_gap_ns(self) -> int:
        return self.fast_true_ns - self.slow_true_ns

    def row(self, player: str) -> dict[str, Any]:
        return next(r for r in self.round["results"] if r["player"] == player)

    @property
    def conclusive(self) -> bool:
        """Neither press tied, came too late or was clamped (ranked by its arrival, as a busy
        machine may hold a press up longer than its link ever showed): the ranking is by press
        time alone."""
        return not {"tie", "late", "clamped"} & {
            flag for row in self.round["results"] for flag in row["flags"]
        }


async def play_round(hub: RunningHub, slow: Node, fast: Node, pins: Any) -> Played:
    marks = slow.mark(), fast.mark()
    mark = hub.events.mark()
    hub.command(msg.Arm())
    armed = await hub.events.wait_for(Armed, after=mark)
    for node, node_mark in zip((slow, fast), marks, strict=True):
        released = await node.wait_for(Released, lambda e: e.round == armed.round, after=node_mark)
        assert released.synced, f"{node.id} could not light its LED on the release instant"
    start = max(armed.release_ns, time.monotonic_ns()) + 50 * MS
    # The slow-link player presses first; the fast-link player 20 ms later.
    await asyncio.to_thread(press_apart, pins, "GPIO17", "GPIO5", start, GAP_NS)
    slow_press = await slow.wait_for(Pressed, after=marks[0])
    fast_press = await fast.wait_for(Pressed, after=marks[1])
    let_go(pins, "GPIO17", "GPIO5")
    slow_result = (await slow.wait_for(Resulted, after=marks[0])).result
    fast_result = (await fast.wait_for(Resulted, after=marks[1])).result
    decided = await hub.events.wait_for(Decided, lambda e: e.round == armed.round, after=mark)
    round_ = state_of(hub)["round"]
    assert round_["number"] == armed.round
    return Played(
        slow_true_ns=slow_press.at_ns - SLOW_OFFSET_NS,
        fast_true_ns=fast_press.at_ns - FAST_OFFSET_NS,
        slow_raw_ns=slow_press.at_ns,
        slow=slow_result,
        fast=fast_result,
        decided=decided,
        round=round_,
    )


def check_what_the_hub_stated(played: Played) -> None:
    """What holds in every round, conclusive or not: the hub is right within what it states."""
    slow_row, fast_row = played.row("slow"), played.row("fast")
    stated = slow_row["uncertainty_ns"] + fast_row["uncertainty_ns"]
    measured = fast_row["at_ns"] - slow_row["at_ns"]
    assert abs(measured - played.true_gap_ns) <= stated, (measured, played.true_gap_ns, stated)
    # The true gap, and the gap each player was told, are within what the spans allow (a
    # clamped press is timed from its arrival, the latest it may have been made).
    (slow_low, slow_high), (fast_low, fast_high) = stated_span(slow_row), stated_span(fast_row)
    allowed = range(fast_low - slow_high, fast_high - slow_low + 1)
    assert played.true_gap_ns in allowed, (played.true_gap_ns, allowed)
    fast_second = played.fast.rank > played.slow.rank
    behind = (played.fast if fast_second else played.slow).behind_ns
    assert behind is not None
    told = behind if fast_second else -behind  # the gap from slow to fast, as true_gap_ns
    assert told in allowed, (told, allowed)
    # A tie is declared exactly when the spans overlap. A press that came after the decision
    # (on a busy machine the slow link's can take twice its 150 ms) carries the flag alone:
    # the press ranked before it keeps the result it was told.
    tied = slow_low < fast_high and fast_low < slow_high
    first, second = sorted((slow_row, fast_row), key=lambda row: row["rank"])
    in_time = second["arrival_ns"] <= played.round["decided_ns"]
    assert ("tie" in second["flags"]) == tied, (first, second)
    assert ("tie" in first["flags"]) == (tied and in_time), (first, second)
    # Each player heard what the host sees.
    for result, row in ((played.slow, slow_row), (played.fast, fast_row)):
        assert (result.rank, result.flags, result.behind_ns) == (
            row["rank"],
            row["flags"],
            row["behind_ns"],
        )


async def test_a_slow_link_press_made_20_ms_earlier_wins_where_arrival_order_fails(
    run_hub: InProcessHubs, start_node: Any, mock_pins: Any
) -> None:
    hub = await run_hub(SLOW_LINK_HUB_CONFIG)
    link = Link(ONE_WAY_NS / 1e9)
    with ProcessDelayProxy(hub.port, up=link, down=link) as proxy:
        slow = await start_node(
            proxy.url, "slow", clock=offset_clock(SLOW_OFFSET_NS), button_pin="GPIO17", led_pin=""
        )
        fast = await start_node(
            hub.url, "fast", clock=offset_clock(FAST_OFFSET_NS), button_pin="GPIO5", led_pin=""
        )
        # Enough exchanges for the filter to have a choice of good samples on both links.
        await slow.wait_for(SyncAnswered, lambda e: e.seq >= 20, timeout=20)
        await fast.wait_for(SyncAnswered, lambda e: e.seq >= 20, timeout=20)

        for _ in range(ROUNDS):
            played = await play_round(hub, slow, fast, mock_pins)
            check_what_the_hub_stated(played)
            if played.conclusive:
                break
        else:
            pytest.fail(f"every one of {ROUNDS} rounds was a tie or had a late press")
        view = {p["id"]: p for p in state_of(hub)["players"]}

    slow_row, fast_row = played.row("slow"), played.row("fast")
    # The slow-link node pressed first, by at least 20 ms, and is named the winner; the gap
    # reported is the true one within the two presses' stated uncertainties.
    assert played.true_gap_ns >= GAP_NS
    assert (played.slow.rank, played.fast.rank) == (1, 2)
    assert played.decided.winner == "slow"
    assert played.round["winner"] == "slow"
    assert played.fast.behind_ns is not None
    stated = slow_row["uncertainty_ns"] + fast_row["uncertainty_ns"]
    assert abs(played.fast.behind_ns - played.true_gap_ns) <= stated
    # An arrival-order ranking (the classic tutorial's) gets the same round wrong: the fast-link
    # press reached the hub first.
    assert fast_row["arrival_ns"] < slow_row["arrival_ns"]
    # The hub waited for the slow node's press before deciding.
    assert played.decided.wait_ns >= slow_row["arrival_ns"] - fast_row["arrival_ns"]

    # What the host sees, per node: offset, round trip, uncertainty, bound, last sync. The
    # offsets are within the bound each view states (half the fastest round trip: the worst any
    # path can do), and the slow link's round trip and bound show its 150 ms each way.
    for node_id, offset in (("slow", SLOW_OFFSET_NS), ("fast", FAST_OFFSET_NS)):
        assert abs(view[node_id]["offset_ns"] - offset) <= view[node_id]["bound_ns"]
        assert 0 < view[node_id]["uncertainty_ns"] <= view[node_id]["bound_ns"]
        assert view[node_id]["last_sync_ns"] is not None
    assert view["slow"]["rtt_ns"] >= 2 * ONE_WAY_NS
    assert view["slow"]["bound_ns"] >= ONE_WAY_NS
    synced = {e.player: e for e in hub.events.events() if isinstance(e, Synced)}
    assert abs(synced["slow"].offset_ns - SLOW_OFFSET_NS) <= synced["slow"].bound_ns
    # ... and per press: raw and corrected timestamps, arrival, uncertainty, flags.
    assert slow_row["raw_ns"] == played.slow_raw_ns
    assert slow_row["arrival_ns"] - played.slow_true_ns >= ONE_WAY_NS
    assert slow_row["uncertainty_ns"] > 0
    assert slow_row["flags"] == []


# A host arms; the hub waits 20 ms beyond the links' own delays (the presses below are made up
# to 16 ms before they are sent), its cap far off; presses that old are not moved later.
BURST_CONFIG = """
[round]
hostless = false
release_lead_ms = 0
adjudication_margin_ms = 20
adjudication_cap_ms = 3000

[trust]
allowance_ms = 100
"""
BURST_NODES = 6
HANDLING_S = 0.02  # what each press costs the hub here, as a burst on a busy Pi might


async def test_a_burst_the_hub_handles_slower_than_its_horizon_ranks_the_earliest_first(
    run_hub: InProcessHubs,
) -> None:
    """Presses read in one turn of the loop are handled one after another; the earliest made is
    read last, and each takes the hub 20 ms: the round's deadline passes while they wait. It is
    still decided only once the hub has handled every press it had read before the deadline:
    the earliest wins and none is ranked late (a hub that decided on the second press it
    handled named the fifth made the winner)."""
    hub = await run_hub(BURST_CONFIG)
    mark = hub.events.mark()
    hub.command(msg.Arm())  # before the nodes join: their presses come well after the release
    armed = await hub.events.wait_for(Armed, after=mark)
    nodes = [
        await FakeClockNode(hub.url, f"n{index}", f"Node {index}").join()
        for index in range(BURST_NODES)
    ]
    try:
        for node in nodes:
            await hub.events.wait_for(Synced, lambda e, n=node.id: e.player == n)

        handled: list[str] = []

        def slow_hub(event: object) -> None:
            if isinstance(event, PressTaken):
                handled.append(event.player)
                time.sleep(HANDLING_S)  # the loop held, as by work, not waiting on anything

        hub.listen(slow_hub)
        # Written in one go, latest first, while the hub (on this loop) cannot read: it reads
        # them in its next turn, in that order, so the earliest is handled last.
        # 3 ms apart: far more than the clocks' offsets are unsure of on loopback.
        made = time.monotonic_ns() - 16 * MS
        assert made > armed.release_ns  # the nodes' joins and syncs took longer than that
        for index in reversed(range(BURST_NODES)):
            await nodes[index].press(made + index * 3 * MS)
        decided = await hub.events.wait_for(Decided, after=mark, timeout=10)
        assert handled == [f"n{i}" for i in reversed(range(BURST_NODES))]  # the earliest last
        assert decided.winner == "n0"
        results = state_of(hub)["round"]["results"]
        assert [row["player"] for row in results] == [f"n{i}" for i in range(BURST_NODES)]
        assert not [row for row in results if "late" in row["flags"]]
    finally:
        for node in nodes:
            await node.leave()
