"""A station freezes what it holds at its start out of later full garbage collections."""

from __future__ import annotations

import gc

from firmware.cli import freeze_start


def test_what_a_station_holds_at_its_start_is_left_out_of_full_collections() -> None:
    before = gc.get_freeze_count()
    try:
        freeze_start()
        assert gc.get_freeze_count() > before
        assert gc.get_count()[0] < 100  # collected first: nothing young frozen in with them
    finally:
        gc.unfreeze()
