"""What identifies a sweep: its canonical spec (settings as plain JSON) and its attributes.

Two sweeps with equal canonical specs compute the same results; a store is resumed only by a sweep
whose canonical spec equals the one it was created with (``lrsweep.store``).

One canonical form whatever the entry point: ``sweep("linear", ...)``, ``sweep(problems.linear(),
...)`` and ``lrsweep run --problem linear`` share a store. A problem is identified by what it
computes, not by how it was named: its name, a fingerprint of its loss's *code*
(:func:`code_fingerprint`), of its init sampler's, and of its data, init and ``min_loss``
(:func:`problem_id`). Edit a loss's body and the spec changes, so a store made with the old loss is
refused, naming ``problem.loss``. The code fingerprint is of Python bytecode, which changes between
Python versions: a store is resumed by the Python version that made it (the refusal names
``problem.loss``; ``attrs["environments"]`` records the Python version).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from . import grid, outcomes
from .spec import SweepSpec, defaults, run_options, settings


def fingerprint(*arrays) -> str:
    """A short hash of arrays' dtypes, shapes and bytes: identifies data that a spec cannot name."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


#: How deep :func:`code_fingerprint` follows functions, closures and containers.
_DEPTH = 24


def code_fingerprint(fn: Any) -> str:
    """A short hash of what a function computes: its code, and the code and values it reaches.

    Covered: the bytecode (``co_code``), constants (``co_consts``, nested code objects
    recursively), names (``co_names``, ``co_varnames``), defaults; closures' cell contents
    recursively (functions, arrays, numbers, containers); the module-level functions and constants
    it names, followed into functions of its own module (library functions, e.g. ``jnp.tanh``, are
    identified by module and name: their versions are recorded with the store). ``functools.partial``
    and wrappers (``__wrapped__``) are unwrapped; a callable object by its class's ``__call__`` and
    its attributes. Not covered: file names and line numbers (moving a function changes nothing).
    """
    h = hashlib.sha256()
    _feed(h, fn, set(), 0, getattr(fn, "__module__", None))
    return h.hexdigest()[:16]


def _feed(h, obj: Any, seen: set[int], depth: int, home: str | None) -> None:
    put = lambda *parts: h.update(repr(parts).encode())
    if depth > _DEPTH:
        put("deep")
        return
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        put(type(obj).__name__, obj)
        return
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        put("array", fingerprint(np.asarray(obj)))
        return
    if isinstance(obj, types.ModuleType):
        put("module", obj.__name__, _user_source(obj.__name__))
        return
    if id(obj) in seen:
        put("seen")
        return
    seen.add(id(obj))
    nxt = lambda o: _feed(h, o, seen, depth + 1, home)
    if isinstance(obj, (tuple, list, frozenset, set)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        put(type(obj).__name__, len(items))
        for item in items:
            nxt(item)
    elif isinstance(obj, dict):
        put("dict", len(obj))
        for key in sorted(obj, key=repr):
            put(repr(key))
            nxt(obj[key])
    elif isinstance(obj, types.CodeType):
        put("code", obj.co_code, obj.co_names, obj.co_varnames, obj.co_argcount, obj.co_kwonlyargcount)
        for const in obj.co_consts:
            nxt(const)
    elif isinstance(obj, functools.partial):
        put("partial")
        nxt(obj.func)
        nxt(obj.args)
        nxt(obj.keywords)
    elif isinstance(obj, types.MethodType):
        put("method")
        nxt(obj.__func__)
        nxt(obj.__self__)
    elif isinstance(obj, types.FunctionType):
        if depth > 0 and obj.__module__ != home:
            # A library's: its version is recorded. A user's other module: its source file's hash.
            put("function", obj.__module__, obj.__qualname__, _user_source(obj.__module__))
            return
        put("function", obj.__name__)
        nxt(obj.__code__)
        nxt(obj.__defaults__)
        nxt(obj.__kwdefaults__)
        for cell in obj.__closure__ or ():
            try:
                nxt(cell.cell_contents)
            except ValueError:  # an empty cell
                put("empty cell")
        for name in sorted(_global_names(obj.__code__)):
            if name in obj.__globals__:
                put("global", name)
                nxt(obj.__globals__[name])
    elif hasattr(obj, "__wrapped__") and getattr(obj, "__module__", None) == home:
        put("wrapped")
        nxt(obj.__wrapped__)
    elif callable(obj) and not isinstance(obj, type) and type(obj).__module__ == home:
        put("callable", type(obj).__qualname__)
        nxt(type(obj).__call__)
        nxt(getattr(obj, "__dict__", {}))
    else:  # classes, builtins, library objects: by name (never a repr with a memory address)
        module = getattr(obj, "__module__", None) or type(obj).__module__
        put("object", module, getattr(obj, "__qualname__", None) or type(obj).__qualname__, _user_source(module))


#: Where installed libraries live: their code is identified by module and name (versions recorded).
_LIBRARY_DIRS = tuple(
    os.path.realpath(p) + os.sep
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)


def _user_source(module: Any) -> str | None:
    """A hash of the source file of ``module`` if it is a user's module (not lrsweep, not an
    installed library or the standard library), else None: a loss that calls a helper in another
    file of the user's is identified by that file's text, so editing the helper changes the spec."""
    mod = sys.modules.get(module) if isinstance(module, str) else None
    path = getattr(mod, "__file__", None)
    if not isinstance(path, str) or module == "lrsweep" or module.startswith("lrsweep."):
        return None
    real = os.path.realpath(path)
    if real.startswith(_LIBRARY_DIRS) or f"{os.sep}site-packages{os.sep}" in real:
        return None
    try:
        stat = os.stat(real)
        return _file_hash(real, stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def problem_id(problem) -> dict[str, Any]:
    """What identifies a problem: name, loss and sampler code, data, init and min_loss (fingerprints)."""
    leaves, treedef = jax.tree.flatten(problem.init)
    min_loss = getattr(problem, "min_loss", None)
    held_out = {}
    if getattr(problem, "x_eval", None) is not None:  # absent otherwise: stores made before held-out data resume
        held_out = {
            "eval_data": fingerprint(problem.x_eval, problem.y_eval),
            "metrics": {name: [code_fingerprint(m.fn), m.maximize] for name, m in problem.metric_fns().items()},
        }
    return {
        **held_out,
        "name": problem.name,
        "loss": code_fingerprint(problem.loss),
        "sampler": None if problem.sampler is None else code_fingerprint(problem.sampler),
        "data": fingerprint(problem.x, problem.y),
        "init": f"{treedef}:{fingerprint(*leaves)}",
        "min_loss": None if min_loss is None else float(min_loss),
    }


def _problem_id(problem) -> Any:
    """A problem as a list of :func:`problem_id` (one per instance: ``problem_seed``), or as given."""
    if isinstance(problem, (list, tuple)):
        ids = [problem_id(p) for p in problem]
        return ids[0] if len(ids) == 1 else ids
    if isinstance(problem, str):
        return problem
    return problem_id(problem)


def _instances(spec: SweepSpec) -> list:
    """The problem instances a spec names (built again: a problem is identified by what it computes)."""
    from . import problems

    seeds = spec.problem_seed or [None]
    return [problems.resolve(spec.problem, spec.problem_args, s) for s in seeds]


#: Explicit axes longer than this are identified by a fingerprint in the spec, not value by value.
LIST_MAX = 256


def _axis_key(axis: grid.Axis) -> Any:
    if axis.kind == "list" and len(axis) > LIST_MAX:
        return {"n": len(axis), "values": fingerprint(axis.values)}
    return axis.spec()


def _axis_id(value, arg: str, positive: bool) -> Any:
    return _axis_key(grid.parse_axis(value, arg, positive))


def _lr_id(lr: grid.Axis | dict[str, grid.Axis]) -> Any:
    """Learning rates as parsed (``SweepSpec.lr_axes``: the spec parses them once)."""
    return {g: _axis_key(a) for g, a in lr.items()} if isinstance(lr, dict) else _axis_key(lr)


def _init_id(init: Any) -> Any:
    if init is None or isinstance(init, int):
        return init
    if isinstance(init, grid.InitGrid):
        return {"grid": {k: a.spec() for k, a in init.axes.items()}}
    return {"batch": fingerprint(*[np.asarray(v, np.float64) for v in jax.tree.leaves(init)])}


def _name_id(value: Any) -> Any:
    return value if isinstance(value, str) else getattr(value, "__qualname__", repr(value))


def _axes_id(axes: Any) -> Any:
    return {k: _axis_id(v, f"optimizer_axes[{k!r}]", False) for k, v in (axes or {}).items()}


#: How a setting is written in the canonical spec, where it is not written as it is.
_IDS: dict[str, Callable[[Any], Any]] = {
    "problem": _problem_id,
    "lr": _lr_id,
    "init": _init_id,
    "optimizer": _name_id,
    "optimizer_axes": _axes_id,
    "problem_args": lambda v: v or {},
    "optimizer_kwargs": lambda v: v or {},
    "schedule_kwargs": lambda v: v or {},
}


def _value(spec: SweepSpec, name: str) -> Any:
    """A setting's value as its ``_IDS`` entry reads it: the learning rates parsed, the others as held."""
    return spec.lr_axes if name == "lr" else getattr(spec, name)


def canonical(spec: SweepSpec, **resolved: Any) -> dict[str, Any]:
    """The spec's identity as plain JSON-able data, with sweep axes normalised (``"0.1,0.2"`` == ``[0.1, 0.2]``).

    Every setting marked ``identity`` is written; things that cannot be written down (a Problem
    object, a batch of inits, an optax factory) are identified by name and a fingerprint of their
    data. ``resolved`` overrides values the sweep settled (the default ``stuck_window``).
    """
    if "problem" not in resolved:
        resolved = {**resolved, "problem": _instances(spec)}
    out = {}
    for name, meta in settings().items():
        if meta.identity:
            value = resolved.get(name, _value(spec, name))
            out[name] = _IDS.get(name, lambda v: v)(value)
    out["verdict_rules"] = outcomes.RULES  # the outcomes a store holds were classified under these rules
    return json.loads(json.dumps(out, default=_jsonable))


def stored_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """:func:`differences` between the canonical spec a store was made with and the current one,
    reading a setting the stored spec lacks as its default.

    A setting missing from a stored spec was added to lrsweep after the store was made. A new
    setting defaults to the behaviour before it (the rule for adding one, ``docs/architecture.md``),
    so such a store resumes unless the current sweep sets the new setting away from its default.
    """
    filled = {name: value for name, value in _default_ids().items() if name in current and name not in stored}
    # Outcome rules are no setting: a store from before their version was written was classified under rules 1.
    if "verdict_rules" in current:
        filled["verdict_rules"] = stored.get("verdict_rules", 1)
    return differences({**stored, **filled}, current)


@functools.cache
def _default_ids() -> dict[str, Any]:
    """The canonical form of every identity setting's default (settings with one)."""
    values = defaults()
    out = {
        name: _IDS.get(name, lambda v: v)(values[name])
        for name, meta in settings().items()
        if meta.identity and name not in ("problem", "lr")
    }
    return json.loads(json.dumps(out, default=_jsonable))


def attrs(spec: SweepSpec, **resolved: Any) -> dict[str, Any]:
    """The Dataset's attributes: every setting marked ``attr``, as a number or a string
    (structured values as JSON), with ``resolved`` values (problem and optimizer names, ...) first.
    A run option (``devices``) comes from ``resolved`` only: the spec does not hold it."""
    out = {}
    options = run_options()
    for name, meta in settings().items():
        if not meta.attr or (name in options and name not in resolved):
            continue
        value = resolved[name] if name in resolved else _value(spec, name)
        if name in _IDS and name not in resolved:
            value = _IDS[name](value)
        if value is None:
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            value = json.dumps(value, sort_keys=True, default=_jsonable)
        out[name] = value
    return out


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


#: What a difference in a problem's fingerprint means, for the refusal's message.
_MEANING = {
    "loss": "the loss function's code",
    "sampler": "the init sampler's code",
    "data": "the data x, y",
    "init": "the init",
    "min_loss": "min_loss",
    "eval_data": "the held-out data x_eval, y_eval",
    "metrics": "the held-out metrics",
}


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two canonical specs: ``["epochs: 2000 vs 1000", ...]``.

    Nested tables are compared key by key (``problem.loss: "3f2a..." vs "9b1c..." (the loss
    function's code)``).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                out += differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(v, dict) for v in a + b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{prefix}{i}.")]
    key = prefix[:-1]
    meaning = _MEANING.get(key.rsplit(".", 1)[-1]) if key.startswith("problem.") else None
    return [f"{key}: {json.dumps(a)} vs {json.dumps(b)}" + (f" ({meaning})" if meaning else "")]
