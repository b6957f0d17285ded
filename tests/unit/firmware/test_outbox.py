"""The outbox: unique press ids, nothing dropped until both the ack and the result are in,
everything re-sent per link."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("order", [("ack", "result"), ("result", "ack")])
def test_a_press_stays_until_both_its_ack_and_its_result_are_in(order: tuple[str, str]) -> None:
    outbox = Outbox("a", boot="b00t")
    press = outbox.add(123_456, "keyboard")
    outbox.mark_sent(press.press_id, now=1_000)
    first, second = (getattr(outbox, name) for name in order)

    assert first(press.press_id)
    assert press.press_id in outbox  # half the answer is not enough
    [waiting] = outbox.pending()
    assert (waiting.at_ns, waiting.sends) == (123_456, 1)
    assert second(press.press_id)
    assert press.press_id not in outbox
    assert len(outbox) == 0


def test_an_acknowledged_press_whose_result_was_lost_goes_again_on_the_next_link() -> None:
    """The ack came on the old link, the result went to it after it died: only a re-send brings
    the result back (the hub answers a decided press again)."""
    outbox = Outbox("a")
    press = outbox.add(5, "gpio")
    outbox.mark_sent(press.press_id, now=10)
    assert outbox.ack(press.press_id)
    outbox.link_lost()
    assert [(p.press_id, p.at_ns, p.acked) for p in outbox.unsent()] == [(press.press_id, 5, True)]


def test_repeated_answers_are_recognised() -> None:
    outbox = Outbox("a")
    press = outbox.add(5, "gpio")
    assert outbox.result(press.press_id)
    assert not outbox.result(press.press_id)  # the same result again, before the ack
    assert outbox.ack(press.press_id)
    assert not outbox.ack(press.press_id)  # a re-sent press is acknowledged again
    assert not outbox.result(press.press_id)  # ...and answered again, after it left
    assert not outbox.ack("a.unknown.1")
    assert outbox.result("a.unknown.1")  # a result for a press never held here is still news


def test_a_lost_link_makes_every_pending_press_go_again() -> None:
    outbox = Outbox("a")
    one, two = outbox.add(1, "gpio"), outbox.add(2, "gpio")
    outbox.mark_sent(one.press_id, now=10)
    assert [p.press_id for p in outbox.unsent()] == [two.press_id]
    outbox.link_lost()
    assert [p.press_id for p in outbox.unsent()] == [one.press_id, two.press_id]
    assert [p.at_ns for p in outbox.unsent()] == [1, 2]


def test_overdue_presses_are_those_sent_long_enough_ago_and_still_waiting() -> None:
    outbox = Outbox("a")
    press, other = outbox.add(1, "gpio"), outbox.add(2, "gpio")
    assert outbox.overdue(now=10**12, after_ns=1) == []  # never sent: not overdue, unsent
    assert outbox.next_overdue(after_ns=1_000) is None
    outbox.mark_sent(press.press_id, now=1_000)
    outbox.mark_sent(other.press_id, now=1_200)
    assert outbox.next_overdue(after_ns=1_000) == 2_000
    assert outbox.overdue(now=1_500, after_ns=1_000) == []
    outbox.ack(press.press_id)  # acknowledged, result still missing: still overdue
    assert [p.press_id for p in outbox.overdue(now=2_000, after_ns=1_000)] == [press.press_id]
    outbox.result(press.press_id)
    assert outbox.overdue(now=2_000, after_ns=1_000) == []
    assert outbox.next_overdue(after_ns=1_000) == 2_200


def test_a_full_outbox_drops_the_oldest_press_first() -> None:
    outbox = Outbox("a")
    first = outbox.add(0, "gpio")
    for at in range(1, MAX_PENDING + 1):
        outbox.add(at, "gpio")
    assert len(outbox) == MAX_PENDING
    assert first.press_id not in outbox
    assert outbox.dropped == 1
