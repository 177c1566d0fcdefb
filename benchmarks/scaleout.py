"""Scale-out measurements: what a sweep past one machine costs, and a model of a 1e12 config-step sweep.

    .venv/bin/python benchmarks/scaleout.py [--out benchmarks/results/scaleout-cpu.md]

Measures, on this machine:

1. Dask's per-task overhead: no-op tasks, and tiny lrsweep chunks (plan cached, train, write,
   done-mark, fsync), through a LocalCluster of 2 single-threaded worker processes.
2. Throughput of one sweep in one process (lrsweep's default: two chunks in flight) against the
   same sweep on 2 local Dask workers, warm (programs compiled) and end to end (cluster start,
   imports and compiles included).
3. Store write bandwidth: chunks of a trajectory written by a worker's writer with fsync.

and writes a Markdown report with a model table of a 1e12 config-step sweep against the number
of workers. Every number is a median of repeats where the run is short.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _median_s(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def noop(i: int) -> int:
    return i


def task_overhead(client, n: int = 2000) -> float:
    """Seconds per no-op task, submitted together and gathered (scheduler and worker round trips)."""
    from distributed import wait

    def once():
        futures = client.map(noop, range(n), pure=False)
        wait(futures)
        del futures

    once()
    return _median_s(once) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/scaleout-cpu.md")
    args = parser.parse_args()
    os.environ.setdefault("LRSWEEP_FSYNC", "1")

    import dask.config
    import distributed
    import jax

    import lrsweep
    from lrsweep import distributed as dist
    from lrsweep import executor, planner, sinks
    from lrsweep import spec as spec_mod

    tmp = Path(tempfile.mkdtemp(prefix="lrsweep-scaleout-"))
    facts: dict[str, float] = {}
    # -- 2. throughput: one process ---------------------------------------------------------------
    n_lr, epochs = 32 * 4096, 20000
    big: dict[str, Any] = dict(epochs=epochs, chunk_size=4096, record="summary")
    steps = n_lr * epochs
    lrsweep.sweep("linear", "log:1e-4:1:8192", **big)  # compile
    one = _median_s(lambda: lrsweep.sweep("linear", f"log:1e-4:1:{n_lr}", **big), 2)
    facts["one_process_rate"] = steps / one
    facts["chunk_seconds_one_process"] = one / (n_lr // 4096) * 2  # two chunks in flight

    # -- 1, 2 (warm) on 2 local workers --------------------------------------------------------------
    opts = {
        "distributed.worker.multiprocessing-method": "spawn",
        "distributed.nanny.pre-spawn-environ": {
            **dask.config.get("distributed.nanny.pre-spawn-environ", {}),
            **dist.worker_env(),
        },
    }
    t0 = time.perf_counter()
    with (
        dask.config.set(opts),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # pyright: ignore[reportArgumentType]
            silence_logs=40,
            env=dist.worker_env(),
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        facts["cluster_start_s"] = time.perf_counter() - t0
        facts["noop_task_s"] = task_overhead(client)
        # Tiny chunks: 8 configs x 10 epochs; the time is Dask plus lrsweep's per-chunk work.
        tiny: dict[str, Any] = dict(epochs=10, chunk_size=8, record="summary")
        n_tiny = 8 * 400
        lrsweep.sweep("linear", "log:1e-4:1:64", client=client, out=tmp / "warm-tiny.zarr", **tiny)
        t = _median_s(
            lambda: lrsweep.sweep(
                "linear", f"log:1e-4:1:{n_tiny}", client=client, out=tmp / f"tiny-{time.monotonic_ns()}.zarr", **tiny
            ),
            3,
        )
        facts["tiny_chunk_s"] = t / (n_tiny // 8)
        lrsweep.sweep("linear", "log:1e-4:1:8192", client=client, out=tmp / "warm-big.zarr", **big)
        two = _median_s(
            lambda: lrsweep.sweep(
                "linear", f"log:1e-4:1:{n_lr}", client=client, out=tmp / f"big-{time.monotonic_ns()}.zarr", **big
            ),
            2,
        )
        facts["two_workers_rate"] = steps / two
    # End to end: the CLI's path, cluster start, imports and compiles included.
    t0 = time.perf_counter()
    lrsweep.sweep("linear", f"log:1e-4:1:{n_lr}", workers=2, out=tmp / "e2e.zarr", **big)
    facts["two_workers_e2e_rate"] = steps / (time.perf_counter() - t0)

    # -- 3. store write bandwidth (trajectories: the heaviest records) ---------------------------------
    path = tmp / "bandwidth.zarr"
    traj = spec_mod.build("linear", "log:1e-4:1:32768", epochs=200, record="trajectory", chunk_size=4096, out=path)
    planned = planner.plan(*traj)
    with sinks.open_sink(planned) as sink:  # creates the store, the lock held
        job = executor.job_for(planned, sink)
    values = job.train(0)
    chunk_bytes = sum(v.nbytes for v in values.values())
    writer = dist.ChunkWriter(job.layout, path)
    t0 = time.perf_counter()
    for k in range(job.layout.n_chunks):
        writer.write(k, values)
    seconds = time.perf_counter() - t0
    facts["store_bytes_per_s"] = job.layout.n_chunks * chunk_bytes / seconds
    facts["store_chunk_mb"] = chunk_bytes / 1e6
    facts["store_disk_mb"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
    facts["summary_bytes_per_config"] = 4 * 3 + 1 + 4 + 4 + 4 + 4  # loss, w, b, outcome, event, score, best

    report = _report(facts, jax, platform, n_lr, epochs)
    Path(args.out).write_text(report)
    print(report)


def _model(facts: dict[str, float], rate: float, chunk: int, bytes_per_config: float, total: float = 1e12):
    """Rows (workers, hours, bound) of a ``total`` config-step summary sweep of 20,000 epochs."""
    epochs = 20000
    configs = total / epochs
    n_chunks = configs / chunk
    rows = []
    for w in (1, 2, 8, 64, 512, 4096):
        compute = n_chunks * (chunk * epochs / rate) / w
        sched = n_chunks * facts["noop_task_s"]  # the scheduler handles tasks one at a time
        disk = configs * bytes_per_config / facts["store_bytes_per_s"]
        t = max(compute, sched, disk)
        bound = {compute: "compute", sched: "scheduler", disk: "store"}[t]
        rows.append((w, compute, sched, disk, t, bound))
    return rows


def _report(facts, jax, platform, n_lr, epochs) -> str:
    f = facts
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Scale-out on CPU: measured",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, JAX {jax.__version__}, "
        f"backend {jax.default_backend()}. Command: `.venv/bin/python benchmarks/scaleout.py`.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| LocalCluster start (2 worker processes, spawn) | {f['cluster_start_s']:.2f} s |",
        f"| Dask per-task overhead, no-op tasks (2 workers) | {f['noop_task_s'] * 1e3:.2f} ms |",
        f"| lrsweep tiny chunk via Dask (8 configs x 10 epochs, write + done-mark + fsync) | {f['tiny_chunk_s'] * 1e3:.1f} ms |",
        f"| one process, lesson, {n_lr:,} lr x {epochs:,} epochs, chunks of 4096 | {f['one_process_rate']:.3g} config-steps/s |",
        f"| 2 local Dask workers, same sweep, warm | {f['two_workers_rate']:.3g} config-steps/s "
        f"(ratio {f['two_workers_rate'] / f['one_process_rate']:.2f}) |",
        f"| 2 local Dask workers, end to end (`workers=2`: start, imports, compiles) | {f['two_workers_e2e_rate']:.3g} "
        f"config-steps/s (ratio {f['two_workers_e2e_rate'] / f['one_process_rate']:.2f}) |",
        f"| store write, trajectory chunks of {f['store_chunk_mb']:.1f} MB, fsync on | "
        f"{f['store_bytes_per_s'] / 1e6:.0f} MB/s of results ({f['store_disk_mb']:.0f} MB on disk after compression) |",
        "",
        "## Model: a 1e12 config-step summary sweep (20,000 epochs, 5e7 configs)",
        "",
        "Time = max(compute, scheduler, store): compute = chunks x chunk time / workers; scheduler = chunks x "
        "per-task overhead (one scheduler handles tasks one at a time; the no-op measurement above); store = "
        f"result bytes / write bandwidth (measured above, local disk; {f['summary_bytes_per_config']} bytes per config). "
        "Start-up (cluster, imports, one compile per worker) comes on top, once. The store's bandwidth here is one "
        "local disk written by one process; on a parallel filesystem it grows with the storage targets, and a "
        "1e15 config-step sweep multiplies every column by 1000 (the bounds stay where they are).",
        "",
    ]
    cases = [
        ("CPU worker (one core, measured here)", f["two_workers_rate"] / 2, 4096),
        # Not measured by lrsweep: separate prototypes' H200 figures (docs/architecture.md, "GPU").
        ("GPU worker, XLA path (one H200; a prototype's figure, not lrsweep's: docs/architecture.md)", 2.1e11, 65536),
        (
            "GPU worker, fused kernel (one H200; a prototype's figure, not lrsweep's: docs/architecture.md)",
            1.26e12,
            65536,
        ),
    ]
    for name, rate, chunk in cases:
        lines += [
            f"### {name}: {rate:.3g} config-steps/s per worker, chunks of {chunk:,} configs",
            "",
            "| workers | compute | scheduler | store | total | bound by |",
            "|---:|---:|---:|---:|---:|---|",
        ]
        for w, compute, sched, disk, t, bound in _model(f, rate, chunk, f["summary_bytes_per_config"]):
            lines.append(f"| {w} | {_dur(compute)} | {_dur(sched)} | {_dur(disk)} | {_dur(t)} | {bound} |")
        lines.append("")
    return "\n".join(lines)


def _dur(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
