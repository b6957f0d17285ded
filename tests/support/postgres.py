"""A PostgreSQL server of the test's own: Debian's binaries, a data directory made for it, on
127.0.0.1 and a free port only, stopped and removed when the test is done.

Never the machine's own cluster: ``initdb`` into a fresh directory, ``pg_ctl start`` with
``listen_addresses`` set to loopback alone and the Unix socket inside that directory. PostgreSQL
refuses to run as root, so when the tests run as root (CI does) the server runs as the
``postgres`` user Debian's package creates, via ``runuser``. The superuser has a password, and
connections over TCP must give it (scram-sha-256), as a real tournament's server would ask.

``.ci/run`` installs the binaries from Debian's packages when they are missing; without them the
tests that need a server are skipped with a message saying what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "buzzer"
DATABASE = "tournament"
#: The system account the server runs as when the tests run as root.
SERVICE_ACCOUNT = "postgres"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    versions.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing() -> str | None:
    """Why no server can be started here (None: one can)."""
    if binaries() is None:
        return "PostgreSQL is not installed: apt-get install postgresql (.ci/run does)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            return f"running as root, and there is no {SERVICE_ACCOUNT} user to run PostgreSQL"
        if shutil.which("runuser") is None:
            return "running as root, and runuser is missing (util-linux)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    directory: Path
    port: int
    password: str
    bin: Path

    @property
    def url(self) -> str:
        """The address as a room hub's config gives it: no password in it."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = list(command)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SERVICE_ACCOUNT, "--", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")

    def start(self) -> None:
        pwfile = self.directory / "pw"
        pwfile.write_text(self.password + "\n")
        self._check(
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            "initdb",
        )
        pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory} -c fsync=off "
            "-c max_connections=50 -c shared_buffers=16MB"
        )
        self._check(
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            "pg_ctl start",
        )
        self._check(
            self._run(
                str(self.bin / "createdb"),
                "-h",
                str(self.directory),
                "-p",
                str(self.port),
                "-U",
                USER,
                DATABASE,
            ),
            "createdb",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "server.log").read_text()[-4000:]
        return ""


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the block, then stopped and its directory removed."""
    bin_dir = binaries()
    assert bin_dir is not None, missing()
    directory = Path(tempfile.mkdtemp(prefix="buzzer-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVICE_ACCOUNT)
        os.chown(directory, account.pw_uid, account.pw_gid)
    directory.chmod(0o700)
    server = PostgresServer(directory, _free_port(), secrets.token_hex(12), bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def server_or_skip() -> None:
    """Skip (or, under CI, fail) a test that needs PostgreSQL where none can be started."""
    import pytest

    why = missing()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the tournament tests")
    pytest.skip(why)
