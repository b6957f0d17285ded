"""The incremental clock filter gives the estimate a fit from scratch gives, and fits less often.

The reference below is the filter's maths written out plainly (every sum over the window
recomputed, every sample's offset and delay derived again); the filter caches each sample's
derived values and keeps its fit while spikes come and go. Both must agree on every estimate of
long random streams with drift, jitter and spikes, to the nanosecond (floating-point order aside).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from hub.clock import BOUND_DRIFT_SCALE, ClockFilter, FilterSettings, SyncSample

MS = 1_000_000
US = 1_000
S = 1_000_000_000


@dataclass
class Reference:
    offset_ns: int
    ref_ns: int
    drift_ppm: float
    rtt_ns: int
    uncertainty_ns: int
    bound_ns: int
    upload_ns: int
    upload_max_ns: int


def reference(samples: list[SyncSample], s: FilterSettings, start_ns: int) -> Reference:
    """The estimate, from the definitions in docs/timing.md, with nothing cached; ``start_ns``:
    when the link's first exchange began (its first seconds do not count for the upload)."""
    delays = sorted(x.delay_ns for x in samples)
    low = delays[0]
    used = [x for x in samples if x.delay_ns - low <= s.max_excess_ns]
    excess = [x.delay_ns - low for x in used]
    ws = [1 / (1 + e / s.good_delay_slack_ns) ** 2 for e in excess]
    total = sum(ws)
    n_eff = total**2 / sum(w * w for w in ws)
    best = min(used, key=lambda x: x.delay_ns)
    last = used[-1].midpoint_ns
    xs = [(x.midpoint_ns - last) / 1e9 for x in used]
    ys = [float(x.offset_ns - best.offset_ns) for x in used]
    mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
    my = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))

    def scatter(residuals: list[float], dof: float) -> float:
        if dof <= 0:
            return 0.0
        mean_square = sum(w * r * r for w, r in zip(ws, residuals, strict=True)) / total
        return math.sqrt(mean_square * n_eff / dof)

    own = delays[1] - low if len(delays) > 1 else 0
    biases = [(e + own) / 2 for e in excess]  # what each sample's offset may carry one way

    def bias(coefficients: list[float]) -> float:
        return sum(abs(c) * b for c, b in zip(coefficients, biases, strict=True))

    # (where it holds, slope, level, coefficients, sigma, drift error)
    models = [
        (mx, 0.0, my, [w / total for w in ws], scatter([y - my for y in ys], n_eff - 1), 100.0)
    ]
    span = used[-1].midpoint_ns - used[0].midpoint_ns
    if n_eff >= 3 and span >= s.min_fit_span_ns and sxx > 0:
        slope = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True)) / sxx
        if abs(slope) <= s.max_drift_ppm * 1000:
            coefficients = [
                w / total - mx * w * (x - mx) / sxx for w, x in zip(ws, xs, strict=True)
            ]
            residuals = [y - my - slope * (x - mx) for x, y in zip(xs, ys, strict=True)]
            sigma = scatter(residuals, n_eff - 2)
            spread = math.sqrt(sum((w * (x - mx)) ** 2 for w, x in zip(ws, xs, strict=True)))
            # The slope is a weighted sum of the offsets too: its bias adds up the same way.
            tilt = bias([w * (x - mx) / sxx for w, x in zip(ws, xs, strict=True)])
            error = (2 * sigma * spread / sxx + tilt) / 1000
            models.append((0.0, slope, my - slope * mx, coefficients, sigma, error))

    def uncertainty(m: tuple[float, float, float, list[float], float, float]) -> float:
        return 2 * m[4] * math.sqrt(sum(c * c for c in m[3])) + bias(m[3])

    chosen = min(models, key=lambda m: uncertainty(m) + m[5] * (s.choose_at_ns / 1e9 - m[0]) * 1e3)
    at_x, slope, level, _, _, error = chosen
    ref = last + round(at_x * 1e9)
    offset = best.offset_ns + round(level)
    at_best = offset + round(slope * (best.midpoint_ns - ref) / 1e9)
    bound = abs(at_best - best.offset_ns) + best.delay_ns // 2
    bound += round(BOUND_DRIFT_SCALE * error * abs(ref - best.midpoint_ns) / 1e6) + s.floor_ns
    settled = [x for x in samples if x.t0_ns - start_ns >= s.settle_ns]
    counted = settled if len(settled) >= s.min_settled else samples

    def to_hub(node_ns: int) -> int:
        approx = node_ns - offset
        return node_ns - (offset + round(slope / 1000 * (approx - ref) / 1e6))

    uploads = sorted(x.t3_ns - to_hub(x.t2_ns) for x in counted)
    index = min(len(uploads) - 1, int(len(uploads) * s.upload_percentile))
    return Reference(
        offset_ns=offset,
        ref_ns=ref,
        drift_ppm=slope / 1000,
        rtt_ns=low,
        uncertainty_ns=min(round(uncertainty(chosen)) + s.floor_ns, bound),
        bound_ns=bound,
        upload_ns=max(uploads[index], low // 2),
        upload_max_ns=max(uploads[-1], low // 2),
    )


def stream(seed: int, count: int) -> list[SyncSample]:
    """Exchanges with a drifting clock over a jittery link with spikes now and then, at a pace
    that starts fast (the connect burst) and slows down (as the adaptive schedule does)."""
    rng = random.Random(seed)
    offset, ppm = rng.randrange(-(10**12), 10**12), rng.uniform(-80, 80)
    base = rng.choice([100 * US, MS, 20 * MS, 150 * MS])
    t0, gap = 7 * S, 20 * MS
    samples = []
    for i in range(count):
        down = base + round(rng.expovariate(1 / (base / 10 + 50 * US)))
        up = base + round(rng.expovariate(1 / (base / 10 + 50 * US)))
        if rng.random() < 0.15:  # Wi-Fi power save: one direction of one exchange
            spike = rng.randrange(20 * MS, 300 * MS)
            down, up = (down + spike, up) if rng.random() < 0.5 else (down, up + spike)
        turn = rng.randrange(10 * US, 400 * US)

        def node(hub_ns: int) -> int:
            return hub_ns + offset + round(ppm * (hub_ns - 7 * S) / 1e6)

        samples.append(
            SyncSample(t0, node(t0 + down), node(t0 + down + turn), t0 + down + turn + up)
        )
        if i >= 8:
            gap = min(gap * 2 if i % 4 == 0 else gap, 32 * S) if gap >= S else S
        t0 += gap + rng.randrange(-gap // 4, gap // 4 + 1)
    return samples


@pytest.mark.parametrize("seed", range(12))
def test_every_estimate_matches_a_fit_from_scratch(seed: int) -> None:
    settings = FilterSettings(window=16)
    clock = ClockFilter(settings)
    seen: list[SyncSample] = []
    samples = stream(seed, 120)
    for sample in samples:
        assert clock.add(sample)
        seen = [*seen, sample][-settings.window :]
        if len(seen) < settings.min_samples:
            assert clock.estimate is None
            continue
        estimate = clock.estimate
        assert estimate is not None
        want = reference(seen, settings, samples[0].t0_ns)
        assert abs(estimate.offset_ns - want.offset_ns) <= 2
        assert abs(estimate.ref_ns - want.ref_ns) <= 2
        assert estimate.drift_ppm == pytest.approx(want.drift_ppm, abs=1e-6)
        assert estimate.rtt_ns == want.rtt_ns
        assert abs(estimate.uncertainty_ns - want.uncertainty_ns) <= 2
        assert abs(estimate.bound_ns - want.bound_ns) <= 2
        assert abs(estimate.upload_ns - want.upload_ns) <= 4
        assert abs(estimate.upload_max_ns - want.upload_max_ns) <= 4


def test_spikes_that_take_no_part_cost_no_refit() -> None:
    """Once the window holds its fast samples, spikes pushing out other spikes change nothing."""
    settings = FilterSettings(window=8)
    clock = ClockFilter(settings)
    t0 = 10 * S

    def exchange(delay: int) -> SyncSample:
        nonlocal t0
        t0 += 500 * MS
        return SyncSample(t0, t0 + 42 * S + delay // 2, t0 + 42 * S + delay // 2, t0 + delay)

    for delay in [200 * MS, 150 * MS, *[MS + i * 10 * US for i in range(6)]]:
        clock.add(exchange(delay))
    first = clock.estimate
    assert first is not None
    assert clock.fits == 1
    for delay in (120 * MS, 90 * MS):  # each pushes out one of the two early spikes
        clock.add(exchange(delay))
        estimate = clock.estimate
        assert estimate is not None
        assert (estimate.offset_ns, estimate.uncertainty_ns) == (
            first.offset_ns,
            first.uncertainty_ns,
        )
    assert clock.fits == 1
    clock.add(exchange(80 * MS))  # this one pushes out the fastest sample: the fit must move
    assert clock.estimate is not None
    assert clock.fits == 2
    clock.add(exchange(MS + 5 * US))  # a fast sample takes part: refit
    assert clock.estimate is not None
    assert clock.fits == 3


def test_the_fit_runs_only_when_an_estimate_is_asked_for() -> None:
    clock = ClockFilter()
    for i in range(10):
        t0 = 10 * S + i * 20 * MS
        clock.add(SyncSample(t0, t0 + MS, t0 + MS, t0 + 2 * MS))
    assert clock.fits == 0
    assert clock.estimate is not None
    assert clock.estimate is not None
    assert clock.fits == 1


def test_only_settled_samples_count_for_the_upload_delay_once_there_are_enough() -> None:
    """A connect storm delays a link's first exchanges; they must not set its upload delay."""
    settings = FilterSettings()
    clock = ClockFilter(settings)
    t0 = 10 * S
    for _ in range(8):  # the burst, all queued behind other nodes joining: 100 ms each way
        clock.add(SyncSample(t0, t0 + 100 * MS, t0 + 100 * MS, t0 + 200 * MS))
        t0 += 20 * MS
    t0 = 10 * S + settings.settle_ns
    for _ in range(settings.min_settled - 1):
        clock.add(SyncSample(t0, t0 + MS, t0 + MS, t0 + 2 * MS))
        t0 += S
    storm = clock.estimate
    assert storm is not None
    assert storm.upload_ns > 50 * MS  # not enough settled samples yet: all of them count
    clock.add(SyncSample(t0, t0 + MS, t0 + MS, t0 + 2 * MS))
    calm = clock.estimate
    assert calm is not None
    assert calm.upload_ns == calm.upload_max_ns == MS


def test_a_joining_burst_counts_for_nothing_in_the_fast_samples() -> None:
    """A link's first exchanges, back to back as it joins, are fast even over Wi-Fi: counted,
    they would let a jittery link back off as if it had plenty of fast samples to choose from."""
    clock = ClockFilter(FilterSettings())
    for i in range(8):  # the join's burst: 20 ms apart, all fast
        t0 = i * 20 * MS
        clock.add(SyncSample(t0, t0 + MS, t0 + MS, t0 + 2 * MS))
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.fast_samples == 0
    for i in range(1, 5):  # then fast ones from after the link's first seconds
        t0 = 10_000 * MS + i * 2_000 * MS
        clock.add(SyncSample(t0, t0 + MS, t0 + MS, t0 + 2 * MS))
    estimate = clock.estimate
    assert estimate is not None
    assert estimate.fast_samples == 4
