"""`buzzer-hub ctl`, run as a separate process against a real hub, as scripts use it.

The hub runs in the test's event loop; ctl is the installed command, in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from hub.core.events import Armed, Commanded
from tests.conftest import HOST_TOKEN, PROXY_VARIABLES, Client, InProcessHubs, console_script

HOST_MODE = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


async def ctl(
    url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 20
) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "BUZZER_HOST_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        console_script("buzzer-hub"),
        "ctl",
        "--hub",
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment, **(env or {})},
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_arm_close_reset_and_status_drive_the_round(
    run_hub: InProcessHubs, client_factory: Callable[..., Any]
) -> None:
    hub = await run_hub(HOST_MODE)
    player: Client = await client_factory(hub.url, role="node", id="desk-1", name="Alice")
    await player.expect("welcome")
    token = ("--token", HOST_TOKEN)

    assert await ctl(hub.url, *token, "arm") == (0, "round 1: armed\n", "")
    await player.expect("round", number=1, state="armed")
    await player.send(type="press", press_id="p1", at_ns=2**62)
    result = await player.expect("result", press_id="p1")
    assert result["rank"] == 1

    code, out, err = await ctl(hub.url, *token, "status")
    assert (code, err) == (0, "")
    status = json.loads(out)
    assert set(status) == {"round", "players", "history", "game"}
    assert status["round"]["number"] == 1
    assert status["round"]["state"] == "decided"
    assert status["round"]["winner"] == "Alice"
    assert [(r["player"], r["rank"]) for r in status["round"]["results"]] == [("desk-1", 1)]
    assert [(p["id"], p["name"], p["online"]) for p in status["players"]] == [
        ("desk-1", "Alice", True)
    ]

    assert await ctl(hub.url, *token, "close") == (0, "round 1: closed\n", "")
    await player.expect("round", number=1, state="closed")
    assert await ctl(hub.url, *token, "reset") == (0, "round 1: idle\n", "")
    await player.expect("round", number=1, state="idle")
    assert await ctl(hub.url, *token, "arm") == (0, "round 2: armed\n", "")
    await player.expect("round", number=2, state="armed")

    code, out, _ = await ctl(hub.url, *token, "status")
    status = json.loads(out)
    assert status["round"]["results"] == []
    assert [(r["number"], r["winner"]) for r in status["history"]] == [(1, "Alice")]
    # Each command came from a host on this machine, and each was carried out once.
    commands = [e for e in hub.events.events() if isinstance(e, Commanded)]
    assert [e.command for e in commands] == ["arm", "close", "reset", "arm"]
    assert all(e.peer.startswith("127.0.0.1:") for e in commands)
    assert [e.round for e in hub.events.events() if isinstance(e, Armed)] == [1, 2]


async def test_token_may_come_from_the_environment(run_hub: InProcessHubs) -> None:
    hub = await run_hub(HOST_MODE)
    code, out, err = await ctl(hub.url, "status", env={"BUZZER_HOST_TOKEN": HOST_TOKEN})
    assert (code, err) == (0, "")
    assert json.loads(out)["round"]["state"] == "idle"


#: Proxies the environment names, as on a laptop from an office, at a port where nothing listens;
#: none is bypassed for the hub's address.
DEAD_PROXIES = {
    **{name: "http://127.0.0.1:9" for name in PROXY_VARIABLES},
    "no_proxy": "",
    "NO_PROXY": "",
}


async def test_a_proxy_in_the_environment_is_not_used_to_reach_the_hub(
    run_hub: InProcessHubs,
) -> None:
    hub = await run_hub(HOST_MODE)
    code, out, err = await ctl(hub.url, "status", "--token", HOST_TOKEN, env=DEAD_PROXIES)
    assert (code, err) == (0, "")
    assert json.loads(out)["round"]["state"] == "idle"
    # export goes over HTTP: the hub itself answers (no match has been played yet).
    code, out, err = await ctl(hub.url, "export", "--token", HOST_TOKEN, env=DEAD_PROXIES)
    assert err.startswith("buzzer-hub ctl: the hub refused:"), err


async def test_wrong_or_missing_token_is_one_line_and_exit_1(run_hub: InProcessHubs) -> None:
    hub = await run_hub(HOST_MODE)
    for args in (("--token", "nope", "arm"), ("status",)):
        code, out, err = await ctl(hub.url, *args)
        assert code == 1
        assert out == ""
        assert err.startswith("buzzer-hub ctl: the hub refused: wrong or missing host token")
        assert err.count("\n") == 1
    # Nothing happened to the round.
    code, out, _ = await ctl(hub.url, "--token", HOST_TOKEN, "status")
    assert json.loads(out)["round"]["number"] == 0
    assert [e.command for e in hub.events.events() if isinstance(e, Commanded)] == []


async def test_hub_down_is_one_line_and_exit_1(run_hub: InProcessHubs) -> None:
    hub = await run_hub()
    url = hub.url
    await run_hub.stop(hub)
    code, out, err = await ctl(url, "--token", HOST_TOKEN, "status")
    assert code == 1
    assert out == ""
    assert err.startswith(f"buzzer-hub ctl: cannot reach the hub at {url}")
    assert err.endswith("is buzzer-hub running there?\n")
    assert err.count("\n") == 1


async def test_bad_address_is_one_line_and_exit_1() -> None:
    code, out, err = await ctl("http://127.0.0.1:1", "--token", HOST_TOKEN, "status")
    assert code == 1
    assert out == ""
    assert err == "buzzer-hub ctl: 'http://127.0.0.1:1' is not a hub address; use ws://HOST:PORT\n"
