"""The core's next wake-up is kept as of the engine's last change, not worked out anew after every
event: whatever happens, it must be what working it out from scratch gives. And a wake-up that
comes a little early still does what is due, all but the round's deadline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import GameSection, HubConfig, RoundSection
from hub.core.machine import EARLY_WAKE_NS, HubCore
from hub.core.outputs import Broadcast, Close, Send
from tests.support.simulation import (
    MS,
    Net,
    S,
    Station,
    armed_and_pressed,
    fixed,
    host,
    node,
    press,
)


def recomputed(core: HubCore) -> int | None:
    """The wake-up by its definition, every part asked afresh."""
    times = [
        core.fanout.rounds_due,
        core._hellos.next(),
        core.syncs.next(),
        core.engine.next_deadline,
        None if core._pictures_wait() else core.fanout.publish_at,
        core._sweep_at,
    ]
    due = [t for t in times if t is not None]
    return min(due) if due else None


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["arm", "press", "right", "wrong", "reset", "close", "read", "floor", "wait", "join"]
        ),
        st.integers(min_value=0, max_value=3),  # which station
        st.integers(min_value=0, max_value=3 * S),  # how long to run afterwards
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    actions=ACTIONS,
    hostless=st.booleans(),
    timers=st.booleans(),
    commit_ms=st.sampled_from([0, 3, 40]),
)
def test_the_kept_wakeup_is_the_recomputed_one(
    actions: list[tuple[str, int, int]], hostless: bool, timers: bool, commit_ms: int
) -> None:
    game = GameSection(
        rebound="next",
        buzz_window_s=2.0 if timers else None,
        answer_time_s=1.5 if timers else None,
        answer_warning_s=0.5 if timers else None,
    )
    config = HubConfig(round=RoundSection(hostless=hostless, release_lead_ms=5), game=game)
    net = Net.hub(config, commit_ns=commit_ms * MS)
    console = host(net)
    ids = [f"n{i}" for i in range(3)]
    stations = [node(net, i, up=fixed(MS), down=fixed(MS)) for i in ids]
    core = net.core
    kept = core.next_wakeup

    def checked() -> int | None:
        """Every time the simulation asks (after each delivery and each wake-up)."""
        wake = kept()
        assert wake == recomputed(core)
        return wake

    core.next_wakeup = checked  # type: ignore[method-assign]
    net.run_for(S)
    for number, (action, which, run_ns) in enumerate(actions):
        station, name = stations[which % len(stations)], ids[which % len(ids)]
        match action:
            case "arm" | "reset" | "right" | "wrong" | "read":
                console.send({"type": action})
            case "close":
                console.send({"type": "close"})
            case "floor":
                console.send({"type": "floor", "player": name})
            case "press":
                press(station, net.now + MS, f"{name}-{number}")
            case "join":
                ids.append(f"late{number}")
                stations.append(node(net, ids[-1]))
            case "wait":
                pass
        net.run_for(run_ns)
        assert checked() == recomputed(core)


def test_woken_a_little_early_the_core_does_what_is_due_but_the_deadline_waits() -> None:
    """uvloop's timers fire up to a millisecond or so before their time. Finding nothing due,
    the server would be woken again and again until the time came (at idle, four wake-ups of
    every five did nothing): the syncs, pings and pictures due that soon go out at once instead.
    The round's deadline, the wait for presses still in flight, is never cut short."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    console = host(net)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))  # the round waits for its link
    net.run_for(5 * S)
    for _ in range(20):  # syncs and pings, each woken for a little early
        wake = net.core.next_wakeup()
        assert wake is not None
        assert wake > net.now
        net.now = max(net.now, wake - EARLY_WAKE_NS)
        early = net.core.timer(net.now)
        assert early, "nothing done: the server would be woken again at once"
        after = net.core.next_wakeup()
        assert after is None or after > wake  # what was due by then is done
        net.carry(early)
        net.run_for(0)
    deadline = armed_and_pressed(net, console, near)
    assert deadline - net.now > EARLY_WAKE_NS
    net.run_until(deadline - EARLY_WAKE_NS)
    waiting = net.core.timer(deadline - 1)
    assert net.core.engine.deadline_ns == deadline  # not decided a nanosecond early
    assert not [o for o in waiting if isinstance(o, Send) and '"type":"result"' in o.frame]
    net.carry(waiting)
    net.run_until(deadline + 10 * MS)  # decided at its time, and the result delivered
    assert near.last("result")["rank"] == 1


def test_woken_a_little_early_a_greeting_deadline_a_picture_and_the_sweep_are_done() -> None:
    """The other jobs that may be done a little early, each woken for just before its time."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    core = net.core
    console = host(net)
    node(net, "n1", up=fixed(MS), down=fixed(MS))
    net.run_for(5 * S)

    mute = Station(net).open()  # never greets
    deadline = core._hellos.next()
    assert deadline is not None
    net.run_until(deadline - EARLY_WAKE_NS - 1)
    assert mute.closed is None
    early = core.timer(deadline - EARLY_WAKE_NS)
    assert [o for o in early if isinstance(o, Close) and o.link == mute.link]
    net.now = deadline - EARLY_WAKE_NS
    net.carry(early)

    console.send({"type": "arm"})  # something for the host to see, shown at once
    net.run_for(MS)
    node(net, "n2", up=fixed(MS), down=fixed(MS))  # and more, paced after that picture
    net.run_for(2 * MS)
    due = core.fanout.publish_at
    assert due is not None
    assert due > net.now + EARLY_WAKE_NS
    net.run_until(due - EARLY_WAKE_NS - 1)
    early = core.timer(due - EARLY_WAKE_NS)
    assert [o for o in early if isinstance(o, Broadcast) and o.picture]

    sweep = core._sweep_at
    assert sweep is not None
    net.run_until(sweep - EARLY_WAKE_NS - 1)
    assert core._sweep_at == sweep
    core.timer(sweep - EARLY_WAKE_NS)
    assert core._sweep_at is not None
    assert core._sweep_at > sweep
