"""The engine: the only module that calls ``jit``, ``vmap`` and ``scan``.

One config is (learning rates, initial parameters). ``train_one`` trains one config for ``epochs``
epochs with ``lax.scan``; ``run_chunk = jit(vmap(train_one))`` trains a chunk of ``C`` configs at
once. Everything static (the problem's loss function, the gradient estimator, the precision policy,
the optimizer, the number of epochs, what to record) is a hashable :class:`Static`; everything swept
(learning rates, initial parameters) and the data are array arguments, so new values never
recompile.

Shapes (``C`` configs in a chunk, ``G`` learning-rate groups, ``E`` epochs, ``n`` examples):

- ``lr``: ``(C, G)``, compute dtype; parameter leaf ``k`` uses ``lr[:, static.leaf_group[k]]``;
- ``params0``: pytree whose leaves are ``(C, *leaf_shape)``, parameter dtype;
- ``x``, ``y``: ``(n, ...)``, compute dtype, shared by all configs (never copied per config);
- record ``"summary"``: ``loss (C,)``, params ``(C, *leaf_shape)``, ``outcome (C,) int8``,
  ``event_epoch (C,) int32``;
- record ``"trajectory"``: ``loss (C, E + 1)``, params ``(C, E + 1, *leaf_shape)``, outcome and
  event as for a summary. Epoch 0 is the state before training.

One epoch on ``L(p) = (1/n) sum_i loss(p, x_i, y_i)``::

    L_e, g = estimate(L, p_e)                    # autodiff, forward or central difference
    p_{e+1} = p_e - lr * g                       # "gd": the lesson, in the compute dtype
    u, s = tx.update(g, s, p_e); p_{e+1} = p_e + u   # an optax optimizer, state s per config

and the result is stored in the parameter dtype.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import chex
import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

from . import gradients, optimizers, outcomes
from .optimizers import Optimizer
from .precision import Policy

PyTree = Any

#: Data sets up to this size are summed term by term in the traced program (no XLA reduction
#: over a tiny axis inside the epoch loop: about 10x faster on CPU, see DESIGN.md); larger ones
#: go through ``vmap`` and ``sum``, which keeps the compiled program small.
UNROLL_MAX = 16
#: Epochs per iteration of the compiled loop. XLA:CPU fuses the elementwise work of consecutive
#: epochs, so a config's state stays in registers across them; 4 is about 2x faster than 1 on the
#: lesson, and larger values cost compile time for no gain (benchmarks/).
UNROLL_SCAN = 4


@dataclasses.dataclass(frozen=True)
class Static:
    """What the compiled program depends on. Hashable; equal ``Static`` never retrace.

    Attributes:
      loss: the problem's per-example loss (hashed by identity).
      n_data: number of examples.
      grad: gradient estimator name (``lrsweep.gradients``).
      policy: precision policy (``lrsweep.precision``).
      epochs: number of epochs ``E >= 1``.
      record: ``"summary"``, ``"trajectory"`` (or ``"trace"`` for ``trace_run``).
      window: epochs without a parameter change that make a run "stuck" (``lrsweep.outcomes``).
      optimizer: ``lrsweep.optimizers.Optimizer`` (default: the lesson's gradient descent).
      groups: names of the learning-rate groups, ``G`` of them.
      leaf_group: for each parameter leaf (JAX flattening order), the index of its group.
    """

    loss: Callable
    n_data: int
    grad: str
    policy: Policy
    epochs: int
    record: str
    window: int
    optimizer: Optimizer = optimizers.get("gd")
    groups: tuple[str, ...] = ("lr",)
    leaf_group: tuple[int, ...] | None = None  # None: every leaf in group 0


def pairwise_sum(terms: list) -> jax.Array:
    """Sum a list of scalars in exactly numpy's order (``pairwise_sum`` in numpy's reduction loops).

    Fewer than 8 terms are added left to right; up to 128 through 8 interleaved accumulators;
    more are split in halves. Matching the order keeps the ``"mixed"`` policy bit-exact with numpy.
    """
    n = len(terms)
    if n < 8:
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total
    if n <= 128:
        acc = list(terms[:8])
        stop = n - n % 8
        for i in range(8, stop, 8):
            acc = [a + t for a, t in zip(acc, terms[i : i + 8])]
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for t in terms[stop:]:
            total = total + t
        return total
    half = n // 2
    half -= half % 8
    return pairwise_sum(terms[:half]) + pairwise_sum(terms[half:])


def _mean_loss(static: Static, x, y, zero) -> Callable[[PyTree], jax.Array]:
    """``L(params) = (1/n) sum_i loss(params, x_i, y_i)`` in the compute dtype."""
    dtype = static.policy.compute_dtype
    # `separate` rounds a value on its own before it joins a sum. XLA:CPU otherwise contracts the
    # product inside a term (a square, lr * g) with the next addition into one fused multiply-add,
    # which rounds once where numpy rounds twice. Adding a zero known only at run time cannot be
    # folded away: it becomes fma(a, b, 0) = round(a * b). Only exact policies pay for it.
    separate = (lambda v: v + zero) if static.policy.exact else (lambda v: v)

    def mean_loss(params):
        p = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype), params)
        if static.n_data <= UNROLL_MAX:
            terms = [separate(static.loss(p, x[i], y[i])) for i in range(static.n_data)]
            total = pairwise_sum(terms)
        else:
            total = jnp.sum(jax.vmap(static.loss, in_axes=(None, 0, 0))(p, x, y))
        return total / static.n_data

    return mean_loss


def _leaf_lrs(static: Static, lr, params: PyTree) -> PyTree:
    """The learning rate of each parameter leaf: a pytree like ``params`` of scalars from ``lr (G,)``."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    groups = static.leaf_group or (0,) * len(leaves)
    return treedef.unflatten([lr[g] for g in groups])


def _labels(static: Static, params: PyTree) -> PyTree | None:
    """Group names per leaf, for ``optax.partition``; None with a single group."""
    if len(static.groups) == 1:
        return None
    treedef = jax.tree_util.tree_structure(params)
    return treedef.unflatten([static.groups[g] for g in static.leaf_group])


def _epoch_fn(static: Static, lr, x, y, h, zero):
    """One epoch for one config, and how to start it.

    Returns ``(init, epoch, mean_loss)``: ``init(params) -> opt_state`` and
    ``epoch(params, opt_state) -> (loss, grad, probes, new_params, new_opt_state)``.
    """
    policy = static.policy
    mean_loss = _mean_loss(static, x, y, zero)
    separate = (lambda v: v + zero) if policy.exact else (lambda v: v)
    as_compute = lambda tree: jax.tree_util.tree_map(lambda p: p.astype(policy.compute_dtype), tree)  # noqa: E731
    as_param = lambda tree: jax.tree_util.tree_map(lambda p: p.astype(policy.param_dtype), tree)  # noqa: E731

    if static.optimizer.is_gd:

        def init(params):
            return ()

        def update(params, grad, state):
            lrs = _leaf_lrs(static, lr, params)
            step = lambda p, g, r: p.astype(policy.compute_dtype) - separate(g * r)  # noqa: E731
            return as_param(jax.tree_util.tree_map(step, params, grad, lrs)), state

    else:
        # Building the optax transformation is plain Python (it closes over this config's traced
        # lr), so init and update each build their own identical copy.
        def transformation(params):
            return static.optimizer.transformation(lr, _labels(static, params), static.groups)

        def init(params):
            return transformation(params).init(as_compute(params))

        def update(params, grad, state):
            p = as_compute(params)
            updates, state = transformation(params).update(grad, state, p)
            return as_param(jax.tree_util.tree_map(lambda a, u: a + u.astype(a.dtype), p, updates)), state

    def epoch(params, state):
        loss, grad, probes = gradients.estimate(static.grad, mean_loss, params, h)
        new, state = update(params, grad, state)
        return loss, grad, probes, new, state

    return init, epoch, mean_loss


def _changed(old: PyTree, new: PyTree) -> jax.Array:
    diffs = [jnp.any(a != b) for a, b in zip(jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new))]
    return functools.reduce(jnp.logical_or, diffs)


def train_one(static: Static, lr, params0, x, y, h, zero, rtol, min_loss) -> dict:
    """Train one config (``lr (G,)``) for ``static.epochs`` epochs; outputs as in the module docstring."""
    epochs = static.epochs
    init, epoch, mean_loss = _epoch_fn(static, lr, x, y, h, zero)
    loss0 = mean_loss(params0)
    tol = min_loss + rtol * (loss0 - min_loss)

    def step(carry, e):
        params, state, track = carry
        loss, _, _, new, state = epoch(params, state)
        track = outcomes.observe(track, e, loss, loss0, tol)
        track = outcomes.moved(track, e + 1, _changed(params, new))
        out = (loss, new) if static.record == "trajectory" else None
        return (new, state, track), out

    carry0 = (params0, init(params0), outcomes.start(loss0, tol))
    (final, _, track), out = lax.scan(step, carry0, jnp.arange(epochs, dtype=jnp.int32), unroll=UNROLL_SCAN)
    loss_final = mean_loss(final)
    track = outcomes.observe(track, epochs, loss_final, loss0, tol)
    outcome, event = outcomes.classify(track, epochs, static.window, loss_final, tol)
    result = {"outcome": outcome, "event_epoch": event}
    if static.record == "trajectory":
        losses, params_seq = out
        result["loss"] = jnp.concatenate([losses, loss_final[None]])
        result["params"] = jax.tree_util.tree_map(
            lambda p0, seq: jnp.concatenate([p0[None], seq]), params0, params_seq
        )
    else:
        result["loss"] = loss_final
        result["params"] = final
    return result


@functools.partial(jax.jit, static_argnames=("static",))
def run_chunk(lr, params0, x, y, h, zero, rtol, min_loss, *, static: Static) -> dict:
    """``jit(vmap(train_one))`` over a chunk of ``C`` configs; see the module docstring for shapes."""
    c = lr.shape[0]
    dims = chex.Dimensions(C=c, E=static.epochs + 1, G=len(static.groups))
    chex.assert_shape(lr, dims["CG"])
    chex.assert_tree_shape_prefix(params0, dims["C"])
    chex.assert_shape([x, y], (static.n_data, ...))
    train = functools.partial(train_one, static)
    out = jax.vmap(train, in_axes=(0, 0, None, None, None, None, None, None))(
        lr, params0, x, y, h, zero, rtol, min_loss
    )
    prefix = dims["C"] if static.record == "summary" else dims["CE"]
    chex.assert_shape([out["outcome"], out["event_epoch"]], dims["C"])
    chex.assert_shape(out["loss"], prefix)
    chex.assert_tree_shape_prefix(out["params"], prefix)
    return out


@functools.partial(jax.jit, static_argnames=("static",))
def trace_run(lr, params0, x, y, h, zero, *, static: Static) -> dict:
    """Every intermediate of every epoch for one config (``lr (G,)``): the lesson's per-epoch table.

    Returns a dict of arrays with a leading epoch axis ``(E, ...)``: ``params`` (before the
    update), ``loss``, ``grad``, the estimator's probes (``loss_plus``, ``loss_minus``) and
    ``updated`` (the parameters after the update).
    """
    init, epoch, _ = _epoch_fn(static, lr, x, y, h, zero)

    def step(carry, _):
        params, state = carry
        loss, grad, probes, new, state = epoch(params, state)
        return (new, state), {"params": params, "loss": loss, "grad": grad, "updated": new, **probes}

    _, rows = lax.scan(step, (params0, init(params0)), None, length=static.epochs)
    chex.assert_tree_shape_prefix(rows, (static.epochs,))
    return rows


def loss_of(problem, policy: Policy) -> Callable[[PyTree], jax.Array]:
    """``L(params) = (1/n) sum_i loss(params, x_i, y_i)`` exactly as the engine computes it.

    For analysis code (theory, figures). Call it, and the function it returns, inside
    ``policy.context()`` so that float64 policies have x64 on.
    """
    static = Static(problem.loss, problem.n_data, "autodiff", policy, 1, "summary", 1)
    x, y = as_compute(static, problem.x, problem.y)
    return _mean_loss(static, jnp.asarray(x), jnp.asarray(y), jnp.zeros((), policy.compute_dtype))


def sample_inits(sampler: Callable, seed: int, n: int) -> PyTree:
    """``n`` draws of ``sampler(key)`` from keys split off ``jax.random.key(seed)``; leaves ``(n, ...)``."""
    keys = jax.random.split(jax.random.key(seed), n)
    return jax.jit(jax.vmap(sampler))(keys)


def pad_to(n: int, chunk: int) -> int:
    """Smallest multiple of ``chunk`` that holds ``n`` configs."""
    return -(-n // chunk) * chunk


def as_compute(static: Static, *arrays) -> list[np.ndarray]:
    """Cast numpy inputs to the compute dtype (host side, before they reach the jitted program)."""
    return [np.asarray(a, dtype=static.policy.compute_dtype) for a in arrays]
