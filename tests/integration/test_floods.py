"""Floods a real hub must shrug off: pings, viewers, vanishing peers; and what /api reads need.

Each flood runs against a real ``buzzer-hub`` on loopback while an honest node plays, and the
honest node's press must still be answered (timing goals are in bench/flood.py, not here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.core.events import PressTaken
from tests.conftest import HOST_TOKEN, Client, HubProcess, InProcessHubs
from tests.integration.test_security import (
    closed_with,
    masked_text_frame,
    open_stalled_viewer,
    raw_websocket,
)

ClientFactory = Callable[..., Any]
HOST_MODE = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


async def honest_press(client_factory: ClientFactory, hub: HubProcess, tag: str) -> float:
    """An honest node joins and presses in an armed round; its press-to-result time, s."""
    node, host = await honest_pair(client_factory, hub, tag)
    return await press_in_a_round(node, host, tag)


async def honest_pair(
    client_factory: ClientFactory, hub: HubProcess, tag: str
) -> tuple[Client, Client]:
    node: Client = await client_factory(hub.url, role="node", id=f"honest-{tag}")
    await node.expect("welcome")
    await node.expect("round", synced=True)
    host: Client = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("welcome")
    return node, host


async def press_in_a_round(node: Client, host: Client, tag: str) -> float:
    await host.send(type="arm")
    await node.expect("round", state="armed")
    sent = time.monotonic()
    await node.send(type="press", press_id=f"{tag}-1", at_ns=time.monotonic_ns())
    result = await node.expect("result", press_id=f"{tag}-1")
    assert result["rank"] == 1
    return time.monotonic() - sent


async def test_a_ping_flood_counts_in_the_message_budget(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    hub = start_hub(config=HOST_MODE)
    honest, host = await honest_pair(client_factory, hub, "p")
    flooder = await client_factory(hub.url, role="viewer")
    await flooder.expect("welcome")
    with contextlib.suppress(ConnectionClosed):
        for _ in range(2000):
            await flooder.ws.ping()
    code, reason = await closed_with(flooder)
    assert (code, reason) == (4429, "too many messages")
    await asyncio.to_thread(hub.wait_for_log, r"dropped .*too many messages \(close 4429\)")
    for _ in range(20):  # it comes straight back: one HTTP answer each, for a few seconds
        with pytest.raises(InvalidStatus) as refused:
            async with connect(hub.url, open_timeout=5):
                pass
        assert refused.value.response.status_code == 503
        assert b"just dropped for flooding" in refused.value.response.body
    # A token holder from the same address is not held back.
    console = Client(
        await connect(hub.url, additional_headers={"Authorization": f"Bearer {HOST_TOKEN}"})
    )
    await console.send(type="hello", protocol=1, role="host")
    await console.expect("welcome")
    await console.ws.close()
    await press_in_a_round(honest, host, "p")  # connected before the flood: unaffected
    # Lines come in order: once the round's decision is logged, every refusal's line is in.
    await asyncio.to_thread(hub.wait_for_log, r"round \d+ decided")
    assert len([line for line in hub.lines if "hub.guard: dropped" in line]) == 1
    assert len([line for line in hub.lines if "just dropped for flooding" in line]) == 1


def _http(hub: HubProcess, path: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(hub.http + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def test_one_machine_cannot_take_the_connection_cap_from_a_host_and_the_stations(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    config = HOST_MODE + "[limits]\nmax_connections = 100\n[server]\nnode_token = 'n-secret'\n"
    hub = start_hub(config=config)
    viewers = []
    for _ in range(64):
        viewer = await client_factory(hub.url, role="viewer")
        viewers.append(viewer)
    for viewer in viewers:
        await viewer.expect("welcome")
    with pytest.raises(InvalidStatus) as refused:  # the 65th from this address
        async with connect(hub.url, open_timeout=5):
            pass
    assert refused.value.response.status_code == 503
    assert b"without a token from this address" in refused.value.response.body
    # Token holders still get in: a station (node token) and a host (host token).
    node = Client(await connect(hub.url, additional_headers={"Authorization": "Bearer n-secret"}))
    host = Client(
        await connect(hub.url, additional_headers={"Authorization": f"Bearer {HOST_TOKEN}"})
    )
    try:
        await node.send(type="hello", protocol=1, role="node", id="desk-1")
        await node.expect("welcome")
        await node.expect("round", synced=True)
        await host.send(type="hello", protocol=1, role="host")
        await host.expect("welcome")
        await host.send(type="arm")
        await node.expect("round", state="armed")
        await node.send(type="press", press_id="d-1", at_ns=time.monotonic_ns())
        assert (await node.expect("result", press_id="d-1"))["rank"] == 1
    finally:
        await node.ws.close()
        await host.ws.close()


async def test_api_reads_follow_the_tokens(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    hub = start_hub(config=HOST_MODE + "[server]\nnode_token = 'n-secret'\n")
    node = await client_factory(hub.url, role="node", id="desk-1", name="Ada", token="n-secret")
    await node.expect("welcome")
    status, body = _http(hub, "/api/state")
    assert status == 200
    closed = json.loads(body)
    assert set(closed) == {"join", "round"}  # whether a token is needed, and nothing else
    assert closed["join"]["token_required"] is True
    assert b"Ada" not in body
    assert _http(hub, "/api/rounds.csv")[0] == 401
    assert _http(hub, "/api/history?before=5")[0] == 401
    status, body = _http(hub, "/api/state", token="n-secret")
    public = json.loads(body)
    assert [p["name"] for p in public["players"]] == ["Ada"]
    assert public["storage"]["path"] is None  # where the hub keeps its files is the host's
    assert _http(hub, "/api/rounds.csv", token="n-secret")[0] == 200
    status, body = _http(hub, "/api/state?token=" + HOST_TOKEN)
    assert json.loads(body)["storage"]["path"].endswith("results.db")
    status, body = _http(hub, "/api/history?before=5", token=HOST_TOKEN)
    assert (status, json.loads(body)) == (200, {"history": []})


def _vanishing_pinger(port: int) -> None:
    """A viewer that sends pings as fast as it can (within its budget: this is about the
    answers that find it gone, not the budget), then resets the connection."""
    sock = open_stalled_viewer(port)
    ping = struct.pack("!BB", 0x89, 0x80) + b"\x00\x00\x00\x00"
    try:
        for _ in range(150):
            sock.sendall(ping)
    except OSError:
        pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, with the hub's answers still on their way


async def test_peers_that_ping_and_vanish_cost_a_few_log_lines(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    hub = start_hub(config=HOST_MODE)
    honest, host = await honest_pair(client_factory, hub, "v")
    for _ in range(20):
        await asyncio.to_thread(_vanishing_pinger, hub.port)
    await press_in_a_round(honest, host, "v")  # the hub is alive and answering
    noisy = [line for line in hub.lines if "asyncio" in line or "Traceback" in line]
    assert len(noisy) <= 5, noisy[:10]


async def test_a_backlog_of_frames_on_one_link_takes_turns_with_the_others(
    run_hub: InProcessHubs,
) -> None:
    """A client may send its whole burst of frames at once (200 by default). Handled in one go,
    they held every other link's frames back for as long: about 25 ms in the junk-frame flood.
    Each link's frames take turns with the others'."""
    hub = await run_hub("[limits]\nmessage_burst = 5000\n")  # host-less: round 1 is armed
    taken: list[PressTaken] = []
    hub.listen(lambda event: taken.append(event) if isinstance(event, PressTaken) else None)
    masher = await asyncio.to_thread(raw_websocket, hub.port)
    honest = await connect(hub.url, compression=None, open_timeout=5)
    try:
        masher.sendall(masked_text_frame("buzz") * 3000)  # a tutorial client's 3,000 presses
        await honest.send("buzz")  # right behind them
        async with asyncio.timeout(30):
            await honest.recv()  # its answer: its press was taken
        mashing = taken[0].player
        turn = next(i for i, event in enumerate(taken) if event.player != mashing)
        assert turn < 100, f"the honest press waited for {turn} of the masher's"
    finally:
        masher.close()
        await honest.close()


def _pings_read(sock: socket.socket, count: int) -> None:
    """Read the hub's frames, never answering one, until ``count`` pings came. Blocking: call
    it in a thread."""
    pings = 0
    while pings < count:
        head = _exactly(sock, 2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", _exactly(sock, 2))[0]
        _exactly(sock, length)
        pings += head[0] & 0x0F == 0x9


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the hub closed the connection"
        data += chunk
    return data


async def test_a_peer_that_never_answers_pings_leaves_nothing_behind_per_ping(
    run_hub: InProcessHubs,
) -> None:
    """The hub pings every link for its round trip. A peer that never answers, yet speaks often
    enough never to be closed by the keepalive, must not make the hub keep something for every
    ping for as long as it stays: the library's ``ping()`` kept a future for each until a pong."""
    hub = await run_hub("")
    mute = await asyncio.to_thread(raw_websocket, hub.port)
    try:
        await asyncio.to_thread(mute.sendall, masked_text_frame("Mute"))  # a tutorial client
        await asyncio.to_thread(_pings_read, mute, 3)  # the first three, unanswered
        [link] = hub.server._links.values()
        assert link.pending_pings == {}
        assert len(link._round_trips) == 3  # the hub's own, given up after 5 s
    finally:
        mute.close()
