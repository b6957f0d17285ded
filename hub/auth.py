"""Tokens and origins: the host token that guards arm, reset and scores, the optional node token,
and which browser pages may open a WebSocket to the hub."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from wire.errors import BuzzerError

log = logging.getLogger("hub.auth")

TOKEN_FILE = "host-token"


class TokenFileError(BuzzerError):
    """The host token file cannot be read or written; the message says which file and why."""


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    if not expected:
        return True
    if given is None:
        return False
    # surrogatepass: a string that is not valid Unicode is simply a wrong token, not a crash.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def load_or_create_host_token(data_dir: Path) -> tuple[str, bool]:
    """The token kept in the data directory, created (owner-only) at first start.

    Returns the token and whether it was just created, so the caller can show it once.
    """
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise TokenFileError(f"cannot read host token file {path}: {exc.strerror}") from None
    token = secrets.token_urlsafe(18)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise TokenFileError(
            f"cannot write host token file {path}: {exc.strerror}; "
            "set host_token in the config or --host-token"
        ) from None
    return token, True


def request_token(path: str, authorization: str | None) -> str | None:
    """The token a client presented in its upgrade request, before any WebSocket frame.

    Two places, because clients differ in what they can set: ``Authorization: Bearer TOKEN``
    (scripts, the node firmware) keeps the token out of URLs and access logs; ``?token=TOKEN``
    works from a browser, whose WebSocket API cannot set headers. The header wins if both are sent.
    """
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    query = urlsplit(path).query
    values = parse_qs(query, keep_blank_values=True).get("token")
    return values[0] if values else None


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` as a comparable pair, or None when it cannot be parsed."""
    try:
        parts = urlsplit("//" + netloc)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), default_port if port is None else port


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str], tls: bool) -> bool:
    """Whether a WebSocket upgrade's ``Origin`` may connect.

    Browsers always send ``Origin``; other clients (nodes, ``ctl``, tutorial scripts) send none and
    are judged by their tokens instead. A browser may connect from the hub's own pages (the origin
    names the same host and port as the request's ``Host`` header) or from an origin configured in
    ``[security] origins``; any other page, say one an audience member opened on the event LAN,
    is refused, so it cannot drive a host console someone left logged in.
    """
    if origin is None:
        return True
    if origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or host is None:
        return False
    origin_default = 443 if parts.scheme == "https" else 80
    ours = _host_port(host, 443 if tls else 80)
    theirs = _host_port(parts.netloc, origin_default)
    return ours is not None and ours == theirs
