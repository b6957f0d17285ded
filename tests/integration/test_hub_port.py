"""``--port 0`` with no ``--host``: one free port, the same for IPv4 and IPv6.

Listening on every interface makes one socket per address family, and asyncio gives each its own
free port when asked for port 0. The hub prints, announces and reports one port, so a client of
the other family would knock on a closed door. The hub listens on all interfaces here, but every
connection the tests make goes to 127.0.0.1 or ::1 only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hub.config import HubConfig
from hub.embed import RunningHub, running_hub
from tests.conftest import HOST_TOKEN


def ipv6_loopback_works() -> bool:
    """Whether this machine can listen on ::1 at all: without IPv6 there is only one socket."""
    if not socket.has_ipv6:
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return True
    return False


@pytest.fixture
async def hub_on_every_interface() -> AsyncIterator[RunningHub]:
    config = HubConfig()
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=0))
    assert config.server.host == ""
    async with running_hub(config, host_token=HOST_TOKEN) as hub:
        yield hub


async def welcome_at(url: str) -> dict[str, Any]:
    async with connect(url, open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "role": "viewer"}))
        frame: dict[str, Any] = json.loads(await ws.recv())
        return frame


@pytest.mark.parametrize("attempt", range(3))  # the free ports differ almost every time; try a few
async def test_port_0_gives_every_socket_the_one_port_the_hub_reports(
    hub_on_every_interface: RunningHub, attempt: int
) -> None:
    hub = hub_on_every_interface
    assert hub.server.websockets is not None
    sockets = list(hub.server.websockets.sockets)
    families = {sock.family for sock in sockets}
    assert socket.AF_INET in families
    if ipv6_loopback_works():
        assert socket.AF_INET6 in families
    assert {sock.getsockname()[1] for sock in sockets} == {hub.port}
    assert hub.port != 0

    loopbacks = ["ws://127.0.0.1"] + (["ws://[::1]"] if socket.AF_INET6 in families else [])
    for base in loopbacks:
        frame = await welcome_at(f"{base}:{hub.port}")
        assert frame["type"] == "welcome", (base, frame)


def test_the_hub_prints_one_port_for_all_its_sockets(start_hub: Any) -> None:
    # "--host ''" after the fixture's own --host 127.0.0.1: every interface. No announcement, so
    # nothing leaves this machine.
    hub = start_hub("--host", "", "--no-discovery")
    listening = hub.wait_for_log(r"listening on ")
    addresses = listening.split("listening on ", 1)[1].split(", ")
    ports = {address.rsplit(":", 1)[1] for address in addresses}
    assert ports == {str(hub.port)}, listening
    hub.wait_for_log(rf"host console: http://localhost:{hub.port}/")
