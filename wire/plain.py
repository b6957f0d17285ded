"""The plain-text protocol of the classic ``websockets`` buzzer tutorial, byte for byte.

Its clients send the text ``buzz`` to press and anything else as their name, and parse nothing
but the exact replies below; docs/protocol.md section 11 is the reference. A connection whose
first frame is not JSON speaks this for the rest of its life.
"""

from __future__ import annotations

from typing import Final

#: A bare text frame ``buzz`` is a press; any other bare text is a name.
BUZZ: Final = "buzz"
FIRST_PLACE: Final = "First place!"
TOO_EARLY: Final = "Too early!"
ROUND_CLOSED: Final = "Round closed."
BINARY_HINT: Final = "Send text: buzz to press, anything else to set your name."


def speaks_json(first_frame: str) -> bool:
    """A first frame starting with ``{`` speaks protocol v1; anything else speaks the tutorial's."""
    return first_frame.lstrip().startswith("{")


def slower(behind_ns: int) -> str:
    """Seconds behind the winner, rounded to 2 decimals as Python prints ``round(s, 2)``."""
    return f"Response time: {round(behind_ns / 1e9, 2)} sec slower."


def hello(name: str) -> str:
    """The greeting: the frame echoed exactly."""
    return f"Hello {name}!"
