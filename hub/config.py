"""The hub's settings: defaults, then the config file, then the environment, then the command line.

Every key is documented in ``config/hub.toml``. Section classes check their own ranges so that a
bad value is refused at start, not discovered in the middle of an event.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path

from hub.formats import FORMATS
from hub.round import Rules, TieRule
from wire import configfile
from wire.enums import InputKind, ReboundMode
from wire.messages import ID_PATTERN, NAME_MAX_CHARS

DEFAULT_PORT = 8765


def _positive(name: str, value: float, allow_zero: bool = True) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'zero or more' if allow_zero else 'more than zero'}")


@dataclass(frozen=True)
class ServerSection:
    host: str = ""  # empty: every interface
    port: int = DEFAULT_PORT
    data_dir: str = ""  # empty: $STATE_DIRECTORY (systemd) or ~/.local/share/buzzer-beater
    host_token: str = ""  # empty: generated at first start and kept in the data directory
    node_token: str = ""  # empty: nodes need no token
    browser_players: bool = True  # phones and laptops may join from /play (the host can toggle)
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535 (0 picks a free port)")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be one of debug, info, warning, error")


@dataclass(frozen=True)
class RoundSection:
    hostless: bool = True
    auto_arm_delay_s: float = 3.0
    release_lead_ms: float = 100.0
    lockout_ms: float | None = None  # unset: locked out until the next arm
    tie_rule: str = "earliest"
    adjudication_margin_ms: float = 2.0
    adjudication_cap_ms: float = 500.0

    def __post_init__(self) -> None:
        _positive("auto_arm_delay_s", self.auto_arm_delay_s)
        _positive("release_lead_ms", self.release_lead_ms)
        _positive("adjudication_margin_ms", self.adjudication_margin_ms)
        _positive("adjudication_cap_ms", self.adjudication_cap_ms)
        if self.lockout_ms is not None:
            _positive("lockout_ms", self.lockout_ms, allow_zero=False)
        try:
            TieRule(self.tie_rule)
        except ValueError:
            raise ValueError(f"tie_rule must be one of {', '.join(TieRule)}") from None

    def rules(self) -> Rules:
        return Rules(
            release_lead_ns=ms_to_ns(self.release_lead_ms),
            lockout_ns=None if self.lockout_ms is None else ms_to_ns(self.lockout_ms),
            tie_rule=TieRule(self.tie_rule),
            adjudication_cap_ns=ms_to_ns(self.adjudication_cap_ms),
            auto_arm_after_ns=int(self.auto_arm_delay_s * 1e9) if self.hostless else None,
        )


@dataclass(frozen=True)
class ClockSection:
    burst: int = 8  # sync exchanges right after a node connects
    burst_interval_ms: float = 20.0
    sync_interval_s: float = 2.0  # then one exchange this often while the filter converges
    max_sync_interval_s: float = 32.0  # backing off to this while the node's drift fit holds
    window: int = 32  # samples the filter keeps

    def __post_init__(self) -> None:
        _positive("burst", self.burst, allow_zero=False)
        _positive("burst_interval_ms", self.burst_interval_ms, allow_zero=False)
        _positive("sync_interval_s", self.sync_interval_s, allow_zero=False)
        if self.max_sync_interval_s < self.sync_interval_s:
            raise ValueError(
                "max_sync_interval_s must be at least sync_interval_s (equal: a fixed interval)"
            )
        if self.window < 3:
            raise ValueError("window must be at least 3 samples")


@dataclass(frozen=True)
class TrustSection:
    """How much earlier than its arrival a press may claim to be made, at most, per kind of
    station: what the link's measured delays explain, never more than these caps."""

    # From the edge to the press leaving the node: what no exchange of timestamps sees (a busy
    # node's event loop). Any claim within this of what the link explains is taken as it is.
    allowance_ms: float = 10.0
    # How long a press may spend on its station before it leaves (a button's confirmation
    # window, a slow board's work) that rounds wait for: what a station says counts up to this.
    # A station that lies about it stretches every round by this much and no more.
    station_lead_ms: float = 5.0
    node_cap_ms: float = 250.0  # Pi nodes: a button, a keyboard or a terminal
    browser_cap_ms: float = 250.0  # /play pages on phones and laptops
    plain_cap_ms: float = 250.0  # tutorial clients (placed half their round trip back)

    def __post_init__(self) -> None:
        for name in (
            "allowance_ms",
            "station_lead_ms",
            "node_cap_ms",
            "browser_cap_ms",
            "plain_cap_ms",
        ):
            _positive(name, getattr(self, name))

    def caps_ns(self) -> dict[InputKind, int]:
        node = ms_to_ns(self.node_cap_ms)
        return {
            InputKind.GPIO: node,
            InputKind.KEYBOARD: node,
            InputKind.TERMINAL: node,
            InputKind.BROWSER: ms_to_ns(self.browser_cap_ms),
            InputKind.TEXT: ms_to_ns(self.plain_cap_ms),
        }


@dataclass(frozen=True)
class LimitsSection:
    """What one client may cost the hub; each breach has its own close code (docs/security.md)."""

    max_connections: int = 2000  # WebSocket connections at once; more get HTTP 503 (0: no cap)
    hello_timeout_s: float = 10.0  # a connection that has not said hello by then is closed (4400)
    messages_per_s: float = 50.0  # sustained frames a second per connection (4429 past it)
    message_burst: int = 200  # frames a connection may send at once before the rate applies
    send_buffer_kb: int = 1024  # unsent data a peer may leave queued before it is dropped (4408)
    # Station ids the hub has not seen, per address: a burst, then this many a second (4429).
    new_ids_burst: int = 256
    new_ids_per_s: float = 2.0
    # Tokenless connections (viewers, tutorial clients, nodes without a node token, greetings
    # not done) one address may hold (0: no limit); all of them together take at most three
    # quarters of max_connections, so a host and token holders always find room.
    tokenless_per_address: int = 64
    # A link silent this long (to a quarter longer: the hub looks four times per interval) is
    # pinged; with nothing back within as long again, it is closed (1011).
    keepalive_s: float = 20.0

    def __post_init__(self) -> None:
        _positive("max_connections", self.max_connections)
        _positive("keepalive_s", self.keepalive_s, allow_zero=False)
        _positive("new_ids_burst", self.new_ids_burst, allow_zero=False)
        _positive("new_ids_per_s", self.new_ids_per_s, allow_zero=False)
        _positive("tokenless_per_address", self.tokenless_per_address)
        _positive("hello_timeout_s", self.hello_timeout_s, allow_zero=False)
        _positive("messages_per_s", self.messages_per_s, allow_zero=False)
        _positive("message_burst", self.message_burst, allow_zero=False)
        _positive("send_buffer_kb", self.send_buffer_kb)


@dataclass(frozen=True)
class SecuritySection:
    """TLS and browser origins; tokens live in [server]."""

    certfile: str = ""  # PEM certificate chain; with keyfile, the hub serves wss:// and https://
    keyfile: str = ""
    origins: list[str] = field(default_factory=list)  # extra browser origins allowed to connect
    # With a node token: refuse (HTTP 401) upgrades that carry no token, instead of letting them
    # say hello first. Off by default while clients that send the token only in the hello exist.
    token_before_upgrade: bool = False

    def __post_init__(self) -> None:
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("certfile and keyfile go together: set both or neither")
        for origin in self.origins:
            if origin != "null" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"origins: {origin!r} must look like https://host[:port]")

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


@dataclass(frozen=True)
class GameSection:
    """Game play: teams, rebounds, timers and points (every default keeps a plain buzzer)."""

    one_buzz_per_team: bool = False
    rebound: str = "rearm"
    buzz_window_s: float | None = None
    answer_time_s: float | None = None
    answer_warning_s: float | None = None
    points_right: int = 10
    points_wrong: int = 0
    teams: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rebound not in tuple(ReboundMode):
            raise ValueError(f"rebound must be one of {', '.join(ReboundMode)}")
        for name in ("buzz_window_s", "answer_time_s", "answer_warning_s"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value, allow_zero=False)
        seen: dict[str, str] = {}
        for team, players in self.teams.items():
            if not 0 < len(team) <= NAME_MAX_CHARS or not team.isprintable():
                raise ValueError(
                    f"team name {team[:50]!r} must be 1 to {NAME_MAX_CHARS} characters"
                )
            for player in players:
                if not ID_PATTERN.fullmatch(player):
                    raise ValueError(f"team {team}: {player[:70]!r} is not a player id")
                if player in seen:
                    raise ValueError(f"player {player} is in two teams: {seen[player]}, {team}")
                seen[player] = team

    def apply(self, rules: Rules) -> Rules:
        """The round rules with this section's game rules added."""
        return replace(
            rules,
            one_buzz_per_team=self.one_buzz_per_team,
            rebound=ReboundMode(self.rebound),
            buzz_window_ns=_s_to_ns(self.buzz_window_s),
            answer_ns=_s_to_ns(self.answer_time_s),
            answer_warning_ns=_s_to_ns(self.answer_warning_s),
        )

    def team_of(self) -> dict[str, str]:
        """Player id -> team, from the [game.teams] table."""
        return {player: team for team, players in self.teams.items() for player in players}


def _s_to_ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e9)


@dataclass(frozen=True)
class MatchSection:
    """Matches: the format the console offers first, and the hub's own timer lengths."""

    format: str = "quizbowl"
    tossup_time_s: float | None = None  # unset: the format's (5 s in quiz bowl)
    bonus_time_s: float | None = None  # unset: the format's (5 s a part in quiz bowl)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        for name in ("tossup_time_s", "bonus_time_s"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value, allow_zero=False)


#: Tournament and room ids: what a director types, and what the results database keys on.
TOURNAMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


@dataclass(frozen=True)
class TournamentSection:
    """Which tournament and room this hub serves, and where the tournament's results database is
    (docs/tournament.md). Empty ``id``: the hub is not in a tournament and pushes nothing.

    The password is never in this file's ``database`` address: it comes from ``password_file`` or
    the environment variable ``password_env`` names, so that the config can be shown, copied
    and logged without it.
    """

    id: str = ""  # the tournament, e.g. "spring-open-2025"
    room: str = ""  # this hub's room, e.g. "room-3"
    database: str = ""  # PostgreSQL address: postgresql://user@host:5432/dbname
    password_file: str = ""  # a file holding the database password (one line)
    password_env: str = "BUZZER_DB_PASSWORD"  # or this environment variable
    timeout_s: float = 10.0  # a database operation that takes longer: the link is down
    retry_s: float = 5.0  # after a failure the link tries again, waiting longer each time, to this

    def __post_init__(self) -> None:
        for name in ("id", "room"):
            value = getattr(self, name)
            if value and not TOURNAMENT_ID.fullmatch(value):
                raise ValueError(
                    f"{name} {value[:50]!r} must be 1 to 40 letters, digits, '-', '_' or '.'"
                )
        if self.room and not self.id:
            raise ValueError("room is set but the tournament id is not: set id too")
        if self.id and not self.database:
            raise ValueError("a tournament needs its results database: set database")
        if self.database and _has_password(self.database):
            raise ValueError(
                "database must not hold the password: put it in password_file or in the "
                f"environment variable {self.password_env or 'BUZZER_DB_PASSWORD'}"
            )
        _positive("timeout_s", self.timeout_s, allow_zero=False)
        _positive("retry_s", self.retry_s, allow_zero=False)

    @property
    def enabled(self) -> bool:
        return bool(self.id)

    def password(self) -> str | None:
        """The database password (None: none is set; the server may not need one).

        Raises ``ValueError`` naming the file when ``password_file`` cannot be read: a room
        whose password is missing should say so, not try without one.
        """
        if self.password_file:
            try:
                return Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"cannot read the database password file {self.password_file}: "
                    f"{(exc.strerror or str(exc)).lower()}"
                ) from None
        if self.password_env:
            return os.environ.get(self.password_env) or None
        return None

    def where(self) -> str:
        """The database's address for people and logs: host, port and name, never a secret."""
        return database_where(self.database)


def _has_password(address: str) -> bool:
    if "://" in address:
        return urllib.parse.urlsplit(address).password is not None
    return re.search(r"(^|\s)password\s*=", address) is not None


def database_where(address: str) -> str:
    """``host:port/dbname`` of a PostgreSQL address (URL or ``key=value`` form)."""
    if "://" in address:
        parts = urllib.parse.urlsplit(address)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
        name = parts.path.lstrip("/") or parts.username or "postgres"
        return f"{host}:{port}/{name}"
    pairs = dict(re.findall(r"(\w+)\s*=\s*(\S+)", address))
    host = pairs.get("host", "localhost")
    return (
        f"{host}:{pairs.get('port', '5432')}/{pairs.get('dbname', pairs.get('user', 'postgres'))}"
    )


@dataclass(frozen=True)
class DiscoverySection:
    enabled: bool = True  # announce the hub over mDNS so nodes with hub = "auto" find it
    name: str = ""  # empty: "Buzzer Beater on <hostname>"
    # Announce only on these interfaces (e.g. ["wlan0"]); empty: every real LAN interface.
    interfaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for interface in self.interfaces:
            if not 0 < len(interface) <= 15 or not interface.isprintable() or "/" in interface:
                raise ValueError(f"interfaces: {interface[:20]!r} is not an interface name")
        if len(self.name.encode()) > 63:
            raise ValueError("name must be at most 63 bytes (a DNS label)")
        if "." in self.name:
            raise ValueError("name must not contain a dot")


@dataclass(frozen=True)
class HubConfig:
    server: ServerSection = field(default_factory=ServerSection)
    round: RoundSection = field(default_factory=RoundSection)
    clock: ClockSection = field(default_factory=ClockSection)
    trust: TrustSection = field(default_factory=TrustSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    game: GameSection = field(default_factory=GameSection)
    match: MatchSection = field(default_factory=MatchSection)
    discovery: DiscoverySection = field(default_factory=DiscoverySection)
    tournament: TournamentSection = field(default_factory=TournamentSection)

    @classmethod
    def load(cls, path: Path | str | None) -> HubConfig:
        return cls() if path is None else configfile.load(cls, path)

    def data_path(self) -> Path:
        if self.server.data_dir:
            return Path(self.server.data_dir).expanduser()
        state = os.environ.get("STATE_DIRECTORY")
        if state:
            return Path(state.split(":")[0])
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(base) / "buzzer-beater"


def ms_to_ns(ms: float) -> int:
    return round(ms * 1_000_000)
