"""Shared types: the names the API accepts, and what crosses the engine's boundary.

``ChunkInputs`` and ``ChunkResult`` are what ``engine.run_chunk`` takes and returns for a *chunk*:
a block of ``C`` configs trained together by one compiled program (the word is used for that block
everywhere: in the code, in the docs, in the progress bar and in a store's done-marks).

Shapes: ``C`` configs, ``G`` learning-rate groups, ``H`` swept optimizer hyperparameters, ``R``
recorded epochs of a trajectory, ``n`` examples.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypeAlias, get_args

import jax
import numpy as np

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

    lr: Array  # (C, G) compute dtype; parameter leaf k uses lr[:, leaf_group[k]]
    hyper: Array  # (C, H) compute dtype; H may be 0
    params0: PyTree  # leaves (C, *leaf_shape), parameter dtype
    x: Array  # (n, ...) compute dtype, shared by every config
    y: Array  # (n, ...) compute dtype
    h: Scalar  # () compute dtype: the finite-difference step
    zero: Scalar  # () compute dtype: a zero XLA cannot fold away (see engine._mean_loss)
    rtol: Scalar  # () compute dtype: the convergence tolerance (lrsweep.outcomes)
    min_loss: Scalar  # () compute dtype: the problem's minimum loss; NaN when unknown
    plateau_rtol: Scalar  # () compute dtype: the plateau's relative spread (lrsweep.outcomes)
    data_seed: Array | np.integer | None = None  # () uint32: the minibatch order's seed, shared by the chunk
    x_eval: Array | None = None  # (n_eval, ...) compute dtype: held-out data, shared (None: no metrics)
    y_eval: Array | None = None  # (n_eval, ...) compute dtype

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

    loss: Array | None  # (C,) final loss, or (C, R) for a trajectory; None if a trajectory keeps none
    params: list[Array]  # leaves (C, *leaf_shape) or (C, R, *leaf_shape), JAX flattening order
    outcome: Array  # (C,) int8 code, lrsweep.outcomes
    event_epoch: Array  # (C,) int32
    score: Array  # (C,) compute dtype: mean of the last K relative losses, clipped (lrsweep.outcomes)
    best_loss: Array  # (C,) compute dtype: the lowest loss over epochs 0..E, NaN-aware
    best_epoch: Array  # (C,) int32: the first epoch with best_loss (-1: every loss NaN)
    sum_v: Array | None = None  # (C,) compute dtype with track_sums: sum over steps of L_e / L_0, clipped
    sum_inv_v: Array | None = None  # (C,) compute dtype with track_sums: sum over steps of L_0 / L_e
    #: held-out metrics: ``<name>`` (C,) at the last evaluation, or (C, R_eval) at every evaluation
    #: for a trajectory, and ``best_<name>`` (C,) over all evaluations; None without held-out data
    metrics: dict[str, Array] | None = None
    # With track_sharpness (lrsweep.sharpness), in the compute dtype unless said otherwise:
    sharpness: Array | None = None  # (C,) the last estimate, or (C, S) every estimate for a trajectory
    max_sharpness: Array | None = None  # (C,) the largest estimate
    sharpness_residual: Array | None = None  # (C,) the last estimate's |H v - mu v| / |mu|
    edge_step: Array | None = None  # (C,) int32: the first step at the edge of stability; -1: never
    edge_sharpness: Array | None = None  # (C,) the optimizer's threshold (2 / lr for gd); NaN: none
