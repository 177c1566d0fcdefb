"""What identifies a sweep: its canonical spec (settings as plain JSON) and its attributes.

Two sweeps with equal canonical specs compute the same results; a store is resumed only by a sweep
whose canonical spec equals the one it was created with (``lrsweep.store``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from . import grid
from .spec import SweepSpec, settings


def fingerprint(*arrays) -> str:
    """A short hash of arrays' dtypes, shapes and bytes: identifies data that a spec cannot name."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _problem_id(problem) -> Any:
    if isinstance(problem, str):
        return problem
    leaves = jax.tree_util.tree_leaves(problem.init)
    loss = getattr(problem.loss, "__qualname__", repr(problem.loss))
    return {"name": problem.name, "loss": loss, "data": fingerprint(problem.x, problem.y, *leaves)}


#: Explicit axes longer than this are identified by a fingerprint in the spec, not value by value.
LIST_MAX = 256


def _axis_id(value, arg: str, positive: bool) -> Any:
    axis = grid.parse_axis(value, arg, positive)
    if axis.kind == "list" and len(axis) > LIST_MAX:
        return {"n": len(axis), "values": fingerprint(axis.values)}
    return axis.spec()


def _lr_id(lr: Any) -> Any:
    if isinstance(lr, dict):
        return {g: _axis_id(v, f"lr[{g!r}]", True) for g, v in lr.items()}
    return _axis_id(lr, "lr", True)


def _init_id(init: Any) -> Any:
    if init is None or isinstance(init, int):
        return init
    if isinstance(init, grid.InitGrid):
        return {"grid": {k: a.spec() for k, a in init.axes.items()}}
    return {"batch": fingerprint(*[np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(init)])}


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
}


def canonical(spec: SweepSpec, **resolved: Any) -> dict[str, Any]:
    """The spec's identity as plain JSON-able data, with sweep axes normalised (``"0.1,0.2"`` == ``[0.1, 0.2]``).

    Every setting marked ``identity`` is written; things that cannot be written down (a Problem
    object, a batch of inits, an optax factory) are identified by name and a fingerprint of their
    data. ``resolved`` overrides values the sweep settled (the default ``stuck_window``).
    """
    out = {}
    for name, meta in settings().items():
        if meta.identity:
            value = resolved.get(name, getattr(spec, name))
            out[name] = _IDS.get(name, lambda v: v)(value)
    return json.loads(json.dumps(out, default=_jsonable))


def attrs(spec: SweepSpec, **resolved: Any) -> dict[str, Any]:
    """The Dataset's attributes: every setting marked ``attr``, as a number or a string
    (structured values as JSON), with ``resolved`` values (problem and optimizer names, ...) first."""
    out = {}
    for name, meta in settings().items():
        if not meta.attr:
            continue
        value = resolved[name] if name in resolved else getattr(spec, name)
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


def differences(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two canonical specs: ``["epochs: 2000 vs 1000", ...]``."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {json.dumps(a.get(k))} vs {json.dumps(b.get(k))}" for k in keys if a.get(k) != b.get(k)]
