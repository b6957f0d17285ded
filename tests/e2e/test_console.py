"""The host console and the big screen, in a real Chromium against a real hub.

Presses come from real player nodes (the firmware, with gpiozero's mock pins for buttons and
LEDs) whose clocks run seconds away from the hub's: the pages must show the order in which the
buttons were pressed and the true gaps between them. A second test sends presses that reach the
hub in the reverse of the order they were made, which only the protocol level can arrange.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firmware.node import Released, Resulted
from hub.core.events import Refused
from hub.embed import RunningHub
from tests.conftest import HOST_TOKEN, HubProcess, InProcessHubs
from tests.e2e.conftest import HOST_RUN_CONFIG, FakeClockNode, Station, api_state
from tests.support.spans import gap_allowance, timing_allowance

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MS = 1_000_000
#: A host runs the rounds; release lead and adjudication wait stay at their defaults.
HOST_CONFIG = "[round]\nhostless = false\n"
#: Clocks of the stations, seconds away from the hub's and from each other.
OFFSETS_NS = {"alice": 7_000_000_000, "bob": -3_000_000_000, "carol": 123_456_789, "dave": 0}
#: When each player presses, after their light comes on.
ROUND_ONE_MS = {"alice": 20, "bob": 45, "carol": 80}
#: The second round, won by someone else, with everyone (Dave is no longer locked out).
ROUND_TWO_MS = {"carol": 15, "dave": 33, "alice": 52, "bob": 90}
NO_GAP = "\u2013"  # the winner is behind nobody: an en dash


async def sign_in(page: Any, hub: RunningHub | HubProcess, token: str = HOST_TOKEN) -> None:
    await page.goto(hub.http + "/")
    await page.get_by_label("Host token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def show_details(page: Any) -> None:
    """Open the console's details (stations, the timing of each press), kept below the fold."""
    await page.locator("#more summary").click()


def shown_ms(text: str) -> float:
    match = re.fullmatch(r"\+(\d+\.\d+) ms", text.strip())
    assert match, f"not a gap in ms: {text!r}"
    return float(match.group(1))


async def finger(station: Station, hub_at_ns: int) -> int:
    """Press a station's button at ``hub_at_ns``; returns the press instant in hub time.

    The sleep stands in for the player's reaction time, not for waiting on another process."""
    await asyncio.sleep(max(0, hub_at_ns - time.monotonic_ns()) / 1e9)
    return await station.click()


async def play_round(stations: dict[str, Station], after_ms: dict[str, int]) -> dict[str, int]:
    """Each player presses ``after_ms`` after their light came on; true press instants back."""
    start = time.monotonic_ns()
    instants = await asyncio.gather(
        *(finger(stations[node_id], start + delay * MS) for node_id, delay in after_ms.items())
    )
    return dict(zip(after_ms, instants, strict=True))


async def lights_on(stations: dict[str, Station], marks: dict[str, int]) -> None:
    """Wait until every given station has lit its ready LED for the new round."""
    for node_id, mark in marks.items():
        await stations[node_id].node.wait_for(Released, after=mark)


def ranks_heard(station: Station) -> list[int | None]:
    return [event.result.rank for event in station.node.events() if isinstance(event, Resulted)]


def shown_uncertainty_ms(text: str) -> float:
    match = re.fullmatch(r"±(\d+\.\d+) ms", text.strip())
    assert match, f"not an uncertainty in ms: {text!r}"
    return float(match.group(1))


async def check_gaps(
    rows: Any, order: list[str], pressed: dict[str, int], state: dict[str, Any]
) -> None:
    """The gap shown on each row is the true gap between the presses, within the uncertainty the
    console shows for the two presses (plus the 0.01 ms of display rounding). A clamped press (a
    starved machine can hold one up longer than its link explains) is timed from its arrival:
    within the span the hub ``state`` gives it."""
    results = {row["player"]: row for row in state["round"]["results"]}
    winner = pressed[order[0]]
    winner_uncertainty = shown_uncertainty_ms(
        await rows.nth(0).locator("td.uncertainty").inner_text()
    )
    for index, node_id in enumerate(order[1:], start=1):
        row = rows.nth(index)
        truth = (pressed[node_id] - winner) / MS
        shown = shown_ms(await row.locator("td.behind").inner_text())
        bound = (
            winner_uncertainty
            + shown_uncertainty_ms(await row.locator("td.uncertainty").inner_text())
            + 0.01
        )
        first, second = results[order[0]], results[node_id]
        if "clamped" in {*first["flags"], *second["flags"]}:
            bound = gap_allowance(first, second) / MS + 0.01
        assert abs(shown - truth) <= bound, f"{node_id}: shown {shown}, truth {truth}, ±{bound}"


async def press_in_reverse(
    players: dict[str, FakeClockNode], release_ns: int, after_ms: dict[str, int]
) -> dict[str, int]:
    """Each player presses ``after_ms`` after the release (or after now, if the release is past);
    the presses are sent only after the last one, latest first, so arrival order is the exact
    reverse of press order. Returns the press instants in hub time."""
    start = max(release_ns, time.monotonic_ns())
    instants = {node_id: start + delay * MS for node_id, delay in after_ms.items()}
    # Waiting here stands in for the players' fingers, not for another process.
    send_at = max(instants.values()) + 20 * MS
    await asyncio.sleep(max(0, send_at - time.monotonic_ns()) / 1e9)
    for node_id in sorted(instants, key=instants.__getitem__, reverse=True):
        await players[node_id].press(instants[node_id])
    return instants


async def test_console_ranks_real_node_presses_and_screen_agrees(
    run_hub: InProcessHubs,
    stations: Callable[..., Any],
    new_page: Callable[..., Any],
    output_dir: Path,
) -> None:
    hub = await run_hub(HOST_CONFIG)
    nodes: dict[str, Station] = {
        node_id: await stations(hub.url, node_id, node_id.title(), offset)
        for node_id, offset in OFFSETS_NS.items()
    }

    console = await new_page()
    requests: list[str] = []
    console.on("request", lambda request: requests.append(request.url))
    await sign_in(console, hub)
    await show_details(console)
    await expect(console.locator("#link")).to_have_attribute("data-state", "live")
    await expect(console.locator("#round-state")).to_have_text("idle")
    await expect(console.get_by_role("button", name=re.compile("Arm"))).to_contain_text("A")
    for node_id in OFFSETS_NS:
        row = console.locator(f'#roster tbody tr[data-player="{node_id}"]')
        await expect(row).to_have_attribute("data-synced", "true")
        await expect(row).to_contain_text("online")
        await expect(row).to_contain_text("gpio")
    await expect(console.locator("#roster-count")).to_have_text("4 online of 4")

    # Dave jumps the gun before the arm: early, locked out, listed as not counted.
    await nodes["dave"].click()
    marks = {node_id: nodes[node_id].node.mark() for node_id in ROUND_ONE_MS}
    await console.keyboard.press("a")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(console.locator("#round-number")).to_have_text("1")
    await lights_on(nodes, marks)
    release_ns = (await api_state(hub))["round"]["release_ns"]

    pressed = await play_round(nodes, ROUND_ONE_MS)
    # From the last press, the decision and the full ranking are on screen.
    await expect(console.locator("#round-state")).to_have_text("decided")
    rows = console.locator("#ranking tbody tr")
    await expect(rows.locator("td.name")).to_have_text(["Alice", "Bob", "Carol"])
    await expect(rows.locator("td.rank")).to_have_text(["1", "2", "3"])
    await expect(rows.nth(0).locator("td.behind")).to_have_text(NO_GAP)
    state = await api_state(hub)
    await check_gaps(rows, ["alice", "bob", "carol"], pressed, state)
    reaction = await rows.nth(0).locator("td.reaction").inner_text()
    assert re.fullmatch(r"\d+\.\d ms", reaction), reaction
    truth = (pressed["alice"] - release_ns) / MS
    bound = shown_uncertainty_ms(await rows.nth(0).locator("td.uncertainty").inner_text())
    alice = next(row for row in state["round"]["results"] if row["player"] == "alice")
    if "clamped" in alice["flags"]:
        bound = timing_allowance(alice) / MS
    # The press is off by at most its uncertainty (a clamped one, its span); the release
    # instant is the hub's own.
    assert abs(float(reaction.split()[0]) - truth) <= bound + 0.05, (reaction, truth, bound)
    await expect(rows.nth(0).locator("td.uncertainty")).to_have_text(re.compile(r"±\d+\.\d\d ms"))
    await expect(console.locator("#round-detail")).to_contain_text("Alice buzzed first")
    await expect(console.locator('#refused tr[data-player="dave"]')).to_contain_text("early")
    # One chime, on the first press.
    await expect(console.locator("body")).to_have_attribute("data-beeps", "1")
    await console.screenshot(path=output_dir / "console-round-1.png", full_page=True)

    screen = await new_page(1920, 1080)
    await screen.goto(hub.http + "/screen")
    await expect(screen.locator("#winner-name")).to_have_text("Alice")
    await expect(screen.locator("#order li .name")).to_have_text(["Bob", "Carol"])
    await expect(screen.locator("#order li .place")).to_have_text(["2", "3"])
    console_gaps = (await rows.locator("td.behind").all_inner_texts())[1:]
    # The same gaps (the screen also says "tie" where the presses were too close to tell).
    same_gaps = [re.compile(f"^{re.escape(gap)}( tie)?$") for gap in console_gaps]
    await expect(screen.locator("#order li .behind")).to_have_text(same_gaps)
    # A healthy link needs no words on a projector.
    await expect(screen.locator("#link")).to_be_hidden()
    await screen.screenshot(path=output_dir / "screen.png")

    # Reset, then the next round: the last one moves to the history on both sides.
    await console.get_by_role("button", name=re.compile("Reset")).click()
    await expect(console.locator("#round-state")).to_have_text("idle")
    marks = {node_id: nodes[node_id].node.mark() for node_id in ROUND_TWO_MS}
    await console.keyboard.press("Space")  # arms, even right after a click on Reset
    await expect(console.locator("#round-number")).to_have_text("2")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(rows).to_have_count(0)
    await expect(console.locator('#history li[data-round="1"]')).to_contain_text("Alice")
    await expect(console.locator('#history li[data-round="1"]')).to_contain_text("Bob +")
    await expect(screen.locator("#headline")).to_have_text("Buzz!")
    await expect(screen.locator("#winner")).to_be_hidden()

    # Round two, with a different winner; the console picture for the docs is taken here.
    await lights_on(nodes, marks)
    pressed = await play_round(nodes, ROUND_TWO_MS)
    order = ["carol", "dave", "alice", "bob"]
    names = [node_id.title() for node_id in order]
    await expect(rows.locator("td.name")).to_have_text(names)
    await expect(console.locator("#round-state")).to_have_text("decided")
    await check_gaps(rows, order, pressed, await api_state(hub))
    await expect(screen.locator("#winner-name")).to_have_text("Carol")
    await expect(screen.locator("#order li .name")).to_have_text(names[1:])
    await expect(console.locator("body")).to_have_attribute("data-beeps", "2")
    await console.screenshot(path=output_dir / "console.png", full_page=True)

    # The players heard the same order the pages show.
    for node_id, heard in {"alice": [1, 3], "bob": [2, 4], "carol": [3, 1]}.items():
        await nodes[node_id].node.wait_for(Resulted, lambda e: e.result.round == 2)
        assert ranks_heard(nodes[node_id]) == heard, node_id
    assert ranks_heard(nodes["dave"]) == [None, 2]

    # M mutes the chime, and the choice is kept.
    mute = console.locator("#mute")
    await expect(mute).to_have_attribute("aria-pressed", "false")
    await console.keyboard.press("m")
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await expect(mute).to_contain_text("Sound off")
    assert await console.evaluate("localStorage.getItem('buzzer-beater.muted')") == "1"

    foreign = [url for url in requests if not url.startswith((hub.http, "data:"))]
    assert not foreign, f"the console fetched something from elsewhere: {foreign}"


async def test_ranking_follows_press_time_not_arrival(
    run_hub: InProcessHubs,
    players: Callable[..., Any],
    new_page: Callable[..., Any],
    output_dir: Path,
) -> None:
    hub = await run_hub(HOST_RUN_CONFIG)
    nodes = {
        node_id: await players(hub.url, node_id, node_id.title(), OFFSETS_NS[node_id])
        for node_id in ROUND_ONE_MS
    }
    console = await new_page()
    await sign_in(console, hub)
    await show_details(console)
    for node_id in nodes:
        row = console.locator(f'#roster tbody tr[data-player="{node_id}"]')
        await expect(row).to_have_attribute("data-synced", "true")
    screen = await new_page(1920, 1080)
    await screen.goto(hub.http + "/screen")

    await console.keyboard.press("a")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(screen.locator("#headline")).to_have_text("Buzz!")
    release_ns = (await api_state(hub))["round"]["release_ns"]
    pressed = await press_in_reverse(nodes, release_ns, ROUND_ONE_MS)

    rows = console.locator("#ranking tbody tr")
    await expect(rows.locator("td.name")).to_have_text(["Alice", "Bob", "Carol"])
    await expect(rows.locator(".chip-late")).to_have_count(0)
    await check_gaps(rows, ["alice", "bob", "carol"], pressed, await api_state(hub))
    await expect(screen.locator("#winner-name")).to_have_text("Alice")
    await expect(screen.locator("#order li .name")).to_have_text(["Bob", "Carol"])
    await console.screenshot(path=output_dir / "console.png", full_page=True)
    await screen.screenshot(path=output_dir / "screen.png")
    assert {node_id: [r["rank"] for r in node.results] for node_id, node in nodes.items()} == {
        "alice": [1],
        "bob": [2],
        "carol": [3],
    }

    # Two presses at the same instant are a tie, and both pages say so.
    await console.get_by_role("button", name=re.compile("Arm")).click()
    await expect(console.locator("#round-number")).to_have_text("2")
    await expect(console.locator("#round-state")).to_have_text("armed")
    release_ns = (await api_state(hub))["round"]["release_ns"]
    await press_in_reverse(nodes, release_ns, {"alice": 30, "bob": 30})
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1).locator(".chip-tie")).to_have_count(1)
    await expect(screen.locator("#winner-detail")).to_contain_text("tie")
    await expect(screen.locator("#order li .behind")).to_contain_text(["tie"])


async def test_wrong_token_is_refused_clearly_and_right_one_survives_reload(
    run_hub: InProcessHubs, new_page: Callable[..., Any]
) -> None:
    hub = await run_hub(HOST_RUN_CONFIG)
    page = await new_page()
    await sign_in(page, hub, "not-the-token")
    error = page.locator("#signin-error")
    await expect(error).to_contain_text("The hub refused this token")
    await expect(error).to_contain_text("wrong or missing host token")
    await expect(page.locator("#console")).to_be_hidden()
    await expect(page.locator("#link")).to_have_attribute("data-state", "refused")
    assert await page.evaluate("sessionStorage.length") == 0, "a refused token must not be kept"
    refused = await hub.events.wait_for(Refused)
    assert refused.reason.startswith("wrong or missing host token")
    assert refused.closed

    await sign_in(page, hub)
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#signin-error")).to_be_hidden()
    await page.reload()
    await expect(page.locator("#link")).to_have_attribute("data-state", "live")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#signin")).to_be_hidden()  # the token was kept for this tab

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin")).to_be_visible()
    await page.reload()
    await expect(page.locator("#signin")).to_be_visible()


async def test_pages_reconnect_after_the_hub_restarts(
    start_hub: Callable[..., HubProcess], new_page: Callable[..., Any]
) -> None:
    hub = start_hub(config=HOST_RUN_CONFIG)
    console = await new_page()
    await sign_in(console, hub)
    await expect(console.locator("#link")).to_have_attribute("data-state", "live")
    screen = await new_page()
    await screen.goto(hub.http + "/screen")
    await expect(screen.locator("#link")).to_have_attribute("data-state", "live")

    hub.kill()
    for page in (console, screen):
        link = page.locator("#link")
        await expect(link).to_have_attribute("data-state", "reconnecting")
        await expect(link).to_be_visible()
        await expect(link).to_contain_text(re.compile("reconnecting", re.IGNORECASE))

    await expect(console.locator("body")).to_have_attribute("data-link", "reconnecting")
    hub.start()
    # The pages keep retrying, and are back once the hub is.
    for page in (console, screen):
        await expect(page.locator("#link")).to_have_attribute("data-state", "live")
    await expect(screen.locator("#link")).to_be_hidden()
    await console.keyboard.press("a")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(screen.locator("#headline")).to_have_text("Buzz!")
    assert (await api_state(hub))["round"]["state"] == "armed"
    await console.keyboard.press("c")
    await expect(console.locator("#round-state")).to_have_text("closed")
    await expect(screen.locator("#headline")).to_have_text("Round closed")
    await console.keyboard.press("r")
    await expect(console.locator("#round-state")).to_have_text("idle")
