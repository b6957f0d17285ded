"""``buzzer-hub``: run the hub, or control one (``ctl``), or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from hub import configfile, ctl
from hub.auth import TokenFileError, load_or_create_host_token
from hub.config import DEFAULT_PORT, HubConfig
from hub.server import Hub
from hub.tls import TLSConfigError

log = logging.getLogger("hub")

TOKEN_ENV = "BUZZER_HOST_TOKEN"


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buzzer-hub",
        description="Run the Buzzer Beater hub. Other commands: "
        "'buzzer-hub ctl --help', 'buzzer-hub check-config FILE'.",
    )
    parser.add_argument("--host", help="address to listen on (default: every interface)")
    parser.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--config", help="TOML config file (see config/hub.toml)")
    parser.add_argument("--data-dir", help="where the hub keeps its token and results")
    parser.add_argument("--host-token", help=f"host token (or ${TOKEN_ENV}, or the config file)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--host-mode",
        action="store_true",
        help="a host arms every round (turns off the config's host-less auto-arming)",
    )
    return parser


def _ctl_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buzzer-hub ctl", description="Control a running hub as its host."
    )
    parser.add_argument("--hub", default=f"ws://127.0.0.1:{DEFAULT_PORT}", help="hub address")
    parser.add_argument("--token", help=f"host token (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--cafile", help="certificate (or CA) a wss:// hub must present (default: system CAs)"
    )
    parser.add_argument("command", choices=sorted(ctl.COMMANDS))
    return parser


def load_config(args: argparse.Namespace) -> HubConfig:
    """Defaults, then the file, then the environment, then the flags."""
    config = HubConfig.load(args.config)
    server = configfile.override(
        config.server,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        host_token=args.host_token or os.environ.get(TOKEN_ENV) or None,
        log_level=args.log_level,
    )
    round_ = configfile.override(config.round, hostless=False if args.host_mode else None)
    return configfile.override(config, server=server, round=round_)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The library logs every connection; the hub logs them itself, with the player's name.
    logging.getLogger("websockets").setLevel(logging.WARNING)


async def serve(config: HubConfig, host_token: str) -> None:
    hub = Hub(config, host_token)
    await hub.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    port = hub.port
    scheme = "https" if config.security.tls else "http"
    log.info("host console: %s://%s:%d/", scheme, config.server.host or "localhost", port)
    await stop.wait()
    await hub.stop()
    log.info("stopped")


def run_hub(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    try:
        config = load_config(args)
    except configfile.ConfigError as exc:
        print(f"buzzer-hub: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.server.log_level)
    token = config.server.host_token
    if not token:
        try:
            token, created = load_or_create_host_token(config.data_path())
        except TokenFileError as exc:
            log.error("%s", exc)
            return 2
        if created:
            log.info("new host token (kept in %s): %s", config.data_path(), token)
    try:
        asyncio.run(serve(config, token))
    except TLSConfigError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot listen on port %d: %s", config.server.port, exc.strerror or exc)
        return 1
    return 0


def check_config(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="buzzer-hub check-config")
    parser.add_argument("file")
    args = parser.parse_args(argv)
    try:
        HubConfig.load(args.file)
    except configfile.ConfigError as exc:
        print(f"buzzer-hub: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "ctl":
        args = _ctl_parser().parse_args(argv[1:])
        token = args.token or os.environ.get(TOKEN_ENV, "")
        return ctl.main(args.hub, token, args.command, args.cafile)
    if argv and argv[0] == "check-config":
        return check_config(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return run_hub(argv)


if __name__ == "__main__":
    sys.exit(main())
