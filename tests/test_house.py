"""House rules that a reader can check by hand, checked here so that they stay true: modules stay
small enough to read, the package's modules import each other without a cycle, and the documents
and templates the package ships are package data, not Python strings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lrsweep"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(tree: ast.Module):
    """Every import statement of a module, wherever it is: at module level, inside ``try`` and ``if``
    (``if TYPE_CHECKING`` too), and inside functions, which run later but still tie the two modules
    together: a cycle hidden behind an import inside a function is still a cycle."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its source.

    The package's facade, ``lrsweep/__init__``, loads its public names with ``importlib`` in a module
    ``__getattr__`` on first use; its ``if TYPE_CHECKING`` block names the same modules, so here it has an
    edge to each module it exports, and a module that imported the package itself (``from . import
    __version__``) would close a cycle through it."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in modules}
                continue
            base = here[: len(here) - node.level + 1] if node.level else []
            stem = ".".join(base + (node.module.split(".") if node.module else []))
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                targets.add(sub if sub in modules else stem)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_is_read_from_the_sources():
    # The checker itself: it must see the edges that exist, or the cycle test below proves nothing.
    graph = _edges(_modules())
    assert "lrsweep.engine" in graph["lrsweep.runner"]
    assert "lrsweep.spec" in graph["lrsweep.spec_sources"]
    assert "lrsweep.api" in graph["lrsweep"]  # the facade's names, from its TYPE_CHECKING block
    assert "lrsweep.cli" in graph["lrsweep.__main__"]  # an import inside a function counts
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle():
    cycle = _cycle(_edges(_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_stays_readable_in_one_sitting(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it (modules stay under {MAX_LINES})"


def test_documents_and_templates_are_package_data():
    # Long text lives in files the package ships (HTML templates, the lesson's text), not in strings.
    # Docstrings are documentation where it belongs and are left out.
    longest = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count("\n") > 12:
                longest.append(f"{name}:{node.lineno} ({node.value.count(chr(10))} lines)")
    assert not longest, "long strings in code; move them to package data: " + ", ".join(longest)
