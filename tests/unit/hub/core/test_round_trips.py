"""Round trips from WebSocket pings, for every player link: a tutorial client's presses are
placed by its fastest recent one, so one slow pong neither back-dates its presses nor stretches
the round's wait; and pings back off while the round trip holds, instead of one every 2 s."""

from __future__ import annotations

from hub.config import HubConfig, RoundSection
from hub.core.events import Decided
from hub.core.outputs import Output, Ping
from hub.core.syncing import PING_BURST, PING_GAPS_NS
from tests.support.simulation import MS, Net, S, Station, fixed, host, node

HOST_MODE = HubConfig(round=RoundSection(hostless=False))
MARGIN = round(HOST_MODE.round.adjudication_margin_ms * MS)


def tutorial(net: Net, up: int, down: int) -> Station:
    client = Station(net, up=fixed(up), down=fixed(down)).open()
    client.send("Carol")
    return client


def pings_counted(net: Net) -> list[Ping]:
    """Every ping the hub sends from now on, in order."""
    pinged: list[Ping] = []
    carry = net.carry

    def counting(outputs: list[Output]) -> None:
        pinged.extend(o for o in outputs if isinstance(o, Ping))
        carry(outputs)

    net.carry = counting  # type: ignore[method-assign]
    return pinged


def test_a_steady_link_is_pinged_ever_more_rarely() -> None:
    net = Net.hub(HOST_MODE)
    tutorial(net, up=2 * MS, down=2 * MS)
    node(net, "n", up=fixed(MS), down=fixed(MS))
    pinged = pings_counted(net)
    net.run_for(600 * S)
    shortest, longest = PING_GAPS_NS
    # Per link: the joining burst, then gaps of 5, 10, 20, 40 s and 60 s from then on
    # (each within the jitter); a fixed 2 s interval would have sent 300.
    per_link = PING_BURST + 4 + (600 * S - 75 * S) // round(0.75 * longest) + 1
    assert len(pinged) <= 2 * per_link
    assert len(pinged) >= 2 * (PING_BURST + 4)
    player = net.core.roster.players["n"]
    assert player.rtt_ns == 2 * MS  # nodes are measured too: what their link can explain
    assert shortest < longest


def test_one_slow_pong_neither_back_dates_a_tutorial_press_nor_stretches_the_wait() -> None:
    """The hub's own loop, busy with a burst, answers a pong 300 ms late: that round trip must
    not place the next presses 150 ms early, nor make the next round wait 150 ms."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    client = tutorial(net, up=3 * MS, down=3 * MS)
    far = node(net, "far", up=fixed(40 * MS), down=fixed(40 * MS))
    net.run_for(20 * S)
    carol = next(p for p in net.core.roster if p.plain)
    assert carol.rtt_ns == 6 * MS
    net.carry(net.core.pong(client.link or 0, 300 * MS, net.now))  # the late pong
    assert carol.rtt_ns == 6 * MS
    console.send({"type": "arm"})
    net.run_for(300 * MS)
    made = net.now
    client.send("buzz")
    net.run_for(S)
    rows = {r["player"]: r for r in console.last("state")["round"]["results"]}
    at = int(rows[carol.id]["at_ns"])
    assert at == made + 3 * MS - 3 * MS  # arrival minus half the fastest round trip: exact here
    decided = net.of(Decided)[-1]
    # The wait is the far node's 40 ms (and the margin), not the slow pong's 150 ms.
    assert decided.wait_ns <= 40 * MS + MARGIN
    assert far.frames("round")


def test_a_tutorial_clients_first_buzz_is_placed_by_pings_since_it_connected() -> None:
    """A tutorial client says nothing before its first ``buzz``: the pings that place it start
    when it connects, not amid the burst of first presses they should place."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    client = Station(net, up=fixed(4 * MS), down=fixed(2 * MS)).open()
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(300 * MS)
    client.send("buzz")
    net.run_for(S)
    player = next(p for p in net.core.roster if p.plain)
    row = {r["player"]: r for r in console.last("state")["round"]["results"]}[player.id]
    assert player.rtt_ns == 6 * MS
    # Placed half its round trip before it arrived (not at its arrival, as if unmeasured).
    assert int(row["at_ns"]) == int(row["arrival_ns"]) - 3 * MS


def test_hosts_and_viewers_are_not_pinged_once_they_greet_nor_silent_links_often() -> None:
    net = Net.hub(HOST_MODE)
    pinged = pings_counted(net)
    console = host(net)
    net.run_for(600 * S)
    assert len([p for p in pinged if p.link == console.link]) <= 1  # at most one before its hello
    client = Station(net, up=fixed(MS), down=fixed(MS)).open()
    net.run_for(40 * S)
    # A link with no player on it yet: its first pings, then only at the longest gap (a
    # thousand silent clients would otherwise cost a hundred pings a second).
    assert len([p for p in pinged if p.link == client.link]) == PING_BURST
    joined = node(net, "n", up=fixed(MS), down=fixed(MS))
    net.run_for(40 * S)
    assert len([p for p in pinged if p.link == joined.link]) >= PING_BURST + 2


def test_a_nodes_slow_round_trips_from_before_its_hello_do_not_widen_what_it_may_claim() -> None:
    """A page still loading (or a machine busy with a connect storm) answers its first pings
    slowly. The slowest recent round trip is how early a press from the link may claim to have
    been made: those from before the hello must not lend a cheating page 300 ms of credit."""
    net = Net.hub(HOST_MODE)
    station = Station(net, up=fixed(MS), down=fixed(MS), pong_hold_ns=300 * MS).open()
    net.run_for(500 * MS)  # its first pings, answered slowly
    station.pong_hold_ns = 0
    station.send({"type": "hello", "protocol": 1, "role": "node", "id": "n", "input": "gpio"})
    net.run_for(S)
    player = net.core.roster.players["n"]
    assert player.pings.high_ns == 2 * MS
    assert player.rtt_ns == 2 * MS
