"""Hostile input the rate limits let through must not switch saving off or grow the hub for good.

The core on a simulated network, with exact times: each flood is played against honest players
whose press-to-result time is measured while it lasts, and the state it leaves behind is bounded.
"""

from __future__ import annotations

from hub.config import HubConfig, RoundSection
from hub.core.events import Refused
from hub.journal import INT64_MAX
from tests.support.simulation import MS, Net, S, Station, host, node, press

HOST_MODE = HubConfig(round=RoundSection(hostless=False, release_lead_ms=0))


def test_a_press_whose_hub_time_overflows_is_refused_not_acked_and_harms_nobody() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    # Legal numbers, absurdly far apart: the node claims its clock is 2**62 ns ahead.
    liar = node(net, "liar", offset_ns=2**62)
    honest = node(net, "honest", up=lambda: MS, down=lambda: MS)
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(10 * MS)
    liar.send({"type": "press", "press_id": "x-1", "at_ns": -INT64_MAX, "ref": "r1"})
    net.run_for(MS)
    error = liar.last("error")
    assert error["code"] == "bad_time"
    assert error["ref"] == "r1"
    assert not liar.frames("ack")
    assert not liar.frames("result")
    assert any(isinstance(e, Refused) and "out of range" in e.reason for e in net.events)
    press(honest, net.now, "h-1")
    net.run_for(50 * MS)
    assert honest.last("result")["rank"] == 1
    assert honest.last("ack")["press_id"] == "h-1"
    assert [o.press.press_id for o in net.core.engine.current.ranked] == ["h-1"]  # type: ignore[union-attr]


def test_refusals_from_one_address_are_logged_once_per_interval() -> None:
    net = Net.hub(HOST_MODE)
    for _ in range(50):
        wrong = Station(net).open()
        wrong.send({"type": "hello", "protocol": 1, "role": "host", "token": "guess"})
    net.run_for(MS)
    refused = [e for e in net.events if isinstance(e, Refused)]
    assert len(refused) == 1  # the simulated network has one address ("sim")
    net.run_for(11 * S)
    late = Station(net).open()
    late.send({"type": "hello", "protocol": 1, "role": "host", "token": "guess"})
    net.run_for(MS)
    refused = [e for e in net.events if isinstance(e, Refused)]
    assert len(refused) == 2
    assert refused[1].left_out == 49
    assert "49 more from this address not logged" in refused[1].describe()
