"""A real hub with real WebSocket clients: handshake, errors, close codes, shutdown.

The hub runs in the test's event loop (``run_hub``) and the tests wait on its events; the tests of
signals and exit codes run the ``buzzer-hub`` command itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hub.core.events import BrowserPlayers, Decided, Left, NodeJoined, Refused
from hub.embed import RunningHub
from tests.conftest import HOST_TOKEN, LOOPBACK, Client, HubProcess, InProcessHubs
from wire.enums import InputKind

HOST_MODE = "[round]\nhostless = false\n"

ClientFactory = Callable[..., Any]


async def node(
    client_factory: ClientFactory, hub: RunningHub | HubProcess, node_id: str, **hello: Any
) -> Client:
    client: Client = await client_factory(hub.url, role="node", id=node_id, **hello)
    await client.expect("welcome")
    return client


async def host(client_factory: ClientFactory, hub: RunningHub | HubProcess) -> Client:
    client: Client = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await client.expect("welcome", role="host")
    await client.expect("state")
    return client


async def closed_with(client: Client, timeout: float = 5.0) -> int | None:
    """Wait until the hub closes the connection (answering syncs meanwhile); its close code."""
    async with asyncio.timeout(timeout):
        try:
            while True:
                frame = json.loads(await client.ws.recv())
                client.received.append(frame)
        except Exception:  # ConnectionClosed* once the close handshake is done
            pass
        await client.ws.wait_closed()
    return client.ws.close_code


async def test_node_is_greeted_with_its_name_and_the_round(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    alice: Client = await client_factory(
        hub.url, role="node", id="desk-1", name="Alice", input="keyboard"
    )
    welcome = await alice.expect("welcome")
    assert welcome["protocol"] == 1
    assert welcome["role"] == "node"
    assert welcome["id"] == "desk-1"
    assert welcome["greeting"] == "Hello Alice!"
    assert isinstance(welcome["hub_ns"], int)
    assert welcome["round"] == {
        "number": 0,
        "state": "idle",
        "release_ns": None,
        "synced": False,
        "locked_out": False,
        "winner": None,
        "out": False,
    }
    sync = await alice.expect("sync")  # the hub starts synchronising clocks at once
    assert sync["seq"] == 0
    assert isinstance(sync["t0_ns"], int)
    nameless = await node(client_factory, hub, "desk-2")
    assert nameless.received[-1]["greeting"] == "Hello desk-2!"
    joined = [e for e in hub.events.events() if isinstance(e, NodeJoined)]
    assert [(e.player, e.name, e.input, e.replaced) for e in joined] == [
        ("desk-1", "Alice", InputKind.KEYBOARD, False),
        ("desk-2", "desk-2", InputKind.GPIO, False),
    ]
    assert joined[0].peer.startswith(f"{LOOPBACK}:")


async def test_viewer_and_host_are_greeted_with_the_whole_picture(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    viewer: Client = await client_factory(hub.url, role="viewer", name="Big screen")
    welcome = await viewer.expect("welcome")
    assert welcome["greeting"] == "Hello Big screen!"
    assert welcome["round"]["state"] == "idle"
    state = await viewer.expect("state")
    assert state["players"] == []
    assert state["history"] == []
    # A viewer may watch but not control.
    await viewer.send(type="arm")
    error = await viewer.expect("error")
    assert error["code"] == "not_allowed"
    boss = await host(client_factory, hub)
    await boss.send(type="press", press_id="h1", at_ns=0)
    assert (await boss.expect("error"))["code"] == "not_allowed"
    await boss.send(type="hello", protocol=1, role="host", token=HOST_TOKEN)
    assert (await boss.expect("error"))["code"] == "already_greeted"
    await boss.send(type="arm", ref="go", note="now")
    warning = await boss.expect("warning")
    assert warning["code"] == "unknown_field"
    armed = await boss.expect("state")
    assert armed["round"]["number"] == 1
    assert armed["round"]["state"] == "armed"
    watched = await viewer.expect("state")
    while watched["round"]["number"] != 1:  # pictures may be coalesced, never skipped at the end
        watched = await viewer.expect("state")
    assert watched["round"]["state"] == "armed"


BAD_FIRST_FRAMES: list[tuple[str | bytes, str]] = [
    ("{oops", "bad_json"),
    ('{"type": "teleport"}', "unknown_type"),
    ('{"type": "press", "press_id": "a1"}', "missing_field"),
    ('{"type": "press", "press_id": "a1", "at_ns": "soon"}', "bad_field"),
    ('{"type": "press", "press_id": "a1", "at_ns": 1}', "hello_required"),
    ('{"type": "hello", "protocol": 1, "role": "node"}', "missing_field"),
    ('{"type": "hello", "protocol": 1, "role": "boss"}', "bad_field"),
    (b"\x00\x01", "binary_frame"),
]


async def test_bad_first_frames_get_an_error_and_the_hello_may_follow(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    for number, (frame, code) in enumerate(BAD_FIRST_FRAMES):
        client: Client = await client_factory(hub.url)
        await client.send_raw(frame)
        error = await client.expect("error")
        assert (error["code"], frame) == (code, frame)
        assert error["message"]
        await client.send(type="hello", protocol=1, role="node", id=f"desk-{number}")
        assert (await client.expect("welcome"))["id"] == f"desk-{number}"


async def test_wrong_protocol_version_is_refused_and_closed_with_4426(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    for version in (0, 2):
        mark = hub.events.mark()
        client: Client = await client_factory(hub.url)
        await client.send(type="hello", protocol=version, role="node", id="desk-1")
        error = await client.expect("error")
        assert error["code"] == "version_mismatch"
        assert f"the client {version}" in error["message"]
        assert await closed_with(client) == 4426
        assert client.ws.close_reason.startswith("this hub speaks protocol 1")
        refused = await hub.events.wait_for(Refused, after=mark)
        assert (refused.reason, refused.closed) == (error["message"], True)
    assert not [e for e in hub.events.events() if isinstance(e, NodeJoined)]


async def test_wrong_host_token_is_refused_and_closed_with_4401(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    for token in ("wrong", None):
        hello: dict[str, Any] = (
            {"role": "host"} if token is None else {"role": "host", "token": token}
        )
        client: Client = await client_factory(hub.url, **hello)
        error = await client.expect("error")
        assert error["code"] == "bad_token"
        assert await closed_with(client) == 4401


async def test_node_token_is_required_when_configured(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub('[server]\nnode_token = "n0de"\n')
    stranger: Client = await client_factory(hub.url, role="node", id="desk-1")
    assert (await stranger.expect("error"))["code"] == "bad_token"
    assert await closed_with(stranger) == 4401
    member: Client = await client_factory(hub.url, role="node", id="desk-1", token="n0de")
    assert (await member.expect("welcome"))["greeting"] == "Hello desk-1!"


async def test_errors_after_the_hello_leave_the_connection_and_the_round_intact(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE + "release_lead_ms = 0\n")
    boss = await host(client_factory, hub)
    noisy = await node(client_factory, hub, "noisy")
    calm = await node(client_factory, hub, "calm")
    await boss.send(type="arm")
    await calm.expect("round", state="armed")
    await noisy.expect("round", state="armed")

    bad: list[tuple[str | bytes, str]] = [
        ("{oops", "bad_json"),
        ("42", "not_object"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "press"}', "missing_field"),
        ('{"type": "press", "press_id": "n1", "at_ns": true}', "bad_field"),
        (b"binary", "binary_frame"),
        ('{"type": "arm"}', "not_allowed"),
        ('{"type": "reset"}', "not_allowed"),
        ('{"type": "hello", "protocol": 1, "role": "node", "id": "noisy"}', "already_greeted"),
    ]
    for frame, code in bad:
        await noisy.send_raw(frame)
        assert (await noisy.expect("error"))["code"] == code

    # Unknown fields and unknown sync replies are warnings: the message is used or ignored.
    await noisy.send(type="sync_reply", seq=999_999, t0_ns=1, t1_ns=2, t2_ns=3)
    assert (await noisy.expect("warning"))["code"] == "unknown_sync"

    # The other player's round went on as if nothing happened.
    await calm.send(type="press", press_id="c1", at_ns=2**62)
    assert (await calm.expect("ack"))["press_id"] == "c1"
    calm_result = await calm.expect("result", press_id="c1")
    assert calm_result["rank"] == 1

    # And the noisy connection still plays: its press is counted (behind the calm one).
    await noisy.send(type="press", press_id="n1", at_ns=2**62, colour="red")
    warning = await noisy.expect("warning")
    assert warning["code"] == "unknown_field"
    assert "colour" in warning["message"]
    await noisy.expect("ack", press_id="n1")
    noisy_result = await noisy.expect("result", press_id="n1")
    assert noisy_result["rank"] == 2
    assert noisy_result["behind_ns"] >= 0
    state = await boss.expect("state")
    while [r["player"] for r in state["round"]["results"]] != ["calm", "noisy"]:
        state = await boss.expect("state")
    assert state["round"]["winner"] == "calm"


async def test_oversized_frame_closes_with_1009_and_others_play_on(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub("[round]\nrelease_lead_ms = 0\n")  # host-less: armed at start
    big = await node(client_factory, hub, "big")
    other = await node(client_factory, hub, "other")
    await big.send(type="press", press_id="b1", at_ns=0, pad="x" * 5000)
    assert await closed_with(big) == 1009
    await other.send(type="press", press_id="o1", at_ns=2**62)
    result = await other.expect("result", press_id="o1")
    assert result["rank"] == 1


async def test_a_fault_handling_one_links_frame_closes_that_link_1011_and_others_play_on(
    run_hub: InProcessHubs,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug of the hub's met by one frame costs its sender the link (it reconnects to a fresh
    start), never the hub or the other players."""
    hub = await run_hub("[round]\nrelease_lead_ms = 0\n")  # host-less: armed at start
    unlucky = await node(client_factory, hub, "unlucky")
    other = await node(client_factory, hub, "other")
    core = hub.server.core
    receive = core.receive

    def faulty(link: int, frame: str | bytes, *args: Any) -> Any:
        if isinstance(frame, str) and "fault" in frame:
            raise RuntimeError("a bug met by this frame")
        return receive(link, frame, *args)

    monkeypatch.setattr(core, "receive", faulty)
    await unlucky.send(type="press", press_id="fault", at_ns=0)
    assert await closed_with(unlucky) == 1011
    await other.send(type="press", press_id="o1", at_ns=2**62)
    result = await other.expect("result", press_id="o1")
    assert result["rank"] == 1


async def test_a_second_connection_for_the_same_node_replaces_the_first(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    old = await node(client_factory, hub, "desk-1", name="Alice")
    new = await node(client_factory, hub, "desk-1")
    assert new.received[-1]["greeting"] == "Hello Alice!"  # the hub remembers the player
    assert await closed_with(old) == 4409
    await new.send(type="press", press_id="p1", at_ns=0)
    assert (await new.expect("ack"))["press_id"] == "p1"
    joined = [e for e in hub.events.events() if isinstance(e, NodeJoined)]
    assert [(e.name, e.replaced) for e in joined] == [("Alice", False), ("Alice", True)]
    # The replaced link's end is not the player leaving: the player is still online.
    assert not [e for e in hub.events.events() if isinstance(e, Left)]


async def test_sigterm_closes_every_connection_with_1001_and_exits_0(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    """The command line's own shutdown: signal, close codes, exit status, last words."""
    hub = start_hub()
    player = await node(client_factory, hub, "desk-1")
    boss = await host(client_factory, hub)
    async with connect(hub.url) as tutorial:
        await tutorial.send("Carol")
        assert await tutorial.recv() == "Hello Carol!"
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(closed_with(player), closed_with(boss))
        async with asyncio.timeout(5):
            await tutorial.wait_closed()
    assert codes == [1001, 1001]
    assert tutorial.close_code == 1001
    assert await asyncio.to_thread(hub.proc.wait, 10) == 0
    log = await asyncio.to_thread(hub.final_log)
    assert log[-1].endswith(" INFO hub: stopped"), log[-3:]
    assert [line for line in log if "shutting down: closing 3 connections" in line]


async def test_an_unplugged_station_does_not_hold_up_a_restart(
    start_hub: Callable[..., HubProcess], client_factory: ClientFactory
) -> None:
    """A station that no longer reads (a pulled cable, a frozen Pi) never answers the close
    frame: the hub gives up on it after 2 s rather than the library's 10 s, while a live
    station still hears 1001."""
    hub = start_hub()
    live = await node(client_factory, hub, "desk-1")
    frozen = await node(client_factory, hub, "desk-2")
    frozen.ws.transport.pause_reading()  # its close frame is never read, never answered
    try:
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        assert await closed_with(live) == 1001
        # Well under the 10 s it took, with room for a busy machine.
        assert await asyncio.to_thread(hub.proc.wait, 6) == 0
        log = await asyncio.to_thread(hub.final_log)
        assert log[-1].endswith(" INFO hub: stopped"), log[-3:]
    finally:
        frozen.ws.transport.abort()  # it would wait its own 10 s for a close it cannot read


async def test_sigint_also_stops_cleanly(start_hub: Callable[..., HubProcess]) -> None:
    hub = start_hub()
    assert await asyncio.to_thread(hub.stop, signal.SIGINT) == 0


async def test_hostless_hub_arms_at_start_and_again_after_each_decision(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub("[round]\nrelease_lead_ms = 0\nauto_arm_delay_s = 0.2\n")
    player: Client = await client_factory(hub.url, role="node", id="desk-1")
    welcome = await player.expect("welcome")
    assert welcome["round"]["number"] == 1
    assert welcome["round"]["state"] == "armed"
    await player.send(type="press", press_id="p1", at_ns=2**62)
    assert (await player.expect("result", press_id="p1"))["rank"] == 1
    # The results go out before the decision is announced to every node: the pressers are waiting.
    # (The press's ack may come between: it follows the disk, the announcement the next wake-up.)
    await player.expect("round", number=1, state="decided")
    seen = [(f["type"], f.get("state")) for f in player.received]
    assert seen.index(("result", None)) < seen.index(("round", "decided"))
    await player.expect("round", number=2, state="armed")
    await player.send(type="press", press_id="p2", at_ns=2**62)
    second = await player.expect("result", press_id="p2")
    assert second["round"] == 2
    assert second["rank"] == 1
    decided = await hub.events.wait_for(Decided, lambda e: e.round == 2)
    assert decided.winner == "desk-1"
    assert [e.round for e in hub.events.events() if isinstance(e, Decided)] == [1, 2]


def silent_node(hub: RunningHub, node_id: str) -> socket.socket:
    """A node that says hello and then goes silent, like one whose Wi-Fi dropped: it never
    answers anything again, not even a close frame."""
    return silent_client(hub, {"type": "hello", "protocol": 1, "role": "node", "id": node_id})


def silent_client(
    hub: RunningHub, hello: dict[str, Any], receive_buffer: int | None = None
) -> socket.socket:
    """A client that says ``hello`` and then never reads or answers anything again;
    ``receive_buffer`` shrinks its socket's receive buffer (and so the window it offers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect((LOOPBACK, hub.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: {LOOPBACK}:{hub.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 101 ")
    payload = json.dumps(hello).encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def test_a_stalled_console_with_pictures_queued_does_not_hold_up_a_stop(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    """A host console whose machine stalled with its connection still up (a frozen laptop): its
    window is full, so the hub's pictures queue in front of the close frame, and closing waits
    for them to drain before any close timeout starts. A stop gives up on it all the same."""
    hub = await run_hub(HOST_MODE)
    hello = {"type": "hello", "protocol": 1, "role": "host", "token": HOST_TOKEN}
    stalled = await asyncio.to_thread(silent_client, hub, hello, 4096)
    boss = await host(client_factory, hub)
    player = await node(client_factory, hub, "desk-1")
    assert hub.server.websockets is not None
    port = stalled.getsockname()[1]
    link = next(c for c in hub.server.websockets.connections if c.remote_address[1] == port)
    # Loopback's 64 KB segments let the kernel hold megabytes for a peer that does not read; a
    # station's Wi-Fi link holds far less. The hub's side of this one link is held to that.
    link.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    async with asyncio.timeout(60):  # each command sends every host a picture
        while link.transport.get_write_buffer_size() <= link.write_limit_high:
            await boss.send(type="arm")
            await player.expect("round", state="armed")
            await boss.send(type="reset")
            await player.expect("round", state="idle")
    try:
        async with asyncio.timeout(6):  # well under the 10 s, or more, it could take
            await run_hub.stop(hub)
        assert await closed_with(player) == 1001
        assert await closed_with(boss) == 1001
    finally:
        stalled.close()


async def test_a_reconnecting_node_is_welcomed_at_once_even_if_its_old_link_is_dead(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    dead = await asyncio.to_thread(silent_node, hub, "desk-1")
    try:
        await hub.events.wait_for(NodeJoined, lambda e: e.player == "desk-1")
        fresh: Client = await client_factory(hub.url, role="node", id="desk-1")
        await fresh.expect("welcome")
        # The hub did not wait for the dead link's close handshake before welcoming: the dead
        # link never answers, so that handshake ends only when the hub gives up on it and drops
        # the socket. The socket is still up.
        dead.setblocking(False)
        try:
            still_up = dead.recv(4096) != b""
        except BlockingIOError:
            still_up = True
        assert still_up, "the hub dropped the dead link before welcoming its successor"
        joined = [e.replaced for e in hub.events.events() if isinstance(e, NodeJoined)]
        assert joined == [False, True]
        # The new link is synchronised from seq 0 with no interference from the old one.
        seqs = [(await fresh.expect("sync"))["seq"] for _ in range(4)]
        assert seqs == [0, 1, 2, 3]
    finally:
        dead.close()


async def test_only_a_host_may_refuse_browser_players_and_then_only_they_are_turned_away(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    viewer: Client = await client_factory(hub.url, role="viewer")
    await viewer.expect("state")
    await viewer.send(type="players", browser=False)
    assert (await viewer.expect("error"))["code"] == "not_allowed"
    page: Client = await client_factory(hub.url, role="node", id="web-1", input="browser")
    await page.expect("welcome")

    assert not [e for e in hub.events.events() if isinstance(e, BrowserPlayers)]
    console = await host(client_factory, hub)
    mark = hub.events.mark()
    await console.send(type="players", browser=False)
    assert await console.expect("state", join={"browser_players": False, "token_required": False})
    assert (await hub.events.wait_for(BrowserPlayers, after=mark)).allowed is False
    left = await hub.events.wait_for(Left, after=mark)
    assert (left.who, left.reason) == ("web-1", "refused by the host")
    # The page already in is dropped, with the reason.
    assert await closed_with(page) == 4403
    errors = [f["message"] for f in page.received if f["type"] == "error"]
    assert any("not taking players from phones" in message for message in errors)
    again: Client = await client_factory(hub.url, role="node", id="web-1", input="browser")
    assert (await again.expect("error"))["code"] == "not_allowed"
    assert await closed_with(again) == 4403
    # Wired stations are not affected.
    pi: Client = await client_factory(hub.url, role="node", id="pi-1", input="gpio")
    await pi.expect("welcome")

    mark = hub.events.mark()
    await console.send(type="players", browser=True)
    await console.expect("state", join={"browser_players": True, "token_required": False})
    assert (await hub.events.wait_for(BrowserPlayers, after=mark)).allowed is True
    back: Client = await client_factory(hub.url, role="node", id="web-1", input="browser")
    await back.expect("welcome")
