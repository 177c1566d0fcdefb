"""A store you can trust: atomic creation, checksums and verify/heal, identity, one writer, honest
memory, owned outputs, bit-identical NaNs, durable done-marks, quiet pipes and interrupts."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
import zarr.storage

import lrsweep
from lrsweep import _fs, cli, engine, integrity, lock, results, store

LR = "log:1e-3:10:50"
KW: dict[str, Any] = dict(epochs=30, record="trajectory", chunk_size=16)
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu"}


def _out(proc: subprocess.Popen) -> IO:
    """A child's stdout pipe (opened with ``stdout=PIPE``)."""
    assert proc.stdout is not None
    return proc.stdout


def _err(proc: subprocess.Popen) -> IO:
    """A child's stderr pipe (opened with ``stderr=PIPE``)."""
    assert proc.stderr is not None
    return proc.stderr


def _holder(store) -> dict:
    """The lock file's record of the process holding ``store``'s lock (there must be one)."""
    info = lock.holder(store)
    assert info is not None
    return info


def store_bytes(path):
    """Every array of a store as raw bytes, and its attributes (what two equal stores share)."""
    group = zarr.open_group(zarr.storage.LocalStore(path, read_only=True), mode="r", use_consolidated=False)
    arrays = {name: np.asarray(a[...]).tobytes() for name, a in group.arrays()}
    attrs = integrity.load_attrs(Path(path))[0]
    return arrays, attrs


def assert_same_store(a, b):
    (xa, aa), (xb, ab) = store_bytes(a), store_bytes(b)
    assert sorted(xa) == sorted(xb)
    for name in xa:
        assert xa[name] == xb[name], name
    assert aa == ab


def bits(x):
    x = np.asarray(x)
    return x.view(f"u{x.itemsize}") if x.dtype.kind == "f" else x


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """An uninterrupted small trajectory store and its in-memory twin."""
    path = tmp_path_factory.mktemp("ref") / "s.zarr"
    lrsweep.sweep("linear", LR, out=path, **KW)
    return path, lrsweep.sweep("linear", LR, **KW)


# -- atomic creation -------------------------------------------------------------------------------

BIG_LR = "log:1e-4:10:200000"
BIG_KW: dict[str, Any] = dict(epochs=5, record="summary", chunk_size=4096)
BIG_ARGS = ["--lr", BIG_LR, "--epochs", "5", "--chunk-size", "4096", "--quiet"]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "s.zarr"
    lrsweep.sweep("linear", BIG_LR, out=path, **BIG_KW)
    return path


def _cli(out, env=None, **popen):
    return subprocess.Popen(
        [sys.executable, "-m", "lrsweep", "run", *BIG_ARGS, "--out", str(out)],
        env={**ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.parametrize("stage", ["arrays", "coordinates", "created", "before-marks"])
@pytest.mark.parametrize("empty_dir", [False, True])
def test_creation_killed_at_each_stage_resumes_to_the_same_bytes(tmp_path, big, stage, empty_dir):
    out = tmp_path / "s.zarr"
    if empty_dir:
        out.mkdir(mode=0o750)
    proc = _cli(out, {"LRSWEEP_TEST_KILL_AT": stage})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    if stage == "before-marks":  # created, its first chunks' data written, no done-mark yet
        assert lrsweep.open(out).attrs["chunks_done"] == 0
    else:  # creation was not complete: no store, or the empty directory as it was
        assert not out.exists() or not any(out.iterdir())
    ds = lrsweep.sweep("linear", BIG_LR, out=out, **BIG_KW)
    assert ds.attrs["chunks_done"] == ds.attrs["chunks_total"]
    assert_same_store(out, big)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the dead run's temp is gone
    if empty_dir:
        assert out.stat().st_mode & 0o777 == 0o750  # the user's directory itself is kept


@pytest.mark.slow
def test_creation_killed_at_random_times_resumes_to_the_same_bytes(tmp_path, big):
    for seed in range(3):
        out = tmp_path / f"s{seed}.zarr"
        proc = _cli(out)
        time.sleep(random.Random(seed).uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        lrsweep.sweep("linear", BIG_LR, out=out, **BIG_KW)
        assert_same_store(out, big)


def test_a_half_moved_store_in_an_empty_directory_is_remade(tmp_path, small):
    # atomic_dir moves children into an existing empty directory one by one, the copy of the
    # attributes first and zarr.json last: a kill midway leaves some of them, which is completed.
    # Both copies of the attributes lost: without a finished chunk remade; with one, refused.
    out = tmp_path / "s.zarr"
    out.mkdir()
    for name in ("_lrsweep_attrs", "loss", "lr", "w"):
        shutil.copytree(small[0] / name, out / name)
    shutil.rmtree(out / "loss" / "c")
    with pytest.warns(lrsweep.store.DamageWarning):
        lrsweep.sweep("linear", LR, out=out, **KW)
    assert_same_store(out, small[0])
    for name in os.listdir(out):
        if name not in ("chunk_done", "_lrsweep_attrs"):
            _fs._remove_tree(out / name)
    (out / "_lrsweep_attrs" / "zarr.json").unlink()
    with pytest.raises(ValueError, match=r"lost its attributes .* holds finished chunks, .*; delete it"):
        lrsweep.sweep("linear", LR, out=out, **KW)
    shutil.rmtree(out / "chunk_done")  # no finished chunk: its attributes' folder says ours, remade
    lrsweep.sweep("linear", LR, out=out, **KW)
    assert_same_store(out, small[0])


def test_stale_temporary_files_are_removed_on_resume(tmp_path, small):
    out = tmp_path / "s.zarr"
    shutil.copytree(small[0], out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    beside = tmp_path / f".s.zarr.{pid}.{_fs._host_tag()}0123abcd.tmp"
    beside.mkdir()
    (beside / "lr").mkdir()
    partial = out / "loss" / "c" / "0" / "0" / f"0.{'a' * 32}.partial"
    partial.write_bytes(b"half")
    mine = tmp_path / "s.zarr.partial"  # a user's file that only looks like ours
    mine.write_text("mine")
    lrsweep.sweep("linear", LR, out=out, **KW)
    assert not beside.exists() and not partial.exists() and mine.read_text() == "mine"


# -- integrity: verify and heal --------------------------------------------------------------------


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_json(path, key, value):
    doc = json.loads(path.read_text())
    doc["attributes"][key] = value
    path.write_text(json.dumps(doc))


DAMAGE = {
    "deleted chunk file": (lambda p: os.remove(p / "loss/c/1/0/0"), [1], 0),
    "truncated chunk file": (lambda p: os.truncate(p / "w/c/2/0/0", 5), [2], 0),
    "zero-filled chunk file": (
        lambda p: (p / "b/c/0/0/0").write_bytes(bytes((p / "b/c/0/0/0").stat().st_size)),
        [0],
        0,
    ),
    "flipped bytes": (lambda p: _flip(p / "loss/c/3/0/0"), [3], 0),
    "truncated done-mark": (lambda p: os.truncate(p / "chunk_done/c/1", 3), [1], 0),
    "zero-filled done-mark": (lambda p: (p / "chunk_done/c/2").write_bytes(bytes(16)), [2], 0),
    "edited attrs": (lambda p: _edit_json(p / "zarr.json", "epochs", 31), [], 1),
    "removed attrs": (lambda p: os.remove(p / "zarr.json"), [], 1),
    "edited array attrs": (lambda p: _edit_json(p / "loss/zarr.json", "units", "m"), [], 1),
    "missing array": (lambda p: shutil.rmtree(p / "w"), [0, 1, 2, 3], 1),
    "damaged coordinate": (lambda p: _flip(p / "lr/c/1"), [], 1),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_found_by_verify_and_healed_by_a_rerun(tmp_path, capsys, small, kind):
    damage, chunks, n_problems = DAMAGE[kind]
    out = tmp_path / "s.zarr"
    shutil.copytree(small[0], out)
    damage(out)
    found = lrsweep.verify(out)
    assert list(found) == chunks and len(found.problems) == n_problems
    assert cli.main(["verify", str(out)]) == 1
    err = capsys.readouterr()
    assert "damaged" in err.out and "Traceback" not in err.err
    with pytest.raises(ValueError, match=r"is damaged .* run the same sweep again"):
        lrsweep.open(out)  # never damaged data silently
    with pytest.warns(store.DamageWarning, match="this run repairs it"):
        ds = lrsweep.sweep("linear", LR, out=out, **KW)
    assert lrsweep.verify(out).clean
    assert cli.main(["verify", str(out)]) == 0
    for v in small[1].data_vars:
        np.testing.assert_array_equal(bits(ds[v].values), bits(small[1][v].values), err_msg=v)
    assert_same_store(out, small[0])


def test_both_copies_of_the_attributes_lost_is_one_line(tmp_path, small):
    out = tmp_path / "s.zarr"
    shutil.copytree(small[0], out)
    os.remove(out / "zarr.json")
    shutil.rmtree(out / integrity.BACKUP)
    with pytest.raises(ValueError, match=r"not an lrsweep store, or its attributes .* both lost"):
        lrsweep.verify(out)
    with pytest.raises(ValueError, match=r"lost its attributes .* holds finished chunks"):
        lrsweep.sweep("linear", LR, out=out, **KW)


def test_xarray_opens_a_store_without_warnings(small):
    # pytest turns warnings into errors here; consolidated metadata keeps xarray quiet.
    ds = xr.open_zarr(small[0])
    assert "loss" in ds


# -- identity ----------------------------------------------------------------------------------------


def test_python_problem_objects_and_the_cli_share_a_store(tmp_path, capsys):
    out = tmp_path / "s.zarr"
    lrsweep.sweep("linear", "0.01,0.1", epochs=20, record="summary", out=out)
    spec = lrsweep.open(out).attrs["spec"]
    assert cli.main(["run", "--problem", "linear", "--lr", "0.01,0.1", "--epochs", "20", "--out", str(out)]) == 0
    capsys.readouterr()
    lrsweep.sweep(lrsweep.problems.linear(), [0.01, 0.1], epochs=20, record="summary", out=out)
    assert lrsweep.open(out).attrs["spec"] == spec


def _quad(loss):
    x = np.linspace(-1, 1, 8)
    return lrsweep.Problem(name="quad", loss=loss, x=x, y=2 * x**2, init={"a": np.float32(0.0)})


def test_a_changed_loss_body_is_refused(tmp_path):
    out = tmp_path / "s.zarr"
    lrsweep.sweep(_quad(lambda p, x, y: (p["a"] * x**2 - y) ** 2), [0.1, 0.5], epochs=20, record="summary", out=out)
    # The same code in another lambda is the same problem; another body is not.
    lrsweep.sweep(_quad(lambda p, x, y: (p["a"] * x**2 - y) ** 2), [0.1, 0.5], epochs=20, record="summary", out=out)
    with pytest.raises(ValueError, match=r"another spec \(problem\.loss: .* \(the loss function's code\)"):
        lrsweep.sweep(_quad(lambda p, x, y: abs(p["a"] * x**2 - y)), [0.1, 0.5], epochs=20, record="summary", out=out)
    scale = 2.0
    closure = _quad(lambda p, x, y: (p["a"] * x**2 - scale * y) ** 2)
    assert (
        lrsweep.identity.problem_id(closure)["loss"]
        != lrsweep.identity.problem_id(_quad(lambda p, x, y: (p["a"] * x**2 - 2.0 * y) ** 2))["loss"]
    )


def test_another_environment_is_refused_unless_mixing_is_allowed(tmp_path, monkeypatch):
    out = tmp_path / "s.zarr"
    lrsweep.sweep("linear", LR, out=out, **KW)
    zarr.open_array(zarr.storage.LocalStore(out / "chunk_done"), mode="r+")[2] = 0  # chunk 2 to redo
    real = integrity.environment
    monkeypatch.setattr(integrity, "environment", lambda kp: {**real(kp), "jax": "9.9.9"})
    with pytest.raises(ValueError, match=r"computed with jax .* vs 9\.9\.9 .*--allow-mixed"):
        lrsweep.sweep("linear", LR, out=out, **KW)
    lrsweep.sweep("linear", LR, out=out, allow_mixed=True, **KW)
    ds = lrsweep.open(out)
    envs = json.loads(ds.attrs["environments"])
    assert [e["jax"] for e in envs][1:] == ["9.9.9"] and envs[0]["backend"] == "cpu"
    assert np.asarray(zarr.open_array(zarr.storage.LocalStore(out / "chunk_env"), mode="r")[:]).tolist() == [0, 0, 1, 0]


# -- one writer --------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.zarr"
    with lock.acquire(out):
        with pytest.raises(lock.StoreLocked, match=rf"in use by pid {os.getpid()} on host"):
            lrsweep.sweep("linear", 0.1, epochs=5, record="summary", out=out)
        argv = ["run", "--lr", "0.1", "--epochs", "5", "--out", str(out)]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("lrsweep: error: store") and f"pid {os.getpid()}" in err and len(err.splitlines()) == 1
        assert cli.main([*argv, "--break-lock", "--quiet"]) == 2  # made since we started: a racer's, kept
        capsys.readouterr()
        monkeypatch.setattr(lock, "_STARTED", time.time() + 1)  # as a process started after the holder's
        assert cli.main([*argv, "--break-lock", "--quiet"]) == 0  # the user says that process is gone
    # A SIGKILLed holder's lock does not block the next run.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from lrsweep import lock; lock.acquire({str(out)!r}); print('held', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert _out(holder).readline().strip() == "held"
    holder.kill()
    holder.communicate()
    assert _holder(out)["pid"] == holder.pid
    lrsweep.sweep("linear", 0.1, epochs=5, record="summary", out=out)
    assert lock.holder(out) is None


# -- memory ----------------------------------------------------------------------------------------


def test_in_memory_sweeps_beyond_the_budget_are_refused_before_computing(monkeypatch):
    def never_called(*args, **kwargs):
        raise AssertionError("the engine ran before the sweep was refused")

    monkeypatch.setattr(engine, "run_chunk", never_called)
    with pytest.raises(ValueError, match=r"results need about 1.\d+ GB .* more than memory=400.0 MB"):
        lrsweep.sweep("linear", "log:1e-4:1:20000000", record="summary", memory="400MB")
    with pytest.raises(ValueError, match=r"results need about \d.\d+ GB .* more than memory="):
        lrsweep.sweep("linear", "log:1e-4:1:100000000", record="summary")


def test_a_store_too_big_for_the_disk_is_refused_at_once(tmp_path):
    out = tmp_path / "sub" / "X.zarr"
    with pytest.raises(ValueError, match=r"coordinates alone need 8000.\d+ GB and .* are free there"):
        lrsweep.sweep("linear", "log:1e-4:1:1000000000000", record="summary", out=out)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the lock or its folder


def test_a_resume_with_a_budget_too_small_for_the_stores_chunks_is_refused(tmp_path):
    out = tmp_path / "s.zarr"
    lrsweep.sweep("linear", "log:1e-3:1:3000", epochs=20, record="trajectory", chunk_size=1024, out=out)
    with pytest.raises(ValueError, match=r"has chunks of 1024 configs, which need about .* resume with --memory"):
        lrsweep.sweep("linear", "log:1e-3:1:3000", epochs=20, record="trajectory", memory="1MB", out=out)


# The peak resident set of this process alone: VmHWM belongs to the address space made by exec, while
# getrusage's ru_maxrss also counts the parent's RSS at fork (a large pytest process would be charged).
RSS = textwrap.dedent("""
    import sys, lrsweep
    n, memory, out = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
    lrsweep.sweep("linear", f"log:1e-4:1:{n}", epochs=20, record="summary", memory=memory, out=out)
    with open("/proc/self/status") as status:
        print(next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:")))
""")


def _peak(*args):
    proc = subprocess.run([sys.executable, "-c", RSS, *map(str, args)], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak RSS from Linux's /proc")
@pytest.mark.slow
def test_peak_memory_stays_within_the_budget_plus_the_runtime(tmp_path):
    # The runtime's own footprint (Python, JAX, zarr, a compiled program): a sweep of 8 configs.
    footprint = max(_peak(8, "64MB"), _peak(8, "64MB", tmp_path / "tiny.zarr"))
    budget = 400_000_000
    assert footprint < 1e9
    assert _peak(3_000_000, budget) <= footprint + budget  # the whole result in memory
    assert _peak(3_000_000, budget, tmp_path / "s.zarr") <= footprint + budget  # streamed to a store


# -- export -----------------------------------------------------------------------------------------


def test_export_owns_only_its_output(tmp_path, capsys, small):
    table = tmp_path / "t.csv"
    user = tmp_path / "t.csv.partial"
    user.write_text("mine")
    assert cli.main(["export", str(small[0]), str(table)]) == 0
    assert cli.main(["export", str(small[0]), str(table)]) == 2
    assert "exists; pass overwrite=True (--force)" in capsys.readouterr().err
    table.write_text("old")
    assert cli.main(["export", str(small[0]), str(table), "--force"]) == 0
    assert len(pd.read_csv(table)) == 50
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        lrsweep.export(small[0], tmp_path / "d.csv", overwrite=True)
    assert user.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "t.csv", "t.csv.partial"]


def test_export_fails_cleanly_and_flattens_array_parameters(tmp_path, monkeypatch):
    ds = lrsweep.sweep(lrsweep.problems.mlp(width=2), [0.1, 1.0], epochs=5, record="summary")
    out = lrsweep.export(ds, tmp_path / "t.parquet")
    table = pd.read_parquet(out)
    assert {"W0[0,0]", "W0[1,1]", "W1[0,0]", "W1[1,0]"} <= set(table.columns)
    np.testing.assert_array_equal(table["W0[1,0]"], ds.W0.isel(init=0).values[:, 1, 0])
    monkeypatch.setattr(results, "summary_table", lambda ds: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        lrsweep.export(ds, tmp_path / "u.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


# -- bit identity, durability, pipes and interrupts --------------------------------------------------


def test_nans_are_bit_identical_in_memory_and_on_disk(tmp_path):
    kw: dict[str, Any] = dict(epochs=300, record="trajectory", chunk_size=8)
    lr = "log:0.001:100:24"  # the last chunks diverge entirely: NaN losses
    mem = lrsweep.sweep("linear", lr, **kw)
    disk = lrsweep.sweep("linear", lr, out=tmp_path / "s.zarr", **kw)
    assert np.isnan(mem.loss.values).any()
    for v in mem.data_vars:
        np.testing.assert_array_equal(bits(mem[v].values), bits(disk[v].values), err_msg=v)
        np.testing.assert_array_equal(bits(mem[v].values), bits(lrsweep.open(tmp_path / "s.zarr")[v].values))
    nan = mem.loss.values[np.isnan(mem.loss.values)]
    assert set(bits(nan).tolist()) == {int(bits(np.float32(np.nan)))}  # one canonical NaN


def test_data_are_synced_before_their_done_marks(tmp_path, monkeypatch):
    synced = []
    real = _fs.fsync_file
    monkeypatch.setattr(_fs, "fsync_file", lambda p: synced.append(Path(p)) or real(p))
    monkeypatch.setattr(store, "FSYNC", True)
    monkeypatch.setattr(store, "SYNC_INTERVAL_S", 0.0)
    out = tmp_path / "s.zarr"
    lrsweep.sweep("linear", LR, out=out, **KW)
    for k in range(4):
        mark = synced.index(out.resolve() / "chunk_done" / "c" / str(k))
        data = [i for i, p in enumerate(synced) if p == out.resolve() / "loss" / "c" / str(k) / "0" / "0"]
        assert data and max(data) < mark


def test_a_closed_pipe_is_no_error():
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrsweep", "run", "--lr", "0.01,0.1", "--epochs", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    _out(proc).close()  # `| head -0`: the reader is gone before anything is written
    err = _err(proc).read().decode()
    _err(proc).close()
    assert proc.wait() == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_ctrl_c_during_store_creation_is_one_line(tmp_path):
    out = tmp_path / "s.zarr"
    proc = _cli(out, {"LRSWEEP_TEST_KILL_AT": "coordinates:INT"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == "lrsweep: interrupted", err
    assert list(tmp_path.iterdir()) == []  # no store, no temporary directory, no lock
