"""A wheelhouse for this machine, built once by ``systemd/build-wheelhouse.sh`` and cached.

The offline install tests (``install.sh --wheelhouse`` under ``--root``, and inside the booted
Debian container) need every dependency as a wheel for this machine's architecture and the
target's Python 3.11. Building it needs the package index once; the result is kept outside the
checkout, under ``~/.cache/buzzer-beater`` (or ``$XDG_CACHE_HOME``), keyed by the sha256 of the
build script and of ``pyproject.toml``, so an edit to either builds a new one.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

from tests.support.cache import BuildFailed, build_once

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "systemd" / "build-wheelhouse.sh"
#: Debian Bookworm's Python, which the installs under test run on.
TARGET_PYTHON = "3.11"


def machine() -> str:
    """This machine in the build script's words (aarch64, armv7l, x86_64)."""
    name = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


class WheelhouseUnavailable(Exception):
    """The wheelhouse could not be built here (no package index, no pip): a reason to skip."""


def wheelhouse() -> Path:
    """The cached wheelhouse for this machine, built first if it is missing."""
    key = hashlib.sha256()
    for part in (BUILD_SCRIPT, ROOT / "pyproject.toml"):
        key.update(part.read_bytes())
    key.update(f"{machine()} {TARGET_PYTHON}".encode())
    name = f"wheelhouse-{machine()}-{key.hexdigest()[:16]}"
    env = {**os.environ, "BUZZER_PY_VERSION": TARGET_PYTHON}
    # The script takes the directory first, then the machines: a wrapper puts them in order.
    command = ["sh", "-c", f'exec sh "$0" "$1" {machine()}', str(BUILD_SCRIPT)]
    try:
        return build_once(name, command, env)
    except BuildFailed as exc:
        raise WheelhouseUnavailable(f"building a wheelhouse failed: {exc}") from exc
