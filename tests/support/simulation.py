"""The hub core on a simulated network: exact times, no sockets, no sleeps.

A :class:`Net` drives a real :class:`hub.core.machine.HubCore` with a discrete-event clock.
Stations speak the real protocol (frames encoded and decoded by :mod:`wire.codec`) from clocks of
their own (any offset, any drift) over links with any delay in each direction, fixed or drawn
from a seeded generator. Nothing takes time but what a test says takes time, so a fairness rule
holds or fails to the nanosecond, on a loaded machine as on an idle one.

Saving is instant unless ``commit_ns`` says otherwise: a press is acknowledged that long after
its journal step. The simulated hub saves (its storage says so, as a hub with a working disk's
does), so what it tells players waits for those commits.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.config import HubConfig
from hub.core.events import HubEvent
from hub.core.machine import HubCore, Restored
from hub.core.outputs import Broadcast, Close, Notify, Output, Ping, Save, Send, Watch
from hub.journal import RecordingEngine
from tests.conftest import HOST_TOKEN
from wire.messages import StorageView

MS = 1_000_000
S = 1_000_000_000
START_NS = 5_000 * S  # the hub's clock when a simulation begins: any value works
SAVING = StorageView(saving=True, path=None, message="results are saved")

Delay = Callable[[], int]


def fixed(ns: int) -> Delay:
    return lambda: ns


def jittered(base_ns: int, mean_jitter_ns: int, rng: random.Random) -> Delay:
    """A link of ``base_ns`` plus exponential jitter (Wi-Fi-like), drawn from ``rng``."""
    return lambda: (
        base_ns + round(rng.expovariate(1 / mean_jitter_ns)) if mean_jitter_ns else base_ns
    )


@dataclass
class Net:
    core: HubCore
    now: int = START_NS
    commit_ns: int = 0
    # A busy hub handles a frame this long after reading it (plus the station's own
    # ``handled_after_ns``); ``tells_arrival``: whether the core is told when it was read and
    # until when every frame read was handled (as the server does), or neither.
    handling_lag_ns: int = 0
    tells_arrival: bool = True
    _unhandled: list[int] = field(default_factory=list)  # when each frame waiting was read
    events: list[HubEvent] = field(default_factory=list)
    _queue: list[tuple[int, int, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _links: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    stations: dict[int, Station] = field(default_factory=dict)
    watched: set[int] = field(default_factory=set)  # links handed to the kernel's watch

    @classmethod
    def hub(cls, config: HubConfig | None = None, seed: int = 1, **fields: Any) -> Net:
        """A fresh hub (nothing restored) on a simulated network."""
        config = config or HubConfig()
        rules = config.game.apply(config.round.rules())
        restored = Restored(RecordingEngine(rules), storage=SAVING)
        core = HubCore(config, HOST_TOKEN, restored, random.Random(seed))
        net = cls(core, **fields)
        net.carry(core.start(net.now))
        return net

    # --- the clock ---

    def at(self, when: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def run_until(self, until: int) -> None:
        """Everything that happens up to ``until``, in time order: deliveries and core wake-ups."""
        while True:
            wake = self.core.next_wakeup()
            due = self._queue[0][0] if self._queue else None
            if due is not None and (wake is None or due <= wake):
                if due > until:
                    break
                when, _, action = heapq.heappop(self._queue)
                self.now = max(self.now, when)
                action()
            elif wake is not None and wake <= until:
                self.now = max(self.now, wake)
                self.carry(self.core.timer(self.now, self.settled_ns()))
            else:
                break
        self.now = max(self.now, until)

    def run_for(self, ns: int) -> None:
        self.run_until(self.now + ns)

    # --- the core's outputs ---

    def carry(self, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case Send(link=link, frame=frame):
                    self._deliver(link, frame)
                case Broadcast(links=links, frame=frame):
                    for link in links:
                        self._deliver(link, frame)
                case Close(link=link, code=code):
                    station = self.stations.get(link)
                    if station is not None:
                        station.closed = int(code)
                        self.at(self.now, lambda link=link: self._disconnect(link))
                case Ping(link=link):
                    station = self.stations.get(link)
                    if station is not None:
                        rtt = station.down() + station.pong_hold_ns + station.up()
                        self.at(self.now + rtt, lambda link=link, rtt=rtt: self._pong(link, rtt))
                case Save(ticket=ticket):
                    if ticket is not None:
                        done = self.now + self.commit_ns
                        self.at(
                            done,
                            lambda ticket=ticket: self.carry(self.core.saved(ticket, self.now)),
                        )
                case Watch(link=link):
                    self.watched.add(link)
                case Notify(event=event):
                    self.events.append(event)

    def _deliver(self, link: int, frame: str) -> None:
        station = self.stations.get(link)
        if station is not None and station.closed is None:
            self.at(self.now + station.down(), lambda: station.receive(frame))

    def _pong(self, link: int, rtt: int) -> None:
        self.carry(self.core.pong(link, rtt, self.now))

    def _disconnect(self, link: int) -> None:
        self.carry(self.core.disconnect(link, "closed", self.now))

    def new_link(self, station: Station) -> int:
        link = next(self._links)
        self.stations[link] = station
        self.carry(self.core.connect(link, f"sim:{link}", None, self.now))
        return link

    def settled_ns(self) -> int | None:
        """When the oldest frame read and not yet handled was read (None: none waits), none
        read longer ago than the adjudication cap counting, as the server's backlog does."""
        floor = self.now - self.core.horizon.cap_ns
        waiting = [read for read in self._unhandled if read >= floor]
        return min(waiting) if waiting and self.tells_arrival else None

    def of(self, kind: type[Any]) -> list[Any]:
        """The events of one kind, in order."""
        return [event for event in self.events if isinstance(event, kind)]


@dataclass(eq=False)
class Station:
    """A client on the simulated network: its own clock, its link's delays, what it heard.

    ``offset_ns`` is how far its clock reads ahead of the hub's; ``drift_ppm`` how fast that
    grows. A protocol client answers every ``sync`` at once, as the firmware does.
    """

    net: Net
    offset_ns: int = 0
    drift_ppm: float = 0.0
    up: Delay = field(default_factory=lambda: fixed(0))  # station to hub
    down: Delay = field(default_factory=lambda: fixed(0))  # hub to station
    link: int | None = None
    heard: list[Any] = field(default_factory=list)  # decoded JSON frames, or text for tutorials
    log: list[tuple[int, Any]] = field(default_factory=list)  # the same, with when each came
    closed: int | None = None
    answers_syncs: bool = True
    sync_hold_ns: int = 0  # how long it sits on a sync before answering (and what it claims)
    pong_hold_ns: int = 0  # how long its WebSocket stack sits on a ping (a modified one)
    handled_after_ns: int = 0  # how much longer than others its frames wait in the hub

    def clock(self, hub_ns: int | None = None) -> int:
        """This station's clock reading at hub time ``hub_ns`` (default: now)."""
        t = self.net.now if hub_ns is None else hub_ns
        return t + self.offset_ns + round((t - START_NS) * self.drift_ppm / 1e6)

    def open(self) -> Station:
        self.link = self.net.new_link(self)
        return self

    def send(self, frame: str | dict[str, Any], delay_ns: int | None = None) -> None:
        """A frame leaving now; it reaches the hub after the uplink's delay (or ``delay_ns``)."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        link = self.link
        assert link is not None
        delay = self.up() if delay_ns is None else delay_ns
        self.net.at(self.net.now + delay, lambda: self._arrive(link, text))

    def _arrive(self, link: int, text: str) -> None:
        net, read = self.net, self.net.now
        lag = net.handling_lag_ns + self.handled_after_ns
        if not lag:
            net.carry(net.core.receive(link, text, read))
            return
        net._unhandled.append(read)

        def handle() -> None:
            net._unhandled.remove(read)
            if net.tells_arrival:
                net.carry(net.core.receive(link, text, net.now, read, net.settled_ns()))
            else:
                net.carry(net.core.receive(link, text, net.now))

        net.at(read + lag, handle)

    def receive(self, frame: str) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            message = frame
        self.heard.append(message)
        self.log.append((self.net.now, message))
        if isinstance(message, dict) and message.get("type") == "sync" and self.answers_syncs:
            t1 = self.clock()
            self.net.at(
                self.net.now + self.sync_hold_ns,
                lambda: self.send(
                    {
                        "type": "sync_reply",
                        "seq": message["seq"],
                        "t0_ns": message["t0_ns"],
                        "t1_ns": t1,
                        "t2_ns": self.clock(),
                    }
                ),
            )

    def frames(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.heard if isinstance(f, dict) and f.get("type") == kind]

    def last(self, kind: str) -> dict[str, Any]:
        frames = self.frames(kind)
        assert frames, f"no {kind!r} frame; heard: {[f.get('type') for f in self.heard]}"
        return frames[-1]


def node(net: Net, node_id: str, *, input: str = "gpio", **fields: Any) -> Station:
    """A node station that has said hello (its welcome and syncs follow as time runs)."""
    station = Station(net, **fields).open()
    station.send({"type": "hello", "protocol": 1, "role": "node", "id": node_id, "input": input})
    return station


def host(net: Net, **fields: Any) -> Station:
    station = Station(net, **fields).open()
    station.send({"type": "hello", "protocol": 1, "role": "host", "token": HOST_TOKEN})
    return station


def press(
    station: Station,
    at_hub_ns: int,
    press_id: str,
    delay_ns: int | None = None,
    lead_ns: int | None = None,
) -> None:
    """The button goes down at hub time ``at_hub_ns``: stamped then, sent then (taking
    ``delay_ns`` to arrive, if given, instead of the link's usual delay); or, with ``lead_ns``,
    sent that much later, saying when (``sent_ns``), as the firmware does."""

    def made() -> None:
        frame = {"type": "press", "press_id": press_id, "at_ns": station.clock()}
        if lead_ns is None:
            station.send(frame, delay_ns)
        else:
            station.net.at(station.net.now + lead_ns, lambda: leaves(frame))

    def leaves(frame: dict[str, Any]) -> None:
        station.send({**frame, "sent_ns": station.clock()}, delay_ns)

    station.net.at(at_hub_ns, made)


def armed_and_pressed(net: Net, console: Station, presser: Station) -> int:
    """The console arms a round (its picture goes out) and ``presser`` presses ("near-1"): the
    round's deadline, once the press is in and the round waits for slower links."""
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    press(presser, net.now, "near-1")
    net.run_for(MS)
    deadline = net.core.engine.deadline_ns
    assert deadline is not None
    return deadline
