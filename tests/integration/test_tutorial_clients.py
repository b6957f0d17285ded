"""Tutorial plain-text clients and protocol v1 nodes in the same round, on a real hub (in the
test's event loop)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from hub.core.events import Decided
from hub.embed import RunningHub
from tests.conftest import HOST_TOKEN, Client, InProcessHubs, console_script, state_of

MS = 1_000_000

# A host runs the rounds; the release is the arm itself; the hub waits long enough after the
# first press for every press of this test to arrive, so the ranking depends on timestamps only.
MIXED = """
[round]
hostless = false
release_lead_ms = 0
adjudication_margin_ms = 1500
adjudication_cap_ms = 3000

[trust]
# The presses here are sent late and out of order over loopback, up to a few hundred ms after the
# instants they claim (more under load): more than a node's own sending delay, which the hub would
# otherwise take for a claim its link cannot explain and clamp (tests/unit/hub/core/test_trust.py
# covers that).
allowance_ms = 1000
"""


async def recv_text(ws: ClientConnection, timeout: float = 5.0) -> str:
    async with asyncio.timeout(timeout):
        frame = await ws.recv()
    assert isinstance(frame, str)
    return frame


async def ctl(hub: RunningHub, *args: str, token: str = HOST_TOKEN) -> tuple[int, str, str]:
    """Run ``buzzer-hub ctl`` as a separate process, as a script would."""
    proc = await asyncio.create_subprocess_exec(
        console_script("buzzer-hub"),
        "ctl",
        "--hub",
        hub.url,
        "--token",
        token,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def decided_state(boss: Client, results: int) -> dict[str, Any]:
    """The first state picture of a decided round with this many ranked presses."""
    while True:
        state = await boss.expect("state")
        round_ = state["round"]
        if round_["state"] == "decided" and len(round_["results"]) == results:
            return state


async def test_nodes_and_tutorial_clients_share_one_round_and_agree_on_it(
    run_hub: InProcessHubs, client_factory: Callable[..., Any]
) -> None:
    hub = await run_hub(MIXED)
    boss: Client = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await boss.expect("state")
    async with connect(hub.url) as carol, connect(hub.url) as dave:
        await carol.send("Carol")
        assert await recv_text(carol) == "Hello Carol!"
        await dave.send("Dave")
        assert await recv_text(dave) == "Hello Dave!"
        # Before the release: too early, and locked out of the coming round.
        await dave.send("buzz")
        assert await recv_text(dave) == "Too early!"

        await boss.send(type="arm")
        alice: Client = await client_factory(hub.url, role="node", id="alice", name="Alice")
        bob: Client = await client_factory(hub.url, role="node", id="bob", name="Bob")
        assert (await alice.expect("welcome"))["greeting"] == "Hello Alice!"
        assert (await bob.expect("welcome"))["greeting"] == "Hello Bob!"
        # Once its clock is synchronised, each node learns the release instant in its own clock.
        armed_a = await alice.expect("round", state="armed", synced=True)
        armed_b = await bob.expect("round", state="armed", synced=True)
        release_a, release_b = armed_a["release_ns"], armed_b["release_ns"]
        assert isinstance(release_a, int)
        assert isinstance(release_b, int)

        # Bob's press is sent first, Alice's arrives later but was made earlier: she wins. Both
        # were made after the release and moments ago, however long the sync took: a claim
        # older than the trust allowance (1 s) is placed where its link allows instead.
        alice_at = max(release_a + 5 * MS, time.monotonic_ns() - 30 * MS)  # the shared clock
        await bob.send(
            type="press", press_id="b1", at_ns=alice_at - release_a + release_b + 15 * MS
        )
        await bob.expect("ack", press_id="b1")
        await alice.send(type="press", press_id="a1", at_ns=alice_at)
        await alice.expect("ack", press_id="a1")
        # Carol, a tutorial client, buzzes now: at least 40 ms after the release (the nodes'
        # clock sync took that long), so after both nodes' presses.
        await carol.send("buzz")
        await dave.send("buzz")
        assert await recv_text(dave) == "Too early!"  # still locked out

        result_a = await alice.expect("result", press_id="a1", timeout=10)
        result_b = await bob.expect("result", press_id="b1", timeout=10)
        carol_says = await recv_text(carol, timeout=10)
        state = await decided_state(boss, results=3)

    round_ = state["round"]
    ranking = [(r["player"], r["name"], r["rank"]) for r in round_["results"]]
    carol_id = ranking[2][0]
    assert ranking == [("alice", "Alice", 1), ("bob", "Bob", 2), (carol_id, "Carol", 3)]
    assert carol_id.startswith("text-")
    assert round_["winner"] == "Alice"
    by_player = {r["player"]: r for r in round_["results"]}

    # Each JSON node hears exactly what the host sees.
    for result, player in ((result_a, "alice"), (result_b, "bob")):
        seen = by_player[player]
        assert result["rank"] == seen["rank"]
        assert result["behind_ns"] == seen["behind_ns"]
        assert result["reaction_ns"] == seen["reaction_ns"]
        assert result["flags"] == seen["flags"] == []
    assert result_a["text"].startswith("First place! (reaction ")
    assert result_b["text"].startswith("Second, ")
    # The gap between the nodes is the gap between their timestamps (same machine, one clock),
    # within what the hub says each timestamp may be off.
    stated = by_player["alice"]["uncertainty_ns"] + by_player["bob"]["uncertainty_ns"]
    assert abs(by_player["bob"]["behind_ns"] - 15 * MS) <= stated

    # The tutorial client hears the classic text, computed from the same numbers.
    carol_behind = by_player[carol_id]["behind_ns"]
    assert carol_behind > by_player["bob"]["behind_ns"]
    assert carol_says == f"Response time: {round(carol_behind / 1e9, 2)} sec slower."
    refused = [(r["name"], r["flags"]) for r in round_["refused"]]
    assert refused == [("Dave", ["early"]), ("Dave", ["locked"])]

    # `buzzer-hub ctl status`, a separate process, reports the same round.
    code, out, err = await ctl(hub, "status")
    assert (code, err) == (0, "")
    status = json.loads(out)
    assert [(r["player"], r["rank"]) for r in status["round"]["results"]] == [
        (player, rank) for player, _, rank in ranking
    ]
    assert [r["behind_ns"] for r in status["round"]["results"]] == [
        r["behind_ns"] for r in round_["results"]
    ]
    names = {p["id"]: p["name"] for p in status["players"]}
    assert names["alice"] == "Alice"
    assert names[carol_id] == "Carol"


async def test_plain_clients_get_first_place_and_response_time(run_hub: InProcessHubs) -> None:
    hub = await run_hub("[round]\nrelease_lead_ms = 0\n")
    assert state_of(hub)["round"]["state"] == "armed"  # host-less: armed as it starts
    async with connect(hub.url) as alice, connect(hub.url) as bob:
        await alice.send("Alice")
        assert await recv_text(alice) == "Hello Alice!"
        await alice.send("buzz")
        first = await recv_text(alice)
        await bob.send("buzz")
        second = await recv_text(bob)
        # Another buzz is answered again, not counted again.
        await alice.send("buzz")
        again = await recv_text(alice)
    assert first == "First place!"
    assert again == "First place!"
    assert second.startswith("Response time: ")
    assert second.endswith(" sec slower.")
    seconds = second.removeprefix("Response time: ").removesuffix(" sec slower.")
    assert seconds == str(round(float(seconds), 2))
    decided = await hub.events.wait_for(Decided)
    assert (decided.round, decided.name) == (1, "Alice")
    assert decided.winner.startswith("text-")


async def test_any_other_text_is_a_name_greeted_byte_for_byte(run_hub: InProcessHubs) -> None:
    hub = await run_hub()
    async with connect(hub.url) as client:
        for name in ("Zoë", "buzz me", "[1, 2]", " spaced "):
            await client.send(name)
            assert await recv_text(client) == f"Hello {name}!"
        await client.send(b"\x01")
        assert (await recv_text(client)).startswith("Send text: buzz")


class PingNoticing(ClientConnection):
    """A client connection that notices the first ping it answers (the library answers it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinged = asyncio.Event()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pinged.set()
        super().process_event(event)


async def test_the_hubs_pings_measure_a_tutorial_clients_round_trip(
    run_hub: InProcessHubs,
) -> None:
    """A tutorial client has no clock to sync: the round trip the hub's own WebSocket pings
    measure is all that places its presses, and the host sees it."""
    hub = await run_hub(MIXED)
    options: dict[str, Any] = {"ping_interval": None, "create_connection": PingNoticing}
    async with connect(hub.url, **options) as carol:
        assert isinstance(carol, PingNoticing)
        await asyncio.wait_for(carol.pinged.wait(), timeout=10)  # the hub pings as a link opens
        # Its pong went out before the name: the hub takes the pong first, then answers.
        await carol.send("Carol")
        assert await recv_text(carol) == "Hello Carol!"
        view = {p["name"]: p for p in state_of(hub)["players"]}["Carol"]
        assert view["rtt_ns"] is not None
        assert 0 < view["rtt_ns"] < 5_000 * MS
        # Timed in nanoseconds: the library's figure, on uvloop, is whole milliseconds.
        assert view["rtt_ns"] % MS != 0


def upgrade_request(origin: str | None = None) -> bytes:
    """A WebSocket upgrade request written by hand, for what a library would not send."""
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Origin: {origin}\r\n" if origin else ""
    return (
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def masked_text(payload: bytes) -> bytes:
    """One client text frame carrying ``payload`` as it is, valid UTF-8 or not."""
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | len(payload)]) + mask
    return frame + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_frame_sent_ahead_of_a_refused_handshake_holds_no_round(
    run_hub: InProcessHubs,
) -> None:
    """A frame pipelined behind an upgrade request is read before the hub answers it. Refused,
    the connection never has it handled: it must not count as a message still waiting, or every
    later round would wait the whole cap (500 ms) for it."""
    hub = await run_hub("[round]\nrelease_lead_ms = 0\n")  # host-less: armed as it starts
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    # A foreign page's origin is refused with 403; the frame goes in the same write, so it is
    # parsed with the request.
    writer.write(upgrade_request(origin="http://elsewhere.example") + masked_text(b"buzz"))
    await writer.drain()
    async with asyncio.timeout(5):
        status = await reader.readline()
    writer.close()
    assert status.startswith(b"HTTP/1.1 403")
    mark = hub.events.mark()
    async with connect(hub.url) as alice:
        await alice.send("buzz")
        assert await recv_text(alice) == "First place!"
    decided = await hub.events.wait_for(Decided, after=mark)
    assert decided.wait_ns < 250 * MS  # the horizon: a few ms, whatever the machine's load


async def test_a_message_the_hub_refuses_as_invalid_text_holds_no_round(
    run_hub: InProcessHubs,
) -> None:
    """A text message that is not UTF-8 is refused once its task takes it, and the connection
    closes; a peer that never answers the close keeps it open 2 s more. Read before a press's
    deadline, it must not hold the round while it lasts."""
    hub = await run_hub("[round]\nrelease_lead_ms = 0\n")  # host-less: armed as it starts
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    writer.write(upgrade_request())
    await writer.drain()
    async with asyncio.timeout(5):
        status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101")
    mark = hub.events.mark()
    async with connect(hub.url) as alice:
        writer.write(masked_text(b"\xff\xfe"))  # and the connection is left open
        await writer.drain()
        await alice.send("buzz")
        assert await recv_text(alice) == "First place!"
    decided = await hub.events.wait_for(Decided, after=mark)
    writer.close()
    assert decided.wait_ns < 250 * MS  # the horizon: a few ms, whatever the machine's load
