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

from . import _checks, engine, gradients, grid, optimizers, outcomes, problems
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


def _resolve_problem(problem) -> Problem:
    if isinstance(problem, Problem):
        return problem
    if isinstance(problem, str):
        return problems.get(problem)
    raise ValueError(f"problem={problem!r} is invalid: expected an lrsweep.Problem, a built-in name or 'module:function'")


def _check_batch(problem: Problem, init) -> PyTree:
    """Validate a batch of initial parameters (leading axis ``n``) against the problem's init."""
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
        arrays.append(arr)
    if len(sizes) != 1:
        raise ValueError(f"init leaves must share one batch size, got sizes {sorted(sizes)} for {names}")
    return ref_def.unflatten(arrays)


class _Axes:
    """The sweep's named axes and how a flat config index maps to (learning rates, parameters).

    Configs are the Cartesian product of the axes, in order: the learning-rate axes (``lr``, or
    ``lr_<group>`` per group), then the init axes (``init``, or ``init_<name>`` per grid parameter).
    Config ``k`` has the axis indices ``np.unravel_index(k, shape)``.
    """

    def __init__(self, problem: Problem, lr, init, groups, seed):
        self.problem = problem
        self.names = problems.param_names(problem.init)
        self.dims: list[str] = []
        self.coords: dict[str, Any] = {}  # one 1-D array per dim
        self.extra_coords: dict[str, Any] = {}  # init_<name> coordinates along "init"
        self._lr_values: list[np.ndarray] = []
        self._build_lr(lr, groups)
        self._batch = None  # (n, ...) leaves for an "init" axis
        self._grid: dict[int, int] = {}  # leaf index -> axis position, for a grid
        self._build_init(init, seed)
        self.shape = tuple(len(self.coords[d]) for d in self.dims)
        self.size = int(np.prod(self.shape, dtype=np.int64))

    # -- learning rates ---------------------------------------------------------------------
    def _build_lr(self, lr, groups) -> None:
        if not isinstance(lr, dict):
            if groups is not None:
                raise ValueError("groups is only used with per-group learning rates: pass lr as a dict {group: lr}")
            values = grid.parse_lr(lr)
            self.groups, self.leaf_group = ("lr",), None
            self._add_lr_axis("lr", values)
            return
        if not lr:
            raise ValueError("lr={} is invalid: expected at least one group")
        top = [n.split(".")[0] for n in self.names]
        groups = {g: [g] for g in lr} if groups is None else groups
        if not isinstance(groups, dict) or set(groups) != set(lr):
            raise ValueError(f"groups={groups!r} is invalid: expected a dict with the same keys as lr ({list(lr)})")
        owner = {}
        for g, keys in groups.items():
            for key in [keys] if isinstance(keys, str) else keys:
                if key not in top:
                    raise ValueError(
                        f"groups[{g!r}] names {key!r}, which is not a parameter of problem "
                        f"{self.problem.name!r}; its parameters are {sorted(set(top))}"
                    )
                if key in owner:
                    raise ValueError(f"parameter {key!r} is in two learning-rate groups, {owner[key]!r} and {g!r}")
                owner[key] = g
        missing = sorted(set(top) - set(owner))
        if missing:
            raise ValueError(f"lr={list(lr)} leaves parameters {missing} without a learning rate; give every parameter a group")
        self.groups = tuple(lr)
        self.leaf_group = tuple(self.groups.index(owner[t]) for t in top)
        for g in self.groups:
            self._add_lr_axis(f"lr_{g}", grid.parse_lr(lr[g], arg=f"lr[{g!r}]"))

    def _add_lr_axis(self, dim: str, values: np.ndarray) -> None:
        self.dims.append(dim)
        self.coords[dim] = values
        self._lr_values.append(values)

    # -- initial parameters -----------------------------------------------------------------
    def _build_init(self, init, seed) -> None:
        problem = self.problem
        if isinstance(init, grid.InitGrid):
            leaves = jax.tree_util.tree_leaves(problem.init)
            for name, values in init.values.items():
                if name not in self.names:
                    raise ValueError(f"init_grid names {name!r}, which is not a parameter of problem "
                                     f"{problem.name!r}; its parameters are {self.names}")
                k = self.names.index(name)
                if np.shape(leaves[k]) != ():
                    raise ValueError(f"init_grid({name}=...) is invalid: {name!r} has shape "
                                     f"{np.shape(leaves[k])}; a grid takes scalar parameters")
                self._grid[k] = len(self.dims)
                self.dims.append(f"init_{name}")
                self.coords[f"init_{name}"] = values
            return
        if init is None:
            batch = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[None], problem.init)
        elif isinstance(init, numbers.Integral) and not isinstance(init, bool):
            n = _checks.integer("init", init, 1)
            if problem.sampler is None:
                raise ValueError(f"init={n} is invalid: problem {problem.name!r} has no init sampler; "
                                 "pass a batch of inits or lrsweep.init_grid(...)")
            batch = jax.tree_util.tree_map(np.asarray, engine.sample_inits(problem.sampler, _checks.integer("seed", seed, 0), n))
        else:
            batch = _check_batch(problem, init)
        self._batch = batch
        n = jax.tree_util.tree_leaves(batch)[0].shape[0]
        self.dims.append("init")
        self.coords["init"] = np.arange(n)
        for name, leaf in zip(self.names, jax.tree_util.tree_leaves(batch)):
            if leaf.ndim == 1:
                self.extra_coords[f"init_{name}"] = ("init", leaf)

    # -- configs ----------------------------------------------------------------------------
    def configs(self, flat: np.ndarray, policy: Policy):
        """Learning rates ``(k, G)`` and a parameter pytree with leaves ``(k, ...)`` for flat indices."""
        idx = np.unravel_index(flat, self.shape)
        lr = np.stack([v[idx[a]] for a, v in enumerate(self._lr_values)], axis=1)
        if self._batch is not None:
            pos = len(self._lr_values)
            params = jax.tree_util.tree_map(lambda leaf: leaf[idx[pos]], self._batch)
        else:
            leaves, treedef = jax.tree_util.tree_flatten(self.problem.init)
            out = []
            for k, leaf in enumerate(leaves):
                if k in self._grid:
                    out.append(self.coords[self.dims[self._grid[k]]][idx[self._grid[k]]])
                else:
                    out.append(np.broadcast_to(np.asarray(leaf), (flat.size, *np.shape(leaf))))
            params = treedef.unflatten(out)
        params = jax.tree_util.tree_map(lambda a: np.asarray(a, policy.param_dtype), params)
        return lr.astype(policy.compute_dtype), params


def _work(problem: Problem, grad: str) -> int:
    """Rough cost of one config-epoch: parameters x examples x loss evaluations."""
    n_param = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree_util.tree_leaves(problem.init))
    evals = {"autodiff": 3, "forward": n_param + 1, "central": 2 * n_param + 1}[grad]
    return n_param * problem.n_data * evals


#: The lesson's cost in ``_work`` units (2 parameters x 4 examples x 3), the yardstick for chunks.
_LESSON_WORK = 24


def _chunk_size(static: engine.Static, problem: Problem, requested: int | None) -> int:
    """Configs per chunk: a function of the sweep's static settings only, never of its size."""
    if requested is not None:
        return _checks.integer("chunk_size", requested, 1)
    pow2 = lambda v: 2 ** int(np.floor(np.log2(max(1, v))))  # noqa: E731
    # Bigger problems get smaller chunks, so a chunk costs about what 65536 lesson configs do.
    chunk = min(SUMMARY_CHUNK, pow2(SUMMARY_CHUNK * _LESSON_WORK // _work(problem, static.grad)))
    if static.record == "trajectory":
        n_param = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree_util.tree_leaves(problem.init))
        # The scan's output, its concatenation with epoch 0 and the host copy: about 3 copies.
        per_config = (static.epochs + 1) * (n_param + 1) * static.policy.compute_dtype.itemsize * 3
        chunk = min(chunk, TRAJECTORY_CHUNK, pow2(TRAJECTORY_BUDGET // per_config))
    return int(chunk)


def sweep(
    problem: Problem | str,
    lr,
    *,
    init=None,
    epochs: int = 1000,
    grad: str = "autodiff",
    precision: str = "float32",
    record: str = "trajectory",
    optimizer="gd",
    optimizer_kwargs: dict | None = None,
    groups: dict | None = None,
    seed: int = 0,
    h: float = 1e-4,
    rtol: float = outcomes.DEFAULT_RTOL,
    stuck_window: int | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Train every (learning rate, initialisation) pair at once.

    Args:
      problem: an :class:`lrsweep.Problem`, a built-in name (``"linear"``, ``"chapter_net"``,
        ``"quadratic"``, ``"logistic"``, ``"mlp"``) or ``"package.module:function"``.
      lr: learning rates: a number, a 1-D array, ``"0.01,0.1,1"`` or a space ``"log:1e-4:10:256"``;
        each finite and > 0. Or a dict ``{group: lr spec}`` for a sweep axis per parameter group:
        by default each group is the top-level parameter of the same name (``{"W0": ..., "Wout": ...}``
        for ``mlp()``); ``groups`` maps group names to lists of parameters otherwise.
      init: the initialisations: None (the problem's init, a batch of one); a batch of parameter
        pytrees with a leading axis (``{"w": array of n, "b": array of n}``); a count ``n``, drawn
        by the problem's sampler from ``seed``; or ``lrsweep.init_grid(w=..., b=...)``, a grid over
        chosen scalar parameters (dims ``init_w``, ``init_b``).
      epochs: number of steps, >= 1.
      grad: ``"autodiff"``, ``"forward"`` (the lesson's) or ``"central"`` (``lrsweep.gradients``).
      precision: ``"float32"``, ``"float64"`` or ``"mixed"`` (``lrsweep.precision``).
      record: ``"trajectory"`` keeps every epoch; ``"summary"`` keeps final values only, so memory
        does not grow with ``epochs``.
      optimizer: ``"gd"`` (the lesson's), ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"rmsprop"``,
        or an optax factory taking ``learning_rate`` (``lrsweep.optimizers``).
      optimizer_kwargs: the optimizer's other hyperparameters, e.g. ``{"momentum": 0.5}``.
      groups: ``{group: [parameter, ...]}`` for per-group learning rates.
      seed: seed of the sampler when ``init`` is a count.
      h: finite-difference step.
      rtol: convergence tolerance relative to the initial loss gap (``lrsweep.outcomes``).
      stuck_window: epochs without a parameter change that make a run "stuck";
        default ``max(1, epochs // 10)``.
      chunk_size: configs per compiled chunk; by default 65536 for the lesson's problem, fewer for
        costlier problems and for long trajectories (a function of the settings, not of the sweep's
        size, so results never depend on it).
      progress: show a progress bar over chunks; default when there are several and stderr is a terminal.

    Returns:
      An ``xarray.Dataset`` with the sweep's dims (``lr`` or ``lr_<group>``; ``init`` or
      ``init_<name>``) and, for trajectories, ``epoch`` (``0..epochs``, epoch 0 being the state
      before training). Variables: ``loss`` and one per parameter (``w``, ``b``) over the sweep's
      dims [, epoch] and the parameter's own dims; ``outcome`` (strings "converged", "unfinished",
      "diverged", "stuck") and ``event_epoch`` over the sweep's dims. With an ``init`` dim, scalar
      parameters also get an ``init_<name>`` coordinate on it.

    Example:
      >>> import lrsweep
      >>> ds = lrsweep.sweep("linear", [0.01, 0.1, 1.0], epochs=1000, grad="forward", precision="mixed")
      >>> ds.outcome.sel(init=0).values.tolist()
      ['unfinished', 'converged', 'stuck']
      >>> float(ds.w.sel(lr=1.0, init=0, epoch=1000))
      12755.16015625
    """
    problem = _resolve_problem(problem)
    epochs = _checks.integer("epochs", epochs, 1)
    if epochs > outcomes.MAX_EPOCHS:
        raise ValueError(f"epochs={epochs} is invalid: at most {outcomes.MAX_EPOCHS} epochs can be tracked")
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    record = _checks.choice("record", record, RECORDS)
    opt = optimizers.get(optimizer, optimizer_kwargs)
    h = _checks.real("h", h, 0.0, closed_low=False)
    rtol = _checks.real("rtol", rtol, 0.0)
    window = outcomes.default_window(epochs) if stuck_window is None else _checks.integer("stuck_window", stuck_window, 1)
    axes = _Axes(problem, lr, init, groups, seed)

    static = engine.Static(
        problem.loss, problem.n_data, grad, policy, epochs, record, window, opt, axes.groups, axes.leaf_group
    )
    chunk = _chunk_size(static, problem, chunk_size)
    n = axes.size
    total = engine.pad_to(n, chunk)
    attrs = {
        "problem": problem.name,
        "grad": grad,
        "precision": policy.name,
        "optimizer": opt.name,
        "optimizer_kwargs": repr(dict(opt.kwargs)),
        "epochs": epochs,
        "record": record,
        "h": h,
        "rtol": rtol,
        "min_loss": problem.min_loss,
        "stuck_window": window,
        "chunk_size": chunk,
    }
    results = _Collector(static, problem, axes, attrs)
    show = progress if progress is not None else (total // chunk > 1 and sys.stderr.isatty())
    with policy.context():
        x, y = engine.as_compute(static, problem.x, problem.y)
        cd = policy.compute_dtype.type
        args = (cd(h), cd(0.0), cd(rtol), cd(problem.min_loss))
        try:
            for start in tqdm(range(0, total, chunk), disable=not show, unit="chunk", desc="sweep"):
                # Pad the tail with copies of the last config; their results are dropped.
                flat = np.minimum(np.arange(start, start + chunk), n - 1)
                lr_c, p_c = axes.configs(flat, policy)
                out = engine.run_chunk(lr_c, p_c, x, y, *args, static=static)
                results.add(start, jax.tree_util.tree_map(np.asarray, out))
        except KeyboardInterrupt:
            raise SweepInterrupted(results.dataset()) from None
    return results.dataset()


class _Collector:
    """Host-side buffers for a sweep's results, filled chunk by chunk."""

    def __init__(self, static: engine.Static, problem: Problem, axes: _Axes, attrs: dict):
        self.static, self.axes, self.attrs, self.n = static, axes, attrs, axes.size
        tail = (static.epochs + 1,) if static.record == "trajectory" else ()
        self.loss = np.full((self.n, *tail), np.nan, static.policy.compute_dtype)
        self.params = [
            np.full((self.n, *tail, *np.shape(leaf)), np.nan, static.policy.param_dtype)
            for leaf in jax.tree_util.tree_leaves(problem.init)
        ]
        self.outcome = np.full(self.n, -1, np.int8)
        self.event = np.full(self.n, -1, np.int32)

    def add(self, start: int, out: dict) -> None:
        stop = min(start + out["loss"].shape[0], self.n)
        k = stop - start
        self.loss[start:stop] = out["loss"][:k]
        for buf, v in zip(self.params, jax.tree_util.tree_leaves(out["params"])):
            buf[start:stop] = v[:k]
        self.outcome[start:stop] = out["outcome"][:k]
        self.event[start:stop] = out["event_epoch"][:k]

    def dataset(self) -> xr.Dataset:
        st, axes = self.static, self.axes
        dims = tuple(axes.dims)
        lead = dims + (("epoch",) if st.record == "trajectory" else ())
        shape = lambda a: a.reshape(*axes.shape, *a.shape[1:])  # noqa: E731
        data = {"loss": (lead, shape(self.loss))}
        for name, leaf in zip(axes.names, self.params):
            extra = tuple(f"{name}_dim{k}" for k in range(leaf.ndim - (len(lead) - len(dims)) - 1))
            data[name] = (lead + extra, shape(leaf))
        codes = shape(self.outcome)
        data["outcome"] = (dims, np.where(codes >= 0, outcomes.names(np.maximum(codes, 0)), "pending"))
        data["event_epoch"] = (dims, shape(self.event))
        coords = {**axes.coords, **axes.extra_coords}
        if st.record == "trajectory":
            coords["epoch"] = np.arange(st.epochs + 1)
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
    optimizer="gd",
    optimizer_kwargs: dict | None = None,
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
    epochs = _checks.integer("epochs", epochs, 1)
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    h = _checks.real("h", h, 0.0, closed_low=False)
    opt = optimizers.get(optimizer, optimizer_kwargs)
    static = engine.Static(problem.loss, problem.n_data, grad, policy, epochs, "trace", 1, opt)
    params0 = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf, policy.param_dtype), problem.init)
    with policy.context():
        x, y = engine.as_compute(static, problem.x, problem.y)
        cd = policy.compute_dtype.type
        rows = engine.trace_run(lr.astype(policy.compute_dtype), params0, x, y, cd(h), cd(0.0), static=static)
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
