"""The config loader: defaults, typed values, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import cli
from hub.config import HubConfig
from hub.round import TieRule
from wire.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
MS = 1_000_000


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        HubConfig.load(path)
    return str(caught.value)


def test_the_shipped_config_states_the_defaults() -> None:
    assert HubConfig.load(REPO / "config" / "hub.toml") == HubConfig()


def test_no_file_means_defaults() -> None:
    config = HubConfig.load(None)
    assert config.server.port == 8765
    assert config.round.hostless is True
    rules = config.round.rules()
    assert rules.lockout_ns is None
    assert rules.auto_arm_after_ns == 3_000 * MS
    assert rules.release_lead_ns == 100 * MS


def test_values_are_read_and_converted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[server]\nport = 9000\n\n[round]\nhostless = false\nlockout_ms = 250\n"
        'tie_rule = "timestamp"\nadjudication_cap_ms = 40.5\n',
    )
    config = HubConfig.load(path)
    assert config.server.port == 9000
    assert config.round.lockout_ms == 250.0
    rules = config.round.rules()
    assert rules.lockout_ns == 250 * MS
    assert rules.auto_arm_after_ns is None
    assert rules.tie_rule is TieRule.TIMESTAMP
    assert rules.adjudication_cap_ns == 40_500_000


def test_unknown_section_names_file_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[server]\nport = 1\n\n[rounds]\nhostless = true\n")
    assert message.startswith(f"{tmp_path / 'hub.toml'}:4: [rounds]: unknown section")
    assert "known sections: [server], [round], [clock]" in message


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[round]\n# a comment\nhostles = true\n")
    assert message.startswith(f"{tmp_path / 'hub.toml'}:3: [round] hostles: unknown key")
    assert "hostless" in message  # the keys that do exist are listed


def test_wrong_type_names_file_line_key_and_expected_type(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[server]\nhost = ""\nport = "8765"\n')
    assert message == f"{tmp_path / 'hub.toml'}:3: [server] port: must be an integer, not '8765'"
    message = load_error(tmp_path, '[round]\nhostless = "yes"\n')
    assert (
        message == f"{tmp_path / 'hub.toml'}:2: [round] hostless: must be true or false, not 'yes'"
    )
    message = load_error(tmp_path, "[server]\nport = true\n")
    assert message.endswith("[server] port: must be an integer, not True")
    message = load_error(tmp_path, "[server]\nport = 80.0\n")
    assert message.endswith("[server] port: must be an integer, not 80.0")


def test_a_key_outside_any_section_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "port = 1\n")
    assert message.startswith(f"{tmp_path / 'hub.toml'}:1: port: a key outside any section")
    message = load_error(tmp_path, "# hub\nserver = 1\n")
    assert message == f"{tmp_path / 'hub.toml'}:2: server: must be a [section] of keys"


def test_out_of_range_values_are_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[round]\nauto_arm_delay_s = -1\n")
    assert "[round]" in message
    assert "auto_arm_delay_s must be zero or more" in message
    assert "tie_rule must be one of arrival, timestamp" in load_error(
        tmp_path, '[round]\ntie_rule = "coin"\n'
    )
    assert "port must be between 0 and 65535" in load_error(tmp_path, "[server]\nport = 70000\n")


def test_bad_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[server]\nport = = 1\n")
    assert message.startswith(f"{tmp_path / 'hub.toml'}: not valid TOML: ")
    assert "line 2" in message


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.toml"):
        HubConfig.load(missing)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[server]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        HubConfig.load(binary)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "[server]\nport = 9000\n")
    assert cli.main(["check-config", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    bad = write(tmp_path, "[server]\nprot = 9000\n")
    assert cli.main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"buzzer-hub: {bad}:2: [server] prot: unknown key")
    assert err.count("\n") == 1
