"""State pictures for hosts: at most 20 a second, and never most of the hub's time; a change
that is only a count within a second; none while a round waits for presses in flight."""

from __future__ import annotations

from typing import Any

import pytest

from hub.config import HubConfig, RoundSection
from hub.core.events import Commanded, Synced, Trouble
from hub.core.fanout import (
    LAZY_PUBLISH_NS,
    PUBLISH_INTERVAL_NS,
    PUBLISH_LOOP_SHARE,
    publish_gap_ns,
)
from hub.core.outputs import Broadcast, Output, Send
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
from wire.enums import Phase
from wire.messages import Arm, MatchStart, PlayerEntry, Right, StorageView, TeamEntry


def test_small_pictures_go_out_at_twenty_a_second() -> None:
    assert publish_gap_ns(0) == PUBLISH_INTERVAL_NS == 50 * MS
    assert publish_gap_ns(2 * MS) == 50 * MS


def test_costly_pictures_are_spaced_to_a_fixed_share_of_the_loop() -> None:
    # A thousand players and results: about 25 ms a picture, so one every 125 ms at most.
    assert publish_gap_ns(25 * MS) == 125 * MS
    for cost in (11 * MS, 40 * MS, 300 * MS):
        assert cost / publish_gap_ns(cost) <= PUBLISH_LOOP_SHARE + 1e-9


def test_a_count_waits_up_to_a_second_for_its_picture_and_never_beats_the_loop_share() -> None:
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    host(net)
    net.run_for(S)
    fanout = net.core.fanout
    for cost, gap in ((2 * MS, LAZY_PUBLISH_NS), (300 * MS, publish_gap_ns(300 * MS))):
        net.run_for(2 * S)
        fanout.publish_at = None
        fanout.published(cost)
        last = net.now - 10 * MS
        fanout._last_publish_ns = last
        fanout.publish_soon(net.now, lazily=True)
        assert fanout.publish_at == last + gap
        assert gap >= LAZY_PUBLISH_NS
        fanout.publish_soon(net.now)  # something to see: at the usual pace, sooner
        assert fanout.publish_at == max(net.now, last + publish_gap_ns(cost))


@pytest.mark.parametrize("saving", [True, False])
def test_no_picture_is_built_while_a_round_waits_for_presses_in_flight(saving: bool) -> None:
    """A picture built during the adjudication wait would be stale once the round is decided,
    and building it (a millisecond or more with a full room, several on a Pi) holds up the
    presses and the decision the round waits for: it comes after the decision instead, and
    after the results, saving or not."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)))
    if not saving:
        net.core.storage = StorageView(saving=False, path=None, message="memory-only")
    console = host(net)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))  # the round waits for its link
    net.run_for(5 * S)
    console.send({"type": "arm"})
    net.run_for(200 * MS)  # the arm's picture is out, and the pacing gap is long past
    pictures = len(console.frames("state"))
    press(near, net.now, "near-1")
    net.run_for(MS)  # it arrives: the round has something new to show, and a wait
    deadline = net.core.engine.deadline_ns
    assert deadline is not None
    assert deadline - net.now >= 10 * MS  # far's link is waited for
    net.run_until(deadline - 1)
    assert len(console.frames("state")) == pictures  # none during the wait
    deciding = net.core.timer(deadline)  # the decision, carried before any picture is built
    assert not [o for o in deciding if isinstance(o, Broadcast) and o.picture]
    told = [o for o in deciding if isinstance(o, Send) and '"type":"result"' in o.frame]
    assert len(told) == 1  # at once: the press it rests on was saved when it came
    net.now = deadline
    net.carry(deciding)
    net.run_for(10 * MS)
    assert near.last("result")["rank"] == 1
    shown = console.frames("state")[pictures:]
    assert shown
    assert shown[0]["hub_ns"] >= deadline
    assert shown[0]["round"]["state"] == "decided"


def decided_room(commit_ns: int) -> tuple[Net, Station, Station, int]:
    """A room of three nodes with a round armed and one press in, waiting for the far link:
    the net, the presser, an idle node, and the round's deadline."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=commit_ns)
    console = host(net)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    idle = node(net, "idle", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))  # the round waits for its link
    net.run_for(5 * S)
    deadline = armed_and_pressed(net, console, near)
    net.run_until(deadline - 1)
    return net, near, idle, deadline


def rounds_in(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if isinstance(o, Send | Broadcast) and '"type":"round"' in o.frame]


def results_in(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if isinstance(o, Send) and '"type":"result"' in o.frame]


def test_a_decisions_results_go_out_before_its_round_frames_are_built() -> None:
    """Building every node's round frame cost as much as the rest of a decision (7 ms at 1,000
    nodes), and the winner's result waited for it: the frames are built at the next wake-up,
    due at once, after the results are written."""
    net, near, idle, deadline = decided_room(commit_ns=0)
    deciding = net.core.timer(deadline)
    assert len(results_in(deciding)) == 1
    assert rounds_in(deciding) == []  # not built yet
    assert (net.core.next_wakeup() or deadline + 1) <= deadline  # due at once
    following = net.core.timer(deadline)
    frames = rounds_in(following)
    assert frames
    assert not [o for o in following if isinstance(o, Broadcast) and o.picture]  # after them
    after = net.core.timer(deadline)
    assert rounds_in(after) == []  # once
    assert [o for o in after if isinstance(o, Broadcast) and o.picture]  # then the picture
    net.now = deadline
    net.carry(deciding + following + after)
    net.run_for(10 * MS)
    assert near.last("result")["rank"] == 1
    for station in (near, idle):
        assert station.last("round")["state"] == "decided"
        assert station.last("round")["winner"] == "near"


def test_a_decisions_round_frames_never_go_out_before_its_results_wait_for_the_disk() -> None:
    """A round frame names the winner: while the results wait for their step to be saved, the
    frames built meanwhile wait behind them."""
    net, near, idle, deadline = decided_room(commit_ns=60 * MS)
    deciding = net.core.timer(deadline)
    assert results_in(deciding) == []  # the press it rests on is not on disk yet
    following = net.core.timer(deadline)
    assert rounds_in(following) == []  # held behind the results
    net.now = deadline
    net.carry(deciding + following)
    idle_rounds = len(idle.frames("round"))
    net.run_for(100 * MS)  # the commit: results, then the frames
    assert near.last("result")["rank"] == 1
    assert len(idle.frames("round")) == idle_rounds + 1
    assert idle.last("round")["state"] == "decided"
    result_at = next(i for i, f in enumerate(near.heard) if f.get("type") == "result")
    decided_at = next(
        i for i, f in enumerate(near.heard) if f.get("type") == "round" and f["state"] == "decided"
    )
    assert result_at < decided_at


def test_a_round_armed_before_a_decisions_frames_went_out_is_all_the_nodes_are_sent() -> None:
    """The frames tell the whole round as it stands, so a newer round's stand in for the
    decision's still to be built: no node is shown a decided round after the next is armed."""
    net, _, idle, deadline = decided_room(commit_ns=0)
    net.now = deadline
    net.carry(net.core.timer(deadline))
    net.carry(net.core.command(Arm(), deadline))
    assert rounds_in(net.core.timer(deadline)) == []
    net.run_for(10 * MS)
    assert idle.last("round")["state"] == "armed"


def told_rounds(station: Station) -> list[dict[str, Any]]:
    """Every round a station heard: its welcome's and each ``round`` frame."""
    return [f.get("round", f) for f in station.heard if f.get("type") in ("welcome", "round")]


@pytest.mark.parametrize("frames_built", [False, True])
def test_no_one_joining_while_a_decisions_results_wait_for_the_disk_is_told_its_winner(
    frames_built: bool,
) -> None:
    """Until the press a decision rests on is saved, a restart could decide the round again
    without it: no one hears the winner before that, the players who pressed nor anyone who
    joins or is first synced meanwhile. A node welcomed then is shown the round as it stood
    (armed, its release in its own clock once synced), then, behind the held results, the
    decision; a console sees it in the picture that follows them."""
    net, near, _, deadline = decided_room(commit_ns=200 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))  # the decision
    if frames_built:
        net.carry(net.core.timer(deadline))  # its round frames, to the nodes already in
    assert near.frames("result") == []  # held for the disk
    late = node(net, "late", up=fixed(MS), down=fixed(MS))
    mute = node(net, "mute", up=fixed(MS), down=fixed(MS), answers_syncs=False)  # never synced
    console = host(net, up=fixed(MS), down=fixed(MS))
    net.run_for(150 * MS)  # welcomed, then synced; the commit not yet
    assert [e for e in net.of(Synced) if e.player == "late"]
    assert near.frames("result") == []
    for station in (late, mute, console):
        told = told_rounds(station)
        assert told
        for update in told:
            assert update["state"] == "armed", update
            assert update["winner"] is None, update
    assert [state["round"]["winner"] for state in console.frames("state")] == [None]
    net.run_for(100 * MS)  # the commit: results, then the decision to all
    assert near.last("result")["rank"] == 1
    assert late.last("round")["state"] == "decided"
    assert late.last("round")["winner"] == "near"
    assert late.last("round")["synced"] is True  # its synced frame, behind the decision
    assert mute.last("round")["winner"] == "near"  # told without a sync
    assert console.last("state")["round"]["results"][0]["player"] == "near"


def test_a_room_joined_after_its_decision_is_saved_is_told_it_whatever_else_waits() -> None:
    """Only a decision still waiting for the disk is kept from newcomers: once it is saved and
    told, a node joining while a later press's answer waits for its own save sees the round
    decided, not armed (which a station takes as its cue to light)."""
    net, near, idle, deadline = decided_room(commit_ns=60 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))
    net.run_for(70 * MS)  # the decision saved and told
    assert near.last("result")["rank"] == 1
    press(idle, net.now, "idle-1")  # late: its answer waits for its own save
    net.run_for(5 * MS)
    assert idle.frames("result") == []
    late = node(net, "late", up=fixed(MS), down=fixed(MS))
    net.run_for(5 * MS)
    assert idle.frames("result") == []  # still waiting
    assert told_rounds(late) == [told_rounds(late)[0]]  # the welcome only
    assert told_rounds(late)[0]["state"] == "decided"
    assert told_rounds(late)[0]["winner"] == "near"


def test_a_console_first_in_while_a_decision_waits_for_the_disk_is_not_shown_it() -> None:
    """No picture was built before the decision (no console had come): the first one, built
    while the decision waits for the disk, shows the round armed and nothing ranked."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=200 * MS)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))
    net.run_for(5 * S)
    net.carry(net.core.command(Arm(), net.now))
    net.run_for(200 * MS)
    press(near, net.now, "near-1")
    net.run_until(net.now + 100 * MS)  # decided, its results waiting for the disk
    assert net.core.engine.phase is Phase.DECIDED
    assert near.frames("result") == []
    assert net.core.fanout.last_picture is None
    console = host(net, up=fixed(MS), down=fixed(MS))
    net.run_for(10 * MS)
    [first] = console.frames("state")
    assert first["round"]["state"] == "armed"
    assert first["round"]["winner"] is None
    assert first["round"]["results"] == []
    assert first["game"]["answering"] is None  # the winner would have the floor
    assert [q["buzzes"] for q in first["game"]["log"]] == [[]]
    assert net.core.picture(net.now)[0].round.winner is None  # /api/state, the same
    assert net.core.state(net.now).game.answering is None  # an embedder's picture, the same
    net.run_for(300 * MS)
    assert near.last("result")["rank"] == 1
    told = console.last("state")
    assert told["round"]["winner"] == "near"
    assert told["game"]["answering"]["player"] == "near"
    assert [b["player"] for b in told["game"]["log"][0]["buzzes"]] == ["near"]


def test_a_match_report_read_while_a_decision_waits_for_the_disk_does_not_show_it() -> None:
    """The host's result download (/api/match.json) is read from the engine: the question's
    buzzes name the winner, so a decision waiting for the disk is left out of them, and of
    the team ranking of a picture built meanwhile."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=200 * MS)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))
    net.run_for(5 * S)
    teams = [TeamEntry("Red", [PlayerEntry("near")]), TeamEntry("Blue", [PlayerEntry("far")])]
    net.carry(net.core.command(MatchStart(name="Final", format="quizbowl", teams=teams), net.now))
    net.carry(net.core.command(Arm(), net.now))
    net.run_for(200 * MS)
    press(near, net.now, "near-1")
    net.run_until(net.now + 100 * MS)  # decided, its results waiting for the disk
    assert near.frames("result") == []
    held = net.core.match_report(net.now)
    assert held is not None
    assert [q.buzzes for q in held.questions] == [[]]
    assert held.tossups_read == 0
    assert net.core.state(net.now).game.team_ranking == []
    net.run_for(300 * MS)
    assert near.last("result")["rank"] == 1
    told = net.core.match_report(net.now)
    assert told is not None
    assert [b.player for b in told.questions[0].buzzes] == ["near"]
    assert told.tossups_read == 1
    assert [t.team for t in net.core.state(net.now).game.team_ranking] == ["Red"]


def test_a_locked_out_node_back_while_a_decision_waits_for_the_disk_is_shown_locked_out() -> None:
    """The round as it stood before its decision, for a node that pressed before the release
    and reconnects meanwhile: armed, and locked out of it."""
    net = Net.hub(HubConfig(round=RoundSection(hostless=False)), commit_ns=200 * MS)
    console = host(net)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    eager = node(net, "eager", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))
    net.run_for(5 * S)
    console.send({"type": "arm"})
    net.run_for(3 * MS)
    press(eager, net.now, "eager-1")  # before the release: locked out of the round
    net.run_for(300 * MS)  # its answer, once saved
    assert eager.last("result")["flags"] == ["early"]
    press(near, net.now, "near-1")
    net.run_until(net.now + 100 * MS)  # decided, its results waiting for the disk
    assert net.core.engine.phase is Phase.DECIDED
    assert near.frames("result") == []
    back = node(net, "eager", up=fixed(MS), down=fixed(MS))  # the same station, reconnected
    net.run_for(5 * MS)
    welcome = back.last("welcome")["round"]
    assert (welcome["state"], welcome["winner"], welcome["locked_out"]) == ("armed", None, True)


def self_arming_room(commit_ns: int) -> tuple[Net, Station]:
    """Hostless: each round arms itself 50 ms after the last was decided, so the next one is
    armed while a decision still waits for the disk (a host's arm would wait for it to be
    told). A near node and a far one the rounds wait for; the near one, once round 1 is armed."""
    rules = RoundSection(auto_arm_delay_s=0.05, release_lead_ms=0)
    net = Net.hub(HubConfig(round=rules), commit_ns=commit_ns)
    near = node(net, "near", up=fixed(MS), down=fixed(MS))
    node(net, "far", up=fixed(30 * MS), down=fixed(MS))
    net.run_for(5 * S)
    assert (net.core.engine.number, net.core.engine.phase) == (1, Phase.ARMED)
    return net, near


def test_earlier_rounds_read_while_a_decision_waits_for_the_disk_do_not_show_it() -> None:
    """The next round armed at once: the decided one is now history, and a page of history
    (/api/history) is read from the engine. It shows the round as it stood until the decision
    is saved and told, then decided."""
    net, near = self_arming_room(commit_ns=200 * MS)
    press(near, net.now, "near-1")
    net.run_for(150 * MS)  # decided, and round 2 armed; round 1's press not yet on disk
    assert net.core.engine.number == 2
    assert near.frames("result") == []
    [held] = net.core.history(before=10, count=5)
    assert (held.number, held.state, held.winner, held.results) == (1, Phase.ARMED, None, [])
    net.run_for(300 * MS)  # the commit
    assert near.last("result")["rank"] == 1
    [told] = net.core.history(before=10, count=5)
    assert told.winner == "near"
    assert told.results[0].player == "near"


def test_a_second_decision_behind_the_first_is_kept_from_newcomers_too() -> None:
    """Both rounds decided before the first decision's press is saved: a node joining then is
    told neither winner."""
    net, near = self_arming_room(commit_ns=300 * MS)
    press(near, net.now, "near-1")
    net.run_for(100 * MS)  # round 1 decided, held; round 2 armed
    press(near, net.now, "near-2")
    net.run_for(50 * MS)  # round 2 decided too (the far link waited for), held behind round 1
    assert (net.core.engine.number, net.core.engine.phase) == (2, Phase.DECIDED)
    assert near.frames("result") == []
    late = node(net, "late", up=fixed(MS), down=fixed(MS))
    net.run_for(5 * MS)
    welcome = late.last("welcome")["round"]
    assert (welcome["number"], welcome["state"], welcome["winner"]) == (2, "armed", None)
    net.run_for(500 * MS)  # both saved and told
    assert [r["rank"] for r in near.frames("result")] == [1, 1]
    decided = [r for r in late.frames("round") if r["number"] == 2 and r["state"] == "decided"]
    assert [r["winner"] for r in decided] == ["near"]


def test_a_hosts_command_during_the_hold_waits_for_the_decision_and_keeps_its_order() -> None:
    """A ruling taken while the decision waits for the disk would score a winner no one has
    heard (and a restart would not bring back): it waits until the decision is told, and an
    arm sent after it waits behind it rather than overtaking it."""
    net, near, _, deadline = decided_room(commit_ns=200 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))  # round 1 decided, held
    assert near.frames("result") == []
    commanded = len(net.of(Commanded))  # the console's arm
    net.carry(net.core.command(Right(), net.now))
    net.carry(net.core.command(Arm(), net.now))
    assert net.core.engine.scores.player_totals() == {}
    assert net.core.engine.number == 1
    assert len(net.of(Commanded)) == commanded
    net.run_for(300 * MS)  # the commit: the decision told, then the ruling, then the arm
    assert near.last("result")["rank"] == 1
    heard = [frame["type"] for frame in near.heard if frame["type"] in ("result", "ruling")]
    assert heard == ["result", "ruling"]
    assert net.core.engine.scores.player_totals()["near"] > 0
    assert net.core.engine.number == 2
    assert [event.command for event in net.of(Commanded)[commanded:]] == ["right", "arm"]


def test_a_hosts_command_waiting_for_a_failing_disk_is_applied_when_it_fails() -> None:
    """The disk stops saving while a ruling waits for a decision: what was held is told at
    once (a room must not go without its results), and the ruling is applied with it."""
    net, near, _, deadline = decided_room(commit_ns=200 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))  # round 1 decided, held
    net.carry(net.core.command(Right(), net.now))
    assert net.core.engine.scores.player_totals() == {}
    failing = StorageView(saving=False, path=None, message="the disk is full")
    net.carry(net.core.storage_changed(failing, net.now))
    assert net.core.engine.scores.player_totals()["near"] > 0
    net.run_for(10 * MS)
    assert near.last("result")["rank"] == 1


def test_a_command_that_rules_on_nothing_held_is_not_held_up_by_the_disk() -> None:
    """An arm (or a reset, or the door for player pages) reads no decision: it is applied at
    once, even while one waits for the disk."""
    net, near, _, deadline = decided_room(commit_ns=200 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))  # round 1 decided, held
    net.carry(net.core.command(Arm(), net.now))
    assert net.core.engine.number == 2
    assert near.frames("result") == []  # round 1's result still waits for the disk


def test_a_fault_in_a_waiting_command_costs_neither_the_results_nor_the_commands_behind() -> None:
    """Waiting commands run where the results are released: one that fails is reported and
    dropped, the decision is still told, and the commands behind it are applied."""
    net, near, _, deadline = decided_room(commit_ns=200 * MS)
    net.now = deadline
    net.carry(net.core.timer(deadline))  # round 1 decided, held
    referee = net.core.referee
    command = referee.command

    def failing(message: Any, *args: Any) -> Any:
        if isinstance(message, Right):
            raise RuntimeError("a fault of the hub's")
        return command(message, *args)

    referee.command = failing  # type: ignore[method-assign]
    net.carry(net.core.command(Right(), net.now))
    net.carry(net.core.command(Arm(), net.now))  # behind it
    net.run_for(300 * MS)
    assert near.last("result")["rank"] == 1
    assert net.core.engine.number == 2
    [trouble] = net.of(Trouble)
    assert "host command 'right'" in trouble.text
