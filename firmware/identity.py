"""A station's default id that no other station on the same machine has.

A Pi station's id is its hostname: what the maker labels the box with, and what the host console
lists. Two stations on one machine (two laptops' worth of players sharing one, a test rig) would
take the same id and take each other's place at the hub every 30 s (close 4409). So a node
without a configured id claims its id with a lock file: the first station on the machine gets the
hostname, the next ``hostname-2``, and so on. The lock is ``flock`` on a file in the temporary
folder, held for as long as the node runs and released by the kernel when it ends however it
ends, so a crashed station leaves nothing to clean up. A configured id is never changed: two
stations given one id are the maker's choice, and the hub's refusal says so.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

MAX_STATIONS = 99
ID_MAX_CHARS = 64  # wire.messages.ID_PATTERN: up to 64 characters


def claim_default_id(base: str, folder: Path | None = None) -> tuple[str, int | None]:
    """The id to use, and the descriptor holding its claim (keep it open while the node runs;
    None where no lock could be taken, then the id is ``base``, as before)."""
    folder = folder if folder is not None else Path(tempfile.gettempdir())
    for number in range(1, MAX_STATIONS + 1):
        suffix = "" if number == 1 else f"-{number}"
        candidate = base[: ID_MAX_CHARS - len(suffix)] + suffix
        path = folder / f"buzzer-node.{candidate}.lock"
        try:
            # Readable by all: a station of another user on this machine can test the lock too.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return base, None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        except OSError:
            os.close(fd)
            return base, None
        return candidate, fd
    return base, None
