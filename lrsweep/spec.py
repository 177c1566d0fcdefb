"""Sweep specs: every setting of a sweep, from Python, CLI flags or a TOML file.

A spec is the keyword arguments of :func:`lrsweep.sweep`. A TOML file holds the same keys::

    # sweep.toml: `lrsweep run sweep.toml --out sweep.zarr`
    problem = "linear"
    lr = "log:1e-4:1:65536"          # or a list, or a table {group = "log:..."} per group
    epochs = 2000
    grad = "forward"
    precision = "mixed"
    record = "trajectory"
    every = 10                       # keep every 10th epoch (and the last)
    variables = ["loss", "w"]        # what a trajectory keeps
    memory = "64MB"

    [init]                           # or init = 16 (drawn from the problem's sampler, seed = ...)
    grid = { w = "lin:-5:5:21" }

    [optimizer_axes]                 # optimizer hyperparameters as sweep axes
    momentum = [0.0, 0.5, 0.9]

The spec is saved with every result (``attrs["spec"]``, JSON). A store written from one spec is
never mixed with another: :func:`canonical` is what is compared.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import grid

#: TOML keys and the types they accept (checked before anything runs).
KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "problem": ("a built-in name or 'package.module:function'", (str,)),
    "problem_args": ("a table of keyword arguments for the problem", (dict,)),
    "problem_seed": ("a count or a list of integer seeds", (int, list)),
    "lr": ("a number, a list, a space string or a table {group = ...}", (int, float, str, list, dict)),
    "groups": ("a table {group = [parameter, ...]}", (dict,)),
    "init": ("a count or a table {grid = {name = values}}", (int, dict)),
    "seed": ("an integer", (int,)),
    "epochs": ("an integer", (int,)),
    "grad": ("a string", (str,)),
    "precision": ("a string", (str,)),
    "record": ("a string", (str,)),
    "every": ("an integer", (int,)),
    "variables": ("a list of strings", (list,)),
    "optimizer": ("a string", (str,)),
    "optimizer_kwargs": ("a table", (dict,)),
    "optimizer_axes": ("a table {name = values}", (dict,)),
    "h": ("a number", (int, float)),
    "rtol": ("a number", (int, float)),
    "stuck_window": ("an integer", (int,)),
    "memory": ("a size such as '2GB' or a number of bytes", (str, int)),
    "out": ("a path", (str,)),
}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a sweep spec from a TOML file; unknown keys and wrong types are errors naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"spec file {str(path)!r} cannot be read: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"spec file {str(path)!r} is not valid TOML: {err}") from None
    for key, value in data.items():
        if key not in KEYS:
            close = [k for k in KEYS if k.startswith(key[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{path.name}: unknown key {key!r}{hint}; known keys: {', '.join(KEYS)}")
        what, types = KEYS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"{path.name}: {key} = {value!r} has the wrong type: expected {what}")
    if isinstance(data.get("init"), dict):
        init = data["init"]
        if set(init) != {"grid"} or not isinstance(init["grid"], dict):
            raise ValueError(
                f"{path.name}: init = {init!r} is invalid: expected a count or {{grid = {{name = values}}}}"
            )
        data["init"] = grid.init_grid(**init["grid"])
    return data


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


def canonical(settings: dict[str, Any]) -> dict[str, Any]:
    """The spec as plain JSON-able data, with sweep axes normalised (``"0.1,0.2"`` == ``[0.1, 0.2]``).

    ``settings`` are :func:`lrsweep.sweep`'s arguments after validation; things that cannot be
    written down (a Problem object, a batch of inits, an optax factory) are identified by name and
    a fingerprint of their data.
    """
    lr = settings["lr"]
    init = settings["init"]
    if init is None or isinstance(init, int):
        init_id = init
    elif isinstance(init, grid.InitGrid):
        init_id = {"grid": {k: a.spec() for k, a in init.axes.items()}}
    else:
        init_id = {"batch": fingerprint(*[np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(init)])}
    optimizer = settings["optimizer"]
    out = {
        "problem": _problem_id(settings["problem"]),
        "problem_args": settings.get("problem_args") or {},
        "problem_seed": settings.get("problem_seed"),
        "lr": {g: _axis_id(v, f"lr[{g!r}]", True) for g, v in lr.items()}
        if isinstance(lr, dict)
        else _axis_id(lr, "lr", True),
        "groups": settings.get("groups"),
        "init": init_id,
        "seed": settings["seed"],
        "epochs": settings["epochs"],
        "grad": settings["grad"],
        "precision": settings["precision"],
        "record": settings["record"],
        "every": settings["every"],
        "variables": list(settings["variables"]) if settings.get("variables") is not None else None,
        "optimizer": optimizer if isinstance(optimizer, str) else getattr(optimizer, "__qualname__", repr(optimizer)),
        "optimizer_kwargs": settings.get("optimizer_kwargs") or {},
        "optimizer_axes": {
            k: _axis_id(v, f"optimizer_axes[{k!r}]", False) for k, v in (settings.get("optimizer_axes") or {}).items()
        },
        "h": settings["h"],
        "rtol": settings["rtol"],
        "stuck_window": settings["stuck_window"],
    }
    return json.loads(json.dumps(out, default=_jsonable))


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


def parse_size(value, arg: str = "memory") -> int:
    """``"2GB"``, ``"64MB"``, ``"512MiB"``, ``"1.5G"`` or a number of bytes, as bytes."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = int(value)
    elif isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        units = {
            "TIB": 2**40,
            "GIB": 2**30,
            "MIB": 2**20,
            "KIB": 2**10,
            "TB": 10**12,
            "GB": 10**9,
            "MB": 10**6,
            "KB": 10**3,
            "T": 10**12,
            "G": 10**9,
            "M": 10**6,
            "K": 10**3,
            "B": 1,
        }
        for unit, factor in units.items():
            if text.endswith(unit):
                number = text[: -len(unit)]
                break
        else:
            number, factor = text, 1
        try:
            size = int(float(number) * factor)
        except ValueError:
            raise ValueError(
                f"{arg}={value!r} is invalid: expected a size such as '2GB', '64MB' or a number of bytes"
            ) from None
    else:
        raise ValueError(f"{arg}={value!r} is invalid: expected a size such as '2GB', '64MB' or a number of bytes")
    if size <= 0:
        raise ValueError(f"{arg}={value!r} is invalid: expected a positive size")
    return size
