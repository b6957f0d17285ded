"""The pure limit rules: message budgets, the connection cap, send buffers, log throttling."""

from __future__ import annotations

import pytest

from hub.config import LimitsSection
from hub.limits import (
    NS_PER_S,
    LogThrottle,
    RunOfJoins,
    TokenBucket,
    room_for_connection,
    too_slow,
)


def test_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_refills_at_its_rate_and_never_above_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    for _ in range(5):
        bucket.take(0)
    assert not bucket.take(NS_PER_S // 20)  # half a token earned
    assert bucket.take(NS_PER_S // 10)  # one whole token
    assert not bucket.take(NS_PER_S // 10)
    # A long quiet spell earns at most a full burst.
    later = 100 * NS_PER_S
    assert [bucket.take(later) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.take(10 * NS_PER_S)
    assert not bucket.take(5 * NS_PER_S)
    assert not bucket.take(10 * NS_PER_S)
    assert bucket.take(11 * NS_PER_S)


def test_bucket_lets_a_real_node_through_at_the_default_limits() -> None:
    """Eight sync replies 20 ms apart, then one every 2 s, and ten presses a second for a minute."""
    limits = LimitsSection()
    bucket = TokenBucket(limits.messages_per_s, limits.message_burst)
    times = [i * 20_000_000 for i in range(8)]
    times += [s * 2 * NS_PER_S for s in range(1, 31)]
    times += [i * NS_PER_S // 10 for i in range(600)]
    assert all(bucket.take(t) for t in sorted(times))


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (1, 0)])
def test_bucket_refuses_nonsense_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=rate, burst=burst)


def test_connection_cap_and_send_buffer_limit() -> None:
    assert room_for_connection(9, 10)
    assert not room_for_connection(10, 10)
    assert room_for_connection(10_000, 0)
    assert not too_slow(1024, 1024)
    assert too_slow(1025, 1024)
    assert not too_slow(10**9, 0)


def test_log_throttle_one_line_per_key_per_interval_then_counts_the_rest() -> None:
    throttle = LogThrottle(interval_ns=10 * NS_PER_S)
    assert throttle.allow("a", 0) == 0
    assert [throttle.allow("a", t * NS_PER_S) for t in (1, 2, 3)] == [None, None, None]
    assert throttle.allow("b", 3 * NS_PER_S) == 0  # other keys are independent
    assert throttle.allow("a", 10 * NS_PER_S) == 3
    assert throttle.allow("a", 11 * NS_PER_S) is None


def test_log_throttle_stays_bounded() -> None:
    throttle = LogThrottle(interval_ns=10 * NS_PER_S, capacity=8)
    for i in range(100):
        assert throttle.allow(i, 0) == 0
    assert len(throttle._last) <= 8


def test_a_run_of_joins_is_one_line_then_a_sum_once_the_interval_is_over() -> None:
    joins = RunOfJoins(interval_ns=100)
    assert joins.loud("a", 0)
    assert joins.due_ns is None  # nothing to sum yet
    assert [joins.loud(p, t) for p, t in (("b", 10), ("c", 20), ("d", 99))] == [False] * 3
    assert joins.due_ns == 100
    assert joins.summed(99) is None
    assert joins.summed(100) == (3, "b", "d")
    assert joins.summed(300) is None  # summed once
    assert not joins.loud("e", 150)  # within an interval of the sum: the run goes on
    assert joins.summed(199) is None
    assert joins.summed(200) == (1, "e", "e")
    assert joins.loud("f", 300)  # a quiet interval since: a line of its own again
