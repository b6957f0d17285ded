"""``buzzer-node``: run a player station, or check its config file.

Settings come from the defaults, then ``--config FILE`` (see ``config/node.toml``), then the
environment (``BUZZER_NODE_TOKEN``), then the flags. The process prints one line per event on
stdout (that is the player's console) and exits 0 on Ctrl+C or SIGTERM, having restored the
terminal; 2 for a setup problem it cannot fix by retrying.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Sequence

from firmware.config import INPUT_KINDS, NodeConfig, hostname_id, parse_inputs
from firmware.identity import claim_default_id
from firmware.node import Node, print_line
from firmware.wiring import check_wiring
from wire import configfile
from wire.errors import BuzzerError, ConfigError

TOKEN_ENV = "BUZZER_NODE_TOKEN"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buzzer-node",
        description=(
            "Run a Buzzer Beater player station. Also: 'buzzer-node check-config FILE', "
            "'buzzer-node test-wiring [--config FILE]'."
        ),
    )
    parser.add_argument(
        "--hub", help="'auto' (find it on the LAN) or ws://HOST:PORT ([node] hub; default auto)"
    )
    parser.add_argument("--hub-name", help="with --hub auto: the hub's name ([node] hub_name)")
    parser.add_argument(
        "--id", help="station id, unique per hub (default: the hostname; -2, -3... for more)"
    )
    parser.add_argument("--name", help="name shown to the host and players (default: the id)")
    parser.add_argument(
        "--input",
        action="append",
        metavar="KIND",
        help=f"press source, repeatable or comma-separated: {', '.join(INPUT_KINDS)}",
    )
    parser.add_argument("--config", help="TOML config file (see config/node.toml)")
    parser.add_argument("--token", help=f"node token if the hub wants one (or ${TOKEN_ENV})")
    parser.add_argument("--cafile", help="certificate a wss:// hub must present ([node] cafile)")
    parser.add_argument("--button-pin", help="button pin, e.g. GPIO17 ([gpio] button_pin)")
    pull = parser.add_mutually_exclusive_group()
    pull.add_argument(
        "--pull-up", dest="pull_up", action="store_true", default=None, help="button to ground"
    )
    pull.add_argument("--pull-down", dest="pull_up", action="store_false", help="button to 3.3 V")
    parser.add_argument(
        "--bounce-ms", type=float, help="no longer used; kept so old command lines still start"
    )
    parser.add_argument(
        "--confirm-ms", type=float, help="press counts once held this long ([gpio] confirm_ms)"
    )
    parser.add_argument("--guard-ms", type=float, help="one press per quiet period ([gpio])")
    parser.add_argument("--led-pin", help="LED pin; '' for none ([gpio] led_pin)")
    parser.add_argument("--buzzer-pin", help="active buzzer pin ([gpio] buzzer_pin)")
    parser.add_argument("--key", help="key for the keyboard input ([keyboard] key)")
    return parser


def load_config(args: argparse.Namespace) -> NodeConfig:
    """Defaults, then the file, then the environment, then the flags."""
    config = NodeConfig.load(args.config)
    try:
        node = configfile.override(
            config.node,
            hub=args.hub,
            hub_name=args.hub_name,
            id=args.id,
            name=args.name,
            inputs=parse_inputs(args.input) if args.input else None,
            token=args.token or os.environ.get(TOKEN_ENV) or None,
            cafile=args.cafile,
        )
        gpio = configfile.override(
            config.gpio,
            button_pin=args.button_pin,
            pull_up=args.pull_up,
            bounce_ms=args.bounce_ms,
            confirm_ms=args.confirm_ms,
            guard_ms=args.guard_ms,
            led_pin=args.led_pin,
            buzzer_pin=args.buzzer_pin,
        )
        keyboard = configfile.override(config.keyboard, key=args.key)
    except ValueError as exc:
        raise ConfigError(f"command line: {exc}") from None
    return configfile.override(config, node=node, gpio=gpio, keyboard=keyboard)


async def run(config: NodeConfig) -> None:
    claim = None
    if not config.node.id:  # the hostname, unless another station here has it already
        base = hostname_id()
        node_id, claim = claim_default_id(base)
        if node_id != base:
            print(
                f"Another station on this machine has the id {base!r}; this one is "
                f"{node_id!r} (set --id to choose).",
                flush=True,
            )
        config = configfile.override(config, node=configfile.override(config.node, id=node_id))
    try:
        await _run(config)
    finally:
        if claim is not None:
            os.close(claim)


async def _run(config: NodeConfig) -> None:
    node = Node(config, on_open=freeze_start)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, node.stop)
    if node.discovering:
        named = config.node.hub_name
        where = f"looking for the hub {named!r}" if named else "looking for the hub"
        print(f"Buzzer node {node.id} ({node.name}) {where} on the LAN (mDNS)", flush=True)
    else:
        print(f"Buzzer node {node.id} ({node.name}) connecting to {node.url}", flush=True)
    await node.run()


def freeze_start() -> None:
    """Leave what the station holds once it has started (the libraries, its pins) out of every
    later full garbage collection.

    A full collection walks every object the collector tracks: in a node after its start, 33,000
    of them, 11 ms on a laptop core and several times that on a Pi Zero. It comes when the
    objects that outlived younger collections have grown by a quarter, which early in a
    station's life can be any moment, a press on its way to the hub or a clock sample among
    them. Frozen, those objects are still freed by reference counting; one collection first, so
    that no cycle is frozen in.
    """
    gc.collect()
    gc.freeze()


def wiring(argv: Sequence[str]) -> int:
    """``buzzer-node test-wiring``: the station's pins, checked by hand (firmware/wiring.py)."""
    parser = _parser()
    parser.prog = "buzzer-node test-wiring"
    parser.description = "Light the LED, sound the buzzer, print the button's edges."
    parser.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl+C)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args)
    except BuzzerError as exc:
        print(f"buzzer-node: {exc}", file=sys.stderr)
        return 2

    async def run_it() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        return await check_wiring(config, print_line, stop=stop, seconds=args.seconds)

    return asyncio.run(run_it())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "check-config":
        return configfile.check_command("buzzer-node", NodeConfig.load, argv[1:])
    if argv and argv[0] == "test-wiring":
        return wiring(argv[1:])
    args = _parser().parse_args(argv)
    try:
        config = load_config(args)
        asyncio.run(run(config))
    except BuzzerError as exc:
        print(f"buzzer-node: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl+C while shutting down
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
