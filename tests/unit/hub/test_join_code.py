"""The big screen's join code when the screen was opened on the hub itself.

``localhost`` on the hub is an address no phone can use: the screen learns that from
``/api/join`` with the hub's LAN addresses to offer, and asks for a code of one of them; the hub
draws codes of its own addresses only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from hub.http import Routes, is_loopback_host

LAN = ["10.42.0.1", "192.168.1.20"]


def get(path: str, host: str, lan: list[str] = LAN) -> tuple[int, bytes]:
    routes = Routes(dict, lan=lambda: lan)
    response = routes(None, Request(path, Headers({"Host": host})))  # type: ignore[arg-type]
    assert response is not None
    return response.status_code, response.body


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:8765", True),
        ("127.0.0.1:8765", True),
        ("[::1]:8765", True),
        ("buzzer-hub.localhost", True),
        ("192.168.1.20:8765", False),
        ("buzzer-hub.local:8765", False),
        ("[fe80::1]:8765", False),
    ],
)
def test_which_addresses_are_the_hub_itself(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_a_screen_on_the_hub_is_told_so_and_given_the_lan_addresses() -> None:
    status, body = get("/api/join", "localhost:8765")
    assert status == 200
    info: dict[str, Any] = json.loads(body)
    assert info == {
        "loopback": True,
        "lan": ["http://10.42.0.1:8765/play", "http://192.168.1.20:8765/play"],
    }
    status, body = get("/api/join", "192.168.1.20:8765")
    assert json.loads(body)["loopback"] is False


def test_the_code_of_a_lan_address_is_drawn_and_of_nothing_else() -> None:
    status, lan_code = get("/play.svg?host=192.168.1.20%3A8765", "localhost:8765")
    assert status == 200
    assert lan_code.startswith(b"<svg")
    _, same = get("/play.svg", "192.168.1.20:8765")
    assert lan_code == same  # the same code a screen opened at that address shows
    status, refused = get("/play.svg?host=evil.example", "localhost:8765")
    assert status == 400
    assert b"<svg" not in refused
