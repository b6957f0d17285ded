"""The player station: its inputs, LED and buzzer, its link to the hub, and a log of what happened.

A :class:`Node` puts the parts together: the pure core that decides
(:class:`firmware.state.NodeState`: the round as seen here, the outbox, what to show and say),
the link that connects and carries the core's decisions out (:class:`firmware.link.Link`), the
press sources (:mod:`firmware.inputs`) and the LED and buzzer (:mod:`firmware.feedback`). It
lights the LED at the release instant the hub gives in this node's own clock, sends presses and
shows their results; presses made while the hub is away wait in the outbox and are re-sent with
their original timestamps.

Every timestamp the node produces (press instants, sync ``t1``/``t2``, release scheduling) comes
from the one ``clock`` given to the constructor (default :func:`time.monotonic_ns`). A test can give
a node any offset, e.g. ``clock=lambda: time.monotonic_ns() + 3_000_000_000``, and the hub's sync
must absorb it.

For tests and tools the node keeps a log of what happened, as :data:`NodeEvent` values, and lets a
caller wait for one instead of sleeping::

    node = Node(config, clock=clock, console=lines.append)
    task = asyncio.create_task(node.run())
    await node.wait_for(Connected)
    mark = node.mark()                      # only events after this point
    node.press(clock(), "gpio")             # or drive a real (or mock) button pin
    result = await node.wait_for(Resulted, after=mark)
    node.stop(); await task

Events (:mod:`firmware.events`): :class:`Connected`, :class:`Disconnected`, :class:`Refused`,
:class:`RoundChanged`, :class:`Released`, :class:`Pressed`, :class:`Sent`, :class:`Acked`,
:class:`Resulted`, :class:`SyncAnswered`, :class:`HubSaid`, :class:`LedPattern` (LED and buzzer
patterns), :class:`HubFound` (with ``hub = "auto"``), :class:`InputProblem` (an input or output
that could not be opened, or stopped working).
``run()`` returns after ``stop()`` and raises :class:`NodeFatal` when retrying cannot help (a
protocol version mismatch, a malformed hub address).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from firmware.config import NodeConfig
from firmware.events import (
    Acked,
    Connected,
    Disconnected,
    HubFound,
    HubSaid,
    InputProblem,
    LedPattern,
    NodeEvent,
    Pressed,
    Refused,
    Released,
    Resulted,
    RoundChanged,
    Sent,
    SyncAnswered,
)
from firmware.feedback import Feedback, open_switches
from firmware.inputs import InputError, PressSource, open_inputs
from firmware.link import Finder, Link, LocalAddresses, NodeFatal
from firmware.outbox import Outbox
from firmware.patterns import SETUP_ERROR
from firmware.state import MS, NodeState, Setup
from wire.enums import InputKind

__all__ = [
    "Acked",
    "Connected",
    "Disconnected",
    "HubFound",
    "HubSaid",
    "InputProblem",
    "LedPattern",
    "Node",
    "NodeEvent",
    "NodeFatal",
    "Pressed",
    "Refused",
    "Released",
    "Resulted",
    "RoundChanged",
    "Sent",
    "SyncAnswered",
]

Clock = Callable[[], int]
EVENT_LOG_SIZE = 10_000
E = TypeVar("E", bound=NodeEvent)


def print_line(line: str) -> None:
    print(line, flush=True)


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        clock: Clock = time.monotonic_ns,
        console: Callable[[str], None] = print_line,
        pin_factory: Any = None,
        rng: random.Random | None = None,
        boot: str | None = None,
        finder: Finder | None = None,
        local: LocalAddresses | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        """``on_open``: called once the station's inputs and outputs are open, before it first
        connects (the station's command freezes its start-up heap then)."""
        self.config = config
        self.on_open = on_open
        self.clock = clock
        self.console = console
        self.pin_factory = pin_factory
        self.id = config.node_id
        self.name = config.display_name
        setup = Setup(
            node_id=self.id,
            name=self.name,
            token=config.node.token,
            hub_name=config.node.hub_name,
            resync_flush_ns=round(config.connection.resync_flush_ms * MS),
            # A button's press counts once held confirm_ms: the hub waits that much longer.
            press_lead_ns=round(config.gpio.confirm_ms * MS) if "gpio" in config.node.inputs else 0,
        )
        self.state = NodeState(setup, boot)
        self.link = Link(
            config,
            self.state,
            clock=clock,
            say=console,
            log=self._emit,
            finder=finder,
            local=local,
            rng=rng,
        )
        self._log: deque[tuple[int, NodeEvent]] = deque(maxlen=EVENT_LOG_SIZE)
        self._seq = 0
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.feedback: Feedback | None = None
        self.sources: list[PressSource] = []

    @property
    def outbox(self) -> Outbox:
        return self.state.outbox

    @property
    def url(self) -> str:
        """The hub's address: the configured one, or the last one found on the LAN."""
        return self.link.url

    @property
    def discovering(self) -> bool:
        return self.link.discovering

    # --- the test and tool API ---

    def mark(self) -> int:
        """A position in the event log: pass it as ``after`` to see only later events."""
        return self._seq

    def events(self, after: int = 0) -> list[NodeEvent]:
        return [event for seq, event in self._log if seq >= after]

    async def wait_for(
        self,
        kind: type[E],
        match: Callable[[E], bool] | None = None,
        *,
        timeout: float = 5.0,
        after: int = 0,
    ) -> E:
        """The first event of ``kind`` (matching ``match``) logged at or after ``after``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for seq, event in list(self._log):
                        wanted = seq >= after and isinstance(event, kind)
                        if wanted and (match is None or match(event)):  # type: ignore[arg-type]
                            return event  # type: ignore[return-value]
                    if self._wake is None:
                        self._wake = asyncio.Event()
                    await self._wake.wait()
        except TimeoutError:
            recent = ", ".join(type(e).__name__ for e in self.events(after)[-12:])
            raise TimeoutError(
                f"node {self.id}: no {kind.__name__} within {timeout} s; recent: {recent}"
            ) from None

    def _emit(self, event: NodeEvent) -> None:
        self._log.append((self._seq, event))
        self._seq += 1
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    # --- running ---

    async def run(self) -> None:
        """Open inputs and outputs, then stay connected until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        self._stopping = False
        led, buzzer, problems = open_switches(self.config, self.console, self.pin_factory)
        self.feedback = Feedback(led, buzzer, lambda name: self._emit(LedPattern(name)))
        self.link.feedback = self.feedback
        try:
            try:
                opened = open_inputs(
                    self.config,
                    loop,
                    self.clock,
                    self.press,
                    self.console,
                    self.pin_factory,
                    on_terminal_eof=self._terminal_closed,
                    on_problem=self._input_failed,
                )
            except InputError:
                await self._show_setup_error()
                raise
            self.sources = opened.sources
            if self.on_open is not None:
                try:
                    self.on_open()
                except Exception as exc:  # what it does is for speed only: carry on without
                    self.console(f"Start-up step skipped ({type(exc).__name__}: {exc}).")
            for problem in problems + opened.problems:
                self._emit(InputProblem(problem))
            if problems or opened.problems:
                now = self.clock()
                self.link.carry(self.state.setup_problem(now, True), now)
            # The source actually in use (a keyboard may have fallen back to the terminal): the
            # hub sets its timestamp uncertainty by it.
            primary = self.sources[0].kind if self.sources else self.config.node.inputs[0]
            self._main = asyncio.create_task(self.link.run(InputKind(primary)))
            try:
                await self._main
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
        finally:
            for source in self.sources:
                source.close()
            self.sources = []
            self.link.feedback = None
            self.feedback.close()

    def stop(self) -> None:
        self._stopping = True
        if self._main is not None:
            self._main.cancel()

    def _input_failed(self, line: str) -> None:
        """A source that was working failed (a keyboard unplugged): say so, and the LED too."""
        self.console(line)
        self._emit(InputProblem(line))
        now = self.clock()
        self.link.carry(self.state.setup_problem(now, True), now)

    async def _show_setup_error(self) -> None:
        """No input opened and the node is about to stop: one round of the setup-error pattern
        first, so a box with no screen says what is wrong before it restarts."""
        if self.feedback is None or self.feedback.led is None:
            return
        mark = self.mark()
        self.feedback.show(SETUP_ERROR)
        with contextlib.suppress(TimeoutError):
            await self.wait_for(
                LedPattern, lambda e: e.name == f"{SETUP_ERROR.name}:cycle", after=mark, timeout=3
            )

    def _terminal_closed(self) -> None:
        self.console("The terminal closed; stopping.")
        self.stop()

    def press(self, at_ns: int, source: str) -> None:
        """A press made at ``at_ns`` (this node's clock); call on the loop thread."""
        self.link.carry(self.state.press(at_ns, source), at_ns)
