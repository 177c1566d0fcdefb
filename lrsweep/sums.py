"""Sums in an order fixed in advance, so that the engine's results do not depend on how XLA would
order a reduction: numpy's pairwise order (bit-exact with the lesson's numpy code) and halving.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Data sets up to this size are summed term by term in the traced program (no XLA reduction
#: over a tiny axis inside the epoch loop: about 10x faster on CPU, docs/architecture.md); larger ones
#: go through ``vmap`` and ``sum`` (in the engine), which keeps the compiled program small.
UNROLL_MAX = 16


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


def tree_sum(values: jax.Array) -> jax.Array:
    """Sum ``values (n, ...)`` over its first axis by halving: ``v[:h] + v[h:2h]`` (an odd last
    element carried along).

    Every addition is elementwise, in an order fixed by ``n`` alone, so under ``vmap`` the sum of
    each config is the same bit for bit whatever the chunk's size. ``jnp.sum`` lets XLA pick the
    reduction order, and it picks differently for different chunk shapes.
    """
    while values.shape[0] > 1:
        half = values.shape[0] // 2
        head = values[:half] + values[half : 2 * half]
        values = jnp.concatenate([head, values[2 * half :]]) if values.shape[0] % 2 else head
    return values[0]
