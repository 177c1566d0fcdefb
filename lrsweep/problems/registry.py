"""Problems by name: built-ins, registered entry points and marked factories; nothing else.

A problem named by a string is one of:

- a built-in name (``"linear"``, ``"mlp"``, ...: :data:`BUILTINS`);
- a name registered by an installed package under the entry point group ``lrsweep.problems``
  (``[project.entry-points."lrsweep.problems"] myproblem = "mypkg.problems:make"``);
- ``"module:function"`` (``module`` importable, or ``module.py`` in the current directory) or
  ``"path/to/file.py:function"``, where ``function`` is marked with
  :func:`~lrsweep.problems.problem_factory`.

Anything else is refused with a one-line ValueError before it is called: a spec names code, it
never contains code (``docs/trust.md``). Plain names that are not built-ins import nothing (the
entry point table is read from installed metadata); only a ``module:function`` the user named is
imported to look the function up.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import math
import numbers
import os
import reprlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from . import _source, builtins, datasets
from ._problem import Problem, is_problem_factory

ENTRY_POINT_GROUP = "lrsweep.problems"

#: Built-in problems by name, for the CLI's ``--problem`` and spec files.
BUILTINS: dict[str, Callable[..., Problem]] = {
    "linear": builtins.linear,
    "chapter_net": builtins.chapter_net,
    "quadratic": builtins.quadratic,
    "logistic": builtins.logistic,
    "mlp": builtins.mlp,
    "digits": datasets.digits,
}

#: The largest integer a problem argument may be: JSON-safe (exact in float64), and far beyond any
#: size or seed a problem needs.
MAX_INT_ARG = 2**53
_MAX_ARG_DEPTH = 8
_ACCEPTED = "what can be written in JSON or TOML: str, int, float, bool, None, and lists and dicts of those"
_HOW_TO_MARK = "decorate it with @lrsweep.problem_factory (or register it under the 'lrsweep.problems' entry point)"


def resolve(problem, args: Mapping[str, Any] | None = None, seed: int | None = None) -> Problem:
    """The :class:`Problem` that ``problem`` names, built with keyword arguments ``args`` and ``seed``.

    Args:
      problem: a :class:`Problem` (returned as is; it takes no ``args`` or ``seed``), a built-in
        name, a name registered under the ``lrsweep.problems`` entry point group, or
        ``"module:function"`` / ``"path/to/file.py:function"`` naming a function marked with
        ``@lrsweep.problem_factory``. Anything else is refused before anything is called.
      args: keyword arguments for the factory (``sweep``'s ``problem_args``): a dict with
        identifier keys and JSON-like values (str, int, float, bool, None, lists and dicts of
        those); numbers finite, integers at most ``2**53`` in size.
      seed: passed as ``seed=`` (``sweep``'s ``problem_seed``), an integer >= 0.

    Returns:
      The factory's result, which must be a :class:`Problem`.

    >>> resolve("quadratic", {"dim": 3}, seed=1).init["p"].shape
    (3,)
    """
    if isinstance(problem, Problem):
        if args or seed is not None:
            raise ValueError(
                "problem_args and problem_seed need a problem given by name or 'module:function', "
                f"not the Problem object {problem.name!r}"
            )
        return problem
    if not isinstance(problem, str):
        raise ValueError(
            f"problem={problem!r} is invalid: expected an lrsweep.Problem, a built-in name {sorted(BUILTINS)}, "
            "a registered name or 'module:function'"
        )
    make = factory(problem)
    kwargs = check_args(args)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_INT_ARG:
            raise ValueError(f"problem_seed={seed!r} is invalid: expected an integer in [0, 2**53]")
        if "seed" in kwargs:
            raise ValueError(f"problem_args sets seed={kwargs['seed']!r} and problem_seed={seed!r}; give one of them")
        kwargs["seed"] = int(seed)
    try:
        inspect.signature(make).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"problem={problem!r} does not take the arguments {sorted(kwargs)}: {err}") from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    try:
        out = make(**kwargs)
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"problem={problem!r} failed when called: {type(err).__name__}: {err}") from err
    if not isinstance(out, Problem):
        raise ValueError(
            f"problem={problem!r} is invalid: its factory returned {type(out).__name__}, not an lrsweep.Problem"
        )
    return out


def get(name: str) -> Problem:
    """The problem ``name`` built with its default arguments: ``resolve(name)``."""
    return resolve(name)


def factory(name: str) -> Callable[..., Problem]:
    """The function that makes the problem ``name``, checked as :func:`resolve` describes (not called)."""
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"problem={name!r} is invalid: expected a built-in name {sorted(BUILTINS)}, a registered name "
            "or 'module:function'"
        )
    if name in BUILTINS:
        return BUILTINS[name]
    if ":" not in name:
        return _registered(name)
    where, _, attr = name.rpartition(":")
    if not attr.isidentifier() or not where:
        raise ValueError(
            f"problem={name!r} is invalid: expected 'module:function' or 'path/to/file.py:function' "
            "with a function name after the last ':'"
        )
    if where.endswith(".py") or "/" in where or os.sep in where:
        shown = f"{attr} in {where}"
        module = _load_file(name, where, attr, shown)
    else:
        shown = f"{where}.{attr}"
        module = _import_module(name, where, attr, shown)
    if not hasattr(module, attr):
        raise ValueError(f"problem={name!r} could not be found: {where} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if not is_problem_factory(obj):
        raise _unmarked(name, shown, None)
    return obj


def registered() -> list[str]:
    """Names registered under the ``lrsweep.problems`` entry point group (read from metadata, nothing imported)."""
    return sorted({ep.name for ep in _entry_points()})


def _entry_points():
    """The group's entry points of installed distributions: those on ``sys.path`` except the
    current directory (``python -m lrsweep`` puts it first), so a ``*.dist-info`` folder in the
    directory a spec is run from registers nothing. The first distribution of a name wins, as in
    ``importlib.metadata``."""
    cwd = os.path.realpath(os.getcwd())
    paths = [p for p in sys.path if p and os.path.realpath(p) != cwd]
    seen: set[str] = set()
    found = []
    for dist in importlib.metadata.distributions(path=paths):
        key = (dist.metadata["Name"] or "").lower().replace("-", "_").replace(".", "_")
        if key in seen:
            continue
        seen.add(key)
        found.extend(dist.entry_points.select(group=ENTRY_POINT_GROUP))
    return found


def _registered(name: str) -> Callable[..., Problem]:
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        extra = registered()
        raise ValueError(
            f"problem={name!r} is not a built-in or registered problem; expected one of {sorted(BUILTINS)}"
            + (f", a registered name {extra}" if extra else "")
            + ", 'module:function' or 'path/to/file.py:function' naming a function marked with "
            "@lrsweep.problem_factory"
        )
    ep = matches[0]
    try:
        obj = ep.load()
    except Exception as err:  # noqa: BLE001 - a broken installed package, named
        raise ValueError(
            f"problem={name!r} could not be loaded from its entry point {ep.value!r}: {type(err).__name__}: {err}"
        ) from None
    if not callable(obj) or isinstance(obj, Problem):
        raise ValueError(
            f"problem={name!r} is invalid: its entry point {ep.value!r} is {type(obj).__name__}, not a function"
        )
    return cast(Callable[..., Problem], obj)


def _import_path() -> list[str]:
    """``sys.path`` as :func:`_cwd_on_path` has it for one import."""
    cwd = os.getcwd()
    return list(sys.path) if cwd in sys.path or "" in sys.path else [cwd, *sys.path]


@contextlib.contextmanager
def _cwd_on_path():
    """The current directory first on ``sys.path`` for one import (as ``python -m`` has it)."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def _unmarked(name: str, shown: str, source: Path | None) -> ValueError:
    where = f"; {source} was read, not run" if source is not None else ""
    return ValueError(f"problem={name!r} is refused: {shown} is not marked as a problem factory; {_HOW_TO_MARK}{where}")


def _check_source(name: str, source: Path, attr: str, shown: str) -> None:
    """Refuse ``attr`` unless the file's text marks it (parsed, not run): importing runs the file."""
    try:
        marked = _source.marked_in_source(source, attr)
    except ValueError as err:
        raise ValueError(f"problem={name!r} could not be loaded: {err}") from None
    if not marked:
        raise _unmarked(name, shown, source)


def _import_module(name: str, module: str, attr: str, shown: str):
    if not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(f"problem={name!r} is invalid: {module!r} is not a module name (dotted identifiers)")
    if module not in sys.modules:  # importing it would run it: its text must mark the function first
        source = _source.module_file(module, _import_path())
        if source is None:
            raise ValueError(
                f"problem={name!r} could not be loaded: ModuleNotFoundError: no Python source for module {module!r} "
                "on sys.path or in the current directory (a factory's module is read before it is imported)"
            )
        _check_source(name, source, attr, shown)
    try:
        with _cwd_on_path():
            return importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - the module the user named failed to import
        raise ValueError(f"problem={name!r} could not be loaded: {type(err).__name__}: {err}") from None


_FILE_MODULES: dict[tuple, Any] = {}


def _load_file(name: str, where: str, attr: str, shown: str):
    """The module in the file ``where``, loaded under a unique name (once per file version), once
    its text marks ``attr`` as a factory."""
    path = Path(where).expanduser()
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"problem={name!r} could not be loaded: {where} is not a Python file (.py) that exists")
    path = path.resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _FILE_MODULES:
        return _FILE_MODULES[key]
    _check_source(name, path, attr, shown)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    module_name = f"_lrsweep_problem_file_{path.stem if path.stem.isidentifier() else 'file'}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"problem={str(path)!r} cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the file the user named failed to run
        sys.modules.pop(module_name, None)
        raise ValueError(f"problem={name!r} could not be loaded: {type(err).__name__}: {err}") from None
    _FILE_MODULES[key] = module
    return module


def check_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``args`` as a new dict if it holds only JSON-like keyword arguments, else a ValueError.

    Keys are Python identifiers; values are str, int, float, bool, None, or lists, tuples and
    dicts (string keys) of those, at most 8 levels deep; floats finite, integers at most
    ``2**53`` in absolute value. Anything else (an array, a function, an object) is refused: a
    problem's arguments are data that a spec file can hold.
    """
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise ValueError(f"problem_args={args!r} is invalid: expected a dict of keyword arguments")
    out = {}
    for key, value in args.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"problem_args key {key!r} is invalid: expected a Python identifier (a keyword argument)")
        out[key] = _json_like(value, key, 0)
    return out


def _json_like(value, where: str, depth: int):
    # reprlib: a value nested 100,000 deep is shown to a few levels, never recursed through.
    bad = lambda why: ValueError(
        f"problem_args[{where!r}]={reprlib.repr(value)} is invalid: {why}; expected {_ACCEPTED}"
    )
    if depth > _MAX_ARG_DEPTH:
        raise bad(f"nested more than {_MAX_ARG_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        if abs(int(value)) > MAX_INT_ARG:
            raise bad("integers must be at most 2**53 in absolute value")
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise bad("numbers must be finite")
        return float(value)
    if type(value) in (list, tuple):
        return type(value)(_json_like(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
    if type(value) is dict:
        if not all(isinstance(k, str) for k in value):
            raise bad("dict keys must be strings")
        return {k: _json_like(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    raise bad(f"a {type(value).__name__} is not data a spec can hold")
