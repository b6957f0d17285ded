"""Clock sync maths: how far a node's monotonic clock is from the hub's, and how sure we are.

Pure code. The hub sends ``sync`` with its send time t0; the node answers with its receive time t1
and its send time t2; the hub notes the arrival t3. As in NTP (RFC 5905, section 8)::

    offset = ((t1 - t0) + (t2 - t3)) / 2      node clock minus hub clock
    delay  = (t3 - t0) - (t2 - t1)            round trip spent on the wire

If the two directions of the path take equally long the offset is exact; otherwise it is off by
half the difference, so half the round trip bounds the error whatever the path does. Wi-Fi power
save and busy hosts delay single samples by tens to hundreds of milliseconds, so one sample is never
trusted: the filter keeps a window, uses only the samples whose delay is close to the window's
minimum, and fits a line through them so that the drift between two crystals (tens of parts per
million) does not accumulate between syncs.

Two error figures come out, and they answer different questions:

* ``uncertainty``: how far a converted timestamp is expected to be off if the path takes about as
  long each way (two standard errors of the fit, plus the bias the slower good samples may carry,
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
    # A sample is "good" when its round trip is within this of the window's minimum. Every
    # nanosecond of extra round trip can move a sample's offset by half a nanosecond (if the extra
    # time was spent in one direction only), so this slack bounds how far the good samples can pull
    # the average away from the best one: keep it small. Spikes of tens of ms never qualify.
    good_delay_slack_ns: int = 500_000
    good_delay_ratio: float = 0.01  # ... or this fraction of the minimum, whichever is larger
    min_fit_span_ns: int = 5_000_000_000  # fit drift only over at least this much time
    max_drift_ppm: float = 500.0  # crystals are within about 100 ppm; more is a broken sample
    assumed_drift_ppm: float = 100.0  # drift error assumed while no drift could be fitted yet
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
        min_delay = min(x.delay_ns for x in samples)
        limit = min_delay + max(s.good_delay_slack_ns, int(min_delay * s.good_delay_ratio))
        good = [x for x in samples if x.delay_ns <= limit]
        best = min(good, key=lambda x: x.delay_ns)
        ref = good[-1].midpoint_ns
        base = best.offset_ns
        xs = [(x.midpoint_ns - ref) / 1e9 for x in good]  # seconds, relative to ref
        ys = [float(x.offset_ns - base) for x in good]  # nanoseconds, relative to best
        span = good[-1].midpoint_ns - good[0].midpoint_ns
        n = len(good)
        mean_x, mean_y = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mean_x) ** 2 for x in xs)
        slope = 0.0  # ns per second == parts per billion
        fitted = n >= 4 and span >= s.min_fit_span_ns and sxx > 0
        if fitted:
            sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
            slope = sxy / sxx
            if abs(slope) > s.max_drift_ppm * 1000:
                slope, fitted = 0.0, False
        intercept = mean_y - slope * mean_x
        residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
        dof = max(n - (2 if fitted else 1), 1)
        sigma = math.sqrt(sum(r * r for r in residuals) / dof)  # scatter of single samples
        # Standard error of the fitted line at ref (x = 0), and of its slope.
        se_at_ref = sigma * math.sqrt(1 / n + (mean_x**2 / sxx if fitted else 0.0))
        se_slope = sigma / math.sqrt(sxx) if fitted else 0.0
        # Samples slower than the best may have spent their extra time in one direction: their
        # offsets can be biased by up to half the extra. That bias does not average away.
        bias = sum(x.delay_ns - min_delay for x in good) / n / 2
        uncertainty = int(2 * max(se_at_ref, sigma / 2) + bias) + s.floor_ns
        drift_error = 2 * se_slope / 1000.0 if fitted else s.assumed_drift_ppm
        estimate = ClockEstimate(
            offset_ns=base + round(intercept),
            ref_ns=ref,
            drift_ppm=slope / 1000.0,
            rtt_ns=min_delay,
            uncertainty_ns=uncertainty,
            # Each good sample's offset is within half its own round trip of the truth whatever
            # the asymmetry, so their average is within half the largest of those round trips.
            bound_ns=max(x.delay_ns for x in good) // 2 + s.floor_ns,
            upload_ns=0,
            samples=n,
            drift_error_ppm=drift_error,
        )
        uploads = sorted(x.t3_ns - estimate.to_hub(x.t2_ns) for x in samples)
        upload = uploads[min(len(uploads) - 1, int(len(uploads) * s.upload_percentile))]
        return replace(estimate, upload_ns=max(upload, min_delay // 2))


def adjudication_horizon(upload_delays_ns: list[int], margin_ns: int, cap_ns: int) -> int:
    """How long after a press an earlier press from any node could still arrive.

    The longest measured one-way delay among the connected nodes, plus a margin for scheduling
    jitter on both hosts, never more than the configured cap.
    """
    longest = max(upload_delays_ns, default=0)
    return min(longest + margin_ns, cap_ns)
