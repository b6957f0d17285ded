"""The real hub with its game bypassed: a measurement of its network side alone.

    .venv/bin/python bench/bare_hub.py --host 127.0.0.1 --port 0 --memory-only ...

Never a product and never a test. It runs the hub exactly as ``python -m hub`` does (its server,
guard, connection class, log, the WebSocket library, its event loop), except that a tutorial
client's ``buzz`` is answered the classic server's way, by arrival (the first since the round
was armed hears ``First place!``), and goes no further: no join, no ranking, no adjudication
wait, no journal, no event. Every other frame reaches the real core, so a host can still arm.

Side by side with the hub and the classic server in ``bench/run.py``'s plain-client burst, it
splits what the hub spends per press into its network path (this) and its game (the rest).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this repository's hub, not another installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub import cli
from hub.core.machine import HubCore
from hub.core.outputs import LinkId, Output, Send
from wire import plain


def bypass_the_game() -> None:
    """Answer every ``buzz`` at once, by arrival, and hand every other frame to the core."""
    to_the_game = HubCore.receive
    first: dict[int, int] = {}  # round number -> its first buzz's arrival

    def receive(
        self: HubCore, link: LinkId, frame: str | bytes, now: int, *times: int | None
    ) -> list[Output]:
        if frame != plain.BUZZ:
            return to_the_game(self, link, frame, now, *times)
        self._hellos.cancel(link)  # it spoke: no hello deadline closes it, as in the real hub
        arrived = times[0] if times and times[0] is not None else now  # as read, if earlier
        earliest = first.get(self.engine.number)
        if earliest is None:
            first[self.engine.number] = arrived
            return [Send(link, plain.FIRST_PLACE)]
        return [Send(link, plain.slower(arrived - earliest))]

    HubCore.receive = receive  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    bypass_the_game()
    cli.main()
