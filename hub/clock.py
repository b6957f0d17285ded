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
from dataclasses import dataclass

#: The drift's share of the bound: the uncertainty takes the drift error as it is (two standard
#: errors of the fitted drift, plus the tilt the samples' one-sided biases can give a line), the
#: bound half as much again, so three standard errors and one and a half times the tilt (samples
#: queued behind a busy host are not the normal scatter the standard error assumes, and the
#: bound is a promise, not an expectation). A fit without drift scales its assumed drift alike.
BOUND_DRIFT_SCALE = 1.5


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
    upload_max_ns: int = 0  # the longest any recent message from the node took (see upload_ns)
    span_ns: int = 0  # the time the samples the fit rests on cover
    fast_samples: int = 0  # of those, settled ones within good_delay_slack_ns of the fastest

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
        return self.bound_ns + round(BOUND_DRIFT_SCALE * self._extrapolation_ns(hub_ns))


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
    # A link's first seconds say little about how long its messages take later: the connect
    # burst, and every other node that joined at the same moment (a room powering up, all of
    # them returning after a hub restart), queue its first exchanges behind each other. Samples
    # started this long after the first one are "settled"; once there are min_settled of them,
    # only they count for the upload delay.
    settle_ns: int = 5_000_000_000
    min_settled: int = 4


@dataclass(frozen=True, slots=True)
class _Point:
    """One accepted sample with everything the filter derives from it, computed once."""

    offset: int
    delay: int
    mid: int
    t2: int
    t3: int
    settled: bool


@dataclass(frozen=True, slots=True)
class _Model:
    """The fitted clock without the upload delay (which also depends on unused samples), and
    what decides whether a new sample can change it."""

    offset: int
    ref: int
    drift_ppm: float
    drift_error_ppm: float
    rtt: int
    uncertainty: int
    bound: int
    used: int
    span: int  # from the first to the last sample used
    cutoff: int  # a sample slower than this takes no part in the fit
    second: int  # the second smallest delay in the window (it sets the fastest sample's bias)
    fast: int  # settled samples used within good_delay_slack_ns of the fastest


class ClockFilter:
    """Minimum-delay filter with a drift fit over one node's recent sync samples.

    Each sample's offset, delay and midpoint are computed once, when it arrives. The fit runs
    only when the estimate is asked for and a sample that could change it arrived since: a spike
    (a sample slower than the fastest by more than ``max_excess_ns``) that displaces another
    unused one leaves the fit as it was, and only the upload delay is recomputed.
    """

    def __init__(self, settings: FilterSettings | None = None) -> None:
        self.settings = settings or FilterSettings()
        self.samples: deque[SyncSample] = deque(maxlen=self.settings.window)
        self.rejected = 0
        self.fits = 0  # how often the model was fitted (the costly part), for measurements
        self._points: deque[_Point] = deque(maxlen=self.settings.window)
        self._first_t0: int | None = None
        self._model: _Model | None = None
        self._estimate: ClockEstimate | None = None

    def add(self, sample: SyncSample) -> bool:
        """Take a sample; False if it is impossible (negative delay, hub time running backwards)."""
        t0, t1, t2, t3 = sample.t0_ns, sample.t1_ns, sample.t2_ns, sample.t3_ns
        delay = (t3 - t0) - (t2 - t1)
        if delay < 0 or t3 < t0 or t2 < t1:
            self.rejected += 1
            return False
        if self._first_t0 is None:
            self._first_t0 = t0
        point = _Point(
            offset=((t1 - t0) + (t2 - t3)) // 2,
            delay=delay,
            mid=(t0 + t3) // 2,
            t2=t2,
            t3=t3,
            settled=t0 - self._first_t0 >= self.settings.settle_ns,
        )
        points = self._points
        evicted = points[0] if len(points) == points.maxlen else None
        self.samples.append(sample)
        points.append(point)
        self._estimate = None
        model = self._model
        if model is not None and not _changes(model, point, evicted):
            return True
        self._model = None
        return True

    @property
    def settled(self) -> bool:
        """Whether enough samples from after the link's first seconds are in the window."""
        return sum(p.settled for p in self._points) >= self.settings.min_settled

    @property
    def estimate(self) -> ClockEstimate | None:
        if self._estimate is None and len(self._points) >= self.settings.min_samples:
            if self._model is None:
                self._model = self._fit()
                self.fits += 1
            self._estimate = self._with_upload(self._model)
        return self._estimate

    def _fit(self) -> _Model:
        s = self.settings
        points = self._points
        delays = sorted(p.delay for p in points)
        min_delay = delays[0]
        second = delays[1] if len(delays) > 1 else min_delay
        cutoff = min_delay + s.max_excess_ns
        # Every sample within max_excess of the fastest one takes part, weighted down steeply by
        # its extra round trip: one 0.5 ms slower counts a quarter, one 5 ms slower a hundredth.
        # Spikes (tens of ms) take no part at all. Recent, slightly slower samples thus keep the
        # estimate fresh without pulling it far.
        used = [p for p in points if p.delay <= cutoff]
        best = min(used, key=lambda p: p.delay)  # the first of the fastest
        base, last = best.offset, used[-1].mid
        slack = s.good_delay_slack_ns
        # Slower samples may have spent their extra time in one direction: their offsets can be
        # biased by up to half the extra, and that does not average away. The fastest sample has
        # some extra of its own that no sample shows; the gap to the second fastest is the usual
        # size of it (for independent delays the two are alike). Each sample's bias is thus up to
        # half of its extra plus that.
        own = second - min_delay
        xs: list[float] = []  # seconds, relative to the newest used sample
        ys: list[float] = []  # nanoseconds, relative to the fastest sample's offset
        ws: list[float] = []
        biases: list[float] = []  # nanoseconds
        total = total_sq = sum_x = sum_y = sum_bias = 0.0
        fast = 0
        for p in used:
            excess = p.delay - min_delay
            w = 1.0 / (1.0 + excess / slack) ** 2
            x = (p.mid - last) / 1e9
            y = float(p.offset - base)
            b = (excess + own) / 2
            xs.append(x)
            ys.append(y)
            ws.append(w)
            biases.append(b)
            total += w
            total_sq += w * w
            sum_x += w * x
            sum_y += w * y
            sum_bias += w * b
            fast += p.settled and excess <= slack  # a join's burst: fast, and says little
        n_eff = total * total / total_sq  # as many equally good samples as this
        mx, my = sum_x / total, sum_y / total
        sxx = sxy = syy = w2dx = w2dx2 = 0.0
        for w, x, y in zip(ws, xs, ys, strict=True):
            dx, dy = x - mx, y - my
            sxx += w * dx * dx
            sxy += w * dx * dy
            syy += w * dy * dy
            w2dx += w * w * dx
            w2dx2 += w * w * dx * dx

        # Two models: a level (no drift), which holds best at the samples' weighted mean time,
        # and a line (offset and drift). Each is a weighted sum of the sample offsets; keep the
        # one that will be surer by the next sync. For each: where it holds best (seconds from
        # the newest sample), its slope (ns per second), its value there (relative to base), the
        # sum of the squares of its coefficients, the scatter of one sample, its drift error,
        # and the bias the samples' own biases can add up to there.
        level_sigma = _scatter(syy / total, n_eff, n_eff - 1)
        level_coefficients_sq = total_sq / (total * total)
        fits = [
            (mx, 0.0, my, level_coefficients_sq, level_sigma, s.assumed_drift_ppm, sum_bias / total)
        ]
        span = used[-1].mid - used[0].mid
        if n_eff >= 3 and span >= s.min_fit_span_ns and sxx > 0:
            slope = sxy / sxx
            if abs(slope) <= s.max_drift_ppm * 1000:  # ns per second == parts per billion
                coefficients_sq = (
                    total_sq / (total * total)
                    - 2 * mx * w2dx / (total * sxx)
                    + mx * mx * w2dx2 / (sxx * sxx)
                )
                residual_sq = max(syy - slope * sxy, 0.0)
                sigma = _scatter(residual_sq / total, n_eff, n_eff - 2)
                slope_se = sigma * math.sqrt(w2dx2) / sxx
                # The biases do not average away in a slope either: one slow sample far from
                # the rest (a connect burst, then one late exchange) can tilt the line by its
                # whole bias over the span, with residuals that look small because the line
                # passes through it.
                slope_bias = value_bias = 0.0
                for w, x, b in zip(ws, xs, biases, strict=True):
                    lever = w * (x - mx) / sxx
                    slope_bias += abs(lever) * b
                    value_bias += abs(w / total - mx * lever) * b
                drift_error = (2 * slope_se + slope_bias) / 1000.0  # ppm
                value = my - slope * mx
                fits.append((0.0, slope, value, coefficients_sq, sigma, drift_error, value_bias))
        ahead = s.choose_at_ns / 1e9

        def uncertainty(fit: tuple[float, float, float, float, float, float, float]) -> float:
            """Two standard errors (the random part) plus the one-sided bias (which does not
            average away)."""
            return 2 * fit[4] * math.sqrt(max(fit[3], 0.0)) + fit[6]

        fit = min(fits, key=lambda f: uncertainty(f) + f[5] * (ahead - f[0]) * 1e3)
        at_x, slope, value, _, _, drift_error, _ = fit
        ref = last + round(at_x * 1e9)
        offset = base + round(value)
        # The worst case, whatever the path does: the fastest sample's offset is within half its
        # round trip of the truth at its time; add how far the estimate is from it there, and
        # what the drift can do between that time and ref.
        at_best = offset + round(slope * (best.mid - ref) / 1e9)
        drift_span = BOUND_DRIFT_SCALE * drift_error * abs(ref - best.mid) / 1e6
        bound = abs(at_best - best.offset) + best.delay // 2 + round(drift_span) + s.floor_ns
        return _Model(
            offset=offset,
            ref=ref,
            drift_ppm=slope / 1000.0,
            drift_error_ppm=drift_error,
            rtt=min_delay,
            uncertainty=min(round(uncertainty(fit)) + s.floor_ns, bound),
            bound=bound,
            used=len(used),
            span=span,
            cutoff=cutoff,
            second=second,
            fast=fast,
        )

    def _with_upload(self, model: _Model) -> ClockEstimate:
        # How long after its converted send time a message from the node reached the hub: a
        # press will show exactly this (its arrival minus its converted instant). The
        # conversion is ClockEstimate.to_hub, written out: it runs for every sample.
        points = [p for p in self._points if p.settled]
        if len(points) < self.settings.min_settled:
            points = list(self._points)
        offset, ref, ppm = model.offset, model.ref, model.drift_ppm
        uploads = sorted(
            p.t3 - (p.t2 - offset - round(ppm * (p.t2 - offset - ref) / 1e6)) for p in points
        )
        index = min(len(uploads) - 1, int(len(uploads) * self.settings.upload_percentile))
        floor = model.rtt // 2
        return ClockEstimate(
            offset_ns=offset,
            ref_ns=ref,
            drift_ppm=ppm,
            rtt_ns=model.rtt,
            uncertainty_ns=model.uncertainty,
            bound_ns=model.bound,
            upload_ns=max(uploads[index], floor),
            samples=model.used,
            drift_error_ppm=model.drift_error_ppm,
            upload_max_ns=max(uploads[-1], floor),
            span_ns=model.span,
            fast_samples=model.fast,
        )


def _changes(model: _Model, point: _Point, evicted: _Point | None) -> bool:
    """Whether a new sample (and the one it pushed out of the window) can change the fit.

    It cannot when neither takes part in the fit (both slower than the cutoff) and neither is
    among the two fastest samples, which set the weights and the fastest sample's own bias.
    """
    if point.delay <= model.cutoff or point.delay < model.second:
        return True
    return evicted is not None and (evicted.delay <= model.cutoff or evicted.delay <= model.second)


def _scatter(mean_square: float, n_eff: float, dof: float) -> float:
    """Root of a weighted mean square of residuals, corrected for the parameters fitted."""
    if dof <= 0:
        return 0.0
    return math.sqrt(mean_square * n_eff / dof)


class RoundTrips:
    """A link's recent round trips as the connection measures them (WebSocket pings).

    The protocol stack answers a ping, not the application, so these stay honest where a
    modified node or page could hold its sync replies back: the fastest of them is the link's
    own round trip, the slowest the most a message has needed lately. A short window keeps them
    current; one slow ping moves the fastest not at all.
    """

    def __init__(self, window: int = 8) -> None:
        self._rtts: deque[int] = deque(maxlen=window)

    def add(self, rtt_ns: int) -> None:
        self._rtts.append(max(0, rtt_ns))

    @property
    def low_ns(self) -> int | None:
        return min(self._rtts) if self._rtts else None

    @property
    def high_ns(self) -> int | None:
        return max(self._rtts) if self._rtts else None

    def __len__(self) -> int:
        return len(self._rtts)


class PressLeads:
    """How long a node's recent presses spent on it before they left (its own clock: the send
    instant the press frame carries, less the press instant).

    A sync exchange measures the link alone. A press also spends time on the node: a button's
    confirmation window (a press counts once the line stayed active a millisecond), then the
    station's own work. On this project's test machine that was 1.6 ms of a firmware press's
    2.1 ms to the hub, more than the link; a slower board takes longer. A round that waited only
    for the link and a 2 ms margin was decided as the first press came in, with no time left for
    another station's earlier press still on its way. Only the last few count, and none older
    than ``kept_ns``: a station stalled once (a collection) must not lengthen every round for
    the rest of the night. Measured on the node, so the hub's own delays in reading never count.
    """

    def __init__(self, window: int = 4, kept_ns: int = 60_000_000_000) -> None:
        self._leads: deque[tuple[int, int]] = deque(maxlen=window)  # (when, lead)
        self._kept_ns = kept_ns

    def add(self, lead_ns: int, now: int) -> None:
        self._leads.append((now, max(0, lead_ns)))

    def high_ns(self, now: int) -> int | None:
        """The longest recent lead, if any press is recent enough."""
        recent = [lead for when, lead in self._leads if now - when <= self._kept_ns]
        return max(recent) if recent else None


def adjudication_horizon(upload_delays_ns: list[int], margin_ns: int, cap_ns: int) -> int:
    """How long after a press an earlier press from any node could still arrive.

    The longest measured one-way delay among the connected nodes, plus a margin for scheduling
    jitter on both hosts, never more than the configured cap.
    """
    longest = max(upload_delays_ns, default=0)
    return min(longest + margin_ns, cap_ns)
