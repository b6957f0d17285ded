"""A node on ``hub = "auto"`` and the addresses a hub announced: it tries them all, and when none
works, or the hub cannot be used, it says what it tried.

Real hubs on 127.0.0.1 and real nodes; the mDNS answers and the station's own LAN addresses are
scripted, so a test can announce addresses where nothing listens (127.0.0.2, 127.0.0.3: loopback,
refused at once) and say which subnet the station is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from firmware.config import ConnectionSection, NodeConfig, NodeSection
from firmware.node import Connected, Disconnected, HubFound, Node
from tests.support.nodes import RunningNodes
from wire.discovery import FoundHub, LanAddress

FAST = ConnectionSection(retry_max_ms=50)


class Answers:
    """Each browse answers with ``hubs``; ``browsed`` is set at every browse."""

    def __init__(self, *hubs: FoundHub) -> None:
        self.hubs = list(hubs)
        self.count = 0
        self.browsed = asyncio.Event()

    async def __call__(self, hub_name: str) -> list[FoundHub]:
        self.count += 1
        self.browsed.set()
        return list(self.hubs)

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(10):
            while self.count < count:
                self.browsed.clear()
                await self.browsed.wait()


@pytest.fixture
async def node_on(mock_pins: Any) -> AsyncIterator[Callable[..., Node]]:
    nodes = RunningNodes()

    def start(
        answers: Answers, local: list[LanAddress], lines: list[str], cafile: str = ""
    ) -> Node:
        config = NodeConfig(
            node=NodeSection(hub="auto", id="box", inputs=["gpio"], cafile=cafile),
            connection=FAST,
        )
        return nodes.start(config, console=lines.append, finder=answers, local=lambda: local)

    yield start
    await nodes.stop_all()


async def test_every_announced_address_is_tried_the_stations_subnet_first(
    start_hub: Any, node_on: Any
) -> None:
    hub = start_hub()
    # On the station's subnet (tried first) nothing listens; the other address is the hub.
    answers = Answers(FoundHub("Quiz night", ("127.0.0.1", "127.0.0.2"), hub.port, 1))
    lines: list[str] = []
    node = node_on(answers, [LanAddress("eth0", "127.0.0.2", 32)], lines)
    connected = await node.wait_for(Connected)
    assert connected.url == hub.url
    assert [e.url for e in node.events() if isinstance(e, HubFound)] == [hub.url]
    assert f"Found the hub 'Quiz night' at {hub.url} on the LAN." in lines
    assert not any(isinstance(e, Disconnected) for e in node.events())  # no outage was told


async def test_a_hub_reachable_at_none_of_its_addresses_is_named_with_each_try(
    node_on: Any, unused_tcp_port: int
) -> None:
    port = unused_tcp_port
    answers = Answers(FoundHub("Quiz night", ("127.0.0.3", "127.0.0.2"), port, 1))
    lines: list[str] = []
    node = node_on(answers, [LanAddress("eth0", "10.0.0.5", 24)], lines)
    lost = await node.wait_for(Disconnected)
    await answers.wait(3)  # it keeps looking, and says so once
    nothing = "nothing listens there (is buzzer-hub running, on that port?)"
    assert lost.reason == (
        "the hub 'Quiz night' answers on the LAN but cannot be reached at any address it "
        f"announced (cannot reach ws://127.0.0.2:{port}: {nothing}; cannot reach "
        f"ws://127.0.0.3:{port}: {nothing}); a "
        "firewall or client isolation may be in the way"
    )
    assert [line for line in lines if line.startswith("Hub unreachable")] == [
        f"Hub unreachable: {lost.reason}. Still looking."
    ]


async def test_a_station_with_a_ca_file_does_not_fall_back_to_a_plain_hub(
    start_hub: Any, node_on: Any, tmp_path: Any
) -> None:
    hub = start_hub()
    answers = Answers(FoundHub("Quiz night", ("127.0.0.1",), hub.port, 1, tls=False))
    lines: list[str] = []
    cafile = tmp_path / "hub.pem"
    cafile.write_text("not needed: the node never gets as far as reading it\n")
    node = node_on(answers, [LanAddress("lo", "127.0.0.1", 8)], lines, cafile=str(cafile))
    lost = await node.wait_for(Disconnected)
    await answers.wait(3)  # not fatal: the hub may be given a certificate and restarted
    assert "does not use TLS, but this station has a cafile" in lost.reason
    assert not any(isinstance(e, Connected) for e in node.events())


async def test_a_station_with_no_network_address_says_so_not_multicast(node_on: Any) -> None:
    lines: list[str] = []
    node = node_on(Answers(), [], lines)
    lost = await node.wait_for(Disconnected)
    assert lost.reason.startswith("this station has no network address yet")
    assert "multicast" not in " ".join(lines)
