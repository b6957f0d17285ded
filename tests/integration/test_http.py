"""Plain HTTP on the hub's port: health check, read-only state, the pages and clean 404s.

A host's laptop, a projector and a monitoring script all reach the hub on its one port; every
answer must carry the right content type, and nothing that is not a page or the API may leak out.
The hub runs in the test's event loop; each request is made from a thread, as another program's.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.embed import RunningHub
from hub.http import PAGE_POLICY
from tests.conftest import HOST_TOKEN, InProcessHubs

WEB = Path(__file__).resolve().parents[2] / "hub" / "web"
CONFIG = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


async def get(
    hub: RunningHub, path: str, host: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection (the hub answers plain HTTP and then closes), with the
    ``Host`` header a browser would send for ``host`` if given."""
    return await asyncio.to_thread(_get, hub.port, path, host)


def _get(port: int, path: str, host: str | None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


async def test_healthz_answers_ok_as_text(run_hub: InProcessHubs) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, "/healthz")
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body == b"ok\n"


async def test_api_state_reports_round_results_and_roster(
    run_hub: InProcessHubs, client_factory: Callable[..., Any]
) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, "/api/state")
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
        "more_results": 0,
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

    state = json.loads((await get(hub, "/api/state"))[2])
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
async def test_pages_are_html_with_a_strict_policy(
    run_hub: InProcessHubs, path: str, marker: str
) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, path)
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
async def test_page_assets_have_their_content_types(
    run_hub: InProcessHubs, path: str, content_type: str
) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, path)
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
async def test_everything_else_is_a_clean_404(run_hub: InProcessHubs, path: str) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, path)
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


async def test_play_qr_code_encodes_the_address_the_screen_used(run_hub: InProcessHubs) -> None:
    """The big screen's QR code points phones at the hub's address as the screen reached it."""
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, "/play.svg")
    assert status == 200
    assert headers["content-type"] == "image/svg+xml"
    assert body == qr_svg(f"http://127.0.0.1:{hub.port}/play")
    status, _, lan = await get(hub, "/play.svg", "192.168.1.10:8765")
    assert status == 200
    assert lan == qr_svg("http://192.168.1.10:8765/play")
    assert lan != body
    status, _, refused = await get(hub, "/play.svg", "evil.example/<script>")
    assert status == 400
    assert b"<svg" not in refused


async def test_play_page_is_served_with_the_pages_policy(run_hub: InProcessHubs) -> None:
    hub = await run_hub(CONFIG)
    status, headers, body = await get(hub, "/play")
    assert status == 200
    assert headers["content-security-policy"] == PAGE_POLICY
    assert b'src="/play.js"' in body
    status, headers, _ = await get(hub, "/play.js")
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
