"""The six settings of the fractal paper's notebook, as problems a map sweeps.

Sohl-Dickstein (2024) draws six maps with one notebook (github.com/Sohl-Dickstein/fractal), each a
choice of its hyperparameters; every one trains :func:`lrsweep.problems.mlp`'s network by gradient
descent and records the full-batch loss before each step:

=============  ===================================================  ==================================
setting        the notebook's choice                                x and y axes (log10)
=============  ===================================================  ==================================
``tanh``       ``nonlinearity='tanh'``, full batch                   input layer lr, output layer lr
``relu``       ``nonlinearity='relu'``                               input layer lr, output layer lr
``identity``   ``nonlinearity='identity'`` (``width`` points)        input layer lr, output layer lr
``minibatch``  ``minibatch_size=16``: the gradient of 16 points      input layer lr, output layer lr
``single``     ``dataset_param_multiple='single_datapoint'``         input layer lr, output layer lr
``paraminit``  ``phase_space='paraminit_vs_lr'``                     offset added to W0, one lr for all
=============  ===================================================  ==================================

How the two settings that are more than a network are written, with the engine's plain parts:

- ``minibatch``: step ``t`` takes the gradient on the 16 points ``randint(keys[t], (16,), 0, n)``,
  ``keys = split(PRNGKey(42), steps)`` (drawn with replacement, int64 as under the notebook's x64
  mode), the same indices for every pixel, and records the loss on all points. A parameter
  ``step`` counts the steps: its own lr group at lr 1 and a gradient of -1 (so gradient descent
  adds 1 to it); the loss's value is the full-batch loss and its gradient (a ``jax.custom_vjp``)
  that of the minibatch ``table[step]``.
- ``paraminit``: the x axis is an offset ``c`` added to every entry of ``W0`` (a scalar parameter
  ``offset`` swept with :func:`lrsweep.init_grid`, dim ``init_offset``, gradient 0), the y axis one
  lr for every layer. The loss is evaluated at ``W0 + c``. The notebook adds ``c`` to the stored
  weights inside each step and keeps the sum, so its ``W0`` moves by ``c`` every step:
  ``W0 <- (W0 + c) - lr * grad L(W0 + c)``. ``offset_mode="every_step"`` (the default, so that maps
  line up with the paper's code and figures) does that: the update is gradient descent plus ``c``
  on ``W0`` (:func:`drift_sgd`). ``offset_mode="init"`` adds ``c`` once, at initialisation, which
  is what "parameter initialisation" means: ``W0`` trains by plain gradient descent from ``W0 + c``.
  Both axes are log10 values, as in the notebook (it draws the offsets with ``logspace`` too).

The draws (``prng``): ``"jax"`` (the default) draws data and weights with the installed JAX's
defaults, which is what the notebook gives when it runs today and what ``lrsweep.problems.mlp()``
gives, so a map is a sweep of that problem and maps made before this option resume. ``"paper"``
draws them with ``jax_threefry_partitionable`` off, JAX's default before 2024 and the one the
paper's published figures were drawn with (the flag changed default after the paper): the same
``PRNGKey(0)`` then gives other data and weights, and only these line windows up with the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _checks, problems
from ..problems._problem import Problem
from ..problems.builtins import _mlp_loss, mlp_batch_loss

SETTINGS = ("tanh", "relu", "identity", "minibatch", "single", "paraminit")
DEFAULT_SETTING = "tanh"
PRNGS = ("jax", "paper")
DEFAULT_PRNG = "jax"
OFFSET_MODES = ("every_step", "init")
DEFAULT_OFFSET_MODE = "every_step"
#: The notebook's minibatch size and the key its per-step minibatch keys are split from.
MINIBATCH_SIZE = 16
MINIBATCH_SEED = 42
#: Data sets of at most this many points are summed term by term by the engine (``sums.UNROLL_MAX``),
#: which does not go through a problem's whole-batch loss; the minibatch setting needs more points.
_UNROLL_MAX = 16
#: Each setting's default window ``(x_range, y_range)`` (log10), where its boundary crosses the map.
WINDOWS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "tanh": ((-1.0, 4.0), (1.5, 3.0)),
    "relu": ((-1.0, 4.0), (1.0, 3.0)),
    "identity": ((-1.0, 4.0), (0.0, 3.0)),
    "minibatch": ((-1.0, 4.0), (1.5, 3.0)),
    "single": ((-1.0, 4.0), (0.0, 4.0)),
    # where the upper edge of the trainable region is ragged: 55% trainable at 32 px, 150 steps
    "paraminit": ((-3.0, 1.5), (1.2, 2.4)),
}
#: The window the notebook's interactive cell opens with, ``mnmx = [-3, 6, -3, 6]`` (x, y; log10).
PAPER_FULL_VIEW = ((-3.0, 6.0), (-3.0, 6.0))
#: ``(x_min, y_max)``: in that window the paper's published tanh map has an untrainable corner at
#: ``x > 5, y < -1.8``, which the paper's draws (``prng="paper"``) reproduce and today's lack.
PAPER_CORNER = (5.0, -1.8)
#: Axis labels of each kind of map (x, y).
LABELS = {
    "lr": ("input layer learning rate (log10)", "output layer learning rate (log10)"),
    "paraminit": ("input layer weight offset (log10)", "learning rate, every layer (log10)"),
}


@dataclasses.dataclass(frozen=True)
class MapProblem:
    """A map made into what a sweep takes: the problem (a :class:`Problem` or a name), the dims of
    its x and y axes as the sweep names them (``lr_<group>``: one group's lr; ``lr``: one lr for
    every parameter; ``init_<name>``: a scalar parameter's initial value; ``opt_<name>``: an
    optimizer hyperparameter), the groups, fixed lrs of other groups and the optimizer."""

    problem: Problem | str
    x_axis: str
    y_axis: str
    groups: dict[str, list[str]] | None = None
    fixed_lr: dict[str, float] = dataclasses.field(default_factory=dict)
    optimizer: Any = "gd"


@contextlib.contextmanager
def draws(prng: str):
    """JAX's random draws as ``prng`` says: ``"jax"`` today's defaults, ``"paper"`` the old threefry."""
    prng = _checks.choice("prng", prng, PRNGS)
    if prng == "paper":
        with jax.threefry_partitionable(False):
            yield
    else:
        yield


def minibatch_table(steps: int, n_data: int, prng: str = DEFAULT_PRNG) -> np.ndarray:
    """``(steps, 16)`` int32: the notebook's minibatch indices, ``randint(split(PRNGKey(42), steps)[t],
    (16,), 0, n_data)`` drawn as int64 under x64 mode (the notebook's), one row per step."""
    with draws(prng), jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(MINIBATCH_SEED), steps)
        rows = [np.asarray(jax.random.randint(k, (MINIBATCH_SIZE,), 0, n_data)) for k in keys]
    return np.stack(rows).astype(np.int32)


def drift_sgd(learning_rate, drift_param: str = "W0", drift_by: str = "offset") -> optax.GradientTransformation:
    """Gradient descent that also moves ``params[drift_param]`` by ``params[drift_by]`` every step:
    ``p <- p - lr * g``, and ``W0 <- W0 + (c - lr * g)`` (the notebook's paraminit step, with its
    two roundings ``(W0 + c) - lr * g`` written as one update)."""

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        assert params is not None, "drift_sgd needs the parameters"
        out = dict(jax.tree.map(lambda g: g * -learning_rate, updates))
        # The engine adds an update to the parameter once; the notebook rounds twice, (W0 + c) and
        # then - lr * g. The update that lands on the notebook's result: target - W0, which the
        # engine's W0 + (target - W0) gives back exactly whenever |target - W0| <= |target|.
        w = params[drift_param]
        out[drift_param] = ((w + params[drift_by]) + out[drift_param]) - w
        return out, state

    return optax.GradientTransformation(init, update)


def _minibatch_loss(whole, table: jax.Array):
    """A whole-batch loss whose value is ``whole`` on all points and whose gradient is ``whole``'s on
    the minibatch ``table[step]`` (and -1 for ``step``, so that gradient descent at lr 1 counts)."""

    def net(params):
        return {k: v for k, v in params.items() if k != "step"}

    @jax.custom_vjp
    def loss(params, x, y):
        return whole(net(params), x, y)

    def fwd(params, x, y):
        return whole(net(params), x, y), (params, x, y)

    def bwd(res, ct):
        params, x, y = res
        k = jnp.clip(jax.lax.stop_gradient(params["step"]).astype(jnp.int32), 0, table.shape[0] - 1)
        idx = table[k]
        g = jax.grad(whole)(net(params), x[idx], y[idx])
        g = {name: gk * ct for name, gk in g.items()}
        g["step"] = -ct * jnp.ones_like(params["step"])
        return g, jnp.zeros_like(x), jnp.zeros_like(y)

    loss.defvjp(fwd, bwd)
    return loss


def _offset_loss(fn):
    """``fn`` evaluated at ``W0 + offset`` (the offset a constant: its gradient is 0)."""

    def loss(params, x, y):
        net = {k: v for k, v in params.items() if k != "offset"}
        net["W0"] = net["W0"] + jax.lax.stop_gradient(params["offset"])
        return fn(net, x, y)

    return loss


def _per_example_minibatch(fn):
    def loss(params, x, y):
        return fn({k: v for k, v in params.items() if k != "step"}, x, y)

    return loss


def setting_problem(
    setting: str = DEFAULT_SETTING,
    *,
    steps: int,
    precision: str = "float64",
    width: int = 16,
    depth: int = 1,
    n_data: int | None = None,
    target_dim: int = 1,
    prng: str = DEFAULT_PRNG,
    offset_mode: str = DEFAULT_OFFSET_MODE,
) -> MapProblem:
    """The map of ``setting`` (module docstring) as a :class:`MapProblem`.

    ``width``, ``depth`` (hidden layers), ``n_data`` (default: the notebook's, as many points as
    parameters per output, ``width`` for identity, 1 for single) and ``target_dim`` as
    :func:`lrsweep.problems.mlp`. Float64 differentiates the whole-batch loss by autodiff, as the
    notebook does (the same rounding); float32 uses the hand-written gradient (faster).
    """
    setting = _checks.choice("setting", setting, SETTINGS)
    offset_mode = _checks.choice("offset_mode", offset_mode, OFFSET_MODES)
    activation = {"relu": "relu", "identity": "identity"}.get(setting, "tanh")
    if setting == "single":
        if n_data not in (None, 1):
            raise ValueError(f"n_data={n_data!r} is invalid for setting 'single': it trains on one point (1)")
        n_data = 1
    with draws(prng):
        p = problems.mlp(width, depth, activation, n_data=n_data, target_dim=target_dim)
    if setting == "minibatch" and p.n_data <= _UNROLL_MAX:
        raise ValueError(
            f"n_data={p.n_data!r} is invalid for setting 'minibatch': expected more than {_UNROLL_MAX} points"
        )
    per_example = getattr(p.loss, "loss", p.loss)
    gain = float(problems.builtins.DEFAULT_GAINS[activation])
    whole = mlp_batch_loss(activation, gain) if precision == "float32" else _mlp_loss(activation, gain)
    layers = [f"W{k}" for k in range(depth + 1)]
    if depth == 1:
        groups, gx, gy = None, "lr_W0", "lr_W1"
    else:  # the notebook alternates its two rates over layers
        groups, gx, gy = {"even": layers[0::2], "odd": layers[1::2]}, "lr_even", "lr_odd"
    if setting == "minibatch":
        table = jnp.asarray(minibatch_table(steps, p.n_data, prng))
        init = {**p.init, "step": np.zeros((), np.float64)}
        loss, batch = _per_example_minibatch(per_example), _minibatch_loss(whole, table)
        groups = {**(groups or {"W0": ["W0"], "W1": ["W1"]}), "step": ["step"]}
        problem = dataclasses.replace(p, name="mlp_minibatch", loss=loss, batch_loss=batch, init=init, sampler=None)
        return MapProblem(problem, gx, gy, groups, {"step": 1.0})
    if setting == "paraminit":
        init = {**p.init, "offset": np.zeros((), np.float64)}
        problem = dataclasses.replace(
            p,
            name="mlp_paraminit",
            loss=_offset_loss(per_example),
            batch_loss=_offset_loss(whole),
            init=init,
            sampler=None,
        )
        optimizer = drift_sgd if offset_mode == "every_step" else "gd"
        return MapProblem(problem, "init_offset", "lr", optimizer=optimizer)
    problem = dataclasses.replace(p, loss=per_example, batch_loss=whole)
    return MapProblem(problem, gx, gy, groups)
