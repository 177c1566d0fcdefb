"""The :class:`Problem` type, the checks it runs when it is made, and the factory mark.

A :class:`Problem` is plain data. The engine sums the per-example loss over the data set itself
(term by term for small sets, see ``lrsweep.engine``), so a problem never reduces over examples.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

#: Names a result already uses (variables, dims, a store's own arrays): no parameter may take them.
RESERVED_NAMES = frozenset(
    {
        "loss",
        "outcome",
        "event_epoch",
        "score",
        "best_loss",
        "best_epoch",
        "lr",
        "init",
        "epoch",
        "problem_seed",
        "chunk",
        "chunk_done",
        "chunk_checksum",
    }
)

#: The attribute :func:`problem_factory` sets on a function it marks.
FACTORY_MARK = "__lrsweep_problem_factory__"


def problem_factory(fn: Callable[..., Problem]) -> Callable[..., Problem]:
    """Mark ``fn`` as a problem factory, so that a spec may name it as ``"module:fn"``.

    A problem named by a string (``sweep("mypkg.problems:make", ...)``, ``--problem``, a spec
    file's ``problem = ...``) is called only if it is a built-in, a factory registered under the
    ``lrsweep.problems`` entry point group, or a function marked with this decorator; anything
    else is refused before it is called (``docs/trust.md``). The function is returned unchanged,
    with the attribute ``__lrsweep_problem_factory__ = True``; it must return a :class:`Problem`.

    >>> @problem_factory
    ... def make(scale: float = 1.0):
    ...     ...
    >>> is_problem_factory(make)
    True
    """
    if not inspect.isfunction(fn):
        raise ValueError(f"problem_factory decorates a function (def ...), got {type(fn).__name__} {fn!r}")
    setattr(fn, FACTORY_MARK, True)
    return fn


def is_problem_factory(obj) -> bool:
    """True if ``obj`` is a function marked with :func:`problem_factory`.

    Only a plain function's own attribute counts: not one inherited by a class, nor one that an
    object's ``__getattr__`` makes up.
    """
    return inspect.isfunction(obj) and vars(obj).get(FACTORY_MARK) is True


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A supervised problem: ``L(params) = (1/n) * sum_i loss(params, x[i], y[i])``.

    Attributes:
      name: short identifier, used in CLI output and result metadata.
      loss: per-example loss ``loss(params, x_i, y_i) -> scalar``, written with ``jax.numpy``;
        ``x_i = x[i]`` and ``y_i = y[i]`` have the shapes ``x.shape[1:]`` and ``y.shape[1:]``.
        Per example, so that the engine can choose how to sum over the data set. It must return a
        real floating scalar (float16, float32 or float64; not bool, int or complex).
      x: inputs, shape ``(n, ...)``, finite real numbers (not bool, complex or masked).
      y: targets, shape ``(n, ...)``, finite real numbers (not bool, complex or masked).
      init: the initial parameters, a pytree of finite float arrays (scalars allowed), or a sampler
        ``init(key) -> params`` taking a ``jax.random`` key; a sampler's draw from ``key(0)`` is
        then the default init, and the sampler draws ``sweep(..., init=N, seed=S)``'s N inits.
      min_loss: the smallest value the loss can reach (0 for a problem the model can fit exactly),
        or None (the default) when it is not known. Known, convergence means reaching it within a
        tolerance; unknown, it means a plateau of the loss below its start (``lrsweep.outcomes``).
      description: one line of documentation: the math and the source.
      minimum: the parameters at a known minimum (a pytree like ``init``), or None when there is
        no known minimiser; ``lrsweep.theory`` takes the Hessian there, else at ``init``.
      sampler: ``sampler(key) -> params`` drawing random inits, or None (set from a callable init).
      batch_loss: optional, the same loss written for the whole data set,
        ``batch_loss(params, x, y) -> L(params)`` (the mean over examples), for data sets larger than
        ``engine.UNROLL_MAX`` trained with autodiff: a network whose first layer is ``x @ W`` then runs
        one large matrix product per chunk instead of per-example products. ``loss`` is then a
        :class:`WholeBatchLoss` pairing the two (it calls the per-example loss).

    A problem is checked when it is made: finite real data; finite float parameters (the init,
    and the sampler's draw from ``key(0)``, which must look like the init); a loss that returns a
    real floating scalar for the init and one example. Errors are one-line ValueErrors that name
    the problem.
    """

    name: str
    loss: Callable[[PyTree, Any, Any], Any]
    x: np.ndarray
    y: np.ndarray
    init: PyTree
    min_loss: float | None = None
    description: str = ""
    minimum: PyTree | None = None
    sampler: Callable[[Any], PyTree] | None = None
    batch_loss: Callable[[PyTree, Any, Any], Any] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Problem name={self.name!r} is invalid: expected a non-empty string")
        where = f"problem {self.name!r}"
        if not callable(self.loss):
            raise ValueError(f"{where}: loss={self.loss!r} is invalid: expected a function loss(params, x_i, y_i)")
        x, y = _data(self.x, "x", where), _data(self.y, "y", where)
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"{where}: x and y must share a non-empty leading example axis, "
                f"got x.shape={x.shape} and y.shape={y.shape}"
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        drawn_init = callable(self.init)
        if drawn_init:
            if self.sampler is not None:
                raise ValueError(f"{where}: give a sampler either as init or as sampler, not both")
            object.__setattr__(self, "sampler", self.init)
            object.__setattr__(self, "init", _draw(self.init, 0, where))
        init = check_params(self.init, where, "init")
        if not jax.tree_util.tree_leaves(init):
            raise ValueError(f"{where}: init has no parameters")
        for name in param_names(init):
            if name in RESERVED_NAMES:
                raise ValueError(f"{where}: parameter name {name!r} is reserved; avoid {sorted(RESERVED_NAMES)}")
        object.__setattr__(self, "init", init)
        if self.sampler is not None:
            drawn = jax.eval_shape(self.sampler, jax.random.key(0))
            if _shapes(drawn) != _shapes(init):
                raise ValueError(
                    f"{where}: the sampler draws {_shapes(drawn)}, which does not match init {_shapes(init)}"
                )
            if not drawn_init:
                check_params(_draw(self.sampler, 0, where), where, "the sampler's draw from key(0)")
        _check_loss(self, where)
        if isinstance(self.loss, WholeBatchLoss) and self.batch_loss is None:
            object.__setattr__(self, "batch_loss", self.loss.batch_loss)
        if self.batch_loss is not None:
            _check_batch_loss(self, where)
            per_example = self.loss.loss if isinstance(self.loss, WholeBatchLoss) else self.loss
            object.__setattr__(self, "loss", WholeBatchLoss(per_example, self.batch_loss))

    @property
    def n_data(self) -> int:
        return int(self.x.shape[0])


@dataclasses.dataclass(frozen=True)
class WholeBatchLoss:
    """A per-example loss and the same loss written for the whole data set (``Problem.batch_loss``).

    Called, it is the per-example loss; the engine uses ``batch_loss`` for the mean over a data set
    larger than ``engine.UNROLL_MAX`` with autodiff. Equal pairs hash equal, so problem instances
    that share both functions share one compiled program.
    """

    loss: Callable[[PyTree, Any, Any], Any]
    batch_loss: Callable[[PyTree, Any, Any], Any]

    def __call__(self, params, x, y):
        return self.loss(params, x, y)


def _check_batch_loss(problem: Problem, where: str) -> None:
    """``batch_loss`` must be a function returning a real floating scalar for the init and the data set."""
    if not callable(problem.batch_loss):
        raise ValueError(
            f"{where}: batch_loss={problem.batch_loss!r} is invalid: expected a function batch_loss(params, x, y)"
        )
    try:
        out = jax.eval_shape(problem.batch_loss, problem.init, problem.x, problem.y)
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(
            f"{where}: its batch_loss failed on the init parameters and the data set: {type(err).__name__}: {err}"
        ) from None
    if getattr(out, "shape", None) != () or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(
            f"{where}: batch_loss(params, x, y) must return a real floating scalar (the mean over examples), "
            f"got {getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}"
        )


def _data(arr, arg: str, where: str) -> np.ndarray:
    """``arr`` as a numpy array of finite real numbers (ints or floats)."""
    if isinstance(arr, np.ma.MaskedArray):
        raise ValueError(
            f"{where}: {arg} is a numpy masked array; masks are not supported: pass the examples to keep "
            "(arr[~arr.mask]) as a plain array"
        )
    arr = np.asarray(arr)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(
            f"{where}: {arg} has dtype {arr.dtype}; data must be finite real numbers (int or float arrays, "
            "not bool, complex or objects)"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: {arg} must be finite numbers (found NaN or inf)")
    return arr


def check_params(tree: PyTree, where: str, what: str = "init") -> PyTree:
    """``tree`` as numpy arrays if every leaf is a finite float array, else a ValueError.

    ``where`` names the problem (``"problem 'mlp'"``), ``what`` the parameters (``"init"``). Bool,
    int and complex leaves, numpy masked arrays and NaN or infinite values are refused. For
    parameters drawn by a sampler too (each draw of ``sweep(..., init=N)``).
    """
    for name, leaf in zip(param_names(tree), jax.tree_util.tree_leaves(tree)):
        if isinstance(leaf, np.ma.MaskedArray):
            raise ValueError(f"{where}: {what} parameter {name!r} is a numpy masked array; pass a plain float array")
    out = _as_numpy(tree)
    for name, leaf in zip(param_names(out), jax.tree_util.tree_leaves(out)):
        if not np.issubdtype(leaf.dtype, np.floating):
            raise ValueError(
                f"{where}: {what} parameter {name!r} has dtype {leaf.dtype}; parameters must be float arrays"
            )
        if not np.all(np.isfinite(leaf)):
            raise ValueError(f"{where}: {what} parameter {name!r} contains NaN or infinite values")
    return out


def _as_numpy(tree: PyTree) -> PyTree:
    out = jax.tree_util.tree_map(np.asarray, tree)
    if isinstance(tree, dict):  # keep the author's key order (tree_map sorts keys)
        out = {k: out[k] for k in tree}
    return out


def _draw(sampler, seed: int, where: str) -> PyTree:
    try:
        return jax.tree_util.tree_map(np.asarray, sampler(jax.random.key(seed)))
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(
            f"{where}: its init sampler failed on jax.random.key({seed}): {type(err).__name__}: {err}"
        ) from None


def _shapes(tree: PyTree):
    return jax.tree_util.tree_map(lambda a: tuple(a.shape), tree)


def _check_loss(problem: Problem, where: str) -> None:
    """The loss must return a real floating scalar for the init and one example (checked abstractly, no FLOPs)."""
    try:
        out = jax.eval_shape(problem.loss, problem.init, problem.x[0], problem.y[0])
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(
            f"{where}: its loss failed on the init parameters and one example "
            f"(x[0] of shape {problem.x.shape[1:]}): {type(err).__name__}: {err}"
        ) from None
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"{where}: loss(params, x_i, y_i) must return a scalar for one example, got "
            f"{getattr(out, 'shape', type(out).__name__)}; reduce over outputs inside the loss, not over examples"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(
            f"{where}: loss(params, x_i, y_i) returns dtype {out.dtype}; it must return a real floating "
            "scalar (float16, float32 or float64), not bool, int or complex"
        )


def param_names(params: PyTree) -> list[str]:
    """Names of the leaves of ``params`` in JAX's flattening order: ``"w"``, ``"layer.W"``, ``"0"``."""
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    return [".".join(_key_str(k) for k in path) or "param" for path, _ in paths]


def _key_str(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)
