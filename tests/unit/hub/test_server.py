"""The server times the core's round-trip pings itself: from just before a ping is written to the
moment its pong's frame is read. Frames are fed to a connection here, with no socket, and the
clock is the test's."""

from __future__ import annotations

import logging

import pytest
from websockets.asyncio.messages import Assembler
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from hub import server
from hub.backlog import Backlog
from hub.server import PONG_TIMEOUT_NS, GuardedConnection

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * MS

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(server.time, "monotonic_ns", fake)
    return fake


async def connection(taken: list[tuple[int, int, int]]) -> GuardedConnection:
    """A connection past its handshake, link 7, whose round trips land in ``taken`` (made in a
    coroutine: a connection belongs to the running loop)."""
    ws = GuardedConnection(ServerProtocol(), None)  # type: ignore[arg-type]
    ws.request = object()  # type: ignore[assignment]  # past the handshake: frames from now on
    ws.link = 7
    ws.on_round_trip = lambda link, rtt, now: taken.append((link, rtt, now))
    return ws


def pong(payload: bytes) -> Frame:
    return Frame(Opcode.PONG, payload)


async def test_a_pong_gives_the_round_trip_to_the_nanosecond_once(clock: Clock) -> None:
    taken: list[tuple[int, int, int]] = []
    ws = await connection(taken)
    ws.expect_pong(b"ping-one", clock.now)
    clock.now += 345_678  # a third of a millisecond: uvloop's clock would say 0 or 1 ms
    ws.process_event(pong(b"ping-one"))
    assert taken == [(7, 345_678, clock.now)]
    clock.now += MS
    ws.process_event(pong(b"ping-one"))  # the same pong again: no second sample
    ws.process_event(pong(b"unknown!"))  # nothing the hub sent (or the keepalive's own)
    assert len(taken) == 1


async def test_a_pong_later_than_the_timeout_is_no_sample_and_old_pings_are_forgotten(
    clock: Clock,
) -> None:
    taken: list[tuple[int, int, int]] = []
    ws = await connection(taken)
    ws.expect_pong(b"slow-one", clock.now)
    clock.now += PONG_TIMEOUT_NS + 1
    ws.process_event(pong(b"slow-one"))
    assert taken == []
    for n in range(100):  # a peer that never answers: the pings out stay a handful
        ws.expect_pong(n.to_bytes(8, "big"), clock.now)
        clock.now += PONG_TIMEOUT_NS // 4
    assert len(ws._round_trips) <= 5
    ws.process_event(pong((99).to_bytes(8, "big")))  # the latest is still timed
    assert taken == [(7, PONG_TIMEOUT_NS // 4, clock.now)]


async def test_a_fault_taking_a_round_trip_does_not_cost_the_link(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await connection([])

    def broken(link: int, rtt: int, now: int) -> None:
        raise RuntimeError("a bug")

    ws.on_round_trip = broken
    ws.expect_pong(b"ping-two", clock.now)
    clock.now += MS
    with caplog.at_level(logging.ERROR, logger="hub"):
        ws.process_event(pong(b"ping-two"))  # does not raise into the library's reader
    assert any("round trip of link 7 not taken" in r.getMessage() for r in caplog.records)


async def test_each_message_is_stamped_when_its_last_frame_was_read(clock: Clock) -> None:
    ws = await connection([])
    ws.recv_messages = Assembler()  # where the messages queue (as a real connection makes it)
    ws.process_event(Frame(Opcode.TEXT, b"sync reply"))
    read_first = clock.now
    clock.now += MS
    ws.process_event(Frame(Opcode.TEXT, b'{"type":', fin=False))  # a fragmented message
    clock.now += MS
    ws.process_event(Frame(Opcode.PING, b"keep"))  # control frames are no message of their own
    ws.process_event(pong(b"none"))
    clock.now += MS
    ws.process_event(Frame(Opcode.CONT, b'"press"}'))
    read_second = clock.now
    clock.now += 10 * MS  # the loop handles them later, one after the other
    assert [await ws.recv(), ws.arrived_ns()] == ["sync reply", read_first]
    assert [await ws.recv(), ws.arrived_ns()] == ['{"type":"press"}', read_second]
    assert ws.arrived_ns() is None  # nothing read that was not taken


async def test_the_backlog_waits_for_every_message_read_until_it_is_taken_or_dropped(
    clock: Clock,
) -> None:
    backlog = Backlog()
    first, second = await connection([]), await connection([])
    for ws in (first, second):
        ws.backlog = backlog
        ws.recv_messages = Assembler()
        ws.protocol.state = State.OPEN
    first.process_event(Frame(Opcode.TEXT, b"press"))
    read_first = clock.now
    clock.now += MS
    second.process_event(Frame(Opcode.TEXT, b"sync reply"))
    second.process_event(Frame(Opcode.TEXT, b"another"))
    assert backlog.settled_ns(0) == read_first
    await second.recv()
    second.arrived_ns()  # handled before the first connection's: the first still holds it
    assert backlog.settled_ns(0) == read_first
    await first.recv()
    first.arrived_ns()
    assert backlog.settled_ns(0) == read_first + MS  # second's other message still waits
    second.drop_unread()  # its connection ended: it never will be handled
    assert backlog.settled_ns(0) is None


async def test_messages_sent_ahead_of_the_handshake_or_after_the_end_hold_nothing(
    clock: Clock,
) -> None:
    """Frames pipelined behind an upgrade request are parsed before the hub answers it, and
    the answer may be a refusal: the server's task never takes them."""
    backlog = Backlog()
    ws = await connection([])
    ws.backlog = backlog
    ws.recv_messages = Assembler()
    ws.process_event(Frame(Opcode.TEXT, b"ahead of the handshake"))  # still connecting
    assert backlog.settled_ns(0) is None
    ws.protocol.state = State.OPEN
    ws.process_event(Frame(Opcode.TEXT, b"press"))
    assert backlog.settled_ns(0) == clock.now
    ws.drop_unread()  # the connection's task ended by a fault, the connection still open
    assert backlog.settled_ns(0) is None
