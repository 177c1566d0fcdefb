"""Running a planned sweep into its sink: here, chunks in threads (``lrsweep.runner``), or as tasks
on Dask workers (``lrsweep.distributed``), as the plan's run options say.

:func:`run` takes a :class:`~lrsweep.planner.Plan` and an open :class:`~lrsweep.sinks.Sink`
(``sinks.open_sink``), trains every chunk the sink does not hold yet and returns the result with
what it cost (:class:`Ran`). ``sweep`` is plan, open the sink, run; ``lrsweep run`` does the same
steps itself to print the plan and time the compile.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import xarray as xr

from . import distributed, engine, runner, store
from .planner import Plan
from .runner import Job
from .sinks import Sink, todo


class SweepInterrupted(KeyboardInterrupt):
    """Raised when a sweep is interrupted (Ctrl-C); ``.partial`` holds every finished chunk.

    In ``.partial`` the configs that were not trained have NaN losses and parameters, outcome
    code -1 ("pending") and ``event_epoch`` -1. With ``out=``, the finished chunks are on disk too
    and the same call resumes.
    """

    def __init__(self, partial: xr.Dataset):
        super().__init__("sweep interrupted; the finished chunks are in .partial")
        self.partial = partial


@dataclasses.dataclass(frozen=True, eq=False)
class Ran:
    """A finished run: its result, the plan it ran, and what it cost.

    Attributes:
      dataset: the result (read from the store with ``out``).
      plan: the plan it ran (planned once: its problem factory ran once per instance).
      compile_s: seconds to compile the first chunk's program ahead of the run (``compile_first``),
        0.0 when no chunk was left to compute, None when not asked or where that compile failed
        (then compiling is part of ``sweep_s``).
      sweep_s: seconds to train the chunks and build the result.
      configs_computed: configs trained by this run (a resumed store's finished chunks excluded).
    """

    dataset: xr.Dataset
    plan: Plan
    compile_s: float | None
    sweep_s: float
    configs_computed: int


def job_for(planned: Plan, sink: Sink) -> Job:
    """The job that trains ``planned`` into ``sink``: the sink's layout (a resumed store keeps its
    chunk shape and size)."""
    return planned.job(sink.layout)


def compile_chunk(job: Job, k: int) -> float | None:
    """Seconds to compile chunk ``k``'s program ahead of time (``engine.run_chunk.lower(...).compile()``,
    which fills JAX's cache, so the run reuses it), or None where that failed (a kernel that does not
    compile: the run falls back and reports)."""
    t0 = time.perf_counter()
    try:
        static = job.statics[0]
        with static.policy.context():
            _which, inputs = job.inputs(k)
            engine.run_chunk.lower(inputs, static=static).compile()
    except Exception:  # noqa: BLE001 - the run itself reports what does not compile
        return None
    return time.perf_counter() - t0


def run(planned: Plan, sink: Sink, *, compile_first: bool = False) -> Ran:
    """Train every chunk of ``planned`` that ``sink`` does not hold, here or on Dask workers (as
    ``planned.options`` say). Public as ``lrsweep.run_plan``.

    ``compile_first``: compile the first chunk's program before the run and time it apart. A
    Ctrl-C raises :class:`SweepInterrupted` with the finished chunks.

    Returns:
      :class:`Ran`: ``dataset`` the whole result (what ``sweep`` returns: dims ``planned.axes.dims``,
      plus ``epoch`` for a trajectory), ``configs_computed`` the configs this call trained, and timings.
    """
    options = planned.options
    job = job_for(planned, sink)
    left = todo(sink)
    configs = sum(job.layout.chunk_configs(k) for k in left)
    compile_s = None
    if compile_first:
        compile_s = compile_chunk(job, left[0]) if left else 0.0
    show = options.progress if options.progress is not None else (job.layout.n_chunks > 1 and sys.stderr.isatty())
    t0 = time.perf_counter()
    try:
        if distributed.wanted(options):  # Dask workers train the chunks and write them to the store
            assert isinstance(sink, store.ZarrSink)
            retries = distributed.run(job, sink, planned.spec, options, show)
            ds = sink.dataset()
            ds.attrs["chunk_retries"] = json.dumps({str(k): n for k, n in sorted(retries.items())})
            return Ran(ds, planned, compile_s, time.perf_counter() - t0, configs)
        runner.run(job, sink, show)
    except KeyboardInterrupt:
        raise SweepInterrupted(sink.dataset()) from None
    ds = sink.dataset()
    return Ran(ds, planned, compile_s, time.perf_counter() - t0, configs)
