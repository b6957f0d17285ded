"""The [game] config section: teams table, timers, rebound mode, and what it does to the rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import HubConfig
from hub.round import Rules
from wire.enums import ReboundMode
from wire.errors import ConfigError


def load(tmp_path: Path, text: str) -> HubConfig:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return HubConfig.load(path)


def test_the_shipped_config_keeps_a_plain_buzzer() -> None:
    config = HubConfig.load(Path(__file__).parents[3] / "config" / "hub.toml")
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
