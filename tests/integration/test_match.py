"""A match run from a shell with ``buzzer-hub ctl`` against a real hub: start, neg, rebound,
bonus, undo, refusals a host can act on, a hub killed mid-match that comes back with the match,
and the result out of ``ctl export``, ``/api/match.*`` (host token required) and
``buzzer-hub export --match``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import HOST_TOKEN, console_script
from tests.e2e.conftest import FakeClockNode
from tests.integration.test_quiz_bowl import ctl, wait_state

CONFIG = """
[round]
release_lead_ms = 0
[match]
tossup_time_s = 60
"""


async def export(data_dir: Any, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        console_script("buzzer-hub"),
        "export",
        "--data-dir",
        str(data_dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def http_get(url: str, token: str | None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_match_from_the_command_line_survives_a_crash_and_exports(
    start_hub, client_factory, tmp_path
) -> None:
    data = tmp_path / "data"
    hub = start_hub("--host-mode", config=CONFIG, data_dir=data)
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("state")
    # Stations that answer every clock sync at once, as real ones do: their presses are placed
    # to well within a millisecond, and "before the end of the question" means what it says.
    nodes = {
        node_id: await FakeClockNode(hub.url, node_id, node_id).join()
        for node_id in ("ann", "amy", "bob")
    }
    try:
        await wait_state(host, lambda s: sum(p["synced"] for p in s["players"]) == 3)
        await play(hub, host, nodes, data, client_factory)
    finally:
        for node in nodes.values():
            await node.leave()


async def buzz(host: Any, node: FakeClockNode, number: int) -> dict[str, Any]:
    """Press now, once round ``number`` is armed; the state in which the press has the floor."""
    await wait_state(
        host, lambda s: s["round"]["number"] == number and s["round"]["state"] == "armed"
    )
    await node.press(time.monotonic_ns())
    return await wait_state(host, lambda s: (s["game"]["answering"] or {}).get("player") == node.id)


async def play(
    hub: Any, host: Any, nodes: dict[str, FakeClockNode], data: Any, client_factory: Any
) -> None:
    code, out, err = await ctl(
        hub.url,
        "match-start",
        "--name",
        "Final",
        "--packet",
        "Packet 9",
        "--team",
        "Red: ann=Ann, amy=Amy",
        "--team",
        "Blue: bob=Bob",
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "answering: nobody; players: -; teams: Red 0, Blue 0"
    code, out, err = await ctl(hub.url, "score", "--team", "Green", "--points", "5")
    assert code == 1
    assert err.strip() == (
        "buzzer-hub ctl: the hub refused: 'score': no team 'Green'; teams: Blue, Red"
    )
    code, _, err = await ctl(hub.url, "score", "--player", "nobody-9", "--points", "5")
    assert code == 1
    assert "no player 'nobody-9'; players: amy, ann, bob" in err

    # A neg, then Blue's rebound after the end of the question.
    assert (await ctl(hub.url, "arm"))[0] == 0
    await buzz(host, nodes["ann"], 1)
    code, out, err = await ctl(hub.url, "arm")
    assert code == 1  # the floor is not thrown away from a shell either
    assert "Ann has the floor: rule the answer first" in err
    code, out, err = await ctl(hub.url, "wrong")
    assert code == 0, err
    assert "players: Ann -5" in out
    state = await wait_state(host, lambda s: s["round"]["number"] == 2)
    assert state["game"]["out"] == {"players": ["ann"], "teams": ["Red"]}
    assert state["game"]["eligible"] == ["bob"]
    code, _, err = await ctl(hub.url, "read")
    assert code == 0, err
    state = await buzz(host, nodes["bob"], 2)
    assert state["game"]["defaults"] == {"right": 10, "power": None, "wrong": 0}
    code, _, err = await ctl(hub.url, "right", "--power")
    assert code == 1
    assert "a power needs a buzz before the end of the question" in err
    code, _, err = await ctl(hub.url, "wrong", "--points", "5")
    assert code == 1
    assert "a wrong answer cannot give points" in err
    assert (await ctl(hub.url, "right"))[0] == 0
    for points in ("10", "10"):
        assert (await ctl(hub.url, "bonus", "--points", points))[0] == 0
    code, _, err = await ctl(hub.url, "undo")
    assert code == 0, err

    # The hub dies; it comes back with the match, its log and its scores.
    before = await wait_state(host, lambda s: (s["game"]["bonus"] or {}).get("part") == 2)
    hub.kill()
    hub.start()
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    after = (await host.expect("state"))["game"]
    assert after["match"]["name"] == "Final"
    assert after["bonus"] == {**before["game"]["bonus"], "deadline_ns": None}
    assert after["bonus"]["part"] == 2
    assert after["points"] == before["game"]["points"]
    assert after["points"]["teams"] == {"Red": -5, "Blue": 20}
    assert [(a["name"], a["kind"], a["points"]) for a in after["log"][0]["answers"]] == [
        ("Ann", "neg", -5),
        ("Bob", "right", 10),
    ]

    for points in ("0", "10"):
        assert (await ctl(hub.url, "bonus", "--points", points))[0] == 0
    code, qbj_text, err = await ctl(hub.url, "export", "--format", "qbj")
    assert code == 0, err
    qbj = json.loads(qbj_text)
    assert [b["result"]["value"] for b in qbj["match_questions"][0]["buzzes"]] == [-5, 10]
    assert [p["controlled_points"] for p in qbj["match_questions"][0]["bonus"]["parts"]] == [
        10,
        0,
        10,
    ]
    assert qbj["packets"] == "Packet 9"

    # The host's download needs the host token, like every host action.
    url = f"{hub.http}/api/match.csv"
    assert http_get(url, None)[0] == 401
    assert http_get(url, "not-the-token")[0] == 401
    status, text = http_get(url, HOST_TOKEN)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["team"]: r["points"] for r in rows if r["row"] == "team total"} == {
        "Red": "-5",
        "Blue": "30",
    }
    assert http_get(f"{hub.http}/api/match.json?match=7", HOST_TOKEN) == (404, "no match 7\n")

    assert (await ctl(hub.url, "match-end"))[0] == 0
    # Read straight from the database, while the hub runs.
    code, out, err = await export(data, "--match", "latest", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["match"]["status"] == "ended"
    assert [(t["name"], t["points"]) for t in result["teams"]] == [("Red", -5), ("Blue", 30)]
    code, out, err = await export(data, "--match", "2")
    assert code == 1
    assert err.strip() == f"buzzer-hub export: no match 2 in {data}; matches: 1"
