"""Things the tests build once and keep outside the checkout, under ~/.cache/buzzer-beater.

Each is named by a key (the sha256 of what it is built from), so an edit builds a new one, and
built under a lock, so two test runs at once build it once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


class BuildFailed(Exception):
    """The build command failed; the message ends with the last lines it printed."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "buzzer-beater"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_once(name: str, command: Sequence[str], env: dict[str, str] | None = None) -> Path:
    """``cache_dir() / name``, made first if missing by running ``command`` with the path it
    is to write appended (a partial name, renamed once the command succeeded)."""
    cache = cache_dir()
    target = cache / name
    with (cache / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = cache / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        result = subprocess.run(
            [*command, str(partial)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.unlink(missing_ok=True)
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
            raise BuildFailed(f"{' '.join(command)} failed: {tail}")
        partial.rename(target)
    return target
