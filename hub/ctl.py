"""``buzzer-hub ctl``: the host role from a shell, for scripts and stream-deck style controllers."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hub import protocol as p
from hub.tls import TLSConfigError, context_for

TIMEOUT_S = 5.0


class ControlError(Exception):
    """The hub could not be reached or refused the command; the message says what to do."""


COMMANDS: dict[str, type[p.Message] | None] = {
    "arm": p.Arm,
    "reset": p.Reset,
    "close": p.CloseRound,
    "status": None,
}


def _done(command: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a state picture already shows the command's effect (pictures may lag behind)."""
    if command == "arm":
        return bool(after["round"]["number"] > before["round"]["number"])
    wanted = {"reset": ("idle",), "close": ("closed", "idle")}[command]
    return after["round"]["state"] in wanted


async def _next_state(ws: Any) -> dict[str, Any]:
    """Wait for the next ``state`` picture, raising on an ``error`` frame."""
    while True:
        decoded = p.decode_hub(await ws.recv())
        if isinstance(decoded, p.ProtocolError):
            raise ControlError(f"the hub sent something this tool does not understand: {decoded}")
        message = decoded.message
        if isinstance(message, p.Error):
            raise ControlError(f"the hub refused: {message.message}")
        if isinstance(message, p.State):
            return {"round": message.round, "players": message.players, "history": message.history}


async def run(url: str, token: str, command: str, cafile: str | None = None) -> dict[str, Any]:
    """Send one command as host and return the hub's state after it.

    ``cafile`` is the certificate (or CA) a ``wss://`` hub must present; without it the
    system's CAs are trusted. A hub that cannot prove itself is never talked to.
    """
    try:
        tls = context_for(url, cafile)
    except TLSConfigError as exc:
        raise ControlError(str(exc)) from None
    try:
        async with asyncio.timeout(TIMEOUT_S), connect(url, compression=None, ssl=tls) as ws:
            hello = p.Hello(protocol=p.PROTOCOL_VERSION, role=p.Role.HOST, token=token or None)
            await ws.send(p.encode(hello))
            state = await _next_state(ws)
            action = COMMANDS[command]
            if action is None:
                return state
            await ws.send(p.encode(action()))
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


def main(url: str, token: str, command: str, cafile: str | None = None) -> int:
    try:
        state = asyncio.run(run(url, token, command, cafile))
    except ControlError as exc:
        print(f"buzzer-hub ctl: {exc}", file=sys.stderr)
        return 1
    if command == "status":
        print(json.dumps(state, indent=2))
    else:
        round_ = state["round"]
        print(f"round {round_['number']}: {round_['state']}")
    return 0
