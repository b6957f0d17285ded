"""Shared fixtures: a real hub on 127.0.0.1, and a protocol client to talk to it.

Nothing here imitates our own components. ``run_hub`` runs a hub in the test's own event loop
(:func:`hub.embed.running_hub`, real sockets on an ephemeral port), and the test waits on the
hub's events (:mod:`hub.core.events`). ``start_hub`` runs the installed ``buzzer-hub`` console
script as a subprocess, for the tests whose subject is the process itself: signals and exit
codes, systemd, a crash, the command line. Clients speak the real protocol over real sockets.
Waiting is always on an event (a hub event, a frame, a line the CLI prints) with a timeout,
never a bare sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from hub.config import HubConfig
from hub.embed import RunningHub, running_hub
from wire.codec import as_data

#: Test files that exercise the hub itself, end to end: each of their async tests runs twice, on
#: asyncio's loop and on uvloop (the hub uses uvloop when installed), and a hub they start runs on
#: the same loop as the test. Every other async test runs once, on asyncio's loop, so the suite
#: takes only these files' time again, not twice its own.
BOTH_LOOPS = {
    "tests/integration/test_hub.py",
    "tests/integration/test_floods.py",
    "tests/integration/test_security.py",
    "tests/integration/test_tutorial_clients.py",
    "tests/unit/hub/test_journal_damage.py",
    "tests/unit/hub/test_store_failures.py",
}


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """The loops an async test runs on (pytest-asyncio's hook): see BOTH_LOOPS."""
    from hub import loop

    relative = Path(str(item.path)).resolve().relative_to(Path(__file__).resolve().parents[1])
    names = ["asyncio"]
    if relative.as_posix() in BOTH_LOOPS and loop.uvloop_installed():
        names.append("uvloop")
    return {name: loop.factory(name) for name in names}


def loop_of(request: pytest.FixtureRequest) -> str | None:
    """Which loop (by hub/loop.py's name) this test runs on; None for a test with no loop."""
    from hub import loop

    callspec = getattr(request.node, "callspec", None)
    chosen = callspec.params.get("_asyncio_loop_factory") if callspec is not None else None
    if chosen is None:
        return None
    return "uvloop" if chosen is loop.factory("uvloop") else "asyncio"


HOST_TOKEN = "test-host-token"
LOOPBACK = "127.0.0.1"
#: The environment's proxy settings that a WebSocket or HTTP client may follow.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "socks_proxy")
BIN = Path(sys.executable).parent


def console_script(name: str) -> str:
    """The installed entry point next to this interpreter (the real CLI, as users run it)."""
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN}; run the test command from README"
    return str(path)


class InProcessHubs:
    """Hubs serving in the test's event loop on 127.0.0.1 (the fixture ``run_hub``).

    ``await run_hub(config)`` takes the config file's TOML text and returns the
    :class:`~hub.embed.RunningHub`, listening on a free port, with host token :data:`HOST_TOKEN`
    and a data directory of its own under the test's ``tmp_path`` (or ``data_dir``; ``None`` with
    ``memory_only``). ``await run_hub.stop(hub)`` stops one as the command line does on SIGTERM
    (every connection closed with 1001, the store closed and unlocked); starting another on the
    same ``data_dir`` and ``port`` is a restart. Every hub still running stops after the test.
    Discovery stays off: nothing is announced on the LAN.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._running: list[tuple[RunningHub, contextlib.AsyncExitStack]] = []
        self._count = 0

    async def __call__(
        self,
        config: str = "",
        *,
        data_dir: Path | None = None,
        memory_only: bool = False,
        port: int = 0,
    ) -> RunningHub:
        name = f"hub{self._count}"
        self._count += 1
        loaded = HubConfig.load(write_config(self.folder / f"{name}.toml", config))
        settings = dataclasses.replace(
            loaded,
            server=dataclasses.replace(loaded.server, host=LOOPBACK, port=port),
            discovery=dataclasses.replace(loaded.discovery, enabled=False),
        )
        data = None if memory_only else data_dir or self.folder / name
        stack = contextlib.AsyncExitStack()
        hub = await stack.enter_async_context(
            running_hub(settings, host_token=HOST_TOKEN, data_dir=data)
        )
        self._running.append((hub, stack))
        return hub

    async def stop(self, hub: RunningHub) -> None:
        for entry in self._running:
            if entry[0] is hub:
                self._running.remove(entry)
                await entry[1].aclose()
                return
        raise AssertionError("that hub is not running")

    async def stop_all(self) -> None:
        while self._running:
            await self.stop(self._running[-1][0])


@pytest.fixture(autouse=True, scope="session")
def no_proxies() -> Iterator[None]:
    """Test traffic goes to 127.0.0.1 only: a web proxy named in the environment (a CI runner's,
    a laptop's from the office) would otherwise carry the tests' own clients, and every process
    they start, to it. Tests about proxies set them for themselves."""
    names = [*PROXY_VARIABLES, "all_proxy", "no_proxy"]
    saved = {
        name: os.environ.pop(name)
        for name in (*names, *(n.upper() for n in names))
        if name in os.environ
    }
    yield
    os.environ.update(saved)


@pytest.fixture
async def run_hub(tmp_path: Path) -> AsyncIterator[InProcessHubs]:
    """Run hubs in this test's event loop; see :class:`InProcessHubs`."""
    hubs = InProcessHubs(tmp_path)
    yield hubs
    await hubs.stop_all()


def trouble(records: Sequence[logging.LogRecord]) -> list[str]:
    """The log records that say something went wrong: errors, and any exception's traceback."""
    return [
        f"{record.name}: {record.getMessage()}"
        for record in records
        if record.levelno >= logging.ERROR or record.exc_info
    ]


def logged(records: Sequence[logging.LogRecord], pattern: str) -> list[str]:
    """The messages of the log records that match ``pattern``."""
    regex = re.compile(pattern)
    return [message for record in records if regex.search(message := record.getMessage())]


def state_of(hub: RunningHub) -> dict[str, Any]:
    """The hub's whole picture as JSON data, as hosts, viewers and ``/api/state`` see it."""
    return as_data(hub.state())


@dataclass
class HubProcess:
    """A ``buzzer-hub`` subprocess whose log is collected line by line."""

    args: list[str]
    data_dir: Path
    port: int = 0
    loop: str | None = None  # BUZZER_LOOP for the hub: None lets it choose (uvloop if installed)
    prefix: list[str] = field(default_factory=list)  # e.g. ip netns exec NAME
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    _new_line: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    @property
    def http(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 15.0) -> HubProcess:
        command = [
            *self.prefix,
            console_script("buzzer-hub"),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--host-token",
            HOST_TOKEN,
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.loop is not None:
            env["BUZZER_LOOP"] = self.loop
        self.proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        start = len(self.lines)
        self._reader = threading.Thread(target=self._collect, args=(self.proc,), daemon=True)
        self._reader.start()
        line = self.wait_for_log(r"listening on ", timeout, since=start)
        match = re.search(r"listening on \S+?:(\d+)", line)
        assert match, line
        self.port = int(match.group(1))
        return self

    def _collect(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_log(self, pattern: str, timeout: float = 10.0, since: int = 0) -> str:
        """The first log line from ``since`` on that matches ``pattern``; fail after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = since
        with self._new_line:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                exited = self.proc is not None and self.proc.poll() is not None
                if left <= 0 or (exited and seen == len(self.lines)):
                    log = "\n".join(self.lines[-30:])
                    raise AssertionError(f"no log line matching {pattern!r}; log tail:\n{log}")
                self._new_line.wait(min(left, 0.5))

    def final_log(self, timeout: float = 10.0) -> list[str]:
        """Every line the hub wrote, once it has exited and its stderr is read to the end."""
        assert self.proc is not None
        assert self._reader is not None
        self.proc.wait(timeout)
        self._reader.join(timeout)
        assert not self._reader.is_alive(), "the hub's stderr was not closed"
        return list(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def start_hub(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., HubProcess]]:
    """Start real hubs with extra command-line arguments; all are stopped after the test.

    A hub runs on the same kind of event loop as the test that starts it (see BOTH_LOOPS)."""
    hub_loop = loop_of(request)
    hubs: list[HubProcess] = []

    def start(
        *args: str,
        config: str | None = None,
        data_dir: Path | None = None,
        prefix: Sequence[str] = (),
    ) -> HubProcess:
        """``config`` is TOML text for a config file written for this hub; ``prefix`` runs it
        through a wrapper command (such as ``ip netns exec NAME``)."""
        name = f"hub{len(hubs)}"
        if config is not None:
            path = write_config(tmp_path / f"{name}.toml", config)
            args = ("--config", str(path), *args)
        hub = HubProcess(
            list(args), data_dir or tmp_path / name, prefix=list(prefix), loop=hub_loop
        )
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.kill()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


#: Frames whose order relative to each other the protocol does not fix.
UNORDERED_KINDS = ("ack", "result")


def _matches(frame: dict[str, Any], kind: str, match: dict[str, Any]) -> bool:
    return frame["type"] == kind and all(frame.get(k) == v for k, v in match.items())


class Client:
    """A protocol v1 client: sends messages, waits for frames matching a condition."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        # An ack follows the commit to disk and a result does not wait for it, so either may
        # come first: frames of these kinds that one expect() passed over stay claimable.
        self._unclaimed: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """Read frames until one of ``kind`` whose fields equal ``match``; answer sync requests.

        Acks and results passed over by an earlier call are looked at first (see __init__).
        """
        for frame in self._unclaimed:
            if _matches(frame, kind, match):
                self._unclaimed.remove(frame)
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                self.received.append(frame)
                if frame["type"] == "sync":
                    await self.answer_sync(frame)
                if _matches(frame, kind, match):
                    return frame
                if frame["type"] in UNORDERED_KINDS:
                    self._unclaimed.append(frame)

    def mark(self) -> int:
        """A position in what this client has read: pass it to :meth:`expect_since`."""
        return len(self.received)

    async def expect_since(
        self, mark: int, kind: str, timeout: float = 5.0, **match: Any
    ) -> dict[str, Any]:
        """The first frame of ``kind`` matching ``match`` read at or after ``mark``: one an
        earlier wait read past (a timer frame while waiting for a state picture, say), or the
        next to come."""
        for frame in self.received[mark:]:
            if _matches(frame, kind, match):
                return frame
        return await self.expect(kind, timeout, **match)

    async def answer_sync(self, sync: dict[str, Any]) -> None:
        """Reply with the truth as this machine's shared clock knows it.

        This client reads only while a test waits for a frame, so a sync may sit unread for a
        while. Stamping t1 at that reading would claim the sync arrived late: the hub would see
        a node that holds its replies back and judge its presses accordingly. Hub and client
        share one monotonic clock here, and the sync left the hub at t0, so it arrived at t0
        (loopback takes microseconds); the time it sat unread is the reply's turnaround.
        """
        now = time.monotonic_ns()
        await self.send(
            type="sync_reply",
            seq=sync["seq"],
            t0_ns=sync["t0_ns"],
            t1_ns=min(sync["t0_ns"], now),
            t2_ns=now,
        )


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., Any]]:
    """Open protocol clients to a hub; each is closed after the test."""
    opened: list[ClientConnection] = []

    async def open_client(url: str, **hello: Any) -> Client:
        ws = await connect(url, compression=None, open_timeout=5, proxy=None)
        opened.append(ws)
        client = Client(ws)
        if hello:
            await client.send(type="hello", protocol=1, **hello)
        return client

    yield open_client
    for ws in opened:
        await ws.close()


# --- node firmware fixtures (tests/unit/firmware/, tests/integration/test_node_*.py) --------------


@pytest.fixture
def mock_pins() -> Iterator[Any]:
    """gpiozero's MockFactory as the default pin factory: pins record every state they take."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
async def start_node(mock_pins: Any) -> AsyncIterator[Callable[..., Any]]:
    """Run real :class:`firmware.node.Node` objects in this event loop; all stop after the test.

    ``start_node(url, id, **gpio)`` takes the hub URL, a node id and [gpio] settings; ``clock``,
    ``console`` and ``inputs`` go to the node. It returns once the node's task is running. Pins
    are gpiozero mock pins (``mock_pins``), released only after every node has stopped.
    """
    from firmware.config import ConnectionSection, GpioSection, NodeConfig, NodeSection
    from firmware.node import Node

    running: list[tuple[Node, asyncio.Task[None]]] = []

    async def start(
        url: str,
        node_id: str,
        *,
        name: str | None = None,
        inputs: tuple[str, ...] = ("gpio",),
        token: str = "",
        cafile: str = "",
        clock: Callable[[], int] = time.monotonic_ns,
        console: Callable[[str], None] | None = None,
        connection: ConnectionSection | None = None,
        **gpio: Any,
    ) -> Node:
        config = NodeConfig(
            node=NodeSection(
                hub=url,
                id=node_id,
                name=name or node_id,
                inputs=list(inputs),
                token=token,
                cafile=cafile,
            ),
            gpio=GpioSection(**gpio),
            connection=connection or ConnectionSection(),
        )
        node = Node(config, clock=clock, console=console or (lambda line: None))
        task = asyncio.create_task(node.run())
        running.append((node, task))
        return node

    yield start
    for node, _ in running:
        node.stop()
    for _, task in running:
        await asyncio.wait_for(task, 5)
