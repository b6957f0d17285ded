"""systemd/install.sh run against a temporary root, never the machine's own /.

What is exercised by default: the virtual environment made with the system's python3, the config
copied to /etc/buzzer-beater (mode 0640, and never overwritten once edited), the unit installed
and enabled with ``systemctl --root``, idempotence, and uninstall, with the pip step switched off
(``BUZZER_INSTALL_SKIP_PIP=1``). The offline install runs pip for real, with no index at all,
from a wheelhouse that ``systemd/build-wheelhouse.sh`` builds once and the tests cache (see
``tests/support/wheelhouse.py``); building it needs the package index once, so without one it is
skipped, except under CI. The online install needs PyPI and about fifteen seconds: it runs under
CI (``CI=true``) or with ``BUZZER_TEST_REAL_INSTALL=1``. The live half (starting, restarting
only what changed) is tested under a real systemd in tests/e2e/test_systemd.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.wheelhouse import WheelhouseUnavailable, wheelhouse

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "systemd" / "install.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: Directories every Debian system has; uninstall must leave exactly these behind.
BASE_DIRS = ("etc/systemd/system", "opt", "var/lib")

if not SYSTEM_PYTHON.exists() and os.environ.get("CI") != "true":
    pytest.skip("no system python3 at /usr/bin/python3", allow_module_level=True)


def run(role: str, root: Path, *args: str, skip_pip: bool = True, script: Path = SCRIPT) -> str:
    env = {**os.environ, "BUZZER_INSTALL_SKIP_PIP": "1" if skip_pip else "0"}
    result = subprocess.run(
        ["sh", str(script), role, "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
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


def config_file(root: Path, unit: Path) -> Path:
    """The file the unit's ``--config`` reads: a credential names its source file."""
    command = exec_start(unit)
    config = command[command.index("--config") + 1]
    credentials = dict(
        line.removeprefix("LoadCredential=").split(":", 1)
        for line in unit.read_text().splitlines()
        if line.startswith("LoadCredential=")
    )
    prefix = "${CREDENTIALS_DIRECTORY}/"
    if config.startswith(prefix):
        config = credentials[config.removeprefix(prefix)]
    return root / config.lstrip("/")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


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
    config = config_file(sysroot, unit)
    assert config.read_bytes() == (ROOT / "config/hub.toml").read_bytes()
    # It may hold tokens: root's alone; the service gets its copy as a credential.
    assert mode(config) == 0o640
    assert mode(config.with_name("hub.toml.default")) == 0o640

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
    unit = sysroot / "etc/systemd/system/buzzer-hub.service"
    program = sysroot / exec_start(unit)[0].lstrip("/")
    config = config_file(sysroot, unit)
    result = subprocess.run(
        [str(program), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert shutil.which("buzzer-hub", path=str(program.parent)) == str(program)


def test_a_world_readable_config_of_an_older_install_is_made_root_only(sysroot: Path) -> None:
    run("hub", sysroot)
    config = sysroot / "etc/buzzer-beater/hub.toml"
    config.chmod(0o644)  # as installed before configs were 0640
    out = run("hub", sysroot)
    assert "readable by root only" in out
    assert mode(config) == 0o640
    assert "readable by root only" not in run("hub", sysroot)


def test_an_old_python_is_refused_in_one_line(sysroot: Path, tmp_path: Path) -> None:
    """Bullseye's python3 is 3.9: the installer says so at once, before making anything."""
    fake = tmp_path / "python3.9"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        "  *version_info*) exit 1 ;;\n"
        "  *python_version*) echo 3.9.2 ;;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    result = subprocess.run(
        ["sh", str(SCRIPT), "hub", "--root", str(sysroot)],
        capture_output=True,
        text=True,
        env={**os.environ, "BUZZER_PYTHON": str(fake)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"install.sh: Python 3.11 or newer is needed, {fake} is 3.9.2"
        " (Raspberry Pi OS Bookworm has 3.11)"
    ]
    assert not (sysroot / "opt/buzzer-beater").exists()


@pytest.fixture(scope="module")
def wheels() -> Path:
    try:
        return wheelhouse()
    except WheelhouseUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc}; CI must run the offline install")
        pytest.skip(str(exc))


def site_packages(sysroot: Path) -> Path:
    return next((sysroot / "opt/buzzer-beater/lib").glob("python3*/site-packages"))


def test_offline_install_from_a_wheelhouse(sysroot: Path, tmp_path: Path, wheels: Path) -> None:
    """No index at all: pip --no-index, only the wheelhouse. Hub then node share one
    environment with lgpio in it; the checkout is left untouched; a module deleted from the
    source is gone from the environment after the next install."""
    checkout = tmp_path / "checkout"
    for name in ("systemd", "config", "wire", "hub", "firmware"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    (checkout / "hub" / "leftover.py").write_text('"""A module a later version deletes."""\n')
    script = checkout / "systemd" / "install.sh"
    source = tree(checkout)
    env_offline = ("--wheelhouse", str(wheels))

    out = run("hub", sysroot, *env_offline, skip_pip=False, script=script)
    assert f"(offline, from {wheels})" in out, out
    site = site_packages(sysroot)
    assert (site / "hub" / "leftover.py").exists()
    assert not (site / "lgpio.py").exists()  # the hub alone needs no GPIO library
    unit = sysroot / "etc/systemd/system/buzzer-hub.service"
    program = sysroot / exec_start(unit)[0].lstrip("/")
    checked = subprocess.run(
        [str(program), "check-config", str(config_file(sysroot, unit))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr

    # The node joins the same environment, which then holds the GPIO library for it.
    out = run("node", sysroot, *env_offline, skip_pip=False, script=script)
    assert "buzzer-beater[node]" in out, out
    venv_python = sysroot / "opt/buzzer-beater/bin/python3"
    subprocess.run([str(venv_python), "-c", "import lgpio, gpiozero"], check=True)

    # Nothing changed: nothing is installed again.
    installed = tree(sysroot)
    again = run("node", sysroot, *env_offline, skip_pip=False, script=script)
    assert again == "install.sh: buzzer-node.service is installed and enabled\n"
    assert tree(sysroot) == installed

    # The builds happened in a temporary copy: no build/ or egg-info in the checkout.
    assert tree(checkout) == source

    # The source loses a module: so does the environment.
    (checkout / "hub" / "leftover.py").unlink()
    source = tree(checkout)
    run("hub", sysroot, *env_offline, skip_pip=False, script=script)
    assert not (site / "hub" / "leftover.py").exists()
    assert (site / "hub" / "server.py").exists()
    subprocess.run([str(venv_python), "-c", "import lgpio"], check=True)
    assert tree(checkout) == source
