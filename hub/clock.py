"""Clock sync maths: how far a node's monotonic clock is from the hub's, and how sure we are.

Pure code. The hub sends ``sync`` with its send time t0; the node answers with its receive time t1
and its send time t2; the hub notes the arrival t3. As in NTP (RFC 5905, section 8)::

    offset = ((t1 - t0) + (t2 - t3)) / 2      node clock minus hub clock
    delay  = (t3 - t0) - (t2 - t1)            round trip spent on the wire

If the two directions of the path take equally long the offset is exact; otherwise it is off by
half the difference, so half the round trip bounds the error whatever the path does. Wi-Fi power
save and busy hosts delay single samples by tens to hundreds of milliseconds, so one sample is never
trusted: the filter keeps a window, weights each sample down steeply by how much longer its round
trip was than the window's fastest (spikes count for nothing), and fits either a constant offset
or a line, whichever will be surer by the next sync, so that the drift between two crystals (tens
of parts per million) does not accumulate between syncs. docs/timing.md explains the choices.

Two error figures come out, and they answer different questions:

* ``uncertainty``: how far a converted timestamp is expected to be off if the path takes about as
  long each way (two standard errors of the fit, plus the bias the slower samples may carry,
  plus how much unknown drift can add since the fit). Ties are declared with it.
* ``bound``: how far it can be off at worst, whatever the path does: half the round trip. No
  exchange of timestamps can tell a slow uplink from a slow downlink, so nothing does better.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class SyncSample:
    t0_ns: int  # hub sends sync (hub clock)
    t1_ns: int  # node receives it (node clock)
    t2_ns: int  # node sends its reply (node clock)
    t3_ns: int  # hub receives the reply (hub clock)

    @property
    def offset_ns(self) -> int:
        return ((self.t1_ns - self.t0_ns) + (self.t2_ns - self.t3_ns)) // 2

    @property
    def delay_ns(self) -> int:
        return (self.t3_ns - self.t0_ns) - (self.t2_ns - self.t1_ns)

    @property
    def midpoint_ns(self) -> int:
        return (self.t0_ns + self.t3_ns) // 2


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """The node's clock as seen from the hub at one moment."""

    offset_ns: int  # node clock minus hub clock at ref_ns
    ref_ns: int  # hub time the offset was fitted for
    drift_ppm: float  # how fast the offset grows, parts per million of hub time
    rtt_ns: int  # smallest round trip in the window
    uncertainty_ns: int  # expected error at ref_ns (about two standard errors; symmetric path)
    bound_ns: int  # worst-case error at ref_ns for any path asymmetry (half a round trip)
    upload_ns: int  # how long a message from the node takes to reach the hub, high percentile
    samples: int  # samples the estimate rests on
    drift_error_ppm: float = 0.0  # how wrong drift_ppm may be: the error grows away from ref_ns

    def offset_at(self, hub_ns: int) -> int:
        return self.offset_ns + round(self.drift_ppm * (hub_ns - self.ref_ns) / 1e6)

    def to_hub(self, node_ns: int) -> int:
        """Convert a node timestamp to hub time."""
        approx = node_ns - self.offset_ns
        return node_ns - self.offset_at(approx)

    def to_node(self, hub_ns: int) -> int:
        """Convert a hub instant to the node's clock (for the synchronised release)."""
        return hub_ns + self.offset_at(hub_ns)

    def _extrapolation_ns(self, hub_ns: int) -> int:
        return round(self.drift_error_ppm * abs(hub_ns - self.ref_ns) / 1e6)

    def uncertainty_at(self, hub_ns: int) -> int:
        """Expected error of a timestamp converted for ``hub_ns``.

        Grows with the distance from the fit, because an unknown part of the drift accumulates.
        """
        return self.uncertainty_ns + self._extrapolation_ns(hub_ns)

    def bound_at(self, hub_ns: int) -> int:
        """Worst-case error of a timestamp converted for ``hub_ns``, whatever the path does."""
        return self.bound_ns + self._extrapolation_ns(hub_ns)


@dataclass(frozen=True, slots=True)
class FilterSettings:
    window: int = 32  # samples kept
    min_samples: int = 3  # samples needed before an estimate is given
    # Every nanosecond of extra round trip can move a sample's offset by half a nanosecond (if
    # the extra was spent in one direction only), so samples count less the slower they were: a
    # sample this much slower than the fastest counts a quarter. Keep it small, whatever the
    # link's own latency.
    good_delay_slack_ns: int = 500_000
    max_excess_ns: int = 10_000_000  # slower than the fastest by more than this: not used
    min_fit_span_ns: int = 2_000_000_000  # fit drift only over at least this much time
    max_drift_ppm: float = 500.0  # crystals are within about 100 ppm; more is a broken sample
    assumed_drift_ppm: float = 100.0  # drift error assumed while no drift could be fitted yet
    choose_at_ns: int = 2_000_000_000  # pick the model that is surer this long after a sample
    upload_percentile: float = 0.9
    floor_ns: int = 20_000  # never claim better than this (timestamping jitter on the hosts)


class ClockFilter:
    """Minimum-delay filter with a drift fit over one node's recent sync samples."""

    def __init__(self, settings: FilterSettings | None = None) -> None:
        self.settings = settings or FilterSettings()
        self.samples: deque[SyncSample] = deque(maxlen=self.settings.window)
        self.rejected = 0
        self._estimate: ClockEstimate | None = None

    def add(self, sample: SyncSample) -> bool:
        """Take a sample; False if it is impossible (negative delay, hub time running backwards)."""
        if sample.delay_ns < 0 or sample.t3_ns < sample.t0_ns or sample.t2_ns < sample.t1_ns:
            self.rejected += 1
            return False
        self.samples.append(sample)
        self._estimate = None
        return True

    @property
    def estimate(self) -> ClockEstimate | None:
        if self._estimate is None and len(self.samples) >= self.settings.min_samples:
            self._estimate = self._fit()
        return self._estimate

    def _fit(self) -> ClockEstimate:
        s = self.settings
        samples = list(self.samples)
        delays = sorted(x.delay_ns for x in samples)
        min_delay = delays[0]
        # Every sample within max_excess of the fastest one takes part, weighted down steeply by
        # its extra round trip: one 0.5 ms slower counts a quarter, one 5 ms slower a hundredth.
        # Spikes (tens of ms) take no part at all. Recent, slightly slower samples thus keep the
        # estimate fresh without pulling it far.
        used = [x for x in samples if x.delay_ns - min_delay <= s.max_excess_ns]
        excess = [x.delay_ns - min_delay for x in used]
        ws = [1.0 / (1.0 + e / s.good_delay_slack_ns) ** 2 for e in excess]
        total = sum(ws)
        n_eff = total * total / sum(w * w for w in ws)  # as many equally good samples as this
        base = min(used, key=lambda x: x.delay_ns).offset_ns
        last = used[-1].midpoint_ns
        xs = [(x.midpoint_ns - last) / 1e9 for x in used]  # seconds, relative to the newest
        ys = [float(x.offset_ns - base) for x in used]  # nanoseconds, relative to the best
        mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
        my = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
        sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))

        # Two models: a level (no drift), which holds best at the samples' weighted mean time,
        # and a line (offset and drift). Each is a weighted sum of the sample offsets; keep the
        # one that will be surer by the next sync.
        fits = [_Fit(at_x=mx, slope=0.0, level=my, coefficients=[w / total for w in ws])]
        fits[0].sigma = _scatter(ws, [y - my for y in ys], n_eff - 1)
        fits[0].drift_error = s.assumed_drift_ppm
        span = used[-1].midpoint_ns - used[0].midpoint_ns
        if n_eff >= 3 and span >= s.min_fit_span_ns and sxx > 0:
            slope = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True)) / sxx
            if abs(slope) <= s.max_drift_ppm * 1000:  # ns per second == parts per billion
                line = _Fit(
                    at_x=0.0,
                    slope=slope,
                    level=my - slope * mx,
                    coefficients=[
                        w / total - mx * w * (x - mx) / sxx for w, x in zip(ws, xs, strict=True)
                    ],
                )
                residuals = [y - my - slope * (x - mx) for x, y in zip(xs, ys, strict=True)]
                line.sigma = _scatter(ws, residuals, n_eff - 2)
                slope_se = line.sigma * math.sqrt(
                    sum((w * (x - mx)) ** 2 for w, x in zip(ws, xs, strict=True))
                )
                line.drift_error = 2 * slope_se / sxx / 1000.0  # ppm, two standard errors
                fits.append(line)
        # Slower samples may have spent their extra time in one direction: their offsets can be
        # biased by up to half the extra, and that does not average away. The fastest sample has
        # some extra of its own that no sample shows; the gap to the second fastest is the usual
        # size of it (for independent delays the two are alike).
        own = delays[1] - min_delay if len(delays) > 1 else 0
        bias = (sum(w * e for w, e in zip(ws, excess, strict=True)) / total + own) / 2
        ahead = s.choose_at_ns / 1e9
        fit = min(fits, key=lambda f: f.uncertainty(bias) + f.drift_error * (ahead - f.at_x) * 1e3)
        ref = last + round(fit.at_x * 1e9)
        offset = base + round(fit.level)
        # The worst case, whatever the path does: the fastest sample's offset is within half its
        # round trip of the truth at its time; add how far the estimate is from it there, and
        # what the drift can do between that time and ref.
        best = min(used, key=lambda x: x.delay_ns)
        at_best = offset + round(fit.slope * (best.midpoint_ns - ref) / 1e9)
        drift_span = fit.drift_error * abs(ref - best.midpoint_ns) / 1e6
        bound = abs(at_best - best.offset_ns) + best.delay_ns // 2 + round(drift_span)
        bound += s.floor_ns
        estimate = ClockEstimate(
            offset_ns=offset,
            ref_ns=ref,
            drift_ppm=fit.slope / 1000.0,
            rtt_ns=min_delay,
            uncertainty_ns=min(round(fit.uncertainty(bias)) + s.floor_ns, bound),
            bound_ns=bound,
            upload_ns=0,
            samples=len(used),
            drift_error_ppm=fit.drift_error,
        )
        uploads = sorted(x.t3_ns - estimate.to_hub(x.t2_ns) for x in samples)
        upload = uploads[min(len(uploads) - 1, int(len(uploads) * s.upload_percentile))]
        return replace(estimate, upload_ns=max(upload, min_delay // 2))


@dataclass(slots=True)
class _Fit:
    """One model of the offset over the window, as a weighted sum of the sample offsets."""

    at_x: float  # where (seconds from the newest sample) the fit holds best: its reference
    slope: float  # ns per second
    level: float  # offset at at_x, ns relative to the fastest sample's
    coefficients: list[float]  # the fit's value at at_x as a combination of the sample offsets
    sigma: float = 0.0  # scatter of one sample around the fit
    drift_error: float = 0.0  # ppm

    def uncertainty(self, bias: float) -> float:
        """Two standard errors (the random part) plus the one-sided bias (which does not
        average away)."""
        standard_error = self.sigma * math.sqrt(sum(c * c for c in self.coefficients))
        return 2 * standard_error + bias


def _scatter(weights: list[float], residuals: list[float], dof: float) -> float:
    """Weighted root mean square of the residuals, corrected for the parameters fitted."""
    if dof <= 0:
        return 0.0
    total = sum(weights)
    n_eff = total * total / sum(w * w for w in weights)
    mean_square = sum(w * r * r for w, r in zip(weights, residuals, strict=True)) / total
    return math.sqrt(mean_square * n_eff / dof)


def adjudication_horizon(upload_delays_ns: list[int], margin_ns: int, cap_ns: int) -> int:
    """How long after a press an earlier press from any node could still arrive.

    The longest measured one-way delay among the connected nodes, plus a margin for scheduling
    jitter on both hosts, never more than the configured cap.
    """
    longest = max(upload_delays_ns, default=0)
    return min(longest + margin_ns, cap_ns)
