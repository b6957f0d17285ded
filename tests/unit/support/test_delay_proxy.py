"""The delay proxy's link profiles, as the fairness benchmark uses them: exponential jitter with
the mean asked for, asymmetric directions, load spikes only inside their windows, and a link that
survives the trip to the proxy's own process."""

from __future__ import annotations

import random
import statistics

import pytest

from tests.support.delay_proxy import Link


def test_exponential_jitter_has_the_mean_asked_for_and_a_long_tail() -> None:
    rng = random.Random(1)
    link = Link(latency_s=0.005, exponential_s=0.002)
    extras = [link.delay(rng) - 0.005 for _ in range(20_000)]
    assert min(extras) >= 0
    assert statistics.mean(extras) == pytest.approx(0.002, rel=0.05)
    # exponential: about e^-3 of the delays exceed three means, where uniform jitter has none
    assert 0.03 < sum(extra > 0.006 for extra in extras) / len(extras) < 0.07


def test_a_load_spike_adds_its_delay_only_inside_its_windows() -> None:
    rng = random.Random(2)
    link = Link(latency_s=0.001, spike_s=0.08, spike_every_s=10.0, spike_for_s=1.0)
    assert link.delay(rng, elapsed_s=0.5) == 0.081
    assert link.delay(rng, elapsed_s=10.99) == 0.081
    assert link.delay(rng, elapsed_s=1.0) == 0.001
    assert link.delay(rng, elapsed_s=19.5) == 0.001


def test_a_link_travels_to_the_proxy_process_whole() -> None:
    link = Link(0.005, 0.001, 0.02, 0.08, 10.0, 1.0)
    assert Link.from_json(link.to_json()) == link
