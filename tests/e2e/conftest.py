"""Browser fixtures: Debian's Chromium driven by Playwright, and player nodes on a background loop.

The browser is the system's Chromium (never a downloaded build: event machines and CI have no
internet beyond the package mirrors). One browser serves the whole session; each test gets fresh
contexts, so sessionStorage and cookies never leak between tests.

Without Chromium the browser tests are skipped with a one-line reason on a developer's machine,
but under CI=true a missing browser fails them: CI must never pass by not running them.

The tests use Playwright's async API on one session-wide event loop: the browser, the pages,
the player nodes and the hub (``run_hub``) all live on it, and other test modules keep their own
loops untouched. A test whose hub is killed runs the ``buzzer-hub`` command (``start_hub``).

Players come in two kinds: :class:`Station`, the real node firmware with gpiozero's mock pins
(what a maker builds), and :class:`FakeClockNode`, a bare protocol client that can stamp a press
with any instant and send it whenever it likes, to make arrival order differ from press order.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import InProcessHubs
from tests.support.buttons import click

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: For tests whose stations make their presses first and send them later, in an order of the
#: test's choosing.
LATE_SENDS = """
[trust]
# The presses here are sent late and out of order over loopback, up to a few hundred ms after the
# instants they claim: more than a node's own sending delay, which the hub would otherwise take for
# a claim its link cannot explain and clamp (tests/unit/hub/core/test_trust.py covers that).
allowance_ms = 400
"""
#: A hub run by a host, for scrambled presses: no automatic arming, release at the arm itself, and
#: an adjudication margin long enough that presses sent late and out of order are all collected
#: before the decision; the trust allowance is widened for the same reason.
HOST_RUN_CONFIG = (
    """
[round]
hostless = false
release_lead_ms = 0
adjudication_margin_ms = 300
"""
    + LATE_SENDS
)


def find_chromium() -> str | None:
    """The system Chromium: $BUZZER_CHROMIUM, else the Debian names on PATH."""
    configured = os.environ.get("BUZZER_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the whole session."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("browser tests need the playwright package (pip install -e '.[test]')")
    executable = find_chromium()
    if executable is None:
        _unavailable("browser tests need Chromium: apt-get install chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Open pages, each in its own context (own sessionStorage); all closed after the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    async def open_page(width: int = 1280, height: int = 860) -> Any:
        context = await browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(5000)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: policy_breaches(message.text))
        return page

    def policy_breaches(text: str) -> None:
        # The pages' security policy allows only the hub: a breach means a page reached out.
        if "Content Security Policy" in text:
            errors.append(text)

    yield open_page
    for context in contexts:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def run_hub(tmp_path: Path) -> AsyncIterator[InProcessHubs]:
    """Hubs serving in the session's event loop, beside the browser and the stations (see
    :class:`tests.conftest.InProcessHubs`); all are stopped after the test."""
    hubs = InProcessHubs(tmp_path)
    yield hubs
    await hubs.stop_all()


async def api_state(hub: Any, token: str | None = None) -> dict[str, Any]:
    """``GET /api/state``, from a thread: the hub may be serving in this event loop. With a node
    token set, results need a token (``token``)."""
    query = f"?token={token}" if token else ""

    def get() -> dict[str, Any]:
        with urllib.request.urlopen(hub.http + "/api/state" + query, timeout=5) as response:
            data: dict[str, Any] = json.load(response)
        return data

    return await asyncio.to_thread(get)


@pytest.fixture
def output_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a test keeps its screenshots: test-output/<test name>/ (git-ignored)."""
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class FakeClockNode:
    """A protocol v1 player station whose clock runs ``offset_ns`` away from the hub's.

    It answers every clock-sync request from a background task, as a real node does, so the hub
    knows its offset; presses are stamped in the node's own clock.
    """

    url: str
    id: str
    name: str
    offset_ns: int = 0
    ws: ClientConnection | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    def clock(self) -> int:
        return time.monotonic_ns() + self.offset_ns

    async def join(self) -> FakeClockNode:
        self.ws = await connect(self.url, compression=None, open_timeout=5)
        hello = {"type": "hello", "protocol": 1, "role": "node", "id": self.id}
        await self.ws.send(json.dumps({**hello, "name": self.name, "input": "gpio"}))
        welcome = json.loads(await self.ws.recv())
        assert welcome["type"] == "welcome", welcome
        self.reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            message = json.loads(frame)
            if message["type"] == "sync":
                now = self.clock()
                reply = {"type": "sync_reply", "seq": message["seq"], "t0_ns": message["t0_ns"]}
                await self.ws.send(json.dumps({**reply, "t1_ns": now, "t2_ns": now}))
            elif message["type"] == "result":
                self.results.append(message)

    async def press(self, hub_at_ns: int) -> None:
        """Send a press made at ``hub_at_ns`` (hub clock), stamped in this node's clock."""
        assert self.ws is not None
        press_id = f"{self.id}-{hub_at_ns}"
        press = {"type": "press", "press_id": press_id, "at_ns": hub_at_ns + self.offset_ns}
        await self.ws.send(json.dumps(press))

    async def leave(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


@pytest_asyncio.fixture(loop_scope="session")
async def players() -> AsyncIterator[Callable[..., Awaitable[FakeClockNode]]]:
    """Join player stations to a hub; all leave after the test."""
    joined: list[FakeClockNode] = []

    async def join(url: str, id: str, name: str, offset_ns: int = 0) -> FakeClockNode:
        node = await FakeClockNode(url, id, name, offset_ns).join()
        joined.append(node)
        return node

    yield join
    for node in joined:
        await node.leave()


@dataclass
class Station:
    """A real player node (the firmware's :class:`Node`) with a mock GPIO button and a clock
    running ``offset_ns`` away from the hub's."""

    node: Any
    task: asyncio.Task[None]
    button: Any  # gpiozero mock pin; pulled up, so pressed reads low
    offset_ns: int

    async def click(self) -> int:
        """Press the button until the node has it, let go; the press instant in hub time, as
        the node took it."""
        pressed = await click(self.button, self.node)
        return int(pressed.at_ns) - self.offset_ns


@pytest_asyncio.fixture(loop_scope="session")
async def stations(mock_pins: Any) -> AsyncIterator[Callable[..., Awaitable[Station]]]:
    """Start real GPIO stations against a hub; each gets its own button and LED pins."""
    from firmware.config import GpioSection, NodeConfig, NodeSection
    from firmware.node import Connected, Node

    started: list[Station] = []
    free_pins = iter(range(4, 28))

    async def start(url: str, node_id: str, name: str, offset_ns: int = 0) -> Station:
        button, led = f"GPIO{next(free_pins)}", f"GPIO{next(free_pins)}"
        config = NodeConfig(
            node=NodeSection(hub=url, id=node_id, name=name, inputs=["gpio"]),
            gpio=GpioSection(button_pin=button, led_pin=led),
        )
        node = Node(config, clock=lambda: time.monotonic_ns() + offset_ns, console=lambda _: None)
        task = asyncio.get_running_loop().create_task(node.run())
        station = Station(node, task, mock_pins.pin(button), offset_ns)
        started.append(station)
        await node.wait_for(Connected)
        return station

    yield start
    for station in started:
        station.node.stop()
    for station in started:
        await asyncio.wait_for(station.task, 5)
