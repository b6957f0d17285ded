"""What the node loads: nothing of the hub, and a core free of I/O.

A player station is a small Pi: it must not drag in the hub's servers, storage or QR pages (nor
break when they change), and the node's decisions must stay testable without sockets or clocks.
Each check runs in a fresh interpreter, since this test process has long since imported the hub.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
#: The node's decisions; everything they import from firmware and wire is checked with them.
CORE = ("firmware.state",)
NOT_IN_THE_CORE = ("asyncio", "websockets", "sqlite3", "socket", "time")


def loaded_after(*modules: str) -> set[str]:
    """Every module a fresh interpreter holds after importing ``modules``."""
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *modules],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    return set(done.stdout.split())


def among(loaded: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(name for name in loaded if name.split(".")[0] in packages)


def test_the_node_and_its_command_line_load_nothing_of_the_hub() -> None:
    loaded = loaded_after("firmware.cli", "firmware.node")
    assert "firmware.link" in loaded  # the whole node was imported
    assert among(loaded, ("hub", "sqlite3", "_sqlite3", "segno")) == []


def test_the_probe_sees_what_the_hub_loads() -> None:
    """The check above could fail: importing the hub's command line shows up as it should."""
    assert {"hub", "hub.cli"} <= set(among(loaded_after("hub.cli"), ("hub",)))


def test_the_node_core_loads_no_event_loop_socket_or_database() -> None:
    loaded = loaded_after(*CORE)
    assert set(CORE) <= loaded
    # time is preloaded by every interpreter, so sys.modules cannot tell: see the next test.
    assert among(loaded, tuple(m for m in NOT_IN_THE_CORE if m != "time")) == []


# --- the core's own import statements, followed through firmware and wire ---


def _source(module: str) -> Path | None:
    """The file of a module of this repository's firmware or wire package, else None."""
    if module.split(".")[0] not in ("firmware", "wire"):
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _runtime_imports(tree: ast.AST) -> list[str]:
    """The modules a file imports when it runs: imports under ``if TYPE_CHECKING:`` never do."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the packages use absolute imports"
            assert node.module is not None
            found.append(node.module)
            # "from wire import codec" imports the module wire.codec
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def forbidden_imports(start: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module: imported`` for every forbidden import reachable from ``start`` through the
    firmware and wire packages' own import statements."""
    seen: set[str] = set()
    todo = [start]
    bad: list[str] = []
    while todo:
        module = todo.pop()
        path = _source(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if name.split(".")[0] in forbidden:
                bad.append(f"{module}: {name}")
            todo.append(name)
    return sorted(set(bad))


@pytest.mark.parametrize("module", CORE)
def test_the_node_core_imports_no_io_or_clock(module: str) -> None:
    assert forbidden_imports(module, NOT_IN_THE_CORE) == []


def test_the_import_walk_finds_what_the_link_imports() -> None:
    """The walk above could fail: the link, which does I/O, is caught by it."""
    found = forbidden_imports("firmware.link", NOT_IN_THE_CORE)
    assert "firmware.link: time" in found
    assert "firmware.link: asyncio" in found
    assert "wire.browse: asyncio" in found  # followed into wire
