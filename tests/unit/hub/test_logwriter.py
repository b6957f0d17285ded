"""The log writer: lines from any thread, written in batches off the caller's thread, every one
by the end, and a broken stderr costs lines, not the hub."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from hub.logwriter import BatchedLineWriter


class Gated(io.StringIO):
    """A stream whose writes wait for ``go``; counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.writes = 0
        self.tried = threading.Event()

    def write(self, text: str) -> int:
        self.tried.set()
        assert self.go.wait(10), "never let through"
        self.writes += 1
        return super().write(text)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("hub.test", logging.INFO, __file__, 1, message, None, None)


def test_a_burst_of_lines_is_written_in_a_batch_not_line_by_line() -> None:
    stream = Gated()
    writer = BatchedLineWriter(stream, gather_s=0)

    def burst(name: str) -> None:
        for number in range(100):
            writer.handle(record(f"{name} {number}"))

    writer.handle(record("first"))
    assert stream.tried.wait(10)  # the writer holds a batch and waits on the stream
    threads = [threading.Thread(target=burst, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # whoever logs never waits for the stream
    stream.go.set()
    writer.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "first"
    assert sorted(lines[1:]) == sorted(f"{n} {i}" for n in ("a", "b") for i in range(100))
    for name in ("a", "b"):
        assert [line for line in lines if line.startswith(name)] == [
            f"{name} {i}" for i in range(100)
        ]
    assert stream.writes == 2  # the line that woke the writer, then everything that gathered


@pytest.mark.parametrize(
    "failure",
    [BrokenPipeError("stderr's reader is gone"), AttributeError("no stderr at all (2>&-)")],
)
def test_a_write_that_fails_loses_its_batch_and_the_writer_goes_on(failure: Exception) -> None:
    class Broken(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.failed = threading.Event()

        def write(self, text: str) -> int:
            if not self.failed.is_set():
                self.failed.set()
                raise failure
            return super().write(text)

    stream = Broken()
    writer = BatchedLineWriter(stream, gather_s=0)
    writer.handle(record("lost"))
    assert stream.failed.wait(10)
    writer.handle(record("kept"))
    writer.close()
    assert stream.getvalue() == "kept\n"


def test_a_line_logged_inside_the_writers_own_lock_does_not_deadlock() -> None:
    """The collector may run a finalizer that logs in the middle of an emit, on that thread."""
    stream = io.StringIO()
    writer = BatchedLineWriter(stream, gather_s=0)

    def nested() -> None:
        with writer._waiting:  # as if an emit were interrupted by the finalizer
            writer.handle(record("from a finalizer"))

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the nested line waited on its own thread's lock"
    writer.close()
    assert stream.getvalue() == "from a finalizer\n"
