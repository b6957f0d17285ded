"""Which of a hub's addresses a node tries first, which interfaces a hub announces, the TXT
record's TLS flag, and the lines a node says when no hub can be used."""

from __future__ import annotations

import itertools

import pytest

from firmware.discovery import missing_reason, ordered_urls, unreachable_reason
from wire.discovery import FoundHub, LanAddress, is_lan_interface, read_txt, txt_record

#: A Pi hub on the venue's Wi-Fi, its own access point, docker's bridge and a USB link.
ADDRESSES = ("192.168.1.20", "10.42.0.1", "172.17.0.1", "169.254.7.7")
WIFI = LanAddress("wlan0", "192.168.1.31", 24)
HOTSPOT = LanAddress("wlan0", "10.42.0.17", 24)


def hub(*addresses: str, tls: bool = False) -> FoundHub:
    return FoundHub("Quiz night", addresses, 8765, 1, tls)


def test_the_stations_own_subnet_comes_first_whatever_the_order_announced() -> None:
    for order in itertools.permutations(ADDRESSES):
        assert ordered_urls(hub(*order), [WIFI])[0] == "ws://192.168.1.20:8765"
        assert ordered_urls(hub(*order), [HOTSPOT])[0] == "ws://10.42.0.1:8765"


def test_then_the_others_by_address_and_link_local_last() -> None:
    assert ordered_urls(hub(*ADDRESSES), [HOTSPOT]) == [
        "ws://10.42.0.1:8765",
        "ws://172.17.0.1:8765",
        "ws://192.168.1.20:8765",
        "ws://169.254.7.7:8765",
    ]
    # A station on the USB cable with only a link-local address takes that one first.
    usb = LanAddress("usb0", "169.254.1.2", 16)
    assert ordered_urls(hub(*ADDRESSES), [usb])[0] == "ws://169.254.7.7:8765"


def test_a_hub_that_says_tls_is_reached_with_wss() -> None:
    assert txt_record(True)["tls"] == "1"
    protocol, tls = read_txt({k.encode(): v.encode() for k, v in txt_record(True).items()})
    assert (protocol, tls) == (1, True)
    assert read_txt({b"protocol": b"1"}) == (1, False)  # an older hub said nothing: ws://
    assert read_txt({b"protocol": b"x", b"tls": None}) == (None, False)
    assert ordered_urls(hub("10.42.0.1", tls=True), [HOTSPOT]) == ["wss://10.42.0.1:8765"]


@pytest.mark.parametrize(
    ("name", "address", "announced"),
    [
        ("eth0", "192.168.1.20", True),
        ("wlan0", "10.42.0.1", True),  # the hub's own access point
        ("usb0", "169.254.7.7", True),  # a USB gadget link with no DHCP
        ("end0", "192.168.1.20", True),  # newer kernels' name for a Pi's Ethernet
        ("lo", "127.0.0.1", False),
        ("docker0", "172.17.0.1", False),
        ("br-5f2a1c", "172.18.0.1", False),
        ("veth12ab", "169.254.3.3", False),
        ("virbr0", "192.168.122.1", False),
        ("tailscale0", "100.64.0.3", False),
        ("wg0", "10.8.0.1", False),
        ("eth0", "not an address", False),
    ],
)
def test_which_interfaces_a_hub_announces(name: str, address: str, announced: bool) -> None:
    assert is_lan_interface(name, address) is announced


def test_a_configured_interface_list_overrides_the_guess() -> None:
    assert is_lan_interface("br0", "192.168.1.20", ("br0",))
    assert not is_lan_interface("eth0", "192.168.1.20", ("br0",))
    assert not is_lan_interface("br0", "127.0.0.1", ("br0",))  # never loopback


def test_what_a_station_says_names_where_it_looked() -> None:
    assert missing_reason("", []).startswith("this station has no network address yet")
    looked = missing_reason("", [WIFI])
    assert "no hub answers on the LAN (mDNS) on wlan0 (192.168.1.31/24)" in looked
    assert 'set hub = "ws://HOST:PORT"' in looked
    # Another hub answered: multicast works, so the advice is about the name.
    named = missing_reason("Finals", [WIFI], [hub("10.0.0.1")])
    assert named == (
        "no hub named 'Finals' answers on wlan0 (192.168.1.31/24), only 'Quiz night'; check "
        "hub_name against the hub's [discovery] name"
    )
    assert "multicast" not in named


def test_an_unreachable_hub_is_named_with_each_address_tried() -> None:
    reason = unreachable_reason(
        hub("10.42.0.1", "172.17.0.1"),
        [("ws://10.42.0.1:8765", "no answer within 5 s"), ("ws://172.17.0.1:8765", "refused")],
    )
    assert "(ws://10.42.0.1:8765: no answer within 5 s; ws://172.17.0.1:8765: refused)" in reason
