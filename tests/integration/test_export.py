"""The night's results out of a real hub: ``buzzer-hub export`` and ``GET /api/rounds.csv``.

The hub runs in the test's event loop; ``buzzer-hub export`` is the installed command.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import time
import urllib.request
from typing import Any

from hub.store import EXPORT_COLUMNS
from tests.conftest import HOST_TOKEN, InProcessHubs, console_script

CONFIG = "[round]\nhostless = false\nrelease_lead_ms = 0\n"


def _export(data_dir: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("buzzer-hub"), "export", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def _press(node: Any, press_id: str) -> dict[str, Any]:
    """Press; wait for the ack (it follows the commit) and the result (it may come first)."""
    await node.send(type="press", press_id=press_id, at_ns=time.monotonic_ns())
    await node.expect("ack", press_id=press_id)
    result: dict[str, Any] = await node.expect("result", press_id=press_id)
    return result


async def _play_two_rounds(hub: Any, client_factory: Any) -> list[Any]:
    """Round 1: Ada then Bo, plus an early press by Cy before round 2; round 2: Bo alone."""
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("state")
    nodes = {}
    for name in ("ada", "bo", "cy"):
        nodes[name] = await client_factory(hub.url, role="node", id=name, name=name.title())
        await nodes[name].expect("welcome")
    await host.send(type="arm")
    for name in ("ada", "bo"):
        await nodes[name].expect("round", state="armed")
    await _press(nodes["ada"], "a1")
    await _press(nodes["bo"], "b1")
    await host.send(type="reset")
    await nodes["cy"].expect("round", state="idle")
    await _press(nodes["cy"], "c1")
    await host.send(type="arm")
    await nodes["bo"].expect("round", number=2, state="armed")
    await _press(nodes["bo"], "b2")
    return [host, *nodes.values()]


def _download(url: str) -> tuple[dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(response.headers), response.read().decode()


async def test_export_csv_json_and_download_agree(
    run_hub: InProcessHubs, client_factory, tmp_path
) -> None:
    data = tmp_path / "data"
    hub = await run_hub(CONFIG, data_dir=data)
    for client in await _play_two_rounds(hub, client_factory):
        await client.ws.close()
    await run_hub.stop(hub)  # a clean stop writes everything queued
    done = _export(data, "--format", "csv")
    assert done.returncode == 0, done.stderr

    # The download from the restarted hub (restored from the same database) is the same file.
    hub = await run_hub(CONFIG, data_dir=data)
    headers, downloaded = await asyncio.to_thread(_download, f"{hub.http}/api/rounds.csv")
    assert headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    assert ".csv" in headers["Content-Disposition"]

    assert done.stdout.replace("\r\n", "\n") == downloaded.replace("\r\n", "\n")
    reader = csv.DictReader(io.StringIO(done.stdout, newline=""))
    assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
    rows = list(reader)
    by_press = {row["press_id"]: row for row in rows}
    assert len(rows) == len(by_press) == 4  # one row per press
    assert (by_press["a1"]["round"], by_press["a1"]["rank"], by_press["a1"]["name"]) == (
        "1",
        "1",
        "Ada",
    )
    assert (by_press["b1"]["round"], by_press["b1"]["rank"]) == ("1", "2")
    assert float(by_press["b1"]["behind_ms"]) >= 0
    assert float(by_press["a1"]["reaction_ms"]) >= 0
    assert (by_press["c1"]["round"], by_press["c1"]["rank"]) == ("2", "")
    assert "early" in by_press["c1"]["flags"]
    assert (by_press["b2"]["round"], by_press["b2"]["rank"]) == ("2", "1")
    assert all(row["pressed_at"][:4].isdigit() for row in rows)  # wall-clock time for people

    done = await asyncio.to_thread(_export, data, "--format", "json", "--round", "2")
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)
    assert exported["columns"] == list(EXPORT_COLUMNS)
    assert [(p["press_id"], p["rank"]) for p in exported["presses"]] == [("b2", 1), ("c1", None)]
    assert exported["presses"][1]["flags"] == "early"


def test_export_of_a_directory_without_results_says_so(tmp_path) -> None:
    done = _export(tmp_path)
    assert done.returncode == 1
    assert "no results database" in done.stderr
    assert done.stdout == ""
