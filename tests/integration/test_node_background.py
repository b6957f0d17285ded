"""A node started in the background of a terminal runs on instead of stopping itself.

``timeout`` (like ``&`` in an interactive shell) puts the node in a process group that does not
own the terminal. Changing that terminal's mode then stops the process with SIGTTOU: the node
sat stopped, never reaching its hub. Here a shell owns a real pseudo-terminal (``setsid -c``)
and starts the node under ``timeout``, as a maker would from an SSH session.
"""

from __future__ import annotations

import os
import pty
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import console_script

pytestmark = pytest.mark.skipif(
    (shutil.which("setsid") is None or shutil.which("timeout") is None)
    and os.environ.get("CI") != "true",
    reason="needs setsid and timeout (util-linux, coreutils)",
)


def test_a_node_in_the_terminals_background_plays_with_its_button(start_hub: Any) -> None:
    hub = start_hub()
    master, slave = pty.openpty()
    node = [console_script("buzzer-node"), "--hub", hub.url, "--id", "bg", "--led-pin", ""]
    node += ["--input", "gpio,terminal"]
    # sh owns the terminal (its foreground group); timeout moves the node to a group of its own.
    script = f"timeout 60 {shlex.join(node)}; echo exit=$?"
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        ["setsid", "-c", "sh", "-c", script],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    output: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal's last user is gone
                return
            if not data:
                return
            output.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        hub.wait_for_log(r"node bg \(bg, gpio\) joined from 127\.0\.0\.1:", timeout=30)
    finally:
        # SIGTERM to timeout (the shell's child), which passes it on to the node.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        proc.wait(20)
        reader.join(10)
        os.close(master)
    text = b"".join(output).decode(errors="replace")
    assert "Input problem: --input terminal: the terminal belongs to the program in its " in text
    assert "exit=0" in text  # stopped by our SIGTERM, cleanly: not stopped (T) by SIGTTOU
