"""A Debian Bookworm container with systemd as its PID 1, for testing the real units.

The root file system is built once by ``tests/e2e/systemd/build-rootfs.sh`` (debootstrap, about
two minutes) and cached as a tar outside the checkout, keyed by the sha256 of that script. Every
test run unpacks it afresh into a temporary directory and boots it with::

    systemd-nspawn --boot --register=no --keep-unit --console=read-only --volatile=overlay
                   --private-network

This machine runs no systemd of its own, so nothing may be asked of a host systemd: no machine
registration and no scope unit (``--register=no --keep-unit``), and so no ``machinectl`` or
``systemd-run --machine``. Commands run inside with ``nsenter`` into the namespaces of the
container's PID 1. ``--private-network`` gives the container its own loopback and nothing else:
every byte the tests send stays inside it, and the hub's mDNS announcement goes nowhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tests.support.cache import BuildFailed, build_once, cache_dir

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tests" / "e2e" / "systemd" / "build-rootfs.sh"
#: The environment of every command run inside: the container's own, not this machine's.
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}

T = TypeVar("T")


class ContainerUnavailable(Exception):
    """What this machine lacks to boot the container: a reason to skip."""


def missing_tools() -> str | None:
    """Why the container cannot run here, or None."""
    if os.geteuid() != 0:
        return "booting a container needs root"
    for tool in ("systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install systemd-container util-linux)"
    return None


def rootfs_tar() -> Path:
    """The cached root file system, built first (debootstrap, ~2 min) if it is missing."""
    key = hashlib.sha256(BUILD_SCRIPT.read_bytes()).hexdigest()[:16]
    name = f"rootfs-bookworm-{key}.tar"
    debootstrap = shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if not (cache_dir() / name).exists() and debootstrap is None:
        raise ContainerUnavailable("debootstrap is missing (apt-get install debootstrap)")
    try:
        return build_once(name, ["sh", str(BUILD_SCRIPT)])
    except BuildFailed as exc:
        raise ContainerUnavailable(f"building the root file system failed: {exc}") from exc


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.05) -> T:
    """Poll ``probe`` until it returns something other than None; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Container:
    """One booted container: unpack, boot, run commands inside, shut down."""

    def __init__(self, directory: Path, binds: Sequence[tuple[Path, str]] = ()) -> None:
        self.directory = directory
        self.root = directory / "root"
        self.console = directory / "console.log"
        self.binds = list(binds)
        self.process: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def boot(self, tar: Path, timeout: float = 60.0) -> float:
        """Unpack ``tar`` and boot it; returns the seconds until systemd said it is up."""
        self.root.mkdir(parents=True)
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(self.root), "-xf", str(tar)],
            check=True,
            timeout=120,
        )
        command = [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--console=read-only",
            "--volatile=overlay",
            "--private-network",
            "--machine=buzzer-e2e",
            f"--directory={self.root}",
        ]
        command += [f"--bind-ro={host}:{inside}" for host, inside in self.binds]
        started = time.monotonic()
        with self.console.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.leader = wait_for("the container's PID 1", self._find_leader, timeout)
        deadline = started + timeout
        wait_for("systemd to finish booting", lambda: self._booted(deadline), timeout)
        return time.monotonic() - started

    def _booted(self, deadline: float) -> bool | None:
        """True once the boot is over; None while systemd cannot answer yet (just exec'ed)."""
        left = max(1.0, deadline - time.monotonic())
        state = self.run("systemctl", "is-system-running", "--wait", timeout=left)
        answer = state.stdout.strip()
        if answer in ("running", "degraded"):
            return True
        if answer in ("initializing", "starting", "offline", "unknown", ""):
            return None  # PID 1 is not systemd yet, or not listening yet
        raise AssertionError(f"the container did not boot: {answer} {state.stderr}\n{self.tail()}")

    def _find_leader(self) -> int | None:
        """The container's init: nspawn's child that is PID 1 in its own namespace."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited early: {self.tail()}")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            nspid = fields.get("NSpid", "").split()
            if fields.get("PPid") == str(self.process.pid) and len(nspid) > 1 and nspid[-1] == "1":
                return int(entry.name)
        return None

    def run(
        self, *command: str, timeout: float = 60.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the container, as root: nsenter into every namespace of its
        PID 1, and into its root and working directory."""
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", *command],
            capture_output=True,
            text=True,
            env=INSIDE_ENV,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def out(self, *command: str, timeout: float = 60.0) -> str:
        return self.run(*command, timeout=timeout, check=True).stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        args = [f"--property={name}" for name in properties]
        text = self.out("systemctl", "show", *args, unit)
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self, unit: str, lines: int = 30) -> str:
        result = self.run("journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit)
        return result.stdout

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def shutdown(self, timeout: float = 30.0) -> None:
        """Power the container off (nspawn turns SIGTERM into an orderly halt), then clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
