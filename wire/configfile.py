"""TOML config files read into typed dataclasses, with errors that name the file, line and key.

Shared by the hub and the node firmware. A config file is a set of ``[sections]``, each mapped to
a frozen dataclass whose fields are the allowed keys; the field types are the allowed value types.
A host who mistypes a key gets told which line to fix instead of a silently ignored setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tomllib
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from wire.errors import ConfigError

T = TypeVar("T")


def _line_of(text: str, section: str | None, key: str | None) -> int | None:
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]\s*(#.*)?", stripped)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _where(path: Path, text: str, section: str | None, key: str | None) -> str:
    line = _line_of(text, section, key)
    name = f"[{section}] {key}" if section and key else f"[{section}]" if section else key
    return f"{path}:{line}: {name}" if line else f"{path}: {name}"


def _type_name(kind: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _type_name(inner[0])
    if typing.get_origin(kind) is list:
        return "a list of " + _type_name(typing.get_args(kind)[0]).removeprefix("a ") + "s"
    if typing.get_origin(kind) is dict:
        return "a table whose values are each " + _type_name(typing.get_args(kind)[1])
    return names.get(kind, str(kind))


def coerce(value: Any, kind: Any) -> Any:
    """Return ``value`` as ``kind`` or raise TypeError (ints are accepted where floats are)."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return coerce(value, inner[0])
    if typing.get_origin(kind) is list:
        if not isinstance(value, list):
            raise TypeError
        return [coerce(item, typing.get_args(kind)[0]) for item in value]
    if typing.get_origin(kind) is dict:  # a [section.subtable] of name = value
        if not isinstance(value, dict):
            raise TypeError
        return {str(key): coerce(item, typing.get_args(kind)[1]) for key, item in value.items()}
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise TypeError
    if not isinstance(value, kind):
        raise TypeError
    return value


def build(cls: type[T], data: dict[str, Any], path: Path, text: str) -> T:
    """Fill the dataclass ``cls`` (whose fields are section dataclasses) from parsed TOML."""
    hints = typing.get_type_hints(cls)
    sections: dict[str, Any] = {}
    known = ", ".join(f"[{n}]" for n in hints)
    for name, body in data.items():
        if not isinstance(body, dict):  # a key above the first [section] header
            where = _where(path, text, None, name)
            if name in hints:
                raise ConfigError(f"{where}: must be a [section] of keys")
            raise ConfigError(f"{where}: a key outside any section; sections: {known}")
        if name not in hints:
            raise ConfigError(
                f"{_where(path, text, name, None)}: unknown section; known sections: {known}"
            )
        section_cls = hints[name]
        section_hints = typing.get_type_hints(section_cls)
        values: dict[str, Any] = {}
        for key, value in body.items():
            if key not in section_hints:
                known = ", ".join(section_hints)
                raise ConfigError(
                    f"{_where(path, text, name, key)}: unknown key; keys in [{name}]: {known}"
                )
            try:
                values[key] = coerce(value, section_hints[key])
            except TypeError:
                raise ConfigError(
                    f"{_where(path, text, name, key)}: must be "
                    f"{_type_name(section_hints[key])}, not {value!r}"
                ) from None
        try:
            sections[name] = section_cls(**values)
        except ValueError as exc:  # a section's own range checks
            raise ConfigError(f"{path}: [{name}] {exc}") from None
    return cls(**sections)


def load(cls: type[T], path: Path | str) -> T:
    """Read and validate a config file; raise ConfigError with a message a host can act on."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return build(cls, data, path, text)


def override(settings: T, **changes: Any) -> T:
    """Apply the values that were actually given (None means "not given")."""
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(settings, **given) if given else settings  # type: ignore[type-var]


def check_command(program: str, loader: Callable[[str], object], argv: Sequence[str]) -> int:
    """``PROGRAM check-config FILE``: validate a config file without starting anything.

    Exit 0 and ``FILE: ok``, or exit 2 with the file, line and key on stderr, so an install script
    or a maker can check an edit before restarting the service.
    """
    parser = argparse.ArgumentParser(prog=f"{program} check-config")
    parser.add_argument("file")
    args = parser.parse_args(argv)
    try:
        loader(args.file)
    except ConfigError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    return 0
