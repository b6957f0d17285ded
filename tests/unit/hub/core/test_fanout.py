"""State pictures for hosts: at most 20 a second, and never most of the hub's time."""

from __future__ import annotations

from hub.core.fanout import PUBLISH_INTERVAL_NS, PUBLISH_LOOP_SHARE, publish_gap_ns

MS = 1_000_000


def test_small_pictures_go_out_at_twenty_a_second() -> None:
    assert publish_gap_ns(0) == PUBLISH_INTERVAL_NS == 50 * MS
    assert publish_gap_ns(2 * MS) == 50 * MS


def test_costly_pictures_are_spaced_to_a_fixed_share_of_the_loop() -> None:
    # A thousand players and results: about 25 ms a picture, so one every 125 ms at most.
    assert publish_gap_ns(25 * MS) == 125 * MS
    for cost in (11 * MS, 40 * MS, 300 * MS):
        assert cost / publish_gap_ns(cost) <= PUBLISH_LOOP_SHARE + 1e-9
