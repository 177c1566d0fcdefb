"""The public entry points: :func:`sweep` and :func:`trace`.

A sweep runs in five steps: check the settings; lay out the sweep's axes (``_Axes``: the grid of
configs and how an index becomes learning rates, hyperparameters and initial parameters); choose a
chunk size from the memory budget and cut the grid into tiles of at most one chunk each; run each
tile through ``engine.run_chunk``; write its results into a sink (memory, or a resumable Zarr
store, ``lrsweep.store``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import numbers
import os
import sys
import warnings
from typing import Any

import jax
import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from . import _checks, engine, gradients, grid, kernels, notebook, optimizers, outcomes, problems, store
from . import spec as spec_mod
from .precision import Policy
from .precision import get as get_policy
from .problems import Problem

PyTree = Any

RECORDS = ("summary", "trajectory")
#: Configs per compiled chunk of the lesson's problem, at most; costlier problems get fewer
#: (``_chunk_size``). Large chunks keep the per-epoch loop overhead small (throughput is about 2x
#: that of 4096-config chunks); the memory budget may ask for fewer.
MAX_CHUNK = 65536
#: Trajectory chunks are at most this many configs: a small trajectory sweep then pads to a few
#: thousand configs, not tens of thousands.
MAX_TRAJECTORY_CHUNK = 4096
#: Chunks are powers of two, at least this many configs. XLA:CPU compiles a chunk of one config
#: differently (scalar code) and rounds differently. From a few configs on, where
#: ``chunk_invariant`` holds (the lesson, chapter_net, small bowls, any finite difference) every
#: config's result is the same bit for bit whatever the chunk size, so results never depend on the
#: budget, on the sweep's size or on how a grid is split (tests check this). Otherwise (autodiff on
#: more than ``engine.UNROLL_MAX`` examples) the chunk size is fixed by the problem and the budget,
#: and other budgets agree to rounding. A resumed store always keeps its chunk size.
MIN_CHUNK = 8


class SweepInterrupted(KeyboardInterrupt):
    """Raised when a sweep is interrupted (Ctrl-C); ``.partial`` holds every finished chunk.

    In ``.partial`` the configs that were not trained have NaN losses and parameters, outcome
    ``"pending"`` and ``event_epoch`` -1. With ``out=``, the finished chunks are on disk too and
    the same call resumes.
    """

    def __init__(self, partial: xr.Dataset):
        super().__init__("sweep interrupted; the finished chunks are in .partial")
        self.partial = partial


def _resolve_problem(problem, problem_args=None, seed=None) -> Problem:
    if isinstance(problem, Problem):
        if problem_args or seed is not None:
            raise ValueError("problem_args and problem_seed need a problem given by name or 'module:function'")
        return problem
    if isinstance(problem, str):
        if not problem_args and seed is None:
            return problems.get(problem)
        factory = problems.factory(problem)
        kwargs = dict(problem_args or {})
        if seed is not None:
            kwargs["seed"] = seed
        try:
            return factory(**kwargs)
        except TypeError as err:
            raise ValueError(f"problem={problem!r} does not take {kwargs}: {err}") from None
    raise ValueError(
        f"problem={problem!r} is invalid: expected an lrsweep.Problem, a built-in name or 'module:function'"
    )


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
    """The sweep's named axes and how an index becomes (learning rates, hyperparameters, parameters).

    Configs are the Cartesian product of the axes, in this order: ``problem_seed`` (if any), the
    learning-rate axes (``lr``, or ``lr_<group>`` per group), the swept optimizer hyperparameters,
    then the init axes (``init``, or ``init_<name>`` per grid parameter).
    """

    def __init__(self, problem: Problem, lr, init, groups, seed, optimizer_axes, problem_seeds):
        self.problem = problem
        self.names = problems.param_names(problem.init)
        self.dims: list[str] = []
        self.coords: dict[str, Any] = {}  # dim -> grid.Axis or 1-D array
        self.extra_coords: dict[str, tuple[str, np.ndarray]] = {}  # init_<name> along "init"
        if problem_seeds is not None:
            self._add("problem_seed", np.asarray(problem_seeds, dtype=np.int64))
        self._lr_dims: list[str] = []
        self._build_lr(lr, groups)
        self.hyper_names: tuple[str, ...] = tuple(optimizer_axes or {})
        for name, values in (optimizer_axes or {}).items():
            self._add(f"opt_{name}", grid.parse_axis(values, f"optimizer_axes[{name!r}]", positive=False))
        self._batch = None  # leaves (n, ...) for an "init" axis
        self._grid: dict[int, str] = {}  # leaf index -> init_<name> dim, for a grid
        self._build_init(init, seed)
        self.shape = tuple(len(self.coords[d]) for d in self.dims)
        self.size = int(np.prod(self.shape, dtype=np.int64))

    def _add(self, dim: str, axis) -> None:
        self.dims.append(dim)
        self.coords[dim] = axis

    # -- learning rates ---------------------------------------------------------------------
    def _build_lr(self, lr, groups) -> None:
        if not isinstance(lr, dict):
            if groups is not None:
                raise ValueError("groups is only used with per-group learning rates: pass lr as a dict {group: lr}")
            self.groups, self.leaf_group = ("lr",), None
            self._lr_dims.append("lr")
            self._add("lr", grid.parse_axis(lr, "lr", positive=True, what="learning rate"))
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
            raise ValueError(
                f"lr={list(lr)} leaves parameters {missing} without a learning rate; give every parameter a group"
            )
        self.groups = tuple(lr)
        self.leaf_group = tuple(self.groups.index(owner[t]) for t in top)
        for g in self.groups:
            self._lr_dims.append(f"lr_{g}")
            self._add(f"lr_{g}", grid.parse_axis(lr[g], f"lr[{g!r}]", positive=True, what="learning rate"))

    # -- initial parameters -----------------------------------------------------------------
    def _build_init(self, init, seed) -> None:
        problem = self.problem
        if isinstance(init, grid.InitGrid):
            leaves = jax.tree_util.tree_leaves(problem.init)
            for name, axis in init.axes.items():
                if name not in self.names:
                    raise ValueError(
                        f"init_grid names {name!r}, which is not a parameter of problem "
                        f"{problem.name!r}; its parameters are {self.names}"
                    )
                k = self.names.index(name)
                if np.shape(leaves[k]) != ():
                    raise ValueError(
                        f"init_grid({name}=...) is invalid: {name!r} has shape "
                        f"{np.shape(leaves[k])}; a grid takes scalar parameters"
                    )
                self._grid[k] = f"init_{name}"
                self._add(f"init_{name}", axis)
            return
        if init is None:
            batch = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[None], problem.init)
        elif isinstance(init, numbers.Integral) and not isinstance(init, bool):
            n = _checks.integer("init", init, 1)
            if problem.sampler is None:
                raise ValueError(
                    f"init={n} is invalid: problem {problem.name!r} has no init sampler; "
                    "pass a batch of inits or lrsweep.init_grid(...)"
                )
            batch = jax.tree_util.tree_map(
                np.asarray, engine.sample_inits(problem.sampler, _checks.integer("seed", seed, 0), n)
            )
        else:
            batch = _check_batch(problem, init)
        self._batch = batch
        n = jax.tree_util.tree_leaves(batch)[0].shape[0]
        self._add("init", np.arange(n))
        for name, leaf in zip(self.names, jax.tree_util.tree_leaves(batch)):
            if leaf.ndim == 1:
                self.extra_coords[f"init_{name}"] = ("init", leaf)

    # -- configs ----------------------------------------------------------------------------
    def configs(self, idx: dict[str, np.ndarray], policy: Policy):
        """``(lr (k, G), hyper (k, H), params)`` for configs at the per-dim indices ``idx``."""
        lr = np.stack([self.coords[d].at(idx[d]) for d in self._lr_dims], axis=1)
        hyper = (
            np.stack([self.coords[f"opt_{h}"].at(idx[f"opt_{h}"]) for h in self.hyper_names], axis=1)
            if self.hyper_names
            else np.zeros((lr.shape[0], 0))
        )
        if self._batch is not None:
            params = jax.tree_util.tree_map(lambda leaf: leaf[idx["init"]], self._batch)
        else:
            leaves, treedef = jax.tree_util.tree_flatten(self.problem.init)
            k = lr.shape[0]
            params = treedef.unflatten(
                [
                    self.coords[self._grid[i]].at(idx[self._grid[i]])
                    if i in self._grid
                    else np.broadcast_to(np.asarray(leaf), (k, *np.shape(leaf)))
                    for i, leaf in enumerate(leaves)
                ]
            )
        params = jax.tree_util.tree_map(lambda a: np.asarray(a, policy.param_dtype), params)
        return lr.astype(policy.compute_dtype), hyper.astype(policy.compute_dtype), params


def _work(problem: Problem, grad: str) -> int:
    """Rough cost of one config-epoch: parameters x examples x loss evaluations."""
    n_param = gradients.n_elements(problem.init)
    evals = {"autodiff": 3, "forward": n_param + 1, "central": 2 * n_param + 1}[grad]
    return n_param * problem.n_data * evals


#: The lesson's cost in ``_work`` units (2 parameters x 4 examples x 3), the yardstick for chunks.
_LESSON_WORK = 24


def _bytes_per_config(static: engine.Static, problem: Problem) -> int:
    """A generous estimate of the memory one config of a chunk takes, on device and on the host."""
    item = static.policy.compute_dtype.itemsize
    n_param = gradients.n_elements(problem.init)
    width = int(np.prod(problem.x.shape[1:], dtype=np.int64)) + int(np.prod(problem.y.shape[1:], dtype=np.int64))
    # Parameters, optimizer state and gradient copies, and the per-example activations of a batch.
    state = item * (16 * n_param * 3 + 8 * problem.n_data * max(width, 1) + 64)
    records = 0
    if static.record == "trajectory":
        leaves = jax.tree_util.tree_leaves(problem.init)
        chosen = static.keep_leaves if static.keep_leaves is not None else range(len(leaves))
        kept = (1 if static.keep_loss else 0) + sum(int(np.prod(np.shape(leaves[k]))) for k in chosen)
        # The scan's output, its concatenation with the last epoch, and the host copy.
        records = 3 * item * kept * len(static.recorded_epochs())
    return int(state + records)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _pow2_floor(v: float) -> int:
    return 2 ** int(np.floor(np.log2(max(1.0, v))))


def default_memory() -> int:
    """The default memory budget: half the machine's memory, at most 4 GiB.

    The budget bounds what a sweep allocates for its data: the chunk in flight (on the device and
    its host copy) and, without ``out``, the whole result. The runtime's own footprint (Python,
    JAX and the libraries, about 250 MB on CPU) comes on top of it.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(min(4 * 2**30, total // 2))


def _chunk_size(static: engine.Static, problem: Problem, memory: int, requested: int | None, n_configs: int) -> int:
    """Configs per chunk: a power of two from ``MIN_CHUNK`` up, set by the problem's cost and the
    memory budget, and by the sweep's size only where that cannot change a bit (``chunk_invariant``)."""
    if requested is not None:
        return _checks.integer("chunk_size", requested, 1)
    per_config = _bytes_per_config(static, problem) * _workers()  # every chunk in flight
    by_memory = _pow2_floor(memory / per_config) if memory >= per_config else 0
    if by_memory < MIN_CHUNK:
        raise ValueError(
            f"memory={memory} bytes is too small for one chunk of {MIN_CHUNK} configs, which needs about "
            f"{_size(MIN_CHUNK * per_config)}; raise --memory, or record less (--record summary, "
            "--every k, --variables)"
        )
    # Costlier problems get fewer configs per chunk, so a chunk costs about what 65536 lesson configs do.
    by_work = max(MIN_CHUNK, _pow2_floor(MAX_CHUNK * _LESSON_WORK / _work(problem, static.grad)))
    cap = MAX_TRAJECTORY_CHUNK if static.record == "trajectory" else MAX_CHUNK
    chunk = min(cap, by_work, by_memory)
    if chunk_invariant(static):  # a small sweep need not pad to a big chunk
        chunk = min(chunk, max(MIN_CHUNK, 2 ** int(np.ceil(np.log2(max(1, n_configs))))))
    return chunk


def chunk_invariant(static: engine.Static) -> bool:
    """Whether every config's result is the same bit for bit in any chunk of ``MIN_CHUNK`` or more.

    True where no sum is left to XLA: data summed term by term (``engine.UNROLL_MAX`` examples or
    fewer), or finite differences, whose losses ``engine.tree_sum`` adds in a fixed order. Autodiff
    on a larger data set leaves the sum of per-example gradients to XLA, whose order can change with
    the chunk's shape (tests/test_store.py checks both).
    """
    return static.n_data <= engine.UNROLL_MAX or static.grad != "autodiff"


def _tile_shape(shape: tuple[int, ...], dims: list[str], chunk: int) -> tuple[int, ...]:
    """A block of at most ``chunk`` configs: whole trailing dims first, never more than one problem seed."""
    tile, room = [], chunk
    for size in reversed(shape):
        t = min(size, max(1, room))
        tile.append(t)
        room = room // t if t == size else 0
    tile = tile[::-1]
    if dims and dims[0] == "problem_seed":
        tile[0] = 1  # each tile trains on one problem instance's data
    return tuple(tile)


def _layout(axes: _Axes, static: engine.Static, problem: Problem, attrs: dict) -> store.Layout:
    dims = tuple(axes.dims)
    traj = static.record == "trajectory"
    lead = dims + (("epoch",) if traj else ())
    n_rec = (len(static.recorded_epochs()),) if traj else ()
    variables = {}
    leaves = jax.tree_util.tree_leaves(problem.init)
    if not traj or static.keep_loss:
        variables["loss"] = store.Variable(lead, axes.shape + n_rec, static.policy.compute_dtype, np.nan)
    kept = range(len(leaves)) if (not traj or static.keep_leaves is None) else static.keep_leaves
    for k in kept:
        name, shape = axes.names[k], np.shape(leaves[k])
        extra = tuple(f"{name}_dim{i}" for i in range(len(shape)))
        variables[name] = store.Variable(lead + extra, axes.shape + n_rec + shape, static.policy.param_dtype, np.nan)
    variables["outcome"] = store.Variable(dims, axes.shape, np.dtype(np.int8), -1)
    variables["event_epoch"] = store.Variable(dims, axes.shape, np.dtype(np.int32), -1)
    return store.Layout(
        dims=dims,
        shape=axes.shape,
        tile=axes.shape,
        coords=dict(axes.coords),
        extra_coords=dict(axes.extra_coords),
        epochs=static.recorded_epochs() if traj else None,
        variables=variables,
        attrs=attrs,
    )


def sweep(
    problem: Problem | str,
    lr,
    *,
    init=None,
    epochs: int = 1000,
    grad: str = "autodiff",
    precision: str = "float32",
    record: str = "trajectory",
    every: int = 1,
    variables=None,
    optimizer="gd",
    optimizer_kwargs: dict | None = None,
    optimizer_axes: dict | None = None,
    groups: dict | None = None,
    seed: int = 0,
    problem_args: dict | None = None,
    problem_seed=None,
    h: float = 1e-4,
    rtol: float = outcomes.DEFAULT_RTOL,
    stuck_window: int | None = None,
    memory=None,
    out=None,
    chunk_size: int | None = None,
    kernel: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """Train every (learning rate, initialisation, ...) config at once.

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
      record: ``"trajectory"`` keeps every ``every``-th epoch; ``"summary"`` keeps final values only,
        so memory does not grow with ``epochs``.
      every: a trajectory keeps epochs ``0, every, 2 every, ...`` and the last one.
      variables: what a trajectory keeps: a list of ``"loss"`` and parameter names (default: all).
      optimizer: ``"gd"`` (the lesson's), ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"rmsprop"``,
        or an optax factory taking ``learning_rate`` (``lrsweep.optimizers``).
      optimizer_kwargs: the optimizer's other hyperparameters, e.g. ``{"momentum": 0.5}``.
      optimizer_axes: hyperparameters as sweep axes, e.g. ``{"momentum": [0.0, 0.5, 0.9]}``
        (dims ``opt_<name>``; injected per config like the learning rate: one compile).
      groups: ``{group: [parameter, ...]}`` for per-group learning rates.
      seed: seed of the sampler when ``init`` is a count.
      problem_args: keyword arguments for a problem given by name (``{"dim": 10, "cond": 100}``).
      problem_seed: a count or a list of seeds: a sweep axis of problem instances (each built with
        ``seed=``, e.g. a new data set for ``logistic``).
      h: finite-difference step.
      rtol: convergence tolerance relative to the initial loss gap (``lrsweep.outcomes``).
      stuck_window: epochs without a parameter change that make a run "stuck";
        default ``max(1, epochs // 10)``.
      memory: the memory budget for the sweep's data (``"2GB"``, ``"64MB"`` or bytes; default half
        the machine, at most 4 GiB): it sets the chunk size, and without ``out`` the whole result
        must fit in it too. The runtime's own footprint (about 250 MB) comes on top.
      out: a Zarr store path: results stream there chunk by chunk, and the same call resumes an
        interrupted run (``lrsweep.store``). The returned Dataset then reads from the store.
      chunk_size: configs per compiled chunk, overriding the budget's choice. Results do not depend
        on it (from ``MIN_CHUNK`` configs on).
      kernel: ``"auto"`` (the fused Pallas kernel of ``lrsweep.kernels`` on GPU for summaries of
        small data sets, XLA otherwise), ``"xla"``, ``"pallas"`` or ``"pallas-interpret"`` (the
        kernel interpreted on CPU, for tests). Results agree within float32 tolerance.
      progress: a progress bar (chunks, config-steps per second, ETA); default when there are
        several chunks and stderr is a terminal.

    Returns:
      An ``xarray.Dataset`` with the sweep's dims (``problem_seed``; ``lr`` or ``lr_<group>``;
      ``opt_<name>``; ``init`` or ``init_<name>``) and, for trajectories, ``epoch`` (the recorded
      epochs; epoch 0 is the state before training). Variables: ``loss`` and one per parameter
      (``w``, ``b``) over the sweep's dims [, epoch] and the parameter's own dims; ``outcome``
      ("converged", "unfinished", "diverged", "stuck"; "pending" if never trained) and
      ``event_epoch`` over the sweep's dims. ``attrs["spec"]`` is the spec, as JSON.

    Example:
      >>> import lrsweep
      >>> ds = lrsweep.sweep("linear", [0.01, 0.1, 1.0], epochs=1000, grad="forward", precision="mixed")
      >>> ds.outcome.sel(init=0).values.tolist()
      ['unfinished', 'converged', 'stuck']
      >>> float(ds.w.sel(lr=1.0, init=0, epoch=1000))
      12755.16015625
    """
    # -- check the settings ----------------------------------------------------------------------
    epochs = _checks.integer("epochs", epochs, 1)
    if epochs > outcomes.MAX_EPOCHS:
        raise ValueError(f"epochs={epochs} is invalid: at most {outcomes.MAX_EPOCHS} epochs can be tracked")
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    record = _checks.choice("record", record, RECORDS)
    every = _checks.integer("every", every, 1)
    opt = optimizers.get(optimizer, optimizer_kwargs)
    h = _checks.real("h", h, 0.0, closed_low=False)
    rtol = _checks.real("rtol", rtol, 0.0)
    window = (
        outcomes.default_window(epochs) if stuck_window is None else _checks.integer("stuck_window", stuck_window, 1)
    )
    memory = default_memory() if memory is None else spec_mod.parse_size(memory)
    kernel = _checks.choice("kernel", kernel, engine.KERNELS)
    if optimizer_axes:
        if opt.is_gd:
            raise ValueError("optimizer_axes needs an optax optimizer: 'gd' has no hyperparameters")
        clash = sorted(set(optimizer_axes) & set(optimizer_kwargs or {}))
        if clash:
            raise ValueError(f"optimizer_axes and optimizer_kwargs both set {clash}; sweep it or fix it, not both")
        # The swept values replace the optimizer's defaults (e.g. momentum's 0.9); a trial call
        # checks that the factory takes them.
        try:
            optimizers.get(optimizer, {**(optimizer_kwargs or {}), **{k: 0.5 for k in optimizer_axes}})
        except ValueError:
            raise ValueError(
                f"optimizer_axes={optimizer_axes!r} is invalid: optimizer {opt.name!r} does not take {sorted(optimizer_axes)}"
            ) from None
        opt = dataclasses.replace(opt, kwargs=tuple((k, v) for k, v in opt.kwargs if k not in optimizer_axes))
    seeds = None
    if problem_seed is not None:
        if isinstance(problem_seed, numbers.Integral) and not isinstance(problem_seed, bool):
            seeds = list(range(_checks.integer("problem_seed", problem_seed, 1)))
        else:
            seeds = [_checks.integer("problem_seed[]", s, 0) for s in problem_seed]
            if not seeds:
                raise ValueError("problem_seed=[] is invalid: expected a count or a non-empty list of seeds")
    instances = [_resolve_problem(problem, problem_args, s) for s in (seeds or [None])]
    base = instances[0]
    for other in instances[1:]:
        if other.x.shape != base.x.shape or other.y.shape != base.y.shape:
            raise ValueError("problem_seed: every instance must have data of the same shapes")

    # -- lay out the axes and what is recorded ------------------------------------------------------
    axes = _Axes(base, lr, init, groups, seed, optimizer_axes, seeds)
    keep_loss, keep_leaves = True, None
    if variables is not None:
        if record != "trajectory":
            raise ValueError("variables chooses what a trajectory keeps; use it with record='trajectory'")
        wanted = [variables] if isinstance(variables, str) else list(variables)
        unknown = [v for v in wanted if v != "loss" and v not in axes.names]
        if unknown or not wanted:
            raise ValueError(f"variables={wanted!r} is invalid: expected a non-empty list of 'loss' and {axes.names}")
        keep_loss, keep_leaves = "loss" in wanted, tuple(k for k, n in enumerate(axes.names) if n in wanted)
    statics = [
        engine.Static(
            p.loss,
            p.n_data,
            grad,
            policy,
            epochs,
            record,
            window,
            opt,
            axes.groups,
            axes.leaf_group,
            axes.hyper_names,
            every,
            keep_loss,
            keep_leaves,
            kernel,
        )
        for p in instances
    ]
    settings = dict(
        problem=problem,
        problem_args=problem_args,
        problem_seed=seeds,
        lr=lr,
        groups=groups,
        init=init,
        seed=seed,
        epochs=epochs,
        grad=grad,
        precision=policy.name,
        record=record,
        every=every,
        variables=variables,
        optimizer=optimizer,
        optimizer_kwargs=optimizer_kwargs,
        optimizer_axes=optimizer_axes,
        h=h,
        rtol=rtol,
        stuck_window=window,
    )
    if kernel.startswith("pallas") and not kernels.supported(statics[0]):
        raise ValueError(
            f"kernel={kernel!r} is invalid here: the fused kernel takes summary records of data sets "
            f"of at most {engine.UNROLL_MAX} examples; use kernel='xla' or 'auto'"
        )
    chunk = _chunk_size(statics[0], base, memory, chunk_size, axes.size)
    attrs = {
        "problem": base.name,
        "grad": grad,
        "precision": policy.name,
        "optimizer": opt.name,
        "optimizer_kwargs": repr(dict(opt.kwargs)),
        "epochs": epochs,
        "record": record,
        "every": every,
        "h": h,
        "rtol": rtol,
        "min_loss": base.min_loss,
        "stuck_window": window,
        "chunk_size": chunk,
        "spec": json.dumps(spec_mod.canonical(settings), sort_keys=True),
    }
    layout = _layout(axes, statics[0], base, attrs)
    layout.tile = _tile_shape(axes.shape, axes.dims, chunk)

    # -- where results go ---------------------------------------------------------------------------
    if out is not None:
        sink = store.ZarrSink(layout, out)
        chunk = int(layout.attrs["chunk_size"])  # a resumed store keeps its own
    else:
        if layout.nbytes() > memory:
            raise ValueError(
                f"the results need about {_size(layout.nbytes())}, more than memory={_size(memory)}; "
                "stream them to disk with out='sweep.zarr' (--out), or record less"
            )
        sink = store.MemorySink(layout)

    # -- run the tiles ------------------------------------------------------------------------------
    show = progress if progress is not None else (layout.n_tiles > 1 and sys.stderr.isatty())
    try:
        _run_tiles(layout, axes, statics, instances, sink, chunk, (h, rtol), show)
    except KeyboardInterrupt:
        raise SweepInterrupted(sink.dataset()) from None
    return sink.dataset()


#: Chunks in flight at once on CPU: XLA:CPU leaves part of a 2-core machine idle within one chunk's
#: epoch loop, and a second chunk fills it (lesson: 1.05 -> 1.66 G config-steps/s with autodiff,
#: 0.89 -> 1.06 G with forward differences). Each chunk's program and inputs are the same either
#: way, so results do not change; the memory budget is shared by the chunks in flight.
WORKERS = 2


def _workers() -> int:
    return WORKERS if jax.default_backend() == "cpu" and (os.cpu_count() or 1) > 1 else 1


def _run_tiles(layout: store.Layout, axes: _Axes, statics, instances, sink, chunk: int, hr, show: bool) -> None:
    """Train every tile not done yet and write it to ``sink`` in order, with a progress bar.

    Up to ``_workers()`` tiles compute at once in threads (JAX releases the GIL while a program
    runs); this thread writes each tile and its done-mark in tile order.
    """
    n_tiles, epochs = layout.n_tiles, statics[0].epochs
    policy = statics[0].policy
    todo = [k for k in range(n_tiles) if not sink.is_done(k)]
    size = lambda k: int(np.prod([s.stop - s.start for s in layout.tile_region(k)]))
    total = axes.size * epochs
    with policy.context():
        data = [engine.as_compute(st, p.x, p.y) for st, p in zip(statics, instances)]

    def compute(k: int):
        region = layout.tile_region(k)
        tshape = tuple(s.stop - s.start for s in region)
        grids = np.meshgrid(*[np.arange(s.start, s.stop) for s in region], indexing="ij")
        # Pad the tile to the chunk with copies of its last config; their results are dropped.
        idx = {d: np.concatenate([g.ravel(), np.full(chunk - g.size, g.ravel()[-1])]) for d, g in zip(axes.dims, grids)}
        which = int(idx["problem_seed"][0]) if "problem_seed" in idx else 0
        with policy.context():  # JAX's x64 switch is per thread
            cd = policy.compute_dtype.type
            lr_c, hyper_c, p_c = axes.configs(idx, policy)
            x, y = data[which]
            call = (lr_c, hyper_c, p_c, x, y, cd(hr[0]), cd(0.0), cd(hr[1]), cd(instances[which].min_loss))
            static = statics[which]
            try:
                result = engine.run_chunk(*call, static=static)
            except Exception as err:
                if not (static.kernel == "auto" and engine._use_kernel(static, chunk) == "pallas"):
                    raise
                warnings.warn(
                    f"lrsweep: the fused GPU kernel failed to compile ({type(err).__name__}: {err}); "
                    "using the XLA path",
                    RuntimeWarning,
                    stacklevel=2,
                )
                statics[:] = [dataclasses.replace(st, kernel="xla") for st in statics]
                result = engine.run_chunk(*call, static=statics[which])
            result = jax.tree_util.tree_map(np.asarray, result)
        return tshape, _tile_values(result, layout, axes, statics[which], tshape)

    bar = tqdm(
        total=total,
        initial=total - sum(size(k) for k in todo) * epochs,
        disable=not show,
        unit="config-step",
        unit_scale=True,
        desc="sweep",
        smoothing=0.1,
    )
    pool = concurrent.futures.ThreadPoolExecutor(_workers())
    try:
        queue = iter(todo)
        pending = collections.deque((k, pool.submit(compute, k)) for k in itertools.islice(queue, _workers()))
        n_done = n_tiles - len(todo)
        while pending:
            k, future = pending.popleft()
            tshape, values = future.result()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(compute, nxt)))
            sink.write(k, values)
            sink.mark_done(k)
            n_done += 1
            bar.update(int(np.prod(tshape)) * epochs)
            bar.set_postfix_str(f"chunk {n_done}/{n_tiles}", refresh=False)
    finally:
        # On an error or Ctrl-C, drop the queued tiles; a tile already computing finishes first.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def _tile_values(result: dict, layout: store.Layout, axes: _Axes, static: engine.Static, tshape) -> dict:
    """A chunk's outputs, the padding dropped, shaped like the tile."""
    n = int(np.prod(tshape))
    leaves = result["params"]
    kept = range(len(axes.names)) if (static.record == "summary" or static.keep_leaves is None) else static.keep_leaves
    values = {"outcome": result["outcome"], "event_epoch": result["event_epoch"]}
    if result["loss"] is not None:
        values["loss"] = result["loss"]
    values.update({axes.names[k]: leaf for k, leaf in zip(kept, leaves)})
    return {
        name: np.asarray(v)[:n].reshape(*tshape, *np.shape(v)[1:])
        for name, v in values.items()
        if name in layout.variables
    }


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
    leaf = lambda key: jax.tree_util.tree_leaves(rows[key]) if key in rows else None
    columns = {k: leaf(k) for k in ("params", "grad", "updated", "loss_plus", "loss_minus")}
    frames = []
    for i in notebook.display_order(problem):
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
