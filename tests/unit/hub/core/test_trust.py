"""A timestamp is a claim: lies that cannot win, a wait a liar cannot stretch, and honest presses
held up by their link still counted by their own time.

A simulated liar answers every sync late while claiming it answered at once (t2 = t1), which
makes its link look slow and so would buy it credit, and stamps its presses with whatever instant
wins. Exact times throughout, so every bound is checked to the nanosecond.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest

from hub.config import HubConfig, RoundSection, TrustSection
from hub.core.events import Decided
from tests.support.simulation import MS, Net, S, Station, fixed, host, node, press

HOST_MODE = HubConfig(round=RoundSection(hostless=False))
MARGIN = round(HOST_MODE.round.adjudication_margin_ms * MS)
ALLOWANCE = round(HOST_MODE.trust.allowance_ms * MS)  # edge to send, beyond the link
CAP = round(HOST_MODE.round.adjudication_cap_ms * MS)


@dataclass(eq=False)
class Liar(Station):
    """A modified node: holds each sync reply ``hold_ns`` yet claims no time passed (t2 = t1)."""

    hold_ns: int = 0

    def __post_init__(self) -> None:
        self.answers_syncs = False

    def receive(self, frame: str) -> None:
        super().receive(frame)
        message = self.heard[-1]
        if isinstance(message, dict) and message.get("type") == "sync":
            t1 = self.clock()
            reply = {**message, "type": "sync_reply", "t1_ns": t1, "t2_ns": t1}
            self.net.at(self.net.now + self.hold_ns, lambda: self.send(reply))

    def claim(self, at_hub_ns: int, press_id: str, node_instant: Any) -> None:
        """At hub time ``at_hub_ns`` (when it really presses), send a press claiming the instant
        ``node_instant(self)`` of its own clock."""
        self.net.at(
            at_hub_ns,
            lambda: self.send({"type": "press", "press_id": press_id, "at_ns": node_instant(self)}),
        )


def liar(net: Net, hold_ns: int, **fields: Any) -> Liar:
    station = Liar(net, up=fixed(MS), down=fixed(MS), hold_ns=hold_ns, **fields).open()
    station.send({"type": "hello", "protocol": 1, "role": "node", "id": "liar"})
    return station


def duel(
    config: HubConfig = HOST_MODE, hold_ns: int = 0, **liar_fields: Any
) -> tuple[Net, Station, Station, Liar, int]:
    """An honest node and a liar, a minute after they joined; a round armed. Returns the net,
    the host's console, both nodes and the release instant (hub clock, still ahead)."""
    net = Net.hub(config)
    console = host(net)
    honest = node(net, "honest", up=fixed(MS), down=fixed(MS))
    cheat = liar(net, hold_ns, **liar_fields)
    net.run_for(60 * S)
    return net, console, honest, cheat, armed(net, console)


def release_plus_1_ms(station: Station) -> int:
    """What the liar claims: 1 ms after the release instant the hub told it (its own clock)."""
    armed = [f for f in station.frames("round") if f["release_ns"] is not None]
    return int(armed[-1]["release_ns"]) + MS


def armed(net: Net, console: Station) -> int:
    """Arm a round; return its release instant (hub clock), still ahead."""
    console.send({"type": "arm"})
    net.run_for(10 * MS)
    release = int(console.last("state")["round"]["release_ns"])
    assert release > net.now
    return release


def results(console: Station) -> dict[str, dict[str, Any]]:
    return {row["player"]: row for row in console.last("state")["round"]["results"]}


@pytest.mark.parametrize("hold_ns", [0, 900 * MS], ids=["prompt syncs", "syncs held 900 ms"])
@pytest.mark.parametrize("reaction_ns", [30 * MS, 300 * MS, 2 * S])
def test_a_node_claiming_release_plus_1_ms_never_beats_an_honest_press_20_ms_earlier(
    hold_ns: int, reaction_ns: int
) -> None:
    net, console, honest, cheat, release = duel(hold_ns=hold_ns)
    press(honest, release + reaction_ns, "honest.1")
    cheat.claim(release + reaction_ns + 20 * MS, "liar.1", release_plus_1_ms)
    net.run_for(3 * S)
    rows = results(console)
    assert rows["honest"]["rank"] == 1
    assert rows["liar"]["rank"] == 2
    assert "clamped" in rows["liar"]["flags"]
    # Placed no earlier than its arrival minus what its link explains (1 ms each way here).
    assert int(rows["liar"]["at_ns"]) >= int(rows["liar"]["arrival_ns"]) - 3 * MS - ALLOWANCE
    (decided,) = net.of(Decided)
    assert decided.wait_ns <= 3 * MS + MARGIN  # the held replies stretched nothing
    assert console.last("state")["players"][1]["clamped"] == 1


def test_a_liar_that_also_holds_its_pongs_gains_at_most_its_cap() -> None:
    """The rest of what it can do: with its pongs held too, its link looks slow every way the
    hub can measure it, and only the cap for its kind of station holds it."""
    config = dataclasses.replace(HOST_MODE, trust=TrustSection(node_cap_ms=50.0))
    net, console, honest, cheat, release = duel(config, 900 * MS, pong_hold_ns=900 * MS)
    press(honest, release + 300 * MS, "honest.1")
    cheat.claim(release + 320 * MS, "liar.1", release_plus_1_ms)
    net.run_for(3 * S)
    rows = results(console)
    gained = int(rows["liar"]["arrival_ns"]) - int(rows["liar"]["at_ns"])
    assert gained <= 50 * MS + ALLOWANCE
    assert "clamped" in rows["liar"]["flags"]
    (decided,) = net.of(Decided)
    assert decided.wait_ns <= 50 * MS + MARGIN  # and it cannot make the round wait longer


def test_a_press_its_link_explains_is_ranked_by_its_time_and_flagged_late() -> None:
    """A link that lately took 200 ms once (one sync reply, one pong) but is fast as a rule: a
    press held up 150 ms is credible, so it keeps its own time; the round did not wait for it
    (the usual delay sets the wait), so it arrives after the decision and is flagged late."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    fast = node(net, "fast", up=fixed(MS), down=fixed(MS))
    uplink = [MS]
    spiky = node(net, "spiky", up=lambda: uplink[0], down=fixed(MS))
    net.run_for(120 * S)
    assert spiky.link is not None
    for kind in ("sync", "ping"):  # a congested moment for exactly one of each
        due = net.core.syncs.agenda.when((kind, spiky.link))
        assert due is not None
        net.run_until(due - 1)
        uplink[0] = 200 * MS
        net.run_for(2 * MS)  # the request goes out, and the reply (1 ms later) comes back slow
        uplink[0] = MS
    net.run_for(60 * S)
    release = armed(net, console)
    press(spiky, release + 290 * MS, "spiky.1", delay_ns=150 * MS)
    press(fast, release + 300 * MS, "fast.1")
    net.run_for(2 * S)
    rows = results(console)
    assert rows["fast"]["rank"] == 1  # announced before the held-up press arrived; it stands
    assert rows["spiky"]["flags"] == ["late"]
    assert rows["spiky"]["at_ns"] == release + 290 * MS


def test_a_press_resent_after_a_reconnect_stays_in_the_round_it_was_made_in() -> None:
    """Its claim is seconds before its arrival: clamping it must not carry it into a new round."""
    net = Net.hub(HOST_MODE)
    console = host(net)
    box = node(net, "box", up=fixed(MS), down=fixed(MS))
    net.run_for(10 * S)
    first = armed(net, console)
    made = box.clock(first + 200 * MS)
    net.run_for(2 * S)
    second = armed(net, console)
    again = node(net, "box", up=fixed(MS), down=fixed(MS))  # reconnects, re-sends its outbox
    net.run_for(100 * MS)
    again.send({"type": "press", "press_id": "box.1", "at_ns": made})
    net.run_for(S)
    result = again.last("result")
    assert result["rank"] is None
    assert "stale" in result["flags"]
    assert second > first


def test_a_tutorial_client_is_back_dated_no_more_than_its_cap() -> None:
    config = dataclasses.replace(HOST_MODE, trust=TrustSection(plain_cap_ms=30.0))
    net = Net.hub(config)
    console = host(net)
    client = Station(net, up=fixed(100 * MS), down=fixed(100 * MS)).open()
    client.send("far away")
    net.run_for(5 * S)
    release = armed(net, console)
    net.run_until(release)
    client.send("buzz")
    net.run_for(2 * S)
    (row,) = results(console).values()
    assert int(row["arrival_ns"]) - int(row["at_ns"]) == 30 * MS
    assert json.dumps(row["flags"]) == '["unsynced"]'


def test_a_clamped_press_never_wins_a_tie_on_the_benefit_of_the_doubt() -> None:
    """The liar pressed 2 ms after the honest node but claimed far earlier: its earliest credible
    instant (arrival minus what its link explains) is ahead of the honest press, within its
    widened uncertainty. That is only a bound, not a claim the hub believes: the honest press
    wins the tie. And the round waited from the liar's arrival, so the honest press was in."""
    net, console, honest, cheat, release = duel()
    press(honest, release + 293 * MS, "honest.1")
    cheat.claim(release + 295 * MS, "liar.1", release_plus_1_ms)
    net.run_for(3 * S)
    rows = results(console)
    assert int(rows["liar"]["at_ns"]) < int(rows["honest"]["at_ns"])  # placed ahead...
    assert rows["honest"]["rank"] == 1  # ...and still second
    assert set(rows["liar"]["flags"]) == {"clamped", "tie"}


def test_a_clamped_press_never_beats_a_press_made_before_it_arrived() -> None:
    """A link that lately looked slow (its pongs held 30 ms, as a starved browser's were under
    load) gives a liar room: its claim is clamped to arrival minus about 40 ms, ahead of the
    honest press and, as its claim lies just beyond, by more than the two uncertainties. The
    clamped press may have been made as late as its arrival, so it is ranked by that, behind
    the honest press made before it."""
    net, console, honest, cheat, release = duel(pong_hold_ns=30 * MS)
    press(honest, release + 50 * MS, "honest.1")
    cheat.claim(release + 52 * MS, "liar.1", release_plus_1_ms)
    net.run_for(3 * S)
    rows = results(console)
    arrival = int(rows["liar"]["arrival_ns"])
    # Clamped to the earliest instant its slow-looking link explains, well ahead of the honest
    # press (which is what used to win it the round)...
    assert arrival - int(rows["liar"]["at_ns"]) > 35 * MS
    assert int(rows["liar"]["at_ns"]) < int(rows["honest"]["at_ns"]) - 30 * MS
    # ...but it is ranked by its arrival, tied with the honest press (its span reaches back to
    # its claim), and a clamped press never wins a tie.
    assert rows["honest"]["rank"] == 1
    assert set(rows["liar"]["flags"]) == {"clamped", "tie"}
