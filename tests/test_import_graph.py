"""The project's packages import without circles: at module level, under TYPE_CHECKING, and inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import REPO

# An edge a -> b: module a imports module b. ``from .x import name`` is an edge to x (to x's package when ``name``
# is not a submodule); importing a submodule of another package also runs that package's __init__, so it is an edge
# to the package too. A module's own ancestors are left out: Python initialises them before the module, whatever it
# imports. Every import counts, wherever it is: deferring one into a function or under TYPE_CHECKING hides a circle
# from the interpreter, not from the design.
Graph = dict[str, dict[str, str]]  # module -> {imported module: how ("module level", "TYPE_CHECKING", "local")}


def modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Every module of ``package`` under ``root``: dotted name -> (file, whether it is a package's __init__)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph(root: Path, package: str) -> Graph:
    """The import graph of ``package``'s modules (see above)."""
    known = modules(root, package)
    graph: Graph = {name: {} for name in known}
    for name, (path, is_package) in known.items():
        for imported, how in _imports(ast.parse(path.read_text()), name, is_package):
            target = imported
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if not target.startswith(package) or target == name or name.startswith(target + "."):
                continue
            graph[name].setdefault(target, how)
            parent = target
            while "." in parent:
                parent = parent.rsplit(".", 1)[0]
                if parent in known and not name.startswith(parent + "."):
                    graph[name].setdefault(parent, how)
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, str]]:
    here = module.split(".") if is_package else module.split(".")[:-1]

    def walk(nodes: list[ast.stmt], how: str) -> Iterator[tuple[str, str]]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.body, "TYPE_CHECKING")
                yield from walk(node.orelse, how)
            elif isinstance(node, ast.Import):
                yield from ((alias.name, how) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join([*here[: len(here) - node.level + 1], *([node.module] if node.module else [])])
                if not node.level:
                    base = node.module or ""
                yield from ((f"{base}.{alias.name}", how) for alias in node.names)
            else:
                inner = "local" if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else how
                for field in ("body", "orelse", "finalbody", "handlers"):
                    yield from walk([s for s in getattr(node, field, ()) if isinstance(s, ast.stmt)], inner)
                for handler in getattr(node, "handlers", ()):
                    yield from walk(handler.body, inner)

    yield from walk(tree.body, "module level")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@pytest.mark.parametrize(("root", "package"), [(REPO, "gateway"), (REPO, "devices"), (REPO / "firmware-sim", "fwsim")])
def test_no_package_has_an_import_circle(root: Path, package: str) -> None:
    graph = import_graph(root, package)
    assert any(graph.values()), "the graph sees plain imports"
    found = circles(graph)
    detail = [[f"{a} -> {b} ({graph[a][b]})" for a in group for b in graph[a] if b in group] for group in found]
    assert not found, detail


def test_a_circle_hidden_in_a_function_or_under_type_checking_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .low import LOW\n")
    (package / "sub" / "low.py").write_text(
        "from typing import TYPE_CHECKING\nLOW = 1\nif TYPE_CHECKING:\n    from ..high import High\n"
    )
    (package / "high.py").write_text("from .sub.low import LOW\nclass High: ...\n")
    (package / "cli.py").write_text("def main() -> None:\n    from . import tools\n")
    (package / "tools.py").write_text("def run() -> None:\n    from .cli import main\n")
    (package / "leaf.py").write_text("from . import high\n")
    graph = import_graph(tmp_path, "pkg")
    assert sorted(circles(graph)) == [["pkg.cli", "pkg.tools"], ["pkg.high", "pkg.sub", "pkg.sub.low"]]
    assert graph["pkg.sub.low"]["pkg.high"] == "TYPE_CHECKING"
    assert graph["pkg.cli"]["pkg.tools"] == "local"
    assert graph["pkg.leaf"] == {"pkg.high": "module level"}, "`from . import x` is an import of x alone"
