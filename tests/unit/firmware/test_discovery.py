"""Which hub a node on ``hub = "auto"`` takes from the answers, and the lines it prints."""

from __future__ import annotations

import itertools

import pytest

from firmware.config import NodeSection
from firmware.discovery import choose, found_line
from wire.discovery import FoundHub

HUBS = [
    FoundHub("Zeta", ("10.0.0.9",), 8765, 1),
    FoundHub("alpha", ("10.0.0.7",), 8765, 1),
    FoundHub("Alpha", ("10.0.0.3",), 9000, None),  # an older hub that did not say its protocol
    FoundHub("aardvark", ("10.0.0.1",), 8765, 99),  # speaks another protocol version
]


def test_the_choice_does_not_depend_on_the_order_answers_came_in() -> None:
    picks = {choose(list(order)) for order in itertools.permutations(HUBS)}
    # First by name without regard to case, then by address; a hub of another protocol version
    # only when there is nothing else.
    assert picks == {FoundHub("Alpha", ("10.0.0.3",), 9000, None)}
    assert choose([HUBS[3]]) == HUBS[3]
    assert choose([]) is None


def test_a_hub_name_picks_only_that_hub() -> None:
    assert choose(HUBS, "ZETA") == HUBS[0]
    assert choose(HUBS, "Finals") is None


def test_the_lines_name_the_choice_and_the_others() -> None:
    line = found_line(HUBS[0], HUBS[0].url, HUBS[:2])
    assert line == (
        "Found the hub 'Zeta' at ws://10.0.0.9:8765 on the LAN. Other hubs answering: 'alpha'; "
        "set hub_name to choose one of them."
    )
    assert (
        found_line(HUBS[0], HUBS[0].url, [HUBS[0]])
        == "Found the hub 'Zeta' at ws://10.0.0.9:8765 on the LAN."
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hub": "http://10.0.0.2"}, 'hub must be "auto" or look like ws://HOST:PORT'),
        ({"hub_name": "quiz.night"}, "hub_name must not contain a dot"),
        ({"hub_name": "x" * 64}, "hub_name must be at most 63"),
    ],
)
def test_bad_hub_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeSection(**settings)


def test_auto_is_the_default() -> None:
    assert NodeSection().hub == "auto"
