"""Fused Pallas kernels for summary sweeps: a block of configs stays on-chip for all epochs.

The XLA path (``engine.run_chunk``) runs each epoch as a pass over the chunk's configs in memory;
on a GPU that round trip through memory every epoch dominates. For the lesson on one H200, separate
prototypes written while designing lrsweep (not lrsweep's code, and no lrsweep results file) measured
about 2.1e11 config-steps/s for a JAX ``jit(vmap(scan))`` like the XLA path, and 1.6e12 for a
register-resident hand-written CUDA kernel (docs/architecture.md). Here a grid of programs each takes ``BLOCK`` configs, loads their learning
rates and parameters once, runs every epoch and writes only the summary: final loss and
parameters, outcome, event epoch, score, best loss and its epoch.

Two kernels share that frame (:func:`_blocks`) and differ in what runs inside:

- :func:`per_example` (``kernel="pallas-examples"``): a train function written for the block,
  ``engine_block.train_block``. Each config is a few ``(BLOCK,)`` vectors per parameter element, carried
  through a loop over epochs; the data set is read one example at a time from the kernel's input
  (scalar loads for the lesson), and each example's loss and gradient terms are computed
  elementwise on those vectors and added up. A prototype Pallas kernel written this way for the
  lesson (not this module) measured 1.26e12 config-steps/s on an H200, where a prototype of the
  generic one below measured about the XLA prototype's 2.2e11; ``lrsweep bench --verify`` measures
  this module's kernels on the GPU present. For data sets of at most
  ``kernel_paths.EXAMPLES_MAX`` examples (``kernel_paths.fusable_per_example``).
- :func:`fused` (``kernel="pallas"``): the generic fallback. It runs any ``train(inputs:
  ChunkInputs) -> ChunkResult`` over a block (the engine passes its vmapped ``train_one``), with
  the whole data set loaded as arrays. For data sets of at most ``sums.UNROLL_MAX`` examples
  (``kernel_paths.fusable``).

This module knows nothing of training: both take the function to run. The engine decides where
each applies and picks one on GPU (``kernel_paths.kernel_path``). On CPU, Pallas's interpret mode runs
the same kernels for tests (slowly); results equal the XLA path within float32 tolerance (the two
compile the same arithmetic into different programs, so the last bits may differ).

On GPU the kernels are lowered with Triton, chosen here: JAX's default GPU lowering (Mosaic GPU)
copies blocks with TMA, which refuses our 4-byte-wide columns. Triton takes only programs of
power-of-two shapes that never slice a loaded array nor reduce it with ``any``. The per-example
kernel is written to fit for problems whose parameters are scalars, as the lesson's are (checked
on CPU by exporting for CUDA, tests/test_kernels.py); a problem with vector or matrix parameters,
and the generic kernel (its ``train_one`` indexes the loaded data set), do not lower, and
``kernel="auto"`` then warns and takes the XLA path (``runner``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from .types import Array, ChunkInputs, ChunkResult, PyTree

#: Configs per kernel program. The chunk sizes the API picks are powers of two >= 8.
BLOCK = 128

#: ``body(lr (B, G), hyper (B, H), params leaves (B, *leaf_shape), data_refs, scalars) -> ChunkResult``:
#: what a kernel program runs on its block of ``B`` configs; ``data_refs`` are the refs of the data
#: arrays the kernel was given, ``scalars`` the scalars of ``ChunkInputs`` by name (``ChunkInputs.SCALARS``).
Body = Callable[[Array, Array, PyTree, Sequence, dict[str, Array]], ChunkResult]


def fused(train: Callable[[ChunkInputs], ChunkResult], inputs: ChunkInputs, *, interpret: bool = False) -> ChunkResult:
    """``train(inputs)`` for a summary, run as a Pallas kernel over blocks of ``BLOCK`` configs.

    Same inputs and outputs as ``engine.run_chunk`` for a summary (not jitted here: the caller is).
    ``train`` is called on a block of ``min(BLOCK, C)`` configs at a time, with the whole data set.
    """

    def body(lr, hyper, params, data_refs, scalars):
        x_ref, y_ref = data_refs
        return train(ChunkInputs(lr=lr, hyper=hyper, params0=params, x=x_ref[...], y=y_ref[...], **scalars))

    return _blocks(body, inputs, [inputs.x, inputs.y], interpret)


def per_example(
    train_block: Callable[..., ChunkResult], inputs: ChunkInputs, *, interpret: bool = False
) -> ChunkResult:
    """``train_block`` run as a Pallas kernel over blocks of ``BLOCK`` configs: a summary.

    ``train_block(lr, hyper, params0, example, **scalars)`` (the scalars of ``ChunkInputs`` by name) trains one
    block (``lr (B, G)``, ``hyper (B, H)``, ``params0`` leaves ``(B, *leaf_shape)``) and reads the
    data through ``example(i) -> (x_i, y_i)``, which loads example ``i`` from the kernel's input
    where the train function needs it (``engine_block.train_block``). Same inputs and outputs as
    ``engine.run_chunk`` for a summary.
    """
    x, y = _pad_examples(inputs.x), _pad_examples(inputs.y)

    def body(lr, hyper, params, data_refs, scalars):
        x_ref, y_ref = data_refs
        return train_block(lr, hyper, params, lambda i: (x_ref[i], y_ref[i]), **scalars)

    return _blocks(body, inputs, [x, y], interpret)


def _pad_examples(arr: Array) -> Array:
    """``arr (n, ...)`` with zero rows appended up to a power of two: the Triton lowering wants
    power-of-two block shapes. The padding is never read: the train function reads rows ``< n``."""
    n = arr.shape[0]
    pad = (1 << (n - 1).bit_length()) - n
    return jnp.pad(arr, [(0, pad)] + [(0, 0)] * (arr.ndim - 1)) if pad else arr


def _blocks(body: Body, inputs: ChunkInputs, data: list, interpret: bool) -> ChunkResult:
    """Run ``body`` as a Pallas kernel on each block of ``min(BLOCK, C)`` configs; a summary.

    The frame both kernels share: the chunk's per-config inputs (learning rates, hyperparameters,
    each parameter leaf as a ``(C, size)`` array) come in blocks of configs; ``data`` (arrays shared
    by every program) and the scalars whole. Each program writes its block's summary.
    """
    lr, hyper, params0 = inputs.lr, inputs.hyper, inputs.params0
    c = lr.shape[0]
    block = min(BLOCK, c)
    if c % block:
        raise ValueError(f"the fused kernel needs a chunk that is a multiple of {block} configs, got {c}")
    leaves, treedef = jax.tree.flatten(params0)
    shapes = [leaf.shape[1:] for leaf in leaves]
    flat = [leaf.reshape(c, -1) for leaf in leaves]  # (C, size): 2-D blocks for every leaf
    cdt = lr.dtype
    # The scalars in one array padded to 8: a power of two (Triton); each is read back by name.
    names = ChunkInputs.SCALARS
    scalar_values = [getattr(inputs, name) for name in names]
    scalars = jnp.zeros(8, cdt).at[: len(names)].set(jnp.stack([jnp.asarray(v, cdt) for v in scalar_values]))
    n_hyper = hyper.shape[1]
    hyper2 = hyper if n_hyper else jnp.zeros((c, 1), cdt)  # Pallas blocks need a non-empty axis

    def rows(width):  # a block of configs, all of a row
        return pl.BlockSpec((block, width), lambda i: (i, 0))

    def whole(arr):  # shared by every program
        return pl.BlockSpec(arr.shape, lambda i: (0,) * arr.ndim)

    in_specs = [rows(lr.shape[1]), rows(hyper2.shape[1])] + [rows(f.shape[1]) for f in flat]
    in_specs += [whole(a) for a in data] + [whole(scalars)]
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
    n_leaves, n_data = len(flat), len(data)

    def kernel(*refs):
        lr_ref, hyper_ref = refs[0], refs[1]
        leaf_refs = refs[2 : 2 + n_leaves]
        data_refs = refs[2 + n_leaves : 2 + n_leaves + n_data]
        s_ref = refs[2 + n_leaves + n_data]
        outs = refs[3 + n_leaves + n_data :]
        params = treedef.unflatten([r[...].reshape(block, *shape) for r, shape in zip(leaf_refs, shapes)])
        named = {name: s_ref[j] for j, name in enumerate(names)}
        out = body(lr_ref[...], hyper_ref[...][:, :n_hyper], params, data_refs, named)
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
        kernel,
        out_shape=out_shape,
        grid=(c // block,),
        in_specs=in_specs,
        out_specs=out_specs,
        interpret=interpret,
        # Triton, not JAX's default GPU lowering (Mosaic GPU): Mosaic GPU copies blocks with TMA,
        # which wants 16-byte rows, and a (BLOCK, 1) column of float32 has 4-byte ones.
        compiler_params=None if interpret else pltriton.CompilerParams(),
    )(lr, hyper2, *flat, *data, scalars)
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
