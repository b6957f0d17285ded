"""State pictures for hosts: at most 20 a second, and never most of the hub's time; a change
that is only a count within a second."""

from __future__ import annotations

from hub.config import HubConfig, RoundSection
from hub.core.fanout import (
    LAZY_PUBLISH_NS,
    PUBLISH_INTERVAL_NS,
    PUBLISH_LOOP_SHARE,
    publish_gap_ns,
)
from tests.support.simulation import MS, Net, S, host


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
