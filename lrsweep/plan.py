"""Planning a sweep: the shape of its result, its chunks, and the memory they take.

A sweep's configs form a grid (``lrsweep.axes``). It is cut into *chunks*: rectangular blocks of
the grid of at most ``chunk`` configs, each trained by one compiled program and written as one
region of the result. :func:`chunk_size` picks ``chunk`` from the problem's cost and the memory
budget; :func:`layout` describes the result (dims, variables, dtypes) for the sinks of
``lrsweep.store``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from . import _checks, engine, engine_data, gradients, sharpness, sums
from .axes import Axes
from .problems import Problem
from .types import BEST_PREFIX, EVAL_LOSS

#: Configs per compiled chunk of the lesson's problem, at most; costlier problems get fewer
#: (``_chunk_size``). Large chunks keep the per-epoch loop overhead small (throughput is about 2x
#: that of 4096-config chunks); the memory budget may ask for fewer.
MAX_CHUNK = 65536
#: Trajectory chunks are at most this many configs: a small trajectory sweep then pads to a few
#: thousand configs, not tens of thousands.
MAX_TRAJECTORY_CHUNK = 4096
#: Chunks are powers of two, at least this many configs. XLA:CPU compiles a chunk of one config
#: differently (scalar code) and rounds differently. From a few configs on, where
#: ``chunk_invariant`` holds (the lesson, chapter_net, small bowls, any finite difference) every
#: config's result is the same bit for bit whatever the chunk size, so results never depend on the
#: budget, on the sweep's size or on how a grid is split (tests check this). Otherwise (autodiff on
#: more than ``sums.UNROLL_MAX`` examples) the block a config trains in (``chunks``) is fixed by
#: the problem and the budget, and other budgets agree to rounding. A resumed store always keeps
#: its chunk size.
MIN_CHUNK = 8
#: A chunk (one call, one region of a store) holds at least this many configs where the budget
#: allows. A costly problem still trains in small blocks (``engine.Static.block``), whose
#: activations stay in cache; the call (about 0.4 ms) and the store's write (about 10 ms for a
#: summary) are paid once per chunk. Measured on the fractal paper's network, blocks of 8: chunks
#: of 8 configs spent more time in the store than in training.
MIN_CALL_CONFIGS = 1024


@dataclasses.dataclass
class Variable:
    """One result variable: its dims, shape, dtype, fill ("not trained yet") and xarray attrs
    (``long_name`` and ``units``, CF style)."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    fill: Any
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)


def coord_attrs(name: str) -> dict[str, str]:
    """``long_name`` and ``units`` of a result's coordinate (a sweep dim, ``epoch`` or ``init_<name>``)."""
    if name == "lr":
        return {"long_name": "learning rate", "units": "1"}
    if name.startswith("lr_"):
        return {"long_name": f"learning rate of group {name[3:]}", "units": "1"}
    if name.startswith("opt_"):
        return {"long_name": f"optimizer hyperparameter {name[4:]}", "units": "1"}
    if name == "init":
        return {"long_name": "initialisation index", "units": "1"}
    if name.startswith("init_"):
        return {"long_name": f"initial value of parameter {name[5:]}", "units": "1"}
    if name == "problem_seed":
        return {"long_name": "problem instance seed", "units": "1"}
    if name == "data_seed":
        return {"long_name": "minibatch order seed", "units": "1"}
    if name == "eval_step":
        return {"long_name": "optimizer steps before the held-out evaluation", "units": "1"}
    if name == "epoch":
        return {"long_name": "epoch", "units": "1"}
    if name == "sharpness_step":
        return {"long_name": "step of the sharpness estimate (before that step's update)", "units": "1"}
    return {}


@dataclasses.dataclass
class Layout:
    """The shape of a sweep's result.

    Attributes:
      dims, shape: the sweep's dims and sizes (configs are their Cartesian product).
      chunk_shape: the shape of a chunk (a block of configs computed together) in the grid of configs.
      coords: dim -> ``grid.Axis`` (or a 1-D array) of coordinate values.
      extra_coords: name -> (dim, 1-D array), e.g. ``init_w`` along ``init``.
      epochs: the recorded epochs (steps) of a trajectory, or None for a summary.
      variables: name -> :class:`Variable`; ``outcome`` holds int8 codes, -1 for "pending"
        (``lrsweep.outcomes``).
      attrs: the Dataset's attributes (settings, and ``spec`` as JSON).
      step_coords: a trajectory's other step axes, dim -> 1-D array of steps: ``eval_step`` (the
        held-out evaluations) and ``sharpness_step`` (the sharpness estimates).
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    coords: dict[str, Any]
    extra_coords: dict[str, tuple[str, np.ndarray]]
    epochs: np.ndarray | None
    variables: dict[str, Variable]
    attrs: dict[str, Any]
    step_coords: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        """Chunks along each sweep dim."""
        return tuple(-(-s // t) for s, t in zip(self.shape, self.chunk_shape))

    @property
    def n_chunks(self) -> int:
        return int(np.prod(self.chunk_grid, dtype=np.int64))

    def chunk_region(self, k: int) -> tuple[slice, ...]:
        """The region (one slice per sweep dim) of chunk ``k`` (C order over the grid of chunks)."""
        pos = np.unravel_index(k, self.chunk_grid)
        return tuple(slice(p * t, min((p + 1) * t, s)) for p, t, s in zip(pos, self.chunk_shape, self.shape))

    def chunk_configs(self, k: int) -> int:
        """Configs in chunk ``k`` (the last chunks along a dim may be smaller)."""
        return int(np.prod([s.stop - s.start for s in self.chunk_region(k)], dtype=np.int64))

    def coord_values(self, dim: str, sl: slice = slice(None)) -> np.ndarray:
        axis = self.coords[dim]
        idx = np.arange(*sl.indices(self.shape[self.dims.index(dim)]))
        return axis.at(idx) if hasattr(axis, "at") else np.asarray(axis)[idx]

    def nbytes(self) -> int:
        """Bytes of the result's variables."""
        return sum(int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize for v in self.variables.values())

    def coords_nbytes(self) -> int:
        """Bytes of the result's coordinates (every sweep dim's values, extra coords, epochs)."""
        n = sum(int(self.coord_values(d, slice(0, 1)).itemsize) * s for d, s in zip(self.dims, self.shape))
        n += sum(int(np.asarray(v).nbytes) for _, v in self.extra_coords.values())
        n += sum(int(v.nbytes) for v in self.step_coords.values())
        return n + (0 if self.epochs is None else int(self.epochs.nbytes))


def _work(problem: Problem, grad: str, batch: int = 0) -> int:
    """Rough cost of one config-step: parameters x examples (a minibatch's) x loss evaluations."""
    n_param = gradients.n_elements(problem.init)
    evals = {"autodiff": 3, "forward": n_param + 1, "central": 2 * n_param + 1}[grad]
    return n_param * (batch or problem.n_data) * evals


#: The lesson's cost in ``_work`` units (2 parameters x 4 examples x 3), the yardstick for chunks.
_LESSON_WORK = 24


def bytes_per_config(static: engine.Static, problem: Problem) -> int:
    """A generous estimate of the memory one config of a chunk takes, on device and on the host."""
    item = static.policy.compute_dtype.itemsize
    n_param = gradients.n_elements(problem.init)
    width = int(np.prod(problem.x.shape[1:], dtype=np.int64)) + int(np.prod(problem.y.shape[1:], dtype=np.int64))
    # Parameters, optimizer state and gradient copies, and the per-example activations of a batch.
    # The score's window of losses (the last scan's output, or a trajectory's ring): a few copies.
    state = item * (16 * n_param * 3 + 8 * problem.n_data * max(width, 1) + 64 + 3 * static.score_window)
    state += item * (8 * static.n_eval * max(width, 1) + 4 * len(static.metrics))  # held-out activations, best
    records = 0
    if static.record == "trajectory":
        leaves = jax.tree.leaves(problem.init)
        chosen = static.keep_leaves if static.keep_leaves is not None else range(len(leaves))
        kept = (1 if static.keep_loss else 0) + sum(int(np.prod(np.shape(leaves[k]))) for k in chosen)
        # The scan's output, its concatenation with the last epoch, and the host copy.
        records = 3 * item * kept * len(static.recorded_epochs())
        records += 3 * item * len(static.metrics) * len(engine_data.eval_steps(static))
    if static.track_sharpness:  # the power-iteration vector and a product's tangents; the estimates
        records += item * (16 * n_param + 8 * problem.n_data * max(width, 1) + 3 * n_sharpness(static))
    return int(state + records)


def inflight_bytes(static: engine.Static, problem: Problem, chunk: int) -> int:
    """Memory of the chunks in flight: ``workers()`` chunks of ``chunk`` configs (``bytes_per_config``)."""
    return bytes_per_config(static, problem) * chunk * workers()


#: Copies of the coordinates an in-memory result holds at its peak: the values, the pandas index
#: xarray builds on each dim, and two temporaries while they are computed (measured: a summary
#: sweep of 8e6 learning rates peaks at 17 bytes of results plus about 31 bytes per config).
COORD_COPIES = 4


def in_memory_bytes(layout: Layout) -> int:
    """Peak memory of a result held in memory (without ``out``): its variables and its coordinates' copies."""
    return layout.nbytes() + COORD_COPIES * layout.coords_nbytes()


#: Bytes per config that summarising a result takes at its peak (``lrsweep.summary``: the table's
#: blocks, and the suggested lr, which reads the outcomes, losses and scores whole as float64 and
#: pools them per lr), generously: benchmarks/memory_budget.py checks that ``lrsweep run --out``
#: stays within its budget with it (benchmarks/results/memory-cpu.md).
SUMMARY_BYTES = 128


def summary_configs(memory: int) -> int:
    """Configs that ``lrsweep run`` summarises within ``memory`` bytes: its blocks' size, and the
    most configs for which it combines runs per lr and suggests an lr (``lrsweep.summary``)."""
    return max(1, memory // SUMMARY_BYTES)


def human_size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _pow2_floor(v: float) -> int:
    return 2 ** int(np.floor(np.log2(max(1.0, v))))


def _pow2_ceil(n: int) -> int:
    return 2 ** int(np.ceil(np.log2(max(1, n))))


def default_memory() -> int:
    """The default memory budget: half the machine's memory, at most 4 GiB.

    The budget bounds what a sweep allocates for its data: the chunk in flight (on the device and
    its host copy) and, without ``out``, the whole result. The runtime's own footprint (Python,
    JAX and the libraries, about 250 MB on CPU) comes on top of it.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(min(4 * 2**30, total // 2))


def _bounds(static: engine.Static, problem: Problem, memory: int) -> tuple[int, int, int]:
    """``(per_config, by_memory, cap)``: bytes per config with every chunk in flight, the most
    configs (a power of two) the budget holds, and the record's largest chunk."""
    per_config = bytes_per_config(static, problem) * workers()  # every chunk in flight
    by_memory = _pow2_floor(memory / per_config) if memory >= per_config else 0
    cap = MAX_TRAJECTORY_CHUNK if static.record == "trajectory" else MAX_CHUNK
    return per_config, by_memory, cap


def chunk_size(static: engine.Static, problem: Problem, memory: int, requested: int | None, n_configs: int) -> int:
    """Configs per chunk: a power of two from ``MIN_CHUNK`` up, set by the problem's cost and the
    memory budget, and by the sweep's size only where that cannot change a bit (``chunk_invariant``)."""
    per_config, by_memory, cap = _bounds(static, problem, memory)
    if requested is not None:
        requested = _checks.integer("chunk_size", requested, 1)
        if requested * per_config > memory:
            raise ValueError(
                f"chunk_size={requested:,} needs about {human_size(requested * per_config)}, more than memory="
                f"{human_size(memory)}; choose a smaller chunk_size or raise --memory"
            )
        return requested
    if by_memory < MIN_CHUNK:
        raise ValueError(
            f"memory={memory} bytes is too small for one chunk of {MIN_CHUNK} configs, which needs about "
            f"{human_size(MIN_CHUNK * per_config)}; raise --memory, or record less (--record summary, "
            "--every k, --variables)"
        )
    # Costlier problems get fewer configs per chunk, so a chunk costs about what 65536 lesson configs do.
    by_work = max(MIN_CHUNK, _pow2_floor(MAX_CHUNK * _LESSON_WORK / _work(problem, static.grad, static.batch_size)))
    chunk = min(cap, by_work, by_memory)
    if chunk_invariant(static):  # a small sweep need not pad to a big chunk
        chunk = min(chunk, max(MIN_CHUNK, _pow2_ceil(n_configs)))
    return chunk


def chunks(static: engine.Static, problem: Problem, memory: int, n_configs: int) -> tuple[int, int]:
    """``(chunk, block)``: configs per call and per store region, and configs trained together.

    ``block`` is :func:`chunk_size`'s choice for the problem; the chunk is the smallest power of two
    multiple of it with ``MIN_CALL_CONFIGS`` configs, within the budget, the record's cap and the
    sweep's size shared among the ``workers()`` chunks in flight (a sweep of 100 configs in one
    chunk would leave the second core idle: measured 797 against 1639 config-steps/s on the fractal
    paper's network, forward differences). The chunk may follow the sweep's size even where
    ``chunk_invariant`` fails: a config's bits depend on its block, not on how many blocks a chunk
    holds (each block is the same compiled computation; tests/test_engine.py checks it).
    """
    block = chunk_size(static, problem, memory, None, n_configs)
    _, by_memory, cap = _bounds(static, problem, memory)
    chunk = max(block, min(MIN_CALL_CONFIGS, cap, by_memory))
    return min(chunk, max(block, _pow2_ceil(-(-n_configs // workers())))), block


def chunk_invariant(static: engine.Static) -> bool:
    """Whether every config's result is the same bit for bit in any chunk of ``MIN_CHUNK`` or more.

    True where no sum is left to XLA: data summed term by term (``sums.UNROLL_MAX`` examples or
    fewer), or finite differences, whose losses ``sums.tree_sum`` adds in a fixed order. Autodiff
    on a larger data set leaves the sum of per-example gradients to XLA, whose order can change with
    the chunk's shape (tests/test_store.py checks both).
    """
    if static.grad != "autodiff":
        return True
    # A minibatch of at most UNROLL_MAX examples is summed term by term; the whole set's loss (at
    # the start and the end) by tree_sum, unless a batch_loss hands it to XLA.
    whole = getattr(static.loss, "batch_loss", None) is not None and static.n_data > sums.UNROLL_MAX
    return (static.batch_size or static.n_data) <= sums.UNROLL_MAX and not whole


def chunk_shape(shape: tuple[int, ...], dims: list[str], chunk: int) -> tuple[int, ...]:
    """A block of at most ``chunk`` configs: whole trailing dims first, never more than one problem seed."""
    block, room = [], chunk
    for size in reversed(shape):
        t = min(size, max(1, room))
        block.append(t)
        room = room // t if t == size else 0
    block = block[::-1]
    for i, dim in enumerate(dims[:2]):
        if dim in ("problem_seed", "data_seed"):
            block[i] = 1  # each chunk trains on one problem instance's data, in one order
    return tuple(block)


def layout(axes: Axes, static: engine.Static, problem: Problem, attrs: dict) -> Layout:
    dims = tuple(axes.dims)
    traj = static.record == "trajectory"
    lead = dims + (("epoch",) if traj else ())
    n_rec = (len(static.recorded_epochs()),) if traj else ()
    variables = {}
    leaves = jax.tree.leaves(problem.init)
    if not traj or static.keep_loss:
        variables["loss"] = Variable(
            lead, axes.shape + n_rec, static.policy.compute_dtype, np.nan, {"long_name": "training loss", "units": "1"}
        )
    kept = range(len(leaves)) if (not traj or static.keep_leaves is None) else static.keep_leaves
    for k in kept:
        name, shape = axes.names[k], np.shape(leaves[k])
        extra = tuple(f"{name}_dim{i}" for i in range(len(shape)))
        text = {"long_name": f"parameter {name}", "units": "1"}
        variables[name] = Variable(lead + extra, axes.shape + n_rec + shape, static.policy.param_dtype, np.nan, text)
    variables["outcome"] = Variable(dims, axes.shape, np.dtype(np.int8), -1, {"long_name": "outcome of the run"})
    variables["event_epoch"] = Variable(
        dims,
        axes.shape,
        np.dtype(np.int32),
        -1,
        {"long_name": "epoch of the outcome's event (-1: none)", "units": "1"},
    )
    variables["score"] = Variable(
        dims,
        axes.shape,
        static.policy.compute_dtype,
        np.nan,
        {"long_name": "mean of the last score_window losses over the initial loss (trainable below 1)", "units": "1"},
    )
    if static.track_best:
        variables["best_loss"] = Variable(
            dims, axes.shape, static.policy.compute_dtype, np.nan, {"long_name": "lowest training loss", "units": "1"}
        )
        variables["best_epoch"] = Variable(
            dims, axes.shape, np.dtype(np.int32), -1, {"long_name": "epoch of the lowest loss (-1: none)", "units": "1"}
        )
    if static.track_sums:
        for name, text in (
            ("sum_v", "sum over steps of the relative loss L_e / L_0 (clipped at 1e6)"),
            ("sum_inv_v", "sum over steps of the inverse relative loss L_0 / L_e"),
        ):
            variables[name] = Variable(
                dims, axes.shape, static.policy.compute_dtype, np.nan, {"long_name": text, "units": "1"}
            )
    steps: dict[str, np.ndarray] = {}
    if traj and static.metrics:
        steps["eval_step"] = engine_data.eval_steps(static)
    n_eval = (len(engine_data.eval_steps(static)),) if traj else ()
    for name, _, up in static.metrics:
        goal = {"goal": "max" if up else "min", "units": "1"}
        where = "at each evaluation" if traj else "after the last step"
        text = "held-out loss" if name == EVAL_LOSS else f"held-out {name}"
        variables[name] = Variable(
            dims + (("eval_step",) if traj else ()),
            axes.shape + n_eval,
            static.policy.compute_dtype,
            np.nan,
            {"long_name": f"{text} {where}", **goal},
        )
        variables[BEST_PREFIX + name] = Variable(
            dims,
            axes.shape,
            static.policy.compute_dtype,
            np.nan,
            {"long_name": f"best {text} over evaluations", **goal},
        )
    if static.track_sharpness:
        sharp = {"sharpness_step": sharpness.steps(static.epochs, static.sharpness_every)} if traj else {}
        steps.update(sharp)
        variables.update(_sharpness_variables(dims, axes.shape, static, sharp))
    return Layout(
        dims=dims,
        shape=axes.shape,
        chunk_shape=axes.shape,
        coords=dict(axes.coords),
        extra_coords=dict(axes.extra_coords),
        epochs=static.recorded_epochs() if traj else None,
        variables=variables,
        attrs=attrs,
        step_coords=steps,
    )


def n_sharpness(static: engine.Static) -> int:
    """Sharpness estimates a config keeps: every one for a trajectory, the last for a summary."""
    return len(sharpness.steps(static.epochs, static.sharpness_every)) if static.record == "trajectory" else 1


def _sharpness_variables(dims, shape, static: engine.Static, steps: dict) -> dict[str, Variable]:
    """The variables ``track_sharpness`` adds (``lrsweep.sharpness``); the band is an attribute."""
    dtype, int32 = static.policy.compute_dtype, np.dtype(np.int32)
    band = {"edge_band": sharpness.EDGE_BAND, "sharpness_iters": static.sharpness_iters}
    band.update(sharpness_every=static.sharpness_every, sharpness_rtol=sharpness.RTOL)
    traj = dims + tuple(steps), shape + tuple(len(v) for v in steps.values())
    what = "every sharpness estimate" if steps else "the last sharpness estimate"
    texts = {
        "sharpness": (*traj, dtype, np.nan, f"{what}: top Hessian eigenvalue of the training loss"),
        "max_sharpness": (dims, shape, dtype, np.nan, "largest sharpness estimate"),
        "sharpness_residual": (dims, shape, dtype, np.nan, "last estimate's relative residual |Hv - mu v| / |mu|"),
        "edge_step": (dims, shape, int32, -1, "first step at the edge of stability (-1: never or no verdict)"),
        "edge_sharpness": (dims, shape, dtype, np.nan, "the edge: 2 / lr for gd, (2 + 2 momentum) / lr heavy ball"),
    }
    return {
        name: Variable(d, s, t, fill, {"long_name": text, "units": "1", **band})
        for name, (d, s, t, fill, text) in texts.items()
    }


#: Chunks in flight at once on CPU: XLA:CPU leaves part of a 2-core machine idle within one chunk's
#: epoch loop, and a second chunk fills it (lesson: 1.05 -> 1.66 G config-steps/s with autodiff,
#: 0.89 -> 1.06 G with forward differences). Each chunk's program and inputs are the same either
#: way, so results do not change; the memory budget is shared by the chunks in flight.
WORKERS = 2


def workers() -> int:
    """Chunks in flight at once: ``WORKERS`` on a multi-core CPU, else 1."""
    return WORKERS if jax.default_backend() == "cpu" and (os.cpu_count() or 1) > 1 else 1
