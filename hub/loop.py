"""Which event loop runs the hub: uvloop when it is installed, asyncio's own otherwise.

uvloop (``pip install buzzer-beater[fast]``) is a drop-in replacement for asyncio's loop, built on
libuv: it cut the hub's burst time by a fifth to a third and its idle CPU by a tenth in the
benchmarks, which matters most on a Raspberry Pi. Nothing in the hub depends on it. ``BUZZER_LOOP``
(``asyncio`` or ``uvloop``) picks one explicitly, for tests and for comparing the two.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from wire.errors import BuzzerError

T = TypeVar("T")
LOOP_ENV = "BUZZER_LOOP"
LOOPS = ("asyncio", "uvloop")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopError(BuzzerError):
    """The event loop asked for cannot be had."""


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def chosen(environ: dict[str, str] | None = None) -> str:
    """The loop to use: ``BUZZER_LOOP`` if set, else uvloop when installed."""
    wanted = (environ if environ is not None else dict(os.environ)).get(LOOP_ENV, "").strip()
    if wanted and wanted not in LOOPS:
        raise LoopError(f"{LOOP_ENV}={wanted!r}: use one of {', '.join(LOOPS)}")
    if wanted == "uvloop" and not uvloop_installed():
        raise LoopError(
            f"{LOOP_ENV}=uvloop but uvloop is not installed: pip install 'buzzer-beater[fast]'"
        )
    return wanted or ("uvloop" if uvloop_installed() else "asyncio")


def factory(name: str) -> LoopFactory:
    """A new-loop function for ``name`` (one of :data:`LOOPS`)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: str | None = None) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory(name or chosen())) as runner:
        return runner.run(main)
