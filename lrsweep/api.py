"""The public entry points: :func:`sweep` and :func:`trace`."""

from __future__ import annotations

import numbers
import sys
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

import jax

from . import engine, gradients, grid, outcomes, problems
from .precision import Policy, get as get_policy
from .problems import Problem

PyTree = Any

RECORDS = ("summary", "trajectory")
#: Configs per compiled chunk of a summary sweep. The chunk shape depends only on the sweep's
#: static settings, never on how many configs there are, so a config's result does not depend on
#: the company it is computed in: XLA:CPU compiles other batch shapes differently and can round
#: differently (a chunk of 1 does, for finite differences). Small sweeps pay for a padded chunk
#: (65536 configs x 1000 epochs of the lesson take about 60 ms); large chunks keep the per-epoch
#: loop overhead small (throughput is about 2x that of 4096-config chunks).
SUMMARY_CHUNK = 65536
#: Configs per chunk of a trajectory sweep, at most, and the bytes such a chunk may take; the
#: chunk shrinks by powers of two to fit.
TRAJECTORY_CHUNK = 4096
TRAJECTORY_BUDGET = 256 * 2**20


class SweepInterrupted(KeyboardInterrupt):
    """Raised when a sweep is interrupted (Ctrl-C); ``.partial`` holds every finished chunk.

    In ``.partial`` the configs that were not trained have NaN losses and parameters, outcome
    ``"pending"`` and ``event_epoch`` -1.
    """

    def __init__(self, partial: xr.Dataset):
        super().__init__("sweep interrupted; the finished chunks are in .partial")
        self.partial = partial


def _check_choice(arg: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{arg}={value!r} is invalid: expected one of {list(choices)}")
    return value


def _check_int(arg: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{arg}={value!r} is invalid: expected an integer >= {minimum}")
    return int(value)


def _check_positive(arg: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{arg}={value!r} is invalid: expected a finite number {'>=' if allow_zero else '>'} 0")
    return float(value)


def _resolve_problem(problem) -> Problem:
    if isinstance(problem, str):
        return problems.get(problem)
    if not isinstance(problem, Problem):
        raise ValueError(f"problem={problem!r} is invalid: expected an lrsweep.Problem or a built-in name")
    return problem


def _check_init(problem: Problem, init, policy: Policy) -> PyTree:
    """Validate a batch of initial parameters (leading axis ``n``) against the problem's init."""
    if init is None:
        return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf, policy.param_dtype)[None], problem.init)
    ref_leaves, ref_def = jax.tree_util.tree_flatten(problem.init)
    try:
        leaves = ref_def.flatten_up_to(init)
    except (ValueError, TypeError):
        expected = jax.tree_util.tree_structure(problem.init)
        raise ValueError(
            f"init is invalid for problem {problem.name!r}: its structure must be {expected} "
            f"(keys {problems.param_names(problem.init)}), each leaf with a leading batch axis; got {init!r}"
        ) from None
    names = problems.param_names(problem.init)
    arrays, sizes = [], set()
    for name, ref, leaf in zip(names, ref_leaves, leaves):
        arr = np.asarray(leaf, dtype=np.float64)
        if arr.ndim != ref.ndim + 1 or arr.shape[1:] != ref.shape or arr.shape[0] == 0:
            raise ValueError(
                f"init[{name!r}] has shape {arr.shape}: expected (n, *{ref.shape}) with n >= 1, "
                f"a batch of values for the parameter of shape {ref.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"init[{name!r}] contains NaN or infinite values")
        sizes.add(arr.shape[0])
        arrays.append(arr.astype(policy.param_dtype))
    if len(sizes) != 1:
        raise ValueError(f"init leaves must share one batch size, got sizes {sorted(sizes)} for {names}")
    return ref_def.unflatten(arrays)


def _chunk_size(static: engine.Static, n_param: int, requested: int | None) -> int:
    if requested is not None:
        return _check_int("chunk_size", requested, 1)
    if static.record == "summary":
        return SUMMARY_CHUNK
    # The scan's output, its concatenation with epoch 0 and the host copy: about 3 copies.
    per_config = (static.epochs + 1) * (n_param + 1) * static.policy.compute_dtype.itemsize * 3
    fit = max(1, TRAJECTORY_BUDGET // per_config)
    return int(min(TRAJECTORY_CHUNK, 2 ** int(np.floor(np.log2(fit)))))


def sweep(
    problem: Problem | str,
    lr,
    *,
    init: PyTree | None = None,
    epochs: int = 1000,
    grad: str = "autodiff",
    precision: str = "float32",
    record: str = "trajectory",
    h: float = 1e-4,
    rtol: float = outcomes.DEFAULT_RTOL,
    stuck_window: int | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Train every (learning rate, initialisation) pair with gradient descent, all at once.

    Args:
      problem: an :class:`lrsweep.Problem` or a built-in name (``"linear"``).
      lr: learning rates: a number, a 1-D array, ``"0.01,0.1,1"`` or a space ``"log:1e-4:10:256"``.
        Each must be finite and > 0.
      init: a batch of initial parameters, a pytree like ``problem.init`` whose leaves have a
        leading axis of size ``n`` (``{"w": array of n, "b": array of n}`` for ``linear()``).
        Default: the problem's own init as a batch of one.
      epochs: number of gradient steps, >= 1.
      grad: ``"autodiff"``, ``"forward"`` (the lesson's) or ``"central"`` (``lrsweep.gradients``).
      precision: ``"float32"``, ``"float64"`` or ``"mixed"`` (``lrsweep.precision``).
      record: ``"trajectory"`` keeps every epoch; ``"summary"`` keeps final values only, so memory
        does not grow with ``epochs``.
      h: finite-difference step.
      rtol: convergence tolerance relative to the initial loss gap (``lrsweep.outcomes``).
      stuck_window: epochs without a parameter change that make a run "stuck";
        default ``max(1, epochs // 10)``.
      chunk_size: configs per compiled chunk (default: 65536 for summaries; for trajectories
        4096, halved until a chunk fits in 256 MiB). Results depend on it only in the last bits.
      progress: show a progress bar over chunks; default when there are several and stderr is a terminal.

    Returns:
      An ``xarray.Dataset`` with dims ``lr``, ``init`` and, for trajectories, ``epoch``
      (``0..epochs``, epoch 0 being the state before training). Variables: ``loss`` and one per
      parameter (``w``, ``b``), over ``(lr, init[, epoch], *param_dims)``; ``outcome`` (strings
      "converged", "unfinished", "diverged", "stuck") and ``event_epoch`` over ``(lr, init)``.
      Scalar parameters also get an ``init_<name>`` coordinate on ``init``.

    Example:
      >>> import lrsweep
      >>> ds = lrsweep.sweep("linear", [0.01, 0.1, 1.0], epochs=1000, grad="forward", precision="mixed")
      >>> ds.outcome.sel(init=0).values.tolist()
      ['unfinished', 'converged', 'stuck']
      >>> float(ds.w.sel(lr=1.0, init=0, epoch=1000))
      12755.16015625
    """
    problem = _resolve_problem(problem)
    lrs = grid.parse_lr(lr)
    epochs = _check_int("epochs", epochs, 1)
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    record = _check_choice("record", record, RECORDS)
    h = _check_positive("h", h)
    rtol = _check_positive("rtol", rtol, allow_zero=True)
    window = outcomes.default_window(epochs) if stuck_window is None else _check_int("stuck_window", stuck_window, 1)
    inits = _check_init(problem, init, policy)

    static = engine.Static(problem.loss, problem.n_data, grad, policy, epochs, record, window)
    names = problems.param_names(problem.init)
    n_lr, n_init = lrs.size, jax.tree_util.tree_leaves(inits)[0].shape[0]
    n_param = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(problem.init))
    chunk = _chunk_size(static, n_param, chunk_size)

    # Flat configs, lr-major: config k is (lr[k // n_init], init[k % n_init]).
    n = n_lr * n_init
    total = engine.pad_to(n, chunk)
    flat_index = np.minimum(np.arange(total), n - 1)  # pad the tail with copies of the last config
    lr_flat = lrs[flat_index // n_init]
    init_flat = jax.tree_util.tree_map(lambda a: a[flat_index % n_init], inits)

    attrs = {
        "problem": problem.name,
        "grad": grad,
        "precision": policy.name,
        "epochs": epochs,
        "record": record,
        "h": h,
        "rtol": rtol,
        "min_loss": problem.min_loss,
        "stuck_window": window,
        "chunk_size": chunk,
    }
    results = _Collector(static, problem, n, attrs)
    show = progress if progress is not None else (total // chunk > 1 and sys.stderr.isatty())
    with policy.context():
        x, y = engine.as_compute(static, problem.x, problem.y)
        cd = policy.compute_dtype.type
        args = (cd(h), cd(0.0), cd(rtol), cd(problem.min_loss))
        try:
            for start in tqdm(range(0, total, chunk), disable=not show, unit="chunk", desc="sweep"):
                sl = slice(start, start + chunk)
                lr_c = lr_flat[sl].astype(policy.compute_dtype)
                p_c = jax.tree_util.tree_map(lambda a: a[sl], init_flat)
                out = engine.run_chunk(lr_c, p_c, x, y, *args, static=static)
                results.add(start, jax.tree_util.tree_map(np.asarray, out))
        except KeyboardInterrupt:
            raise SweepInterrupted(results.dataset(lrs, inits, names, n_lr, n_init)) from None
    return results.dataset(lrs, inits, names, n_lr, n_init)


class _Collector:
    """Host-side buffers for a sweep's results, filled chunk by chunk."""

    def __init__(self, static: engine.Static, problem: Problem, n: int, attrs: dict):
        self.static, self.n, self.attrs = static, n, attrs
        tail = (static.epochs + 1,) if static.record == "trajectory" else ()
        self.loss = np.full((n, *tail), np.nan, static.policy.compute_dtype)
        self.params = jax.tree_util.tree_map(
            lambda leaf: np.full((n, *tail, *np.shape(leaf)), np.nan, static.policy.param_dtype), problem.init
        )
        self.outcome = np.full(n, -1, np.int8)
        self.event = np.full(n, -1, np.int32)

    def add(self, start: int, out: dict) -> None:
        stop = min(start + out["loss"].shape[0], self.n)
        k = stop - start
        self.loss[start:stop] = out["loss"][:k]
        jax.tree_util.tree_map(lambda buf, v: buf.__setitem__(slice(start, stop), v[:k]), self.params, out["params"])
        self.outcome[start:stop] = out["outcome"][:k]
        self.event[start:stop] = out["event_epoch"][:k]

    def dataset(self, lrs, inits, names, n_lr, n_init) -> xr.Dataset:
        st = self.static
        lead = ("lr", "init", "epoch") if st.record == "trajectory" else ("lr", "init")
        shape = lambda a: a.reshape(n_lr, n_init, *a.shape[1:])  # noqa: E731
        data = {"loss": (lead, shape(self.loss))}
        for name, leaf in zip(names, jax.tree_util.tree_leaves(self.params)):
            extra = tuple(f"{name}_dim{k}" for k in range(leaf.ndim - len(lead) + 1))
            data[name] = (lead + extra, shape(leaf))
        codes = shape(self.outcome)
        outcome = np.where(codes >= 0, outcomes.names(np.maximum(codes, 0)), "pending")
        data["outcome"] = (("lr", "init"), outcome)
        data["event_epoch"] = (("lr", "init"), shape(self.event))
        coords = {"lr": lrs, "init": np.arange(n_init)}
        if st.record == "trajectory":
            coords["epoch"] = np.arange(st.epochs + 1)
        for name, leaf in zip(names, jax.tree_util.tree_leaves(inits)):
            if leaf.ndim == 1:
                coords[f"init_{name}"] = ("init", leaf)
        return xr.Dataset(data, coords=coords, attrs=dict(self.attrs))


def display_order(problem: Problem) -> list[int]:
    """Leaf indices in the order a reader expects: ``init``'s own key order (``w`` before ``b``)."""
    names = problems.param_names(problem.init)
    if not isinstance(problem.init, dict):
        return list(range(len(names)))
    keys = [str(k) for k in problem.init]
    return sorted(range(len(names)), key=lambda i: (keys.index(names[i].split(".")[0]), i))


def trace(
    problem: Problem | str,
    lr: float,
    epochs: int,
    *,
    grad: str = "forward",
    precision: str = "mixed",
    h: float = 1e-4,
) -> pd.DataFrame:
    """The lesson's per-epoch table for one run from the problem's init.

    One row per (epoch, parameter element): ``epoch`` (0-based; ``value`` is the parameter at the
    start of that epoch), ``parameter`` (``"w"``, or ``"W1[0,2]"`` for array elements), ``value``,
    ``loss`` (at the epoch's parameters), ``loss_plus`` (at this element nudged by ``+h``; NaN for
    autodiff), ``loss_minus`` (central difference only), ``gradient`` and ``updated``.

    Example:
      >>> import lrsweep
      >>> t = lrsweep.trace("linear", 0.01, 10)
      >>> round(float(t.query("parameter == 'w'").updated.iloc[0]), 2)
      0.45
    """
    problem = _resolve_problem(problem)
    lr = grid.parse_lr(lr)
    if lr.size != 1:
        raise ValueError(f"lr={lr.tolist()!r} is invalid: trace takes one learning rate")
    epochs = _check_int("epochs", epochs, 1)
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    h = _check_positive("h", h)
    static = engine.Static(problem.loss, problem.n_data, grad, policy, epochs, "trace", 1)
    params0 = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf, policy.param_dtype), problem.init)
    with policy.context():
        x, y = engine.as_compute(static, problem.x, problem.y)
        cd = policy.compute_dtype.type
        rows = engine.trace_run(cd(lr[0]), params0, x, y, cd(h), cd(0.0), static=static)
        rows = jax.tree_util.tree_map(np.asarray, rows)

    names = problems.param_names(problem.init)
    leaf = lambda key: jax.tree_util.tree_leaves(rows[key]) if key in rows else None  # noqa: E731
    columns = {k: leaf(k) for k in ("params", "grad", "updated", "loss_plus", "loss_minus")}
    frames = []
    for i in display_order(problem):
        shape = columns["params"][i].shape[1:]
        for idx in np.ndindex(shape):
            label = names[i] if not shape else f"{names[i]}[{','.join(map(str, idx))}]"
            at = (slice(None), *idx)
            frame = {
                "epoch": np.arange(epochs),
                "parameter": label,
                "value": columns["params"][i][at],
                "loss": rows["loss"],
                "loss_plus": columns["loss_plus"][i][at] if columns["loss_plus"] else np.full(epochs, np.nan),
            }
            if columns["loss_minus"]:
                frame["loss_minus"] = columns["loss_minus"][i][at]
            frame["gradient"] = columns["grad"][i][at]
            frame["updated"] = columns["updated"][i][at]
            frames.append(pd.DataFrame(frame))
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["epoch"], kind="stable", ignore_index=True)
