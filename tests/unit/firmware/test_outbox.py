"""The outbox: unique press ids, nothing dropped until acknowledged, everything re-sent per link."""

from __future__ import annotations

from firmware.outbox import MAX_PENDING, Outbox
from wire.messages import ID_PATTERN


def test_press_ids_are_unique_valid_and_differ_between_boots() -> None:
    first, second = Outbox("stage-left"), Outbox("stage-left")
    ids = [first.add(i, "gpio").press_id for i in range(100)]
    ids += [second.add(i, "gpio").press_id for i in range(100)]
    assert len(set(ids)) == 200
    assert all(ID_PATTERN.fullmatch(press_id) for press_id in ids)


def test_a_longest_node_id_still_gives_valid_press_ids() -> None:
    outbox = Outbox("n" * 64, boot="abcdef")
    press_id = outbox.add(1, "gpio").press_id
    assert ID_PATTERN.fullmatch(press_id), press_id


def test_a_press_stays_until_acknowledged_with_its_original_timestamp() -> None:
    outbox = Outbox("a", boot="b00t")
    press = outbox.add(123_456, "keyboard")
    outbox.mark_sent(press.press_id, now=1_000)
    assert [p.at_ns for p in outbox.pending()] == [123_456]
    assert outbox.ack("a.unknown.1") is None
    acked = outbox.ack(press.press_id)
    assert acked is not None
    assert acked.at_ns == 123_456
    assert acked.sends == 1
    assert outbox.ack(press.press_id) is None  # a second ack (a re-sent press) is harmless
    assert len(outbox) == 0


def test_a_lost_link_makes_every_pending_press_go_again() -> None:
    outbox = Outbox("a")
    one, two = outbox.add(1, "gpio"), outbox.add(2, "gpio")
    outbox.mark_sent(one.press_id, now=10)
    assert [p.press_id for p in outbox.unsent()] == [two.press_id]
    outbox.link_lost()
    assert [p.press_id for p in outbox.unsent()] == [one.press_id, two.press_id]
    assert [p.at_ns for p in outbox.unsent()] == [1, 2]


def test_overdue_presses_are_those_sent_long_enough_ago() -> None:
    outbox = Outbox("a")
    press = outbox.add(1, "gpio")
    assert outbox.overdue(now=10**12, after_ns=1) == []  # never sent: not overdue, unsent
    outbox.mark_sent(press.press_id, now=1_000)
    assert outbox.overdue(now=1_500, after_ns=1_000) == []
    assert [p.press_id for p in outbox.overdue(now=2_000, after_ns=1_000)] == [press.press_id]


def test_a_full_outbox_drops_the_oldest_press_first() -> None:
    outbox = Outbox("a")
    first = outbox.add(0, "gpio")
    for at in range(1, MAX_PENDING + 1):
        outbox.add(at, "gpio")
    assert len(outbox) == MAX_PENDING
    assert first.press_id not in outbox
    assert outbox.dropped == 1
