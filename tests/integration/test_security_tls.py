"""wss:// end to end: a hub with a certificate made in the test, clients that verify it.

Certificates come from the ``openssl`` command line (no extra Python dependency); the test is
skipped where it is missing. The hub runs in the test's event loop, except where the command line
is the subject: the console address it prints, and a certificate it cannot use.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hub.embed import RunningHub
from tests.conftest import BIN, HOST_TOKEN, LOOPBACK, Client, HubProcess, InProcessHubs, trouble
from wire.tls import client_context

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None and os.environ.get("CI") != "true",
    reason="needs the openssl command to make test certificates",
)


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), valid for a day."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=IP:{LOOPBACK}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_config(cert: Path, key: Path) -> str:
    return (
        "[round]\nhostless = false\nrelease_lead_ms = 0\n"
        f'[security]\ncertfile = "{cert}"\nkeyfile = "{key}"\n'
    )


@pytest.fixture
async def tls_hub(tmp_path: Path, run_hub: InProcessHubs) -> tuple[RunningHub, Path, Path]:
    cert, key = make_certificate(tmp_path, "hub")
    stranger, _ = make_certificate(tmp_path, "stranger")
    hub = await run_hub(tls_config(cert, key))
    return hub, cert, stranger


def wss(hub: RunningHub | HubProcess) -> str:
    return f"wss://{LOOPBACK}:{hub.port}"


async def test_nodes_and_hosts_speak_wss_to_a_verified_hub(
    tls_hub: tuple[RunningHub, Path, Path],
) -> None:
    hub, cert, _ = tls_hub
    assert hub.url == wss(hub)
    assert hub.http == f"https://{LOOPBACK}:{hub.port}"
    async with connect(wss(hub), ssl=client_context(str(cert))) as ws:
        node = Client(ws)
        await node.send(type="hello", protocol=1, role="node", id="desk-1", name="Ann")
        welcome = await node.expect("welcome")
        assert welcome["greeting"] == "Hello Ann!"
        async with connect(wss(hub), ssl=client_context(str(cert))) as host_ws:
            host = Client(host_ws)
            await host.send(type="hello", protocol=1, role="host", token=HOST_TOKEN)
            await host.expect("welcome", role="host")
            await host.send(type="arm")
            await node.expect("round", state="armed")
        await node.send(type="press", press_id="p1", at_ns=time.monotonic_ns())
        assert (await node.expect("result"))["rank"] == 1


async def test_clients_refuse_a_hub_they_cannot_verify(
    tls_hub: tuple[RunningHub, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    hub, _, stranger = tls_hub
    for context in (client_context(str(stranger)), client_context()):
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(wss(hub), ssl=context, open_timeout=5):
                pass
    # A plain ws:// client gets no WebSocket from a TLS hub either.
    with pytest.raises(Exception) as plain:  # noqa: PT011 - the library's error type varies
        async with connect(f"ws://{LOOPBACK}:{hub.port}", open_timeout=5):
            pass
    assert not isinstance(plain.value, TimeoutError)
    # Failed handshakes are the clients' problem: the hub logs no traceback for them.
    healthy = await asyncio.to_thread(ctl, hub, "--cafile", str(tls_hub[1]), "status")
    assert healthy.returncode == 0
    assert trouble(caplog.records) == []


def ctl(hub: RunningHub | HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "buzzer-hub"), "ctl", "--hub", wss(hub), "--token", HOST_TOKEN, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=20)


async def test_ctl_verifies_the_hub_with_cafile(
    tls_hub: tuple[RunningHub, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    hub, cert, stranger = tls_hub
    done = await asyncio.to_thread(ctl, hub, "--cafile", str(cert), "status")
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    assert state["round"]["state"] == "idle"
    for extra in (["--cafile", str(stranger)], []):
        refused = await asyncio.to_thread(ctl, hub, *extra, "arm")
        assert refused.returncode == 1
        assert "untrusted certificate" in refused.stderr
        assert refused.stderr.count("\n") == 1
    assert trouble(caplog.records) == []


async def test_the_command_line_serves_wss_and_prints_the_https_console(
    tmp_path: Path, start_hub: Callable[..., HubProcess]
) -> None:
    cert, key = make_certificate(tmp_path, "hub")
    hub = start_hub(config=tls_config(cert, key))
    # What a host reads to open the console: the https address, on the port it listens on.
    await asyncio.to_thread(hub.wait_for_log, rf"host console: https://{LOOPBACK}:{hub.port}/$")
    done = await asyncio.to_thread(ctl, hub, "--cafile", str(cert), "status")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["round"]["state"] == "idle"
    assert await asyncio.to_thread(hub.stop) == 0
    assert trouble_lines(await asyncio.to_thread(hub.final_log)) == []


def trouble_lines(log: list[str]) -> list[str]:
    return [line for line in log if "Traceback" in line or " ERROR " in line]


def test_a_bad_certificate_setting_stops_the_hub_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    missing = tmp_path / "missing.pem"
    config.write_text(f'[security]\ncertfile = "{missing}"\nkeyfile = "{missing}"\n')
    done = subprocess.run(
        [str(BIN / "buzzer-hub"), "--config", str(config), "--host", LOOPBACK, "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--host-token", HOST_TOKEN],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot use certificate {missing}" in errors[0]
    assert "Traceback" not in done.stderr


async def test_a_firmware_node_verifies_the_hub_with_its_ca_file(
    tls_hub: tuple[RunningHub, Path, Path], start_node: Callable[..., Any], mock_pins: Any
) -> None:
    from firmware.config import ConnectionSection
    from firmware.node import Connected, Disconnected

    hub, cert, stranger = tls_hub
    trusting = await start_node(wss(hub), "pi-1", cafile=str(cert), led_pin="")
    assert (await trusting.wait_for(Connected)).greeting == "Hello pi-1!"
    wary = await start_node(
        wss(hub),
        "pi-2",
        cafile=str(stranger),
        button_pin="GPIO5",
        led_pin="",
        connection=ConnectionSection(retry_max_ms=100),
    )
    lost = await wary.wait_for(Disconnected)
    assert "certificate verify failed" in lost.reason
