"""Until when the hub has handled every message it read, whatever order they are handled in."""

from __future__ import annotations

from hub.backlog import Backlog


def test_settled_is_the_oldest_read_not_yet_handled() -> None:
    backlog = Backlog()
    assert backlog.settled_ns(0) is None  # nothing read
    first, second, third = backlog.read(10), backlog.read(20), backlog.read(30)
    assert backlog.settled_ns(0) == 10
    second.handled = True  # handled out of the order read: the first still holds it back
    assert backlog.settled_ns(0) == 10
    first.handled = True
    assert backlog.settled_ns(0) == 30
    third.handled = True
    assert backlog.settled_ns(0) is None


def test_a_message_left_unhandled_counts_no_longer_than_the_floor() -> None:
    backlog = Backlog()
    backlog.read(10)  # never handled (a fault)
    backlog.read(20).handled = True
    later = backlog.read(30)
    assert backlog.settled_ns(0) == 10
    assert backlog.settled_ns(11) == 30  # read before the floor: no longer waited for
    later.handled = True
    assert backlog.settled_ns(11) is None
