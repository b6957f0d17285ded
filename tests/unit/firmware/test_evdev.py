"""A key from evdev records: recorded event streams, byte for byte as the kernel writes them.

A keyboard writes more than the key's own down and up: scan codes (EV_MSC), other keys,
auto-repeat every 33 ms while held, a SYN_REPORT after each packet, and now and then a
SYN_DROPPED when the reader fell behind. These streams are what the decoder must turn into the
key's edges, with the kernel's stamps.
"""

from __future__ import annotations

import struct

import pytest

from firmware.evdev import (
    EV_KEY,
    EV_SYN,
    EVIOCSCLOCKID,
    INPUT_EVENT,
    SYN_DROPPED,
    SYN_REPORT,
    EvdevError,
    KeyDecoder,
    KeyEdge,
    encode,
    eviocgbit,
    key_code,
)

SPACE, KEY_A = 57, 30
EV_MSC, MSC_SCAN = 0x04, 0x04
MS = 1_000_000
T = 1_700_000_000 * 1_000_000_000  # a realistic CLOCK_REALTIME second count


def packet(at: int, code: int, value: int) -> list[tuple[int, int, int, int]]:
    """What a USB keyboard sends for one key change: scan code, key, report."""
    return [(at, EV_MSC, MSC_SCAN, 0x7002C), (at, EV_KEY, code, value), (at, EV_SYN, SYN_REPORT, 0)]


def test_the_record_layout_is_the_kernels() -> None:
    # struct input_event: a timeval of two native longs, u16 type, u16 code, s32 value.
    assert INPUT_EVENT.size == 2 * struct.calcsize("l") + 8
    assert INPUT_EVENT.size in (16, 24)
    # _IOW('E', 0xa0, int) and _IOR('E', 0x20 + EV_KEY, len), as linux/ioctl.h builds them.
    assert EVIOCSCLOCKID == 0x400445A0
    assert eviocgbit(EV_KEY, 96) == 0x80604521


def test_a_press_and_release_among_other_events_are_two_edges_with_the_kernels_stamps() -> None:
    stream = encode(
        packet(T, KEY_A, 1)  # another key: not ours
        + packet(T + 5 * MS, SPACE, 1)
        + packet(T + 40 * MS, SPACE, 2)  # auto-repeat while held
        + packet(T + 73 * MS, SPACE, 2)
        + packet(T + 120 * MS + 7_000, SPACE, 0)
        + packet(T + 130 * MS, KEY_A, 0)
    )
    edges = KeyDecoder(SPACE).feed(stream)
    assert edges == [KeyEdge(True, T + 5 * MS), KeyEdge(False, T + 120 * MS + 7_000)]


@pytest.mark.parametrize("chunk", [1, 5, 7, INPUT_EVENT.size - 1, INPUT_EVENT.size + 3])
def test_reads_that_end_inside_a_record_lose_nothing(chunk: int) -> None:
    stream = encode(packet(T, SPACE, 1) + packet(T + 90 * MS, SPACE, 0))
    decoder = KeyDecoder(SPACE)
    edges = [e for i in range(0, len(stream), chunk) for e in decoder.feed(stream[i : i + chunk])]
    assert edges == [KeyEdge(True, T), KeyEdge(False, T + 90 * MS)]


def test_after_dropped_events_nothing_counts_until_the_report_which_counts_as_a_release() -> None:
    stream = encode(
        [
            *packet(T, SPACE, 1),
            (T + 10 * MS, EV_SYN, SYN_DROPPED, 0),
            (T + 11 * MS, EV_KEY, SPACE, 1),
            (T + 12 * MS, EV_SYN, SYN_REPORT, 0),
            *packet(T + 200 * MS, SPACE, 1),
        ]
    )
    assert KeyDecoder(SPACE).feed(stream) == [
        KeyEdge(True, T),
        KeyEdge(False, T + 12 * MS),  # the up may have been lost in the overflow
        KeyEdge(True, T + 200 * MS),
    ]


def test_key_names_are_the_keyboard_packages() -> None:
    assert key_code("space") == SPACE
    assert key_code("A") == KEY_A
    assert key_code("enter") == 28
    assert key_code("1") == 2
    assert key_code("0") == 11
    with pytest.raises(EvdevError, match="the key 'f13' is not one the keyboard input knows"):
        key_code("f13")
