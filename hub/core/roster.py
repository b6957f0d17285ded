"""Who the players are, apart from how they are connected right now.

A player station is its id: it keeps its name, team and clock filter when its link drops and a
new one takes over (a node that rebooted, a phone that reloaded). A link is only where the
player's frames come from and go to at the moment. Tutorial clients get ids of their own
(``text-N``), counted on from the highest id the roster already holds, so a restored roster
never hands an old id to a new client.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hub.clock import ClockFilter, FilterSettings, PressLeads, RoundTrips
from hub.core.outputs import LinkId
from hub.names import clean, distinct
from wire.enums import InputKind
from wire.messages import NAME_MAX_CHARS

TUTORIAL_PREFIX = "text-"


@dataclass(eq=False)
class Player:
    """Everything the hub knows about one player station, connected or not."""

    id: str
    name: str
    input: InputKind
    clock: ClockFilter
    team: str | None = None
    link: LinkId | None = None
    rtt_ns: int | None = None  # the fastest recent ping round trip (see pings)
    pings: RoundTrips = field(default_factory=RoundTrips)
    press_lead_ns: int = 0  # a node's presses leave it no sooner after their instant (its hello)
    press_leads: PressLeads = field(default_factory=PressLeads)  # what its presses showed
    clamped: int = 0  # presses that claimed an instant earlier than the link can explain
    last_seen_ns: int | None = None
    last_sync_ns: int | None = None

    @property
    def plain(self) -> bool:
        """A tutorial client: it speaks plain text, not the protocol."""
        return self.input is InputKind.TEXT

    @property
    def online(self) -> bool:
        return self.link is not None


@dataclass(frozen=True, slots=True)
class Known:
    """A player as saved: what the roster is rebuilt from after a restart."""

    id: str
    name: str
    input: InputKind
    team: str | None


@dataclass
class Roster:
    settings: FilterSettings
    players: dict[str, Player] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._tutorial_numbers = itertools.count(1)

    def restore(self, known: Iterable[Known]) -> None:
        for entry in known:
            self.players[entry.id] = Player(
                entry.id, entry.name, entry.input, self.fresh_clock(), team=entry.team
            )
        numbers = [
            int(pid.removeprefix(TUTORIAL_PREFIX))
            for pid in self.players
            if pid.startswith(TUTORIAL_PREFIX) and pid.removeprefix(TUTORIAL_PREFIX).isdigit()
        ]
        self._tutorial_numbers = itertools.count(max(numbers, default=0) + 1)

    def fresh_clock(self) -> ClockFilter:
        return ClockFilter(self.settings)

    def ensure(self, player_id: str) -> Player:
        """A player the engine knows but the roster lost (its row was never saved)."""
        player = self.players.get(player_id)
        if player is None:
            kind = InputKind.TEXT if player_id.startswith(TUTORIAL_PREFIX) else InputKind.GPIO
            player = self.players[player_id] = Player(
                player_id, player_id, kind, self.fresh_clock()
            )
        return player

    def node(self, player_id: str, name: str | None, kind: InputKind | None) -> Player:
        """The player for a node's hello: known by its id, or new."""
        player = self.players.get(player_id)
        if player is None:
            player = self.players[player_id] = Player(
                player_id, player_id, kind or InputKind.GPIO, self.fresh_clock()
            )
        self.rename(player, name or player.name)
        player.input = kind or player.input
        return player

    def rename(self, player: Player, name: str) -> None:
        """Give ``player`` ``name``, cleaned, and told apart from every other player online
        (``Alice`` spelt with a Greek capital alpha, next to ``Alice``, gets `` (2)``)."""
        others = (p.name for p in self.online() if p is not player)
        player.name = distinct(clean(name) or player.id, others, NAME_MAX_CHARS)

    def tutorial(self) -> Player:
        """A new tutorial client, under the next free ``text-N`` id."""
        number = next(self._tutorial_numbers)
        player = Player(
            f"{TUTORIAL_PREFIX}{number}", f"Player {number}", InputKind.TEXT, self.fresh_clock()
        )
        self.players[player.id] = player
        return player

    def forget(self, player_id: str) -> None:
        """Drop an offline player from the list (its id is known again if it comes back)."""
        self.players.pop(player_id, None)

    def get(self, player_id: str) -> Player | None:
        return self.players.get(player_id)

    def name_of(self, player_id: str) -> str:
        player = self.players.get(player_id)
        return player.name if player is not None else player_id

    def names(self) -> dict[str, str]:
        return {player.id: player.name for player in self.players.values()}

    def online(self) -> Iterator[Player]:
        return (player for player in self.players.values() if player.link is not None)

    def __iter__(self) -> Iterator[Player]:
        return iter(self.players.values())
