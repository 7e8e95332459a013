"""No import circles in the project's packages: each one reads top-down (issue 23).

The import graph is built from the source with `ast`, not by importing anything, and counts every
import: module level, inside functions (a late import only hides a circle) and under
`TYPE_CHECKING` (a circle for the reader and for mypy all the same). `from pkg import name` is an
edge to `pkg.name` when that is a module of ours, else to `pkg` itself (its `__init__`). The
implicit import of a parent package when a submodule is imported is not an edge: every package
whose `__init__` re-exports a submodule would otherwise be a circle with all of that submodule's
siblings.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Where each top-level package lives (pyproject's packages.find and mypy_path).
PACKAGES = {
    "devstack": REPO / "devstack",
    "lambda_trigger": REPO / "common" / "lambda_trigger",
    "lambda_trigger_api": REPO / "api" / "lambda_trigger_api",
    "lambda_trigger_consumer": REPO / "consumer" / "lambda_trigger_consumer",
}


def modules(package: str, root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """`from ..x import y` seen from `module`, as an absolute name."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that `module` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                edges.add(submodule if submodule in known else base)
    return {edge for edge in edges if edge in known and edge != module}


def graph() -> dict[str, set[str]]:
    known: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        known.update(modules(package, root))
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        # Recursion depth is bounded by the longest import chain (tens of modules).
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _chain(edges: dict[str, set[str]], component: Iterable[str]) -> Iterator[str]:
    """One concrete path around a circle, for the failure message."""
    members = set(component)
    start = min(members)
    path, seen = [start], {start}
    while True:
        nxt = sorted(edges[path[-1]] & members)
        back = [n for n in nxt if n == start]
        fresh = [n for n in nxt if n not in seen]
        if back and len(path) > 1:
            yield from [*path, start]
            return
        if not fresh:
            yield from [*path, start]
            return
        path.append(fresh[0])
        seen.add(fresh[0])


def test_every_package_is_found() -> None:
    edges = graph()
    for package in PACKAGES:
        assert package in edges, f"{package}/__init__.py not found"
    assert len(edges) > 40


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circle(package: str) -> None:
    edges = graph()
    mine = [c for c in circles(edges) if any(m.split(".")[0] == package for m in c)]
    assert not mine, "import circles:\n" + "\n".join(" -> ".join(_chain(edges, c)) for c in mine)


def test_the_detector_sees_a_circle_through_a_late_and_a_type_checking_import(
    tmp_path: Path,
) -> None:
    # The two shapes issue 23 found: a function-level import back, and a TYPE_CHECKING one.
    edges = {
        "p.a": {"p.b"},
        "p.b": {"p.a"},
        "p.c": {"p.d"},
        "p.d": {"p.e"},
        "p.e": {"p.c"},
        "p.f": {"p.a"},
    }
    assert circles(edges) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from p.b import X\n"
        "def f() -> None:\n    from .c import Y\n"
    )
    known = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.b": Path("p/b.py"),
             "p.c": Path("p/c.py")}  # fmt: skip
    tmp = tmp_path / "a.py"
    tmp.write_text(source, encoding="utf-8")
    assert imports("p.a", tmp, known) == {"p.b", "p.c"}
