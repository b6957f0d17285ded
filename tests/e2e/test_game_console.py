"""A quiz-bowl game run from the host console in a real Chromium, with the big screen watching.

Arm, buzz, the answer timer's warning and end, wrong (the team is out, the question re-arms),
right with points, a team bonus, a reload that keeps the scores, the next question, the other
rebound (next in line), and moving a player to another team.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import InProcessHubs
from tests.e2e.conftest import LATE_SENDS, api_state
from tests.e2e.test_console import press_in_reverse, sign_in

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

QUIZ_BOWL = (
    """
[round]
hostless = false
release_lead_ms = 0
adjudication_margin_ms = 300

[game]
one_buzz_per_team = true
answer_time_s = 1.5
answer_warning_s = 0.7
points_right = 10
points_wrong = -5

[game.teams]
Red = ["alice", "amy"]
Blue = ["bob"]
"""
    + LATE_SENDS
)


async def test_quiz_bowl_from_the_console(
    run_hub: InProcessHubs,
    players: Callable[..., Any],
    new_page: Callable[..., Any],
    output_dir: Path,
) -> None:
    hub = await run_hub(QUIZ_BOWL)
    stations = {
        node_id: await players(hub.url, node_id, node_id.title())
        for node_id in ("alice", "amy", "bob")
    }
    console = await new_page()
    await sign_in(console, hub)
    await expect(console.locator("#link")).to_have_attribute("data-state", "live")
    teams = console.locator("#teams .team")
    await expect(
        console.locator('#teams [data-team="Red"] .members li span:first-child')
    ).to_have_text(["Alice", "Amy"])
    await expect(console.get_by_role("button", name=re.compile("^Right"))).to_be_disabled()
    screen = await new_page(1920, 1080)
    await screen.goto(hub.http + "/screen")

    # Question 1: Alice buzzes first; her answer time runs out with a warning, then the end.
    await console.keyboard.press("a")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(console.locator("#question-number")).to_have_text("1")
    release = (await api_state(hub))["round"]["release_ns"]
    await press_in_reverse(stations, release, {"alice": 20, "amy": 40, "bob": 60})
    await expect(console.locator("#answering")).to_have_text("Alice (Red)")
    await expect(console.locator("#answer-clock")).to_contain_text("s to answer")
    await expect(screen.locator("#floor-name")).to_have_text("Alice to answer")
    body = console.locator("body")
    await expect(body).to_have_attribute("data-timer-beeps", "1")
    await expect(body).to_have_attribute("data-last-timer-beep", "warning")
    await expect(body).to_have_attribute("data-timer-beeps", "2")
    await expect(body).to_have_attribute("data-last-timer-beep", "expired")
    await expect(console.locator("#notice")).to_have_text("Time is up for Alice!")
    await expect(console.locator("#answer-clock")).to_have_attribute("data-stage", "expired")
    await expect(screen.locator("#floor-clock")).to_have_text("time!")

    # Wrong: -5 for Alice, team Red is out, the question re-arms for Blue.
    await console.locator("#wrong").click()
    await expect(console.locator("#notice")).to_have_text("Alice: Wrong. -5")
    await expect(console.locator("#round-number")).to_have_text("2")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await expect(console.locator("#question-number")).to_have_text("1")
    await expect(console.locator("#out-line")).to_have_text(
        "May buzz: Blue. Out of this question: team Red"
    )
    release = (await api_state(hub))["round"]["release_ns"]
    await press_in_reverse(stations, release, {"amy": 10, "bob": 30})
    await expect(console.locator("#answering")).to_have_text("Bob (Blue)")
    await expect(console.locator('#refused tr[data-player="amy"]')).to_contain_text("locked")

    # Right, for 20 instead of the default 10; the question ends.
    await console.locator("#ruling-points").fill("20")
    await console.get_by_role("button", name=re.compile("^Right")).click()
    await expect(console.locator("#notice")).to_have_text("Bob: Correct! +20")
    await expect(console.locator("#round-state")).to_have_text("closed")
    await expect(console.locator("#answering")).to_have_text("nobody")
    await expect(console.locator('#teams li[data-player="bob"] .pts')).to_have_text("20")

    # A bonus for Red from the scores card.
    await console.locator("#score-target").select_option("t:Red")
    await console.locator("#score-points").fill("15")
    await console.get_by_role("button", name="Give points").click()
    await expect(teams.locator(".name")).to_have_text(["Blue", "Red"])
    await expect(teams.locator(".points")).to_have_text(["20", "10"])
    await expect(screen.locator("#scores .score")).to_have_count(2)
    await expect(screen.locator('#scores [data-id="Red"] b')).to_have_text("10")
    await console.screenshot(path=output_dir / "console-game.png", full_page=True)

    # The scores live in the hub: a reload shows them unchanged.
    await console.reload()
    await expect(console.locator("#link")).to_have_attribute("data-state", "live")
    await expect(teams.locator(".points")).to_have_text(["20", "10"])
    await expect(console.locator('#teams li[data-player="alice"] .pts')).to_have_text("-5")

    # Question 2: everyone is back; this time a wrong answer passes to the next in line.
    await console.keyboard.press("a")
    await expect(console.locator("#round-number")).to_have_text("3")
    await expect(console.locator("#question-number")).to_have_text("2")
    await expect(console.locator("#out-line")).to_have_text("")
    release = (await api_state(hub))["round"]["release_ns"]
    await press_in_reverse(stations, release, {"amy": 10, "bob": 25})
    await expect(console.locator("#answering")).to_have_text("Amy (Red)")
    await console.locator("#ruling-points").fill("0")
    await console.get_by_role("button", name="Wrong: next in line").click()
    await expect(console.locator("#answering")).to_have_text("Bob (Blue)")
    await expect(console.locator("#round-number")).to_have_text("3")  # nothing re-armed
    await console.keyboard.press("y")  # right, default points
    await expect(console.locator("#notice")).to_have_text("Bob: Correct! +10")
    await expect(teams.locator(".points")).to_have_text(["30", "10"])
    await expect(screen.locator('#scores [data-id="Blue"] b')).to_have_text("30")
    await screen.screenshot(path=output_dir / "screen-game.png")

    # Amy moves to Blue; the points she earned stay with Red.
    await console.locator("#more summary").click()  # teams are set below the fold
    await console.locator("#team-player").select_option("amy")
    await console.locator("#team-name").fill("Blue")
    await console.get_by_role("button", name="Set team").click()
    await expect(
        console.locator('#teams [data-team="Blue"] .members li span:first-child')
    ).to_have_text(["Amy", "Bob"])
    await expect(teams.locator(".points")).to_have_text(["30", "10"])
    state = await api_state(hub)
    assert state["game"]["points"] == {
        "players": {"alice": -5, "bob": 30},
        "teams": {"Red": 10, "Blue": 30},
    }
