"""Tokens: the host token that guards arm, reset and scores, and the optional node token."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("hub.auth")

TOKEN_FILE = "host-token"


class TokenFileError(Exception):
    """The host token file cannot be read or written; the message says which file and why."""


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    if not expected:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


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
