"""The :class:`Problem` type, the checks it runs when it is made, and the factory mark.

A :class:`Problem` is plain data. The engine sums the per-example loss over the data set itself
(term by term for small sets, see ``lrsweep.engine``), so a problem never reduces over examples.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from ..types import BEST_PREFIX, EVAL_LOSS, RESULT_DIMS, RESULT_VARIABLES, STORE_ARRAYS

PyTree = Any

#: Names a result already uses (variables, dims, a store's own arrays, the held-out loss and its
#: best value): no parameter may take them. Derived from the one list in ``lrsweep.types``.
RESERVED_NAMES = frozenset(RESULT_VARIABLES + RESULT_DIMS + STORE_ARRAYS + (EVAL_LOSS, BEST_PREFIX + EVAL_LOSS))

#: Metric names maximised when given as a plain function (``Problem.metrics``); any other name is minimised
#: unless it is given as ``Metric(fn, maximize=True)``.
MAXIMIZED_METRICS = frozenset({"accuracy", "acc", "top1", "top5", "f1", "precision", "recall", "auc", "r2"})


class Metric(NamedTuple):
    """A held-out metric: a per-example function and whether larger is better.

    ``fn(params, x_i, y_i) -> scalar`` is averaged over the evaluation set, as the loss is over the
    training set (accuracy per example is ``1.0`` if the prediction is right, else ``0.0``).
    """

    fn: Callable[[PyTree, Any, Any], Any]
    maximize: bool = False


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
      x_eval, y_eval: optional held-out data, shaped like ``x`` and ``y`` past the example axis;
        with them every sweep also reports ``eval_loss`` (the loss averaged over them) and each of
        ``metrics``.
      metrics: held-out metrics by name, each a per-example function ``fn(params, x_i, y_i) ->
        scalar`` averaged over the evaluation set, or a :class:`Metric` that says whether larger is
        better. A plain function is maximised if its name is in ``MAXIMIZED_METRICS`` (such as
        ``"accuracy"``) and minimised otherwise. Needs ``x_eval`` and ``y_eval``.
      batch_loss: optional, the same loss written for the whole data set,
        ``batch_loss(params, x, y) -> L(params)`` (the mean over examples), for data sets larger than
        ``sums.UNROLL_MAX`` trained with autodiff: a network whose first layer is ``x @ W`` then runs
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
    x_eval: np.ndarray | None = None
    y_eval: np.ndarray | None = None
    metrics: Mapping[str, Callable | Metric] = dataclasses.field(default_factory=dict)

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
        # A sampler is a callable leaf; a callable pytree of arrays (an equinox module) is parameters.
        leaves = jax.tree.leaves(self.init)
        drawn_init = callable(self.init) and len(leaves) == 1 and leaves[0] is self.init
        if drawn_init:
            if self.sampler is not None:
                raise ValueError(f"{where}: give a sampler either as init or as sampler, not both")
            object.__setattr__(self, "sampler", self.init)
            object.__setattr__(self, "init", _draw(self.init, 0, where))
        init = check_params(self.init, where, "init")
        if not jax.tree.leaves(init):
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
        _check_eval(self, where)

    @property
    def n_data(self) -> int:
        return int(self.x.shape[0])

    @property
    def has_eval(self) -> bool:
        """Whether the problem carries held-out data (``x_eval``, ``y_eval``)."""
        return self.x_eval is not None

    def metric_fns(self) -> dict[str, Metric]:
        """Every held-out metric, ``eval_loss`` first, as :class:`Metric` (empty without eval data).

        ``eval_loss`` is the training loss averaged over the evaluation set (minimised); the others
        are ``metrics`` in their given order.
        """
        if not self.has_eval:
            return {}
        given = cast("Mapping[str, Metric]", self.metrics)  # made Metric when the problem was checked
        return {EVAL_LOSS: Metric(self.loss, False), **given}


@dataclasses.dataclass(frozen=True)
class WholeBatchLoss:
    """A per-example loss and the same loss written for the whole data set (``Problem.batch_loss``).

    Called, it is the per-example loss; the engine uses ``batch_loss`` for the mean over a data set
    larger than ``sums.UNROLL_MAX`` with autodiff. Equal pairs hash equal, so problem instances
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
    _check_scalar(
        problem.batch_loss,
        (problem.init, problem.x, problem.y),
        f"{where}: its batch_loss failed on the init parameters and the data set",
        f"{where}: batch_loss(params, x, y) must return a real floating scalar (the mean over examples)",
    )


def _check_scalar(fn: Callable, args: tuple, failed: str, must: str, hint: str = "") -> None:
    """``fn(*args)`` must return a real floating scalar (checked abstractly, no FLOPs); else a one-line
    ValueError: ``failed: <error>`` when the call fails, ``must, got <shape> <dtype><hint>`` otherwise."""
    try:
        out = jax.eval_shape(fn, *args)
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(f"{failed}: {type(err).__name__}: {err}") from None
    if getattr(out, "shape", None) != () or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"{must}, got {getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}{hint}")


def _check_eval(problem: Problem, where: str) -> None:
    """Held-out data like the training data, and metrics that return a real floating scalar per example."""
    if (problem.x_eval is None) != (problem.y_eval is None):
        raise ValueError(f"{where}: give x_eval and y_eval together (one of them is None)")
    if not isinstance(problem.metrics, Mapping):
        raise ValueError(f"{where}: metrics={problem.metrics!r} is invalid: expected a dict {{name: fn}}")
    metrics = {}
    for name, m in problem.metrics.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}: metric name {name!r} is invalid: expected a Python identifier")
        if name == EVAL_LOSS or name in RESERVED_NAMES or name.startswith(BEST_PREFIX):
            raise ValueError(
                f"{where}: metric name {name!r} is reserved; avoid {EVAL_LOSS!r}, names starting with 'best_' "
                f"and {sorted(RESERVED_NAMES)}"
            )
        taken = [v for v in (name, BEST_PREFIX + name) if v in param_names(problem.init)]
        if taken:
            raise ValueError(
                f"{where}: metric name {name!r} is invalid: the result would name it and {taken[0]!r} "
                f"as a parameter already does; rename the metric or the parameter"
            )
        if isinstance(m, Metric):
            fn, maximize = m
        elif callable(m):
            fn, maximize = m, name in MAXIMIZED_METRICS
        else:
            raise ValueError(
                f"{where}: metrics[{name!r}]={m!r} is invalid: expected a function fn(params, x_i, y_i) or a Metric"
            )
        if not callable(fn) or not isinstance(maximize, bool):
            raise ValueError(f"{where}: metrics[{name!r}]={m!r} is invalid: expected Metric(fn, maximize=bool)")
        metrics[name] = Metric(fn, maximize)
    object.__setattr__(problem, "metrics", metrics)
    if problem.x_eval is None:
        if metrics:
            raise ValueError(f"{where}: metrics={sorted(metrics)} need held-out data: give x_eval and y_eval")
        return
    x_eval, y_eval = _data(problem.x_eval, "x_eval", where), _data(problem.y_eval, "y_eval", where)
    if x_eval.ndim < 1 or y_eval.ndim < 1 or x_eval.shape[0] != y_eval.shape[0] or x_eval.shape[0] == 0:
        raise ValueError(
            f"{where}: x_eval and y_eval must share a non-empty leading example axis, "
            f"got x_eval.shape={x_eval.shape} and y_eval.shape={y_eval.shape}"
        )
    for arg, held, train in (("x_eval", x_eval, problem.x), ("y_eval", y_eval, problem.y)):
        if held.shape[1:] != train.shape[1:]:
            raise ValueError(
                f"{where}: {arg}.shape={held.shape} is invalid: each example must have the training data's "
                f"shape {train.shape[1:]}"
            )
    object.__setattr__(problem, "x_eval", x_eval)
    object.__setattr__(problem, "y_eval", y_eval)
    for name, m in problem.metric_fns().items():
        _check_scalar(
            m.fn,
            (problem.init, x_eval[0], y_eval[0]),
            f"{where}: metric {name!r} failed on the init parameters and one held-out example",
            f"{where}: metric {name!r} must return a real floating scalar for one example",
            " (cast a bool with .astype(jnp.float32))",
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
    for name, leaf in zip(param_names(tree), jax.tree.leaves(tree)):
        if isinstance(leaf, np.ma.MaskedArray):
            raise ValueError(f"{where}: {what} parameter {name!r} is a numpy masked array; pass a plain float array")
    out = _as_numpy(tree)
    for name, leaf in zip(param_names(out), jax.tree.leaves(out)):
        if not np.issubdtype(leaf.dtype, np.floating):
            raise ValueError(
                f"{where}: {what} parameter {name!r} has dtype {leaf.dtype}; parameters must be float arrays"
            )
        if not np.all(np.isfinite(leaf)):
            raise ValueError(f"{where}: {what} parameter {name!r} contains NaN or infinite values")
    return out


def _as_numpy(tree: PyTree) -> PyTree:
    out = jax.tree.map(np.asarray, tree)
    if isinstance(tree, dict):  # keep the author's key order (tree_map sorts keys)
        out = {k: out[k] for k in tree}
    return out


def _draw(sampler, seed: int, where: str) -> PyTree:
    try:
        return jax.tree.map(np.asarray, sampler(jax.random.key(seed)))
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(
            f"{where}: its init sampler failed on jax.random.key({seed}): {type(err).__name__}: {err}"
        ) from None


def _shapes(tree: PyTree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


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
    paths = jax.tree.flatten_with_path(params)[0]
    return [".".join(_key_str(k) for k in path) or "param" for path, _ in paths]


def _key_str(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)
