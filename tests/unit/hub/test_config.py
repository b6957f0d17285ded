"""The hub's settings: the shipped file states the defaults, values become the round's rules, and
each section refuses what is out of range. (How a file is read, and how its errors name the file,
line and key, is tested with the loader in tests/unit/wire/test_configfile.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import HubConfig, LimitsSection, SecuritySection
from hub.round import Rules, TieRule
from wire.enums import ReboundMode
from wire.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
MS = 1_000_000


def load(tmp_path: Path, text: str) -> HubConfig:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return HubConfig.load(path)


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
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
    config = load(
        tmp_path,
        "[server]\nport = 9000\n\n[round]\nhostless = false\nlockout_ms = 250\n"
        'tie_rule = "timestamp"\nadjudication_cap_ms = 40.5\n',
    )
    assert config.server.port == 9000
    assert config.round.lockout_ms == 250.0
    rules = config.round.rules()
    assert rules.lockout_ns == 250 * MS
    assert rules.auto_arm_after_ns is None
    assert rules.tie_rule is TieRule.TIMESTAMP
    assert rules.adjudication_cap_ns == 40_500_000


def test_out_of_range_values_are_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[round]\nauto_arm_delay_s = -1\n")
    assert "[round]" in message
    assert "auto_arm_delay_s must be zero or more" in message
    assert "tie_rule must be one of earliest, arrival, host" in load_error(
        tmp_path, '[round]\ntie_rule = "coin"\n'
    )
    assert "port must be between 0 and 65535" in load_error(tmp_path, "[server]\nport = 70000\n")


# --- [game] ---


def test_the_shipped_config_keeps_a_plain_buzzer() -> None:
    config = HubConfig.load(REPO / "config" / "hub.toml")
    rules = config.game.apply(config.round.rules())
    assert rules.rebound is ReboundMode.REARM
    assert (rules.buzz_window_ns, rules.answer_ns, rules.one_buzz_per_team) == (None, None, False)
    assert config.game.team_of() == {}


def test_game_section_sets_the_rules_and_teams(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[game]\none_buzz_per_team = true\nrebound = "next"\nbuzz_window_s = 7\n'
        "answer_time_s = 5\nanswer_warning_s = 1.5\n"
        '[game.teams]\nRed = ["r1", "r2"]\n"Blue Jays" = ["b1"]\n',
    )
    rules = config.game.apply(Rules(lockout_ns=250_000_000))
    assert rules.one_buzz_per_team
    assert rules.rebound is ReboundMode.NEXT
    assert rules.buzz_window_ns == 7_000_000_000
    assert rules.answer_ns == 5_000_000_000
    assert rules.answer_warning_ns == 1_500_000_000
    assert rules.lockout_ns == 250_000_000  # the round section's rules are kept
    assert config.game.team_of() == {"r1": "Red", "r2": "Red", "b1": "Blue Jays"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[game]\nrebound = "later"\n', "rebound must be one of"),
        ("[game]\nanswer_time_s = 0\n", "answer_time_s must be more than zero"),
        ('[game.teams]\nRed = ["a"]\nBlue = ["a"]\n', "player a is in two teams"),
        ('[game.teams]\nRed = ["no spaces"]\n', "is not a player id"),
        ('[game.teams]\nRed = "a"\n', "must be a table whose values are each a list of strings"),
    ],
)
def test_bad_game_settings_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(tmp_path, text)


def test_security_section_checks() -> None:
    with pytest.raises(ValueError, match="both or neither"):
        SecuritySection(certfile="hub.pem")
    with pytest.raises(ValueError, match="origins"):
        SecuritySection(origins=["scores.example"])
    assert SecuritySection(certfile="a", keyfile="b").tls
    with pytest.raises(ValueError, match="hello_timeout_s"):
        LimitsSection(hello_timeout_s=0)
