"""A node with ``hub = "auto"``: what it does with what the LAN answers.

Real hub processes on 127.0.0.1 and real :class:`~firmware.node.Node` objects; the one stand-in is
the mDNS browse, replaced by a scripted list of answers, so these tests can say exactly which hubs
answer when (several at once, none for a while, a new address after a restart) without sending
multicast from the test machine. The real browse across a real link is in test_discovery.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from firmware.config import ConnectionSection, GpioSection, NodeConfig, NodeSection
from firmware.node import Connected, Disconnected, HubFound, LedPattern, Node
from wire.discovery import FoundHub, LanAddress

FAST = ConnectionSection(retry_max_ms=50)
#: The scripted LAN is loopback: the station's one "LAN address", whatever this machine has.
LOCAL = [LanAddress("lo", "127.0.0.1", 8)]


class ScriptedLan:
    """Answers each browse with the hubs the test put on the LAN, and counts the browses."""

    def __init__(self) -> None:
        self.hubs: list[FoundHub] = []
        self.asked: list[str] = []
        self._browsed = asyncio.Event()

    async def __call__(self, hub_name: str) -> list[FoundHub]:
        self.asked.append(hub_name)
        self._browsed.set()
        return list(self.hubs)

    async def wait_browses(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.asked) < count:
                self._browsed.clear()
                await self._browsed.wait()


def found(name: str, port: int) -> FoundHub:
    return FoundHub(name, ("127.0.0.1",), port, 1)


@pytest.fixture
async def auto_node(mock_pins: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start nodes configured with ``hub`` (default auto) and a scripted LAN; stopped after."""
    running: list[tuple[Node, asyncio.Task[None]]] = []

    def start(
        lan: ScriptedLan,
        lines: list[str],
        hub: str = "auto",
        hub_name: str = "",
        node_id: str = "box",
        **gpio: Any,
    ) -> Node:
        config = NodeConfig(
            node=NodeSection(hub=hub, hub_name=hub_name, id=node_id, inputs=["gpio"]),
            gpio=GpioSection(**gpio),
            connection=FAST,
        )
        node = Node(config, console=lines.append, finder=lan, local=lambda: LOCAL)
        running.append((node, asyncio.create_task(node.run())))
        return node

    yield start
    for node, _ in running:
        node.stop()
    for _, task in running:
        await asyncio.wait_for(task, 5)


async def test_while_no_hub_answers_one_line_and_the_heartbeat_then_it_connects(
    start_hub: Any, auto_node: Any
) -> None:
    lan, lines = ScriptedLan(), []
    node = auto_node(lan, lines)
    await lan.wait_browses(5)  # five empty answers: still one line on the console
    missing = [line for line in lines if line.startswith("Hub unreachable")]
    assert len(missing) == 1
    assert "no hub answers on the LAN (mDNS) on lo (127.0.0.1/8)" in missing[0]
    assert [e.name for e in node.events() if isinstance(e, LedPattern)][-1] == "heartbeat"
    assert len([e for e in node.events() if isinstance(e, Disconnected)]) == 1

    hub = await asyncio.to_thread(start_hub)
    lan.hubs = [found("Quiz night", hub.port)]
    connected = await node.wait_for(Connected)
    assert connected.url == hub.url
    assert f"Found the hub 'Quiz night' at {hub.url} on the LAN." in lines
    assert set(lan.asked) == {""}


async def test_several_hubs_the_same_one_is_chosen_whatever_the_order_and_named(
    start_hub: Any, auto_node: Any
) -> None:
    zeta, alpha = start_hub(), start_hub()
    answers = [found("Zeta", zeta.port), found("alpha", alpha.port)]
    pins = [("GPIO17", "GPIO27"), ("GPIO5", "GPIO6")]
    for i, (order, (button, led)) in enumerate(zip((answers, answers[::-1]), pins, strict=True)):
        lan, lines = ScriptedLan(), []
        lan.hubs = order
        node = auto_node(lan, lines, node_id=f"box{i}", button_pin=button, led_pin=led)
        connected = await node.wait_for(Connected)
        assert connected.url == alpha.url
        assert (
            f"Found the hub 'alpha' at {alpha.url} on the LAN. Other hubs answering: 'Zeta'; "
            "set hub_name to choose one of them."
        ) in lines


async def test_a_configured_hub_name_picks_that_hub(start_hub: Any, auto_node: Any) -> None:
    zeta, alpha = start_hub(), start_hub()
    lan, lines = ScriptedLan(), []
    lan.hubs = [found("alpha", alpha.port), found("Zeta", zeta.port)]
    node = auto_node(lan, lines, hub_name="zeta")  # names compare without regard to case
    connected = await node.wait_for(Connected)
    assert connected.url == zeta.url
    assert lan.asked[0] == "zeta"


async def test_a_named_hub_that_does_not_answer_is_waited_for_not_replaced(
    start_hub: Any, auto_node: Any
) -> None:
    alpha = start_hub()
    lan, lines = ScriptedLan(), []
    lan.hubs = [found("alpha", alpha.port)]
    node = auto_node(lan, lines, hub_name="Finals")
    await lan.wait_browses(3)
    assert not any(isinstance(e, Connected) for e in node.events())
    missing = [line for line in lines if line.startswith("Hub unreachable")]
    assert missing == [
        "Hub unreachable: no hub named 'Finals' answers on lo (127.0.0.1/8), only 'alpha'; check "
        "hub_name against the hub's [discovery] name. Still looking."
    ]


async def test_after_the_link_is_lost_the_hub_is_looked_up_again_at_its_new_address(
    start_hub: Any, auto_node: Any
) -> None:
    old = start_hub()
    lan, lines = ScriptedLan(), []
    lan.hubs = [found("Quiz night", old.port)]
    node = auto_node(lan, lines)
    await node.wait_for(Connected)
    browses = len(lan.asked)

    await asyncio.to_thread(old.stop)  # the node must answer the close meanwhile
    new = await asyncio.to_thread(start_hub)  # a new port: the old address will never answer again
    assert new.port != old.port
    lan.hubs = [found("Quiz night", new.port)]
    mark = node.mark()
    connected = await node.wait_for(Connected, after=mark)
    assert connected.url == new.url
    assert len(lan.asked) > browses
    found_events = [e for e in node.events(mark) if isinstance(e, HubFound)]
    assert found_events[-1].url == new.url
    assert f"Found the hub 'Quiz night' at {new.url} on the LAN." in lines


async def test_a_manual_url_never_looks_on_the_lan(start_hub: Any, auto_node: Any) -> None:
    hub = start_hub()
    lan, lines = ScriptedLan(), []
    lan.hubs = [found("Elsewhere", 9)]
    node = auto_node(lan, lines, hub=hub.url, hub_name="Elsewhere")
    connected = await node.wait_for(Connected)
    assert connected.url == hub.url
    assert lan.asked == []
    assert not any(isinstance(e, HubFound) for e in node.events())
