"""Sharpness along the path: the top Hessian eigenvalue of the training loss, every few steps.

The lesson's rule is that gradient descent on a quadratic is stable only for ``lr < 2 /
lambda_max``. On a network the Hessian changes as it trains; Cohen, Kaur, Li, Kolter and Talwalkar
("Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability", ICLR 2021) showed
that under full-batch gradient descent the *sharpness* ``lambda_max(H(p_t))`` rises until it
reaches ``2 / lr`` and then hovers there while the loss keeps falling. This module holds the pure
pieces the engine runs for every config (``track_sharpness=True``; ``lrsweep.engine`` loops and
vmaps them) and docs/sharpness.md explains the method, its cost and its accuracy.

The estimate: the largest eigenvalue of the Hessian ``H`` of the mean loss at the current
parameters, by single-vector LOBPCG (the locally optimal block preconditioned conjugate gradient
method of Knyazev, 2001, with a block of one and no preconditioner) on Hessian-vector products.
Vectors are the raveled parameters, ``(P,)`` in the compute dtype::

    H v   = linearize(grad L at p)(v)           # forward over reverse, linearized once; H never built
    x_0   = the previous estimate's vector       # warm start (the first: start_vector)
    theta = x . H x                             # the Rayleigh quotient: the estimate
    r     = H x - theta x                       # the residual
    x, p  <- the top Ritz pair of H on span{x, r, p}  (a 3 x 3 eigenproblem), p the new part

At most ``iters`` products per estimate (one for ``H x_0``, one per step), every ``every`` steps of
training, and fewer where the estimate has converged: the steps stop once the relative residual
``|r| / |theta|`` is at most :data:`RTOL` (under ``vmap``: once it is for every config of the
block, or not finite). Each step maximises the Rayleigh quotient over a three-dimensional
subspace, so the estimate never decreases within an estimate and never exceeds ``lambda_max``; like Lanczos it
converges with the square root of the relative gap between the top eigenvalues, where power
iteration converges with the gap itself. That matters here: at the edge of stability the top
eigenvalues crowd together below ``2 / lr`` (docs/sharpness.md measures both). The last
residual ``|H x - theta x| / |theta|`` is kept too: some eigenvalue of ``H`` lies within
``|H x - theta x|`` of ``theta`` (the Krylov-Weinstein bound).

LOBPCG finds the largest *algebraic* eigenvalue (a negative eigenvalue larger in magnitude does
not win, as it would in power iteration or in ``scipy.sparse.linalg.eigsh``'s default
``which="LM"``, which Cohen et al.'s code uses).

The edge (:func:`threshold`): the quadratic model's stability bound, ``2 / lr`` for gradient
descent, ``(2 + 2 beta) / lr`` for heavy-ball momentum ``beta`` (``optax.sgd(momentum=beta)``) and
``2 (1 + beta) / ((1 + 2 beta) lr)`` for Nesterov (``lrsweep.theory`` derives all three). A config
reaches the edge at the first estimate ``>= (1 - EDGE_BAND) * threshold`` (``edge_step``; -1:
never). Optimizers with a preconditioner (Adam, RMSProp, any other optax factory) and sweeps with
several learning-rate groups have no such bound on ``H`` alone: their threshold is NaN and their
``edge_step`` is -1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .optimizers import Optimizer
from .types import PyTree

#: A config reaches the edge of stability when its sharpness is at least ``1 - EDGE_BAND`` times
#: the optimizer's threshold (Cohen et al. call a sharpness that hovers just below 2 / lr "at" it).
EDGE_BAND = 0.1
#: An estimate stops early once every config it runs for (a vmapped block) has a relative residual
#: ``|H x - theta x| / |theta|`` at most this (or a non-finite one): then ``theta`` is within
#: ``RTOL^2 theta^2 / gap`` of the eigenvalue it approximates (Temple's bound; ``gap`` the distance to
#: the next one), below 1e-5 relative wherever the top two eigenvalues are 1% apart.
RTOL = 1e-3
#: The start vector's increment: the golden ratio's fractional part (a Weyl sequence, module docstring).
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class State(NamedTuple):
    """One config's sharpness bookkeeping, O(1) in steps (``history`` only for trajectories).

    Attributes:
      v: the last estimate's Ritz vector ``x``, unit norm, ``(P,)`` in the compute dtype (the
        parameters raveled: ``jax.flatten_util.ravel_pytree``), where the next estimate starts.
      last: the last estimate, ``()``; NaN before the first.
      max: the largest estimate so far, ``()``; NaN estimates are skipped.
      residual: the last estimate's relative residual ``|H x - theta x| / |theta|``, ``()``.
      edge_step: the first step whose estimate reached ``(1 - EDGE_BAND) * threshold``, ``() int32``; -1: none.
      history: every estimate, ``(S,)`` (``S = len(steps(epochs, every))``), or None (summaries).
    """

    v: jax.Array
    last: jax.Array
    max: jax.Array
    residual: jax.Array
    edge_step: jax.Array
    history: jax.Array | None


class Iterate(NamedTuple):
    """Within one estimate: the Ritz vector ``x``, the search direction ``p`` (zero at first), their
    products with ``H`` and the Ritz value ``theta = x . H x``; vectors ``(P,)``."""

    x: jax.Array
    hx: jax.Array
    p: jax.Array
    hp: jax.Array
    theta: jax.Array


def steps(epochs: int, every: int) -> np.ndarray:
    """The steps at which the sharpness is estimated: ``0, every, 2 every, ...`` below ``epochs``
    (each on the parameters before that step's update)."""
    return np.arange(0, epochs, every, dtype=np.int64)


def start_vector(params: PyTree, dtype) -> jax.Array:
    """The first estimate's start vector, fixed and documented: element ``j`` of the raveled
    parameters (JAX flattening order, each leaf in C order) is ``frac((j + 1) * g) - 1/2`` with
    ``g = (sqrt(5) - 1) / 2`` (a Weyl sequence: no random key, the same on every machine, and with
    no structure that would make it orthogonal to an eigenvector of a network's Hessian), then
    normalised. ``(P,)`` in ``dtype``, built on the host (a constant)."""
    n = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))
    u = np.mod(np.arange(1, n + 1, dtype=np.float64) * _GOLDEN, 1.0) - 0.5
    return jnp.asarray(u / np.linalg.norm(u), dtype)


def init_state(params: PyTree, dtype, n_history: int | None) -> State:
    """The state before the first estimate: :func:`start_vector`, NaN estimates, no edge;
    ``history`` of ``n_history`` NaNs, or None for a summary."""
    nan = jnp.asarray(jnp.nan, dtype)
    history = None if n_history is None else jnp.full((n_history,), jnp.nan, dtype)
    return State(start_vector(params, dtype), nan, nan, nan, jnp.asarray(-1, jnp.int32), history)


def hvp(f: Callable[[PyTree], jax.Array], params: PyTree, dtype) -> Callable[[jax.Array], jax.Array]:
    """``v -> H v`` for raveled ``v (P,)`` in ``dtype``, with ``H`` the Hessian of ``f`` at ``params``:
    forward over reverse, linearized once, ``jax.linearize(jax.grad(f), params)``. The gradient's
    forward and backward passes run once per estimate; each product is then the tangent part alone
    (measured on the gallery's digits network: 1.3 gradients' work per product, against 1.6 for a
    fresh ``jax.jvp(jax.grad(f), (params,), (v,))`` each time). ``params`` is cast to ``dtype``
    first (the tangent and the primal must agree)."""
    flat, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a, dtype), params))
    _, product = jax.linearize(jax.grad(f), unravel(flat))
    return lambda v: ravel_pytree(product(unravel(v)))[0]


def begin(product: Callable[[jax.Array], jax.Array], x: jax.Array) -> Iterate:
    """An estimate's start from the unit vector ``x``: one product ``H x`` (``product``: :func:`hvp`),
    ``theta = x . H x``."""
    hx = product(x)
    zero = jnp.zeros_like(x)
    return Iterate(x, hx, zero, zero, jnp.vdot(x, hx))


def _unit(v, hv, basis, tiny):
    """``v`` orthogonalised against the unit vectors ``basis`` (twice: "twice is enough") and
    normalised, with ``H v`` carried along; and whether it was degenerate (nothing left)."""
    size = jnp.sqrt(jnp.vdot(v, v))
    for _ in range(2):
        for q, hq in basis:
            c = jnp.vdot(q, v)
            v, hv = v - c * q, hv - c * hq
    norm = jnp.sqrt(jnp.vdot(v, v))
    ok = jnp.isfinite(norm) & (norm > tiny * size) & (size > 0)
    scale = jnp.where(ok, 1.0 / jnp.where(ok, norm, 1.0), 0.0)
    return v * scale, hv * scale, ~ok


def iterate(product: Callable[[jax.Array], jax.Array], it: Iterate) -> Iterate:
    """One step of single-vector LOBPCG (Knyazev 2001) for the largest eigenvalue: one product
    (``product``: :func:`hvp`).

    The residual ``r = H x - theta x``; an orthonormal basis ``q`` of ``span{x, r, p}`` (Gram-Schmidt;
    a direction with nothing left is dropped); the Rayleigh-Ritz step: the top eigenpair ``(theta',
    c)`` of the 3 x 3 matrix ``T = q^T H q``; then ``x' = q c`` and ``p' = c_2 q_2 + c_3 q_3``. The
    new ``theta'`` is the largest Rayleigh quotient on that subspace, so it never decreases and never
    exceeds ``lambda_max``.
    """
    tiny = 100 * jnp.finfo(it.x.dtype).eps
    r = it.hx - it.theta * it.x
    hr = product(r)
    q2, hq2, drop2 = _unit(r, hr, [(it.x, it.hx)], tiny)
    q3, hq3, drop3 = _unit(it.p, it.hp, [(it.x, it.hx), (q2, hq2)], tiny)
    qs, hqs = jnp.stack([it.x, q2, q3]), jnp.stack([it.hx, hq2, hq3])
    t = qs @ hqs.T
    t = (t + t.T) / 2
    # A dropped direction becomes an eigenvector of T with eigenvalue theta, which the top one
    # never falls below: the step then stays within the directions that are left.
    dropped = jnp.array([False, True, True]) & jnp.stack([drop2, drop2, drop3])
    t = jnp.where(dropped[:, None] | dropped[None, :], 0.0, t) + jnp.diag(jnp.where(dropped, it.theta, 0.0))
    values, vectors = jnp.linalg.eigh(t)
    c = vectors[:, -1]
    x, hx = c @ qs, c @ hqs
    norm = jnp.sqrt(jnp.vdot(x, x))
    ok = jnp.isfinite(values[-1]) & jnp.isfinite(norm) & (norm > 0.5)
    return Iterate(
        x=jnp.where(ok, x / jnp.where(ok, norm, 1.0), it.x),
        hx=jnp.where(ok, hx / jnp.where(ok, norm, 1.0), it.hx),
        p=jnp.where(ok, c[1] * q2 + c[2] * q3, it.p),
        hp=jnp.where(ok, c[1] * hq2 + c[2] * hq3, it.hp),
        theta=jnp.where(ok, values[-1], it.theta),
    )


def residual(it: Iterate) -> jax.Array:
    """The relative residual ``|H x - theta x| / |theta|`` of an iterate, ``()``."""
    r = it.hx - it.theta * it.x
    return jnp.sqrt(jnp.vdot(r, r)) / jnp.abs(it.theta)


def unfinished(it: Iterate) -> jax.Array:
    """Whether an estimate should take another step: its relative residual is finite and above
    :data:`RTOL`, ``() bool`` (a NaN estimate, a diverged run's, stops at once)."""
    rel = residual(it)
    return jnp.isfinite(rel) & (rel > RTOL)


def observe(state: State, it: Iterate, step, index, threshold) -> State:
    """Fold the estimate ``it.theta`` made at ``step`` (the ``index``-th estimate) into ``state``."""
    mu = it.theta
    reached = (state.edge_step < 0) & (mu >= (1.0 - EDGE_BAND) * threshold)
    history = state.history
    if history is not None:
        history = history.at[index].set(mu)
    return State(
        v=it.x,
        last=mu,
        max=jnp.where(jnp.isnan(mu) | (state.max >= mu), state.max, mu),
        residual=residual(it),
        edge_step=jnp.where(reached, jnp.asarray(step, jnp.int32), state.edge_step),
        history=history,
    )


def outputs(state: State, threshold) -> dict:
    """The ``ChunkResult`` fields of one config: ``sharpness`` (the last estimate, or every one for a
    trajectory), ``max_sharpness``, ``sharpness_residual``, ``edge_step`` and ``edge_sharpness``
    (the threshold)."""
    estimates = state.last if state.history is None else state.history
    return dict(
        sharpness=estimates,
        max_sharpness=state.max,
        sharpness_residual=state.residual,
        edge_step=state.edge_step,
        edge_sharpness=threshold,
    )


#: The result variables ``track_sharpness`` adds (``outputs``), in ``ChunkResult``'s order.
FIELDS = ("sharpness", "max_sharpness", "sharpness_residual", "edge_step", "edge_sharpness")


def threshold(
    optimizer: Optimizer, groups: tuple[str, ...], lr, hyper_names: tuple[str, ...], hyper, dtype
) -> jax.Array:
    """The sharpness at which one config's optimizer turns unstable on a quadratic, ``()``:

    - ``gd`` (and ``optax.sgd`` without momentum): ``2 / lr``;
    - heavy-ball momentum ``beta`` (``optax.sgd(momentum=beta)``, the ``momentum`` optimizer):
      ``(2 + 2 beta) / lr``;
    - Nesterov (``optax.sgd(momentum=beta, nesterov=True)``): ``2 (1 + beta) / ((1 + 2 beta) lr)``;
    - anything else (Adam, RMSProp, other optax factories: a preconditioner), or several
      learning-rate groups: NaN (no verdict).

    ``lr (G,)`` and ``hyper (H,)`` are the config's; a swept ``momentum`` (``hyper_names``) wins
    over the optimizer's fixed one.
    """
    nan = jnp.asarray(jnp.nan, dtype)
    if len(groups) != 1:
        return nan
    rate = jnp.asarray(lr[0], dtype)
    if optimizer.is_gd:
        return 2.0 / rate
    if optimizer.factory is not optax.sgd:
        return nan
    kwargs = dict(optimizer.kwargs)
    beta = kwargs.get("momentum")
    if "momentum" in hyper_names:
        beta = hyper[hyper_names.index("momentum")]
    if beta is None:
        return 2.0 / rate
    beta = jnp.asarray(beta, dtype)
    if kwargs.get("nesterov", False):
        return 2.0 * (1.0 + beta) / ((1.0 + 2.0 * beta) * rate)
    return (2.0 + 2.0 * beta) / rate


def edge_line(ds) -> str:
    """One line for ``lrsweep run``: how many configs reached the edge of stability, and when.

    ``ds`` is a result Dataset with ``track_sharpness`` (``edge_step``, ``edge_sharpness``,
    ``max_sharpness``).
    """
    edge = np.asarray(ds["edge_step"].values)
    peak = np.asarray(ds["max_sharpness"].values, dtype=np.float64)
    top = f"largest sharpness {np.nanmax(peak):.4g}" if np.isfinite(peak).any() else "no finite sharpness"
    if not np.isfinite(np.asarray(ds["edge_sharpness"].values)).any():
        return f"edge of stability: no verdict for optimizer {ds.attrs.get('optimizer')!r} ({top})"
    hit = edge[edge >= 0]
    when = f", from step {hit.min()} to {hit.max()} (median {np.median(hit):g})" if hit.size else ""
    return (
        f"edge of stability: {hit.size:,} of {edge.size:,} configs reached {1 - EDGE_BAND:g} x the stability "
        f"threshold (2 / lr for gd){when}; {top}"
    )
