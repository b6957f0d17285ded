"""Frames to messages and back, driven by the dataclasses of :mod:`wire.messages`.

Decoding never raises: any text yields either a :class:`Decoded` message or a
:class:`ProtocolError` value that a server can send back as it is. Unknown fields do not lose the
message, at any depth: they are listed in :attr:`Decoded.unknown_fields` (as paths such as
``round.colour``) so an older peer still serves a newer one's presses and shows a newer hub's
pictures. A list of flags may likewise hold a flag this side does not know: it is left out of the
list and reported the same way. Nested objects come back as their dataclasses, never as dicts.

Encoding writes compact JSON with ``type`` first, so logs and captures read naturally.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from enum import Enum
from typing import Any, TypeVar, Union

from wire.enums import ErrorCode
from wire.messages import CLIENT_TYPES, HUB_TYPES, Error, Message

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A problem with one frame, phrased for the person who wrote the client."""

    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Decoded:
    message: Message
    unknown_fields: tuple[str, ...] = ()


class _Invalid(Exception):
    """Why a value does not fit its field (internal: decode turns it into a ProtocolError)."""


# --- what each field may hold, worked out once per class ---


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: Any
    meta: dict[str, Any]
    required: bool


_TABLES: dict[type, tuple[_Field, ...]] = {}


def _table(cls: type) -> tuple[_Field, ...]:
    table = _TABLES.get(cls)
    if table is None:
        hints = typing.get_type_hints(cls)
        table = _TABLES[cls] = tuple(
            _Field(
                f.name,
                hints[f.name],
                dict(f.metadata),
                f.default is MISSING and f.default_factory is MISSING,
            )
            for f in fields(cls)
        )
    return table


def _optional_inner(kind: Any) -> Any | None:
    """``X`` for ``X | None``; None for any other type."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        inner = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return None


def _describe(kind: Any) -> str:
    inner = _optional_inner(kind)
    if inner is not None:
        return f"{_describe(inner)} or null"
    origin = typing.get_origin(kind)
    if origin is list:
        return "an array"
    if origin is dict or dataclasses.is_dataclass(kind):
        return "an object"
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "a string"
    names = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}
    return names.get(kind, str(kind))


def _show(value: Any) -> str:
    try:
        return json.dumps(value)[:40]
    except (TypeError, ValueError, RecursionError):
        return "?"


# --- decoding ---


def _convert(name: str, value: Any, kind: Any, meta: dict[str, Any], unknown: list[str]) -> Any:
    """``value`` as a ``kind``, checked against ``meta``; raises _Invalid saying why not."""
    # Integers and strings first, with no type introspection: they are nearly every field of the
    # frames that come by the thousand (sync replies, presses).
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            raise _Invalid(f"field '{name}' is out of range ({meta.get('min')}..{meta.get('max')})")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        _check_text(name, value, meta)
        return value
    inner = _optional_inner(kind)
    if inner is not None:
        return None if value is None else _convert(name, value, inner, meta, unknown)
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, list):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        (item,) = typing.get_args(kind)
        items = []
        for index, element in enumerate(value):
            where = f"{name}[{index}]"
            if isinstance(item, type) and issubclass(item, Enum) and not _is_member(item, element):
                unknown.append(f"{where}={str(element)[:40]}")  # a newer peer's member
                continue
            items.append(_convert(where, element, item, {}, unknown))
        return items
    if origin is dict:
        if not isinstance(value, dict):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        _, item = typing.get_args(kind)
        return {str(k): _convert(f"{name}.{k}", v, item, {}, unknown) for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        return _build(kind, value, unknown, f"{name}.")  # type: ignore[arg-type]
    if isinstance(kind, type) and issubclass(kind, Enum):
        if not _is_member(kind, value):
            allowed = ", ".join(str(member.value) for member in kind)
            raise _Invalid(f"field '{name}' must be one of: {allowed}")
        return kind(value)
    if kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
        return float(value)
    if not isinstance(value, kind):
        raise _Invalid(f"field '{name}' must be {_describe(kind)}, got {_show(value)}")
    return value


def _check_text(name: str, value: str, meta: dict[str, Any]) -> None:
    if "pattern" in meta and not meta["pattern"].fullmatch(value):
        raise _Invalid(
            f"field '{name}' must be 1-64 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    if "max_len" in meta and not 0 < len(value) <= meta["max_len"]:
        raise _Invalid(f"field '{name}' must be 1 to {meta['max_len']} characters")
    if meta.get("printable") and not value.isprintable():
        raise _Invalid(f"field '{name}' must not contain control characters")


_ENUM_VALUES: dict[type[Enum], frozenset[Any]] = {}


def _is_member(kind: type[Enum], value: Any) -> bool:
    """Whether ``value`` is one of the enum's values (a list or an object never is)."""
    values = _ENUM_VALUES.get(kind)
    if values is None:
        values = _ENUM_VALUES[kind] = frozenset(member.value for member in kind)
    return isinstance(value, str | int) and not isinstance(value, bool) and value in values


class _Missing(_Invalid):
    """A required field is absent (its own error code)."""


def _build(cls: type, data: dict[str, Any], unknown: list[str], prefix: str = "") -> Any:
    values: dict[str, Any] = {}
    table = _table(cls)
    for spec in table:
        if spec.name not in data:
            if spec.required:
                raise _Missing(f"needs the field '{prefix}{spec.name}'")
            continue
        values[spec.name] = _convert(
            prefix + spec.name, data[spec.name], spec.kind, spec.meta, unknown
        )
    if len(data) > len(values) + (0 if prefix else 1):  # "type" is the top level's own
        known = {spec.name for spec in table}
        unknown.extend(
            prefix + str(key)[:40] for key in data if key not in known and (prefix or key != "type")
        )
    return cls(**values)


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
    unknown: list[str] = []
    try:
        message = _build(cls, data, unknown)
    except _Missing as exc:
        return ProtocolError(ErrorCode.MISSING_FIELD, f"'{kind}' {exc}")
    except _Invalid as exc:
        return ProtocolError(ErrorCode.BAD_FIELD, f"'{kind}': {exc}")
    except RecursionError:
        return ProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON: nested too deeply")
    return Decoded(message, tuple(sorted(unknown)))


def read(cls: type[T], data: Any) -> T | ProtocolError:
    """A nested object (not a whole message: no ``type``) from JSON data already parsed, such as
    a saved match report. Never raises; unknown fields are ignored, as in a message."""
    if not isinstance(data, dict):
        return ProtocolError(ErrorCode.NOT_AN_OBJECT, f"a {cls.__name__} must be a JSON object")
    try:
        value: T = _build(cls, data, [], f"{cls.__name__}.")
    except _Missing as exc:
        return ProtocolError(ErrorCode.MISSING_FIELD, str(exc))
    except _Invalid as exc:
        return ProtocolError(ErrorCode.BAD_FIELD, str(exc))
    except RecursionError:
        return ProtocolError(ErrorCode.BAD_JSON, "nested too deeply")
    return value


def decode_client(text: str | bytes) -> Decoded | ProtocolError:
    """Parse a frame sent by a node, host or viewer."""
    return decode(text, CLIENT_TYPES)


def decode_hub(text: str | bytes) -> Decoded | ProtocolError:
    """Parse a frame sent by the hub (used by the firmware and the command-line controller)."""
    return decode(text, HUB_TYPES)


# --- encoding ---

#: One encoder for every frame: ``json.dumps`` with options builds a new encoder per call, and a
#: decision at a thousand nodes encodes thousands of frames in one go.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

#: Per class, each field's name and how to turn its value into JSON data (None: as it is, which
#: holds for numbers, text, flags and lists of them: enum members are str and int subclasses).
_Plan = tuple[tuple[str, Callable[[Any], Any] | None], ...]
_PLANS: dict[type, _Plan] = {}


def _converter(kind: Any) -> Callable[[Any], Any] | None:
    inner = _optional_inner(kind)
    origin = typing.get_origin(kind)
    part = inner if inner is not None else typing.get_args(kind)[-1] if origin else None
    convert = _converter(part) if part is not None else None
    if convert is None:
        return as_data if dataclasses.is_dataclass(kind) else None
    if inner is not None:
        return lambda v: None if v is None else convert(v)
    if origin is list:
        return lambda v: [convert(x) for x in v]
    if origin is dict:
        return lambda v: {k: convert(x) for k, x in v.items()}
    return None


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple((f.name, _converter(f.kind)) for f in _table(cls))
    return plan


def as_data(value: Any) -> dict[str, Any]:
    """A message or nested object as plain JSON data (without ``type``), recursively."""
    return {
        name: getattr(value, name) if convert is None else convert(getattr(value, name))
        for name, convert in _plan(type(value))
    }


def encode(message: Message) -> str:
    """One compact JSON text frame; ``type`` first."""
    body: dict[str, Any] = {"type": message.TYPE}
    for name, convert in _plan(type(message)):
        value = getattr(message, name)
        body[name] = value if convert is None else convert(value)
    return _ENCODER.encode(body)


def error_frame(error: ProtocolError, ref: str | None = None) -> str:
    return encode(Error(code=error.code, message=error.message, ref=ref))
