#!/usr/bin/env python3
"""Set up a virtual environment and run the hub or the test suite: the README's two commands.

    python3 dev.py hub     set up, then run a hub on this machine (extra arguments go to the hub)
    python3 dev.py test    set up, then run every check CI runs: ruff, mypy, pytest

Needs only python3 and its venv module (Debian: apt install python3-venv). The environment lives
in .venv and is refreshed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def say(line: str) -> None:
    print(f"dev.py: {line}", flush=True)


def ensure_venv(extras: tuple[str, ...]) -> None:
    """Create .venv and install the project with ``extras`` into it, unless it already has them.

    One environment serves both commands: it remembers which extras it holds for which
    pyproject.toml, so running the hub after the tests (or the tests again) installs nothing and
    needs no network; only a changed pyproject.toml or a missing extra does.
    """
    if not (BIN / "python").exists():
        say("creating the virtual environment in .venv")
        try:
            import venv  # noqa: F401
        except ImportError:
            sys.exit(
                "dev.py: python3's venv module is missing; install it: apt install python3-venv"
            )
        result = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
        if result.returncode != 0:
            sys.exit("dev.py: could not create .venv; on Debian: apt install python3-venv")
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    held: set[str] | None = None  # None: nothing usable is installed
    if stamp.exists():
        recorded, _, names = stamp.read_text().partition(" ")
        if recorded == project:
            held = set(names.split(",")) - {""}
    if held is not None and set(extras) <= held:
        return
    wanted = sorted((held or set()) | set(extras))
    spec = f"[{','.join(wanted)}]" if wanted else ""
    say(f"installing buzzer-beater{spec} into .venv (needs PyPI once)")
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, "--editable", f"{ROOT}{spec}"]).returncode != 0:
        sys.exit("dev.py: installing the dependencies failed; see pip's message above")
    stamp.write_text(f"{project} {','.join(wanted)}")


def run_hub(args: list[str]) -> int:
    ensure_venv(())
    config = ROOT / "config" / "hub.toml"
    command = [str(BIN / "buzzer-hub"), "--config", str(config), *args]
    say("starting the hub; open the address it prints in a browser, Ctrl+C stops it")
    os.execv(command[0], command)


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist's options for the suite: two workers where there are two cores, each taking
    whole files (a file's fixtures, such as its PostgreSQL server, are set up once).

    Much of the suite's time is waiting (hubs restarting, nodes reconnecting, browsers loading),
    which two workers overlap; more would leave the hubs, nodes and browsers the tests start
    without a core of their own. Arguments that choose otherwise (``-n 0``: one process, as for
    ``--pdb``) are left alone."""
    chosen = ("-n", "--numprocesses", "--dist", "--pdb", "--trace", "no:xdist", "-pno:xdist")
    affinity = getattr(os, "sched_getaffinity", None)  # the cores this process may use (Linux)
    cores = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    if cores < 2 or any(arg.startswith(chosen) for arg in args):
        return []
    return ["--numprocesses", "2", "--dist", "loadfile"]


def run_tests(args: list[str]) -> int:
    ensure_venv(("test",))
    steps = [
        ("ruff", [str(BIN / "ruff"), "check", "."]),
        ("ruff format", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy", [str(BIN / "mypy")]),
        ("pytest", [str(BIN / "python"), "-m", "pytest", *parallel(args), *args]),
    ]
    failed = []
    for name, command in steps:
        say(f"running {name}")
        code = subprocess.run(command, cwd=ROOT).returncode
        if name == "pytest" and code == 5:
            say("pytest collected no tests: that is a failure, not a pass")
        if code != 0:
            failed.append(name)
    if failed:
        say("FAILED: " + ", ".join(failed))
        return 1
    say("all checks passed")
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("hub", "test"):
        print(__doc__)
        return 2
    target, args = sys.argv[1], sys.argv[2:]
    return run_hub(args) if target == "hub" else run_tests(args)


if __name__ == "__main__":
    sys.exit(main())
