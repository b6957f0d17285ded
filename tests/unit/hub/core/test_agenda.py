"""Many small jobs, one wake-up: the earliest due time, each job once, rescheduling honoured."""

from __future__ import annotations

from hub.core.agenda import Agenda


def test_due_jobs_come_out_earliest_first_and_only_once() -> None:
    agenda: Agenda[str] = Agenda()
    agenda.set("b", 20)
    agenda.set("a", 10)
    agenda.set("c", 30)
    assert agenda.next() == 10
    assert agenda.pop_due(25) == ["a", "b"]
    assert agenda.pop_due(25) == []
    assert agenda.next() == 30
    assert len(agenda) == 1


def test_a_rescheduled_or_cancelled_job_leaves_no_ghost() -> None:
    agenda: Agenda[str] = Agenda()
    agenda.set("sync", 10)
    agenda.set("sync", 50)  # moved later: its old time must not fire it
    agenda.set("gone", 5)
    agenda.cancel("gone")
    assert agenda.next() == 50
    assert agenda.pop_due(49) == []
    assert agenda.when("sync") == 50
    assert agenda.pop_due(50) == ["sync"]
    assert agenda.next() is None


def test_jobs_due_at_the_same_time_keep_the_order_they_were_set_in() -> None:
    agenda: Agenda[int] = Agenda()
    for key in (3, 1, 2):
        agenda.set(key, 7)
    assert agenda.pop_due(7) == [3, 1, 2]
