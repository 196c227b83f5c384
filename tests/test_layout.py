"""The layout the README promises: packages by concern, small modules, no import cycle.

Every `chalicelib` import counts, at module scope or inside a function (a lazy import is still
a dependency), except those under `if TYPE_CHECKING:` (type hints only, never run).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chalicelib"
MAX_MODULES = 13  # "about a dozen"
MAX_LINES = 430  # "about 400"


def _imports(tree: ast.AST) -> list[str]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chalicelib."):
            found.append(node.module or "")
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("chalicelib."))
    return found


def package_graph() -> dict[str, set[str]]:
    """package -> the other chalicelib packages it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue
        for name in _imports(ast.parse(path.read_text())):
            target = name.split(".")[1]
            if target != parts[0] and (PACKAGE / target).is_dir():
                graph[parts[0]].add(target)
    return graph


def test_no_package_imports_itself_back_through_others():
    graph = package_graph()

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = {package: sorted(graph[package]) for package in graph if package in reachable(package)}
    assert not cycles, f"packages in an import cycle (with what they import): {cycles}"


def test_packages_and_modules_stay_small():
    for package in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        modules = [m for m in package.glob("*.py") if m.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES, f"{package.name} has {len(modules)} modules"
        for module in modules:
            lines = len(module.read_text().splitlines())
            assert lines <= MAX_LINES, f"{module.relative_to(ROOT)}: {lines} lines"
