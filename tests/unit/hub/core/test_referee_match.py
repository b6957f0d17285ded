"""Matches through the hub core on a simulated network, with exact times: what the console, the
big screen and each player station hear, in a Jeopardy-style round with early presses in every
state, a quiz-bowl rebound, and refusals that tell the host what to do."""

from __future__ import annotations

import dataclasses
from typing import Any

from hub.config import HubConfig, RoundSection
from hub.core.events import (
    BonusPartScored,
    CommandRefused,
    EntryUndone,
    MatchBegun,
    MatchOver,
    QuestionEnded,
    ReadToTheEnd,
)
from tests.support.simulation import MS, Net, S, Station, fixed, host, node, press

LEAD = 100 * MS
CONFIG = HubConfig(round=RoundSection(hostless=False, release_lead_ms=100.0))


def match(console: Station, fmt: str, teams: dict[str, list[str]], ref: str = "m") -> None:
    console.send(
        {
            "type": "match_start",
            "name": "Round 1",
            "format": fmt,
            "teams": [
                {"name": name, "players": [{"id": p} for p in players]}
                for name, players in teams.items()
            ],
            "ref": ref,
        }
    )


def results(station: Station) -> list[dict[str, Any]]:
    return station.frames("result")


def game(console: Station) -> dict[str, Any]:
    state: dict[str, Any] = console.last("state")["game"]
    return state


def test_a_jeopardy_round_with_early_presses_in_every_state() -> None:
    """Idle before the first clue, during the clue after a ruling (closed), between the arm
    and the light, and stamped during the clue but heard after the arm: every one locks the
    player out for 250 ms from that press, and the player who waited for the light wins."""
    net = Net.hub(CONFIG)
    console = host(net)
    ann = node(net, "ann", up=fixed(1 * MS), down=fixed(1 * MS))
    bob = node(net, "bob", up=fixed(1 * MS), down=fixed(1 * MS))
    cat = node(net, "cat", up=fixed(30 * MS), down=fixed(1 * MS))  # a slow uplink
    net.run_for(S)
    match(console, "jeopardy", {"Ann": ["ann"], "Bob": ["bob"], "Cat": ["cat"]})
    net.run_for(MS)
    assert game(console)["match"]["format"]["name"] == "jeopardy"
    assert game(console)["rules"]["lockout_ns"] == 250 * MS

    # 1. idle, before the first clue
    press(ann, net.now, "ann-1")
    net.run_for(10 * MS)
    idle = results(ann)[-1]
    assert (idle["flags"], idle["lockout_ns"]) == (["early"], 250 * MS)
    assert idle["text"] == "Too early! Locked out for 0.250 s."

    # clue 1: armed; 2. between the arm and the light
    console.send({"type": "value", "points": 400})
    net.run_for(S)
    armed_at = net.now
    console.send({"type": "arm"})
    net.run_for(50 * MS)
    press(bob, net.now, "bob-1")  # 50 ms after the arm: 50 ms before the light
    net.run_for(10 * MS)
    assert results(bob)[-1]["flags"] == ["early"]
    release = console.last("state")["round"]["release_ns"]
    assert release == armed_at + LEAD  # the host's link takes no time in this simulation
    press(bob, release + 27 * MS, "bob-2")  # 27 ms after the light: still locked
    press(ann, release + 60 * MS, "ann-2")
    net.run_for(200 * MS)
    assert results(bob)[-1]["flags"] == ["locked"]
    assert console.last("state")["game"]["answering"]["player"] == "ann"
    console.send({"type": "right"})
    net.run_for(MS)
    assert game(console)["answering"] is None
    assert console.last("state")["round"]["state"] == "closed"

    # 3. closed after a ruling, during the next clue: early for the clue to come
    net.run_for(2 * S)
    press(bob, net.now, "bob-3")
    net.run_for(10 * MS)
    during = results(bob)[-1]
    assert (during["flags"], during["round"]) == (["early"], 2)
    net.run_for(S)  # the clue goes on: bob's 250 ms run out long before the light
    # 4. stamped during the clue, heard after the arm (a 30 ms uplink)
    arm_at = net.now + 20 * MS
    press(cat, arm_at - 10 * MS, "cat-1")
    net.at(arm_at, lambda: console.send({"type": "arm"}))
    net.run_for(60 * MS)
    assert results(cat)[-1]["flags"] == ["early"]
    release = console.last("state")["round"]["release_ns"]
    press(cat, release + 5 * MS, "cat-2")  # locked: 235 ms of its lockout are left
    press(bob, release + 20 * MS, "bob-4")
    net.run_for(300 * MS)
    assert results(cat)[-1]["flags"] == ["locked"]
    assert results(bob)[-1]["rank"] == 1
    refused = {(r["player"], tuple(r["flags"])) for r in console.last("state")["round"]["refused"]}
    assert refused == {("bob", ("early",)), ("cat", ("early",)), ("cat", ("locked",))}
    # Wrong costs the clue's value; the clue re-arms for the others at once.
    console.send({"type": "wrong"})
    net.run_for(MS)
    assert console.last("ruling")["text"] == "Wrong. -400"
    assert bob.last("round")["locked_out"] is True
    assert ann.last("round")["locked_out"] is False
    assert sorted(game(console)["eligible"]) == ["ann", "cat"]


def test_a_quiz_bowl_question_read_neg_rebound_and_the_log_the_console_shows() -> None:
    net = Net.hub(CONFIG)
    console = host(net)
    viewer = Station(net).open()
    viewer.send({"type": "hello", "protocol": 1, "role": "viewer"})
    players = {p: node(net, p) for p in ("ann", "amy", "bob", "bea")}
    net.run_for(S)
    match(console, "quizbowl", {"Red": ["ann", "amy"], "Blue": ["bob", "bea"]})
    net.run_for(MS)
    assert [e.teams for e in net.of(MatchBegun)] == [("Red", "Blue")]
    state = console.last("state")
    assert [t["team"] for t in state["game"]["teams"]] == ["Red", "Blue"]
    assert [t["points"] for t in state["game"]["teams"]] == [0, 0]  # shown before any score
    console.send({"type": "arm"})
    net.run_for(S)
    press(players["amy"], net.now, "amy-1")
    net.run_for(50 * MS)
    assert game(console)["defaults"] == {"right": 10, "power": 15, "wrong": -5}
    console.send({"type": "wrong"})  # a neg; Red is out, Blue may buzz
    net.run_for(MS)
    assert game(console)["eligible"] == ["bea", "bob"]
    assert players["ann"].last("round")["locked_out"] is True
    console.send({"type": "read"})
    net.run_for(MS)
    assert game(console)["read"] is True
    assert game(console)["buzz_deadline_ns"] == net.now + 5 * S - MS  # the tossup timer
    press(players["bob"], net.now, "bob-1")
    net.run_for(50 * MS)
    assert game(console)["defaults"] == {"right": 10, "power": None, "wrong": 0}
    console.send({"type": "right"})
    net.run_for(MS)
    assert game(console)["bonus"] == {
        "team": "Blue",
        "part": 1,
        "parts": 3,
        "part_value": 10,
        "deadline_ns": None,
    }
    console.send({"type": "bonus", "points": 10})
    console.send({"type": "arm", "ref": "next"})  # two parts are not scored yet
    net.run_for(MS)
    error = console.last("error")
    assert (error["code"], error["ref"]) == ("not_now", "next")
    assert error["message"].startswith("the bonus for Blue is at part 2 of 3")
    assert [e.reason for e in net.of(CommandRefused)] == [error["message"]]
    console.send({"type": "undo"})
    net.run_for(MS)
    assert [e.text for e in net.of(EntryUndone)] == ["undone: bonus part 1 for Blue (question 1)"]
    for points in (10, 0, 10):
        console.send({"type": "bonus", "points": points})
    net.run_for(MS)
    assert [(e.part, e.points) for e in net.of(BonusPartScored)] == [
        (1, 10),
        (1, 10),
        (2, 0),
        (3, 10),
    ]
    assert [e.question for e in net.of(ReadToTheEnd)] == [1]
    log = game(viewer)["log"]
    assert [(a["name"], a["kind"], a["points"]) for a in log[0]["answers"]] == [
        ("amy", "neg", -5),
        ("bob", "right", 10),
    ]
    assert [b["player"] for b in log[0]["buzzes"]] == ["amy", "bob"]
    assert [t["points"] for t in game(viewer)["teams"]] == [-5, 30]
    # the next question: nobody buzzes after it is read; it dies when the timer runs out
    console.send({"type": "arm"})
    net.run_for(S)
    console.send({"type": "read"})
    net.run_for(5 * S)
    assert [(e.question, e.reason) for e in net.of(QuestionEnded)] == [(2, "time")]
    assert console.last("timer")["text"] == "Nobody buzzed in: the round is closed."
    console.send({"type": "match_end"})
    net.run_for(MS)
    (over,) = net.of(MatchOver)
    assert over.scores == (("Red", -5), ("Blue", 30))
    last = game(console)["last_match"]
    assert last == {
        "number": 1,
        "name": "Round 1",
        "teams": [{"id": "Red", "points": -5}, {"id": "Blue", "points": 30}],
    }
    assert game(console)["match"] is None


def test_a_score_for_a_player_or_team_nobody_knows_is_refused_with_the_known_ones() -> None:
    net = Net.hub(dataclasses.replace(CONFIG))
    console = host(net)
    node(net, "buzzer-1")
    net.run_for(S)
    console.send({"type": "score", "player": "nobody-9", "points": 5, "ref": "s1"})
    console.send({"type": "team", "player": "buzzer-1", "team": "Table 6"})
    console.send({"type": "score", "team": "table  6", "points": 5})
    console.send({"type": "score", "team": "Table 7", "points": 5, "ref": "s2"})
    net.run_for(MS)
    errors = [(e["code"], e["ref"], e["message"]) for e in console.frames("error")]
    assert errors == [
        ("unknown_name", "s1", "'score': no player 'nobody-9'; players: buzzer-1"),
        ("unknown_name", "s2", "'score': no team 'Table 7'; teams: Table 6"),
    ]
    assert game(console)["points"]["teams"] == {"Table 6": 5}
    assert [p["team"] for p in console.last("state")["players"]] == ["Table 6"]
