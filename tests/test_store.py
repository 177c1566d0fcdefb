"""Large sweeps: specs, chunking under a memory budget, the resumable Zarr store, export."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

import lrsweep
from lrsweep import cli, engine, results

LR = "log:1e-3:1:3000"
KW: dict[str, Any] = dict(epochs=60, grad="forward", precision="float32")


def assert_same(a, b, variables=("loss", "w", "b", "outcome", "event_epoch")):
    for v in variables:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        assert x.shape == y.shape, v
        if x.dtype.kind == "f":  # bit for bit, NaN included
            np.testing.assert_array_equal(
                x.view(np.uint8 if x.itemsize == 1 else f"u{x.itemsize}"),
                y.view(np.uint8 if y.itemsize == 1 else f"u{y.itemsize}"),
                err_msg=v,
            )
        else:
            np.testing.assert_array_equal(x, y, err_msg=v)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted, in-memory trajectory sweep every store is compared with."""
    return lrsweep.sweep("linear", LR, record="trajectory", **KW)


def test_store_equals_the_in_memory_sweep(tmp_path, reference):
    ds = lrsweep.sweep("linear", LR, record="trajectory", out=tmp_path / "s.zarr", chunk_size=256, **KW)
    assert_same(ds, reference)
    again = lrsweep.open(tmp_path / "s.zarr")
    assert_same(again, reference)
    assert again.attrs["chunks_done"] == again.attrs["chunks_total"] == 12
    assert json.loads(again.attrs["spec"])["lr"] == LR.replace("1e-3", "0.001").replace(":1:", ":1.0:")


@pytest.mark.parametrize("chunk", [8, 64, 1024])
def test_results_do_not_depend_on_the_chunk_size(chunk, reference):
    assert_same(lrsweep.sweep("linear", LR, record="trajectory", chunk_size=chunk, **KW), reference)


def test_results_do_not_depend_on_the_memory_budget(tmp_path, reference):
    small = lrsweep.sweep("linear", LR, record="trajectory", memory="2MB", out=tmp_path / "s.zarr", **KW)
    assert small.attrs["chunk_size"] < reference.attrs["chunk_size"]
    assert_same(small, reference)


def test_interrupted_store_resumes_to_the_same_result(tmp_path, monkeypatch, reference):
    real, calls = engine.run_chunk, []

    def crash_on_fifth_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    path = tmp_path / "s.zarr"
    monkeypatch.setattr(engine, "run_chunk", crash_on_fifth_chunk)
    with pytest.raises(lrsweep.SweepInterrupted) as stop:
        lrsweep.sweep("linear", LR, record="trajectory", out=path, chunk_size=256, **KW)
    assert stop.value.partial.attrs["chunks_done"] == 4
    assert (stop.value.partial.outcome == lrsweep.outcomes.PENDING).sum() == 3000 - 4 * 256
    monkeypatch.setattr(engine, "run_chunk", real)
    calls.clear()
    # Resumed with another budget: the store keeps its own chunks; only the 8 missing ones run.
    counted = []
    monkeypatch.setattr(engine, "run_chunk", lambda *a, **k: counted.append(1) or real(*a, **k))
    ds = lrsweep.sweep("linear", LR, record="trajectory", out=path, memory="2GB", **KW)
    assert len(counted) == 8
    assert_same(ds, reference)


def test_sigkill_between_data_and_done_mark_resumes_bit_for_bit(tmp_path, reference):
    # A real SIGKILL at the worst moment: chunk 3's data are written, its done-mark is not.
    path = tmp_path / "s.zarr"
    script = textwrap.dedent(f"""
        import os, signal
        import lrsweep
        from lrsweep import store
        real = store.ZarrSink._mark
        def mark(self, ready):
            if any(k == 3 for k, _ in ready):  # chunk 3's data are written, its done-mark is not
                os.kill(os.getpid(), signal.SIGKILL)
            real(self, ready)
        store.ZarrSink._mark = mark
        store.SYNC_INTERVAL_S = 0  # a batch per chunk
        lrsweep.sweep("linear", {LR!r}, record="trajectory", out={str(path)!r}, chunk_size=256, **{KW!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert lrsweep.open(path).attrs["chunks_done"] == 3
    assert_same(lrsweep.sweep("linear", LR, record="trajectory", out=path, chunk_size=256, **KW), reference)


def test_a_store_of_another_spec_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    lrsweep.sweep("linear", "0.01,0.1", epochs=20, out=path)
    with pytest.raises(ValueError, match=r"holds a sweep of another spec \(epochs: 20 vs 30"):
        lrsweep.sweep("linear", "0.01,0.1", epochs=30, out=path)
    with pytest.raises(ValueError, match="lr: "):
        lrsweep.sweep("linear", "0.01,0.2", epochs=20, out=path)
    # The same spec written another way is the same spec.
    lrsweep.sweep("linear", [0.01, 0.1], epochs=20, out=path)


def test_paths_that_are_not_stores_are_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an lrsweep store"):
        lrsweep.sweep("linear", 0.1, epochs=5, out=tmp_path / "notes")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(ValueError, match="not an lrsweep store"):
        lrsweep.sweep("linear", 0.1, epochs=5, out=tmp_path / "file.zarr")
    with pytest.raises(ValueError, match=r"cannot be (written|locked)"):
        lrsweep.sweep("linear", 0.1, epochs=5, out=tmp_path / "file.zarr" / "inside.zarr")
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_every_and_variables_keep_a_subset_of_the_trajectory(reference):
    ds = lrsweep.sweep("linear", LR, record="trajectory", every=7, variables=["loss", "w"], **KW)
    assert ds.epoch.values.tolist() == list(range(0, 60, 7)) + [60]
    assert {"loss", "w", "outcome", "event_epoch"} <= set(ds.data_vars) and "b" not in ds.data_vars
    assert_same(ds, reference.sel(epoch=ds.epoch.values), variables=("loss", "w", "outcome", "event_epoch"))


def test_memory_budget_errors():
    with pytest.raises(ValueError, match=r"memory=1000 bytes is too small for one chunk of 8 configs"):
        lrsweep.sweep("linear", 0.1, epochs=5, memory=1000)
    with pytest.raises(
        ValueError,
        match=r"results need about [0-9.]+ MB \(results, coordinates and chunks in flight\), more than memory=100.0 MB.*out=",
    ):
        lrsweep.sweep("linear", "log:1e-3:1:100000", epochs=500, record="trajectory", memory="100MB")
    for bad in ("lots", "-5MB", 0):
        with pytest.raises(ValueError, match="memory="):
            lrsweep.sweep("linear", 0.1, epochs=5, memory=bad)


def test_optimizer_hyperparameters_as_an_axis():
    q = lrsweep.problems.quadratic(dim=3, cond=10.0)
    axis = lrsweep.sweep(
        q,
        [0.01, 0.1],
        epochs=40,
        optimizer="momentum",
        optimizer_axes={"momentum": [0.0, 0.5, 0.9]},
        record="summary",
        precision="float64",
    )
    assert axis.p.dims == ("lr", "opt_momentum", "init", "p_dim0")
    for j, beta in enumerate([0.0, 0.5, 0.9]):
        one = lrsweep.sweep(
            q,
            [0.01, 0.1],
            epochs=40,
            optimizer="momentum",
            optimizer_kwargs={"momentum": beta},
            record="summary",
            precision="float64",
        )
        np.testing.assert_allclose(axis.p.isel(opt_momentum=j).values, one.p.values, rtol=1e-12)
    with pytest.raises(ValueError, match="'gd' has no hyperparameters"):
        lrsweep.sweep(q, 0.1, optimizer_axes={"momentum": [0.5]})
    with pytest.raises(ValueError, match="optimizer_axes"):
        lrsweep.sweep(q, 0.1, optimizer="adam", optimizer_axes={"momentum": [0.5]})


def test_problem_seed_axis_builds_one_instance_per_seed():
    ds = lrsweep.sweep(
        "logistic", [0.1, 1.0], problem_seed=[3, 4], problem_args={"n": 24}, epochs=30, record="summary", chunk_size=8
    )
    assert ds.loss.dims == ("problem_seed", "lr", "init")
    for j, s in enumerate([3, 4]):
        one = lrsweep.sweep(
            lrsweep.problems.logistic(n=24, seed=s), [0.1, 1.0], epochs=30, record="summary", chunk_size=8
        )
        np.testing.assert_array_equal(ds.loss.isel(problem_seed=j).values, one.loss.values)
    assert not np.array_equal(ds.loss.isel(problem_seed=0).values, ds.loss.isel(problem_seed=1).values)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_one_row_per_config(tmp_path, fmt):
    grid = lrsweep.init_grid(w=[0.0, 5.0])
    ds = lrsweep.sweep("linear", [0.01, 0.1, 1.0], init=grid, epochs=100, record="trajectory", out=tmp_path / "s.zarr")
    out = results.export(tmp_path / "s.zarr", tmp_path / f"summary.{fmt}", block=2)
    table = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert len(table) == 6 and {"lr", "init_w", "loss", "w", "b", "outcome", "event_epoch"} <= set(table.columns)
    row = table[(table.lr == 1.0) & (table.init_w == 0.0)].iloc[0]
    assert row.outcome == "diverged"
    np.testing.assert_allclose(table.loss, ds.loss.isel(epoch=-1).values.ravel())
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        results.export(ds, tmp_path / "summary.xlsx")


def test_toml_spec_runs_and_is_saved(tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        textwrap.dedent("""
        problem = "linear"
        lr = "log:1e-3:1:64"
        epochs = 200
        grad = "forward"
        precision = "mixed"
        record = "trajectory"
        every = 50
        variables = ["loss", "w"]

        [init]
        grid = { w = [0.0, 2.0] }
    """)
    )
    out = tmp_path / "s.zarr"
    assert cli.main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    assert "64 lr x 2 init_w, 200 epochs, grad forward" in capsys.readouterr().out
    ds = lrsweep.open(out)
    saved = json.loads(ds.attrs["spec"])
    assert saved["every"] == 50 and saved["init"] == {"grid": {"w": [0.0, 2.0]}}
    assert ds.epoch.values.tolist() == [0, 50, 100, 150, 200]
    # A flag overrides the file; another spec into the same store is refused in one line.
    assert cli.main(["run", str(spec), "--out", str(out), "--epochs", "100", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrsweep: error: --out=") and "epochs: 200 vs 100" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("epoch = 10", "unknown key 'epoch' (did you mean 'epochs'?)"),
        ('epochs = "10"', "epochs = '10' has the wrong type: expected an integer"),
        ("lr = true", "lr = True has the wrong type"),
        ("init = { count = 3 }", "init = {'count': 3} is invalid"),
        ("epochs = [", "is not valid TOML"),
        ('lr = "log:1:0.1:5"', "lr='log:1:0.1:5' is invalid"),
    ],
)
def test_bad_toml_is_one_line_naming_the_field(tmp_path, capsys, text, fragment):
    spec = tmp_path / "bad.toml"
    spec.write_text(text + "\n")
    assert cli.main(["run", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_export_and_missing_spec_file(tmp_path, capsys):
    lrsweep.sweep("linear", [0.01, 0.1], epochs=10, record="summary", out=tmp_path / "s.zarr")
    assert cli.main(["export", str(tmp_path / "s.zarr"), str(tmp_path / "t.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "t.csv")) == 2
    assert cli.main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "nope.zarr"), str(tmp_path / "t.csv")]) == 2


def test_ctrl_c_on_the_command_line_keeps_finished_chunks(tmp_path):
    out = tmp_path / "s.zarr"
    argv = [
        sys.executable,
        "-m",
        "lrsweep",
        "run",
        "--lr",
        "log:1e-4:1:65536",
        "--epochs",
        "3000",
        "--record",
        "trajectory",
        "--memory",
        "16MB",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = out / "chunk_done" / "c"
        if done.exists() and len(list(done.iterdir())) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    ds = lrsweep.open(out)
    assert 2 <= ds.attrs["chunks_done"] < ds.attrs["chunks_total"]


@pytest.mark.parametrize(
    "make,grad,exact",
    [
        (lambda: lrsweep.problems.quadratic(dim=10, cond=100.0), "autodiff", True),  # summed term by term
        (lambda: lrsweep.problems.logistic(n=16), "autodiff", True),
        (lambda: lrsweep.problems.logistic(n=64), "forward", True),  # losses summed by halving
        (lambda: lrsweep.problems.logistic(n=64), "autodiff", False),  # XLA sums the gradient: rounding
    ],
)
def test_chunk_size_independence_beyond_the_lesson(make, grad, exact):
    problem = make()
    runs = [
        lrsweep.sweep(problem, "log:1e-3:1:100", epochs=80, grad=grad, record="summary", chunk_size=c)
        for c in (8, 128, 1024)
    ]
    for other in runs[1:]:
        if exact:
            assert_same(other, runs[0], variables=("loss", *problem.init, "outcome", "event_epoch"))
        else:
            np.testing.assert_allclose(other.loss.values, runs[0].loss.values, rtol=1e-5)


def _drop_from_stored_spec(out, key, expected) -> None:
    """Take ``key`` out of a store's canonical spec (as an older lrsweep wrote it), checksum recomputed."""
    edited = 0
    for doc_path in (out / "zarr.json", *out.glob("*/zarr.json")):
        doc = json.loads(doc_path.read_text())
        attrs = doc.get("attributes", {})
        if "spec" not in attrs:
            continue
        spec = json.loads(attrs["spec"])
        assert spec.pop(key) == expected
        attrs["spec"] = json.dumps(spec, sort_keys=True)
        attrs["checksum"] = lrsweep.integrity.attrs_checksum(attrs)
        doc_path.write_text(json.dumps(doc))
        edited += 1
    assert edited == 2  # the attributes and their copy


def test_a_store_classified_under_older_verdict_rules_is_read_but_not_resumed(tmp_path):
    # A store from before the outcome rules had a version (no `no_progress`): its outcomes were
    # classified under rules 1, so new chunks classified under rules 2 must not join it.
    out = tmp_path / "old.zarr"
    kwargs: dict[str, Any] = dict(epochs=20, record="summary", progress=False)
    lrsweep.sweep("linear", [0.01, 0.1, 1.0], out=out, chunk_size=8, **kwargs)
    _drop_from_stored_spec(out, "verdict_rules", lrsweep.outcomes.RULES)
    assert lrsweep.open(out).sizes["lr"] == 3
    with pytest.raises(ValueError, match=r"verdict_rules: 1 vs 2"):
        lrsweep.sweep("linear", [0.01, 0.1, 1.0], out=out, chunk_size=8, **kwargs)


def test_a_store_made_before_a_setting_existed_resumes_at_its_default(tmp_path):
    # A store written by an lrsweep without `track_sums` (simulated: the key taken out of its spec,
    # the attributes' checksum recomputed) resumes; asking for the new behaviour is refused.
    out = tmp_path / "old.zarr"
    kwargs: dict[str, Any] = dict(epochs=20, record="summary", progress=False)
    first = lrsweep.sweep("linear", [0.01, 0.1], **kwargs)
    lrsweep.sweep("linear", [0.01, 0.1], out=out, **kwargs)
    _drop_from_stored_spec(out, "track_sums", False)
    again = lrsweep.sweep("linear", [0.01, 0.1], out=out, **kwargs)
    np.testing.assert_array_equal(again.loss.values, first.loss.values)
    with pytest.raises(ValueError, match=r"another spec \(track_sums: false vs true"):
        lrsweep.sweep("linear", [0.01, 0.1], out=out, track_sums=True, **kwargs)
    assert lrsweep.identity.stored_differences({"epochs": 20}, {"epochs": 20, "track_sums": False}) == []
    assert lrsweep.identity.stored_differences({"epochs": 20}, {"epochs": 30}) == ["epochs: 20 vs 30"]
