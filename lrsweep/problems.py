"""Problems: a per-example loss, a small data set and an initial parameter pytree.

A :class:`Problem` is plain data. The engine sums the per-example loss over the data set itself
(term by term for small sets, see ``lrsweep.engine``), so a problem never reduces over examples.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

import jax

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
      x: inputs, shape ``(n, ...)``.
      y: targets, shape ``(n, ...)``.
      init: the initial parameters, a pytree of float arrays (scalars allowed). A sweep's default
        initialisation is this pytree as a batch of one.
      min_loss: the smallest value the loss can reach (0 for a problem the model can fit exactly).
        Convergence is measured relative to it (see ``lrsweep.outcomes``).
      description: one line of documentation: the math and the source.
      minimum: the parameters at a known minimum (a pytree like ``init``), or None when there is
        no known minimiser; ``lrsweep.theory`` takes the Hessian there, else at ``init``.
    """

    name: str
    loss: Callable[[PyTree, Any, Any], Any]
    x: np.ndarray
    y: np.ndarray
    init: PyTree
    min_loss: float = 0.0
    description: str = ""
    minimum: PyTree | None = None

    def __post_init__(self):
        x, y = np.asarray(self.x), np.asarray(self.y)
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"problem {self.name!r}: x and y must share a non-empty leading example axis, "
                f"got x.shape={x.shape} and y.shape={y.shape}"
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        init = jax.tree_util.tree_map(np.asarray, self.init)
        if isinstance(self.init, dict):  # keep the author's key order (tree_map sorts keys)
            init = {k: init[k] for k in self.init}
        for name, leaf in zip(param_names(init), jax.tree_util.tree_leaves(init)):
            if not np.issubdtype(leaf.dtype, np.floating):
                raise ValueError(
                    f"problem {self.name!r}: parameter {name!r} has dtype {leaf.dtype}; "
                    "parameters must be float arrays"
                )
            if name in RESERVED_NAMES:
                raise ValueError(
                    f"problem {self.name!r}: parameter name {name!r} is reserved; "
                    f"avoid {sorted(RESERVED_NAMES)}"
                )
        object.__setattr__(self, "init", init)

    @property
    def n_data(self) -> int:
        return int(self.x.shape[0])


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


#: Built-in problems by name, for the CLI's ``--problem``.
BUILTINS: dict[str, Callable[[], Problem]] = {"linear": linear}


def get(name: str) -> Problem:
    """Return the built-in problem called ``name``."""
    if name not in BUILTINS:
        raise ValueError(f"problem={name!r} is not a built-in problem; expected one of {sorted(BUILTINS)}")
    return BUILTINS[name]()
