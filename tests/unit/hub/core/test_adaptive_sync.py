"""Clock sync as often as accuracy needs: often while a node converges, backing off while its
drift fit holds, tightening when the clock wanders or a round needs a clock not yet fitted; and
the horizon back to normal soon after a connect storm. On a simulated network with exact times,
so each estimate is checked against the station's true clock."""

from __future__ import annotations

import dataclasses
import random

import pytest

from hub.config import ClockSection, HubConfig, RoundSection
from tests.support.simulation import MS, START_NS, Net, S, Station, fixed, host, jittered, node

HOST_MODE = HubConfig(round=RoundSection(hostless=False))
US = 1_000


def syncs_between(station: Station, start: int, end: int) -> int:
    return sum(1 for f in station.frames("sync") if start <= f["t0_ns"] < end)


def offset_error(net: Net, station: Station) -> tuple[int, int]:
    """How far the hub's idea of the station's clock is from the truth now, and what it claims."""
    player = net.core.roster.players[station_id(net, station)]
    estimate = player.clock.estimate
    assert estimate is not None
    truth = station.clock() - net.now
    return abs(estimate.offset_at(net.now) - truth), estimate.uncertainty_at(net.now)


def station_id(net: Net, station: Station) -> str:
    for player in net.core.roster:
        if player.link == station.link:
            return player.id
    raise AssertionError("not a player")


def test_a_steady_clock_backs_off_to_the_longest_interval_and_stays_within_its_claim() -> None:
    net = Net.hub(HOST_MODE)
    rng = random.Random(5)
    station = node(
        net,
        "steady",
        offset_ns=-3 * S,
        drift_ppm=37.0,
        up=jittered(400 * US, 40 * US, rng),
        down=jittered(400 * US, 40 * US, rng),
    )
    longest = HOST_MODE.clock.max_sync_interval_s * S
    worst = 0.0
    for _ in range(20 * 60):  # twenty minutes, checked every second
        net.run_for(S)
        error, claimed = offset_error(net, station)
        worst = max(worst, error / claimed)
    assert worst <= 1.0  # never wrong by more than it says, at any moment
    last_ten_minutes = syncs_between(station, net.now - 600 * S, net.now)
    assert last_ten_minutes <= 600 * S // (0.75 * longest) + 1  # against 300 at a fixed 2 s
    assert last_ten_minutes >= 600 * S // (1.25 * longest) - 1
    error, claimed = offset_error(net, station)
    assert claimed < 200 * US  # and what it claims stays tight


def test_a_link_slowed_now_and_then_backs_off_too_and_stays_within_its_bound() -> None:
    """A node on a busy machine (a millisecond of jitter each way) gives a fast sample now and
    then: the gap grows with them, and the slow samples between, which the fit predicted, do
    not pull it back down."""
    net = Net.hub(HOST_MODE)
    rng = random.Random(3)
    station = node(
        net,
        "busy",
        drift_ppm=23.0,
        up=jittered(200 * US, MS, rng),
        down=jittered(200 * US, MS, rng),
    )
    worst = 0.0
    for _ in range(15 * 60):
        net.run_for(S)
        estimate = net.core.roster.players["busy"].clock.estimate
        assert estimate is not None
        truth = station.clock() - net.now
        worst = max(worst, abs(estimate.offset_at(net.now) - truth) / estimate.bound_at(net.now))
    assert worst <= 1.0
    assert syncs_between(station, net.now - 300 * S, net.now) <= 300 // 8  # 2 s: about 150


def test_a_fixed_interval_stays_available() -> None:
    fixed_clock = ClockSection(sync_interval_s=2.0, max_sync_interval_s=2.0)
    net = Net.hub(dataclasses.replace(HOST_MODE, clock=fixed_clock))
    station = node(net, "n", up=fixed(MS), down=fixed(MS))
    net.run_for(300 * S)
    assert syncs_between(station, net.now - 100 * S, net.now) >= 100 // (2 * 1.25)


def test_a_wandering_clock_brings_the_interval_back_down() -> None:
    net = Net.hub(HOST_MODE)
    station = node(net, "warming", up=fixed(300 * US), down=fixed(300 * US), drift_ppm=10.0)
    net.run_for(600 * S)
    before = syncs_between(station, net.now - 120 * S, net.now)
    # The crystal warms up: its drift moves from 10 to 40 ppm (the clock itself stays continuous).
    t = net.now
    station.offset_ns += round((t - START_NS) * (station.drift_ppm - 40.0) / 1e6)
    station.drift_ppm = 40.0
    net.run_for(120 * S)
    after = syncs_between(station, t, net.now)
    assert after > 2 * before  # tightened, as the fit stopped predicting the samples
    error, claimed = offset_error(net, station)
    assert error <= claimed


def test_a_round_syncs_at_once_only_the_nodes_whose_replies_went_missing() -> None:
    """Syncing every node at each arm would put all their samples where the hub is busiest (a
    bias no filter sees); a node whose replies stopped coming is another matter."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    steady = node(net, "steady", up=fixed(MS), down=fixed(MS))
    lossy = node(net, "lossy", up=fixed(MS), down=fixed(MS))
    net.run_for(300 * S)
    lossy.answers_syncs = False  # its replies are lost from now on
    net.run_for(100 * S)
    lossy.answers_syncs = True
    counts = {s.link: len(s.frames("sync")) for s in (steady, lossy)}
    console.send({"type": "arm"})
    net.run_for(10 * MS)
    assert len(lossy.frames("sync")) == counts[lossy.link] + 1
    assert len(steady.frames("sync")) == counts[steady.link]


def test_a_connect_storm_stops_setting_the_horizon_within_fifteen_seconds() -> None:
    """Fifty nodes join at once and the hub's queue holds their first exchanges 80 ms."""
    net = Net.hub(HOST_MODE)
    storm_ends = net.now + 3 * S

    def queued() -> int:
        return 80 * MS if net.now < storm_ends else 200 * US

    for i in range(50):
        node(net, f"n{i}", up=queued, down=fixed(200 * US))
    net.run_for(3 * S)
    margin = round(HOST_MODE.round.adjudication_margin_ms * MS)
    assert net.core.horizon.value(net.core.roster, net.now) > 30 * MS  # during the storm
    net.run_for(12 * S)
    net.core.horizon.stale()
    assert net.core.horizon.value(net.core.roster, net.now) <= margin + MS


def test_a_longest_interval_below_the_shortest_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="max_sync_interval_s must be at least sync_interval_s"):
        ClockSection(sync_interval_s=4.0, max_sync_interval_s=2.0)


def test_a_jittery_link_keeps_being_synced_often_while_a_quiet_one_backs_off() -> None:
    """Wi-Fi-like jitter gives few good samples, and the estimate needs many to choose from."""
    net = Net.hub(HOST_MODE)
    rng = random.Random(9)
    quiet = node(net, "quiet", up=fixed(MS), down=fixed(MS))
    wifi = node(net, "wifi", up=jittered(3 * MS, 4 * MS, rng), down=jittered(3 * MS, 4 * MS, rng))
    net.run_for(600 * S)
    rates = {s.link: syncs_between(s, net.now - 300 * S, net.now) for s in (quiet, wifi)}
    assert rates[wifi.link] > 5 * rates[quiet.link]
    assert rates[wifi.link] >= 300 // (2 * 1.25) * 0.5  # near the shortest interval
    error, claimed = offset_error(net, wifi)
    assert error <= claimed
