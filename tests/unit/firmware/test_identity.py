"""Two stations on one machine without a configured id get two ids, the first the hostname."""

from __future__ import annotations

import os
from pathlib import Path

from firmware.identity import claim_default_id


def test_the_first_station_is_the_hostname_the_next_are_numbered(tmp_path: Path) -> None:
    first, first_lock = claim_default_id("quiz-laptop", tmp_path)
    second, second_lock = claim_default_id("quiz-laptop", tmp_path)
    third, third_lock = claim_default_id("quiz-laptop", tmp_path)
    assert (first, second, third) == ("quiz-laptop", "quiz-laptop-2", "quiz-laptop-3")
    assert None not in (first_lock, second_lock, third_lock)

    assert second_lock is not None
    os.close(second_lock)  # that station ended (or crashed: the kernel releases the lock)
    again, again_lock = claim_default_id("quiz-laptop", tmp_path)
    assert again == "quiz-laptop-2"
    for fd in (first_lock, third_lock, again_lock):
        assert fd is not None
        os.close(fd)
    assert claim_default_id("quiz-laptop", tmp_path)[0] == "quiz-laptop"


def test_a_long_hostname_stays_a_valid_id_with_its_number(tmp_path: Path) -> None:
    base = "b" * 64
    locks = [claim_default_id(base, tmp_path) for _ in range(2)]
    assert [len(node_id) for node_id, _ in locks] == [64, 64]
    assert locks[1][0].endswith("-2")


def test_with_nowhere_to_keep_a_lock_the_hostname_is_used(tmp_path: Path) -> None:
    assert claim_default_id("box", tmp_path / "missing") == ("box", None)
