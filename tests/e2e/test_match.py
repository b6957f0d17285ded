"""A quiz-bowl match played from the host console in a real Chromium, the big screen watching.

Two teams of four (protocol-level stations whose presses the test places to the microsecond),
six tossups: a right answer, a neg and the other team's rebound, a dead tossup (both teams
wrong), a power, a tossup nobody buzzes on until the timer runs out, and a near-tie among eight
buzzes; bonuses, and a mistaken ruling undone and re-ruled. Everything is done by clicking the
console or with its keys; the result is downloaded from the console as QBJ and checked against
the totals and the order of the buzzes.

The console at 1366x768 and the big screen at 1920x1080 and 1280x720 are checked by the boxes of
their key elements: inside the window, and not on top of each other. The screenshots go to
test-output/, and to docs/images/ (for docs/hosting.md) when BUZZER_DOCS_IMAGES=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.embed import RunningHub
from tests.conftest import HOST_TOKEN, InProcessHubs
from tests.e2e.conftest import LATE_SENDS, ROOT, FakeClockNode, api_state
from tests.e2e.test_console import sign_in
from tests.e2e.test_play import join, press_page

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MS = 1_000_000
US = 1_000
DOCS_IMAGES = ROOT / "docs" / "images"

CONFIG = (
    """
[round]
hostless = false
release_lead_ms = 0
adjudication_margin_ms = 300
tie_rule = "timestamp"

[game]
answer_time_s = 30
answer_warning_s = 5

[match]
tossup_time_s = 1.5
"""
    + LATE_SENDS
)

RED = {"red-1": "Alice", "red-2": "Bea", "red-3": "Cat", "red-4": "Dee"}
BLUE = {"blue-1": "Eve", "blue-2": "Fay", "blue-3": "Gus", "blue-4": "Hal"}


async def buzz(nodes: dict[str, FakeClockNode], hub: RunningHub, after_ns: dict[str, int]) -> None:
    """Each station presses ``after_ns`` after the round's light (or after now, if that is past),
    stamped to the nanosecond; the presses are sent once the last of them is made (a stamp in
    the future would be taken back to its arrival), in the order they were made."""
    start = max((await api_state(hub))["round"]["release_ns"], time.monotonic_ns())
    instants = {node_id: start + delay for node_id, delay in after_ns.items()}
    # Waiting here stands in for the players' fingers, not for another process.
    await asyncio.sleep(max(0, max(instants.values()) + 5 * MS - time.monotonic_ns()) / 1e9)
    for node_id, instant in sorted(instants.items(), key=lambda item: item[1]):
        await nodes[node_id].press(instant)


def parts_of(*points: int) -> str:
    """The bonus parts as the console shows them, a dash for each part still to play."""
    marks = [str(p) for p in points] + ["\u2013"] * (3 - len(points))
    return " / ".join(marks)


async def play_bonus(console: Any, team: str, keys: str) -> None:
    """Rule the bonus part by part with the keys (Y right, N missed), each once the console
    shows the part before it."""
    await expect(console.locator("#bonus-team")).to_have_text(team)
    points: list[int] = []
    for key in keys:
        await console.keyboard.press(key)
        points.append(10 if key == "y" else 0)
        if len(points) < 3:
            await expect(console.locator("#bonus-parts")).to_have_text(parts_of(*points))
    await expect(console.locator("#bonus")).to_be_hidden()


async def accept(dialog: Any) -> None:
    await dialog.accept()


def box_of(name: str, box: dict[str, float] | None) -> dict[str, float]:
    assert box is not None, f"{name} is not on the page"
    return box


async def check_layout(page: Any, width: int, height: int, selectors: list[str]) -> None:
    """Each element is whole inside the window, and none lies on another (boxes, not pixels)."""
    boxes = {s: box_of(s, await page.locator(s).first.bounding_box()) for s in selectors}
    for name, box in boxes.items():
        assert box["width"] > 0, f"{name} has no width"
        assert box["height"] > 0, f"{name} has no height"
        assert box["x"] >= 0, f"{name} starts left of the window: {box}"
        assert box["y"] >= 0, f"{name} starts above the window: {box}"
        assert box["x"] + box["width"] <= width + 0.5, f"{name} ends right of the window: {box}"
        assert box["y"] + box["height"] <= height + 0.5, f"{name} ends below the window: {box}"
    names = list(boxes)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = boxes[first], boxes[second]
            apart = (
                a["x"] + a["width"] <= b["x"] + 0.5
                or b["x"] + b["width"] <= a["x"] + 0.5
                or a["y"] + a["height"] <= b["y"] + 0.5
                or b["y"] + b["height"] <= a["y"] + 0.5
            )
            assert apart, f"{first} {a} and {second} {b} overlap"


async def shoot(page: Any, name: str, output_dir: Path) -> None:
    await page.screenshot(path=output_dir / name)
    if os.environ.get("BUZZER_DOCS_IMAGES") == "1":
        await page.screenshot(path=DOCS_IMAGES / name)


async def test_a_quiz_bowl_match_from_the_console(
    run_hub: InProcessHubs,
    players: Callable[..., Any],
    new_page: Callable[..., Any],
    output_dir: Path,
) -> None:
    hub = await run_hub(CONFIG)
    nodes = {node_id: await players(hub.url, node_id, node_id) for node_id in (*RED, *BLUE)}
    console = await new_page(1366, 768)
    await sign_in(console, hub)
    await expect(console.locator("#link")).to_have_attribute("data-state", "live")
    await console.locator("#more summary").click()
    for node_id in nodes:
        row = console.locator(f'#roster tbody tr[data-player="{node_id}"]')
        await expect(row).to_have_attribute("data-synced", "true")
    await console.locator("#more summary").click()
    screens = {size: await new_page(*size) for size in ((1920, 1080), (1280, 720))}
    for screen in screens.values():
        await screen.goto(hub.http + "/screen")
    screen = screens[(1920, 1080)]
    body = console.locator("body")
    answering = console.locator("#answering")
    notice = console.locator("#notice")
    phase = console.locator("#phase")

    console.on("dialog", accept)  # the console asks before it ends a match

    # The match: its name, packet, format, and the two teams with their players' names.
    await console.get_by_role("button", name="New match").click()
    await console.locator("#match-name").fill("Round 3: Red v Blue")
    await console.locator("#match-packet").fill("Packet 7")
    await console.locator("#match-format").select_option("quizbowl")
    rows = console.locator(".match-team")
    for index, (team, members) in enumerate((("Red", RED), ("Blue", BLUE))):
        await rows.nth(index).locator(".team-name").fill(team)
        listed = ", ".join(f"{node_id}={name}" for node_id, name in members.items())
        await rows.nth(index).locator(".team-players").fill(listed)
    await console.get_by_role("button", name="Start the match").click()
    await expect(console.locator("#match-title")).to_contain_text("Match 1: Round 3: Red v Blue")
    await expect(console.locator("#teams .team .points")).to_have_text(["0", "0"])
    await expect(screen.locator("#scores .score b")).to_have_text(["0", "0"])  # 0 shown too
    await expect(screen.locator("#match-name")).to_have_text("Match 1: Round 3: Red v Blue")

    # 1. A right answer during the question, and Red's bonus: 10, 10, 0.
    await console.locator("#arm").click()
    await expect(phase).to_have_attribute("data-phase", "buzz")
    await expect(console.locator("#question-number")).to_have_text("1 of 20")
    await buzz(nodes, hub, {"red-1": 300 * MS, "blue-1": 340 * MS})
    await expect(answering).to_have_text("Alice (Red)")
    await expect(console.locator("#right")).to_have_text(re.compile(r"^Right \+10"))
    await expect(body).to_have_attribute("data-beeps", "1")  # the first buzz chimes
    await console.locator("#right").click()
    await expect(notice).to_have_text("Alice: Correct! +10")
    await play_bonus(console, "Red", "yyn")
    await expect(console.locator('#teams [data-team="Red"] .points')).to_have_text("30")

    # 2. A neg, then the other team's rebound after the question is read: Blue, and its bonus.
    await console.keyboard.press("a")
    await expect(console.locator("#question-number")).to_have_text("2 of 20")
    await buzz(nodes, hub, {"red-2": 200 * MS})
    await expect(answering).to_have_text("Bea (Red)")
    await expect(console.locator("#wrong")).to_have_text(re.compile(r"^Wrong -5"))
    await console.keyboard.press("n")
    await expect(notice).to_have_text("Bea: Wrong. -5")
    await expect(console.locator("#out-line")).to_have_text(
        "May buzz: Blue. Out of this question: team Red"
    )
    await expect(screen.locator("#eligible")).to_have_text("Blue may buzz")
    await expect(screen.locator("#headline")).to_have_text("Buzz!")  # Bea is not the winner now
    await console.keyboard.press("q")  # read to the end: no more negs, the tossup timer runs
    await expect(console.locator("#buzz-clock")).to_be_visible()
    await buzz(nodes, hub, {"blue-2": 100 * MS})
    await expect(answering).to_have_text("Fay (Blue)")
    await expect(console.locator("#wrong")).to_have_text(re.compile(r"^Wrong 0"))
    await console.keyboard.press("y")
    await expect(notice).to_have_text("Fay: Correct! +10")
    await play_bonus(console, "Blue", "yyy")
    await expect(console.locator("#teams .team .points")).to_have_text(["25", "40"])

    # 3. A dead tossup: read to the end, Blue wrong, Red wrong: nobody is left.
    await console.keyboard.press("a")
    await expect(console.locator("#question-number")).to_have_text("3 of 20")
    await console.keyboard.press("q")
    await buzz(nodes, hub, {"blue-3": 100 * MS})
    await expect(answering).to_have_text("Gus (Blue)")
    await console.keyboard.press("n")
    await expect(notice).to_have_text("Gus: Wrong.")  # a ruling worth 0 is still a ruling
    await buzz(nodes, hub, {"red-3": 100 * MS})
    await expect(answering).to_have_text("Cat (Red)")
    await console.keyboard.press("n")
    await expect(phase).to_have_attribute("data-phase", "dead")
    await expect(screen.locator("#headline")).to_have_text("Dead tossup")
    await expect(console.locator('#log li[data-question="3"]')).to_contain_text(
        "dead (everyone out)"
    )

    # 4. A power, and a bonus of 10.
    await console.keyboard.press("a")
    await buzz(nodes, hub, {"red-4": 150 * MS})
    await expect(answering).to_have_text("Dee (Red)")
    await expect(console.locator("#power")).to_have_text(re.compile(r"^Power \+15"))
    await console.keyboard.press("p")
    await expect(notice).to_have_text("Dee: Correct! +15")
    await play_bonus(console, "Red", "ynn")
    await expect(console.locator("#teams .team .points")).to_have_text(["50", "40"])

    # 5. Nobody buzzes: read to the end, the tossup timer runs out, the tossup is dead.
    await console.keyboard.press("a")
    await expect(console.locator("#question-number")).to_have_text("5 of 20")
    await console.keyboard.press("q")
    await expect(phase).to_have_attribute("data-phase", "dead", timeout=5000)
    await expect(notice).to_have_text("Nobody buzzed in: the round is closed.")
    await expect(console.locator('#log li[data-question="5"]')).to_contain_text("dead (time)")

    # 6. Eight buzzes, the first two 30 microseconds apart: a near-tie, shown as one.
    await console.keyboard.press("a")
    await expect(console.locator("#question-number")).to_have_text("6 of 20")
    order = {"red-1": 80 * MS, "blue-4": 80 * MS + 30 * US}
    order.update(
        {
            node_id: (120 + 15 * i) * MS
            for i, node_id in enumerate(["blue-1", "red-2", "blue-2", "red-3", "blue-3", "red-4"])
        }
    )
    await buzz(nodes, hub, order)
    # Closer than the hub can tell apart: either may win it, and both are flagged.
    await expect(answering).to_have_text(re.compile(r"^(Alice \(Red\)|Hal \(Blue\))$"))
    first = "red-1" if (await answering.inner_text()).startswith("Alice") else "blue-4"
    second = "blue-4" if first == "red-1" else "red-1"
    who = {"red-1": ("Alice", "Red"), "blue-4": ("Hal", "Blue")}
    (winner, winners), (other, others) = who[first], who[second]
    await expect(console.locator(f'#buzzes li[data-player="{second}"] .chip-tie')).to_be_visible()
    await expect(screen.locator("#winner-name")).to_have_text(winner)
    await expect(screen.locator("#winner-detail")).to_contain_text("tie!")
    await expect(screen.locator("#floor-name")).to_have_text(f"{winner} to answer")
    for page in screens.values():
        await expect(page.locator("#order li")).to_have_count(6)  # five names, "+2 more"
        await expect(page.locator("#floor-clock")).to_be_visible()

    # The pictures: a floor, a countdown, a near-tie, eight buzzes and a game log.
    await check_layout(
        console,
        1366,
        768,
        [
            "#question-title",
            "#answering",
            "#answer-clock",
            "#buzzes",
            "#arm",
            "#read",
            "#undo",
            "#right",
            "#power",
            "#wrong",
            '#teams [data-team="Red"]',
            '#teams [data-team="Blue"]',
            "#log",
        ],
    )
    await shoot(console, "console.png", output_dir)
    for (width, height), page in screens.items():
        await check_layout(
            page,
            width,
            height,
            [
                "#winner-name",
                "#floor-name",
                "#floor-clock",
                "#order",
                '#scores [data-id="Red"]',
                '#scores [data-id="Blue"]',
                "#join",
            ],
        )
        await shoot(page, "screen.png" if width == 1920 else f"screen-{height}.png", output_dir)

    # A mistaken Right, taken back: the answer was wrong, and the other team gets its rebound.
    await console.keyboard.press("y")
    await expect(notice).to_have_text(f"{winner}: Correct! +10")
    await expect(console.locator("#undo")).to_have_attribute(
        "title", re.compile(f"right for {winner}")
    )
    await console.keyboard.press("u")
    await expect(answering).to_have_text(f"{winner} ({winners})")
    await expect(console.locator("#bonus")).to_be_hidden()
    await console.keyboard.press("n")
    await expect(notice).to_have_text(f"{winner}: Wrong. -5")
    await expect(screen.locator("#eligible")).to_have_text(f"{others} may buzz")
    await buzz(nodes, hub, {second: 50 * MS})
    await expect(answering).to_have_text(f"{other} ({others})")
    # The key that arms the next question asks first while a player has the floor.
    await console.keyboard.press("a")
    await expect(console.locator("#confirm")).to_contain_text(f"{other} has the floor")
    await expect(answering).to_have_text(f"{other} ({others})")
    await console.keyboard.press("y")
    await expect(console.locator("#confirm")).to_be_hidden()
    await play_bonus(console, others, "ynn")
    # Before question 6: Red 50, Blue 40. Then -5 for the tie's winner, 10 + 10 for the other.
    final = {"Red": 50, "Blue": 40}
    final[winners] -= 5
    final[others] += 20
    await expect(console.locator("#teams .team .points")).to_have_text(
        [str(final["Red"]), str(final["Blue"])]
    )
    log6 = console.locator('#log li[data-question="6"] .entry')
    await expect(log6.first).to_have_attribute("data-undone", "true")

    # The end: the result is final, and the console downloads it as QBJ.
    await console.get_by_role("button", name="End match").click()
    await expect(console.locator("#last-match")).to_have_text(
        f"Match 1 (Round 3: Red v Blue) ended: Red {final['Red']}, Blue {final['Blue']}"
    )
    async with console.expect_download() as download:
        await console.locator('#exports a[data-kind="qbj"]').click()
    saved = await (await download.value).path()
    qbj = json.loads(await asyncio.to_thread(Path(saved).read_text))

    assert qbj["tossups_read"] == 6
    assert qbj["packets"] == "Packet 7"
    names = {
        team["team"]["name"]: [p["name"] for p in team["team"]["players"]]
        for team in qbj["match_teams"]
    }
    assert names == {"Red": list(RED.values()), "Blue": list(BLUE.values())}
    buzzes = [
        [(b["player"]["name"], b["result"]["value"]) for b in question["buzzes"]]
        for question in qbj["match_questions"]
    ]
    assert buzzes == [
        [("Alice", 10)],
        [("Bea", -5), ("Fay", 10)],
        [("Gus", 0), ("Cat", 0)],
        [("Dee", 15)],
        [],
        [(winner, -5), (other, 10)],
    ]
    bonuses = [
        [part["controlled_points"] for part in question["bonus"]["parts"]]
        if "bonus" in question
        else None
        for question in qbj["match_questions"]
    ]
    assert bonuses == [[10, 10, 0], [10, 10, 10], None, [10, 0, 0], None, [10, 0, 0]]
    totals = {}
    for team in qbj["match_teams"]:
        name = team["team"]["name"]
        tossups = sum(
            b["result"]["value"]
            for q in qbj["match_questions"]
            for b in q["buzzes"]
            if b["team"]["name"] == name
        )
        totals[name] = tossups + team["bonus_points"]
    assert totals == final
    assert f"Question 6: right for {winner} (+10) was taken back." in qbj["notes"]


CLASSROOM_CONFIG = """
[round]
hostless = false
"""
STUDENTS = 30


def table_of(student: int) -> str:
    """The table a student types on the player page: five tables, typed as people type them."""
    name = f"Table {student % 5 + 1}"
    variants = (name, name.lower(), f" {name.upper()} ", name.replace(" ", "   "))
    return name if student < 5 else variants[student % len(variants)]


async def test_a_classroom_round_with_thirty_player_pages(
    run_hub: InProcessHubs,
    new_page: Callable[..., Any],
) -> None:
    """Thirty phones and laptops join from /play, at five tables typed five ways; the console
    runs a classroom match: no penalty, the question passes down the line, a point a question,
    an early press locked out of the next question."""
    hub = await run_hub(CLASSROOM_CONFIG)
    pages = await asyncio.gather(*(new_page(390, 640) for _ in range(STUDENTS)))
    ids = [await join(pages[i], hub.http, f"Student {i + 1}", table_of(i)) for i in range(5)]
    for batch in range(5, STUDENTS, 5):
        ids += await asyncio.gather(
            *(
                join(pages[i], hub.http, f"Student {i + 1}", table_of(i))
                for i in range(batch, min(batch + 5, STUDENTS))
            )
        )
    assert len(set(ids)) == STUDENTS
    console = await new_page(1366, 768)
    await sign_in(console, hub)
    await console.locator("#more summary").click()
    await expect(console.locator("#roster-count")).to_have_text(f"{STUDENTS} online of {STUDENTS}")
    await expect(console.locator('#roster tbody tr[data-synced="true"]')).to_have_count(STUDENTS)
    await console.locator("#more summary").click()
    # "table 2", " TABLE 4 " and "Table   5" joined the tables that were already there.
    await expect(console.locator("#teams .team .name")).to_have_text(
        ["Table 1", "Table 2", "Table 3", "Table 4", "Table 5"]
    )

    await console.get_by_role("button", name="New match").click()
    await console.locator("#match-name").fill("Period 3 quiz")
    await console.locator("#match-format").select_option("classroom")
    await expect(console.locator(".match-team")).to_have_count(5)  # the tables, filled in
    await console.get_by_role("button", name="Start the match").click()
    await expect(console.locator("#match-title")).to_contain_text("Match 1: Period 3 quiz")
    await expect(console.locator("#teams .team .points")).to_have_text(["0"] * 5)

    # Question 1: student 1 buzzes first, nine more after the result is out.
    await console.keyboard.press("a")
    for page in pages[:10]:
        await expect(page.locator("body")).to_have_attribute("data-look", "armed")
    await press_page(pages[0], "space")
    await expect(pages[0].locator("body")).to_have_attribute("data-look", "first")
    for page in pages[1:10]:
        await press_page(page, "space")
    await expect(console.locator("#buzzes li")).to_have_count(9)  # eight names and "+2 more"
    # Nine results show as many items ("+1 more"): wait for the tenth itself.
    await expect(console.locator("#buzzes li").last).to_have_text("+2 more")
    state = await api_state(hub)
    assert state["round"]["results"][0]["player"] == ids[0]
    assert len(state["round"]["results"]) == 10
    second = state["round"]["results"][1]["player"]
    await expect(console.locator("#wrong")).to_have_text(re.compile(r"^Wrong 0"))
    await console.keyboard.press("n")  # no penalty; the next in line gets the question
    await expect(console.locator("#answering")).to_have_text(re.compile(r"^Student \d+"))
    helped = pages[ids.index(second)]
    await expect(helped.locator("#notice")).to_have_text("Your turn to answer!")
    await console.keyboard.press("y")
    await expect(console.locator("#notice")).to_contain_text("Correct! +1")

    # Question 2: student 5 presses before the light and stays out of it.
    early = pages[4]
    await press_page(early, "space")
    await expect(early.locator("body")).to_have_attribute("data-look", "early")
    await console.keyboard.press("a")
    await expect(pages[5].locator("body")).to_have_attribute("data-look", "armed")
    await expect(early.locator("#headline")).to_have_text("Locked out")
    await press_page(early, "space")
    await press_page(pages[5], "space")
    await expect(pages[5].locator("body")).to_have_attribute("data-look", "first")
    await console.keyboard.press("y")
    await expect(console.locator("#notice")).to_contain_text("Student 6: Correct! +1")

    console.on("dialog", accept)  # "End match 1 (Period 3 quiz)?"
    await console.get_by_role("button", name="End match").click()
    await expect(console.locator("#last-match")).to_contain_text("Match 1 (Period 3 quiz) ended")
    result = json.loads(await asyncio.to_thread(match_json, hub))
    tables = {team["name"]: team for team in result["teams"]}
    assert sorted(tables) == ["Table 1", "Table 2", "Table 3", "Table 4", "Table 5"]
    assert sum(len(team["players"]) for team in tables.values()) == STUDENTS
    assert sum(team["points"] for team in tables.values()) == 2
    winners = [p for team in tables.values() for p in team["players"] if p["points"]]
    assert sorted(p["name"] for p in winners) == sorted(
        [next(p["name"] for p in state["players"] if p["id"] == second), "Student 6"]
    )
    answers = [a for q in result["questions"] for a in q["answers"]]
    assert [(a["kind"], a["points"]) for a in answers] == [
        ("wrong", 0),
        ("right", 1),
        ("right", 1),
    ]


def match_json(hub: RunningHub) -> str:
    """The last match's result, as the host downloads it (the token in a header)."""
    request = urllib.request.Request(
        hub.http + "/api/match.json", headers={"Authorization": f"Bearer {HOST_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text: str = response.read().decode()
    return text


JEOPARDY_CONFIG = (
    """
[round]
hostless = false
"""
    + LATE_SENDS
)


async def test_a_jeopardy_style_round_from_the_console(
    run_hub: InProcessHubs,
    players: Callable[..., Any],
    new_page: Callable[..., Any],
) -> None:
    """Clue values picked on the console; a player who rings in during the clue (the round is
    closed after the last ruling) is locked out for 250 ms of the next light; a Daily Double."""
    hub = await run_hub(JEOPARDY_CONFIG)
    contestants = {"ann": "Ann", "bob": "Bob", "cat": "Cat"}
    nodes = {
        node_id: await players(hub.url, node_id, name) for node_id, name in contestants.items()
    }
    console = await new_page(1366, 768)
    await sign_in(console, hub)
    await console.locator("#more summary").click()
    for node_id in nodes:
        row = console.locator(f'#roster tbody tr[data-player="{node_id}"]')
        await expect(row).to_have_attribute("data-synced", "true")
    await console.locator("#more summary").click()
    console.on("dialog", accept)
    await console.get_by_role("button", name="New match").click()
    await console.locator("#match-name").fill("Game 1")
    await console.locator("#match-format").select_option("jeopardy")
    rows = console.locator(".match-team")
    await console.locator("#match-add-team").click()
    for index, (node_id, name) in enumerate(contestants.items()):
        await rows.nth(index).locator(".team-name").fill(name)
        await rows.nth(index).locator(".team-players").fill(node_id)
    await console.get_by_role("button", name="Start the match").click()
    await expect(console.locator("#rules-line")).to_contain_text("early buzz: out for 250 ms")

    # Clue 1, for 400: Ann rings in and is right.
    await console.locator("#values button", has_text="400").click()
    await expect(console.locator("#values button", has_text="400")).to_have_attribute(
        "aria-pressed", "true"
    )
    await console.keyboard.press("a")
    await expect(console.locator("#value")).to_have_text("Clue 400")
    await buzz(nodes, hub, {"ann": 200 * MS})
    await expect(console.locator("#answering")).to_have_text("Ann (Ann)")
    await expect(console.locator("#right")).to_have_text(re.compile(r"^Right \+400"))
    await expect(console.locator("#wrong")).to_have_text(re.compile(r"^Wrong -400"))
    await console.keyboard.press("y")
    await expect(console.locator('#teams [data-team="Ann"] .points')).to_have_text("400")

    # Clue 2: Bob rings in while it is read (the round is closed), 50 ms before the light.
    await expect(console.locator("#round-state")).to_have_text("closed")
    await nodes["bob"].press(time.monotonic_ns())  # during the clue, before the light
    await console.keyboard.press("a")
    await expect(console.locator("#round-state")).to_have_text("armed")
    await buzz(nodes, hub, {"bob": 20 * MS, "cat": 40 * MS})
    await expect(console.locator("#answering")).to_have_text("Cat (Cat)")
    state = await api_state(hub)
    assert [r["player"] for r in state["round"]["results"]] == ["cat"]  # Bob did not count
    refused = [(r["player"], r["flags"]) for r in state["round"]["refused"]]
    assert refused[0] == ("bob", ["early"])  # the press during the clue, shown with the round
    # his press 20 ms after the light is still inside his 250 ms (locked), or, on a machine
    # slow to arm, before the light again (early): either way it does not count
    await console.keyboard.press("n")  # -400; the clue opens again for the others
    await expect(console.locator('#teams [data-team="Cat"] .points')).to_have_text("-400")
    await console.keyboard.press("c")
    await expect(console.locator("#round-state")).to_have_text("closed")

    # A Daily Double: Bob wagers 1000 and misses.
    await console.locator("#wager-player").select_option("bob")
    await console.locator("#wager-points").fill("1000")
    await console.locator("#wager-wrong").click()
    await expect(console.locator('#teams [data-team="Bob"] .points')).to_have_text("-1000")
    await expect(console.locator('#log li[data-question="3"]')).to_contain_text("wager Bob -1000")
