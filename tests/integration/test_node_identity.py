"""Two laptop stations started on one machine without ``--id`` both play, under two ids, instead
of taking each other's place at the hub every 30 s."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from firmware.config import hostname_id
from tests.conftest import console_script


def test_two_stations_on_one_machine_join_under_two_ids(start_hub: Any, tmp_path: Path) -> None:
    hub = start_hub()
    # TMPDIR: the stations' id claims live here, away from any station really running.
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "TMPDIR": str(tmp_path)}
    args = [console_script("buzzer-node"), "--hub", hub.url, "--led-pin", "", "--input", "gpio"]
    first = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env
    )
    base = re.escape(hostname_id())
    try:
        hub.wait_for_log(rf"node {base} \({base}, gpio\) joined", timeout=20)
        second = subprocess.Popen(
            [*args, "--button-pin", "GPIO5"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            hub.wait_for_log(rf"node {base}-2 \({base}-2, gpio\) joined", timeout=20)
        finally:
            second.terminate()
            said, _ = second.communicate(timeout=10)
    finally:
        first.terminate()
        first.communicate(timeout=10)
    assert f"Another station on this machine has the id '{hostname_id()}'" in said
    assert not any("its older link is closed" in line for line in hub.lines)  # no takeover
