"""Many machines: a sweep's chunks as Dask tasks (``dask.distributed``), results straight into the store.

``lrsweep run ... --out S.zarr --scheduler tcp://HOST:PORT`` runs on an existing Dask cluster
(started with ``dask scheduler`` and ``dask worker``); ``--workers N`` starts a
``LocalCluster`` of ``N`` single-threaded worker processes on this machine; in Python,
``sweep(..., out=..., client=dask.distributed.Client(...))`` uses a client you made.

How it runs (docs/scaleout.md has the whole story):

- **The client** (this process) plans the sweep, takes the store's lock for the whole run, creates
  (or verifies and resumes) the store, and submits one task per chunk not done yet. It holds no
  results: it counts finished chunks with ``distributed.as_completed`` for the progress bar, at
  most :data:`WINDOW` tasks in flight at once.
- **A task** (:func:`train_chunk`) is a pure function of (spec, options, chunk index): the worker
  plans the sweep from the spec with ``planner.plan``, as the client did (a ``Problem`` object
  travels pickled with cloudpickle; a name or ``module:function`` is resolved on the worker), trains the chunk (on the worker's own
  devices, ``lrsweep.devices``), writes its region of the store and then its done-mark (fsync-ed,
  ``lrsweep.store``), and returns a few numbers. Workers never take the lock and never write the
  store's metadata. Running a task twice writes the same bytes, so a rescheduled chunk is harmless.
- **Faults**: a worker that dies mid-chunk has its task rescheduled by Dask; up to
  :data:`ALLOWED_FAILURES` deaths per chunk are allowed (Dask's ``allowed-failures``). The chunks
  that needed another attempt are named on stderr and in ``ds.attrs["chunk_retries"]``. If the
  client dies, the same command resumes from the done-marks.

The store must be reachable at the same path from every worker (a shared filesystem); client and
workers must run the same versions of lrsweep, JAX and Python on the same backend (each chunk
records its environment; a worker whose environment the store does not know is refused).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.storage

from . import _fs, identity, integrity, planner, runner, store, store_format
from .plan import Layout
from .runner import Job
from .spec import RunOptions, SweepSpec

#: Worker deaths a chunk survives before the sweep fails (Dask's ``distributed.scheduler.allowed-failures``,
#: default 3): one flaky worker must not sink a long sweep.
ALLOWED_FAILURES = 10
#: Chunks submitted ahead of the finished ones, beyond four per worker thread: the scheduler never
#: holds a million-chunk sweep's tasks at once.
WINDOW = 1024
#: The environment of a worker process: XLA on one thread per process (the workers are the
#: parallelism), and numerical libraries likewise. Merged with any ``XLA_FLAGS`` already set.
WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
_WAYS = ("scheduler", "workers", "client")


def wanted(options: RunOptions) -> bool:
    """Whether the options ask for Dask workers (``scheduler``, ``workers`` or ``client``; at most one,
    with ``out``: ``RunOptions`` checks that when it is built)."""
    return any(getattr(options, name) is not None for name in _WAYS)


def worker_env() -> dict[str, str]:
    """:data:`WORKER_ENV`, with this process's ``XLA_FLAGS`` kept in front of ours."""
    env = dict(WORKER_ENV)
    mine = os.environ.get("XLA_FLAGS", "").strip()
    if mine:
        env["XLA_FLAGS"] = f"{mine} {env['XLA_FLAGS']}"
    return env


# -- the worker's side ----------------------------------------------------------------------------


class ChunkWriter:
    """Writes chunks into an existing store made by the client (which holds its lock): a worker's side.

    The store's protocol for one chunk (``lrsweep.store``): its data (NaNs made canonical) and its
    environment index, synced; then its done-mark, a checksum of the data
    (``integrity.chunk_checksum``), synced. No creation, no verification, no repairs, no metadata
    written. Each chunk's files are its own (a Zarr chunk per variable, one per done-mark), so
    workers never write the same file unless they compute the same chunk, and then they write the
    same bytes.
    """

    def __init__(self, layout: Layout, path: str | Path):
        self.layout, self.path = layout, Path(path)
        self.where = f"--out={str(self.path)!r}"
        attrs, _ = integrity.load_attrs(self.path)
        if attrs is None or attrs.get("format") != store_format.FORMAT:
            raise ValueError(
                f"{self.where} is not an lrsweep store from this worker's view; the store must be on a filesystem "
                "every worker reaches, at the same path"
            )
        if identity.stored_differences(json.loads(attrs["spec"]), json.loads(layout.attrs["spec"])):
            raise ValueError(f"{self.where} holds another sweep than the one this worker was given")
        if tuple(attrs["chunk_shape"]) != tuple(layout.chunk_shape):
            self.layout = dataclasses.replace(layout, chunk_shape=tuple(attrs["chunk_shape"]))
        self.attrs = attrs
        self.names = list(attrs["variables"])
        self.group = zarr.open_group(zarr.storage.LocalStore(self.path), mode="r+", use_consolidated=False)

    def _array(self, name: str) -> zarr.Array:
        array = self.group[name]
        assert isinstance(array, zarr.Array), name
        return array

    def _env_index(self) -> int:
        env = integrity.environment(self.layout.attrs["kernel_path"])
        envs = self.attrs["environments"]
        if env not in envs:
            raise ValueError(
                f"{self.where}: this worker computes with {', '.join(integrity.env_differences(envs[-1], env))} "
                "(store vs worker); run the client and the workers with the same versions on the same backend"
            )
        return envs.index(env)

    def _file(self, name: str, coords: tuple[int, ...]) -> Path:
        return self.path / name / self._array(name).metadata.encode_chunk_key(coords)

    def write(self, k: int, values: dict[str, np.ndarray]) -> None:
        """Chunk ``k``'s data, then its done-mark, each synced (unless ``LRSWEEP_FSYNC=0``)."""
        region = self.layout.chunk_region(k)
        values = integrity.canonical_nans(values)
        env = self._env_index()
        checksum = integrity.chunk_checksum(values, self.names, env)
        pos = tuple(int(p) for p in np.unravel_index(k, self.layout.chunk_grid))
        files = []
        for name in self.names:
            array = self._array(name)
            array[region] = values[name]
            files.append(self._file(name, pos + (0,) * (array.ndim - len(pos))))
        self._array(integrity.ENVS)[k] = env
        self._sync(files + [self._file(integrity.ENVS, (k,))])
        self._array(integrity.MARKS)[k] = checksum
        self._sync([self._file(integrity.MARKS, (k,))])

    def _sync(self, files: list[Path]) -> None:
        if not store.FSYNC:
            return
        _fs.fsync_tree([f for f in files if f.exists()])
        # Every directory from a file's up to the store's own (new chunk directories included).
        dirs = {d for f in files for d in f.parents if len(d.parts) >= len(self.path.parts)}
        for d in sorted(dirs, key=lambda d: -len(d.parts)):
            if d.exists():
                _fs.fsync_dir(d)


_JOBS: dict[str, tuple[Job, ChunkWriter, threading.Lock]] = {}
_JOBS_LOCK = threading.Lock()


def _worker_job(spec: SweepSpec, options: RunOptions, token: str) -> tuple[Job, ChunkWriter, threading.Lock]:
    """This process's plan of the sweep and its writer, made once per sweep (``token``)."""
    with _JOBS_LOCK:
        if token not in _JOBS:
            job = planner.plan(spec, options).job()
            assert options.out is not None
            writer = ChunkWriter(job.layout, options.out)
            job = dataclasses.replace(job, layout=writer.layout)
            writer.layout = job.layout  # one layout: a kernel fallback's new path reaches the writer
            _JOBS.clear()  # one sweep at a time per worker process
            _JOBS[token] = (job, writer, threading.Lock())
        return _JOBS[token]


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def train_chunk(spec: SweepSpec, options: RunOptions, token: str, k: int) -> dict[str, Any]:
    """One Dask task: train chunk ``k`` of the sweep ``spec`` under ``options``, write it and its done-mark.

    Pure in (spec, options, k): the plan is made from them (and cached per process under ``token``,
    a digest of the canonical spec, chunk size and store). Returns only small metadata: the chunk,
    the worker and the seconds.
    """
    t0 = time.perf_counter()
    job, writer, lock = _worker_job(spec, options, token)
    values = job.train(k)
    with lock:
        writer.write(k, values)  # data synced, then the done-mark written and synced
    return {"chunk": k, "worker": _address(), "seconds": time.perf_counter() - t0}


# -- the client's side ----------------------------------------------------------------------------


@contextlib.contextmanager
def _connect(options: RunOptions) -> Iterator[Any]:
    """A client of the cluster the options name; a cluster made here is closed on the way out."""
    import dask.config
    import distributed

    if options.client is not None:
        yield options.client
        return
    config = {
        "distributed.worker.multiprocessing-method": "spawn",  # never fork a process with JAX in it
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
        "distributed.nanny.pre-spawn-environ": {
            **dask.config.get("distributed.nanny.pre-spawn-environ", {}),
            **worker_env(),
        },
    }
    with dask.config.set(config):
        if options.scheduler is not None:
            try:
                client = distributed.Client(options.scheduler, timeout="20s")
            except (OSError, TimeoutError) as err:
                raise ValueError(
                    f"scheduler={options.scheduler!r} cannot be reached ({type(err).__name__}: {err}); expected the "
                    "address a running `dask scheduler` prints, tcp://HOST:PORT"
                ) from None
            # A lost scheduler is reported in one line (run); the client's own reconnect errors,
            # tracebacks included, would bury it.
            names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
            levels = {name: logging.getLogger(name).level for name in names}
            for name in names:
                logging.getLogger(name).setLevel(logging.CRITICAL)
            try:
                with client:
                    yield client
            finally:
                for name, level in levels.items():
                    logging.getLogger(name).setLevel(level)
            return
        cluster = distributed.LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # pyright: ignore[reportArgumentType] - None: no dashboard
            silence_logs=logging.ERROR,
            env=worker_env(),
        )
        with cluster, distributed.Client(cluster) as client:
            yield client


def _allow_failures(client: Any) -> None:
    """Raise the scheduler's ``allowed_failures`` to :data:`ALLOWED_FAILURES` (never lower it).

    A cluster made here has it from the config; an existing scheduler gets it set in place.
    """

    def raise_it(dask_scheduler, n=ALLOWED_FAILURES):
        dask_scheduler.allowed_failures = max(int(dask_scheduler.allowed_failures), n)
        return dask_scheduler.allowed_failures

    with contextlib.suppress(Exception):  # a scheduler that refuses run_on_scheduler keeps its own setting
        client.run_on_scheduler(raise_it)


def _failures(client: Any, keys: list[str]) -> dict[str, int]:
    """Worker deaths while each task ran (the scheduler's ``suspicious`` count), for tasks with any."""

    def read(dask_scheduler, keys=tuple(keys)):
        counts = {}
        for key in keys:
            ts = dask_scheduler.tasks.get(key)
            if ts is not None and ts.suspicious:
                counts[key] = int(ts.suspicious)
        return counts

    try:
        return client.run_on_scheduler(read)
    except Exception:  # noqa: BLE001 - a scheduler that refuses run_on_scheduler: counts unknown
        return {}


def task_options(options: RunOptions, job: Job) -> RunOptions:
    """The options a worker gets: the store's chunk size and absolute path, nothing of the client's."""
    assert options.out is not None
    return dataclasses.replace(
        options,
        out=str(Path(options.out).resolve()),
        chunk_size=job.chunk,
        client=None,
        scheduler=None,
        workers=None,
        progress=None,
        break_lock=False,
    )


def run(job: Job, sink: store.ZarrSink, spec: SweepSpec, options: RunOptions, show: bool) -> dict[int, int]:
    """Train every chunk ``sink`` does not have on Dask workers; they write the store themselves, each
    with its own plan of the sweep from ``planner.plan(spec, ...)`` (as the client made ``job``).

    Returns ``{chunk: worker deaths}`` for the chunks that needed more than one attempt (also
    printed on stderr).
    """
    layout = job.layout
    todo = [k for k in range(layout.n_chunks) if not sink.is_done(k)]
    sent = task_options(options, job)
    token = hashlib.sha256(json.dumps([layout.attrs["spec"], job.chunk, sent.out]).encode()).hexdigest()[:16]
    bar = runner.progress_bar(job, todo, show)
    retries: dict[int, int] = {}
    try:
        _run_on(job, options, spec, sent, token, bar, todo, retries)
    except Exception as err:
        if not _lost(err):
            raise
        where = options.scheduler or "the Dask cluster"
        raise ValueError(
            f"scheduler={where!r} was lost during the sweep ({type(err).__name__}: {' '.join(str(err).split())[:200]}); the chunks "
            f"finished so far are kept in {options.out}: run the same command again to resume"
        ) from None
    if retries:
        shown = ", ".join(f"{k} ({n})" for k, n in sorted(retries.items()))
        print(
            f"lrsweep: {len(retries)} chunk(s) were rescheduled after their worker died (chunk (deaths)): {shown}",
            file=sys.stderr,
        )
    return retries


def _lost(err: BaseException) -> bool:
    """Whether ``err`` says the connection to the scheduler is gone (not a task's own error)."""
    import concurrent.futures

    from distributed.client import ClosedClientError
    from distributed.comm.core import CommClosedError

    return isinstance(err, (CommClosedError, ClosedClientError, concurrent.futures.CancelledError, TimeoutError))


def _run_on(job: Job, options: RunOptions, spec: SweepSpec, sent, token, bar, todo, retries) -> None:
    """:func:`run`'s loop: submit the chunks in a window, count worker deaths into ``retries``."""
    from distributed import as_completed

    layout, epochs = job.layout, job.statics[0].epochs
    with _connect(options) as client:
        _allow_failures(client)
        window = WINDOW + 4 * sum(client.nthreads().values())
        queue = iter(todo)
        futures = as_completed()
        live: dict[str, Any] = {}
        finished: list[Any] = []
        n_done = layout.n_chunks - len(todo)

        def submit(n: int) -> None:
            for _ in range(n):
                k = next(queue, None)
                if k is None:
                    return
                future = client.submit(train_chunk, spec, sent, token, k, key=f"lrsweep-chunk-{k}-{token}", pure=False)
                live[future.key] = future
                futures.add(future)

        def collect() -> None:  # worker deaths per finished task, then the futures are released
            for key, n in _failures(client, [f.key for f in finished]).items():
                retries[int(key.split("-")[2])] = n
            finished.clear()

        try:
            submit(window)
            for future in futures:
                meta = future.result()  # a task's exception is raised here
                finished.append(live.pop(future.key))
                submit(1)
                n_done += 1
                bar.update(layout.chunk_configs(meta["chunk"]) * epochs)
                bar.set_postfix_str(f"chunk {n_done}/{layout.n_chunks}", refresh=False)
                if len(finished) >= 256:
                    collect()
            collect()
        except BaseException:
            futures.clear()
            with contextlib.suppress(Exception):
                client.cancel(list(live.values()))  # tasks running on workers finish; they write the same bytes
            raise
        finally:
            bar.close()
