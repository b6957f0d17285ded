"""Storage trouble on a real hub: a second hub on the same data, and a data directory that is or
goes read-only. Ranking must go on; the host must be told that results are not being saved.

The hub runs in the test's event loop; the second hub, refused at start, is the command line's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.events import StorageChanged
from hub.embed import RunningHub
from tests.conftest import HOST_TOKEN, LOOPBACK, InProcessHubs, console_script, logged

CONFIG = "[round]\nrelease_lead_ms = 0\n"


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


async def _state(hub: RunningHub) -> dict[str, Any]:
    """/api/state, fetched off the event loop the hub runs on."""
    status, body = await asyncio.to_thread(_get, f"{hub.http}/api/state")
    assert status == 200
    state: dict[str, Any] = json.loads(body)
    return state


async def _serving(hub: RunningHub) -> bool:
    return await asyncio.to_thread(_get, f"{hub.http}/healthz") == (200, b"ok\n")


async def _press_and_rank(client_factory: Any, hub: Any, node: str) -> dict[str, Any]:
    """One node presses; return its result. The ack must come too (from memory if need be)."""
    client = await client_factory(hub.url, role="node", id=node, name=node.title())
    await client.expect("welcome")
    await client.send(type="press", press_id=f"{node}-1", at_ns=time.monotonic_ns())
    await client.expect("ack", press_id=f"{node}-1")
    return await client.expect("result", press_id=f"{node}-1")  # it may have come first


async def test_a_second_hub_on_the_same_data_directory_is_refused(
    run_hub: InProcessHubs, client_factory, tmp_path
) -> None:
    data = tmp_path / "data"
    first = await run_hub(data_dir=data)
    second = await asyncio.to_thread(
        subprocess.run,
        [
            console_script("buzzer-hub"),
            "--host",
            LOOPBACK,
            "--port",
            "0",
            "--data-dir",
            str(data),
            "--host-token",
            HOST_TOKEN,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode != 0
    refusal = [line for line in second.stderr.splitlines() if "another hub" in line]
    assert len(refusal) == 1, second.stderr
    assert str(data) in refusal[0]
    assert "listening on" not in second.stderr
    # The first one is unharmed: it serves, and saves, as before.
    assert await _serving(first)
    assert (await _state(first))["storage"]["saving"] is True
    assert (await _press_and_rank(client_factory, first, "ada"))["rank"] == 1


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty directory to mount a file system on; unmounted after the test.

    The tests run as root, which ignores file permissions, so a chmod would prove nothing: a
    read-only mount and a full file system are refused by the kernel even for root. Skipped
    where mounting is not allowed.
    """
    mount = tmp_path / "mount"
    mount.mkdir()
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount here: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":  # CI runs as root on this kind of machine: it can
            pytest.fail(reason)
        pytest.skip(reason)


def _fill(directory: Path) -> None:
    """Write a filler file until the file system is full."""
    with (directory / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


async def test_a_read_only_data_directory_at_start_ranks_in_memory(
    run_hub: InProcessHubs, client_factory, mount_point, tmp_path, caplog
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    _mount("--bind", str(source), str(mount_point))
    _mount("-o", "remount,bind,ro", str(mount_point))
    hub = await run_hub(CONFIG, data_dir=mount_point)
    # The hub says so in its log as it starts (the line is the product: an operator reads it).
    (line,) = logged(caplog.records, r"^storage: .*NOT being saved")
    assert "read-only file system" in line
    storage = (await _state(hub))["storage"]
    assert storage["saving"] is False
    assert "NOT being saved" in storage["message"]
    result = await _press_and_rank(client_factory, hub, "ada")
    assert result["rank"] == 1
    assert await _serving(hub)


async def test_a_disk_that_fills_up_mid_event(
    run_hub: InProcessHubs, client_factory, mount_point, caplog
) -> None:
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point))
    hub = await run_hub(CONFIG, data_dir=mount_point)
    assert (await _press_and_rank(client_factory, hub, "ada"))["rank"] == 1
    assert (await _state(hub))["storage"]["saving"] is True
    host = await client_factory(hub.url, role="host", token=HOST_TOKEN)
    await host.expect("state")

    mark = hub.events.mark()
    _fill(mount_point)  # the disk fills up under the running hub
    bo = await client_factory(hub.url, role="node", id="bo", name="Bo")
    await bo.expect("welcome")
    await bo.send(type="press", press_id="bo-1", at_ns=time.monotonic_ns())
    result = await bo.expect("result", press_id="bo-1")
    assert result["rank"] == 2  # ranked (in memory) all the same, behind ada
    changed = await hub.events.wait_for(StorageChanged, after=mark)
    assert changed.saving is False
    assert changed.message.startswith("writing ")
    assert "full" in changed.message
    assert "NOT being saved right now: retrying" in changed.message
    assert logged(caplog.records, r"^storage: writing .* failed: .*NOT being saved right now")
    storage = (await _state(hub))["storage"]
    assert storage["saving"] is False
    assert storage["message"] == changed.message
    assert storage["path"] is None  # where the hub keeps its files is for the host only
    storage["path"] = str(mount_point / "results.db")
    await host.expect("state", storage=storage)  # the console was told
    assert not [f for f in bo.received if f["type"] == "ack"]  # not on disk: not acknowledged
    assert await _serving(hub)

    mark = hub.events.mark()
    (mount_point / "filler").unlink()  # room again: saving recovers by itself
    await bo.expect("ack", press_id="bo-1", timeout=15)
    recovered = await hub.events.wait_for(StorageChanged, lambda e: e.saving, after=mark)
    assert recovered.message.startswith("results are saved (saving recovered after")
    assert (await _state(hub))["storage"]["saving"] is True
    export = await asyncio.to_thread(
        subprocess.run,
        [console_script("buzzer-hub"), "export", "--data-dir", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert export.returncode == 0, export.stderr
    assert [row.split(",")[6] for row in export.stdout.splitlines()[1:]] == ["ada-1", "bo-1"]
