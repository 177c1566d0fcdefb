"""Problems: a per-example loss, a small data set and an initial parameter pytree.

A :class:`Problem` is plain data. The engine sums the per-example loss over the data set itself
(term by term for small sets, see ``lrsweep.engine``), so a problem never reduces over examples.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks

PyTree = Any

#: Names the result Dataset uses for its own variables; a parameter may not take them.
RESERVED_NAMES = frozenset({"loss", "outcome", "event_epoch", "lr", "init", "epoch"})


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A supervised problem: ``L(params) = (1/n) * sum_i loss(params, x[i], y[i])``.

    Attributes:
      name: short identifier, used in CLI output and result metadata.
      loss: per-example loss ``loss(params, x_i, y_i) -> scalar``, written with ``jax.numpy``;
        ``x_i = x[i]`` and ``y_i = y[i]`` have the shapes ``x.shape[1:]`` and ``y.shape[1:]``.
        Per example, so that the engine can choose how to sum over the data set.
      x: inputs, shape ``(n, ...)``, finite.
      y: targets, shape ``(n, ...)``, finite.
      init: the initial parameters, a pytree of float arrays (scalars allowed), or a sampler
        ``init(key) -> params`` taking a ``jax.random`` key; a sampler's draw from ``key(0)`` is
        then the default init, and the sampler draws ``sweep(..., init=N, seed=S)``'s N inits.
      min_loss: the smallest value the loss can reach (0 for a problem the model can fit exactly).
        Convergence is measured relative to it (see ``lrsweep.outcomes``).
      description: one line of documentation: the math and the source.
      minimum: the parameters at a known minimum (a pytree like ``init``), or None when there is
        no known minimiser; ``lrsweep.theory`` takes the Hessian there, else at ``init``.
      sampler: ``sampler(key) -> params`` drawing random inits, or None (set from a callable init).

    A problem is checked when it is made: finite data, a loss that returns a scalar for the init
    and one example, and a sampler whose draws look like the init. Errors name the problem.
    """

    name: str
    loss: Callable[[PyTree, Any, Any], Any]
    x: np.ndarray
    y: np.ndarray
    init: PyTree
    min_loss: float = 0.0
    description: str = ""
    minimum: PyTree | None = None
    sampler: Callable[[Any], PyTree] | None = None

    def __post_init__(self):
        where = f"problem {self.name!r}"
        x, y = np.asarray(self.x), np.asarray(self.y)
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"{where}: x and y must share a non-empty leading example axis, "
                f"got x.shape={x.shape} and y.shape={y.shape}"
            )
        for arg, arr in (("x", x), ("y", y)):
            if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: {arg} must be finite numbers (found NaN, inf or non-numbers)")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        if callable(self.init):
            if self.sampler is not None:
                raise ValueError(f"{where}: give a sampler either as init or as sampler, not both")
            object.__setattr__(self, "sampler", self.init)
            object.__setattr__(self, "init", _draw(self.init, 0, where))
        init = _as_numpy(self.init)
        for name, leaf in zip(param_names(init), jax.tree_util.tree_leaves(init)):
            if not np.issubdtype(leaf.dtype, np.floating):
                raise ValueError(f"{where}: parameter {name!r} has dtype {leaf.dtype}; parameters must be float arrays")
            if name in RESERVED_NAMES:
                raise ValueError(f"{where}: parameter name {name!r} is reserved; avoid {sorted(RESERVED_NAMES)}")
        if not jax.tree_util.tree_leaves(init):
            raise ValueError(f"{where}: init has no parameters")
        object.__setattr__(self, "init", init)
        if self.sampler is not None:
            drawn = jax.eval_shape(self.sampler, jax.random.key(0))
            if _shapes(drawn) != _shapes(init):
                raise ValueError(
                    f"{where}: the sampler draws {_shapes(drawn)}, which does not match init {_shapes(init)}"
                )
        _check_loss(self, where)

    @property
    def n_data(self) -> int:
        return int(self.x.shape[0])


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
    """The loss must return a float scalar for the init and one example (checked abstractly, no FLOPs)."""
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


def param_names(params: PyTree) -> list[str]:
    """Names of the leaves of ``params`` in JAX's flattening order: ``"w"``, ``"layer.W"``, ``"0"``."""
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    return [".".join(_key_str(k) for k in path) or "param" for path, _ in paths]


def _key_str(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _linear_loss(params, x, y):
    # One example of the lesson's model y_hat = w * x + b, squared error.
    return (params["w"] * x + params["b"] - y) ** 2


def linear() -> Problem:
    """The lesson's problem: fit ``y = 3x`` with ``y_hat = w * x + b``.

    Data ``x = [1, 2, 3, 4]``, ``y = [3, 6, 9, 12]``; loss ``(1/4) sum_i (w x_i + b - y_i)^2``;
    ``w`` and ``b`` are float32 scalars starting at 0. The Hessian is ``[[15, 5], [5, 2]]``
    (eigenvalues 16.70 and 0.2994), so gradient descent converges for ``lr < 2 / 16.70 = 0.1198``.
    Source: "Modern Computer Vision with PyTorch", chapter 1, "Understanding the impact of learning rate".

    >>> p = linear()
    >>> p.n_data, sorted(p.init)
    (4, ['b', 'w'])
    """
    x = np.array([1.0, 2.0, 3.0, 4.0])
    return Problem(
        name="linear",
        loss=_linear_loss,
        x=x,
        y=3.0 * x,
        init={"w": np.float32(0.0), "b": np.float32(0.0)},
        min_loss=0.0,
        description="the lesson: y_hat = w*x + b fit to y = 3x on x = 1..4, mean squared error",
        minimum={"w": np.float32(3.0), "b": np.float32(0.0)},
    )


def _chapter_net_loss(params, x, y):
    # The notebook's feed_forward for one example: sigmoid hidden layer, linear output, squared
    # error averaged over the output; the sigmoid written as the notebook writes it. The two tiny
    # matrix products are written out as sums of products: under the engine's vmap they fuse into
    # the epoch instead of a dot and a reduction per epoch (3-5x faster on CPU, benchmarks/README.md).
    w1, w2 = params["W1"], params["W2"]
    pre = x[0] * w1[0] + x[1] * w1[1] + params["b1"]  # (3,) = x @ W1 + b1
    hidden = 1 / (1 + jnp.exp(-pre))
    out = hidden[0] * w2[0, 0] + hidden[1] * w2[1, 0] + hidden[2] * w2[2, 0] + params["b2"][0]  # hidden @ W2 + b2
    return (out - y[0]) ** 2  # the mean over the single output


def chapter_net() -> Problem:
    """The chapter's 2-3-1 network: one example ``x = [1, 1]``, target ``y = [0]``.

    ``h = sigmoid(x W1 + b1)`` (3 hidden units), ``y_hat = h W2 + b2``, loss ``(y_hat - y)^2``.
    Parameters ``W1 (2, 3)``, ``b1 (3,)``, ``W2 (3, 1)``, ``b2 (1,)``, float32, initialised with the
    notebook's values (it lists ``W1`` and ``W2`` transposed). Source: "Modern Computer Vision with
    PyTorch", chapter 1, the back-propagation notebook; trained there with the forward-difference
    update at lr 0.01 for 100 epochs.

    >>> p = chapter_net()
    >>> {k: v.shape for k, v in p.init.items()}
    {'W1': (2, 3), 'b1': (3,), 'W2': (3, 1), 'b2': (1,)}
    """
    f32 = lambda a: np.array(a, dtype=np.float32)
    return Problem(
        name="chapter_net",
        loss=_chapter_net_loss,
        x=np.array([[1.0, 1.0]]),
        y=np.array([[0.0]]),
        init={
            "W1": f32([[-0.0053, 0.3793], [-0.5820, -0.5204], [-0.2723, 0.1896]]).T.copy(),
            "b1": f32([-0.0140, 0.5607, -0.0628]),
            "W2": f32([[0.1528, -0.1745, -0.1135]]).T.copy(),
            "b2": f32([-0.5516]),
        },
        min_loss=0.0,
        description="the chapter's 2-3-1 sigmoid network on x = [1, 1], y = 0, squared error",
    )


def _quadratic_loss(params, x, y):
    # x = sqrt(lambda_i) q_i, so mean_i (n / 2) (x_i . p)^2 = (1/2) p^T Q diag(lambda) Q^T p.
    n = x.shape[0]
    return 0.5 * n * jnp.dot(x, params["p"]) ** 2


def quadratic(dim: int = 2, cond: float = 10.0, seed: int = 0) -> Problem:
    """A quadratic bowl ``L(p) = (1/2) p^T H p`` with known eigenvalues.

    ``H = Q diag(lambda) Q^T``: ``lambda`` log-spaced from 1 to ``cond`` (``dim`` of them; a single
    eigenvalue 1 when ``dim == 1``), ``Q`` a random rotation drawn from ``seed``. Gradient descent
    converges for ``lr < 2 / cond``, fastest at ``lr = 2 / (1 + cond)``. The minimum is ``p = 0``;
    the init is ``p = (1, ..., 1)``; the sampler draws ``N(0, 1)``. Written as ``dim`` examples
    ``x_i = sqrt(lambda_i) q_i`` with per-example loss ``(dim / 2) (x_i . p)^2``.

    >>> q = quadratic(dim=3, cond=100.0)
    >>> q.n_data, q.init["p"].shape
    (3, (3,))
    """
    dim, cond = _checks.integer("dim", dim, 1), _checks.real("cond", cond, 1.0)
    lam = np.geomspace(1.0, cond, dim) if dim > 1 else np.array([1.0])
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    x = np.sqrt(lam)[:, None] * q.T  # row i: sqrt(lambda_i) q_i
    return Problem(
        name="quadratic",
        loss=_quadratic_loss,
        x=x,
        y=np.zeros(dim),
        init={"p": np.ones(dim, np.float32)},
        min_loss=0.0,
        description=f"quadratic bowl, dim {dim}, eigenvalues log-spaced from 1 to {cond:g}",
        minimum={"p": np.zeros(dim, np.float32)},
        sampler=lambda key: {"p": jax.random.normal(key, (dim,), jnp.float32)},
    )


def _logistic_loss(params, x, y):
    # Cross-entropy of sigmoid(z) against y in {0, 1}, as softplus(-(2y - 1) z), stable for large |z|.
    z = jnp.dot(x, params["w"]) + params["b"]
    return jnp.logaddexp(0.0, -(2 * y - 1) * z)


def logistic(n: int = 64, dim: int = 2, seed: int = 0) -> Problem:
    """Logistic regression on a small separable synthetic data set.

    ``x ~ N(0, I)`` (``n`` points in ``dim`` dimensions, from ``seed``), labels ``y = [x . u > 0]``
    for a random unit vector ``u``, so the classes are linearly separable: the loss
    ``mean_i log(1 + exp(-(2 y_i - 1)(w . x_i + b)))`` has infimum 0 and no finite minimiser.
    Init ``w = 0, b = 0`` (loss ``log 2``); the sampler draws ``N(0, 1)``.

    >>> p = logistic()
    >>> p.x.shape, sorted(p.init)
    ((64, 2), ['b', 'w'])
    """
    n, dim = _checks.integer("n", n, 1), _checks.integer("dim", dim, 1)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    y = (x @ u > 0).astype(np.float64)
    return Problem(
        name="logistic",
        loss=_logistic_loss,
        x=x,
        y=y,
        init={"w": np.zeros(dim, np.float32), "b": np.float32(0.0)},
        min_loss=0.0,
        description=f"logistic regression, {n} separable points in {dim} dimensions (seed {seed})",
        sampler=lambda key: {
            "w": jax.random.normal(key, (dim,), jnp.float32),
            "b": jax.random.normal(jax.random.fold_in(key, 1), (), jnp.float32),
        },
    )


ACTIVATIONS: dict[str, Callable] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda z: z,
}


def _mlp_loss(activation: str):
    act = ACTIVATIONS[activation]

    def loss(params, x, y):
        # Mean-field scaling: hidden pre-activations W h / sqrt(fan_in), readout W h / width.
        h = x
        hidden = sorted((k for k in params if k != "Wout"), key=lambda k: int(k[1:]))
        for k in hidden:
            h = act(h @ params[k] / np.sqrt(h.shape[-1]))
        out = h @ params["Wout"] / h.shape[-1]
        return jnp.sum((out - y) ** 2)

    return loss


_MLP_LOSSES = {name: _mlp_loss(name) for name in ACTIVATIONS}


def mlp(width: int = 16, depth: int = 1, activation: str = "tanh", seed: int = 0) -> Problem:
    """A small network on synthetic regression data, after Sohl-Dickstein (2024).

    "The boundary of neural network trainability is fractal" (arXiv:2402.06184): ``depth`` hidden
    layers of ``width`` units, no biases, mean-field scaling: ``h_0 = x``,
    ``h_l = act(h_{l-1} W{l-1} / sqrt(width))``, output ``h_depth Wout / width``; squared error.
    Inputs ``x ~ N(0, I_width)`` and targets ``y ~ N(0, 1)`` from ``seed``, with as many points as
    parameters. Weights are drawn ``N(0, 1)`` by the sampler; the default init is its draw from
    ``key(seed)``. Per-group learning rates ``{"W0": ..., "Wout": ...}`` give the paper's 2-D
    trainability maps.

    >>> p = mlp(width=4, depth=1)
    >>> {k: v.shape for k, v in p.init.items()}, p.n_data
    ({'W0': (4, 4), 'Wout': (4, 1)}, 20)
    """
    width, depth = _checks.integer("width", width, 1), _checks.integer("depth", depth, 1)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is invalid: expected one of {list(ACTIVATIONS)}")
    shapes = {f"W{k}": (width, width) for k in range(depth)}
    shapes["Wout"] = (width, 1)
    n_params = sum(a * b for a, b in shapes.values())
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_params, width))
    y = rng.normal(size=(n_params, 1))

    def sampler(key):
        keys = jax.random.split(key, len(shapes))
        return {k: jax.random.normal(kk, s, jnp.float32) for kk, (k, s) in zip(keys, shapes.items())}

    return Problem(
        name="mlp",
        loss=_MLP_LOSSES[activation],
        x=x,
        y=y,
        init=_draw(sampler, seed, "problem 'mlp'"),
        min_loss=0.0,
        description=f"{depth}-hidden-layer {activation} network of width {width}, mean-field, "
        f"{n_params} points (Sohl-Dickstein 2024)",
        sampler=sampler,
    )


#: Built-in problems by name, for the CLI's ``--problem``.
BUILTINS: dict[str, Callable[[], Problem]] = {
    "linear": linear,
    "chapter_net": chapter_net,
    "quadratic": quadratic,
    "logistic": logistic,
    "mlp": mlp,
}


def get(name: str) -> Problem:
    """A built-in problem by name (default arguments), or ``package.module:function`` for your own.

    ``function`` is called with no arguments and must return a :class:`Problem` (or be one).
    """
    if not isinstance(name, str):
        raise ValueError(f"problem={name!r} is invalid: expected a built-in name or 'package.module:function'")
    if ":" in name:
        return _load(name)
    if name not in BUILTINS:
        raise ValueError(
            f"problem={name!r} is not a built-in problem; expected one of {sorted(BUILTINS)} "
            "or 'package.module:function'"
        )
    return BUILTINS[name]()


def factory(name: str) -> Callable[..., Problem]:
    """The function that makes the problem ``name`` (a built-in or ``package.module:function``)."""
    if not isinstance(name, str):
        raise ValueError(f"problem={name!r} is invalid: expected a built-in name or 'package.module:function'")
    if ":" in name:
        obj = _import(name)
        if not callable(obj) or isinstance(obj, Problem):
            raise ValueError(f"problem={name!r} is not a function, so it takes no arguments")
        return obj
    if name not in BUILTINS:
        raise ValueError(
            f"problem={name!r} is not a built-in problem; expected one of {sorted(BUILTINS)} or 'package.module:function'"
        )
    return BUILTINS[name]


def _import(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"problem={spec!r} could not be loaded: {type(err).__name__}: {err}") from None


def _load(spec: str) -> Problem:
    obj = _import(spec)
    attr = spec.partition(":")[2]
    problem = obj if isinstance(obj, Problem) else obj() if callable(obj) else obj
    if not isinstance(problem, Problem):
        raise ValueError(
            f"problem={spec!r} is invalid: {attr} returned {type(problem).__name__}, not an lrsweep.Problem"
        )
    return problem
