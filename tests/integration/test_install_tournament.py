"""``install.sh hub --tournament``: a room hub's environment keeps the PostgreSQL driver across
reinstalls, a node cannot ask for it, and it goes with the hub."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integration.test_install import SCRIPT, run, sysroot  # noqa: F401


def roles(root: Path) -> list[str]:
    return (root / "opt/buzzer-beater/.roles").read_text().split()


def test_a_room_hub_keeps_the_tournament_driver_until_the_hub_goes(sysroot: Path) -> None:  # noqa: F811
    run("hub", sysroot, "--tournament")
    assert roles(sysroot) == ["hub", "tournament"]
    run("hub", sysroot)  # a later run without the option keeps it
    assert roles(sysroot) == ["hub", "tournament"]
    run("node", sysroot)
    run("hub", sysroot, "--uninstall")
    assert roles(sysroot) == ["node"]  # the node does not need the driver


def test_a_node_cannot_ask_for_the_tournament_driver(sysroot: Path) -> None:  # noqa: F811
    result = subprocess.run(
        ["sh", str(SCRIPT), "node", "--root", str(sysroot), "--tournament"],
        capture_output=True,
        text=True,
        env={**os.environ, "BUZZER_INSTALL_SKIP_PIP": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"install.sh: --tournament is for a hub: sudo {SCRIPT} hub --tournament"
    )
