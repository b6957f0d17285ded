"""What a player is told never changes after a crash: results go out only once what they rest on
is on disk, and a hub restored from whatever was committed at any instant shows every result it
had told exactly as told.

The disk is simulated: journal steps commit in order, ``commit_ns`` after they are handed over
(slower than the adjudication wait, as an SD card can be). A crash at an instant keeps exactly the
steps committed by then; the restored hub is built from them as the real one is (the journal
replayed into a fresh engine, then started).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from hub.config import HubConfig, RoundSection
from hub.core.machine import HubCore, Restored
from hub.core.outputs import JournalStep, Output, Save
from hub.journal import Call, RecordingEngine, replay
from tests.conftest import HOST_TOKEN
from tests.support.simulation import (
    MS,
    SAVING,
    START_NS,
    Net,
    S,
    Station,
    fixed,
    host,
    jittered,
    node,
    press,
)
from wire.messages import StorageView

US = 1_000
HOSTLESS = HubConfig(round=RoundSection(hostless=True, auto_arm_delay_s=0.3, release_lead_ms=20))


class Disk:
    """Records each journal step with the instant its commit completes (in order)."""

    def __init__(self, net: Net) -> None:
        self.steps: list[tuple[int, tuple[Call, ...]]] = []
        self._last = 0
        self._net = net
        carry = net.carry

        def recording(outputs: list[Output]) -> None:
            for output in outputs:
                if isinstance(output, Save) and isinstance(output.record, JournalStep):
                    self._last = max(self._last, net.now + net.commit_ns)
                    self.steps.append((self._last, output.record.calls))
            carry(outputs)

        net.carry = recording  # type: ignore[method-assign]

    def restore(self, config: HubConfig, at: int) -> HubCore:
        """The hub as it comes back after a crash at ``at``: from the committed steps only."""
        rules = config.game.apply(config.round.rules())
        calls = [(None, call) for done, calls in self.steps if done <= at for call in calls]
        engine, _ = replay(rules, calls)
        core = HubCore(config, HOST_TOKEN, Restored(engine, storage=SAVING), random.Random(1))
        core.start(at + S)  # it takes a second to come back
        return core


def restored_outcomes(core: HubCore) -> dict[str, tuple[int | None, list[str], int | None]]:
    engine = core.engine
    records = [*engine.history, *([engine.current] if engine.current else [])]
    return {
        o.press.press_id: (o.rank, sorted(o.flags), o.behind_ns)
        for record in records
        for o in (*record.ranked, *record.refused)
    }


def summarised(
    core: HubCore,
) -> dict[tuple[int, str], list[tuple[int | None, list[str], int | None]]]:
    """Refusals listed once per round, player and flags: a player's further presses refused
    the same way are counted (``more_refused``), not listed (bounded state)."""
    engine = core.engine
    records = [*engine.history, *([engine.current] if engine.current else [])]
    listed: dict[tuple[int, str], list[tuple[int | None, list[str], int | None]]] = {}
    for record in records:
        if record.more_refused:
            for o in record.refused:
                key = (o.round, o.press.player)
                listed.setdefault(key, []).append((o.rank, sorted(o.flags), o.behind_ns))
    return listed


def play(seed: int, commit_ns: int) -> tuple[Net, Disk, list[Station]]:
    """Nodes on jittery links pressing in most rounds, some early, some twice."""
    rng = random.Random(seed)
    rules = HOSTLESS.game.apply(HOSTLESS.round.rules())
    restored = Restored(RecordingEngine(rules), storage=SAVING)
    core = HubCore(HOSTLESS, HOST_TOKEN, restored, random.Random(seed))
    net = Net(core, commit_ns=commit_ns)
    disk = Disk(net)  # from the very first step on
    net.carry(core.start(net.now))
    stations = [
        node(
            net,
            f"n{i}",
            up=jittered(rng.randrange(200 * US, 5 * MS), MS, rng),
            down=jittered(rng.randrange(200 * US, 5 * MS), MS, rng),
        )
        for i in range(4)
    ]
    net.run_for(2 * S)
    count = 0
    for _ in range(30):
        start = net.now
        for station in stations:
            if rng.random() < 0.8:
                count += 1
                at = start + rng.randrange(0, 300 * MS)
                press(station, at, f"p{count}")
                if rng.random() < 0.2:
                    count += 1
                    press(station, at + rng.randrange(MS, 50 * MS), f"p{count}")
        net.run_for(rng.randrange(300 * MS, 700 * MS))
    return net, disk, stations


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_at_any_instant_restores_every_result_a_player_was_told(seed: int) -> None:
    net, disk, stations = play(seed, commit_ns=25 * MS)
    rng = random.Random(seed)
    checked = 0
    for crash in sorted(rng.randrange(START_NS + 3 * S, net.now) for _ in range(40)):
        replayed = Net(disk.restore(HOSTLESS, crash))  # nothing connected: the record alone
        outcomes = restored_outcomes(replayed.core)
        summary = summarised(replayed.core)
        for press_id, (player, result) in told_by(stations, crash).items():
            told = (result["rank"], result["flags"], result["behind_ns"])
            if press_id not in outcomes:  # one of a player's like refusals: counted, not listed
                like = summary.get((result["round"], player), [])
                assert told in like, f"told {press_id} at a crash at {crash}, lost on restore"
                continue
            assert outcomes[press_id] == told
            checked += 1
    assert checked > 200  # the crashes did fall where results had been told


def welcome(station: Station) -> dict[str, Any]:
    frame: dict[str, Any] = next(f for f in station.heard if f.get("type") == "welcome")
    return frame


def told_by(stations: list[Station], crash: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The results each player had received by ``crash`` (the simulation logs when), with the
    player's id."""
    return {
        frame["press_id"]: (welcome(station)["id"], frame)
        for station in stations
        for when, frame in station.log
        if when <= crash and frame.get("type") == "result"
    }


def test_results_wait_for_the_disk_only_when_it_is_slower_than_the_wait() -> None:
    """Presses are committed while the hub waits for earlier ones: a decision at its deadline
    goes out at once when the disk kept up, and waits for it when it did not."""
    for commit_ns, held in ((MS, False), (40 * MS, True)):
        net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=commit_ns)
        console = host(net)
        a = node(net, "a", up=fixed(2 * MS), down=fixed(2 * MS))
        net.run_for(3 * S)
        console.send({"type": "arm"})
        net.run_for(200 * MS)
        press(a, net.now, "a.1")
        arrival = net.now + 2 * MS
        net.run_for(S)
        decided = int(console.last("state")["round"]["decided_ns"])
        result_at = next(when for when, f in a.log if f.get("type") == "result")
        assert (result_at - 2 * MS > decided) is held
        assert result_at >= arrival + commit_ns + 2 * MS if held else result_at == decided + 2 * MS


def a_press_held_for_the_disk(net: Net) -> tuple[Station, Station]:
    """A host's console and node "a", whose press of a round the host armed is decided but its
    result held: the simulated disk takes longer than the test to commit."""
    console = host(net)
    a = node(net, "a", up=fixed(2 * MS), down=fixed(2 * MS))
    net.run_for(3 * S)
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    press(a, net.now, "a.1")
    net.run_for(S)
    assert not [f for _, f in a.log if f.get("type") == "result"]  # held for the disk
    return console, a


def test_while_the_disk_fails_results_are_told_without_waiting_for_it() -> None:
    """A commit that fails is retried and acknowledges nothing; a room must not go without its
    results meanwhile: once the storage says it is not saving, what was held goes out, and
    what comes next is told at once."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=3600 * S)
    console, a = a_press_held_for_the_disk(net)
    failing = StorageView(saving=False, path=None, message="writing failed: disk full; retrying")
    net.carry(net.core.storage_changed(failing, net.now))
    net.run_for(10 * MS)
    (result,) = [f for _, f in a.log if f.get("type") == "result"]
    assert (result["press_id"], result["rank"]) == ("a.1", 1)
    assert not [f for _, f in a.log if f.get("type") == "ack"]  # not on disk: not acknowledged
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    press(a, net.now, "a.2")
    net.run_for(S)
    assert [f["press_id"] for _, f in a.log if f.get("type") == "result"] == ["a.1", "a.2"]


def test_a_step_the_store_refuses_on_its_own_releases_what_waited_for_it() -> None:
    """A journal step the store drops (a value no column holds) is never on disk: its press is
    not acknowledged, and what was held for it is told, or every later result would wait too.
    Meanwhile /api/state and a viewer joining see the last picture, not the decision."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=3600 * S)
    tickets: list[int] = []
    carry = net.carry

    def noting(outputs: list[Output]) -> None:
        tickets.extend(o.ticket for o in outputs if isinstance(o, Save) and o.ticket is not None)
        carry(outputs)

    net.carry = noting  # type: ignore[method-assign]
    _, a = a_press_held_for_the_disk(net)
    shown, _ = net.core.picture(net.now)
    assert shown.round.winner is None  # the decision is not shown before it is told
    for ticket in tickets:
        net.carry(net.core.lost(ticket, net.now))
    net.run_for(10 * MS)
    (result,) = [f for _, f in a.log if f.get("type") == "result"]
    assert (result["press_id"], result["rank"]) == ("a.1", 1)
    assert not [f for _, f in a.log if f.get("type") == "ack"]  # not on disk: not acknowledged
    shown, _ = net.core.picture(net.now)
    assert shown.round.winner is not None


def test_a_host_who_joins_while_a_result_waits_for_the_disk_sees_it_once_told() -> None:
    """No host was there when the round was decided (a console reloading): the one who joins
    while its result waits for the disk gets the picture from before it, and the new one at
    the usual pace once the result is told, not a second later."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=300 * MS)
    a = node(net, "a", up=fixed(2 * MS), down=fixed(2 * MS))
    reloading = host(net)
    net.run_for(3 * S)
    reloading.send({"type": "arm"})
    net.run_for(200 * MS)
    number = net.core.engine.number
    net.carry(net.core.disconnect(reloading.link or 0, "reload", net.now))
    press(a, net.now, "a.1")
    net.run_for(100 * MS)
    assert not [f for _, f in a.log if f.get("type") == "result"]  # held for the disk
    console = host(net)
    net.run_for(10 * MS)
    assert console.last("state")["round"]["winner"] is None  # what players have been told
    while not [f for _, f in a.log if f.get("type") == "result"]:
        net.run_for(MS)
    net.run_for(100 * MS)  # two publish gaps: a second would leave the console showing no winner
    shown = console.last("state")["round"]
    assert (shown["number"], shown["winner"]) == (number, "a")
