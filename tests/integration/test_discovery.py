"""Discovery for real: a hub and a browsing node in two network namespaces joined by a veth pair.

The test makes its own small LAN (10.231.0.0/24, inside namespaces it creates and deletes), so
multicast DNS never leaves this machine. The node side finds the hub with ``buzzer-hub find``
and then talks to it at the address it found, and a real ``buzzer-node --hub auto`` (gpiozero's
mock pins, so no hardware) finds it, connects, and finds it again after a restart. Where
namespaces cannot be made (not root, no iproute2) the tests are skipped, except under CI, where
they must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOST_TOKEN, console_script

HUB_ADDRESS = "10.231.0.1"
NODE_ADDRESS = "10.231.0.2"


@dataclass
class Lan:
    hub_ns: str
    node_ns: str

    def in_node(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.node_ns, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class NodeProcess:
    """A ``buzzer-node`` subprocess whose console (stdout) is collected line by line."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _new_line: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 15.0, since: int = 0) -> str:
        """The first line printed from line ``since`` on that matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.lines[since:]:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = "\n".join(self.lines[-20:])
                    raise AssertionError(f"node printed no line matching {pattern!r}:\n{tail}")
                self._new_line.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def lan() -> Iterator[Lan]:
    tag = f"{os.getpid() % 100000}"
    hub_ns, node_ns = f"bbhub{tag}", f"bbnode{tag}"
    try:
        if shutil.which("ip") is None:
            raise OSError("iproute2 (ip) is not installed")
        _ip("netns", "add", hub_ns)
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI") == "true":
            raise
        detail = getattr(exc, "stderr", None) or exc
        pytest.skip(f"cannot create a network namespace here: {str(detail).strip()}")
    try:
        _ip("netns", "add", node_ns)
        veth_hub, veth_node = f"bbh{tag}", f"bbn{tag}"
        _ip("link", "add", veth_hub, "type", "veth", "peer", "name", veth_node)
        _ip("link", "set", veth_hub, "netns", hub_ns)
        _ip("link", "set", veth_node, "netns", node_ns)
        for ns, dev, address in (
            (hub_ns, veth_hub, HUB_ADDRESS),
            (node_ns, veth_node, NODE_ADDRESS),
        ):
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield Lan(hub_ns, node_ns)
    finally:
        for ns in (hub_ns, node_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def test_node_finds_the_hub_and_reaches_it_at_the_announced_address(lan: Lan, start_hub) -> None:
    hub = start_hub(
        "--host",
        "0.0.0.0",
        config='[discovery]\nname = "Quiz night"\n',
        prefix=["ip", "netns", "exec", lan.hub_ns],
    )
    # The line the hub logs for its operator names the address and port it announced.
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {HUB_ADDRESS} port {hub.port}$")

    found = lan.in_node(console_script("buzzer-hub"), "find", "--timeout", "10")
    assert found.returncode == 0, found.stderr
    url, name = found.stdout.splitlines()[0].split("\t")
    assert url == f"ws://{HUB_ADDRESS}:{hub.port}"
    assert name == "Quiz night"

    # The address found is one the node can really use: it controls the hub there.
    status = lan.in_node(
        console_script("buzzer-hub"), "ctl", "--hub", url, "--token", HOST_TOKEN, "status"
    )
    assert status.returncode == 0, status.stderr + "\n".join(hub.lines)
    assert isinstance(json.loads(status.stdout), dict)


def _status(lan: Lan, url: str) -> dict[str, Any]:
    """The hub's state, asked from the node's side of the link at the address given."""
    result = lan.in_node(
        console_script("buzzer-hub"), "ctl", "--hub", url, "--token", HOST_TOKEN, "status"
    )
    assert result.returncode == 0, result.stderr
    state: dict[str, Any] = json.loads(result.stdout)
    return state


def _online(state: dict[str, Any]) -> set[str]:
    return {player["id"] for player in state["players"] if player["online"]}


@pytest.fixture
def start_node(lan: Lan) -> Iterator[Any]:
    """Start ``buzzer-node`` in the node's namespace with mock pins; stopped after the test."""
    nodes: list[NodeProcess] = []

    def start(*args: str) -> NodeProcess:
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
        command = ["ip", "netns", "exec", lan.node_ns, console_script("buzzer-node"), *args]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        nodes.append(NodeProcess(proc))
        return nodes[-1]

    yield start
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)


def test_a_node_on_auto_waits_for_the_hub_finds_it_and_finds_it_again_after_a_restart(
    lan: Lan, start_hub: Any, start_node: Any
) -> None:
    node = start_node("--hub", "auto", "--id", "box1", "--input", "gpio")
    node.wait_for_line(r"looking for the hub on the LAN")
    missing = node.wait_for_line(r"^Hub unreachable: no hub answers on the LAN \(mDNS\)")
    hub_ns = ["ip", "netns", "exec", lan.hub_ns]

    config = '[discovery]\nname = "Quiz night"\n'
    hub = start_hub("--host", "0.0.0.0", config=config, prefix=hub_ns)
    url = f"ws://{HUB_ADDRESS}:{hub.port}"
    node.wait_for_line(rf"^Found the hub 'Quiz night' at {re.escape(url)} on the LAN\.$")
    node.wait_for_line(r"^Hello box1!")  # the hub's greeting: it has welcomed the node
    assert _online(_status(lan, url)) == {"box1"}
    # The wait for the hub was reported once, however many browses came back empty (the
    # in-process tests in test_node_discovery.py count them).
    assert [line for line in node.lines if line.startswith("Hub unreachable")] == [missing]

    # The hub restarts on another port (as after a reboot with a new address): the old address
    # stops answering, and the node has to look it up again.
    assert hub.stop() == 0
    mark = len(node.lines)
    again = start_hub("--host", "0.0.0.0", config=config, prefix=hub_ns)
    assert again.port != hub.port
    new_url = f"ws://{HUB_ADDRESS}:{again.port}"
    node.wait_for_line(rf"^Found the hub 'Quiz night' at {re.escape(new_url)} on the LAN\.$")
    node.wait_for_line(r"^Hello box1! Back in touch after ", since=mark)
    assert _online(_status(lan, new_url)) == {"box1"}
    assert node.stop() == 0


def test_a_hub_started_with_no_discovery_is_not_found(lan: Lan, start_hub) -> None:
    hub = start_hub(
        "--host", "0.0.0.0", "--no-discovery", prefix=["ip", "netns", "exec", lan.hub_ns]
    )
    found = lan.in_node(console_script("buzzer-hub"), "find", "--timeout", "2")
    assert found.returncode == 1
    assert found.stdout == ""
    assert not any("discovery:" in line for line in hub.lines)


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("buzzer-hub"), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_shipped_config_with_discovery_section_checks_ok() -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "hub.toml"
    assert "[discovery]" in shipped.read_text()
    result = _check_config(shipped)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[discovery]\nenable = false\n", "{path}:2: [discovery] enable: unknown key"),
        ("[discovery]\n\nenabled = 'no'\n", "{path}:3: [discovery] enabled: must be true or false"),
        ('[discovery]\nname = "hub.one"\n', "{path}: [discovery] name must not contain a dot"),
    ],
)
def test_bad_discovery_settings_are_refused_with_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    result = _check_config(path)
    assert result.returncode == 2
    assert message.format(path=path) in result.stderr
