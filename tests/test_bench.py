"""The benchmark suite (lrsweep.bench): its outputs' structure and its baselines' correctness.

Timing is never asserted: the machine is shared and noisy. The baselines are checked against
lrsweep in float64, where both compute the same algorithm to rounding; the notebook loop against
the lesson notebook's stored output (tests/data/notebook-outputs.txt).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import lrsweep
from lrsweep import bench

PROBLEM_NAMES = ["linear", "chapter_net", "mlp"]
NOTEBOOK = Path(__file__).parent / "data" / "notebook-outputs.txt"


def _lrs(name, n=3):
    return np.geomspace(*bench.SPECS[name].lr, n)


# An explicit chunk for lrsweep: these tests check the baselines, not api's chunk sizing (results
# do not depend on the chunk size).
CHUNK = 8


def _lrsweep_final(name, lr, epochs, grad, precision):
    return lrsweep.sweep(
        bench.SPECS[name].make(),
        lr,
        epochs=epochs,
        grad=grad,
        precision=precision,
        record="summary",
        progress=False,
        chunk_size=CHUNK,
    )


@pytest.mark.parametrize("grad", bench.GRADS)
@pytest.mark.parametrize("name", PROBLEM_NAMES)
def test_numpy_baselines_match_lrsweep_float64(name, grad):
    """Same algorithm, float64: final losses and parameters agree to rounding, config by config.

    (A forward difference divides rounding noise by h = 1e-4, so its parameters get a looser atol.)"""
    lr, epochs = _lrs(name), 20
    ds = _lrsweep_final(name, lr, epochs, grad, "float64")
    expected = ds.loss.values.ravel()
    assert np.all(np.isfinite(expected)) and np.ptp(expected) > 0  # distinct, finite runs
    for label, make in bench.BASELINES[name].items():
        base = make(np.float64)
        params, loss = bench.numpy_train(base, lr, base.init(lr.size), epochs, grad)
        np.testing.assert_allclose(loss, expected, rtol=1e-9, err_msg=f"{name} {label} {grad}")
        for key, value in params.items():
            np.testing.assert_allclose(
                value.reshape(lr.size, -1),
                ds[key].values.reshape(lr.size, -1),
                rtol=1e-9,
                atol=1e-12 if grad == "autodiff" else 1e-9,
                err_msg=f"{name} {label} {grad} {key}",
            )


@pytest.mark.parametrize("grad", bench.GRADS)
@pytest.mark.parametrize("name", PROBLEM_NAMES)
def test_numpy_baselines_match_lrsweep_float32(name, grad):
    """In the benchmark's float32 they agree too, up to float32 rounding (XLA fuses multiply-adds)."""
    lr, epochs = _lrs(name), 20
    expected = _lrsweep_final(name, lr, epochs, grad, "float32").loss.values.ravel()
    for label, make in bench.BASELINES[name].items():
        base = make()
        params, loss = bench.numpy_train(base, lr.astype(np.float32), base.init(lr.size), epochs, grad)
        assert loss.dtype == np.float32 and all(v.dtype == np.float32 for v in params.values())
        np.testing.assert_allclose(
            loss, expected, rtol=1e-4 if grad == "autodiff" else 2e-2, err_msg=f"{name} {label} {grad}"
        )


def test_numpy_train_chunks_configs_independently():
    """Chunking the configs (mlp) does not change a config's result beyond rounding (BLAS blocks differ)."""
    base = bench.MLP(np.float64)
    lr = _lrs("mlp", 5)
    _, whole = bench.numpy_train(base, lr, base.init(5), 3, "autodiff")
    base.chunk = 2
    _, chunked = bench.numpy_train(base, lr, base.init(5), 3, "autodiff")
    np.testing.assert_allclose(whole, chunked, rtol=1e-12)


@pytest.mark.parametrize("grad", bench.GRADS)
@pytest.mark.parametrize("name", PROBLEM_NAMES)
def test_torch_baselines_match_lrsweep_float64(name, grad):
    pytest.importorskip("torch")
    lr, epochs = _lrs(name), 3
    expected = _lrsweep_final(name, lr, epochs, grad, "float64").loss.values.ravel()
    base = bench.TorchBaseline(name, "float64")
    _, loss = base.train(lr, base.init(lr.size), epochs, grad)
    np.testing.assert_allclose(loss, expected, rtol=1e-9, err_msg=f"{name} torch {grad}")


def _stored_notebook_runs():
    """``{lr: (original losses as printed, final weight list as printed)}`` from the notebook's output."""
    runs, lr = {}, None
    for line in NOTEBOOK.read_text().splitlines():
        if line.startswith("# lr = "):
            lr = float(line.split("=")[1].split(",")[0])
            runs[lr] = ([], None)
        elif line.startswith("weight value:"):
            runs[lr][0].append(line.split("original loss: ")[1].split(" ")[0])
        elif line.startswith("[array"):
            runs[lr] = (runs[lr][0], line)
    return runs


def test_notebook_loop_reproduces_the_notebooks_stored_output():
    """bench's notebook loop prints what the lesson notebook printed: every epoch's loss and the final weights."""
    runs = _stored_notebook_runs()
    assert sorted(runs) == [0.01, 0.1, 1.0]
    for lr, (losses, final) in runs.items():
        weights, ours = bench.notebook_train("linear", lr, len(losses))
        assert [str(np.round(v, 2)) for v in ours] == losses, lr
        assert repr(weights) == final, lr


@pytest.mark.parametrize("name", ["chapter_net", "mlp"])
def test_notebook_loop_is_lrsweeps_mixed_forward(name):
    """The notebook's update computes what lrsweep's mixed-precision forward difference does."""
    lr, epochs = 0.1, 3
    _, losses = bench.notebook_train(name, lr, epochs)
    ds = lrsweep.sweep(
        bench.SPECS[name].make(),
        lr,
        epochs=epochs,
        grad="forward",
        precision="mixed",
        record="trajectory",
        progress=False,
        chunk_size=CHUNK,
    )
    np.testing.assert_allclose(losses, ds.loss.values.ravel()[:epochs], rtol=1e-6)


def test_quick_suite_writes_json_markdown_and_png(tmp_path):
    # mlp's chunk is given (as in the committed full run): this test checks the suite's outputs, not
    # api's chunk sizing, which refuses mlp(width=16) by default at the time of writing.
    result = bench.run(
        [
            "--quick",
            "--sizes",
            "1,16",
            "--epochs",
            "4",
            "--repeat",
            "1",
            "--target-s",
            "0.005",
            "--chunk-size",
            f"mlp={CHUNK}",
            "--out",
            str(tmp_path),
            "--name",
            "t",
            "--quiet",
        ]
    )
    paths = {k: tmp_path / f"t.{ext}" for k, ext in (("json", "json"), ("markdown", "md"), ("png", "png"))}
    assert result["paths"] == {k: str(v) for k, v in paths.items()}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 10_000

    data = json.loads(paths["json"].read_text())
    assert {"name", "argv", "machine", "args", "total_s", "rows", "skipped", "ratios", "targets", "memory"} <= set(data)
    assert {"cpu", "cores", "jax", "numpy", "lrsweep", "backends", "date", "python"} <= set(data["machine"])
    assert data["machine"]["backends"][0] == "cpu"
    assert not [s for s in data["skipped"] if "failed" in s], data["skipped"]  # every lrsweep case ran
    keys = {
        "problem",
        "impl",
        "backend",
        "grad",
        "record",
        "configs",
        "epochs",
        "seconds",
        "cpu_s",
        "config_steps_per_s",
        "compile_s",
        "chunk_size",
        "peak_mb",
    }
    for row in data["rows"]:
        assert keys <= set(row)
        assert row["config_steps_per_s"] > 0 and row["seconds"] > 0
        assert row["config_steps_per_s"] == pytest.approx(row["configs"] * row["epochs"] / row["seconds"])
    seen = {(r["problem"], r["impl"], r["grad"], r["record"]) for r in data["rows"]}
    for name in PROBLEM_NAMES:
        assert (name, "notebook loop", "forward", None) in seen
        for grad in bench.GRADS:
            assert (name, "numpy plain", grad, None) in seen
            for record in bench.RECORDS:
                assert (name, "lrsweep", grad, record) in seen
    lrs = [r for r in data["rows"] if r["impl"] == "lrsweep"]
    assert {r["configs"] for r in lrs} == {1, 16} and {r["epochs"] for r in lrs} == {4}
    assert all(r["compile_s"] >= 0 and r["chunk_size"] >= 1 and r["backend"] == "cpu" for r in lrs)
    assert {r["chunk_size"] for r in lrs if r["problem"] == "mlp"} == {CHUNK}
    for ratio in data["ratios"]:
        assert ratio["lrsweep"] > 0 and "numpy plain" in ratio["vs"]
    assert any(t["target"].startswith("lesson: compile time") for t in data["targets"])

    md = paths["markdown"].read_text()
    for heading in ("# lrsweep benchmark: t", "## Ratios", "## linear", "## chapter_net", "## mlp", "## Targets"):
        assert heading in md
    assert "| lrsweep | cpu | autodiff | summary | 16 | 4 |" in md


def test_chunk_size_flag():
    assert bench._chunks("4096") == {None: 4096}
    assert bench._chunks("mlp=16, linear=1e3") == {"mlp": 16, "linear": 1000}


def test_bad_flags_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.run(["--sizes", "0,10"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        bench.run(["--problems", "nope"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        bench.run(["--chunk-size", "nope=3"])
    assert stop.value.code == 2
    assert "expected a list from" in capsys.readouterr().err
