"""Small LANs made of network namespaces and veth pairs, for discovery tests, and a node process.

Everything a test builds here lives in namespaces it creates and deletes: multicast DNS and the
WebSocket traffic never leave them. Where namespaces cannot be made (not root, no iproute2) a test
is skipped, except under CI, where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass
class Netns:
    """Namespaces and links made by one test; :meth:`close` deletes them (and their links)."""

    tag: str
    names: list[str] = field(default_factory=list)

    def add(self, role: str) -> str:
        """A new namespace with its loopback up; its name is returned."""
        name = f"bb{role}{self.tag}"
        try:
            if shutil.which("ip") is None:
                raise OSError("iproute2 (ip) is not installed")
            ip("netns", "add", name)
        except (OSError, subprocess.CalledProcessError) as exc:
            if os.environ.get("CI") == "true":
                raise
            detail = getattr(exc, "stderr", None) or exc
            pytest.skip(f"cannot create a network namespace here: {str(detail).strip()}")
        self.names.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, dev_a: str, b: str, dev_b: str) -> None:
        """A veth pair between namespaces ``a`` and ``b``, both ends up with multicast on."""
        ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        for ns, dev in ((a, dev_a), (b, dev_b)):
            ip("link", "set", dev, "netns", ns)
            ip("-n", ns, "link", "set", dev, "up", "multicast", "on")

    def exec(self, ns: str) -> list[str]:
        """The prefix that runs a command inside ``ns``."""
        return ["ip", "netns", "exec", ns]

    def run(self, ns: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.exec(ns), *command], capture_output=True, text=True, timeout=timeout, check=False
        )

    def close(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class NodeProcess:
    """A ``buzzer-node`` subprocess whose console (stdout) is collected line by line."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _new_line: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 15.0, since: int = 0) -> str:
        """The first console line from ``since`` on matching ``pattern``; fail after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.lines[since:]:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = "\n".join(self.lines[-20:])
                    raise AssertionError(f"node printed no line matching {pattern!r}:\n{tail}")
                self._new_line.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def start_node_process(prefix: list[str], *args: str) -> NodeProcess:
    """``buzzer-node`` with ``args`` behind ``prefix`` (``ip netns exec NAME``), on gpiozero's mock
    pins, its console collected."""
    from tests.conftest import console_script

    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
    command = [*prefix, console_script("buzzer-node"), *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    return NodeProcess(proc)


def kill_all(nodes: list[NodeProcess]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)
