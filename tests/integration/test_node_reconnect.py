"""Nodes and a hub that goes away: reconnecting, re-sending, refusing, reporting.

Real hub processes, real node objects and real sockets on 127.0.0.1; the only stand-ins are
gpiozero's mock pins.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from typing import Any

import pytest

from firmware.config import ConnectionSection, GpioSection, NodeConfig, NodeSection
from firmware.keepalive import LOST_HUB_S
from firmware.node import (
    Acked,
    Connected,
    Disconnected,
    LedPattern,
    Node,
    NodeFatal,
    Refused,
    Resulted,
    Sent,
)
from hub import ctl
from tests.conftest import HOST_TOKEN, PROXY_VARIABLES
from tests.support.buttons import click
from wire.codec import as_data

# Host-less, so the restarted hub arms a round at once; no re-arm during the test.
HOSTLESS = "[round]\nrelease_lead_ms = 0\nauto_arm_delay_s = 60\n"


async def synced(hub: Any, node_id: str) -> None:
    await asyncio.to_thread(hub.wait_for_log, rf"node {node_id} synced")


def press_ids(state: dict[str, Any], player: str) -> list[str]:
    round_ = state["round"]
    return [o["press_id"] for o in round_["results"] + round_["refused"] if o["player"] == player]


async def test_nodes_come_back_after_a_hub_restart_and_presses_count_once(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    hub = start_hub(config=HOSTLESS)
    pins = [("GPIO17", "GPIO27"), ("GPIO5", "GPIO6"), ("GPIO13", "GPIO19")]
    nodes = [
        await start_node(hub.url, f"n{i}", button_pin=button, led_pin=led)
        for i, (button, led) in enumerate(pins)
    ]
    for node in nodes:
        await node.wait_for(Connected)
        await synced(hub, node.id)

    # A press that reaches a frozen hub, which then dies before acknowledging it.
    hub.proc.send_signal(signal.SIGSTOP)
    mark = nodes[1].mark()
    await click(mock_pins.pin("GPIO5"), nodes[1])
    in_flight = await nodes[1].wait_for(Sent, after=mark)
    marks = [node.mark() for node in nodes]
    hub.kill()
    for node, mark in zip(nodes, marks, strict=True):
        await node.wait_for(Disconnected, after=mark)
    await nodes[0].wait_for(LedPattern, lambda e: e.name == "heartbeat", after=marks[0])

    # A press made while there is no hub at all.
    offline = await click(mock_pins.pin("GPIO17"), nodes[0])

    marks = [node.mark() for node in nodes]
    await asyncio.to_thread(hub.start)
    listening = time.monotonic()
    back = [
        await node.wait_for(Connected, after=mark, timeout=10)
        for node, mark in zip(nodes, marks, strict=True)
    ]
    delays_ms = [round((event.at - listening) * 1000) for event in back]
    print(f"\nnodes back after the hub was listening again: {delays_ms} ms")
    await nodes[0].wait_for(Acked, lambda e: e.press_id == offline.press_id, after=marks[0])
    await nodes[1].wait_for(Acked, lambda e: e.press_id == in_flight.press_id, after=marks[1])
    for node, mark, press_id in (
        (nodes[0], marks[0], offline.press_id),
        (nodes[1], marks[1], in_flight.press_id),
    ):  # a press leaves the outbox once its result is in as well
        await node.wait_for(Resulted, lambda e, p=press_id: e.result.press_id == p, after=mark)
    state = as_data(await ctl.run(hub.url, HOST_TOKEN, "status"))

    assert max(delays_ms) < 3000, delays_ms  # the goal is about one second; see the report
    assert press_ids(state, "n0") == [offline.press_id]
    assert press_ids(state, "n1") == [in_flight.press_id]
    assert press_ids(state, "n2") == []
    resent = [e for e in nodes[0].events(marks[0]) if isinstance(e, Sent)]
    assert [(e.press_id, e.resend) for e in resent] == [(offline.press_id, True)]
    assert all(len(node.outbox) == 0 for node in nodes)


async def test_the_hub_counts_a_press_sent_twice_once(start_hub: Any, client_factory: Any) -> None:
    """The outbox re-sends whatever was not acknowledged; that is safe only because of this."""
    hub = start_hub(config=HOSTLESS)
    press = {"type": "press", "press_id": "zed.b00t.1", "at_ns": time.monotonic_ns()}
    first = await client_factory(hub.url, role="node", id="zed", name="Zed")
    await first.expect("welcome")
    await first.send(**press)
    await first.expect("ack", press_id="zed.b00t.1")
    await first.ws.close()
    again = await client_factory(hub.url, role="node", id="zed", name="Zed")
    await again.expect("welcome")
    await again.send(**press)
    await again.expect("ack", press_id="zed.b00t.1")
    result = await again.expect("result", press_id="zed.b00t.1")
    state = as_data(await ctl.run(hub.url, HOST_TOKEN, "status"))

    assert "repeat" not in result["flags"]
    assert press_ids(state, "zed") == ["zed.b00t.1"]


async def test_a_refused_token_is_reported_and_retried_slowly(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    hub = start_hub(config='[server]\nnode_token = "s3cret"\n')
    lines: list[str] = []
    eve = await start_node(
        hub.url,
        "eve",
        led_pin="",
        console=lines.append,
        connection=ConnectionSection(refused_retry_s=1.0),
    )
    first = await eve.wait_for(Refused)
    started = time.monotonic()
    mark = eve.mark()
    await eve.wait_for(Refused, after=mark)
    gap = time.monotonic() - started
    friend = await start_node(hub.url, "friend", token="s3cret", button_pin="GPIO5", led_pin="")
    await friend.wait_for(Connected)

    assert first.code == 4401
    assert gap >= 0.9  # waited the refusal backoff, not a tight loop
    assert any("refused this node's token" in line and "--token" in line for line in lines)
    assert not any(isinstance(e, Connected) for e in eve.events())


async def test_an_unreachable_hub_is_reported_and_shown(start_node: Any, mock_pins: Any) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lines: list[str] = []
    node = await start_node(f"ws://127.0.0.1:{port}", "lost", console=lines.append)
    down = await node.wait_for(Disconnected)
    await node.wait_for(LedPattern, lambda e: e.name == "heartbeat:cycle")
    states = mock_pins.pin("GPIO27").states

    assert f"cannot reach ws://127.0.0.1:{port}: nothing listens there" in down.reason
    assert any(line.startswith("Hub unreachable: cannot reach") for line in lines)
    assert [s.state for s in states][:3] == [False, True, False]
    assert states[2].timestamp < 0.5  # a short flash...
    assert len(states) == 3 or states[3].timestamp > 1.0  # ...then a long dark pause


async def test_a_second_station_with_the_same_id_is_told_apart(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    hub = start_hub(config=HOSTLESS)
    lines: list[str] = []
    older = await start_node(hub.url, "twin", led_pin="", console=lines.append)
    await older.wait_for(Connected)
    newer = await start_node(hub.url, "twin", button_pin="GPIO5", led_pin="")
    await newer.wait_for(Connected)
    refused = await older.wait_for(Refused)

    assert refused.code == 4409
    assert refused.retry_s >= 10  # two boxes with one id must not take turns kicking each other
    assert any("give each node its own --id" in line for line in lines)


async def test_a_hub_of_another_protocol_version_stops_the_node(mock_pins: Any) -> None:
    """A hub from a future release, as far as this node can tell: it answers 4426."""
    from websockets.asyncio.server import ServerConnection, serve

    async def future_hub(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"type":"error","code":"version_mismatch","message":"speak 2"}')
        await ws.close(4426, "protocol version not supported")

    async with serve(future_hub, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        lines: list[str] = []
        config = NodeConfig(
            node=NodeSection(hub=f"ws://127.0.0.1:{port}", id="old"), gpio=GpioSection(led_pin="")
        )
        node = Node(config, console=lines.append)
        with pytest.raises(NodeFatal, match="another protocol version"):
            await asyncio.wait_for(node.run(), 5)
    assert any("speak 2" in line for line in lines)


async def test_a_hub_shutting_down_cleanly_is_reported_and_rejoined(
    start_hub: Any, start_node: Any
) -> None:
    hub = start_hub(config=HOSTLESS)
    lines: list[str] = []
    node = await start_node(hub.url, "calm", led_pin="", console=lines.append)
    await node.wait_for(Connected)
    mark = node.mark()
    assert await asyncio.to_thread(hub.stop) == 0
    down = await node.wait_for(Disconnected, after=mark)
    await asyncio.to_thread(hub.start)
    back = await node.wait_for(Connected, after=mark)

    assert down.code == 1001
    assert down.reason == "the hub is shutting down"
    assert "Hub unreachable: the hub is shutting down. Retrying every second or so." in lines
    assert back.greeting == "Hello calm!"
    assert any(line.startswith("Hello calm! Back in touch after") for line in lines)


async def test_a_hub_that_stalls_for_seconds_keeps_its_stations(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    """A hub frozen longer than a 2 s ping and its 3 s timeout allowed (a slow SD card, a long
    garbage collection) keeps its stations: the kernel that watches the link answers for the
    hub's machine, and the station's WebSocket ping is rare and patient."""
    hub = start_hub(config=HOSTLESS)
    node = await start_node(hub.url, "patient", button_pin="GPIO17", led_pin="GPIO27")
    await node.wait_for(Connected)
    await synced(hub, "patient")
    mark = node.mark()
    hub.proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError):
            await node.wait_for(Disconnected, after=mark, timeout=LOST_HUB_S + 2)
    finally:
        hub.proc.send_signal(signal.SIGCONT)
    press = await click(mock_pins.pin("GPIO17"), node)
    await node.wait_for(Acked, lambda e: e.press_id == press.press_id, after=mark)

    assert not [e for e in node.events(mark) if isinstance(e, Connected | Disconnected)]


async def test_a_node_reaches_its_hub_directly_whatever_web_proxy_is_set(
    start_hub: Any, start_node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A laptop from an office names a web proxy in its environment; the hub is on the LAN,
    where no proxy could reach it (here nothing listens at the proxy's address at all)."""
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):  # nothing bypasses them, not even loopback
        monkeypatch.delenv(name, raising=False)
    hub = start_hub(config=HOSTLESS)
    node = await start_node(hub.url, "office", led_pin="")
    connected = await node.wait_for(Connected, timeout=10)
    assert connected.greeting == "Hello office!"


async def test_a_hub_checking_tokens_before_the_upgrade_admits_the_node_and_refuses_a_wrong_one(
    start_hub: Any, start_node: Any, mock_pins: Any
) -> None:
    """The node sends its token on the upgrade, so a hub that refuses tokenless upgrades takes
    it; a wrong token comes back as HTTP 401, which the node treats like a 4401 close."""
    hub = start_hub(
        config='[server]\nnode_token = "s3cret"\n[security]\ntoken_before_upgrade = true\n'
    )
    friend = await start_node(hub.url, "friend", token="s3cret", led_pin="")
    welcome = await friend.wait_for(Connected)
    assert welcome.greeting == "Hello friend!"
    lines: list[str] = []
    eve = await start_node(
        hub.url,
        "eve",
        token="guess",
        button_pin="GPIO5",
        led_pin="",
        console=lines.append,
        connection=ConnectionSection(refused_retry_s=1.0),
    )
    refused = await eve.wait_for(Refused)
    assert refused.code == 4401
    assert any("refused this node's token" in line for line in lines)
    hub.wait_for_log(r"refused 127\.0\.0\.1:\d+: 401 wrong token")
