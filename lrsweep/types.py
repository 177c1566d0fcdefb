"""Shared types: the names the API accepts, and what crosses the engine's boundary.

``ChunkInputs`` and ``ChunkResult`` are what ``engine.run_chunk`` takes and returns for a *chunk*:
a block of ``C`` configs trained together by one compiled program (the word is used for that block
everywhere: in the code, in the docs, in the progress bar and in a store's done-marks).

Shapes: ``C`` configs, ``G`` learning-rate groups, ``H`` swept optimizer hyperparameters, ``R``
recorded epochs of a trajectory, ``n`` examples.

Their fields carry shape annotations (jaxtyping: ``Float[Array, "C G"]`` is a floating array of
shape ``(C, G)``; ``...`` any trailing axes; ``*rec`` none for a summary, ``(R,)`` for a
trajectory). :func:`boundary_errors` checks a chunk's inputs and result against them, the named
axes bound alike across every field; ``engine.run_chunk`` calls it while tracing, so it costs
nothing per call and every test that trains checks it.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Literal, NamedTuple, TypeAlias, get_args

import jax
import jaxtyping as jt
import numpy as np
from jaxtyping import Float, Int8, Int32, UInt32

#: Any JAX pytree (nested dicts, lists and tuples of arrays); parameters are one.
PyTree: TypeAlias = Any
#: An array on the device or on the host (inputs are built in numpy; results come back as numpy).
Array: TypeAlias = jax.Array | np.ndarray
#: A scalar of the compute dtype.
Scalar: TypeAlias = jax.Array | np.ndarray | np.floating

GradName = Literal["autodiff", "forward", "central"]
PrecisionName = Literal["float32", "float64", "mixed"]
RecordName = Literal["summary", "trajectory"]
KernelName = Literal["auto", "xla", "pallas", "pallas-interpret", "pallas-examples", "pallas-examples-interpret"]

RECORDS: tuple[RecordName, ...] = get_args(RecordName)
KERNELS: tuple[KernelName, ...] = get_args(KernelName)

#: The one list of a result's names besides its parameters: variables, dims and a store's own
#: arrays. A held-out metric ``m`` adds the variables ``m`` and ``best_m``. No parameter may take a
#: name of this list (``lrsweep.problems.RESERVED_NAMES`` derives from it), nor a metric's name.
RESULT_VARIABLES = ("loss", "outcome", "event_epoch", "score", "best_loss", "best_epoch", "sum_v", "sum_inv_v")
RESULT_DIMS = ("problem_seed", "data_seed", "lr", "init", "epoch", "eval_step")
STORE_ARRAYS = ("chunk", "chunk_done", "chunk_checksum", "chunk_env")
#: The held-out loss every problem with evaluation data reports, and the prefix of a metric's best value.
EVAL_LOSS = "eval_loss"
BEST_PREFIX = "best_"


class ChunkInputs(NamedTuple):
    """One chunk's arrays. Swept values and data are arguments, never constants: new values never
    recompile the program.

    Built and read by field name only: :attr:`PER_CONFIG` names the fields that hold one value per
    config (a leading axis ``C``), :attr:`SCALARS` the shared scalars; every other field is shared
    by the chunk's configs. :meth:`axes` derives from them what ``vmap`` and a sharding take, so a
    new input is one field here (and its value where ``runner.Job.inputs`` builds a chunk).
    """

    lr: Float[Array, "C G"]  # compute dtype; parameter leaf k uses lr[:, leaf_group[k]]
    hyper: Float[Array, "C H"]  # compute dtype; H may be 0
    params0: jt.PyTree[Float[Array, "C ..."]]  # leaves (C, *leaf_shape), parameter dtype
    x: Float[Array, "n ..."]  # compute dtype, shared by every config
    y: Float[Array, "n ..."]  # compute dtype
    h: Float[Scalar, ""]  # compute dtype: the finite-difference step
    zero: Float[Scalar, ""]  # compute dtype: a zero XLA cannot fold away (see engine._mean_loss)
    rtol: Float[Scalar, ""]  # compute dtype: the convergence tolerance (lrsweep.outcomes)
    min_loss: Float[Scalar, ""]  # compute dtype: the problem's minimum loss; NaN when unknown
    plateau_rtol: Float[Scalar, ""]  # compute dtype: the plateau's relative spread (lrsweep.outcomes)
    data_seed: UInt32[Array | np.integer, ""] | None = None  # the minibatch order's seed, shared by the chunk
    x_eval: Float[Array, "n_eval ..."] | None = None  # compute dtype: held-out data, shared (None: no metrics)
    y_eval: Float[Array, "n_eval ..."] | None = None  # compute dtype

    #: The fields with one value per config (leading axis ``C``): split among a chunk's configs.
    PER_CONFIG = ("lr", "hyper", "params0")
    #: The scalar fields, ``()`` in the compute dtype (a fused kernel reads them as one array).
    SCALARS = ("h", "zero", "rtol", "min_loss", "plateau_rtol")

    @classmethod
    def axes(cls, per_config: Any, shared: Any) -> ChunkInputs:
        """``per_config`` at each field of :attr:`PER_CONFIG` and ``shared`` at every other: the
        pytree prefix that ``vmap``'s ``in_axes`` (``0``, ``None``) and a sharding's partition
        specs take."""
        return cls(**{f: per_config if f in cls.PER_CONFIG else shared for f in cls._fields})


class ChunkResult(NamedTuple):
    """One chunk's results (for ``train_one``, the same without the leading ``C``)."""

    loss: Float[Array, " C *rec"] | None  # final loss (C,), or (C, R) for a trajectory; None if a trajectory keeps none
    params: list[Float[Array, "C ..."]]  # leaves (C, *leaf_shape) or (C, R, *leaf_shape), JAX flattening order
    outcome: Int8[Array, " C"]  # code, lrsweep.outcomes
    event_epoch: Int32[Array, " C"]
    score: Float[Array, " C"]  # compute dtype: mean of the last K relative losses, clipped (lrsweep.outcomes)
    best_loss: Float[Array, " C"]  # compute dtype: the lowest loss over epochs 0..E, NaN-aware
    best_epoch: Int32[Array, " C"]  # the first epoch with best_loss (-1: every loss NaN)
    sum_v: Float[Array, " C"] | None = None  # compute dtype with track_sums: sum over steps of L_e / L_0, clipped
    sum_inv_v: Float[Array, " C"] | None = None  # compute dtype with track_sums: sum over steps of L_0 / L_e
    #: held-out metrics: ``<name>`` (C,) at the last evaluation, or (C, R_eval) at every evaluation
    #: for a trajectory, and ``best_<name>`` (C,) over all evaluations; None without held-out data
    metrics: dict[str, Float[Array, "C ..."]] | None = None
    # With track_sharpness (lrsweep.sharpness), in the compute dtype unless said otherwise:
    sharpness: Float[Array, "C ..."] | None = None  # the last estimate (C,), or every estimate (C, S) for a trajectory
    max_sharpness: Float[Array, " C"] | None = None  # the largest estimate
    sharpness_residual: Float[Array, " C"] | None = None  # the last estimate's |H v - mu v| / |mu|
    edge_step: Int32[Array, " C"] | None = None  # the first step at the edge of stability; -1: never
    edge_sharpness: Float[Array, " C"] | None = None  # the optimizer's threshold (2 / lr for gd); NaN: none


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint``: a jaxtyping array type (by ``isinstance``, which binds the
    named axes), ``None``, or a union, list or dict of these. ``isinstance`` on a union would test
    the value's class alone, so the alternatives are tried one by one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_matches(v, args[1]) for v in value.values())
    return value is None if hint is type(None) else isinstance(value, hint)


def _describe(leaf: Any) -> str:
    return f"{np.dtype(leaf.dtype).name}{list(np.shape(leaf))}" if hasattr(leaf, "dtype") else type(leaf).__name__


@jt.jaxtyped(typechecker=None)
def boundary_errors(*values: ChunkInputs | ChunkResult) -> list[str]:
    """The fields of ``values`` whose dtype or shape does not match their annotation, one line
    each; empty when all match. Every named axis (``C``, ``n`` ...) takes one size across all the
    values: pass a chunk's inputs and its result together. Call it inside ``jit`` (it reads only
    shapes and dtypes) or on host arrays."""
    errors = []
    for value in values:
        cls = type(value)
        for name, hint in _hints(cls).items():
            field = getattr(value, name)
            if not _matches(field, hint):
                got = jax.tree.map(_describe, field)
                written = cls.__annotations__[name]  # the annotation as written (a ForwardRef in a NamedTuple)
                errors.append(
                    f"{cls.__name__}.{name} is {got}, expected {getattr(written, '__forward_arg__', written)}"
                )
    return errors
