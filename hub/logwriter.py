"""Log lines written off the event loop, a batch at a time.

The loop must never wait on stderr (journald behind a slow SD card, a pipe its reader drains
late), so lines are written by a thread of their own. Handing that thread each line as it
comes (as :class:`logging.handlers.QueueListener` does) costs more than the line: each one wakes
the thread, which then takes the interpreter lock from the loop for a write of its own, and on a
busy machine the loop can wait milliseconds for a thread that is not even running. Lines come
in bursts (a thousand tutorial clients joining at their first ``buzz``, a room reconnecting
after the hub restarts), so here a line only joins a list, formatted once on the caller's
thread; the writer wakes once for whatever gathers within :data:`GATHER_S` and writes it in one
call.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

#: How long the writer lets lines gather after the first of a batch: a burst of events is one
#: write, and a line reaches stderr at most this much later (its time stamp is when it was
#: logged).
GATHER_S = 0.02


class BatchedLineWriter(logging.Handler):
    """A handler that formats on the caller's thread and writes from its own, in batches.

    Every line handed in is written by the time :meth:`close` returns. A write that fails
    (stderr closed, or none at all) loses that batch, not the hub nor the lines after it.
    """

    def __init__(self, stream: TextIO, gather_s: float = GATHER_S) -> None:
        super().__init__()
        self._stream = stream
        self._gather_s = gather_s
        self._lines: list[str] = []
        # Re-entrant: a finalizer the collector runs inside this lock may log (asyncio's
        # "Task was destroyed but it is pending!"), and must not wait on its own thread.
        self._waiting = threading.Condition(threading.RLock())
        self._closing = False
        self._thread = threading.Thread(target=self._write_batches, name="log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._waiting:
            self._lines.append(line)
            if len(self._lines) == 1:  # the writer may be asleep: only the first line wakes it
                self._waiting.notify()

    def close(self) -> None:
        """Write what is left, then stop the writer."""
        with self._waiting:
            self._closing = True
            self._waiting.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()
        super().close()

    def _write_batches(self) -> None:
        while True:
            with self._waiting:
                while not self._lines and not self._closing:
                    self._waiting.wait()
                closing = self._closing
            if not closing:
                time.sleep(self._gather_s)  # let the rest of a burst join this batch
            with self._waiting:
                batch, self._lines = self._lines, []
                closing = self._closing
            if batch:
                self._write(batch)
            if closing and not batch:
                return

    def _write(self, batch: list[str]) -> None:
        try:
            self._stream.write("\n".join(batch) + "\n")
            self._stream.flush()
        except Exception:
            # stderr gone (closed, a broken pipe, none at all): nowhere to say so, and the
            # writer must live on, or every later line would pile up in memory unwritten.
            pass
