"""The hub lifts its open-files soft limit so that an event with a thousand nodes fits."""

from __future__ import annotations

import resource
import subprocess
import sys

SCRIPT = """
import resource
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
