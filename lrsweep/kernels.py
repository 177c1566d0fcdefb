"""A fused Pallas kernel for summary sweeps: a block of configs stays on-chip for all epochs.

The XLA path (``engine.run_chunk``) runs each epoch as a pass over the chunk's configs in memory;
on a GPU that round trip through memory every epoch dominates: for the lesson on one H200, the XLA
path measured about 2.1e11 config-steps/s where a register-resident hand kernel reached 1.6e12
(docs/architecture.md). Here a grid of programs each takes ``BLOCK`` configs, loads their learning
rates and parameters once, runs every epoch and writes only the summary: final loss and
parameters, outcome, event epoch, score, best loss and its epoch.

This module knows nothing of training: :func:`fused` takes the function to fuse, a
``train(inputs: ChunkInputs) -> ChunkResult`` over a block of configs (the engine passes its
vmapped ``train_one``), and runs it inside the kernel. The engine decides where it applies
(``engine.fusable``) and picks it on GPU. On CPU, Pallas's interpret mode runs the same kernel for
tests (slowly); results equal the XLA path within float32 tolerance (the two compile the same
arithmetic into different programs, so the last bits may differ).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from .types import ChunkInputs, ChunkResult

#: Configs per kernel program. The chunk sizes the API picks are powers of two >= 8.
BLOCK = 128


def fused(train: Callable[[ChunkInputs], ChunkResult], inputs: ChunkInputs, *, interpret: bool = False) -> ChunkResult:
    """``train(inputs)`` for a summary, run as a Pallas kernel over blocks of ``BLOCK`` configs.

    Same inputs and outputs as ``engine.run_chunk`` for a summary (not jitted here: the caller is).
    ``train`` is called on a block of ``min(BLOCK, C)`` configs at a time.
    """
    lr, hyper, params0, x, y, *scalar_values = inputs
    c = lr.shape[0]
    block = min(BLOCK, c)
    if c % block:
        raise ValueError(f"the fused kernel needs a chunk that is a multiple of {block} configs, got {c}")
    leaves, treedef = jax.tree_util.tree_flatten(params0)
    shapes = [leaf.shape[1:] for leaf in leaves]
    flat = [leaf.reshape(c, -1) for leaf in leaves]  # (C, size): 2-D blocks for every leaf
    cdt = lr.dtype
    # (1, 5): h, zero, rtol, min_loss, plateau_rtol
    scalars = jnp.stack([jnp.asarray(v, cdt) for v in scalar_values])[None, :]
    hyper2 = hyper if hyper.shape[1] else jnp.zeros((c, 1), cdt)  # Pallas blocks need a non-empty axis

    def rows(width):  # a block of configs, all of a row
        return pl.BlockSpec((block, width), lambda i: (i, 0))

    def whole(arr):  # shared by every program
        return pl.BlockSpec(arr.shape, lambda i: (0,) * arr.ndim)

    in_specs = [rows(lr.shape[1]), rows(hyper2.shape[1])] + [rows(f.shape[1]) for f in flat]
    in_specs += [whole(x), whole(y), whole(scalars)]
    out_shape = [
        jax.ShapeDtypeStruct((c, 1), cdt),  # loss
        *[jax.ShapeDtypeStruct(f.shape, f.dtype) for f in flat],
        jax.ShapeDtypeStruct((c, 1), jnp.int32),  # outcome
        jax.ShapeDtypeStruct((c, 1), jnp.int32),  # event epoch
        jax.ShapeDtypeStruct((c, 1), cdt),  # score
        jax.ShapeDtypeStruct((c, 1), cdt),  # best loss
        jax.ShapeDtypeStruct((c, 1), jnp.int32),  # best epoch
    ]
    out_specs = [rows(1)] + [rows(f.shape[1]) for f in flat] + [rows(1)] * 5
    n_leaves = len(flat)

    def kernel(*refs):
        lr_ref, hyper_ref = refs[0], refs[1]
        leaf_refs = refs[2 : 2 + n_leaves]
        x_ref, y_ref, s_ref = refs[2 + n_leaves : 5 + n_leaves]
        outs = refs[5 + n_leaves :]
        params = treedef.unflatten([r[...].reshape(block, *shape) for r, shape in zip(leaf_refs, shapes)])
        s = s_ref[...]
        hyp = hyper_ref[...][:, : hyper.shape[1]]
        out = train(
            ChunkInputs(lr_ref[...], hyp, params, x_ref[...], y_ref[...], *[s[0, j] for j in range(s.shape[1])])
        )
        assert out.loss is not None  # a summary always keeps its final loss
        outs[0][...] = out.loss.reshape(block, 1)
        for ref, leaf in zip(outs[1 : 1 + n_leaves], out.params):
            ref[...] = leaf.reshape(block, -1)
        outs[1 + n_leaves][...] = out.outcome.astype(jnp.int32).reshape(block, 1)
        outs[2 + n_leaves][...] = out.event_epoch.reshape(block, 1)
        outs[3 + n_leaves][...] = out.score.reshape(block, 1)
        outs[4 + n_leaves][...] = out.best_loss.reshape(block, 1)
        outs[5 + n_leaves][...] = out.best_epoch.reshape(block, 1)

    results = pl.pallas_call(
        kernel, out_shape=out_shape, grid=(c // block,), in_specs=in_specs, out_specs=out_specs, interpret=interpret
    )(lr, hyper2, *flat, x, y, scalars)
    loss, *leaf_out = results[: 1 + n_leaves]
    outcome, event, score, best_loss, best_epoch = results[1 + n_leaves :]
    return ChunkResult(
        loss=loss[:, 0],
        params=[leaf.reshape(c, *shape) for leaf, shape in zip(leaf_out, shapes)],
        outcome=outcome[:, 0].astype(jnp.int8),
        event_epoch=event[:, 0],
        score=score[:, 0],
        best_loss=best_loss[:, 0],
        best_epoch=best_epoch[:, 0],
    )
