"""``buzzer-hub ctl``: the host role from a shell, for scripts and stream-deck style controllers."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from wire import codec
from wire import messages as msg
from wire.codec import as_data
from wire.enums import Phase, Role
from wire.errors import BuzzerError, TLSConfigError
from wire.tls import context_for

TIMEOUT_S = 5.0


class ControlError(BuzzerError):
    """The hub could not be reached or refused the command; the message says what to do."""


COMMANDS: dict[str, type[msg.Message] | None] = {
    "arm": msg.Arm,
    "reset": msg.Reset,
    "close": msg.CloseRound,
    "status": None,
}

#: What ``status`` prints: the state picture without its clock reading.
STATUS_KEYS = ("round", "players", "history", "game")

#: Game commands; their options come from the command line (see :func:`game_message`).
GAME_COMMANDS = (
    "wrong",
    "right",
    "score",
    "team",
    "floor",
    "clear-scores",
    "match-start",
    "match-end",
    "read",
    "bonus",
    "undo",
    "value",
    "wager",
)

#: Commands that read rather than act: ``export`` fetches a match's result over HTTP.
EXPORT_FORMATS = ("qbj", "csv", "json")


def _done(command: str, before: msg.State, after: msg.State) -> bool:
    """Whether a state picture already shows the command's effect (pictures may lag behind)."""
    if command in GAME_COMMANDS:
        return (after.game.applied if after.game else 0) > (
            before.game.applied if before.game else 0
        )
    if command == "arm":
        return after.round.number > before.round.number
    wanted = {"reset": (Phase.IDLE,), "close": (Phase.CLOSED, Phase.IDLE)}[command]
    return after.round.state in wanted


def _applied(state: msg.State) -> int:
    return state.game.applied if state.game is not None else 0


async def _next_state(ws: Any) -> msg.State:
    """Wait for the next ``state`` picture, raising on an ``error`` frame."""
    while True:
        decoded = codec.decode_hub(await ws.recv())
        if isinstance(decoded, codec.ProtocolError):
            raise ControlError(f"the hub sent something this tool does not understand: {decoded}")
        message = decoded.message
        if isinstance(message, msg.Error):
            raise ControlError(f"the hub refused: {message.message}")
        if isinstance(message, msg.State):
            return message


async def run(
    url: str,
    token: str,
    command: str,
    message: msg.Message | None = None,
    cafile: str | None = None,
) -> msg.State:
    """Send one command as host and return the hub's state after it.

    ``message`` is the game command to send; the others are built from ``command`` alone.
    ``cafile`` is the certificate (or CA) a ``wss://`` hub must present; without it the
    system's CAs are trusted. A hub that cannot prove itself is never talked to.
    """
    try:
        tls = context_for(url, cafile)
    except TLSConfigError as exc:
        raise ControlError(str(exc)) from None
    try:
        # Straight to the hub, never through a web proxy the environment names (see node.md).
        direct = connect(url, compression=None, ssl=tls, proxy=None)
        async with asyncio.timeout(TIMEOUT_S), direct as ws:
            hello = msg.Hello(protocol=msg.PROTOCOL_VERSION, role=Role.HOST, token=token or None)
            await ws.send(codec.encode(hello))
            state = await _next_state(ws)
            if message is None:
                action = COMMANDS[command]
                if action is None:
                    return state
                message = action()
            await ws.send(codec.encode(message))
            after = await _next_state(ws)
            while not _done(command, state, after):
                after = await _next_state(ws)
            return after
    except TimeoutError:
        raise ControlError(f"no answer from the hub at {url} within {TIMEOUT_S:.0f} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise ControlError(
            f"the hub at {url} has an untrusted certificate ({exc.verify_message}); "
            "pass its certificate with --cafile"
        ) from None
    except (OSError, InvalidHandshake) as exc:
        raise ControlError(
            f"cannot reach the hub at {url} ({exc}); is buzzer-hub running there?"
        ) from None
    except InvalidURI:
        raise ControlError(f"{url!r} is not a hub address; use ws://HOST:PORT") from None
    except ConnectionClosed as exc:
        reason = exc.rcvd.reason if exc.rcvd else "connection lost"
        raise ControlError(f"the hub closed the connection: {reason}") from None


def main(
    url: str,
    token: str,
    command: str,
    args: argparse.Namespace | None = None,
    cafile: str | None = None,
) -> int:
    try:
        if command == "export":
            return export(url, token, args, cafile)
        message = game_message(command, args) if command in GAME_COMMANDS else None
        if command == "arm" and args is not None and args.force:
            message = msg.Arm(force=True)
        state = asyncio.run(run(url, token, command, message, cafile))
    except ControlError as exc:
        print(f"buzzer-hub ctl: {exc}", file=sys.stderr)
        return 1
    if command == "status":
        picture = as_data(state)
        print(json.dumps({key: picture[key] for key in STATUS_KEYS}, indent=2))
    else:
        print(f"round {state.round.number}: {state.round.state}")
        if command in GAME_COMMANDS and state.game is not None:
            print(game_summary(state.game))
    return 0


# --- game commands ---


def add_game_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the game and match commands."""
    game = parser.add_argument_group(
        "game commands (wrong, right, score, team, floor, clear-scores)"
    )
    game.add_argument(
        "--mode",
        choices=("next", "rearm"),
        help="wrong: offer the answer to the next in line, or re-arm without who answered",
    )
    game.add_argument(
        "--points",
        type=int,
        help="right/wrong: points for the ruling (default: the format's: a neg before the end "
        "of the question, none after); score: points to add (negative to deduct); bonus: the "
        "part's points; value: the clue's value; wager: the wager",
    )
    game.add_argument("--power", action="store_true", help="right: a power (before the mark)")
    game.add_argument(
        "--player", help="score/team/wager: the player's id; floor: who gets it (settles a tie)"
    )
    game.add_argument(
        "--team",
        action="append",
        help="score: the team to award; team: the team to join; match-start: a team and its "
        "players' ids, 'Red: red-1, red-2=Alice' (once per team)",
    )
    game.add_argument("--no-team", action="store_true", help="team: take the player out of teams")
    game.add_argument("--reason", help="score: a note kept with the points")
    match = parser.add_argument_group("matches (match-start, match-end, read, bonus, undo, export)")
    match.add_argument("--name", help="match-start: the match's name, e.g. 'Round 3, room 2'")
    match.add_argument("--packet", help="match-start: the packet or round read")
    match.add_argument(
        "--format",
        help="match-start: quizbowl, jeopardy or classroom; export: qbj, csv or json",
    )
    match.add_argument(
        "--correct", action=argparse.BooleanOptionalAction, help="wager: right (or --no-correct)"
    )
    match.add_argument("--force", action="store_true", help="arm: move on over a floor or bonus")
    match.add_argument("--match", type=int, help="export: the match's number (default: the last)")
    match.add_argument("--out", help="export: the file to write (default: standard output)")


def game_message(command: str, args: argparse.Namespace | None) -> msg.Message:
    """The protocol message for a game command, or ControlError saying which option is missing."""
    options = vars(args) if args is not None else {}

    def option(name: str) -> Any:
        return options.get(name)

    if command == "wrong":
        return msg.Wrong(mode=option("mode"), points=option("points"))
    if command == "right":
        return msg.Right(points=option("points"), power=option("power") or None)
    if command == "score":
        teams = option("team") or []
        if option("points") is None or (option("player") is None) == (not teams) or len(teams) > 1:
            raise ControlError("score needs --points and either --player ID or --team NAME")
        return msg.Score(
            points=option("points"),
            player=option("player"),
            team=teams[0] if teams else None,
            reason=option("reason"),
        )
    if command == "team":
        teams = option("team") or []
        if option("player") is None or bool(teams) == bool(option("no_team")) or len(teams) > 1:
            raise ControlError("team needs --player ID and either --team NAME or --no-team")
        return msg.SetTeam(player=option("player"), team=teams[0] if teams else None)
    if command == "floor":
        if option("player") is None:
            raise ControlError("floor needs --player ID: a player ranked in the decided round")
        return msg.Floor(player=option("player"))
    if command == "clear-scores":
        return msg.ClearScores()
    return match_message(command, options)


def match_message(command: str, options: dict[str, Any]) -> msg.Message:
    """The message for a match command, or ControlError saying which option is missing."""
    points = options.get("points")
    if command == "match-start":
        teams = [parse_team(text) for text in options.get("team") or []]
        if not options.get("name") or not teams:
            raise ControlError(
                "match-start needs --name and a --team 'NAME: id, id, ...' for each team"
            )
        return msg.MatchStart(
            name=options["name"],
            format=options.get("format") or "quizbowl",
            teams=teams,
            packet=options.get("packet"),
        )
    if command in ("bonus", "value"):
        if points is None:
            raise ControlError(f"{command} needs --points N")
        return msg.BonusPart(points=points) if command == "bonus" else msg.ClueValue(points=points)
    if command == "wager":
        if options.get("player") is None or points is None or options.get("correct") is None:
            raise ControlError("wager needs --player ID, --points N and --correct or --no-correct")
        return msg.Wager(player=options["player"], points=points, correct=options["correct"])
    simple: dict[str, msg.Message] = {
        "match-end": msg.MatchEnd(),
        "read": msg.Read(),
        "undo": msg.Undo(),
    }
    return simple[command]


def parse_team(text: str) -> msg.TeamEntry:
    """``Red: red-1, red-2=Alice`` as a team: its name, then its players' ids (each with the name
    to print, if given after ``=``)."""
    name, colon, players = text.partition(":")
    if not colon or not name.strip():
        raise ControlError(f"--team {text!r}: write it as 'NAME: id, id, ...'")
    entries = []
    for item in players.split(","):
        if not item.strip():
            continue
        player, _, shown = item.partition("=")
        entries.append(msg.PlayerEntry(id=player.strip(), name=shown.strip() or None))
    return msg.TeamEntry(name=name.strip(), players=entries)


def export(url: str, token: str, args: argparse.Namespace | None, cafile: str | None) -> int:
    """``ctl export``: a match's result from the hub's HTTP side (the host token goes along)."""
    options = vars(args) if args is not None else {}
    kind = options.get("format") or "qbj"
    if kind not in EXPORT_FORMATS:
        raise ControlError(f"export --format must be one of {', '.join(EXPORT_FORMATS)}")
    parts = urllib.parse.urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    query = {} if options.get("match") is None else {"match": str(options["match"])}
    address = urllib.parse.urlunsplit(
        (scheme, parts.netloc, f"/api/match.{kind}", urllib.parse.urlencode(query), "")
    )
    request = urllib.request.Request(address, headers={"Authorization": f"Bearer {token}"})
    try:
        tls = context_for(url, cafile)
        # Straight to the hub, as for ctl's other commands: a proxy would also see the token.
        direct = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
        )
        with direct.open(request, timeout=TIMEOUT_S) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as exc:
        reason = exc.read().decode(errors="replace").strip()
        raise ControlError(f"the hub refused: {reason or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ControlError(
            f"cannot reach the hub at {url} ({exc}); is buzzer-hub running there?"
        ) from None
    except TLSConfigError as exc:
        raise ControlError(str(exc)) from None
    out = options.get("out")
    if out:
        Path(out).write_text(body, encoding="utf-8")
    else:
        sys.stdout.write(body)
    return 0


def game_summary(game: msg.GameView) -> str:
    """One line: who has the floor, and the scores."""
    answering = game.answering
    floor = f"answering: {answering.name}" if answering else "answering: nobody"
    players = ", ".join(f"{row.name} {row.points}" for row in game.scores.players)
    teams = ", ".join(f"{team.team} {team.points}" for team in game.teams)  # 0 included
    parts = [floor, f"players: {players or '-'}"]
    if teams:
        parts.append(f"teams: {teams}")
    return "; ".join(parts)
