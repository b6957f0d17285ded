"""``buzzer-node`` in a real pseudo-terminal: the spacebar, key repeat, the keyboard fallback.

Each test runs the installed console script as a subprocess whose stdin, stdout and stderr are the
slave side of a pty, types into the master side, and reads what the player would see.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOST_TOKEN, console_script

HOSTLESS = "[round]\nrelease_lead_ms = 0\nauto_arm_delay_s = 60\n"


class PtyNode:
    """A ``buzzer-node`` process on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.master, self.slave = pty.openpty()
        self.before = termios.tcgetattr(self.slave)
        self.output = ""
        self._changed = threading.Condition()
        self._done = False
        self.proc = subprocess.Popen(
            [console_script("buzzer-node"), "--led-pin", "", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self._done:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            with self._changed:
                self.output += data.decode(errors="replace")
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        exited = False
        with self._changed:
            while (match := regex.search(self.output)) is None:
                if not exited and self.proc.poll() is not None:
                    exited = True  # give the reader half a second for the last bytes
                    deadline = min(deadline, time.monotonic() + 0.5)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} from the node; it said:\n{self.output}")
                self._changed.wait(min(left, 0.2))
            return match

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._done = True
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_node() -> Any:
    started: list[PtyNode] = []

    def start(*args: str, env: dict[str, str] | None = None) -> PtyNode:
        node = PtyNode(list(args), env)
        started.append(node)
        return node

    yield start
    for node in started:
        node.close()


def status(hub: Any) -> dict[str, Any]:
    """The hub's state through ``buzzer-hub ctl status``, as a script would read it."""
    import json

    out = subprocess.run(
        [console_script("buzzer-hub"), "ctl", "--hub", hub.url, "--token", HOST_TOKEN, "status"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    state: dict[str, Any] = json.loads(out.stdout)
    return state


def entries_for(state: dict[str, Any], player: str) -> list[dict[str, Any]]:
    round_ = state["round"]
    return [o for o in round_["results"] + round_["refused"] if o["player"] == player]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_space_typed_in_the_terminal_is_ranked_and_the_terminal_restored(
    start_hub: Any, pty_node: Any, sig: int
) -> None:
    hub = start_hub(config=HOSTLESS)
    node = pty_node("--hub", hub.url, "--id", "tess", "--name", "Tess", "--input", "terminal")
    node.wait_for(r"Press space to buzz \(terminal\)")
    during = termios.tcgetattr(node.slave)
    hub.wait_for_log(r"node tess synced")
    node.wait_for(r"Round 1: go!")
    node.type(b" ")
    node.wait_for(r"First place! \(reaction \d+\.\d{3} s\)")
    state = status(hub)
    code = node.stop(sig)

    assert during[3] & termios.ICANON == 0  # cbreak while running: no Enter needed
    assert termios.tcgetattr(node.slave) == node.before
    assert code == 0
    assert "Traceback" not in node.output
    [entry] = entries_for(state, "tess")
    assert entry["rank"] == 1
    assert "unsynced" not in entry["flags"]


def test_a_held_spacebar_is_one_press(start_hub: Any, pty_node: Any) -> None:
    hub = start_hub(config=HOSTLESS)
    node = pty_node("--hub", hub.url, "--id", "holder", "--input", "terminal")
    hub.wait_for_log(r"node holder synced")
    node.wait_for(r"Round 1: go!")
    # What a terminal receives while the spacebar is held: one space, then after the repeat
    # delay a space every 33 ms. The pauses shape the input; they synchronise nothing.
    node.type(b" ")
    time.sleep(0.4)
    for _ in range(20):
        node.type(b" ")
        time.sleep(0.033)
    node.type(b"x")  # any other key: the node answers it after every earlier byte is handled
    node.wait_for(r"Press space to buzz \(Ctrl\+C quits\)")
    node.wait_for(r"First place!")
    state = status(hub)
    node.stop()

    assert node.output.count("Press registered") == 1
    assert [entry["rank"] for entry in entries_for(state, "holder")] == [1]


def test_keyboard_unusable_falls_back_to_the_terminal_and_says_why(
    start_hub: Any, pty_node: Any, tmp_path: Path
) -> None:
    no_devices = tmp_path / "input"
    no_devices.mkdir()
    config = tmp_path / "node.toml"
    config.write_text(f'[keyboard]\ninput_dir = "{no_devices}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SSH_TTY")}
    hub = start_hub(config=HOSTLESS)
    node = pty_node(
        "--hub", hub.url, "--id", "kb", "--input", "keyboard", "--config", str(config), env=env
    )
    match = node.wait_for(r"Keyboard input unavailable \((.+)\); reading the terminal instead\.")
    hub.wait_for_log(r"node kb synced")
    node.wait_for(r"Round 1: go!")
    node.type(b" ")
    node.wait_for(r"First place!")
    code = node.stop()

    # Root or not: the keyboard is read through evdev, and the folder holds no device.
    assert match.group(1) == f"no keyboard input device readable in {no_devices}"
    assert code == 0
    assert "Traceback" not in node.output
    assert node.output.count("Keyboard input unavailable") == 1


def test_no_keyboard_and_no_terminal_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[keyboard]\ninput_dir = "{tmp_path}"\n')
    result = subprocess.run(
        [console_script("buzzer-node"), "--input", "keyboard", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 2
    assert "buzzer-node: no spacebar to read:" in result.stderr
    assert "standard input is not a terminal" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
