"""Plain HTTP on the hub's port: health check, read-only state, the pages and clean 404s.

A host's laptop, a projector and a monitoring script all reach the hub on its one port; every
answer must carry the right content type, and nothing that is not a page or the API may leak out.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.http import PAGE_POLICY
from tests.conftest import HOST_TOKEN

WEB = Path(__file__).resolve().parents[2] / "hub" / "web"
CONFIG = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


def get(hub: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection (the hub answers plain HTTP and then closes)."""
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def test_healthz_answers_ok_as_text(start_hub: Callable[..., Any]) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, "/healthz")
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == b"ok\n"


async def test_api_state_reports_round_results_and_roster(
    start_hub: Callable[..., Any], client_factory: Callable[..., Any]
) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, "/api/state")
    assert status == 200
    assert headers["content-type"] == "application/json"
    empty = json.loads(body)
    assert empty["round"] == {
        "number": 0,
        "state": "idle",
        "armed_ns": None,
        "release_ns": None,
        "decided_ns": None,
        "adjudication_wait_ns": None,
        "winner": None,
        "results": [],
        "refused": [],
        "more_refused": 0,
    }
    assert empty["players"] == []

    node = await client_factory(hub.url, role="node", id="n1", name="Nina")
    await node.expect("welcome")
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("welcome")
    await host.send(type="arm")
    await node.expect("round", state="armed")
    await node.send(type="press", press_id="n1-1", at_ns=time.monotonic_ns())
    result = await node.expect("result", press_id="n1-1")
    assert result["rank"] == 1

    state = json.loads(get(hub, "/api/state")[2])
    assert state["round"]["number"] == 1
    assert [r["name"] for r in state["round"]["results"]] == ["Nina"]
    assert state["round"]["results"][0]["rank"] == 1
    (player,) = state["players"]
    assert player["id"] == "n1"
    assert player["online"] is True
    assert isinstance(player["last_seen_ns"], int)
    assert {"input", "synced", "rtt_ns", "uncertainty_ns"} <= set(player)
    assert set(state) >= {"round", "players", "history"}


@pytest.mark.parametrize(
    ("path", "marker"),
    [("/", "host console"), ("/host", "host console"), ("/screen", "scoreboard")],
)
def test_pages_are_html_with_a_strict_policy(
    start_hub: Callable[..., Any], path: str, marker: str
) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, path)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == PAGE_POLICY
    assert marker in body.decode()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/common.js", "text/javascript; charset=utf-8"),
        ("/host.js", "text/javascript; charset=utf-8"),
        ("/screen.js", "text/javascript; charset=utf-8"),
        ("/common.css", "text/css; charset=utf-8"),
        ("/host.css", "text/css; charset=utf-8"),
        ("/screen.css", "text/css; charset=utf-8"),
    ],
)
def test_page_assets_have_their_content_types(
    start_hub: Callable[..., Any], path: str, content_type: str
) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert body == (WEB / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api",
        "/api/state/extra",
        "/web/host.html",
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/.hidden.js",
        "/__init__.py",
        "/http.py",
    ],
)
def test_everything_else_is_a_clean_404(start_hub: Callable[..., Any], path: str) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, path)
    assert status == 404
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body.startswith(b"not found")


def test_pages_load_nothing_from_elsewhere() -> None:
    """An event LAN has no internet: no CDN, no web fonts, no absolute URLs in any page file."""
    files = sorted(WEB.iterdir())
    assert {f.name for f in files} >= {"host.html", "screen.html", "common.js"}
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), file.name


def qr_svg(url: str) -> bytes:
    import io

    import segno

    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=8, border=4, dark="#000", light="#fff", xmldecl=False
    )
    return out.getvalue()


def get_with_host(hub: Any, path: str, host: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def test_play_qr_code_encodes_the_address_the_screen_used(start_hub: Callable[..., Any]) -> None:
    """The big screen's QR code points phones at the hub's address as the screen reached it."""
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, "/play.svg")
    assert status == 200
    assert headers["content-type"] == "image/svg+xml"
    assert body == qr_svg(f"http://127.0.0.1:{hub.port}/play")
    status, _, lan = get_with_host(hub, "/play.svg", "192.168.1.10:8765")
    assert status == 200
    assert lan == qr_svg("http://192.168.1.10:8765/play")
    assert lan != body
    status, _, refused = get_with_host(hub, "/play.svg", "evil.example/<script>")
    assert status == 400
    assert b"<svg" not in refused


def test_play_page_is_served_with_the_pages_policy(start_hub: Callable[..., Any]) -> None:
    hub = start_hub(config=CONFIG)
    status, headers, body = get(hub, "/play")
    assert status == 200
    assert headers["content-security-policy"] == PAGE_POLICY
    assert b'src="/play.js"' in body
    status, headers, _ = get(hub, "/play.js")
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
