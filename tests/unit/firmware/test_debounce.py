"""Press guard: one physical press is one press, whatever the contacts or the key repeat do."""

from __future__ import annotations

from firmware.debounce import PressGuard

MS = 1_000_000


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
