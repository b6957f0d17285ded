"""The edge handoff: one physical press is one press, whatever the contacts, the key repeat or
the thread the device calls back on."""

from __future__ import annotations

import asyncio
import threading

from firmware.handoff import Handoff, PressGuard

MS = 1_000_000


# --- the guard's rules, with exact timestamps ---


def test_a_bounce_storm_on_press_is_one_press() -> None:
    guard = PressGuard(quiet_ns=50 * MS)
    start = 10_000 * MS
    presses = 0
    for i in range(40):  # 80 edges within 4 ms
        presses += guard.edge(start + i * 100_000, active=True)
        presses += guard.edge(start + i * 100_000 + 50_000, active=False)
    assert presses == 1


def test_bounce_on_release_after_a_long_hold_is_not_a_press() -> None:
    guard = PressGuard(quiet_ns=50 * MS)
    assert guard.edge(0, active=True)
    assert not guard.edge(500 * MS, active=False)  # released after half a second
    assert not guard.edge(500 * MS + 200_000, active=True)  # release bounce
    assert not guard.edge(500 * MS + 400_000, active=False)
    assert guard.edge(900 * MS, active=True)  # a real second press later on


def test_keyboard_auto_repeat_downs_are_one_press_until_the_key_is_up() -> None:
    guard = PressGuard(quiet_ns=30 * MS)
    downs = [guard.edge(t * MS, active=True) for t in (0, 500, 533, 566, 600, 633)]
    assert downs == [True, False, False, False, False, False]
    assert not guard.edge(700 * MS, active=False)
    assert guard.edge(800 * MS, active=True)


def test_terminal_repeats_never_count_while_the_key_is_held() -> None:
    guard = PressGuard(quiet_ns=700 * MS)
    # First character, then the terminal's auto-repeat after 500 ms, then every 33 ms.
    times = [0, 500] + [500 + 33 * i for i in range(1, 30)]
    assert [guard.tap(t * MS) for t in times].count(True) == 1
    assert guard.tap((times[-1] + 701) * MS)  # a fresh press after the key was let go


# --- the handoff: stamp, cross to the loop, guard, sink ---


class Presses:
    """The node's sink: records presses and lets a test wait for the loop to have run them."""

    def __init__(self) -> None:
        self.got: list[tuple[int, str]] = []
        self.threads: set[int] = set()

    def __call__(self, at_ns: int, kind: str) -> None:
        self.got.append((at_ns, kind))
        self.threads.add(threading.get_ident())


async def drained(loop: asyncio.AbstractEventLoop) -> None:
    """Everything posted with call_soon_threadsafe before this call has run on the loop."""
    done = asyncio.Event()
    loop.call_soon_threadsafe(done.set)
    await asyncio.wait_for(done.wait(), 5)


async def test_edges_from_another_thread_become_one_press_on_the_loop_stamped_at_the_edge() -> None:
    loop = asyncio.get_running_loop()
    ticks = iter(range(1_000 * MS, 2_000 * MS, 100_000))  # a clock read 100 us apart each time
    sink = Presses()
    handoff = Handoff("gpio", 50 * MS, loop, lambda: next(ticks), sink)

    def bounce_storm() -> None:  # what gpiozero's callback thread does for one bouncy press
        for _ in range(20):
            handoff.edge(True)
            handoff.edge(False)

    thread = threading.Thread(target=bounce_storm)
    thread.start()
    await asyncio.to_thread(thread.join)
    await drained(loop)

    assert sink.got == [(1_000 * MS, "gpio")]  # the first edge's own stamp, not a later one
    assert sink.threads == {threading.get_ident()}  # the node is only ever called on the loop


async def test_a_source_with_its_own_timestamp_keeps_it() -> None:
    """A source that knows the edge instant better (a driver's tick, a kernel event time) passes
    it on; the clock is then not read at all."""
    loop = asyncio.get_running_loop()
    sink = Presses()

    def no_clock() -> int:
        raise AssertionError("the clock must not be read when the source gives the instant")

    handoff = Handoff("gpio", 50 * MS, loop, no_clock, sink)
    handoff.edge(True, at_ns=7 * MS)
    handoff.edge(False, at_ns=90 * MS)
    handoff.edge(True, at_ns=95 * MS)  # 5 ms after the release: bounce, not a press
    handoff.edge(False, at_ns=96 * MS)
    handoff.edge(True, at_ns=200 * MS)
    await drained(loop)

    assert sink.got == [(7 * MS, "gpio"), (200 * MS, "gpio")]


async def test_taps_share_the_guard_and_the_instant_they_are_given() -> None:
    loop = asyncio.get_running_loop()
    sink = Presses()
    handoff = Handoff("terminal", 700 * MS, loop, lambda: 0, sink)
    for _ in range(3):  # three spaces in one read: one instant, one press
        handoff.tap(at_ns=5_000 * MS)
    handoff.tap(at_ns=6_000 * MS)
    await drained(loop)

    assert sink.got == [(5_000 * MS, "terminal"), (6_000 * MS, "terminal")]
