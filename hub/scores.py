"""The scoreboard: points awarded or deducted by the host, per player and per team.

Pure and separate from the round engine: scores outlive rounds, questions and even games the hub
restarts in between, so they are kept as an append-only list of entries that can be written out
(:meth:`Scoreboard.snapshot`) and read back (:meth:`Scoreboard.restore`). Totals are computed from
the entries, so a stored board can never disagree with itself.

A player's points also count for the team the player was in *when the points were given*: a player
who changes teams during an event does not carry the old team's points away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from wire.errors import BuzzerError

#: Largest number of points one award may add or take away; anything bigger is a typing error.
MAX_POINTS = 1_000_000
#: Entries kept; an evening of quiz bowl has a few hundred.
MAX_ENTRIES = 100_000


class ScoreError(BuzzerError):
    """An award that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One award (positive) or deduction (negative)."""

    at_ns: int
    points: int
    player: str | None = None  # None: the points go to the team alone
    team: str | None = None  # the player's team at the time, or the team awarded
    reason: str = ""


class Scoreboard:
    """Every award of an event, and the totals derived from them."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def award(
        self,
        points: int,
        now: int,
        *,
        player: str | None = None,
        team: str | None = None,
        reason: str = "",
    ) -> Entry:
        """Add (or, with negative points, deduct) points for a player, a team, or both.

        Given a player, ``team`` is the player's current team (their points count for it too);
        without a player the points go to the team alone.
        """
        if player is None and team is None:
            raise ScoreError("say who gets the points: a player or a team")
        if isinstance(points, bool) or not isinstance(points, int):
            raise ScoreError("points must be a whole number")
        if not -MAX_POINTS <= points <= MAX_POINTS:
            raise ScoreError(f"points must be between -{MAX_POINTS} and {MAX_POINTS}")
        if len(self.entries) >= MAX_ENTRIES:
            raise ScoreError("the scoreboard is full; clear it to start a new game")
        entry = Entry(at_ns=now, points=points, player=player, team=team, reason=reason)
        self.entries.append(entry)
        return entry

    def clear(self) -> None:
        """Start a new game: every total back to zero."""
        self.entries.clear()

    def player_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for entry in self.entries:
            if entry.player is not None:
                totals[entry.player] = totals.get(entry.player, 0) + entry.points
        return totals

    def team_totals(self) -> dict[str, int]:
        """Team awards plus the points the team's players earned while in it."""
        totals: dict[str, int] = {}
        for entry in self.entries:
            if entry.team is not None:
                totals[entry.team] = totals.get(entry.team, 0) + entry.points
        return totals

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to rebuild the board, as plain JSON-ready data."""
        return {"version": 1, "entries": [asdict(entry) for entry in self.entries]}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Scoreboard:
        """Rebuild a board from :meth:`snapshot`; a malformed snapshot raises ScoreError."""
        if data.get("version") != 1 or not isinstance(data.get("entries"), list):
            raise ScoreError("not a version 1 scoreboard snapshot")
        board = cls()
        for item in data["entries"]:
            try:
                entry = Entry(**item)
            except TypeError as exc:
                raise ScoreError(f"bad scoreboard entry {item!r}: {exc}") from None
            board.award(
                entry.points,
                entry.at_ns,
                player=entry.player,
                team=entry.team,
                reason=entry.reason,
            )
        return board

    @staticmethod
    def ranked(totals: dict[str, int]) -> list[tuple[str, int]]:
        """Totals highest first, ties by name: the order the console and the big screen show."""
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))
