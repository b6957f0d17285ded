"""The tournament page in a real Chromium, with three room hubs feeding a real PostgreSQL: the
standings, each room's match with its live score, the matches with their QBJ files, and the
bundle; and a room's console that starts its match from the schedule and says whether its
results are synced, also while its link is cut.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.core.events import CentralChanged, MatchBegun
from hub.tournament import TournamentService, load_plan, set_up
from tests.e2e.test_console import sign_in
from tests.support.cut_proxy import CutProxy
from tests.support.postgres import PostgresServer, postgres_server, server_or_skip
from tests.support.tournament import (
    HOST_TOKEN,
    PLAN,
    ROUND_1,
    match_points,
    rooms,
    settings,
    tally,
)

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server_or_skip()
    with postgres_server() as server:
        yield server


async def test_the_tournament_page_with_three_rooms(
    postgres: PostgresServer,
    new_page: Callable[..., Any],
    output_dir: Path,
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "db-password"
    password_file.write_text(postgres.password)
    plan = tmp_path / "spring-open.toml"
    plan.write_text(PLAN)
    page_settings = settings(postgres.url, password_file)
    await set_up(page_settings, load_plan(str(plan)))
    proxy = await CutProxy(postgres.port).start()
    databases = {
        "room-1": postgres.url,
        "room-2": postgres.url.replace(f":{postgres.port}/", f":{proxy.port}/"),
        "room-3": postgres.url,
    }
    service = TournamentService(page_settings, "127.0.0.1", 0)
    await service.start()
    scripts = {s.room: s for s in ROUND_1}
    try:
        async with rooms(databases, password_file, tmp_path) as room:
            for each in room.values():
                await each.hub.events.wait_for(CentralChanged, lambda e: e.connected)

            # Room 1's moderator starts the match from the schedule, in the console.
            console = await new_page()
            await sign_in(console, room["room-1"].hub, HOST_TOKEN)
            await expect(console.locator("#central")).to_have_text("Results synced")
            await room["room-1"].seat(scripts["room-1"].teams)
            await console.locator("#match-button").click()
            await console.get_by_label("From the schedule").select_option("Round 1: Red v Blue")
            await expect(console.locator("#match-name")).to_have_value("Round 1: Red v Blue")
            players = console.locator(".match-team .team-players")
            await expect(players.first).to_have_value("red-1=Alice, red-2=Amy")
            mark = room["room-1"].hub.events.mark()
            await console.get_by_role("button", name="Start the match").click()
            begun = await room["room-1"].hub.events.wait_for(MatchBegun, after=mark)
            assert begun.teams == ("Red", "Blue")
            for tossup in scripts["room-1"].tossups:
                await room["room-1"].tossup(tossup)
            await room["room-1"].end()

            # Room 3 plays its whole match; room 2 is in the middle of its own.
            await room["room-3"].play(scripts["room-3"])
            await room["room-2"].start(scripts["room-2"])
            for tossup in scripts["room-2"].tossups[:2]:
                await room["room-2"].tossup(tossup)
            for each in room.values():
                await each.synced()

            page = await new_page(1366, 900)
            await page.goto(f"http://127.0.0.1:{service.port}/")
            await expect(page.locator("#title")).to_have_text("Spring Open")
            await expect(page.locator("#link")).to_have_attribute("data-state", "live")
            live = page.locator('.room[data-room="room-2"]')
            await expect(live.locator(".playing")).to_have_text(
                "Round 1: Green v Gold · question 2"
            )
            so_far = match_points(replace(scripts["room-2"], tossups=scripts["room-2"].tossups[:2]))
            await expect(live.locator(".score")).to_have_text(
                f"Green {so_far['Green']} \u2013 Gold {so_far['Gold']}"
            )
            done = page.locator('.room[data-room="room-1"]')
            await expect(done.locator(".idle")).to_have_text("Last: Round 1: Red v Blue (final)")
            expected = tally([scripts["room-1"], scripts["room-3"]])
            first = page.locator("#teams tbody tr").first
            leader = max(expected.wins, key=lambda t: expected.team_points[t])
            await expect(first.locator("td").nth(1)).to_have_text(leader)
            alice = page.locator("#players tbody tr", has_text="Alice")
            # powers, tens, negs: Alice powered once and got one ten in Red v Blue
            await expect(alice.locator("td").nth(4)).to_have_text("1")
            await expect(alice.locator("td").nth(5)).to_have_text("1")
            await expect(alice.locator("td").nth(6)).to_have_text("0")
            await expect(page.locator('#matches tr[data-status="playing"]')).to_have_count(1)
            await page.screenshot(path=str(output_dir / "tournament-live.png"), full_page=True)

            # Room 2's link fails: its console says what waits; the match ends meanwhile.
            console2 = await new_page()
            await sign_in(console2, room["room-2"].hub, HOST_TOKEN)
            await expect(console2.locator("#central")).to_have_text("Results synced")
            proxy.cut()
            for tossup in scripts["room-2"].tossups[2:]:
                await room["room-2"].tossup(tossup)
            await room["room-2"].end()
            await expect(console2.locator("#central")).to_contain_text(
                "1 match waiting to sync", timeout=10_000
            )
            await expect(console2.locator("#central")).to_have_attribute("data-state", "down")
            proxy.restore()
            await room["room-2"].synced()
            await expect(console2.locator("#central")).to_have_text("Results synced")

            # The page follows: every match final, Green and Gold in the standings.
            await expect(page.locator('#matches tr[data-status="ended"]')).to_have_count(
                3, timeout=10_000
            )
            expected = tally(list(ROUND_1))
            rows = page.locator("#teams tbody tr")
            await expect(rows).to_have_count(6)
            for index in range(6):
                cells = rows.nth(index).locator("td")
                team = await cells.nth(1).text_content()
                assert team is not None
                await expect(cells.nth(3)).to_have_text(str(expected.wins.get(team, 0)))
                await expect(cells.nth(6)).to_have_text(str(expected.team_points[team]))
            await expect(page.locator("#schedule tbody tr")).to_have_count(6)
            await page.screenshot(path=str(output_dir / "tournament.png"), full_page=True)

            async with page.expect_download() as waiting:
                await page.locator("#bundle").click()
            download = await waiting.value
            assert download.suggested_filename == "spring-open.zip"
            saved = output_dir / "spring-open.zip"
            await download.save_as(str(saved))
            with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
                whole = json.loads(archive.read("tournament.qbj"))
                matches = [n for n in archive.namelist() if n.startswith("matches/round-01-")]
            assert len(matches) == 3
            assert whole["objects"][0]["name"] == "Spring Open"
            async with page.expect_download() as waiting:
                await page.locator("#matches tbody tr").first.get_by_text("QBJ").click()
            qbj = await waiting.value
            assert qbj.suggested_filename.endswith(".qbj")
    finally:
        await service.stop()
        await proxy.stop()
