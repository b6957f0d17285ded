"""The tutorial's plain-text protocol: which first frames speak JSON instead.

The replies themselves, byte for byte, are tested through the hub core
(tests/unit/hub/core/test_machine.py) and over sockets (tests/integration/test_tutorial_clients.py).
"""

from __future__ import annotations

from wire import plain


def test_only_frames_starting_with_a_brace_speak_json() -> None:
    assert plain.speaks_json('  {"type": "hello"}')
    assert not plain.speaks_json("buzz")
    assert not plain.speaks_json("[1]")
