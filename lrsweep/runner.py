"""Running a sweep's chunks into a sink, in order, with a progress bar.

A :class:`Job` holds everything needed to train any chunk of a sweep: which configs it holds
(``lrsweep.axes``), how the result is laid out (``lrsweep.plan``) and the compiled program's static
settings (``lrsweep.engine``). :func:`run` trains every chunk the sink does not have yet and writes
each one, then its done-mark, in chunk order.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import warnings

import jax
import numpy as np
from tqdm.auto import tqdm

from . import devices, engine, kernel_paths, outcomes, plan, sharpness
from .axes import Axes
from .plan import Layout
from .problems import Problem
from .types import ChunkInputs, ChunkResult


@dataclasses.dataclass
class Job:
    """A planned sweep.

    Attributes:
      layout: the result's dims, variables and chunk shape.
      axes: the sweep's axes (a config's index -> its values).
      statics: the engine's static settings, one per problem instance (``problem_seed``).
      instances: the problem instances.
      chunk: configs per compiled chunk (a chunk's configs, padded to this many).
      h, rtol: the finite-difference step and the convergence tolerance.
      devices: local devices a chunk is sharded over (``lrsweep.devices``), at most; a chunk runs
        on the most of them that split it into equal blocks (``devices.usable``).
    """

    layout: Layout
    axes: Axes
    statics: list[engine.Static]
    instances: list[Problem]
    chunk: int
    h: float
    rtol: float
    devices: int = 1

    def inputs(self, k: int) -> tuple[int, ChunkInputs]:
        """Chunk ``k``'s problem instance and inputs, padded to ``chunk`` configs with copies of its
        last config (their results are dropped). Call inside the policy's context."""
        region = self.layout.chunk_region(k)
        grids = np.meshgrid(*[np.arange(s.start, s.stop) for s in region], indexing="ij")
        idx = {
            d: np.concatenate([g.ravel(), np.full(self.chunk - g.size, g.ravel()[-1])])
            for d, g in zip(self.axes.dims, grids)
        }
        which = int(idx["problem_seed"][0]) if "problem_seed" in idx else 0
        static, problem = self.statics[which], self.instances[which]
        policy = static.policy
        scalar = policy.compute_dtype.type
        lr, hyper, params0 = self.axes.configs(idx, policy)
        x, y = engine.to_compute_dtype(static, problem.x, problem.y)
        zero = scalar(0.0)  # a zero that XLA sees only at run time (engine._mean_loss)
        min_loss = np.nan if problem.min_loss is None else problem.min_loss  # NaN: unknown (lrsweep.outcomes)
        plateau_rtol = self.layout.attrs.get("plateau_rtol", outcomes.DEFAULT_PLATEAU_RTOL)
        # A chunk holds one data seed (plan.chunk_shape): the minibatch order is shared by its configs.
        data_seed = np.uint32(self.axes.coords["data_seed"][idx["data_seed"][0]] if "data_seed" in idx else 0)
        x_eval = y_eval = None
        if static.metrics:
            x_eval, y_eval = engine.to_compute_dtype(static, problem.x_eval, problem.y_eval)
        inputs = ChunkInputs(
            lr=lr,
            hyper=hyper,
            params0=params0,
            x=x,
            y=y,
            h=scalar(self.h),
            zero=zero,
            rtol=scalar(self.rtol),
            min_loss=scalar(min_loss),
            plateau_rtol=scalar(plateau_rtol),
            data_seed=data_seed if static.batch_size else None,
            x_eval=x_eval,
            y_eval=y_eval,
        )
        return which, inputs

    def train(self, k: int) -> dict[str, np.ndarray]:
        """Train chunk ``k``; its results shaped like its region, the padding dropped."""
        policy = self.statics[0].policy
        with policy.context():  # JAX's x64 switch is per thread
            which, inputs = self.inputs(k)
            static = self.statics[which]
            try:
                result = devices.run_chunk(inputs, static, devices.usable(self.devices, self.chunk))
            except Exception as err:
                if not (static.kernel == "auto" and kernel_paths.kernel_path(static, self.chunk) != "xla"):
                    raise
                self._fall_back_to_xla(err)
                result = devices.run_chunk(inputs, self.statics[which], devices.usable(self.devices, self.chunk))
            result = jax.tree.map(np.asarray, result)
        return self.values(k, result, self.statics[which])

    def _fall_back_to_xla(self, err: Exception) -> None:
        warnings.warn(
            f"lrsweep: the fused GPU kernel failed to compile ({type(err).__name__}: {err}); using the XLA path",
            RuntimeWarning,
            stacklevel=3,
        )
        self.statics = [dataclasses.replace(st, kernel="xla") for st in self.statics]
        self.layout.attrs["kernel_path"] = "xla"

    def values(self, k: int, result: ChunkResult, static: engine.Static) -> dict[str, np.ndarray]:
        """A chunk's outputs as the layout's variables, the padding dropped, shaped like its region."""
        region = self.layout.chunk_region(k)
        shape = tuple(s.stop - s.start for s in region)
        n = int(np.prod(shape))
        names = self.axes.names
        trajectory_subset = static.record == "trajectory" and static.keep_leaves is not None
        kept = static.keep_leaves if static.keep_leaves is not None and trajectory_subset else range(len(names))
        values = {"outcome": result.outcome, "event_epoch": result.event_epoch, "score": result.score}
        values.update(best_loss=result.best_loss, best_epoch=result.best_epoch)
        if result.sum_v is not None and result.sum_inv_v is not None:
            values.update(sum_v=result.sum_v, sum_inv_v=result.sum_inv_v)
        values.update({f: getattr(result, f) for f in sharpness.FIELDS if getattr(result, f) is not None})
        if result.loss is not None:
            values["loss"] = result.loss
        values.update(result.metrics or {})
        values.update({names[i]: leaf for i, leaf in zip(kept, result.params)})
        return {
            name: np.asarray(v)[:n].reshape(*shape, *np.shape(v)[1:])
            for name, v in values.items()
            if name in self.layout.variables
        }


def progress_bar(job: Job, todo: list[int], show: bool) -> tqdm:
    """The sweep's progress bar in config-steps, starting at what the chunks not in ``todo`` did."""
    epochs = job.statics[0].epochs
    total = job.axes.size * epochs
    return tqdm(
        total=total,
        initial=total - sum(job.layout.chunk_configs(k) for k in todo) * epochs,
        disable=not show,
        unit="config-step",
        unit_scale=True,
        desc="sweep",
        smoothing=0.1,
    )


def run(job: Job, sink, show: bool) -> None:
    """Train every chunk ``sink`` does not have and write it there in order, with a progress bar.

    Up to ``plan.workers()`` chunks compute at once in threads (JAX releases the GIL while a
    program runs); this thread writes each chunk, then its done-mark, in chunk order.
    """
    layout, epochs = job.layout, job.statics[0].epochs
    todo = [k for k in range(layout.n_chunks) if not sink.is_done(k)]
    bar = progress_bar(job, todo, show)
    n_workers = plan.workers()
    pool = concurrent.futures.ThreadPoolExecutor(n_workers)
    try:
        queue = iter(todo)
        pending = collections.deque((k, pool.submit(job.train, k)) for k in itertools.islice(queue, n_workers))
        n_done = layout.n_chunks - len(todo)
        while pending:
            k, future = pending.popleft()
            values = future.result()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(job.train, nxt)))
            sink.write(k, values)
            sink.mark_done(k)
            n_done += 1
            bar.update(layout.chunk_configs(k) * epochs)
            bar.set_postfix_str(f"chunk {n_done}/{layout.n_chunks}", refresh=False)
    finally:
        # On an error or Ctrl-C, drop the queued chunks; a chunk already computing finishes first.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
