"""Every refusal and limit of a real hub, each seen from the client it hits and in the hub's log.

Each breach must close only the offending client with its documented code (or refuse it with an
HTTP status before the upgrade), log one line, and leave everyone else's connection and round alone.
The hub runs in the test's event loop: what it logs is in ``caplog`` by the time the client hears
the refusal (the line is written first), and its events say when it has seen a client come or go.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hub.core.events import Left, NodeJoined, Refused, WatcherJoined
from tests.conftest import (
    HOST_TOKEN,
    LOOPBACK,
    Client,
    InProcessHubs,
    console_script,
    logged,
    trouble,
)

ClientFactory = Callable[..., Any]
HOST_MODE = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


async def closed_with(client: Client, timeout: float = 5.0) -> tuple[int | None, str]:
    """Read until the hub closes the connection; its close code and reason.

    It only reads: a client blocked in a send while its own reading is paused (a full receive
    queue) would not notice the hub dropping the connection until its close timeout.
    """
    async with asyncio.timeout(timeout):
        try:
            while True:
                frame = await client.ws.recv()
                if isinstance(frame, str) and frame.startswith("{"):
                    client.received.append(json.loads(frame))
        except ConnectionClosed:
            pass
        await client.ws.wait_closed()
    return client.ws.close_code, client.ws.close_reason or ""


async def refused_status(url: str, **options: Any) -> tuple[int, str]:
    """Try to connect; return the HTTP status and body of the refusal (failing if accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=5, **options):
            pass
    response = refused.value.response
    return response.status_code, response.body.decode()


async def node(client_factory: ClientFactory, url: str, node_id: str, **hello: Any) -> Client:
    client: Client = await client_factory(url, role="node", id=node_id, **hello)
    await client.expect("welcome")
    return client


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert trouble(caplog.records) == []


async def test_host_actions_need_the_host_token(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(HOST_MODE)
    for hello in ({"token": "wrong"}, {}, {"token": HOST_TOKEN + "x"}):
        intruder: Client = await client_factory(hub.url, role="host", **hello)
        error = await intruder.expect("error")
        assert error["code"] == "bad_token"
        assert await closed_with(intruder) == (4401, error["message"][:120])
    # Neither a node nor a viewer may arm.
    player = await node(client_factory, hub.url, "desk-1")
    await player.send(type="arm")
    assert (await player.expect("error"))["code"] == "not_allowed"
    viewer: Client = await client_factory(hub.url, role="viewer")
    await viewer.expect("state")
    await viewer.send(type="arm")
    assert (await viewer.expect("error"))["code"] == "not_allowed"
    assert all(f.get("round", {}).get("state") != "armed" for f in viewer.received)
    # The host token in the URL counts as the hello's.
    boss: Client = await client_factory(f"{hub.url}/?token={HOST_TOKEN}", role="host")
    await boss.expect("welcome", role="host")
    await boss.send(type="arm")
    await player.expect("round", state="armed")
    # Three refusals from one address for one reason: one line in the log, the others counted
    # into the next (a client retrying in a loop cannot flood the log).
    refusals = [e for e in hub.events.events() if isinstance(e, Refused)]
    assert [(e.reason[:27], e.closed) for e in refusals] == [("wrong or missing host token", True)]
    assert_no_traceback(caplog)


NODE_TOKEN = '[server]\nnode_token = "n0de"\n'


async def test_node_token_in_the_hello_still_works_by_default(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(NODE_TOKEN)
    # A wrong token in the upgrade request is refused before the upgrade all the same.
    assert await refused_status(f"{hub.url}/?token=nope") == (401, "wrong token\n")
    member = await node(client_factory, hub.url, "desk-1", token="n0de")
    assert member.received[-1]["greeting"] == "Hello desk-1!"
    stranger: Client = await client_factory(hub.url, role="node", id="desk-2")
    assert (await stranger.expect("error"))["code"] == "bad_token"
    assert (await closed_with(stranger))[0] == 4401


async def test_node_token_is_checked_before_the_upgrade(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(NODE_TOKEN + "[security]\ntoken_before_upgrade = true\n")
    status, body = await refused_status(hub.url)
    assert status == 401
    assert body.startswith("node token required")
    assert body.count("\n") == 1
    assert len(logged(caplog.records, r"^refused 127\.0\.0\.1:\d+: 401 node token required")) == 1
    assert await refused_status(f"{hub.url}/?token=nope") == (401, "wrong token\n")
    assert (await refused_status(hub.url, additional_headers={"Authorization": "Bearer x"}))[
        0
    ] == 401
    # The hello's token alone is not enough: nothing is upgraded without a token.
    status, _ = await refused_status(hub.url, origin=None)
    assert status == 401

    by_query = await node(client_factory, f"{hub.url}/?token=n0de", "desk-1")
    assert by_query.received[-1]["greeting"] == "Hello desk-1!"
    # Four refusals from one address, one log line: a retry loop cannot flood the journal.
    await hub.events.wait_for(NodeJoined, lambda e: e.player == "desk-1")
    assert len(logged(caplog.records, r"^refused ")) == 1
    ws = await connect(hub.url, additional_headers={"Authorization": "Bearer n0de"})
    by_header = Client(ws)
    await by_header.send(type="hello", protocol=1, role="node", id="desk-2", token="n0de")
    await by_header.expect("welcome", id="desk-2")
    # A wrong token in the hello is still refused, whatever the upgrade carried.
    liar: Client = await client_factory(
        f"{hub.url}/?token=n0de", role="node", id="desk-3", token="other"
    )
    assert (await liar.expect("error"))["code"] == "bad_token"
    assert (await closed_with(liar))[0] == 4401
    # A tutorial client puts the token in its URL.
    async with connect(f"{hub.url}/?token=n0de") as tutorial:
        await tutorial.send("Alice")
        assert await tutorial.recv() == "Hello Alice!"
    # The host token opens the door too, and still guards the host role.
    boss: Client = await client_factory(f"{hub.url}/?token={HOST_TOKEN}", role="host")
    await boss.expect("welcome", role="host")
    await ws.close()
    assert_no_traceback(caplog)


async def test_browser_origins(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub('[security]\norigins = ["https://scores.example"]\n')
    status, body = await refused_status(hub.url, origin="http://evil.example")
    assert status == 403
    assert "evil.example" in body
    assert logged(caplog.records, r"^refused .*: 403 origin 'http://evil\.example'")
    other_port = f"http://{LOOPBACK}:{hub.port + 1}"
    assert (await refused_status(hub.url, origin=other_port))[0] == 403
    for origin in (f"http://{LOOPBACK}:{hub.port}", "https://scores.example"):
        async with connect(hub.url, origin=origin) as ws:
            viewer = Client(ws)
            await viewer.send(type="hello", protocol=1, role="viewer")
            await viewer.expect("welcome", role="viewer")
    assert_no_traceback(caplog)


async def test_oversized_frame_closes_1009_and_spares_the_others(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(HOST_MODE)
    calm = await node(client_factory, hub.url, "calm")
    big = await node(client_factory, hub.url, "big")
    await big.send_raw('{"type":"press","press_id":"p1","at_ns":1,"pad":"' + "x" * 5000 + '"}')
    code, _ = await closed_with(big)
    assert code == 1009
    await calm.send(type="press", press_id="c1", at_ns=1)
    assert (await calm.expect("ack"))["press_id"] == "c1"
    assert_no_traceback(caplog)


async def test_rate_limit_closes_4429_and_spares_the_others(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(HOST_MODE + "[limits]\nmessages_per_s = 5\nmessage_burst = 20\n")
    calm = await node(client_factory, hub.url, "calm")
    flood = await node(client_factory, hub.url, "flood")
    for i in range(200):
        try:
            await flood.send(type="press", press_id=f"f{i}", at_ns=i)
        except ConnectionClosed:
            break
    code, reason = await closed_with(flood)
    assert (code, reason) == (4429, "too many messages")
    (line,) = logged(caplog.records, r"too many messages")  # one line, however many frames
    assert line.startswith("dropped 127.0.0.1:")
    assert "(close 4429)" in line
    # Fewer frames than the burst are never a breach.
    for i in range(10):
        await calm.send(type="press", press_id=f"c{i}", at_ns=i)
    await calm.expect("ack", press_id="c9")
    assert_no_traceback(caplog)


async def test_duplicate_node_id_replaces_the_older_connection(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    hub = await run_hub(HOST_MODE)
    first = await node(client_factory, hub.url, "desk-1", name="Ann")
    second = await node(client_factory, hub.url, "desk-1", name="Ann")
    assert await closed_with(first) == (4409, "replaced by a newer connection")
    await second.send(type="press", press_id="p1", at_ns=1)
    assert (await second.expect("ack"))["press_id"] == "p1"
    rejoined = await hub.events.wait_for(NodeJoined, lambda e: e.replaced)
    assert (rejoined.player, rejoined.name) == ("desk-1", "Ann")
    assert "its older link is closed" in rejoined.describe()


async def test_max_connections_refuses_with_503(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(HOST_MODE + "[limits]\nmax_connections = 2\n")
    one = await node(client_factory, hub.url, "one")
    await node(client_factory, hub.url, "two")
    with pytest.raises(InvalidStatus) as refused:
        await connect(hub.url, open_timeout=5)
    response = refused.value.response
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.body.decode() == "hub full: 2 connections; try again later\n"
    assert logged(caplog.records, r"^refused .*: 503 hub full")
    # Plain HTTP still answers, so a full hub can still be checked on.
    reader, writer = await asyncio.open_connection(LOOPBACK, hub.port)
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    mark = hub.events.mark()
    await one.ws.close()
    await hub.events.wait_for(Left, lambda e: e.who == "one", after=mark)
    await node(client_factory, hub.url, "three")


async def test_hello_deadline_closes_4400(
    run_hub: InProcessHubs, client_factory: ClientFactory
) -> None:
    """Bad frames do not buy time: tests/unit/hub/core/test_machine.py checks to the nanosecond
    that the deadline covers the whole greeting; here, that it is kept over real sockets."""
    hub = await run_hub("[limits]\nhello_timeout_s = 0.3\n")
    silent: Client = await client_factory(hub.url)
    assert await closed_with(silent) == (4400, "no hello within 0.3 s")
    refused = await hub.events.wait_for(Refused)
    assert (refused.reason, refused.closed) == ("no hello within 0.3 s (close 4400)", True)
    stalling: Client = await client_factory(hub.url)
    for _ in range(3):
        await stalling.send_raw('{"type":"press"}')
        assert (await stalling.expect("error"))["code"] == "missing_field"
    assert (await closed_with(stalling))[0] == 4400
    # A hello in time is unaffected.
    prompt = await node(client_factory, hub.url, "prompt")
    await prompt.send(type="press", press_id="p1", at_ns=1)
    await prompt.expect("ack")


def masked_text_frame(text: str) -> bytes:
    """One client-to-hub text frame, masked as RFC 6455 requires of clients."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        header = struct.pack("!BB", 0x81, 0x80 | len(payload))
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
    return header + mask + masked


def open_stalled_viewer(port: int) -> socket.socket:
    """A viewer on a raw socket with a tiny receive buffer that greets the hub, then never reads."""
    sock = raw_websocket(port, receive_buffer=2048)
    sock.sendall(masked_text_frame('{"type":"hello","protocol":1,"role":"viewer"}'))
    return sock


def raw_websocket(port: int, receive_buffer: int | None = None) -> socket.socket:
    """A WebSocket connection to the hub on a raw socket, upgraded and nothing more: the test
    writes its frames as bytes, as many at once as it likes (blocking: call it in a thread)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect((LOOPBACK, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "the hub closed the connection during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def _drain(client: Client, seen: list[dict[str, Any]], arrived: asyncio.Event) -> None:
    """Keep reading, as any healthy client does, recording what arrives."""
    try:
        async for frame in client.ws:
            seen.append(json.loads(frame))
            arrived.set()
    except ConnectionClosed:
        pass


async def test_a_client_that_stops_reading_is_dropped_4408_and_others_carry_on(
    run_hub: InProcessHubs, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await run_hub(
        HOST_MODE + "[limits]\nsend_buffer_kb = 64\nmessages_per_s = 2000\nmessage_burst = 2000\n"
    )
    # Twenty players with long names make each state picture a few KiB.
    for i in range(20):
        player = await node(
            client_factory, hub.url, f"desk-{i:02d}", name=f"{'Player ' * 5}{i:02d}"
        )
        await player.ws.close()
    mark = hub.events.mark()
    stalled = await asyncio.to_thread(open_stalled_viewer, hub.port)
    await hub.events.wait_for(WatcherJoined, after=mark)
    boss: Client = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await boss.expect("welcome")
    calm: Client = await client_factory(hub.url, role="viewer")
    await calm.expect("welcome")
    calm_seen: list[dict[str, Any]] = []
    calm_arrived = asyncio.Event()
    readers = [
        asyncio.create_task(_drain(boss, [], asyncio.Event())),
        asyncio.create_task(_drain(calm, calm_seen, calm_arrived)),
    ]
    # The stalled viewer is the only one to leave: its link ends once the hub drops it.
    mark = hub.events.mark()
    dropped = asyncio.create_task(
        hub.events.wait_for(Left, lambda e: e.kind == "viewer", after=mark, timeout=20)
    )
    arms = 0
    while not dropped.done():
        arms += 1
        await boss.send(type="arm")
        await boss.send(type="reset")
        await asyncio.sleep(0)  # let the hub read them: it runs in this loop
    dropped.result()
    (line,) = logged(caplog.records, r"too slow")
    assert line.startswith("dropped 127.0.0.1:")
    assert "(close 4408)" in line
    assert "limit 64 KiB" in line
    # After the drop the others still get every picture: the next arm reaches the calm viewer.
    await boss.send(type="arm")
    async with asyncio.timeout(5):
        while not any(f["type"] == "state" and f["round"]["number"] == arms + 1 for f in calm_seen):
            calm_arrived.clear()
            await calm_arrived.wait()
    # The stalled socket is cut off: reading ends in EOF or a reset, not in data forever.
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.to_thread(stalled.recv, 65536):
            received += len(chunk)
    stalled.close()
    assert received < 4 * 1024 * 1024
    for task in readers:
        task.cancel()
    assert_no_traceback(caplog)


def _run_until_console(data_dir: Path) -> list[str]:
    """Start a hub with no host token configured, wait for the console line, stop it; its log."""
    command = [console_script("buzzer-hub"), "--host", LOOPBACK, "--port", "0",
               "--data-dir", str(data_dir)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "BUZZER_HOST_TOKEN"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def collect() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "host console:" in line:
                ready.set()

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        assert ready.wait(15), "\n".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        reader.join(5)
    return lines


async def test_generated_host_token_is_private_and_shown_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await asyncio.to_thread(_run_until_console, data)
    token_file = data / "host-token"
    token = token_file.read_text().strip()
    assert len(token) >= 24
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    shown = [line for line in first if token in line]
    assert len(shown) == 1
    assert "new host token" in shown[0]
    assert any("host console: http://" in line for line in first)
    second = await asyncio.to_thread(_run_until_console, data)
    assert not [line for line in second if token in line]
    assert token_file.read_text().strip() == token
    # A host restarting the hub another day is told where the token is, not the token.
    assert any(f"host token: in {token_file}" in line for line in second)
