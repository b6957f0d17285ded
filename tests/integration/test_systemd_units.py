"""The unit files, checked by systemd's own tools: ``systemd-analyze verify`` and ``security``.

No systemd runs here as PID 1, so the units are checked offline inside a temporary root that
holds the system's own unit directory (for sysinit.target, multi-user.target and the like), our
two units in /etc/systemd/system, and an executable at each ExecStart path: ``verify`` refuses a
unit whose command does not exist. ``verify`` exits 0 on unknown keys and other warnings, so
any output at all counts as a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
HUB = "buzzer-hub.service"
NODE = "buzzer-node.service"
MAX_HUB_EXPOSURE = 2.0
MAX_NODE_EXPOSURE = 2.0
SYSTEM_UNIT_DIRS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]

ANALYZE = shutil.which("systemd-analyze")
if ANALYZE is None and os.environ.get("CI") != "true":
    pytest.skip("systemd-analyze is not installed on this machine", allow_module_level=True)


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given, in order (systemd allows keys to repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    values = settings.get(key)
    assert values, f"{key} is not set"
    return values[-1]


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unit-root")
    system = next((d for d in SYSTEM_UNIT_DIRS if (d / "multi-user.target").exists()), None)
    assert system is not None, "no systemd unit directory on this machine"
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for name in (HUB, NODE):
        shutil.copy(UNITS / name, etc / name)
        command = one(unit_settings(UNITS / name), "Service.ExecStart").split()[0]
        stub = root / command.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None, "systemd-analyze is missing: apt install systemd"
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("unit", [HUB, NODE])
def test_verify_reports_nothing(unit_root: Path, unit: str) -> None:
    result = analyze("verify", "--man=no", "--recursive-errors=no", f"--root={unit_root}", unit)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_as_run_here_does_catch_a_bad_key(unit_root: Path, tmp_path: Path) -> None:
    """The check above would see a mistake: an unknown key only prints a warning, exit 0."""
    etc = unit_root / "etc/systemd/system"
    broken = etc / "buzzer-broken.service"
    broken.write_text((UNITS / HUB).read_text().replace("[Service]\n", "[Service]\nRestrt=no\n"))
    try:
        result = analyze("verify", "--man=no", f"--root={unit_root}", broken.name)
    finally:
        broken.unlink()
    assert "Unknown key 'Restrt'" in result.stderr


@pytest.mark.parametrize(("unit", "limit"), [(HUB, MAX_HUB_EXPOSURE), (NODE, MAX_NODE_EXPOSURE)])
def test_exposure_is_at_most_two(unit_root: Path, unit: str, limit: float) -> None:
    result = analyze("security", "--offline=true", f"--root={unit_root}", "--no-pager", unit)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", output)
    assert match, output
    exposure = float(match.group(1))
    assert exposure <= limit, output
    # The tool agrees: it fails when the exposure is above the threshold (in tenths).
    threshold = f"--threshold={round(limit * 10)}"
    strict = analyze(
        "security", "--offline=true", f"--root={unit_root}", threshold, "--no-pager", unit
    )
    assert strict.returncode == 0, strict.stdout


def test_hub_unit_keeps_what_the_hub_needs() -> None:
    hub = unit_settings(UNITS / HUB)
    assert one(hub, "Service.Type") == "notify"
    assert one(hub, "Service.NotifyAccess") == "main"
    assert one(hub, "Service.Restart") == "on-failure"
    assert one(hub, "Service.WatchdogSec")
    assert one(hub, "Service.DynamicUser") == "yes"
    assert one(hub, "Service.StateDirectory") == "buzzer-beater"
    families = set(one(hub, "Service.RestrictAddressFamilies").split())
    # Internet sockets to serve, AF_UNIX for sd_notify, AF_NETLINK for mDNS interface lookup.
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "network-online.target" in one(hub, "Unit.After")
    assert one(hub, "Install.WantedBy") == "multi-user.target"


def test_node_unit_can_reach_gpio_and_restarts_always() -> None:
    node = unit_settings(UNITS / NODE)
    assert one(node, "Service.Restart") == "always"
    assert "gpio" in one(node, "Service.SupplementaryGroups").split()
    runtime = one(node, "Service.RuntimeDirectory")
    assert one(node, "Service.WorkingDirectory") == f"/run/{runtime}"
    # A private user namespace would map the gpio group away and lock the node out of the pins.
    assert node.get("Service.PrivateUsers", ["no"])[-1] == "no"
    # /dev/gpiochip* must stay visible.
    assert node.get("Service.PrivateDevices", ["no"])[-1] == "no"
    assert one(node, "Install.WantedBy") == "multi-user.target"


def test_the_hub_keeps_coming_back() -> None:
    """systemd's default start limit (5 starts in 10 s) would leave a failing hub down for good."""
    hub = unit_settings(UNITS / HUB)
    assert one(hub, "Unit.StartLimitIntervalSec") == "0"
    assert one(hub, "Service.Restart") == "on-failure"
    assert one(hub, "Service.RestartSec")


@pytest.mark.parametrize(("unit", "config"), [(HUB, "hub.toml"), (NODE, "node.toml")])
def test_the_config_reaches_the_dynamic_user_as_a_credential(unit: str, config: str) -> None:
    """The config is root's alone (0640, it holds tokens); systemd hands the service a copy.

    With DynamicUser=, ConfigurationDirectory= does not make existing files readable to the
    service, so the unit loads the file as a credential instead (readable by the service's user
    only) and points the program at that copy.
    """
    settings = unit_settings(UNITS / unit)
    assert f"{config}:/etc/buzzer-beater/{config}" in settings["Service.LoadCredential"]
    command = one(settings, "Service.ExecStart").split()
    assert command[command.index("--config") + 1] == f"${{CREDENTIALS_DIRECTORY}}/{config}"
    assert "Service.ConfigurationDirectory" not in settings


def test_node_unit_opens_only_gpio_and_input_devices() -> None:
    node = unit_settings(UNITS / NODE)
    assert one(node, "Unit.StartLimitIntervalSec") == "0"
    assert one(node, "Service.SystemCallErrorNumber") == "EPERM"
    assert one(node, "Service.DevicePolicy") == "closed"
    assert set(node["Service.DeviceAllow"]) == {"char-gpiochip rw", "char-input r"}
    # The input group owns /dev/input/event*: a keyboard source reads them without root.
    assert {"gpio", "input"} <= set(one(node, "Service.SupplementaryGroups").split())
