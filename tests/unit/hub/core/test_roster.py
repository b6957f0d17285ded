"""A player is their id: the link comes and goes, the name, team and numbering stay."""

from __future__ import annotations

from hub.clock import FilterSettings
from hub.core.roster import Known, Roster
from wire.enums import InputKind


def test_a_node_keeps_its_name_unless_its_hello_brings_a_new_one() -> None:
    roster = Roster(FilterSettings())
    first = roster.node("desk-1", "Alice", InputKind.KEYBOARD)
    again = roster.node("desk-1", None, None)
    assert again is first
    assert (again.name, again.input) == ("Alice", InputKind.KEYBOARD)
    assert roster.node("desk-2", None, None).name == "desk-2"  # shown by its id
    assert roster.names() == {"desk-1": "Alice", "desk-2": "desk-2"}


def test_tutorial_ids_count_on_from_the_highest_restored() -> None:
    roster = Roster(FilterSettings())
    roster.restore(
        [
            Known("text-4", "Carol", InputKind.TEXT, None),
            Known("text-x", "odd", InputKind.TEXT, None),
            Known("box", "Box", InputKind.GPIO, "red"),
        ]
    )
    client = roster.tutorial()
    assert (client.id, client.name, client.plain) == ("text-5", "Player 5", True)
    assert roster.get("box") is not None
    assert roster.get("box").team == "red"  # type: ignore[union-attr]


def test_only_linked_players_are_online_and_lost_rows_come_back_by_id() -> None:
    roster = Roster(FilterSettings())
    box = roster.node("box", None, None)
    box.link = 7
    roster.node("idle", None, None)
    assert [p.id for p in roster.online()] == ["box"]
    assert roster.ensure("text-9").plain
    assert roster.ensure("gone").input is InputKind.GPIO
