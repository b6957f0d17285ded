"""The command line: ``check-config``, and the open-files limit it lifts so that an event with a
thousand nodes fits. (Running a hub from it is tested end to end in tests/integration.)"""

from __future__ import annotations

import io
import logging
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hub import cli

SCRIPT = """
import io
import logging
import resource
import threading
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from hub.cli import raise_open_files_limit
reported = raise_open_files_limit()
print(reported, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # In a child process: the test runner's own limit stays as it was.
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    reported, soft = (int(x) for x in out.stdout.split())
    assert soft == reported
    if hard == resource.RLIM_INFINITY:
        assert soft >= 256
    else:
        assert soft == hard > 256


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "[server]\nport = 9000\n")
    assert cli.main(["check-config", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    bad = write(tmp_path, "[server]\nprot = 9000\n")
    assert cli.main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"buzzer-hub: {bad}:2: [server] prot: unknown key")
    assert err.count("\n") == 1


def test_a_stalled_stderr_never_holds_up_whoever_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop logs; writing can block (journald behind a slow card, an undrained pipe).
    Lines go out from a thread of their own, and every one is written by the end."""

    class Stalled(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.go = threading.Event()

        def write(self, text: str) -> int:
            assert self.go.wait(10), "never let through"
            return super().write(text)

    stderr = Stalled()
    monkeypatch.setattr(sys, "stderr", stderr)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in the hub's own process
    monkeypatch.setattr(root, "level", logging.WARNING)
    with cli.logging_to_stderr("info"):
        for number in range(3):
            logging.getLogger("hub.test").info("line %d", number)  # returns: nothing waits
        assert stderr.getvalue() == ""
        stderr.go.set()
    lines = stderr.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["line 0", "line 1", "line 2"]
    assert " INFO hub.test: " in lines[0]
    assert root.handlers == []


def test_a_log_line_gathers_only_what_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each record would otherwise look up its caller's frame and ask the kernel for the
    process id; the hub's lines show neither, and the process's settings come back after."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    before = logging._srcfile, logging.logProcesses, logging.logThreads
    seen: list[logging.LogRecord] = []
    logger = logging.getLogger("hub.test")
    monkeypatch.setattr(logger, "filters", [seen.append])
    with cli.logging_to_stderr("info"):
        logger.info("a line")
    assert [(r.process, r.thread, r.funcName) for r in seen] == [(None, None, "(unknown function)")]
    assert (logging._srcfile, logging.logProcesses, logging.logThreads) == before
