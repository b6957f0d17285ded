"""Tutorial plain-text clients and protocol v1 nodes in the same round, on a real hub."""

from __future__ import annotations

from websockets.asyncio.client import connect


async def test_plain_clients_get_first_place_and_response_time(start_hub) -> None:
    hub = start_hub(config="[round]\nrelease_lead_ms = 0\n")
    hub.wait_for_log(r"round 1 armed")
    async with connect(hub.url) as alice, connect(hub.url) as bob:
        await alice.send("Alice")
        assert await alice.recv() == "Hello Alice!"
        await alice.send("buzz")
        first = await alice.recv()
        await bob.send("buzz")
        second = await bob.recv()
    assert first == "First place!"
    assert second.startswith("Response time: ")
    assert second.endswith(" sec slower.")
