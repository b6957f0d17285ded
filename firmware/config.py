"""The node's settings: defaults, then the config file, then the command line.

Every key is documented in ``config/node.toml``; each command-line flag maps to one of them, so a
maker can bake a station's whole setup into a file and a player can still override one thing on the
command line. Sections check their own ranges so a typo is refused at start, not mid-event.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from wire import configfile
from wire.messages import ID_PATTERN, NAME_MAX_CHARS, TOKEN_MAX_CHARS

#: Find the hub over mDNS (see firmware/discovery.py): what a maker wants, since a station then
#: needs no address typed in and follows the hub to a new DHCP lease.
AUTO_HUB = "auto"
DEFAULT_HUB = AUTO_HUB
HUB_NAME_MAX_CHARS = 63  # a DNS label
INPUT_KINDS = ("gpio", "keyboard", "terminal")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be at least {low:g}")


@dataclass(frozen=True)
class NodeSection:
    hub: str = DEFAULT_HUB
    id: str = ""  # empty: this machine's hostname
    name: str = ""  # empty: the id
    inputs: list[str] = field(default_factory=lambda: ["gpio"])
    token: str = ""  # empty: the hub needs no node token
    cafile: str = ""  # wss:// hubs: trust only this certificate (or CA); empty: the system's CAs
    hub_name: str = ""  # with hub = "auto": use only the hub announced under this name

    def __post_init__(self) -> None:
        if self.hub != AUTO_HUB and not re.match(r"wss?://[^/\s]+", self.hub):
            raise ValueError(
                f'hub must be "auto" or look like ws://HOST:PORT or wss://HOST:PORT, '
                f"not {self.hub!r}"
            )
        if len(self.hub_name) > HUB_NAME_MAX_CHARS or not self.hub_name.isprintable():
            raise ValueError(f"hub_name must be at most {HUB_NAME_MAX_CHARS} printable characters")
        if "." in self.hub_name:
            raise ValueError("hub_name must not contain a dot (a hub's name never does)")
        if self.id and not ID_PATTERN.fullmatch(self.id):
            raise ValueError(
                "id must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter "
                "or digit"
            )
        if len(self.name) > NAME_MAX_CHARS or not self.name.isprintable():
            raise ValueError(f"name must be at most {NAME_MAX_CHARS} printable characters")
        if not self.inputs:
            raise ValueError(f"inputs needs at least one of {', '.join(INPUT_KINDS)}")
        for kind in self.inputs:
            if kind not in INPUT_KINDS:
                raise ValueError(f"input {kind!r} is not one of {', '.join(INPUT_KINDS)}")
        if len(self.token) > TOKEN_MAX_CHARS:
            raise ValueError(f"token must be at most {TOKEN_MAX_CHARS} characters")


@dataclass(frozen=True)
class GpioSection:
    button_pin: str = "GPIO17"  # gpiozero pin name: "GPIO17", "BOARD11" or "17"
    pull_up: bool = True  # button wired to ground (the usual arcade wiring)
    bounce_ms: float = 0.0  # no longer used: the driver's debounce stamped presses late
    confirm_ms: float = 1.0  # a press counts once the line stayed active this long (no glitch)
    guard_ms: float = 50.0  # the line must be quiet this long before an edge counts as a press
    led_pin: str = "GPIO27"  # empty: no LED
    buzzer_pin: str = ""  # empty: no buzzer
    # false for a buzzer module that sounds while its input is low ("low level trigger")
    buzzer_active_high: bool = True

    def __post_init__(self) -> None:
        if not self.button_pin:
            raise ValueError("button_pin must name a pin, e.g. GPIO17")
        _at_least("bounce_ms", self.bounce_ms, 0)
        _at_least("confirm_ms", self.confirm_ms, 0)
        _at_least("guard_ms", self.guard_ms, 1)


@dataclass(frozen=True)
class KeyboardSection:
    key: str = "space"  # key name as the keyboard package spells it
    guard_ms: float = 30.0  # a key must be up this long before the next down counts
    input_dir: str = "/dev/input"  # where the keyboard's event devices live

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("key must name a key, e.g. space")
        _at_least("guard_ms", self.guard_ms, 1)


@dataclass(frozen=True)
class TerminalSection:
    # A terminal reports no key release, only repeated characters while a key is held: the first
    # repeat comes 250-600 ms after the press, so a space counts only after this much quiet.
    repeat_guard_ms: float = 700.0

    def __post_init__(self) -> None:
        _at_least("repeat_guard_ms", self.repeat_guard_ms, 1)


@dataclass(frozen=True)
class ConnectionSection:
    retry_max_ms: float = 1000.0  # reconnect backoff cap, so a restarted hub is picked up at once
    refused_retry_s: float = 30.0  # wait after the hub refused the token or another node took over
    # After a reconnect, old presses go once the hub says this node is synced, or after this long.
    resync_flush_ms: float = 500.0

    def __post_init__(self) -> None:
        _at_least("retry_max_ms", self.retry_max_ms, 50)
        _at_least("refused_retry_s", self.refused_retry_s, 1)
        _at_least("resync_flush_ms", self.resync_flush_ms, 0)


@dataclass(frozen=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    keyboard: KeyboardSection = field(default_factory=KeyboardSection)
    terminal: TerminalSection = field(default_factory=TerminalSection)
    connection: ConnectionSection = field(default_factory=ConnectionSection)

    @classmethod
    def load(cls, path: Path | str | None) -> NodeConfig:
        return cls() if path is None else configfile.load(cls, path)

    @property
    def node_id(self) -> str:
        return self.node.id or hostname_id()

    @property
    def display_name(self) -> str:
        return self.node.name or self.node_id


def hostname_id(name: str | None = None) -> str:
    """The hostname as a valid node id: a Pi's hostname is what a maker labels the box with."""
    raw = (name if name is not None else socket.gethostname()).split(".")[0]
    cleaned = re.sub(r"[^A-Za-z0-9._:-]", "-", raw).lstrip("._:-")[:64]
    return cleaned or "node"


def parse_inputs(values: list[str]) -> list[str]:
    """``--input gpio,keyboard`` and repeated ``--input`` flags, flattened, in order, once each."""
    kinds: list[str] = []
    for value in values:
        for part in value.split(","):
            kind = part.strip().lower()
            if kind and kind not in kinds:
                kinds.append(kind)
    return kinds
