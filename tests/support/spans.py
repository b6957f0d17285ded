"""When the hub says a press was made, read from a result row of its state: what the timing
tests hold it to.

A press is placed at ``at_ns`` give or take ``uncertainty_ns``. A clamped one (its claim earlier
than its link can explain, as a starved machine can make an honest press) may have been made
anywhere from its claim to its arrival, and is ranked and timed as made at its arrival
(docs/timing.md, "Trust"). A test that checked a gap against the uncertainties alone failed
whenever a busy machine got a press clamped; these say what the hub states in both cases.
"""

from __future__ import annotations

from typing import Any


def stated_span(row: dict[str, Any]) -> tuple[int, int]:
    """The earliest and the latest the hub says the press may have been made."""
    low, high = row["at_ns"] - row["uncertainty_ns"], row["at_ns"] + row["uncertainty_ns"]
    return low, row["arrival_ns"] if "clamped" in row["flags"] else high


def gap_allowance(first: dict[str, Any], second: dict[str, Any]) -> int:
    """How far the gap the hub told (``second`` behind ``first``) may be from the true one, by
    the spans it states for the two: the sum of their uncertainties, for presses not clamped."""
    (first_low, first_high), (second_low, second_high) = stated_span(first), stated_span(second)
    told: int = second["behind_ns"]
    return max(told - (second_low - first_high), (second_high - first_low) - told)


def timing_allowance(row: dict[str, Any]) -> int:
    """How far the instant the press is timed by (its reaction, its gap) may be from when it
    was made, by its stated span: its uncertainty, or for a clamped press its whole span."""
    low, high = stated_span(row)
    return high - low if "clamped" in row["flags"] else row["uncertainty_ns"]
