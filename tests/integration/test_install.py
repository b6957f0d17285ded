"""systemd/install.sh run against a temporary root, never the machine's own /.

What is exercised by default: the virtual environment made with the system's python3, the config
copied to /etc/buzzer-beater (and never overwritten once edited), the unit installed and enabled
with ``systemctl --root``, idempotence, and uninstall, with the pip step switched off
(``BUZZER_INSTALL_SKIP_PIP=1``). The full install, pip and all, needs PyPI (or pip's cache) and
about fifteen seconds: it runs once, under CI (``CI=true``, which reaches PyPI) or with
``BUZZER_TEST_REAL_INSTALL=1``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "systemd" / "install.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: Directories every Debian system has; uninstall must leave exactly these behind.
BASE_DIRS = ("etc/systemd/system", "opt", "var/lib")

if not SYSTEM_PYTHON.exists() and os.environ.get("CI") != "true":
    pytest.skip("no system python3 at /usr/bin/python3", allow_module_level=True)


def run(role: str, root: Path, *args: str, skip_pip: bool = True) -> str:
    env = {**os.environ, "BUZZER_INSTALL_SKIP_PIP": "1" if skip_pip else "0"}
    result = subprocess.run(
        ["sh", str(SCRIPT), role, "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root``: kind, mtime in ns, and content hash or link target."""
    listing: dict[str, tuple[str, int, str]] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        stat = path.lstat()
        if path.is_symlink():
            listing[name] = ("link", stat.st_mtime_ns, os.readlink(path))
        elif path.is_dir():
            listing[name] = ("dir", stat.st_mtime_ns, "")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            listing[name] = (oct(stat.st_mode), stat.st_mtime_ns, digest)
    return listing


def exec_start(unit: Path) -> list[str]:
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").split()


@pytest.fixture
def sysroot(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in BASE_DIRS:
        (root / name).mkdir(parents=True)
    return root


def test_hub_install_lands_where_the_unit_looks_and_is_idempotent(sysroot: Path) -> None:
    before = tree(sysroot)
    run("hub", sysroot)
    unit = sysroot / "etc/systemd/system/buzzer-hub.service"
    assert unit.read_bytes() == (ROOT / "systemd/buzzer-hub.service").read_bytes()
    # Enabled: the wants link systemd follows at boot.
    wants = sysroot / "etc/systemd/system/multi-user.target.wants/buzzer-hub.service"
    assert os.readlink(wants) == "/etc/systemd/system/buzzer-hub.service"
    # The command and config the unit names are where the script put them.
    command = exec_start(unit)
    program = sysroot / command[0].lstrip("/")
    assert program.parent == sysroot / "opt/buzzer-beater/bin"
    venv_python = program.parent / "python3"
    prefix = subprocess.run(
        [str(venv_python), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert prefix.stdout.strip() == str(sysroot / "opt/buzzer-beater")
    config = sysroot / command[command.index("--config") + 1].lstrip("/")
    assert config.read_bytes() == (ROOT / "config/hub.toml").read_bytes()

    installed = tree(sysroot)
    assert run("hub", sysroot).count("installed /") == 0
    assert tree(sysroot) == installed, "a second run changed the tree"

    run("hub", sysroot, "--uninstall")
    assert tree(sysroot).keys() == before.keys()


def test_an_edited_config_survives_reinstall_and_uninstall(sysroot: Path) -> None:
    run("hub", sysroot)
    config = sysroot / "etc/buzzer-beater/hub.toml"
    edited = config.read_text().replace('node_token = ""', 'node_token = "club-night"')
    assert edited != config.read_text()
    config.write_text(edited)
    run("hub", sysroot)
    assert config.read_text() == edited
    state = sysroot / "var/lib/buzzer-beater/results.db"
    state.parent.mkdir(parents=True)
    state.write_text("results")

    out = run("hub", sysroot, "--uninstall")
    assert "kept your edited" in out
    assert config.read_text() == edited
    assert state.read_text() == "results"  # data stays unless asked
    assert not (sysroot / "etc/systemd/system/buzzer-hub.service").exists()
    assert not (sysroot / "opt/buzzer-beater").exists()

    run("hub", sysroot, "--uninstall", "--purge")
    assert not config.exists()
    assert not state.exists()


def test_hub_and_node_share_the_environment_until_the_last_goes(sysroot: Path) -> None:
    run("hub", sysroot)
    run("node", sysroot)
    node_unit = sysroot / "etc/systemd/system/buzzer-node.service"
    assert (sysroot / exec_start(node_unit)[0].lstrip("/")).parent.exists()
    assert (sysroot / "etc/systemd/system/multi-user.target.wants/buzzer-node.service").is_symlink()
    run("node", sysroot, "--uninstall")
    assert (sysroot / "opt/buzzer-beater/bin/python3").exists()  # the hub still needs it
    run("hub", sysroot, "--uninstall")
    assert not (sysroot / "opt/buzzer-beater").exists()


REAL_INSTALL = os.environ.get("CI") == "true" or os.environ.get("BUZZER_TEST_REAL_INSTALL") == "1"


@pytest.mark.skipif(
    not REAL_INSTALL,
    reason="full pip install needs PyPI: runs under CI=true, or set BUZZER_TEST_REAL_INSTALL=1",
)
def test_real_install_runs_the_installed_hub_on_the_installed_config(sysroot: Path) -> None:
    run("hub", sysroot, skip_pip=False)
    command = exec_start(sysroot / "etc/systemd/system/buzzer-hub.service")
    program = sysroot / command[0].lstrip("/")
    config = sysroot / command[command.index("--config") + 1].lstrip("/")
    result = subprocess.run(
        [str(program), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert shutil.which("buzzer-hub", path=str(program.parent)) == str(program)
