"""State pictures for hosts: at most 20 a second, and never most of the hub's time; a change
that is only a count within a second; none while a round waits for presses in flight."""

from __future__ import annotations

import pytest

from hub.config import HubConfig, RoundSection
from hub.core.fanout import (
    LAZY_PUBLISH_NS,
    PUBLISH_INTERVAL_NS,
    PUBLISH_LOOP_SHARE,
    publish_gap_ns,
)
from hub.core.outputs import Broadcast, Send
from tests.support.simulation import MS, Net, S, fixed, host, node, press
from wire.messages import StorageView


def test_small_pictures_go_out_at_twenty_a_second() -> None:
    assert publish_gap_ns(0) == PUBLISH_INTERVAL_NS == 50 * MS
    assert publish_gap_ns(2 * MS) == 50 * MS


def test_costly_pictures_are_spaced_to_a_fixed_share_of_the_loop() -> None:
    # A thousand players and results: about 25 ms a picture, so one every 125 ms at most.
    assert publish_gap_ns(25 * MS) == 125 * MS
    for cost in (11 * MS, 40 * MS, 300 * MS):
        assert cost / publish_gap_ns(cost) <= PUBLISH_LOOP_SHARE + 1e-9


def test_a_count_waits_up_to_a_second_for_its_picture_and_never_beats_the_loop_share() -> None:
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    host(net)
    net.run_for(S)
    fanout = net.core.fanout
    for cost, gap in ((2 * MS, LAZY_PUBLISH_NS), (300 * MS, publish_gap_ns(300 * MS))):
        net.run_for(2 * S)
        fanout.publish_at = None
        fanout.published(cost)
        last = net.now - 10 * MS
        fanout._last_publish_ns = last
        fanout.publish_soon(net.now, lazily=True)
        assert fanout.publish_at == last + gap
        assert gap >= LAZY_PUBLISH_NS
        fanout.publish_soon(net.now)  # something to see: at the usual pace, sooner
        assert fanout.publish_at == max(net.now, last + publish_gap_ns(cost))


@pytest.mark.parametrize("saving", [True, False])
def test_no_picture_is_built_while_a_round_waits_for_presses_in_flight(saving: bool) -> None:
    """A picture built during the adjudication wait would be stale once the round is decided,
    and building it (a millisecond or more with a full room, several on a Pi) holds up the
    presses and the decision the round waits for: it comes after the decision instead, and
    after the results, saving or not."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    if not saving:
        net.core.storage = StorageView(saving=False, path=None, message="memory-only")
    console = host(net)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))  # the round waits for its link
    net.run_for(5 * S)
    console.send({"type": "arm"})
    net.run_for(200 * MS)  # the arm's picture is out, and the pacing gap is long past
    pictures = len(console.frames("state"))
    press(near, net.now, "near-1")
    net.run_for(MS)  # it arrives: the round has something new to show, and a wait
    deadline = net.core.engine.deadline_ns
    assert deadline is not None
    assert deadline - net.now >= 10 * MS  # far's link is waited for
    net.run_until(deadline - 1)
    assert len(console.frames("state")) == pictures  # none during the wait
    deciding = net.core.timer(deadline)  # the decision, carried before any picture is built
    assert not [o for o in deciding if isinstance(o, Broadcast) and o.picture]
    told = [o for o in deciding if isinstance(o, Send) and '"type":"result"' in o.frame]
    assert len(told) == 1  # at once: the press it rests on was saved when it came
    net.now = deadline
    net.carry(deciding)
    net.run_for(10 * MS)
    assert near.last("result")["rank"] == 1
    shown = console.frames("state")[pictures:]
    assert shown
    assert shown[0]["hub_ns"] >= deadline
    assert shown[0]["round"]["state"] == "decided"
