"""The hub core does no I/O of its own: no event loop, no sockets, no database, no clock.

Checked two ways. In a fresh interpreter, importing the core must not load asyncio, websockets,
sqlite3 or socket. And since the interpreter itself always loads ``time``, the core's own source
(every module it imports from this project, transitively) is read for an import of ``time``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
CORE = ["hub.core.machine", "hub.round", "hub.clock", "hub.journal", "hub.views"]
FORBIDDEN = ("asyncio", "websockets", "sqlite3", "socket", "time")
PROJECT = ("hub", "wire", "firmware")


def project_imports(module: str) -> set[str]:
    """``module`` and every module of this project it imports, transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / name.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        seen.add(name)
        for imported in imports_of(path):
            if imported.split(".")[0] in PROJECT:
                todo.append(imported)
    return seen


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_importing_the_core_loads_no_event_loop_socket_or_database() -> None:
    code = (
        "import sys\n"
        f"for name in {CORE!r}: __import__(name)\n"
        f"print(sorted(m for m in {FORBIDDEN[:-1]!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_no_module_of_the_core_imports_a_forbidden_module() -> None:
    for module in CORE:
        for name in sorted(project_imports(module)):
            path = ROOT / (name.replace(".", "/") + ".py")
            if not path.exists():
                path = ROOT / name.replace(".", "/") / "__init__.py"
            used = {imported.split(".")[0] for imported in imports_of(path)}
            assert not used & set(FORBIDDEN), f"{name} imports {sorted(used & set(FORBIDDEN))}"


def test_the_check_sees_an_import_of_time() -> None:
    """The walk itself works: the server, which stamps events, is seen to import time."""
    assert "time" in {name.split(".")[0] for name in imports_of(ROOT / "hub" / "server.py")}
    assert "hub.core.machine" in project_imports("hub.core.machine")
    assert "hub.core.roster" in project_imports("hub.core.machine")
