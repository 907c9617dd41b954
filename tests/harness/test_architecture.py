"""The house rules, checked: harness/ names no compared system, no import cycle, data rooms load nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from harness.model.paths import PROJECT_ROOT

HARNESS = PROJECT_ROOT / "harness"
SYSTEM_NAMES = ("hatchet", "celery", "redis", "rabbitmq", "kombu")
"""Names of compared systems and their servers, which harness/ code must not name (apps/<system>/ holds them)."""


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of modules, classes, functions, attributes)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for i, stmt in enumerate(body):
            text = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value,
                                                                                                      str)
            if text and (i == 0 or isinstance(body[i - 1], ast.Assign | ast.AnnAssign)):  # attribute docstrings too
                out.add(id(stmt.value))
    return out


def system_names_in_code(path: Path) -> list[str]:
    """``file:line name`` for every identifier, attribute or string (not a docstring or comment) naming a system."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.alias):
            text = node.name
        elif isinstance(node, ast.ImportFrom):
            text = node.module
        if text and (name := next((n for n in SYSTEM_NAMES if n in text.lower()), None)):
            hits.append(f"{path.relative_to(PROJECT_ROOT)}:{getattr(node, 'lineno', 0)} {name}: {text[:60]!r}")
    return hits


def test_harness_code_names_no_system() -> None:
    hits = [h for p in sorted(HARNESS.rglob("*.py")) for h in system_names_in_code(p)]
    print(f"{len(hits)} system names in harness/ code (the compared selection is data: apps/selections.toml)")
    assert hits == [], "\n".join(hits)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules a file imports, at module level or inside functions (both count for a cycle); ``from pkg import mod``
    imports the module ``pkg.mod``, ``from pkg import name`` the package."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            out |= subs & modules if subs <= modules else {node.module, *(subs & modules)}
    return out


def _graph() -> dict[str, set[str]]:
    files = {".".join(p.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for root in (HARNESS, PROJECT_ROOT / "apps") for p in root.rglob("*.py")}
    return {name: {m for m in _imports(path, set(files)) if m in files and m != name} for name, path in files.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    print(f"{len(graph)} modules, {sum(len(v) for v in graph.values())} imports, {len(cycles)} cycles")
    assert cycles == [], cycles


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('harness', " \
           f"'apps')))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("statement", ["import harness.model.scenario", "import harness.model.spec",
                                       "import harness.model.params", "import harness.model.schedule"])
def test_the_model_loads_only_the_model(statement: str) -> None:
    loaded = _loaded_after(statement)
    print(f"{statement}: {len(loaded)} modules: {', '.join(loaded)}")
    assert all(m == "harness" or m.startswith("harness.model") for m in loaded), loaded


def test_the_report_loads_no_machinery() -> None:
    loaded = _loaded_after("import harness.report.build")
    heavy = [m for m in loaded if m.startswith(("harness.runtime", "harness.servers", "harness.backends",
                                                "harness.front", "harness.nemesis", "harness.load", "apps"))]
    print(f"import harness.report.build: {len(loaded)} harness modules, of which machinery: {heavy}")
    assert heavy == []
