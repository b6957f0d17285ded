"""Discovery and links at a venue, for real: hubs and nodes in network namespaces whose network
changes.

Each test builds its own small LAN of namespaces and veth pairs (10.230.0.0/16 inside them; see
tests/support/netns.py), starts a real ``buzzer-hub`` in one and a real ``buzzer-node
--hub auto`` (gpiozero's mock pins) in another, then changes the network the way a venue does:
the hub boots before the router gives it an address, its address changes, it sits on a second
network the node cannot reach, it serves TLS. In each the node must find the hub and reach it,
which the node's own console proves: it names the address it found, then prints the greeting the
hub welcomed it with. The hub's discovery lines are its operator's news, and are checked as such.
And a cable comes out: the node must say so within seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.keepalive import LOST_HUB_S, PING_INTERVAL_S
from hub.config import HubConfig
from hub.server import LOST_STATION_S
from tests.conftest import HubProcess, console_script
from tests.support.netns import Netns, NodeProcess, ip, kill_all, start_node_process

HUB = "10.231.0.1"
NODE = "10.231.0.2"
#: The hub's address on a second network (its own access point, a docker bridge's subnet) that
#: the node is not on. It sorts before HUB, so a node that took the first address would fail.
ELSEWHERE = "10.230.0.1"
#: The node's default gateway: nobody answers there, so traffic for ELSEWHERE goes nowhere.
DEAD_GATEWAY = "10.231.0.254"
NAMED = '[discovery]\nname = "Quiz night"\n'


class Venue:
    """A hub namespace and a node namespace on one link (addresses added by each test)."""

    def __init__(self, netns: Netns) -> None:
        self.netns = netns
        self.hub_ns = netns.add("h")
        self.node_ns = netns.add("n")
        self.hub_dev, self.node_dev = f"bbh{netns.tag}", f"bbn{netns.tag}"
        netns.link(self.hub_ns, self.hub_dev, self.node_ns, self.node_dev)
        ip("-n", self.node_ns, "addr", "add", f"{NODE}/24", "dev", self.node_dev)

    def hub_address(self, address: str, *, remove: str = "") -> None:
        if remove:
            ip("-n", self.hub_ns, "addr", "del", f"{remove}/24", "dev", self.hub_dev)
        ip("-n", self.hub_ns, "addr", "add", f"{address}/24", "dev", self.hub_dev)


@pytest.fixture
def venue() -> Iterator[Venue]:
    netns = Netns(f"{os.getpid() % 100000}")
    try:
        yield Venue(netns)
    finally:
        netns.close()


@pytest.fixture
def node_in(venue: Venue) -> Iterator[Callable[..., NodeProcess]]:
    """Start ``buzzer-node`` in the node's namespace with mock pins; killed after the test."""
    nodes: list[NodeProcess] = []

    def start(*args: str) -> NodeProcess:
        nodes.append(start_node_process(venue.netns.exec(venue.node_ns), *args))
        return nodes[-1]

    yield start
    kill_all(nodes)


def hub_in(venue: Venue, start_hub: Callable[..., HubProcess], config: str = NAMED) -> HubProcess:
    return start_hub("--host", "0.0.0.0", config=config, prefix=venue.netns.exec(venue.hub_ns))


def found_at(node: NodeProcess, url: str, since: int = 0, timeout: float = 30) -> str:
    pattern = rf"^Found the hub 'Quiz night' at {re.escape(url)} on the LAN\.$"
    return node.wait_for_line(pattern, timeout, since)


def welcomed(node: NodeProcess, since: int = 0, timeout: float = 30) -> str:
    """The hub's greeting, printed by the node once the hub has welcomed it."""
    return node.wait_for_line(r"^Hello box1!", timeout, since)


AUTO = ("--hub", "auto", "--id", "box1", "--input", "gpio")


def test_a_hub_started_before_it_has_an_address_is_found_once_it_gets_one(
    venue: Venue, start_hub: Any, node_in: Any
) -> None:
    hub = hub_in(venue, start_hub)  # the link is up, but no DHCP answer yet
    hub.wait_for_log(r"discovery: no LAN address yet; the hub is announced as soon as one appears")
    node = node_in(*AUTO)
    waiting = node.wait_for_line(r"^Hub unreachable: ")
    # It says where it looked, rather than blaming multicast out of hand.
    assert f"no hub answers on the LAN (mDNS) on {venue.node_dev} ({NODE}/24)" in waiting

    venue.hub_address(HUB)  # the router is up at last
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {HUB} port {hub.port}$")
    found_at(node, f"ws://{HUB}:{hub.port}")
    welcomed(node)
    assert node.stop() == 0


def test_a_hub_whose_address_changes_is_announced_and_found_at_the_new_one(
    venue: Venue, start_hub: Any, node_in: Any
) -> None:
    venue.hub_address(HUB)
    hub = hub_in(venue, start_hub)
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {HUB} port {hub.port}$")
    node = node_in(*AUTO)
    found_at(node, f"ws://{HUB}:{hub.port}")
    welcomed(node)

    moved = "10.231.0.5"
    mark, node_mark = len(hub.lines), len(node.lines)
    venue.hub_address(moved, remove=HUB)  # a new lease
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {moved} port {hub.port}$", since=mark)
    # The old connection dies with its address; the node looks the hub up again.
    found_at(node, f"ws://{moved}:{hub.port}", since=node_mark, timeout=60)
    welcomed(node, since=node_mark, timeout=60)
    assert node.stop() == 0


def test_a_hub_on_two_networks_is_reached_at_the_one_the_node_is_on(
    venue: Venue, start_hub: Any, node_in: Any
) -> None:
    other = venue.netns.add("o")  # a second network of the hub's, with nobody from ours on it
    other_dev = f"bbo{venue.netns.tag}"
    venue.netns.link(venue.hub_ns, f"bbx{venue.netns.tag}", other, other_dev)
    ip("-n", venue.hub_ns, "addr", "add", f"{ELSEWHERE}/24", "dev", f"bbx{venue.netns.tag}")
    venue.hub_address(HUB)
    # The node can route to ELSEWHERE (through a gateway that never answers), as a station on
    # the venue's Wi-Fi can to a hub's docker0 or access-point address: it just never arrives.
    ip("-n", venue.node_ns, "route", "add", "default", "via", DEAD_GATEWAY)

    hub = hub_in(venue, start_hub)
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {ELSEWHERE}, {HUB} port {hub.port}$")
    listed = venue.netns.run(venue.node_ns, console_script("buzzer-hub"), "find", "--timeout", "10")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"ws://{ELSEWHERE}:{hub.port}\tQuiz night",
        f"ws://{HUB}:{hub.port}\tQuiz night",
    ]

    node = node_in(*AUTO)
    found_at(node, f"ws://{HUB}:{hub.port}")
    welcomed(node)
    assert not any("Hub unreachable" in line for line in node.lines)
    assert node.stop() == 0


def make_certificate(folder: Path, address: str) -> tuple[Path, Path]:
    """A self-signed certificate naming ``address`` (its own CA), valid for a day."""
    cert, key = folder / "venue-hub.pem", folder / "venue-hub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=venue",
         "-addext", f"subjectAltName=IP:{address}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0
    and os.environ.get("CI") != "true",
    reason="needs the openssl command to make a test certificate",
)
def test_a_tls_hub_is_announced_as_such_and_the_node_connects_with_wss(
    venue: Venue, start_hub: Any, node_in: Any, tmp_path: Path
) -> None:
    venue.hub_address(HUB)
    cert, key = make_certificate(tmp_path, HUB)
    config = NAMED + f'[security]\ncertfile = "{cert}"\nkeyfile = "{key}"\n'
    hub = hub_in(venue, start_hub, config)
    hub.wait_for_log(rf"discovery: announced 'Quiz night' on {HUB} port {hub.port} \(TLS\)$")

    node = node_in(*AUTO, "--cafile", str(cert))
    found_at(node, f"wss://{HUB}:{hub.port}")
    welcomed(node)
    assert node.stop() == 0


def test_a_pulled_cable_is_noticed_within_seconds_and_the_hub_is_not_pinged_for_it(
    venue: Venue, start_hub: Any, node_in: Any
) -> None:
    """The hub's cable comes out. The station's kernel, whose probes the hub's kernel answered,
    notices within LOST_HUB_S, or twice that if the station's own ping went out meanwhile (the
    kernel then waits for it instead); the ping alone, every PING_INTERVAL_S, would take longer,
    and would be reported as an unanswered ping. The console says what to check."""
    assert PING_INTERVAL_S > 3 * LOST_HUB_S
    venue.hub_address(HUB)
    hub = hub_in(venue, start_hub)
    node = node_in("--hub", f"ws://{HUB}:{hub.port}", "--id", "box1", "--input", "gpio")
    welcomed(node)
    since = len(node.lines)
    ip("-n", venue.hub_ns, "link", "set", venue.hub_dev, "down")  # the hub's end of the cable
    lost = node.wait_for_line(r"^Hub unreachable: ", timeout=3 * LOST_HUB_S, since=since)
    # The kernel's verdict (a timeout, or an unreachable host it heard of), not a ping's.
    assert lost == (
        "Hub unreachable: the hub stopped answering; check its power, its cable or the Wi-Fi."
        " Retrying every second or so."
    )
    assert not [line for line in node.lines if line.startswith("Note: pinging the hub")]
    assert node.stop() == 0


def test_a_stations_pulled_cable_is_noticed_by_the_hub_within_seconds(
    venue: Venue, start_hub: Any, node_in: Any
) -> None:
    """The station's cable comes out: it sends nothing more, not even a close. The hub's kernel
    probes the quiet link and gives up LOST_STATION_S after the station went quiet, or up to
    twice that if the hub was sending to it meanwhile (the kernel then retries the data
    instead); the keepalive's ping alone took 40 to 50 s. The hub's log, its operator's news,
    says which station went and what to check."""
    # The keepalive closes a silent link 2 to 2.5 keepalive_s after it went quiet: never within
    # the wait below.
    assert 2 * HubConfig().limits.keepalive_s > 3 * LOST_STATION_S
    venue.hub_address(HUB)
    hub = hub_in(venue, start_hub)
    node = node_in("--hub", f"ws://{HUB}:{hub.port}", "--id", "box1", "--input", "gpio")
    welcomed(node)
    since = len(hub.lines)
    ip("-n", venue.node_ns, "link", "set", venue.node_dev, "down")  # the station's end
    left = hub.wait_for_log(r"node box1 left", timeout=3 * LOST_STATION_S, since=since)
    assert left.endswith(
        "node box1 left (the station stopped answering or reading: check its power, cable, Wi-Fi)"
    )
