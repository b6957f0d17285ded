"""A tournament without its database: the room's outbox written with the match, the tournament
file checked entry by entry, the standings from finished matches, and a password that never
sits in the config's address."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub import store
from hub.centraldb import MatchRow
from hub.config import TournamentSection, database_where
from hub.standings import standings
from hub.tournament import load_plan, rounds_of
from tests.support.tournament import PLAN
from tests.unit.hub.test_exports import _final_report
from tests.unit.hub.test_store_matches import MS, TEAMS, Hub, rows
from wire import messages as msg
from wire.codec import as_data
from wire.errors import ConfigError

# --- the outbox ---


async def test_the_outbox_is_written_with_the_match_and_only_in_a_tournament(
    tmp_path: Path,
) -> None:
    hub = Hub(tmp_path / "room", 1000 * MS)
    await hub.command(msg.MatchStart(name="Warm-up", format="quizbowl", teams=TEAMS), 1000)
    await hub.command(msg.MatchEnd(), 1100)
    hub.store.outbox = ("spring-open", "room-2")
    await hub.command(msg.MatchStart(name="Final", format="quizbowl", teams=TEAMS), 1200)
    await hub.command(msg.Arm(), 1300)
    await hub.buzz("ann", 1400)
    await hub.command(msg.Right(), 1500)
    await hub.command(msg.MatchEnd(), 1600)
    hub.close()
    outbox = rows(tmp_path / "room", "SELECT seq, tournament, room, kind, match FROM outbox")
    # The warm-up before the hub joined the tournament is not sent; the final is, in order.
    assert [r[3:] for r in outbox] == [
        ("start", 2),
        ("change", 2),
        ("change", 2),
        ("change", 2),
        ("end", 2),
    ]
    assert [r[0] for r in outbox] == [1, 2, 3, 4, 5]
    assert {r[1:3] for r in outbox} == {("spring-open", "room-2")}
    db = store.connect(tmp_path / "room" / store.DATABASE_NAME, read_only=True)
    try:
        assert len(store.source_id(db)) == 32
        pending = store.outbox_after(db, 2, 10)
        assert [row.seq for row in pending] == [3, 4, 5]
        assert store.outbox_waiting(db, 2) == (3, 1)
        assert store.outbox_waiting(db, 5) == (0, 0)
        saved = store.saved_matches(db, [row.match for row in pending])
        assert saved[2].status == "ended"
        assert saved[2].result is not None
    finally:
        db.close()


# --- the tournament file ---


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return str(path)


def test_a_tournament_file_gives_rooms_teams_and_schedule(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, PLAN))
    assert plan.name == "Spring Open"
    assert (plan.rooms[0].id, plan.rooms[0].name) == ("room-1", "Room 101")
    red = plan.team(" red ")
    assert red is not None
    assert [(p.id, p.name) for p in red.players] == [("red-1", "Alice"), ("red-2", "Amy")]
    assert [(p.round, p.room, p.teams) for p in plan.schedule][:2] == [
        (1, "room-1", ("Red", "Blue")),
        (1, "room-2", ("Green", "Gold")),
    ]


def test_a_player_named_alone_plays_from_the_station_of_that_name(tmp_path: Path) -> None:
    text = PLAN.replace('Red = ["red-1=Alice", "red-2=Amy"]', 'Red = ["Ann Lee", "red-2=Amy"]')
    red = load_plan(write(tmp_path, text)).team("Red")
    assert red is not None
    assert (red.players[0].id, red.players[0].name) == ("ann-lee", "Ann Lee")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("room-1: Red v Blue", "room-1: Red v Nobody"), "no team 'Nobody'; teams: Red, Blue"),
        (("room-2: Green v Gold", "room-2: Red v Gold"), "round 1 has Red twice"),
        (("room-3: Teal v Plum", "room-9: Teal v Plum"), "no room 'room-9'"),
        (("room-3: Teal v Plum", "Teal and Plum"), "is not 'ROOM: TEAM v TEAM'"),
        (('"gold-2=Gwen"', '"red-1=Gwen"'), "player red-1 is in Red and Gold"),
        (('id = "spring-open"', 'id = "spring open"'), "id must be"),
    ],
)
def test_a_mistake_in_the_tournament_file_is_named(
    tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(")):
        load_plan(write(tmp_path, PLAN.replace(*change)))


# --- standings ---


def test_standings_count_finished_matches_by_team_and_player_name() -> None:
    report = _final_report()
    red, blue = report.teams
    assert red.points > blue.points
    # The same teams meet again, a room typing the names in other capitals: one team each.
    again = dataclasses.replace(
        report,
        teams=[dataclasses.replace(red, name=" RED"), dataclasses.replace(blue, name="-blue")],
    )
    table = standings([report, again], known_teams=["Red", "-Blue", "Idle"])
    teams = {t.team: t for t in table.teams}
    assert set(teams) == {"Red", "-Blue", "Idle"}
    assert (teams["Red"].wins, teams["Red"].losses, teams["Red"].played) == (2, 0, 2)
    assert (teams["-Blue"].wins, teams["-Blue"].losses) == (0, 2)
    assert teams["Red"].ppg == red.points
    assert teams["Idle"].played == 0
    assert table.teams[0].team == "Red"
    players = {p.name: p for p in table.players}
    # amy's right was undone and ruled a neg: one neg, no ten; ann's power; bob's ten.
    amy = next(p for p in table.players if p.player == "amy")
    assert (amy.powers, amy.tens, amy.negs) == (0, 0, 2)
    ann = players["Ann"]
    assert (ann.powers, ann.tens, ann.games) == (2, 0, 2)
    assert players["Bob"].tens == 2


def test_a_match_is_placed_in_its_round_by_room_and_teams(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, PLAN))
    report = _final_report()
    teams = [dataclasses.replace(report.teams[0], name="Red"), report.teams[1]]
    teams[1] = dataclasses.replace(teams[1], name="blue")
    data = as_data(dataclasses.replace(report, teams=teams))
    now = datetime.now(UTC)
    rows_ = [
        MatchRow("a" * 32, 1, "room-1", "R1", None, "quizbowl", "ended", data, now, now, now),
        MatchRow("b" * 32, 1, "room-2", "R?", None, "quizbowl", "ended", data, now, now, now),
    ]
    assert rounds_of(rows_, plan) == {rows_[0].key: 1}


# --- the password ---


@pytest.mark.parametrize(
    "address",
    [
        "postgresql://buzzer:secret@desk:5432/tournament",
        "host=desk dbname=tournament user=buzzer password=secret",
    ],
)
def test_a_password_in_the_database_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="password_file"):
        TournamentSection(id="t", room="r", database=address)


def test_the_database_is_named_for_people_without_a_secret(tmp_path: Path) -> None:
    assert database_where("postgresql://buzzer@desk:6543/tournament") == "desk:6543/tournament"
    assert database_where("host=desk dbname=results user=b") == "desk:5432/results"
    section = TournamentSection(
        id="t", room="r", database="postgresql://b@desk/t", password_file=str(tmp_path / "no")
    )
    with pytest.raises(ValueError, match=r"cannot read the database password file .*/no"):
        section.password()
    (tmp_path / "pw").write_text("s3cret\n")
    section = dataclasses.replace(section, password_file=str(tmp_path / "pw"))
    assert section.password() == "s3cret"


def test_a_tournament_needs_its_id_and_database() -> None:
    with pytest.raises(ValueError, match="set id too"):
        TournamentSection(room="room-1")
    with pytest.raises(ValueError, match="set database"):
        TournamentSection(id="spring-open")
