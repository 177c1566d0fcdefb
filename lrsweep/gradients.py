"""Gradient estimators, chosen by name.

Each estimator takes a loss over a params pytree and returns ``(loss(params), grad, probes)``:
``grad`` is a pytree like ``params`` (in the loss's dtype) and ``probes`` holds the loss values the
estimate was made from (a pytree like ``params`` per probe, for the lesson's per-epoch table).

- ``"autodiff"``: the exact gradient, ``jax.value_and_grad``.
- ``"forward"``: the lesson's forward difference. Every parameter element ``p_j`` in turn is nudged
  by ``h`` from the same original point: ``g_j = (L(p + h e_j) - L(p)) / h``. Error ``O(h)``.
- ``"central"``: ``g_j = (L(p + h e_j) - L(p - h e_j)) / (2 h)``. Error ``O(h^2)``.

The nudge ``p_j + h`` is added in the parameter dtype, as the lesson's notebook does in its float32
array; the difference and the division are in the loss's dtype. A nudge smaller than half the float
spacing at ``p_j`` is absorbed (``p_j + h == p_j``) and the difference is exactly 0: the cause of
the lesson's frozen ``lr = 1`` run.

For small models the finite differences are written one parameter element at a time, so under
``vmap`` they stay a handful of fused elementwise operations per config instead of a materialised
batch of nudged parameter vectors; models with more than ``UNROLL_PARAMS`` elements loop over the
elements with ``lax.map`` instead, which keeps the compiled program small.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import _checks
from .types import PyTree

LossFn = Callable[[PyTree], jax.Array]

NAMES = ("autodiff", "forward", "central")


def check_name(name: str) -> str:
    return _checks.choice("grad", name, NAMES)


def _nudged(params: PyTree, delta) -> list[PyTree]:
    """Every copy of ``params`` with one scalar element moved by ``delta``, leaf by leaf, C order."""
    leaves, treedef = jax.tree.flatten(params)
    out = []
    for i, leaf in enumerate(leaves):
        for idx in np.ndindex(leaf.shape):
            moved = leaf + delta if leaf.ndim == 0 else leaf.at[idx].add(delta)
            out.append(treedef.unflatten(leaves[:i] + [moved] + leaves[i + 1 :]))
    return out


def _assemble(params: PyTree, values: list) -> PyTree:
    """Put one scalar per parameter element (in ``_nudged`` order) back into ``params``' shape."""
    leaves, treedef = jax.tree.flatten(params)
    out, k = [], 0
    for leaf in leaves:
        size = int(np.prod(leaf.shape, dtype=int))
        chunk = values[k : k + size]
        k += size
        out.append(chunk[0] if leaf.ndim == 0 else jnp.stack(chunk).reshape(leaf.shape))
    return treedef.unflatten(out)


def estimate(name: str, loss: LossFn, params: PyTree, h) -> tuple[jax.Array, PyTree, dict]:
    """Estimate ``grad L(params)`` with the estimator ``name``.

    Args:
      name: one of ``"autodiff"``, ``"forward"``, ``"central"``.
      loss: ``loss(params) -> scalar``; its dtype sets the dtype of the gradient.
      params: a pytree of arrays in the parameter dtype.
      h: the finite-difference step, a scalar (ignored by ``"autodiff"``).

    Returns:
      ``(loss(params), grad, probes)``; ``probes`` maps ``"loss_plus"`` (and ``"loss_minus"`` for
      central) to a pytree like ``params`` of loss values, and is empty for autodiff.
    """
    if name == "autodiff":
        # Differentiate with respect to the parameters cast to the loss's dtype, so that a mixed
        # policy gets a float64 gradient of its float32 parameters, not one rounded to float32.
        dtype = jax.eval_shape(loss, params).dtype
        value, grad = jax.value_and_grad(loss)(jax.tree.map(lambda p: p.astype(dtype), params))
        return value, grad, {}
    if name not in ("forward", "central"):
        raise ValueError(f"grad={name!r} is not a gradient estimator; expected one of {list(NAMES)}")
    value = loss(params)
    h_param = jnp.asarray(h, dtype=jax.tree.leaves(params)[0].dtype)
    h_loss = jnp.asarray(h, dtype=value.dtype)
    probe = _probe_unrolled if n_elements(params) <= UNROLL_PARAMS else _probe_mapped
    plus = probe(loss, params, h_param)
    if name == "forward":
        grad = jax.tree.map(lambda lp: (lp - value) / h_loss, plus)
        return value, grad, {"loss_plus": plus}
    minus = probe(loss, params, -h_param)
    grad = jax.tree.map(lambda lp, lm: (lp - lm) / (2 * h_loss), plus, minus)
    return value, grad, {"loss_plus": plus, "loss_minus": minus}


#: Up to this many parameter elements the nudged losses are written out one by one in the traced
#: program (fused, fastest); beyond it they run in a ``lax.map`` loop so the program stays small.
UNROLL_PARAMS = 16


def n_elements(params: PyTree) -> int:
    return sum(int(np.prod(np.shape(leaf), dtype=int)) for leaf in jax.tree.leaves(params))


def _probe_unrolled(loss: LossFn, params: PyTree, delta) -> PyTree:
    """``L(p + delta e_j)`` for every element ``j``, a pytree like ``params``."""
    return _assemble(params, [loss(p) for p in _nudged(params, delta)])


def _probe_mapped(loss: LossFn, params: PyTree, delta) -> PyTree:
    """The same as ``_probe_unrolled``, one element per iteration of a ``lax.map``."""
    flat, unravel = ravel_pytree(params)

    def nudged_loss(j):
        return loss(unravel(flat.at[j].add(delta)))

    values = jax.lax.map(nudged_loss, jnp.arange(flat.shape[0]))
    return unravel_like(params, values)


def unravel_like(params: PyTree, values) -> PyTree:
    """Put a flat vector (``ravel_pytree`` order) into a pytree like ``params``, keeping its dtype."""
    leaves, treedef = jax.tree.flatten(params)
    out, k = [], 0
    for leaf in leaves:
        size = int(np.prod(np.shape(leaf), dtype=int))
        out.append(values[k : k + size].reshape(np.shape(leaf)))
        k += size
    return treedef.unflatten(out)
