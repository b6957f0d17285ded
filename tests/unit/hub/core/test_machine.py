"""The hub core, driven with exact times on a simulated network: greeting, syncing, routing,
and who is told what in which order."""

from __future__ import annotations

import dataclasses
import itertools
from logging import DEBUG, INFO

from hub.config import (
    ClockSection,
    GameSection,
    HubConfig,
    LimitsSection,
    RoundSection,
    ServerSection,
)
from hub.core.events import (
    Commanded,
    Decided,
    Left,
    NodeJoined,
    PressTaken,
    Refused,
    Synced,
    TimerRang,
    TutorialJoined,
    TutorialJoins,
)
from hub.core.machine import JOIN_LOG_INTERVAL_NS, PRESSING_FOR_NS, Play
from tests.support.simulation import MS, Net, S, Station, fixed, host, node, press
from wire import messages as msg
from wire.enums import CloseCode

HOST_MODE = HubConfig(round=RoundSection(hostless=False))


def with_(config: HubConfig, **sections: object) -> HubConfig:
    return dataclasses.replace(config, **sections)  # type: ignore[arg-type]


def test_a_node_is_welcomed_then_synced_by_a_burst_then_periodically() -> None:
    net = Net.hub(HOST_MODE)
    alice = node(net, "desk-1", up=fixed(MS), down=fixed(MS), offset_ns=-7 * S)
    net.run_for(S)
    kinds = [frame["type"] for frame in alice.heard]
    assert kinds[0] == "welcome"
    assert alice.heard[0]["round"] == {
        "number": 0,
        "state": "idle",
        "release_ns": None,
        "synced": False,
        "locked_out": False,
        "winner": None,
        "out": False,
    }
    syncs = alice.frames("sync")
    burst = HOST_MODE.clock.burst
    assert [s["seq"] for s in syncs] == list(range(burst))  # the burst, nothing more yet
    gaps = {b["t0_ns"] - a["t0_ns"] for a, b in itertools.pairwise(syncs)}
    assert gaps == {round(HOST_MODE.clock.burst_interval_ms * MS)}
    # The node learns it is synced the moment it is (after the third reply), in a round frame.
    synced = net.of(Synced)
    assert [event.player for event in synced] == ["desk-1"]
    assert abs(synced[0].offset_ns - (-7 * S)) <= synced[0].uncertainty_ns
    assert alice.last("round")["synced"] is True
    net.run_for(2 * S)
    periodic = alice.frames("sync")[burst:]
    interval = HOST_MODE.clock.sync_interval_s * S
    assert periodic, "no periodic sync after the burst"
    assert all(
        0.75 * interval <= f["t0_ns"] - syncs[-1]["t0_ns"] <= 1.25 * interval for f in periodic[:1]
    )


def test_only_a_stations_link_is_handed_to_the_kernels_watch() -> None:
    """A station (a phone's player page too) sends nothing once its cable is pulled or its
    Wi-Fi lost: its link is watched by the kernel, which notices within seconds (see
    hub.server.LOST_STATION_S). Consoles and viewers play no part in a round, and tutorial
    clients (the classic tutorial's scripts) are left to the keepalive as before."""
    net = Net.hub(HOST_MODE)
    host(net)
    viewer = Station(net).open()
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer"})
    tutorial = Station(net).open()
    tutorial.send("buzz")
    alice = node(net, "desk-1", up=fixed(MS), down=fixed(MS))
    bob = node(net, "desk-2", input="keyboard")
    net.run_for(S)
    assert net.watched == {alice.link, bob.link}
    back = node(net, "desk-1")  # a station back on a new link: watched again
    net.run_for(S)
    assert back.link in net.watched


def test_hosts_and_viewers_are_welcomed_with_the_whole_picture() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    viewer = Station(net).open()
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer"})
    net.run_for(MS)
    for station, role in ((console, "host"), (viewer, "viewer")):
        welcome, state = station.heard[:2]
        assert welcome["type"] == "welcome"
        assert welcome["role"] == role
        assert welcome["greeting"] == f"Hello {role}!"
        assert state["type"] == "state"
        assert state["round"]["number"] == 0


def test_bad_first_frames_get_errors_and_a_hello_may_still_follow() -> None:
    net = Net.hub(HOST_MODE)
    station = Station(net).open()
    for frame in ("{nope", "[1]", '{"type":"press","press_id":"p","at_ns":1}'):
        station.send(frame)
    station.send({"type": "hello", "protocol": 1, "role": "viewer"})
    net.run_for(MS)
    codes = [f["code"] for f in station.frames("error")]
    assert codes == ["bad_json", "not_object", "hello_required"]
    assert station.frames("welcome")
    assert station.closed is None


def test_final_refusals_close_with_their_codes_and_stop_reading() -> None:
    net = Net.hub(with_(HOST_MODE, server=ServerSection(node_token="n-secret")))
    cases = {
        CloseCode.VERSION_MISMATCH: {"type": "hello", "protocol": 2, "role": "viewer"},
        CloseCode.BAD_TOKEN: {"type": "hello", "protocol": 1, "role": "host", "token": "wrong"},
    }
    stations = {}
    for code, hello in cases.items():
        station = stations[code] = Station(net).open()
        station.send(hello)
        station.send(hello)  # after a final refusal nothing more is read
    unnamed = Station(net).open()
    unnamed.send({"type": "hello", "protocol": 1, "role": "node", "id": "n1"})
    net.run_for(MS)
    for code, station in stations.items():
        assert station.closed == code
        assert len(station.frames("error")) == 1
    assert unnamed.closed == CloseCode.BAD_TOKEN
    assert unnamed.last("error")["code"] == "bad_token"
    assert len(net.of(Refused)) == 3


def test_silence_past_the_hello_deadline_is_closed_with_4400() -> None:
    config = with_(HOST_MODE, limits=LimitsSection(hello_timeout_s=2.0))
    net = Net.hub(config)
    quiet = Station(net).open()
    net.run_for(2 * S - 1)
    assert quiet.closed is None
    net.run_for(1)
    assert quiet.closed == CloseCode.BAD_HELLO
    assert [r.reason for r in net.of(Refused)] == ["no hello within 2 s (close 4400)"]


def test_bad_frames_do_not_buy_time_the_deadline_covers_the_whole_greeting() -> None:
    config = with_(HOST_MODE, limits=LimitsSection(hello_timeout_s=2.0))
    net = Net.hub(config)
    staller = Station(net).open()
    opened = net.now
    for after in (500 * MS, 1_000 * MS, 2 * S - MS):
        net.at(opened + after, lambda: staller.send('{"type":"press"}'))
    net.run_until(opened + 2 * S - 1)
    assert [f["code"] for f in staller.frames("error")] == ["missing_field"] * 3
    assert staller.closed is None
    net.run_for(1)
    assert staller.closed == CloseCode.BAD_HELLO
    final = [r.reason for r in net.of(Refused) if r.closed]
    assert final == ["no hello within 2 s (close 4400)"]


def test_a_second_link_for_a_node_replaces_the_first_and_the_old_one_leaves_quietly() -> None:
    net = Net.hub(HOST_MODE)
    first = node(net, "box")
    net.run_for(MS)
    second = node(net, "box")
    net.run_for(MS)
    assert first.closed == CloseCode.REPLACED
    assert second.frames("welcome")
    assert [event.replaced for event in net.of(NodeJoined)] == [False, True]
    assert net.of(Left) == []  # the replaced link's end is not the player leaving


def test_a_decision_reaches_the_pressers_before_the_other_nodes_hear_of_it() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    pressing = node(net, "a")
    others = [node(net, f"n{i}") for i in range(3)]
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    order: list[str] = []
    for station, name in ((pressing, "a"), *((o, "other") for o in others)):
        original = station.receive

        def spy(frame: str, original=original, name=name) -> None:  # type: ignore[no-untyped-def]
            if '"type":"result"' in frame or '"state":"decided"' in frame:
                order.append(f"{name}:{'result' if 'result' in frame else 'decided'}")
            original(frame)

        station.receive = spy  # type: ignore[method-assign]
    press(pressing, net.now, "a.1")
    net.run_for(S)
    assert order[0] == "a:result"
    assert order.count("other:decided") == 3


def test_a_press_is_acked_only_once_saved_and_its_result_does_not_wait() -> None:
    net = Net.hub(HOST_MODE, commit_ns=10 * MS)
    console = host(net)
    alice = node(net, "a")
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    press(alice, net.now, "a.1")
    decided_at = None
    while not alice.frames("ack"):
        net.run_for(MS)
        if decided_at is None and alice.frames("result"):
            decided_at = net.now
    assert decided_at is not None, "the result came after the ack"
    assert [f["type"] for f in alice.heard if f["type"] in ("ack", "result")] == ["result", "ack"]


def test_host_commands_are_routed_and_refusals_echo_their_ref() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    viewer = Station(net).open()
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer"})
    net.run_for(MS)
    viewer.send({"type": "arm"})
    console.send({"type": "right", "ref": "q7"})
    console.send({"type": "arm"})
    net.run_for(MS)
    assert viewer.last("error")["code"] == "not_allowed"
    refusal = console.last("error")
    assert (refusal["code"], refusal["ref"]) == ("nothing_to_rule", "q7")
    assert [c.command for c in net.of(Commanded)] == ["right", "arm"]
    assert console.last("state")["round"]["state"] == "armed"


def test_refusing_browser_players_drops_only_the_pages() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    page = node(net, "phone", input="browser")
    button = node(net, "box")
    net.run_for(S)
    console.send({"type": "players", "browser": False})
    net.run_for(MS)
    assert page.closed == CloseCode.INPUT_REFUSED
    assert page.last("error")["code"] == "not_allowed"
    assert button.closed is None
    again = node(net, "phone2", input="browser")
    net.run_for(MS)
    assert again.closed == CloseCode.INPUT_REFUSED
    assert console.last("state")["join"] == {"browser_players": False, "token_required": False}


def test_tutorial_clients_get_the_classic_replies_byte_for_byte() -> None:
    net = Net.hub(with_(HubConfig(), round=RoundSection(hostless=True, release_lead_ms=0)))
    carol = Station(net, up=fixed(2 * MS), down=fixed(2 * MS)).open()
    dave = Station(net).open()
    carol.send("Carol")
    dave.send("Dave")
    net.run_for(S)
    press_at = net.now
    net.at(press_at, lambda: dave.send("buzz"))
    net.at(press_at + 120 * MS, lambda: carol.send("buzz"))
    net.run_for(S)
    assert dave.heard == ["Hello Dave!", "First place!"]
    assert carol.heard[0] == "Hello Carol!"
    # Carol's buzz arrived 122 ms after Dave's, placed 2 ms (half her round trip) earlier.
    assert carol.heard[1] == "Response time: 0.12 sec slower."
    decided = net.of(Decided)
    assert decided[0].name == "Dave"


def test_a_room_of_tutorial_clients_joining_at_once_is_logged_in_two_lines() -> None:
    """Their first ``buzz`` greets: a line for the first, then one summing the rest once the
    second is over; each join is still told, at debug level. A later join has its own line."""
    net = Net.hub(with_(HubConfig(), round=RoundSection(hostless=True, release_lead_ms=0)))
    clients = [Station(net).open() for _ in range(50)]
    net.run_for(S)
    for client in clients:
        client.send("buzz")
    net.run_for(JOIN_LOG_INTERVAL_NS // 2)
    joined = net.of(TutorialJoined)
    assert len(joined) == 50
    assert [event.level for event in joined] == [INFO] + [DEBUG] * 49
    assert not net.of(TutorialJoins)  # the second is not over
    net.run_for(JOIN_LOG_INTERVAL_NS)
    (summed,) = net.of(TutorialJoins)
    assert (summed.count, summed.first, summed.last) == (49, joined[1].player, joined[-1].player)
    assert summed.level == INFO
    late = Station(net).open()
    net.run_for(S)
    late.send("buzz")
    net.run_for(S)
    assert net.of(TutorialJoined)[-1].level == INFO
    assert len(net.of(TutorialJoins)) == 1


def test_every_sync_reply_must_match_an_outstanding_sync() -> None:
    net = Net.hub(with_(HOST_MODE, clock=ClockSection(burst=3)))
    station = node(net, "n", answers_syncs=False)
    net.run_for(MS)
    sync = station.last("sync")
    reply = {"type": "sync_reply", "seq": sync["seq"], "t0_ns": sync["t0_ns"] + 1}
    station.send({**reply, "t1_ns": 5, "t2_ns": 6})
    net.run_for(MS)
    assert station.last("warning")["code"] == "unknown_sync"


def test_state_pictures_are_paced_but_a_command_is_shown_at_once() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    net.run_for(MS)
    console.send({"type": "arm"})
    before = len(console.frames("state"))
    net.run_for(MS)
    assert len(console.frames("state")) == before + 1  # at once, not after the pacing gap
    stations = [node(net, f"n{i}") for i in range(20)]
    net.run_for(40 * MS)  # twenty joins within the pacing gap: one picture, not twenty
    assert len(console.frames("state")) <= before + 2
    assert stations[-1].frames("welcome")
    assert msg.PROTOCOL_VERSION == 1


def test_a_wrong_answer_is_heard_before_the_rebound_round() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    ann = node(net, "ann")
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(300 * MS)
    press(ann, net.now, "ann.1")
    net.run_for(S)
    console.send({"type": "wrong", "mode": "rearm", "points": -5})
    net.run_for(MS)
    after = [f["type"] for f in ann.heard[ann.heard.index(ann.last("result")) :]]
    assert after[-2:] == ["ruling", "round"]
    assert ann.last("ruling")["text"] == "Wrong. -5"
    assert ann.last("round")["locked_out"] is True


def test_every_refusal_of_a_message_echoes_its_ref() -> None:
    net = Net.hub(HOST_MODE)
    viewer = Station(net).open()
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer"})
    box = node(net, "box")
    net.run_for(MS)
    viewer.send({"type": "arm", "ref": "v1"})
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer", "ref": "v2"})
    box.send({"type": "score", "points": 5, "player": "box", "ref": "b1"})
    net.run_for(MS)
    assert [(e["code"], e["ref"]) for e in viewer.frames("error")] == [
        ("not_allowed", "v1"),
        ("already_greeted", "v2"),
    ]
    assert (box.last("error")["code"], box.last("error")["ref"]) == ("not_allowed", "b1")


def test_the_core_tells_whether_a_pause_would_land_in_a_round_or_a_burst() -> None:
    net = Net.hub(HOST_MODE)
    console = host(net)
    alice = node(net, "a")
    net.run_for(S)
    assert net.core.play(net.now) is Play.QUIET  # connected and syncing: nothing to disturb
    console.send({"type": "arm"})
    net.run_for(200 * MS)
    assert net.core.play(net.now) is Play.ARMED  # nobody pressed yet
    press(alice, net.now, "a.1")
    net.run_for(S)
    assert net.of(Decided)
    (taken,) = net.of(PressTaken)
    assert net.core.play(net.now) is Play.PRESSING  # decided; stragglers may still come
    net.run_for(taken.arrival_ns + PRESSING_FOR_NS - net.now - MS)
    assert net.core.play(net.now) is Play.PRESSING
    net.run_for(2 * MS)
    assert net.core.play(net.now) is Play.QUIET


def test_a_frame_handled_late_is_placed_by_when_it_was_read() -> None:
    """The hub's own wait to handle a frame is no upload delay of the node's: counted as one, it
    would lengthen every round's wait for presses in flight."""
    uploads, errors = {}, {}
    for tells in (True, False):
        net = Net.hub(HOST_MODE, handling_lag_ns=5 * MS, tells_arrival=tells)
        console = host(net)
        alice = node(net, "a", up=fixed(MS), down=fixed(MS), offset_ns=3 * S)
        net.run_for(5 * S)
        estimate = net.core.roster.players["a"].clock.estimate
        assert estimate is not None
        uploads[tells] = estimate.upload_ns
        console.send({"type": "arm"})
        net.run_for(S)
        made = net.now
        press(alice, made, "a.1")
        net.run_for(S)
        (taken,) = net.of(PressTaken)
        assert taken.arrival_ns == made + MS + (0 if tells else 5 * MS)
        errors[tells] = taken.at_ns - made
    assert uploads[True] <= 1.2 * MS
    assert abs(errors[True]) <= 0.2 * MS
    # What the test guards against: half the wait taken for the upload, half for the clock.
    assert uploads[False] >= 3 * MS
    assert errors[False] >= 2 * MS


def test_a_tutorial_buzz_handled_late_is_placed_by_when_it_was_read() -> None:
    net = Net.hub(HOST_MODE, handling_lag_ns=5 * MS)
    console = host(net)
    bob = Station(net, up=fixed(MS), down=fixed(MS)).open()
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(S)
    made = net.now
    bob.send("buzz")
    net.run_for(S)
    (taken,) = net.of(PressTaken)
    assert taken.arrival_ns == made + MS  # read then, handled 5 ms later
    assert taken.at_ns <= made + MS


def test_a_round_waits_for_presses_read_with_the_first_that_still_wait_to_be_handled() -> None:
    """Frames read together are handled one after another: the first press handled must not
    close the round on its own because it waited, while an earlier press read with it waits
    behind it."""
    net = Net.hub(HOST_MODE, handling_lag_ns=5 * MS)
    console = host(net)
    near = Station(net, up=fixed(MS), down=fixed(MS)).open()
    far = Station(net, up=fixed(3 * MS), down=fixed(3 * MS)).open()
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(S)
    pressed = net.now
    far.send("buzz")  # made 1 ms before near's, arrives 1 ms after it
    net.run_for(MS)
    near.send("buzz")
    net.run_for(S)
    near_taken, far_taken = net.of(PressTaken)  # near's was read first, and handled first
    assert (near_taken.arrival_ns, far_taken.arrival_ns) == (pressed + 2 * MS, pressed + 3 * MS)
    assert far_taken.at_ns < near_taken.at_ns
    (decided,) = net.of(Decided)
    assert decided.winner == far_taken.player


def test_a_burst_handled_one_frame_after_another_is_decided_only_once_all_are_handled() -> None:
    """Twenty presses read within a millisecond are handled 0.2 ms apart, the earliest made
    last: by the time it is handled the round's deadline has long passed, yet it must win."""
    winners = {}
    for tells in (True, False):
        net = Net.hub(HOST_MODE, tells_arrival=tells)
        console = host(net)
        stations = [
            node(net, f"n{k:02}", up=fixed(MS), down=fixed(MS), handled_after_ns=k * 200_000)
            for k in range(20)
        ]
        net.run_for(5 * S)
        console.send({"type": "arm"})
        net.run_for(S)
        start = net.now
        for k, station in enumerate(stations):  # n19 first, n00 last, 40 µs apart
            press(station, start + (19 - k) * 40_000, f"n{k:02}.1")
        net.run_for(S)
        (decided,) = net.of(Decided)
        winners[tells] = decided.winner
    assert winners[True] == "n19"
    assert winners[False] != "n19"  # decided before the earliest press was handled


def armed_beside_a_stuck_station(config: HubConfig, presser: str) -> tuple[Net, Station, Station]:
    """Two synced nodes (1 ms each way), one to press and one whose next frame the test will
    leave waiting in the hub, and the round just armed."""
    net = Net.hub(config)
    console = host(net)
    pressing = node(net, presser, up=fixed(MS), down=fixed(MS))
    stuck = node(net, "stuck", up=fixed(MS), down=fixed(MS))
    net.run_for(5 * S)
    console.send({"type": "arm"})
    net.run_for(10 * MS)
    return net, pressing, stuck


def test_a_frame_that_stays_unhandled_holds_a_round_up_no_longer_than_the_cap() -> None:
    config = with_(HOST_MODE, round=RoundSection(hostless=False, adjudication_cap_ms=100))
    net, fast, stuck = armed_beside_a_stuck_station(config, "fast")
    net.run_for(S)
    stuck.handled_after_ns = S  # its next frame waits a second to be handled
    stuck.send({"type": "status"})
    net.run_for(MS)
    press(fast, net.now, "fast.1")
    net.run_for(2 * S)
    (decided,) = net.of(Decided)
    assert decided.winner == "fast"
    assert decided.wait_ns <= 110 * MS  # the cap, not the second the stuck frame waited


def a_buzz_window_about_to_end() -> tuple[Net, Station, Station, int]:
    """A round with a one-second buzz window, 3 ms before it ends; the stuck station's messages
    are handled 100 ms after they are read from now on. Returns the window's end too."""
    config = with_(HOST_MODE, game=GameSection(buzz_window_s=1.0))
    net, late, stuck = armed_beside_a_stuck_station(config, "late")
    current = net.core.engine.current
    assert current is not None
    window_end = current.release_ns + S
    net.run_until(window_end - 3 * MS)
    stuck.handled_after_ns = 100 * MS
    return net, late, stuck, window_end


def test_a_press_made_after_the_buzz_window_ran_out_cannot_win_while_its_tick_is_held() -> None:
    """The window's end is an engine deadline held, like a decision, while a message read before
    it waits to be handled; a press made after it, handled meanwhile, must not win."""
    net, late, stuck, window_end = a_buzz_window_about_to_end()
    stuck.send({"type": "status"})  # read 2 ms before the window ends, handled 100 ms later
    net.run_until(window_end + 2 * MS)
    press(late, window_end + 5 * MS, "late.1")
    net.run_for(2 * S)
    assert not net.of(Decided)
    assert net.of(TimerRang)  # the window ran out, as without the held message


def test_a_press_in_the_window_still_waiting_to_be_handled_wins_over_one_made_after_it() -> None:
    net, late, slow, window_end = a_buzz_window_about_to_end()
    press(slow, window_end - 2 * MS, "stuck.1")  # in time, read 1 ms before the end
    press(late, window_end + 5 * MS, "late.1")  # too late, handled long before the other
    net.run_for(2 * S)
    (decided,) = net.of(Decided)
    assert decided.winner == "stuck"
