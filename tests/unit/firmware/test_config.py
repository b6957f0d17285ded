"""Node settings: TOML with file:line errors, every flag overriding its key, check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import cli
from firmware.config import NodeConfig, hostname_id, parse_inputs
from wire.errors import ConfigError


def test_the_shipped_config_file_loads_and_matches_the_defaults() -> None:
    shipped = Path(__file__).resolve().parents[3] / "config" / "node.toml"
    assert NodeConfig.load(shipped) == NodeConfig()


def test_a_mistyped_key_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nhub = "ws://hub:8765"\n\n[gpio]\nbuton_pin = "GPIO4"\n')
    with pytest.raises(ConfigError, match=r"node\.toml:5: \[gpio\] buton_pin: unknown key"):
        NodeConfig.load(path)


def test_a_bad_value_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\ninputs = ["gpio", "mouse"]\n')
    with pytest.raises(ConfigError, match="'mouse' is not one of gpio, keyboard, terminal"):
        NodeConfig.load(path)


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nid = "box-1"\nname = "Box"\n[gpio]\nled_pin = "GPIO5"\n')
    args = cli._parser().parse_args(
        [
            "--config",
            str(path),
            "--name",
            "Alice",
            "--input",
            "gpio,keyboard",
            "--input",
            "terminal",
            "--led-pin",
            "",
            "--pull-down",
            "--hub",
            "ws://10.0.0.2:9000",
        ]
    )
    config = cli.load_config(args)
    assert config.node.id == "box-1"
    assert config.node.name == "Alice"
    assert config.node.inputs == ["gpio", "keyboard", "terminal"]
    assert config.node.hub == "ws://10.0.0.2:9000"
    assert config.gpio.led_pin == ""
    assert config.gpio.pull_up is False


def test_a_wrong_hub_url_on_the_command_line_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--hub", "http://10.0.0.2:8765", "--input", "terminal"]) == 2
    err = capsys.readouterr().err
    assert 'hub must be "auto" or look like ws://HOST:PORT' in err
    assert "Traceback" not in err


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[node]\nhub = "ws://hub.local:8765"\n')
    bad.write_text("[node]\nid = 5\n")
    assert cli.main(["check-config", str(good)]) == 0
    assert cli.main(["check-config", str(bad)]) == 2
    assert "bad.toml:2: [node] id: must be a string" in capsys.readouterr().err


def test_hostname_becomes_a_valid_id_and_inputs_parse() -> None:
    assert hostname_id("buzzer pi #3.local") == "buzzer-pi--3"
    assert hostname_id("") == "node"
    assert parse_inputs(["gpio, Keyboard", "gpio", "terminal"]) == ["gpio", "keyboard", "terminal"]
