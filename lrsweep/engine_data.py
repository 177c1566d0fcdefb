"""The engine's data beyond the full training set: minibatches and held-out metrics.

Part of the engine (``lrsweep.engine`` calls these inside its traced ``train_one``). ``static`` is
an ``engine.Static`` (not imported: the engine imports this module).

Minibatches (``static.batch_size = B > 0``, ``n`` training examples): an epoch is one pass over
the data in ``n // B`` steps of ``B`` examples each, the last ``n mod B`` examples of each epoch's
order left out of that epoch. Step ``t`` belongs to epoch ``k = t // (n // B)``, whose order is
``permutation(fold_in(key(data_seed), k), n)``; the step takes slot ``t mod (n // B)`` of it. The
order depends on the data seed and the step only, so every config of a chunk shares it (common
random numbers) and no permutation is stored per config.

Held-out metrics (``static.metrics``, ``M`` of them): each is the mean over the ``n_eval``
held-out examples of a per-example function, evaluated before steps ``0, eval_every, 2 eval_every,
...`` and after the last step (:func:`eval_steps`). A summary carries the best value of each
(``(M,)``, memory independent of the number of steps); a trajectory also carries every evaluation
(``(R_eval, M)``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .sums import tree_sum
from .types import BEST_PREFIX


def eval_steps(static: Any) -> np.ndarray:
    """Steps at which the held-out metrics are evaluated: the multiples of ``eval_every`` below
    ``epochs`` (the number of steps), and ``epochs`` (after the last step)."""
    return np.append(np.arange(0, static.epochs, static.eval_every), static.epochs)


def epoch_order(static: Any, data_seed, step, current=None) -> jax.Array:
    """``(n,)``: the example order of step ``step``'s epoch, ``permutation(fold_in(key(data_seed), k), n)``
    for epoch ``k``. Drawn at the epoch's first step (and when there is no ``current`` order);
    otherwise ``current``, the order the scan carries. Drawing once per epoch, not per step, saves a
    sort of the ``n`` examples at every step, which on a small network costs more than the step's
    gradient on a block of configs (measured on the digits MLP: blocks of 8 configs ran at about 60% of
    the speed they reach without the sort)."""
    per_epoch = static.n_data // static.batch_size

    def draw(_):
        return jax.random.permutation(jax.random.fold_in(jax.random.key(data_seed), step // per_epoch), static.n_data)

    if current is None:
        return draw(None)
    # The step is the same for every config: under vmap this stays a branch, taken once per epoch.
    return lax.cond(step % per_epoch == 0, draw, lambda _: current, None)


def minibatch(static: Any, x, y, order, step) -> tuple[jax.Array, jax.Array]:
    """Step ``step``'s minibatch ``(x_b (B, ...), y_b (B, ...))`` of ``x (n, ...)``, ``y (n, ...)``:
    slot ``step mod (n // B)`` of its epoch's ``order`` (:func:`epoch_order`)."""
    per_epoch = static.n_data // static.batch_size
    idx = lax.dynamic_slice_in_dim(order, (step % per_epoch) * static.batch_size, static.batch_size)
    return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)


class HeldOut:
    """One config's held-out evaluation: ``x_eval (n_eval, ...)``, ``y_eval (n_eval, ...)`` in the
    compute dtype. The carried state ``evals`` is ``(best (M,), kept)``: ``kept`` is None for a
    summary and ``(R_eval, M)`` for a trajectory."""

    def __init__(self, static: Any, x_eval, y_eval):
        self.static, self.x_eval, self.y_eval = static, x_eval, y_eval

    def evaluate(self, params) -> jax.Array:
        """``(M,)``: each metric's mean over the held-out set, summed by ``tree_sum`` (an order
        fixed by ``n_eval``, the same in any chunk)."""
        st = self.static
        dtype = st.policy.compute_dtype
        p = jax.tree.map(lambda leaf: jnp.asarray(leaf, dtype), params)
        per_example = [jax.vmap(fn, in_axes=(None, 0, 0))(p, self.x_eval, self.y_eval) for _, fn, _ in st.metrics]
        return jnp.stack([tree_sum(v.astype(dtype)) for v in per_example]) / jnp.asarray(st.n_eval, dtype)

    def better(self, best: jax.Array, values: jax.Array) -> jax.Array:
        """The larger of each maximised metric, the smaller of the others; NaN only where both are."""
        pick = [jnp.fmax if up else jnp.fmin for _, _, up in self.static.metrics]
        return jnp.stack([f(best[i], values[i]) for i, f in enumerate(pick)])

    def start(self, trajectory: bool):
        """The state before any evaluation: NaN best values (and NaN evaluations)."""
        m = len(self.static.metrics)
        dtype = self.static.policy.compute_dtype
        kept = jnp.full((len(eval_steps(self.static)), m), jnp.nan, dtype) if trajectory else None
        return jnp.full((m,), jnp.nan, dtype), kept

    def observe(self, evals, step, params):
        """Evaluate at step ``step``'s parameters (before its update) if ``step`` is a multiple of
        ``eval_every``; a trajectory keeps it at slot ``step // eval_every``."""
        every = self.static.eval_every

        def evaluated(ev):
            best, kept = ev
            values = self.evaluate(params)
            if kept is not None:
                kept = lax.dynamic_update_index_in_dim(kept, values, step // every, 0)
            return self.better(best, values), kept

        # The step is the same for every config: under vmap this stays a branch, taken once per evaluation.
        return lax.cond(step % every == 0, evaluated, lambda ev: ev, evals)

    def finish(self, evals, final) -> dict[str, jax.Array]:
        """The last evaluation (after the last step) and the result's variables: ``<name>`` (the
        last value, or every evaluation for a trajectory) and ``best_<name>``."""
        best, kept = evals
        values = self.evaluate(final)
        best = self.better(best, values)
        kept = values if kept is None else kept.at[-1].set(values)
        out = {}
        for i, (name, _, _) in enumerate(self.static.metrics):
            out[name] = kept[..., i]
            out[BEST_PREFIX + name] = best[i]
        return out
