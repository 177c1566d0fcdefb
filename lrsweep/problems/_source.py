"""Checking a named factory's mark in its source, before any of the file runs.

A spec names ``"module:function"`` or ``"path/to/file.py:function"``; importing the module runs its
top-level code, so the mark is first looked for in the file's text: :func:`marked_in_source` parses
it with :mod:`ast` (which executes nothing) and accepts only a top-level ``def function`` decorated
with ``problem_factory`` (``@problem_factory``, ``@lrsweep.problem_factory``,
``@lrsweep.problems.problem_factory``, ...). Only then is the module imported, and the function's
mark checked again on the object itself. :func:`module_file` finds a module's file the way the
import system would, without importing it or its parent packages.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from pathlib import Path

#: A factory's source file is read whole to be parsed; larger files are refused unread.
MAX_SOURCE_BYTES = 8_000_000
DECORATOR = "problem_factory"


def _decorator_name(node: ast.expr) -> str | None:
    """``problem_factory`` for ``@problem_factory`` and ``@a.b.problem_factory``; else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def marked_in_source(path: Path, function: str) -> bool:
    """True if the file at ``path`` defines ``function`` at its top level as a plain ``def``
    decorated with ``problem_factory``; its text is parsed, never run.

    Raises:
      ValueError: the file cannot be read, is too large, or is not valid Python.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"{path} cannot be read: {err.strerror or err}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_SOURCE_BYTES:,} bytes; a factory's file is read to check it")
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise ValueError(f"{path} is not valid Python: {type(err).__name__}: {err}") from None
    found = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == function:
            # The last definition wins, as it would when the module runs.
            found = isinstance(node, ast.FunctionDef) and any(
                _decorator_name(d) == DECORATOR for d in node.decorator_list
            )
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
            if function in names:
                found = False
    return found


def module_file(module: str, path: list[str]) -> Path | None:
    """The source file (``.py``) that importing ``module`` would run, found without importing it
    or its parents: on ``path`` (``sys.path`` as the import sees it) for the top-level package,
    in each package's directories for the next part. None if it is not found or has no Python source (a built-in
    or compiled module, a namespace package)."""
    search = list(path)
    found = None
    parts = module.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        loaded = sys.modules.get(name)
        if loaded is not None and i < len(parts) - 1 and hasattr(loaded, "__path__"):
            search = list(loaded.__path__)
            continue
        found = importlib.machinery.PathFinder.find_spec(name, search)
        if found is None:
            return None
        search = list(found.submodule_search_locations or [])
        if i < len(parts) - 1 and not search:
            return None
    if found is None or not found.has_location or not found.origin or not found.origin.endswith(".py"):
        return None
    return Path(found.origin)
