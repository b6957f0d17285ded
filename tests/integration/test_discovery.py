"""Discovery for real: a hub and a browsing node in two network namespaces joined by a veth pair.

The test makes its own small LAN (10.231.0.0/24, inside namespaces it creates and deletes), so
multicast DNS never leaves this machine. The node side finds the hub with ``buzzer-hub find``
and then talks to it at the address it found. Where namespaces cannot be made (not root, no
iproute2) the test is skipped, except under CI, where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    # 0.0.0.0, not "": with port 0 and no host, IPv4 and IPv6 would get different free ports.
    hub = start_hub(
        "--host",
        "0.0.0.0",
        config='[discovery]\nname = "Quiz night"\n',
        prefix=["ip", "netns", "exec", lan.hub_ns],
    )
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {HUB_ADDRESS} port {hub.port}")

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
