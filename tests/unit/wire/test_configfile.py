"""The config loader: errors that name the file, the line and the key.

The hub's settings are the schema here (the node's are read the same way); what the values mean
is tested in tests/unit/hub/test_config.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import HubConfig
from wire.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        HubConfig.load(path)
    return str(caught.value)


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
