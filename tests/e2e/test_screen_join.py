"""The big screen opened on the hub itself: it says its address is no use to phones, and shows
the code of the hub's LAN address instead (a real Chromium against a real hub)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubProcess
from wire.browse import lan_addresses

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixtures skip the test then
    expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_a_screen_opened_on_localhost_warns_and_offers_the_lan_address(
    start_hub: Callable[..., HubProcess], new_page: Callable[..., Any], output_dir: Path
) -> None:
    hub = start_hub()
    screen = await new_page(1280, 720)
    await screen.goto(f"http://localhost:{hub.port}/screen")
    warning = screen.locator("#join-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text(f"opened on the hub itself (localhost:{hub.port})")
    lan = sorted({a.address for a in lan_addresses()}, key=lambda a: tuple(map(int, a.split("."))))
    if lan:
        await expect(warning).to_contain_text(f"the code shows http://{lan[0]}:{hub.port}/play")
        await expect(screen.locator("#join img")).to_have_attribute(
            "src", f"/play.svg?host={lan[0]}%3A{hub.port}"
        )
        await expect(screen.locator("#join-url")).to_have_text(f"{lan[0]}:{hub.port}/play")
    else:
        await expect(warning).to_contain_text("the hub has no network address")
    await screen.screenshot(path=output_dir / "screen-on-localhost.png")
