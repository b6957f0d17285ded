"""Hostile input the rate limits let through must not switch saving off or grow the hub for good.

The core on a simulated network, with exact times: each flood is played against honest players
whose press-to-result time is measured while it lasts, and the state it leaves behind is bounded.
"""

from __future__ import annotations

import pytest

from hub.config import HubConfig, RoundSection
from hub.core.events import Refused
from hub.journal import INT64_MAX
from tests.support.simulation import MS, Net, S, Station, host, node, press
from wire import codec

HOST_MODE = HubConfig(round=RoundSection(hostless=False, release_lead_ms=0))


def test_a_press_whose_hub_time_overflows_is_refused_not_acked_and_harms_nobody() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    # Legal numbers, absurdly far apart: the node claims its clock is 2**62 ns ahead.
    liar = node(net, "liar", offset_ns=2**62)
    honest = node(net, "honest", up=lambda: MS, down=lambda: MS)
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(10 * MS)
    liar.send({"type": "press", "press_id": "x-1", "at_ns": -INT64_MAX, "ref": "r1"})
    net.run_for(MS)
    error = liar.last("error")
    assert error["code"] == "bad_time"
    assert error["ref"] == "r1"
    assert not liar.frames("ack")
    assert not liar.frames("result")
    assert any(isinstance(e, Refused) and "out of range" in e.reason for e in net.events)
    press(honest, net.now, "h-1")
    net.run_for(50 * MS)
    assert honest.last("result")["rank"] == 1
    assert honest.last("ack")["press_id"] == "h-1"
    assert [o.press.press_id for o in net.core.engine.current.ranked] == ["h-1"]  # type: ignore[union-attr]


def test_refusals_from_one_address_are_logged_once_per_interval() -> None:
    net = Net.hub(HOST_MODE)
    for _ in range(50):
        wrong = Station(net).open()
        wrong.send({"type": "hello", "protocol": 1, "role": "host", "token": "guess"})
    net.run_for(MS)
    refused = [e for e in net.events if isinstance(e, Refused)]
    assert len(refused) == 1  # the simulated network has one address ("sim")
    net.run_for(11 * S)
    late = Station(net).open()
    late.send({"type": "hello", "protocol": 1, "role": "host", "token": "guess"})
    net.run_for(MS)
    refused = [e for e in net.events if isinstance(e, Refused)]
    assert len(refused) == 2
    assert refused[1].left_out == 49
    assert "49 more from this address not logged" in refused[1].describe()


def _honest_round(net: Net, console: Station, honest: Station, tag: str) -> int:
    """One round in which ``honest`` presses at the release: its press-to-result time, ns."""
    console.send({"type": "arm"})
    net.run_for(5 * MS)
    pressed = net.now
    press(honest, pressed, tag)
    until = net.now + S
    while net.now < until:
        net.run_for(MS)
        if any(f.get("press_id") == tag for f in honest.frames("result")):
            break
    result_at = net.now
    console.send({"type": "reset"})
    net.run_for(5 * MS)
    return result_at - pressed


def test_a_hello_flood_with_new_ids_is_cut_off_and_leaves_the_roster_as_it_was() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    honest = node(net, "honest", up=lambda: MS, down=lambda: MS)
    net.run_for(S)
    quiet = _honest_round(net, console, honest, "q-1")
    closed = []
    for i in range(3000):  # one tokenless client, a new station id each time
        flooder = node(net, f"fake-{i}")
        net.run_for(MS // 10)
        closed.append(flooder.closed)
        if i % 300 == 0:
            during = _honest_round(net, console, honest, f"f-{i}")
            assert during <= quiet + MS, (during, quiet)  # the honest player does not notice
        if flooder.closed is None:
            flooder.send("x")  # and goes away (its link ends)
            net.carry(net.core.disconnect(flooder.link or 0, "gone", net.now))
    refused = [c for c in closed if c == 4429]
    assert len(refused) >= 3000 - 256 - 20  # the burst, and what the rate refilled meanwhile
    assert len(net.core.roster.players) <= 1 + 256 + 20
    assert "too_many_ids" in {f.get("code") for f in flooder.frames("error")}
    net.run_for(11 * 60 * S)  # offline players leave the list after ten minutes
    assert [p.id for p in net.core.roster] == ["honest"]
    assert len(net.core.state(net.now).players) == 1


def test_a_press_flood_within_the_rate_limit_keeps_the_round_small() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    honest = node(net, "honest", up=lambda: MS, down=lambda: MS)
    flooders = [node(net, f"mash-{i}") for i in range(20)]
    net.run_for(S)
    quiet = _honest_round(net, console, honest, "q-1")
    console.send({"type": "arm"})
    net.run_for(5 * MS)
    sent = 0
    for tick in range(20 * 45):  # 20 nodes at 45 presses a second for 20 s
        for i, flooder in enumerate(flooders):
            flooder.send({"type": "press", "press_id": f"m{i}-{tick}", "at_ns": flooder.clock()})
            sent += 1
        net.run_for(S // 45)
    record = net.core.engine.current
    assert record is not None
    assert len(record.ranked) == 20  # one counted press each
    assert len(record.refused) <= 20 * 2  # one listed refusal of each kind per player
    assert record.more_refused >= sent - 20 - len(record.refused)
    picture = codec.encode(net.core.state(net.now))
    assert len(picture) < 40_000, len(picture)
    console.send({"type": "reset"})
    net.run_for(5 * MS)
    during = _honest_round(net, console, honest, "after")
    assert during <= quiet + MS
    # Every id is remembered until its round leaves the history (a re-send judged afresh in a
    # later round could count there), each pointing at the refusal listed for it: no outcome
    # of its own per press sent.
    kept = {id(known) for known in net.core.engine._seen.values() if known is not None}
    assert len(kept) <= 20 * 2 + 20 + 2


def test_a_round_does_not_wait_for_the_links_of_players_locked_out_of_it() -> None:
    """An early press locks its player out of the next round: that round's wait covers the
    links of the players who can still be ranked, not the locked-out one's slow link."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    honest = node(net, "honest", up=lambda: MS, down=lambda: MS)
    slow = node(net, "slow", up=lambda: 100 * MS, down=lambda: 100 * MS)
    net.run_for(3 * S)
    waited_for = _honest_round(net, console, honest, "h-1")
    assert waited_for >= 100 * MS  # slow's press, made before honest's, could still be coming
    press(slow, net.now, "s-early")  # between rounds: early, locked out of the next one
    net.run_for(300 * MS)
    assert slow.last("result")["flags"] == ["early"]
    not_waited_for = _honest_round(net, console, honest, "h-2")
    assert not_waited_for < 20 * MS, not_waited_for
    assert honest.last("result")["rank"] == 1


@pytest.mark.parametrize("commit_ns", [0, 5 * MS])
def test_a_press_flood_redraws_the_hosts_picture_about_once_a_second(commit_ns: int) -> None:
    """Refusals like ones already listed change a count: the host's picture catches up within a
    second instead of being rebuilt 20 times a second for the flood (results held for a disk
    slower than the flood's presses too)."""
    net = Net.hub(HOST_MODE, commit_ns=commit_ns)
    console = host(net)
    flooders = [node(net, f"mash-{i}") for i in range(20)]
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(S)
    before = len(console.frames("state"))
    for tick in range(10 * 45):  # 20 nodes at 45 presses a second for 10 s
        for i, flooder in enumerate(flooders):
            flooder.send({"type": "press", "press_id": f"m{i}-{tick}", "at_ns": flooder.clock()})
        net.run_for(S // 45)
    pictures = len(console.frames("state")) - before
    assert 5 <= pictures <= 10 + 5, pictures  # about one a second, not 450
    net.run_for(S)
    shown = console.last("state")["round"]
    record = net.core.engine.current
    assert record is not None
    assert len(shown["results"]) == len(record.ranked) == 20  # each one's first press counts
    assert len(shown["refused"]) == 20  # then one listed repeat each
    assert shown["more_refused"] == record.more_refused == 20 * 450 - 40  # and the rest counted


def test_seen_press_ids_and_the_picture_stay_bounded_over_a_long_night() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    players = [node(net, f"p{i:03d}") for i in range(20)]
    net.run_for(S)
    for number in range(120):
        console.send({"type": "arm"})
        net.run_for(5 * MS)
        for i, player in enumerate(players):
            press(player, net.now + i * 1000, f"p{i:03d}-{number}")
        net.run_for(20 * MS)
        console.send({"type": "reset"})
        net.run_for(MS)
    window = net.core.engine.rules.history_rounds
    # The rounds the history holds and the current one (their presses may still be re-sent),
    # not all 120.
    assert len(net.core.engine._seen) == (window + 1) * 20
    state = net.core.state(net.now)
    assert len(state.history) == 10
    assert len(net.core.engine.questions) == 120  # free play: a question per arm, all night
    assert [q.number for q in state.game.log] == list(range(91, 121))  # the latest in the picture
    # Of each, the first results and buzzes: a picture does not grow with the room either.
    assert all(len(r.results) == 5 and r.more_results == 15 for r in state.history)
    assert all(len(q.buzzes) == 5 and q.more_buzzes == 15 for q in state.game.log)
    assert len(codec.encode(state)) < 100_000  # 135 KB when they listed all twenty


def test_api_state_is_the_last_picture_not_a_rebuild_per_request() -> None:
    net = Net.hub(HOST_MODE)
    node(net, "desk-1")
    net.run_for(S)
    first, wait = net.core.picture(net.now)
    assert wait == 0
    net.core.published(2 * MS)  # what building and encoding it cost the server
    for step in range(1000):  # a script polling /api/state as fast as it can
        assert net.core.picture(net.now + step * 1000) == (first, 0)
    node(net, "desk-2")  # something changed: a new picture, but not within five times its cost
    net.run_for(MS)
    again, wait = net.core.picture(net.now)
    assert again is first
    assert 0 < wait <= 10 * MS  # the reader waits for it rather than getting a stale one
    net.run_for(wait)
    fresh, wait = net.core.picture(net.now)
    assert wait == 0
    assert fresh is not first
    assert [p.id for p in fresh.players] == ["desk-1", "desk-2"]
