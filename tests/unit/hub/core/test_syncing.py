"""Periodic clock sync: spread out, so that nodes that joined together do not sync in lockstep."""

from __future__ import annotations

import random
import statistics

from hub.core.syncing import SYNC_JITTER, sync_gap_ns

S = 1_000_000_000


def test_periodic_sync_gaps_stay_near_the_interval_and_differ() -> None:
    rng = random.Random(7)
    gaps = [sync_gap_ns(2 * S, rng) / S for _ in range(2000)]
    assert min(gaps) >= 2.0 * (1 - SYNC_JITTER)
    assert max(gaps) <= 2.0 * (1 + SYNC_JITTER)
    assert abs(statistics.mean(gaps) - 2.0) < 0.02  # the configured rate, on average
    assert statistics.pstdev(gaps) > 0.2  # spread out, not all in step


def test_nodes_that_join_together_drift_apart() -> None:
    rng = random.Random(3)
    # 1000 nodes whose first periodic sync falls within the same 250 ms
    next_sync = [i * 0.00025 for i in range(1000)]
    for _ in range(10):
        next_sync = [t + sync_gap_ns(2 * S, rng) / S for t in next_sync]
    phases = sorted(t % 2.0 for t in next_sync)
    busiest = max(
        sum(1 for t in phases if start <= t < start + 0.25) for start in (x / 20 for x in range(40))
    )
    assert busiest < 300  # from all 1000 in one quarter second to about an eighth of them
