"""Wire protocol v1: every message the hub and its clients exchange, parsed and encoded here.

Pure code: no sockets, no clocks. The hub and the node firmware both import it, so a field cannot
mean one thing on one side and another on the other. ``docs/protocol.md`` is the human-readable copy
of what is declared here; keep them in step.

Decoding never raises: any text yields either a :class:`Decoded` message or a :class:`ProtocolError`
value that the server can send back as it is. Unknown fields do not lose the message; they are
reported as warnings so an old hub can still serve a newer client's presses.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Final, Union

PROTOCOL_VERSION: Final = 1

#: Largest frame a client may send. The biggest client message (a hello with a long token) is
#: well under 1 KiB; the margin leaves room for extensions without inviting abuse.
MAX_CLIENT_FRAME_BYTES: Final = 4096

#: The tutorial protocol: a bare text frame ``buzz`` is a press; any other bare text is a name.
PLAIN_BUZZ: Final = "buzz"

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
NAME_MAX_CHARS: Final = 40
TOKEN_MAX_CHARS: Final = 256
#: Any timestamp or duration in nanoseconds fits in a signed 64-bit integer.
NS_MAX: Final = 2**63 - 1


class Role(StrEnum):
    NODE = "node"
    HOST = "host"
    VIEWER = "viewer"


class InputKind(StrEnum):
    GPIO = "gpio"
    KEYBOARD = "keyboard"
    TERMINAL = "terminal"
    BROWSER = "browser"
    TEXT = "text"  # a plain-text tutorial client; never sent on the wire by a JSON client


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_object"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    VERSION_MISMATCH = "version_mismatch"
    HELLO_REQUIRED = "hello_required"
    ALREADY_GREETED = "already_greeted"
    NOT_ALLOWED = "not_allowed"
    BAD_TOKEN = "bad_token"
    BINARY_FRAME = "binary_frame"
    UNKNOWN_SYNC = "unknown_sync"
    UNKNOWN_FIELD = "unknown_field"  # a warning: the message was used, the field ignored
    NOTHING_TO_RULE = "nothing_to_rule"  # right/wrong while nobody has the floor


class CloseCode:
    """WebSocket close codes the hub uses; 4000-4999 are reserved for applications by RFC 6455."""

    NORMAL: Final = 1000
    GOING_AWAY: Final = 1001  # the hub is shutting down; reconnect
    TOO_BIG: Final = 1009  # sent by the websockets library itself
    INTERNAL_ERROR: Final = 1011
    BAD_HELLO: Final = 4400  # hello invalid in a way that cannot be retried as is
    BAD_TOKEN: Final = 4401  # token missing or wrong for the requested role
    REPLACED: Final = 4409  # another connection took over this node id
    VERSION_MISMATCH: Final = 4426  # protocol version not supported
    INPUT_REFUSED: Final = 4403  # the host is not taking players of this input kind (browsers)
    TOO_SLOW: Final = 4408  # the client stopped reading; the hub will not buffer for it
    RATE_LIMITED: Final = 4429  # more frames than any real client sends; back off, reconnect


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A problem with one frame, phrased for the person who wrote the client."""

    code: ErrorCode
    message: str


def _spec(**constraints: Any) -> Any:
    """Attach validation constraints (``min``, ``max``, ``max_len``, ``pattern``, ``choices``)."""
    default = constraints.pop("default", MISSING)
    return field(default=default, metadata=constraints)


@dataclass(frozen=True, slots=True)
class Message:
    TYPE: ClassVar[str] = ""


# --- client -> hub ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int = _spec(min=0, max=1_000_000)
    role: str = _spec(choices=tuple(Role))
    id: str | None = _spec(default=None, pattern=ID_PATTERN)
    name: str | None = _spec(default=None, max_len=NAME_MAX_CHARS, printable=True)
    input: str | None = _spec(default=None, choices=tuple(InputKind))
    token: str | None = _spec(default=None, max_len=TOKEN_MAX_CHARS)
    team: str | None = _spec(default=None, max_len=NAME_MAX_CHARS, printable=True)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class Press(Message):
    TYPE: ClassVar[str] = "press"
    press_id: str = _spec(pattern=ID_PATTERN)
    at_ns: int = _spec(min=-NS_MAX, max=NS_MAX)
    round: int | None = _spec(default=None, min=0, max=NS_MAX)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class SyncReply(Message):
    TYPE: ClassVar[str] = "sync_reply"
    seq: int = _spec(min=0, max=NS_MAX)
    t0_ns: int = _spec(min=-NS_MAX, max=NS_MAX)
    t1_ns: int = _spec(min=-NS_MAX, max=NS_MAX)
    t2_ns: int = _spec(min=-NS_MAX, max=NS_MAX)


@dataclass(frozen=True, slots=True)
class Arm(Message):
    TYPE: ClassVar[str] = "arm"
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class Reset(Message):
    TYPE: ClassVar[str] = "reset"
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class CloseRound(Message):
    TYPE: ClassVar[str] = "close"
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class Players(Message):
    """Let browser player pages join, or refuse them (and drop those already connected)."""

    TYPE: ClassVar[str] = "players"
    browser: bool
    ref: str | None = _spec(default=None, max_len=64)


HostCommand = Arm | Reset | CloseRound


# --- client -> hub: game play (host role only) ---

#: Largest number of points one command may award or deduct.
POINTS_MAX: Final = 1_000_000
REBOUND_MODES: Final = ("next", "rearm")


@dataclass(frozen=True, slots=True)
class Wrong(Message):
    """The player with the floor answered wrong; ``mode`` picks the rebound (default: config)."""

    TYPE: ClassVar[str] = "wrong"
    mode: str | None = _spec(default=None, choices=REBOUND_MODES)
    points: int | None = _spec(default=None, min=-POINTS_MAX, max=POINTS_MAX)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class Right(Message):
    """The player with the floor answered right: the question ends."""

    TYPE: ClassVar[str] = "right"
    points: int | None = _spec(default=None, min=-POINTS_MAX, max=POINTS_MAX)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class Score(Message):
    """Award (or, negative, deduct) points to a player or a team."""

    TYPE: ClassVar[str] = "score"
    points: int = _spec(min=-POINTS_MAX, max=POINTS_MAX)
    player: str | None = _spec(default=None, pattern=ID_PATTERN)
    team: str | None = _spec(default=None, max_len=NAME_MAX_CHARS, printable=True)
    reason: str | None = _spec(default=None, max_len=NAME_MAX_CHARS, printable=True)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class SetTeam(Message):
    """Put a player in a team; a null ``team`` takes them out of any team."""

    TYPE: ClassVar[str] = "team"
    player: str = _spec(pattern=ID_PATTERN)
    team: str | None = _spec(default=None, max_len=NAME_MAX_CHARS, printable=True)
    ref: str | None = _spec(default=None, max_len=64)


@dataclass(frozen=True, slots=True)
class ClearScores(Message):
    """Start a new game: every score back to zero."""

    TYPE: ClassVar[str] = "clear_scores"
    ref: str | None = _spec(default=None, max_len=64)


GameCommand = Wrong | Right | Score | SetTeam | ClearScores
ClientMessage = Hello | Press | SyncReply | HostCommand | GameCommand | Players

# --- hub -> client ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: int
    role: str
    greeting: str
    hub_ns: int
    id: str | None = None
    round: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sync(Message):
    TYPE: ClassVar[str] = "sync"
    seq: int
    t0_ns: int


@dataclass(frozen=True, slots=True)
class RoundUpdate(Message):
    """Round state as a node needs it: enough to drive the LED, nothing about other players."""

    TYPE: ClassVar[str] = "round"
    number: int
    state: str
    release_ns: int | None = None
    synced: bool = False
    locked_out: bool = False
    winner: str | None = None


@dataclass(frozen=True, slots=True)
class Ack(Message):
    TYPE: ClassVar[str] = "ack"
    press_id: str


@dataclass(frozen=True, slots=True)
class Result(Message):
    TYPE: ClassVar[str] = "result"
    round: int
    press_id: str
    rank: int | None
    flags: list[str]
    text: str
    reaction_ns: int | None = None
    behind_ns: int | None = None
    uncertainty_ns: int | None = None
    lockout_ns: int | None = None


@dataclass(frozen=True, slots=True)
class State(Message):
    """The whole picture, for hosts and viewers."""

    TYPE: ClassVar[str] = "state"
    hub_ns: int
    round: dict[str, Any]
    players: list[dict[str, Any]]
    history: list[dict[str, Any]]
    game: dict[str, Any] | None = None  # floor, timers, teams, scores: docs/protocol.md section 14
    storage: dict[str, Any] | None = None  # are results being saved: saving, path, message
    join: dict[str, Any] | None = None  # who may join: browser players allowed, token required


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Warning(Message):
    TYPE: ClassVar[str] = "warning"
    code: str
    message: str


# --- hub -> client: game play ---


@dataclass(frozen=True, slots=True)
class Offer(Message):
    """To one node: the answer is yours now (a rebound passed it down the ranking)."""

    TYPE: ClassVar[str] = "offer"
    round: int
    text: str
    deadline_ns: int | None = None  # when the answer time is up, in the node's own clock
    remaining_ns: int | None = None  # the answer time left when the offer was sent


@dataclass(frozen=True, slots=True)
class Ruling(Message):
    """To the ruled node and to hosts and viewers: the host's ruling on an answer."""

    TYPE: ClassVar[str] = "ruling"
    round: int
    player: str
    name: str
    correct: bool
    text: str
    team: str | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class TimerNotice(Message):
    """A buzz-window or answer-timer stage: the console beeps, the big screen shows it."""

    TYPE: ClassVar[str] = "timer"
    round: int
    timer: str  # "buzz" or "answer"
    stage: str  # "warning" or "expired"
    text: str
    player: str | None = None


HubMessage = (
    Welcome
    | Sync
    | RoundUpdate
    | Ack
    | Result
    | State
    | Error
    | Warning
    | Offer
    | Ruling
    | TimerNotice
)

CLIENT_TYPES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls for cls in (Hello, Press, SyncReply, Arm, Reset, CloseRound)
}
CLIENT_TYPES.update({cls.TYPE: cls for cls in (Wrong, Right, Score, SetTeam, ClearScores, Players)})
HUB_TYPES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls for cls in (Welcome, Sync, RoundUpdate, Ack, Result, State, Error, Warning)
}
HUB_TYPES.update({cls.TYPE: cls for cls in (Offer, Ruling, TimerNotice)})


@dataclass(frozen=True, slots=True)
class Decoded:
    message: Message
    unknown_fields: tuple[str, ...] = ()


# --- decoding ----------------------------------------------------------------------------------


_FieldTable = tuple[tuple[str, Any, dict[str, Any], bool], ...]
_field_tables: dict[str, _FieldTable] = {}


def _field_table(cls: type[Message]) -> _FieldTable:
    """Name, type, constraints and requiredness of each field, worked out once per type."""
    cached = _field_tables.get(cls.TYPE)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    table = []
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        table.append((f.name, hints[f.name], dict(f.metadata), required))
    _field_tables[cls.TYPE] = tuple(table)
    return _field_tables[cls.TYPE]


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        names = [_describe(arg) for arg in typing.get_args(kind) if arg is not type(None)]
        return " or ".join(names) + " or null"
    if origin is list:
        return "an array"
    if origin is dict:
        return "an object"
    return {int: "an integer", str: "a string", bool: "true or false"}.get(kind, str(kind))


def _check(name: str, value: Any, kind: Any, meta: dict[str, Any]) -> str | None:
    """Return why ``value`` is not acceptable for a field, or None when it is."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        inner = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _check(name, value, inner[0], meta)
    expected = origin or kind
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        return f"field '{name}' must be {_describe(kind)}, got {json.dumps(value)[:40]}"
    if expected is int and (
        ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"])
    ):
        return f"field '{name}' is out of range ({meta.get('min')}..{meta.get('max')})"
    if expected is str:
        if "choices" in meta and value not in meta["choices"]:
            allowed = ", ".join(str(c) for c in meta["choices"])
            return f"field '{name}' must be one of: {allowed}"
        if "pattern" in meta and not meta["pattern"].fullmatch(value):
            return (
                f"field '{name}' must be 1-64 letters, digits, '.', '_', ':' or '-', "
                "starting with a letter or digit"
            )
        if "max_len" in meta and not 0 < len(value) <= meta["max_len"]:
            return f"field '{name}' must be 1 to {meta['max_len']} characters"
        if meta.get("printable") and not value.isprintable():
            return f"field '{name}' must not contain control characters"
    return None


def _unencodable(text: str, data: Any) -> ProtocolError | None:
    """Why a parsed frame's strings cannot be sent back as UTF-8, or None when they can.

    JSON may spell a lone surrogate as an escape (``"\\ud800"``); Python then holds a string that
    cannot be encoded, and echoing it (a name, an unknown field) would fail at send time. Only
    frames with escapes or non-ASCII text can hold one, so ordinary frames skip the check.
    """
    if "\\u" not in text and text.isascii():
        return None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ProtocolError(ErrorCode.BAD_JSON, "frame holds a lone UTF-16 surrogate escape")
    except RecursionError:
        return ProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON: nested too deeply")
    return None


def decode(text: str | bytes, registry: dict[str, type[Message]]) -> Decoded | ProtocolError:
    """Parse one frame against a registry of message types. Never raises."""
    if isinstance(text, bytes):
        return ProtocolError(
            ErrorCode.BINARY_FRAME, "binary frames are not part of the protocol; send JSON text"
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        return ProtocolError(ErrorCode.BAD_JSON, f"frame is not valid JSON: {detail}")
    if not isinstance(data, dict):
        return ProtocolError(ErrorCode.NOT_AN_OBJECT, "each frame must be a JSON object")
    unusable = _unencodable(text, data)
    if unusable is not None:
        return unusable
    kind = data.get("type")
    if not isinstance(kind, str):
        return ProtocolError(ErrorCode.MISSING_FIELD, "every message needs a string field 'type'")
    cls = registry.get(kind)
    if cls is None:
        known = ", ".join(sorted(registry))
        return ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}; known types: {known}"
        )
    values: dict[str, Any] = {}
    table = _field_table(cls)
    for name, hint, meta, required in table:
        if name not in data:
            if required:
                return ProtocolError(ErrorCode.MISSING_FIELD, f"'{kind}' needs the field '{name}'")
            continue
        problem = _check(name, data[name], hint, meta)
        if problem is not None:
            return ProtocolError(ErrorCode.BAD_FIELD, f"'{kind}': {problem}")
        values[name] = data[name]
    known_names = {name for name, *_ in table} | {"type"}
    unknown = tuple(sorted(str(key)[:40] for key in data if key not in known_names))
    return Decoded(cls(**values), unknown)


def decode_client(text: str | bytes) -> Decoded | ProtocolError:
    """Parse a frame sent by a node, host or viewer."""
    return decode(text, CLIENT_TYPES)


def decode_hub(text: str | bytes) -> Decoded | ProtocolError:
    """Parse a frame sent by the hub (used by the firmware and the command-line controller)."""
    return decode(text, HUB_TYPES)


#: One encoder for every frame: ``json.dumps`` with options builds a new encoder per call, and a
#: decision at a thousand nodes encodes thousands of frames in one go.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


_FIELD_NAMES: dict[type[Message], tuple[str, ...]] = {}


def _field_names(kind: type[Message]) -> tuple[str, ...]:
    """A message class's field names, looked up once (``fields()`` is slow to call per frame)."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


def encode(message: Message) -> str:
    """One compact JSON text frame; ``type`` first so logs and captures read naturally."""
    body: dict[str, Any] = {"type": message.TYPE}
    for name in _field_names(type(message)):
        body[name] = getattr(message, name)
    return _ENCODER.encode(body)


def looks_like_json(text: str) -> bool:
    """A first frame starting with ``{`` speaks protocol v1; anything else speaks the tutorial's."""
    return text.lstrip().startswith("{")


def error_frame(error: ProtocolError, ref: str | None = None) -> str:
    return encode(Error(code=str(error.code), message=error.message, ref=ref))
