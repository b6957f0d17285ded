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
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOST_TOKEN, console_script
from tests.support.netns import Netns, NodeProcess, ip, kill_all, start_node_process

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


@pytest.fixture
def lan() -> Iterator[Lan]:
    tag = f"{os.getpid() % 100000}"
    netns = Netns(tag)
    try:
        hub_ns, node_ns = netns.add("hub"), netns.add("node")
        veth_hub, veth_node = f"bbh{tag}", f"bbn{tag}"
        netns.link(hub_ns, veth_hub, node_ns, veth_node)
        ip("-n", hub_ns, "addr", "add", f"{HUB_ADDRESS}/24", "dev", veth_hub)
        ip("-n", node_ns, "addr", "add", f"{NODE_ADDRESS}/24", "dev", veth_node)
        yield Lan(hub_ns, node_ns)
    finally:
        netns.close()


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
        nodes.append(start_node_process(["ip", "netns", "exec", lan.node_ns], *args))
        return nodes[-1]

    yield start
    kill_all(nodes)


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
