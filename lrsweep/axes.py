"""A sweep's named axes, and how a config's index becomes its learning rates, hyperparameters and
initial parameters.

Configs are the Cartesian product of the axes, in this order: ``problem_seed`` (if any),
``data_seed`` (if any: the minibatch order), the learning-rate axes (``lr``, or ``lr_<group>`` per group), the swept optimizer hyperparameters
(``opt_<name>``), then the init axes (``init``, or ``init_<name>`` per grid parameter). No axis is
ever materialised whole: :meth:`Axes.configs` computes the values of the configs it is asked for.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np

from . import _checks, engine, grid, problems
from .precision import Policy
from .problems import Problem
from .types import PyTree


def _ends(axis) -> np.ndarray:
    """The values that bound an axis: both ends of a space, every value of a list."""
    if isinstance(axis, grid.Axis) and axis.values is None:
        return axis.at(np.array([0, len(axis) - 1]))
    return np.asarray(axis.values if isinstance(axis, grid.Axis) else axis)


def check_batch(problem: Problem, init) -> PyTree:
    """Validate a batch of initial parameters (leading axis ``n``) against the problem's init."""
    ref_leaves, ref_def = jax.tree.flatten(problem.init)
    try:
        leaves = ref_def.flatten_up_to(init)
    except (ValueError, TypeError):
        expected = jax.tree.structure(problem.init)
        raise ValueError(
            f"init is invalid for problem {problem.name!r}: its structure must be {expected} "
            f"(keys {problems.param_names(problem.init)}), each leaf with a leading batch axis; got {init!r}"
        ) from None
    names = problems.param_names(problem.init)
    arrays, sizes = [], set()
    for name, ref, leaf in zip(names, ref_leaves, leaves):
        if isinstance(leaf, np.ma.MaskedArray) or np.asarray(leaf).dtype == bool:
            raise ValueError(f"init[{name!r}] is a masked or boolean array; pass plain float values")
        try:
            arr = np.asarray(leaf, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"init[{name!r}]={leaf!r} is invalid: expected numbers") from None
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


class Axes:
    """The sweep's named axes and how an index becomes (learning rates, hyperparameters, parameters).

    Configs are the Cartesian product of the axes, in this order: ``problem_seed`` (if any), the
    learning-rate axes (``lr``, or ``lr_<group>`` per group), the swept optimizer hyperparameters,
    then the init axes (``init``, or ``init_<name>`` per grid parameter). ``lr`` comes parsed
    (:attr:`lrsweep.SweepSpec.lr_axes`): one :class:`lrsweep.grid.Axis`, or a dict group -> Axis.
    """

    def __init__(
        self,
        problem: Problem,
        lr: grid.Axis | dict[str, grid.Axis],
        init,
        groups,
        seed,
        optimizer_axes,
        problem_seeds,
        data_seeds=None,
    ):
        self.problem = problem
        self.names = problems.param_names(problem.init)
        self.dims: list[str] = []
        self.coords: dict[str, Any] = {}  # dim -> grid.Axis or 1-D array
        self.extra_coords: dict[str, tuple[str, np.ndarray]] = {}  # init_<name> along "init"
        if problem_seeds is not None:
            self._add("problem_seed", np.asarray(problem_seeds, dtype=np.int64))
        if data_seeds is not None:
            self._add("data_seed", np.asarray(data_seeds, dtype=np.int64))
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
    def _build_lr(self, lr: grid.Axis | dict[str, grid.Axis], groups) -> None:
        if not isinstance(lr, dict):
            if groups is not None:
                raise ValueError("groups is only used with per-group learning rates: pass lr as a dict {group: lr}")
            self.groups, self.leaf_group = ("lr",), None
            self._lr_dims.append("lr")
            self._add("lr", lr)
            return
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
            self._add(f"lr_{g}", lr[g])

    # -- initial parameters -----------------------------------------------------------------
    def _build_init(self, init, seed) -> None:
        problem = self.problem
        if isinstance(init, grid.InitGrid):
            leaves = jax.tree.leaves(problem.init)
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
            batch = jax.tree.map(lambda leaf: np.asarray(leaf)[None], problem.init)
        elif isinstance(init, numbers.Integral) and not isinstance(init, bool):
            n = _checks.integer("init", init, 1)
            if problem.sampler is None:
                raise ValueError(
                    f"init={n} is invalid: problem {problem.name!r} has no init sampler; "
                    "pass a batch of inits or lrsweep.init_grid(...)"
                )
            seed = _checks.integer("seed", seed, 0)
            drawn = engine.sample_inits(problem.sampler, seed, n)
            batch = problems.check_params(drawn, f"problem {problem.name!r}", f"init drawn from seed {seed}")
        else:
            batch = check_batch(problem, init)
        self._batch = batch
        n = jax.tree.leaves(batch)[0].shape[0]
        self._add("init", np.arange(n))
        # init_<name> values along "init" for inits the sweep was given (a batch, or a count drawn
        # by the sampler); the problem's one default init is no axis of values.
        for name, leaf in zip(self.names, jax.tree.leaves(batch)):
            if leaf.ndim == 1 and init is not None:
                self.extra_coords[f"init_{name}"] = ("init", leaf)

    # -- what the compute dtypes can hold -------------------------------------------------------
    def check_representable(self, policy: Policy) -> None:
        """Refuse swept values that the policy's dtypes turn into 0, inf or NaN (``_checks.representable``).

        Learning rates must stay finite and non-zero in the compute dtype, hyperparameters finite;
        initial parameters finite in the parameter dtype. A space is monotone, so its two ends
        stand for all its values.
        """
        for dim in self._lr_dims:
            arg = "lr" if dim == "lr" else f"lr[{dim[3:]!r}]"
            _checks.representable(arg, _ends(self.coords[dim]), policy.compute_dtype, nonzero=True)
        for name in self.hyper_names:
            _checks.representable(f"optimizer_axes[{name!r}]", _ends(self.coords[f"opt_{name}"]), policy.compute_dtype)
        for k, dim in self._grid.items():
            _checks.representable(f"init_grid({self.names[k]}=...)", _ends(self.coords[dim]), policy.param_dtype)
        tree = self._batch if self._batch is not None else self.problem.init
        for name, leaf in zip(self.names, jax.tree.leaves(tree)):
            _checks.representable(f"init[{name!r}]", leaf, policy.param_dtype)

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
            params = jax.tree.map(lambda leaf: leaf[idx["init"]], self._batch)
        else:
            leaves, treedef = jax.tree.flatten(self.problem.init)
            k = lr.shape[0]
            params = treedef.unflatten(
                [
                    self.coords[self._grid[i]].at(idx[self._grid[i]])
                    if i in self._grid
                    else np.broadcast_to(np.asarray(leaf), (k, *np.shape(leaf)))
                    for i, leaf in enumerate(leaves)
                ]
            )
        params = jax.tree.map(lambda a: np.asarray(a, policy.param_dtype), params)
        return lr.astype(policy.compute_dtype), hyper.astype(policy.compute_dtype), params
