"""``buzzer-hub``: run the hub, or control one (``ctl``), or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hub import ctl, discovery, exports, heap, notify, tournament
from hub import loop as hub_loop
from hub.auth import TOKEN_FILE, TokenFileError, load_or_create_host_token
from hub.central import describe
from hub.config import DEFAULT_PORT, HubConfig, TournamentSection
from hub.embed import running_hub
from hub.logwriter import BatchedLineWriter
from hub.store import StoreError, export, read_match
from wire import configfile
from wire.browse import find_hubs
from wire.errors import BuzzerError, ConfigError

log = logging.getLogger("hub")

TOKEN_ENV = "BUZZER_HOST_TOKEN"


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buzzer-hub",
        description="Run the Buzzer Beater hub. Other commands: "
        "'buzzer-hub ctl --help', 'buzzer-hub check-config FILE', 'buzzer-hub find', "
        "'buzzer-hub export --help', 'buzzer-hub tournament --help'.",
    )
    parser.add_argument("--host", help="address to listen on (default: every interface)")
    parser.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--config", help="TOML config file (see config/hub.toml)")
    parser.add_argument("--data-dir", help="where the hub keeps its token and results")
    parser.add_argument("--host-token", help=f"host token (or ${TOKEN_ENV}, or the config file)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="save nothing: no results database (demos, benchmarks); a restart forgets all",
    )
    parser.add_argument(
        "--no-discovery",
        action="store_true",
        help="do not announce the hub on the LAN over mDNS (nodes then need its URL)",
    )
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
    parser.add_argument("command", choices=sorted([*ctl.COMMANDS, *ctl.GAME_COMMANDS, "export"]))
    ctl.add_game_arguments(parser)
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
    discovery = configfile.override(config.discovery, enabled=False if args.no_discovery else None)
    return configfile.override(config, server=server, round=round_, discovery=discovery)


@contextlib.contextmanager
def logging_to_stderr(level: str) -> Iterator[None]:
    """Log lines go to stderr from a thread of their own (:mod:`hub.logwriter`), every one
    written by the end.

    The event loop only hands a line over: writing it can block (journald behind a slow SD
    card, a pipe its reader drains late), and the loop is the one answering presses. Lines wait
    in memory while a write is stuck (the hub's lines are few and throttled: where a stuck stderr
    used to stop the hub, it now costs some kilobytes a minute). As with
    :func:`logging.basicConfig`, nothing changes where logging is already set up.
    """
    # The library logs every connection; the hub logs them itself, with the player's name.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    # A line shows its time, level, logger and message, nothing else: leave out what a record
    # would otherwise gather for each line (the caller's frame, thread and process ids; the
    # "Optimization" section of the logging HOWTO).
    lean = dict(_srcfile=None, logThreads=False, logProcesses=False, logMultiprocessing=False)
    saved = {name: getattr(logging, name) for name in lean}
    writer = BatchedLineWriter(sys.stderr)
    writer.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(writer)
    root.setLevel(level.upper())
    try:
        vars(logging).update(lean)
        yield
    finally:
        root.removeHandler(writer)
        writer.close()
        vars(logging).update(saved)


async def serve(config: HubConfig, host_token: str, data_dir: Path | None) -> None:
    """Run a hub until SIGINT or SIGTERM, as systemd and a terminal expect one to run."""
    # Handlers first: a stop request that comes right after "listening on" still stops cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    notifier = notify.Notifier()
    async with running_hub(config, host_token=host_token, data_dir=data_dir) as hub:
        scheme = "https" if config.security.tls else "http"
        host = config.server.host or "localhost"
        log.info("host console: %s://%s:%d/", scheme, host, hub.port)
        # systemd (Type=notify): ready only now that the port listens; pings from this loop.
        notifier.ready(f"listening on {', '.join(hub.addresses)}")
        heap.settle()
        tidying = asyncio.create_task(heap.keep_tidy(hub.core.play))
        interval = notify.watchdog_interval_s()
        pinger = asyncio.create_task(notify.watchdog(notifier, interval)) if interval else None
        notify.install_stall_handler(loop)
        announcing = None
        if config.discovery.enabled:
            announcer = discovery.Announcer(
                config.discovery.name,
                config.server.host,
                hub.port,
                tls=config.security.tls,
                interfaces=tuple(config.discovery.interfaces),
            )
            announcing = asyncio.create_task(announcer.run())
        await stop.wait()
        notifier.stopping()
        tidying.cancel()
        if pinger is not None:
            pinger.cancel()
        if announcing is not None:
            announcing.cancel()  # it says goodbye on its way out
            with contextlib.suppress(asyncio.CancelledError):
                await announcing
    notifier.close()


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard limit; returns the limit now in force.

    Every node holds one socket. Many systems start services with a soft limit of 1024, which an
    event with several hundred nodes, hosts and viewers (plus the store and the logs) can reach;
    the hard limit is usually far higher, and raising the soft one needs no privilege.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # an unlimited hard limit may be refused as a soft one
        return soft
    return hard


def _host_token(config: HubConfig) -> str:
    """The token kept in the data directory, made at the first start and printed once; later
    starts say where it is, for a host who restarts the hub another day."""
    token, created = load_or_create_host_token(config.data_path())
    if created:
        log.info("new host token (kept in %s): %s", config.data_path(), token)
    else:
        log.info("host token: in %s", config.data_path() / TOKEN_FILE)
    return token


def run_hub(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"buzzer-hub: {exc}", file=sys.stderr)
        return 2
    with logging_to_stderr(config.server.log_level):
        return _run_hub(args, config)


def _run_hub(args: argparse.Namespace, config: HubConfig) -> int:
    log.debug("open files limit: %d", raise_open_files_limit())
    data_dir = None if args.memory_only else config.data_path()
    try:
        token = config.server.host_token or _host_token(config)
        loop = hub_loop.chosen()
        log.debug("event loop: %s", loop)
        hub_loop.run(serve(config, token, data_dir), loop)
    except BuzzerError as exc:
        log.error("%s", exc)
        return 2 if isinstance(exc, ConfigError | TokenFileError) else 1
    except OSError as exc:
        log.error("cannot listen on port %d: %s", config.server.port, exc.strerror or exc)
        return 1
    return 0


def export_results(argv: Sequence[str]) -> int:
    """``buzzer-hub export``: the saved results on stdout, safe to run while the hub runs."""
    parser = argparse.ArgumentParser(
        prog="buzzer-hub export",
        description="Write saved results to stdout: a match's result (--match, or --format "
        "qbj), or else every press.",
    )
    parser.add_argument("--data-dir", help="the hub's data directory (default: the hub's)")
    parser.add_argument("--config", help="TOML config file, to find the data directory")
    parser.add_argument(
        "--format",
        choices=["csv", "json", "qbj"],
        default="csv",
        help="qbj: a match's result for quiz bowl statistics tools; csv, json: a match's "
        "result with --match, else every press",
    )
    parser.add_argument(
        "--match",
        help="a match's number, or 'latest': its game log and totals instead of the presses",
    )
    parser.add_argument("--round", type=int, help="presses: only this round (of the latest game)")
    args = parser.parse_args(argv)
    try:
        config = HubConfig.load(args.config)
    except ConfigError as exc:
        print(f"buzzer-hub: {exc}", file=sys.stderr)
        return 2
    if args.data_dir:
        config = configfile.override(
            config, server=configfile.override(config.server, data_dir=args.data_dir)
        )
    try:
        if args.match is not None or args.format == "qbj":
            number = None if args.match in (None, "latest") else _match_number(args.match)
            report = read_match(config.data_path(), number)
            sys.stdout.write(exports.FORMATS[args.format][2](report))
        else:
            export(config.data_path(), args.format, sys.stdout, args.round)
    except StoreError as exc:
        print(f"buzzer-hub export: {exc}", file=sys.stderr)
        return 1
    return 0


def _match_number(text: str) -> int:
    if not text.isdigit():
        raise StoreError(f"--match takes a match's number or 'latest', not {text!r}")
    return int(text)


def find(argv: Sequence[str]) -> int:
    """``buzzer-hub find``: list the hubs announced on this LAN, one URL a line."""
    parser = argparse.ArgumentParser(
        prog="buzzer-hub find", description="Find Buzzer Beater hubs on this LAN (mDNS)."
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to look (default 5)")
    parser.add_argument("--all", action="store_true", help="look for the whole time, list all")
    args = parser.parse_args(argv)
    # Half a second more after the first answer: a hub's other addresses, and other hubs.
    want = 1_000_000 if args.all else 1
    hubs = asyncio.run(find_hubs(args.timeout, want=want, settle=0.5))
    for found in hubs:
        for url in found.urls:  # every address it announced: the right one depends on the network
            print(f"{url}\t{found.name}")
    if not hubs:
        print("buzzer-hub: no hub found on this LAN", file=sys.stderr)
        return 1
    return 0


def tournament_command(argv: Sequence[str]) -> int:
    """``buzzer-hub tournament check|setup|serve``: a tournament's file, its database, its page."""
    parser = argparse.ArgumentParser(
        prog="buzzer-hub tournament",
        description="Set up a tournament in its results database, or serve its page "
        "(docs/tournament.md).",
    )
    parser.add_argument("action", choices=["check", "setup", "serve"])
    parser.add_argument("file", nargs="?", help="the tournament file (check, setup)")
    parser.add_argument("--config", help="TOML config whose [tournament] names the database")
    parser.add_argument("--host", default="", help="serve: address (default: every interface)")
    parser.add_argument(
        "--port", type=int, default=tournament.DEFAULT_PORT, help="serve: port (default 8780)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    with logging_to_stderr(args.log_level or "info"):
        return _tournament(args, parser)


def _tournament(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        plan = None
        if args.action in ("check", "setup"):
            if not args.file:
                parser.error(f"{args.action} needs the tournament file")
            plan = tournament.load_plan(args.file)
        if args.action == "check":
            assert plan is not None
            print(
                f"{args.file}: ok: {plan.name}, {len(plan.rooms)} rooms, {len(plan.teams)} teams, "
                f"{len({p.round for p in plan.schedule})} rounds"
            )
            return 0
        settings = HubConfig.load(args.config).tournament
        if not settings.database:
            raise ConfigError(
                f"{args.config or 'no --config'}: [tournament] database is not set: "
                "give the results database's address"
            )
        if args.action == "setup":
            assert plan is not None
            asyncio.run(tournament.set_up(settings, plan))
            print(f"{plan.id}: set up in {settings.where()}")
            return 0
        if not settings.id:
            raise ConfigError(f"{args.config}: [tournament] id is not set: which tournament?")
        return asyncio.run(_serve_tournament(settings, args.host, args.port))
    except ConfigError as exc:
        print(f"buzzer-hub: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database: one line a director can act on
        print(f"buzzer-hub tournament: {describe(exc, settings.where())}", file=sys.stderr)
        return 1


async def _serve_tournament(settings: TournamentSection, host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    service = tournament.TournamentService(settings, host, port)
    await service.start()
    log.info(
        "tournament page for %s (results database %s): http://%s:%d/",
        settings.id,
        settings.where(),
        host or "localhost",
        service.port,
    )
    await stop.wait()
    await service.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "ctl":
        args = _ctl_parser().parse_args(argv[1:])
        token = args.token or os.environ.get(TOKEN_ENV, "")
        return ctl.main(args.hub, token, args.command, args, args.cafile)
    if argv and argv[0] == "check-config":
        return configfile.check_command("buzzer-hub", HubConfig.load, argv[1:])
    if argv and argv[0] == "export":
        return export_results(argv[1:])
    if argv and argv[0] == "find":
        return find(argv[1:])
    if argv and argv[0] == "tournament":
        return tournament_command(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return run_hub(argv)


if __name__ == "__main__":
    sys.exit(main())
