"""Names that pass for another player, towers of accents, and names that run as formulas."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from hub import store
from hub.config import HubConfig, RoundSection
from hub.names import clean, distinct, skeleton
from tests.support.simulation import MS, Net, Station, node

GREEK_ALPHA = "\u0391"
CYRILLIC_O = "\u043e"


@pytest.mark.parametrize(
    "cell", ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_cells_that_could_run_as_formulas_are_text(cell: str) -> None:
    row = {c: None for c in store.EXPORT_COLUMNS} | {"name": cell, "behind_ms": -1.5, "rank": 1}
    parsed = next(csv.DictReader(io.StringIO(store.csv_text([row]))))
    assert parsed["name"] == "'" + cell
    assert parsed["behind_ms"] == "-1.5"  # numbers are numbers, never touched
    assert parsed["rank"] == "1"


def test_names_are_nfc_with_a_few_marks_at_most() -> None:
    decomposed = "Jose\u0301"
    assert clean(decomposed) == "José"
    assert unicodedata.is_normalized("NFC", clean(decomposed))
    tower = "Z" + "\u0301\u0302\u0303\u0304" * 10 + "oe"
    assert clean(tower) == unicodedata.normalize("NFC", "Z\u0301\u0302oe")
    assert clean("Vi\u1ec7t") == "Vi\u1ec7t"  # two marks on one letter stay (Vietnamese)


def test_look_alike_names_share_a_skeleton_and_are_told_apart() -> None:
    assert skeleton(GREEK_ALPHA + "lice") == skeleton("Alice") == skeleton("ALICE")
    assert skeleton("B" + CYRILLIC_O + "b") == skeleton("Bob")
    assert skeleton("Alice") != skeleton("Alicia")
    assert distinct(GREEK_ALPHA + "lice", ["Alice"], 40) == GREEK_ALPHA + "lice (2)"
    assert distinct("Alice", ["Alice", "Alice (2)"], 40) == "Alice (3)"
    assert len(distinct("x" * 40, ["x" * 40], 40)) == 40
    assert distinct("Carol", ["Alice"], 40) == "Carol"


def test_a_player_cannot_pass_for_one_present() -> None:
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    alice = Station(net).open()
    alice.send({"type": "hello", "protocol": 1, "role": "node", "id": "a", "name": "Alice"})
    net.run_for(MS)
    fake = Station(net).open()
    hello = {"type": "hello", "protocol": 1, "role": "node", "id": "f"}
    fake.send({**hello, "name": GREEK_ALPHA + "lice"})
    net.run_for(MS)
    names = {p.id: p.name for p in net.core.roster}
    assert names == {"a": "Alice", "f": GREEK_ALPHA + "lice (2)"}
    assert fake.last("welcome")["greeting"] == f"Hello {GREEK_ALPHA}lice (2)!"
    tutorial = Station(net).open()
    tutorial.send("ALICE")  # a tutorial client names itself after a present player
    net.run_for(MS)
    assert net.core.roster.get("text-1").name == "ALICE (3)"  # type: ignore[union-attr]
    again = node(net, "a")  # the same node back: its own name is not a look-alike of itself
    net.run_for(MS)
    assert again.last("welcome")["id"] == "a"
    assert net.core.roster.get("a").name == "Alice"  # type: ignore[union-attr]
