"""Scale-out: a chunk sharded over several devices, and chunks as tasks on Dask workers.

Every result is compared with a one-process, one-device run bit for bit. The clusters are real
(``dask scheduler`` and ``dask worker`` processes, or ``--workers N``'s LocalCluster), on 127.0.0.1
only, every process in its own session and killed at the end, every wait bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lrsweep
from lrsweep import distributed as dist

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

BIN = Path(sys.executable).parent
#: A sweep of many chunks, each a fraction of a second on one thread: long enough to kill a
#: worker in the middle of one. quadratic with problem_args: the CLI skips its theory step.
SWEEP = ["--problem", "quadratic", "--problem-args", "dim=2", "--lr", "log:1e-4:1:768", "--epochs", "30000"]
SETTINGS: dict[str, Any] = dict(problem_args={"dim": 2}, epochs=30000, chunk_size=32, record="summary")
CHUNKS = 768 // 32


def _same(a, b) -> None:
    """Every variable of two results equal bit for bit."""
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in a.data_vars:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        view = np.uint32 if x.dtype == np.float32 else np.uint8
        assert np.array_equal(x.view(view), y.view(view)), name


@pytest.fixture(scope="module")
def reference():
    """The sweep in this process, on one device: what every other run must reproduce."""
    return lrsweep.sweep("quadratic", "log:1e-4:1:768", **SETTINGS)


def _start(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, **dist.worker_env(), "LRSWEEP_FSYNC": "0"}
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=log.parent, **kw
        )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait(timeout=10)


def _wait(what, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s: {message}")


def _marks(store: Path) -> int:
    folder = store / "chunk_done" / "c"
    return sum(1 for f in folder.iterdir() if f.name.isdigit()) if folder.is_dir() else 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1: (address, worker processes)."""
    d = tmp_path_factory.mktemp("cluster")
    file = d / "scheduler.json"
    procs = [
        _start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(file)],
            d / "scheduler.log",
        )
    ]
    try:
        _wait(lambda: file.exists() and file.stat().st_size > 0, 30, "the scheduler's address file")
        address = json.loads(file.read_text())["address"]
        workers = [
            _start(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
                + ["--host", "127.0.0.1", "--name", f"w{i}"],
                d / f"worker{i}.log",
            )
            for i in range(2)
        ]
        procs += workers
        from distributed import Client

        with Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=30)
        yield address, workers
    finally:
        _stop(procs)


def test_four_devices_shard_each_chunk_and_change_no_bit(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"  # before JAX starts
        import jax, numpy as np, lrsweep
        assert jax.local_device_count() == 4
        init = lrsweep.init_grid(w="lin:-2:2:3")
        runs = {}
        for n, out in ((4, sys.argv[1]), (1, None)):
            runs[n] = lrsweep.sweep("linear", "log:1e-3:1:100", init=init, epochs=40, devices=n, out=out)
        auto = lrsweep.sweep("linear", "log:1e-3:1:100", init=init, epochs=40)
        assert auto.attrs["devices"] == 4 and runs[4].attrs["devices"] == 4 and runs[1].attrs["devices"] == 1
        assert lrsweep.open(sys.argv[1]).attrs["devices"] == 4
        for name in runs[1].data_vars:
            a, b, c = (np.asarray(r[name].values) for r in (runs[4], runs[1], auto))
            view = np.uint32 if a.dtype == np.float32 else np.uint8
            assert np.array_equal(a.view(view), b.view(view)) and np.array_equal(c.view(view), b.view(view)), name
        try:
            lrsweep.sweep("linear", 0.1, epochs=3, devices=8)
        except ValueError as err:
            print(err)
        try:
            lrsweep.sweep("linear", 0.1, epochs=3, devices=4, chunk_size=12)
        except ValueError as err:
            print(err)
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s.zarr")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok"
    assert lines[0] == "devices=8 is invalid: this process sees 4 cpu device(s); expected 1 to 4"
    assert lines[1].startswith("chunk_size=12 is invalid with devices=4: expected a multiple of 4 of at least 32")


def test_a_python_client_runs_named_and_pickled_problems(cluster, reference, tmp_path):
    from distributed import Client

    address, _ = cluster
    quad = lrsweep.Problem(
        name="quad",
        loss=lambda p, x, y: (p["a"] * x**2 - y) ** 2,  # a lambda: cloudpickle sends it by value
        x=np.linspace(-1, 1, 8),
        y=2 * np.linspace(-1, 1, 8) ** 2,
        init={"a": np.float32(0.0)},
    )
    with Client(address, timeout="20s") as client:
        ds = lrsweep.sweep("quadratic", "log:1e-4:1:768", client=client, out=tmp_path / "named.zarr", **SETTINGS)
        mine = lrsweep.sweep(quad, "log:1e-2:5:64", epochs=300, chunk_size=8, client=client, out=tmp_path / "q.zarr")
    _same(ds, reference)
    assert ds.attrs["chunks_done"] == CHUNKS and json.loads(ds.attrs["chunk_retries"]) == {}
    _same(mine, lrsweep.sweep(quad, "log:1e-2:5:64", epochs=300, chunk_size=8))
    with pytest.raises(ValueError, match=r"scheduler='tcp://127.0.0.1:1' needs out=: the workers write"):
        lrsweep.sweep("linear", 0.1, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match=r"scheduler='nowhere' is invalid: expected a Dask scheduler address"):
        lrsweep.sweep("linear", 0.1, scheduler="nowhere")
    with pytest.raises(ValueError, match=r"scheduler= and workers= are both given"):
        lrsweep.sweep("linear", 0.1, scheduler="tcp://127.0.0.1:1", workers=2, out=tmp_path / "x.zarr")


def _run_and_kill(cmd: list[str], store: Path, tmp_path: Path, victim) -> tuple[int, str]:
    """Run ``lrsweep run``; once two chunks are done, SIGKILL the worker ``victim(pid)`` names."""
    log = tmp_path / "run.log"
    run = _start(cmd, log)
    try:
        _wait(lambda: _marks(store) >= 2 or run.poll() is not None, 60, "two finished chunks")
        assert run.poll() is None, log.read_text()[-3000:]
        pid = _wait(lambda: victim(run.pid), 10, "a worker to kill")
        os.kill(pid, signal.SIGKILL)
        rc = run.wait(timeout=90)
    finally:
        _stop([run])
    return rc, log.read_text()


def test_a_killed_client_resumes_from_the_done_marks(cluster, reference, tmp_path):
    address, _ = cluster
    store = tmp_path / "s.zarr"
    cmd = [str(BIN / "lrsweep"), "run", *SWEEP, "--chunk-size", "32", "--out", str(store), "--scheduler", address]
    first = _start(cmd, tmp_path / "first.log")
    try:
        _wait(lambda: _marks(store) >= 2 or first.poll() is not None, 60, "two finished chunks")
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        _stop([first])  # SIGKILL: its lock stays behind, stale; its running tasks may still finish
    assert 2 <= _marks(store) < CHUNKS
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env={**os.environ, "LRSWEEP_FSYNC": "0"})
    assert again.returncode == 0, again.stderr[-3000:]
    ds = lrsweep.open(store)
    assert ds.attrs["chunks_done"] == CHUNKS
    _same(ds, reference)


def test_a_worker_killed_mid_sweep_on_a_cluster(cluster, reference, tmp_path):
    address, workers = cluster
    store = tmp_path / "s.zarr"
    cmd = [str(BIN / "lrsweep"), "run", *SWEEP, "--chunk-size", "32", "--out", str(store), "--scheduler", address]
    rc, out = _run_and_kill(cmd, store, tmp_path, lambda _: workers[1].pid)
    assert rc == 0, out[-3000:]
    assert "rescheduled after their worker died" in out
    ds = lrsweep.open(store)
    assert ds.attrs["chunks_done"] == CHUNKS
    _same(ds, reference)


def _spawned_worker(parent: int) -> int | None:
    for child in psutil.Process(parent).children(recursive=True):
        with_spawn = any("spawn_main" in part for part in child.cmdline())
        if with_spawn and "resource_tracker" not in " ".join(child.cmdline()):
            return child.pid
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_on_local_workers(reference, tmp_path):
    store = tmp_path / "s.zarr"
    cmd = [str(BIN / "lrsweep"), "run", *SWEEP, "--chunk-size", "32", "--out", str(store), "--workers", "2"]
    rc, out = _run_and_kill(cmd, store, tmp_path, _spawned_worker)
    assert rc == 0, out[-3000:]
    assert "rescheduled after their worker died" in out
    ds = lrsweep.open(store)
    assert ds.attrs["chunks_done"] == CHUNKS
    _same(ds, reference)


@pytest.mark.slow
def test_a_lost_scheduler_is_one_line_and_the_store_resumes(tmp_path):
    file = tmp_path / "scheduler.json"
    scheduler = _start(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        + ["--scheduler-file", str(file)],
        tmp_path / "scheduler.log",
    )
    procs = [scheduler]
    try:
        _wait(lambda: file.exists() and file.stat().st_size > 0, 30, "the scheduler's address file")
        address = json.loads(file.read_text())["address"]
        procs.append(
            _start(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
                + ["--host", "127.0.0.1"],
                tmp_path / "worker.log",
            )
        )
        store = tmp_path / "s.zarr"
        run = _start(
            [sys.executable, "-m", "lrsweep", "run", *SWEEP, "--chunk-size", "32", "--out", str(store)]
            + ["--scheduler", address, "--quiet"],
            tmp_path / "run.log",
        )
        procs.append(run)
        _wait(lambda: _marks(store) >= 1, 240, "a first finished chunk")
        os.killpg(scheduler.pid, signal.SIGKILL)
        run.wait(timeout=120)
        text = (tmp_path / "run.log").read_text()
        lines = text.strip().splitlines()
        assert run.returncode == 2 and "Traceback" not in text and len(lines) == 1, text
        assert "was lost during the sweep" in lines[0] and "run the same command again to resume" in lines[0]
    finally:
        _stop(procs)
