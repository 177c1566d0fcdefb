"""The engine's per-example path: training written for a block of configs, for the fused kernel.

``engine.train_one`` is written for one config and vmapped over a chunk; :func:`train_block` is the
same training written for a block of ``B`` configs on per-example terms, which is what the
per-example fused kernel (``lrsweep.kernels.per_example``) runs on each block: a config's state is
a few ``(B,)`` vectors per parameter element, and each epoch adds up the examples' terms
elementwise, so no array with an example or epoch axis is formed. It is part of the engine (its
vmap and fori_loop are the engine's); ``engine.run_chunk`` picks it (``kernel_paths.kernel_path``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from . import gradients, outcomes
from .static import Static, optimizer_fns
from .sums import UNROLL_MAX, pairwise_sum
from .types import ChunkResult, PyTree


def _example_loss(static: Static, zero, params: PyTree, x_i, y_i) -> jax.Array:
    """One config's loss on one example, ``l_i(p) = loss(p, x_i, y_i)``, in the compute dtype:
    a term of ``_mean_loss``'s sum, rounded as it rounds its terms."""
    dtype = static.policy.compute_dtype
    value = static.loss(jax.tree.map(lambda leaf: jnp.asarray(leaf, dtype), params), x_i, y_i)
    # As _mean_loss: an exact policy rounds each term on its own before it joins the sum.
    return value + zero if static.policy.exact and static.n_data <= UNROLL_MAX else value


def _sum_examples(terms: list) -> PyTree:
    """Sum like pytrees (one per example) elementwise, in ``_mean_loss``'s order over examples:
    numpy's pairwise order for up to ``UNROLL_MAX`` of them, ``tree_sum``'s halving beyond."""
    if len(terms) <= UNROLL_MAX:
        return jax.tree.map(lambda *values: pairwise_sum(list(values)), *terms)
    while len(terms) > 1:
        half = len(terms) // 2
        head = [jax.tree.map(jnp.add, a, b) for a, b in zip(terms[:half], terms[half : 2 * half])]
        terms = head + terms[2 * half :]
    return terms[0]


def _block_estimate(static: Static, example: Callable, h, zero, params: PyTree, *, with_grad: bool = True):
    """``(L, grad)`` for a block of ``B`` configs, from per-example terms.

    ``params`` leaves ``(B, *leaf_shape)``; ``example(i) -> (x_i, y_i)``. Returns ``L (B,)`` and
    ``grad`` (leaves ``(B, *leaf_shape)``, compute dtype; None without ``with_grad``), where
    ``L = (1/n) sum_i l_i(p)`` summed in the engine's order (``_sum_examples``) and::

        autodiff:  grad = grad L, by reverse mode through that sum
        forward:   grad_j = ((1/n) sum_i l_i(p + h e_j) - L) / h
        central:   grad_j = ((1/n) sum_i l_i(p + h e_j) - (1/n) sum_i l_i(p - h e_j)) / (2 h)

    the arithmetic of ``gradients.estimate`` on the engine's mean loss, term for term. Each
    example's terms (its loss, its nudged losses, its share of the backward pass) are computed
    elementwise on the block's ``(B,)`` vectors and added up: no array with an example axis is
    formed. The finite differences go example by example, each adding its loss at ``p`` and at
    every nudged point to one running sum per point.
    """
    n = static.n_data
    term = functools.partial(_example_loss, static, zero)
    examples = [example(i) for i in range(n)]

    def mean(params):  # one config: the engine's mean loss, term by term
        return _sum_examples([term(params, x_i, y_i) for x_i, y_i in examples]) / n

    if not with_grad:
        return jax.vmap(mean)(params), None
    if static.grad == "autodiff":
        dtype = static.policy.compute_dtype  # differentiate in it, as gradients.estimate does
        in_compute = lambda tree: jax.tree.map(lambda leaf: leaf.astype(dtype), tree)
        return jax.vmap(lambda p: jax.value_and_grad(mean)(in_compute(p)))(params)

    def terms(params, x_i, y_i):  # one config, one example: l_i(p) and l_i at the nudged points
        loss_i = lambda p: term(p, x_i, y_i)
        h_param = jnp.asarray(h, jax.tree.leaves(params)[0].dtype)  # nudged in the parameter dtype
        small = gradients.n_elements(params) <= gradients.UNROLL_PARAMS
        probe = gradients._probe_unrolled if small else gradients._probe_mapped  # as gradients.estimate
        nudged = {"plus": probe(loss_i, params, h_param)}
        if static.grad == "central":
            nudged["minus"] = probe(loss_i, params, -h_param)
        return loss_i(params), nudged

    by_example = [jax.vmap(terms, in_axes=(0, None, None))(params, x_i, y_i) for x_i, y_i in examples]
    loss = _sum_examples([value for value, _ in by_example]) / n
    sums = _sum_examples([nudged for _, nudged in by_example])
    h_loss = jnp.asarray(h, loss.dtype)

    def gradient(value, sums):  # one config: scalars, so L broadcasts against every leaf
        mean_at = lambda name: jax.tree.map(lambda s: s / n, sums[name])
        if static.grad == "forward":
            return jax.tree.map(lambda lp: (lp - value) / h_loss, mean_at("plus"))
        return jax.tree.map(lambda lp, lm: (lp - lm) / (2 * h_loss), mean_at("plus"), mean_at("minus"))

    return loss, jax.vmap(gradient)(loss, sums)


def _changed_block(old: PyTree, new: PyTree) -> jax.Array:
    """``(B,)``: whether each config's parameters changed; ``_changed`` for a block. A scalar
    leaf is compared elementwise, with no reduction (Pallas's Triton lowering has no ``any``)."""
    diffs = [
        a != b if a.ndim == 1 else jnp.any((a != b).reshape(a.shape[0], -1), axis=1)
        for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new))
    ]
    return functools.reduce(jnp.logical_or, diffs)


def train_block(
    static: Static, lr, hyper, params0: PyTree, example: Callable, *, h, zero, rtol, min_loss, plateau_rtol
) -> ChunkResult:
    """Train a block of ``B`` configs for ``static.epochs`` epochs, written on per-example terms.

    The per-example fused kernel (``lrsweep.kernels.per_example``) runs this on each block of
    configs. Inputs as ``ChunkInputs`` for ``B`` configs (``lr (B, G)``, ``hyper (B, H)``,
    ``params0`` leaves ``(B, *leaf_shape)``, the scalars by name), except the data: ``example(i) -> (x_i,
    y_i)`` reads example ``i`` (a Python int) where it is needed. Output: a summary, as from
    ``run_chunk``.

    Where ``train_one`` is written for one config and vmapped, this is written for the block: a
    config's state is a few ``(B,)`` vectors per parameter element (parameters, optimizer state,
    tracker), carried through a ``fori_loop`` over epochs; each epoch adds up the examples' terms
    elementwise on them (``_block_estimate``) and updates them (``static.optimizer_fns``, per config). The
    score's window slides through the last ``K`` epochs as ``K`` separate vectors. Nothing is
    stacked along an epoch or example axis. Same math as ``train_one``; float32 tolerance.
    """
    epochs = static.epochs
    k_window = min(static.score_window, epochs)
    estimate = functools.partial(_block_estimate, static, example, h, zero)
    mean_loss = lambda params: estimate(params, with_grad=False)[0]
    init = jax.vmap(lambda r, hy, p: optimizer_fns(static, r, zero, hy)[0](p))
    update = jax.vmap(lambda r, hy, p, g, s: optimizer_fns(static, r, zero, hy)[1](p, g, s))
    loss0 = mean_loss(params0)
    tol = min_loss + rtol * (loss0 - min_loss)  # NaN when the minimum is unknown: no epoch is below it

    def step(e, carry):
        params, state, track = carry
        loss, grad = estimate(params)
        new, state = update(lr, hyper, params, grad, state)
        track = outcomes.observe(track, e, loss, loss0, tol, best=static.track_best)
        track = outcomes.moved(track, e + 1, _changed_block(params, new))
        return (new, state, track), loss

    def slide(e, carry_window):  # an epoch of the last K: its loss enters the window, the oldest leaves
        carry, window = carry_window
        carry, loss = step(e, carry)
        return carry, (*window[1:], loss)

    head = epochs - k_window
    carry = (params0, init(lr, hyper, params0), outcomes.start(loss0, tol))
    # int32 bounds: the epoch counter stays int32 (the tracker's) under x64 too.
    carry = lax.fori_loop(jnp.int32(0), jnp.int32(head), lambda e, c: step(e, c)[0], carry)
    carry, window = lax.fori_loop(jnp.int32(head), jnp.int32(epochs), slide, (carry, (loss0,) * k_window))
    final, _, track = carry
    loss_final = mean_loss(final)
    # The verdict as in train_one; outcomes' functions are elementwise, so they take (B,) vectors.
    track = outcomes.observe(track, epochs, loss_final, loss0, tol, best=static.track_best)
    window = list(window)
    score = outcomes.score(window, loss0, pairwise_sum)
    plateaued = outcomes.plateau(window, loss_final, plateau_rtol)
    known = ~jnp.isnan(min_loss)
    outcome, event = outcomes.classify(
        track, epochs, static.window, loss_final, tol, score, plateaued, known, loss0=loss0, min_loss=min_loss
    )
    best_loss, best_epoch = outcomes.best(track)
    leaves = jax.tree.leaves(final)
    return ChunkResult(
        loss=loss_final,
        params=leaves,
        outcome=outcome,
        event_epoch=event,
        score=score,
        best_loss=best_loss,
        best_epoch=best_epoch,
    )
