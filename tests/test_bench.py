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
from lrsweep import bench, cli

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


def _quick(tmp_path, name="t", extra=()):
    # mlp's chunk is given: this test checks the suite's outputs, not api's chunk sizing.
    return bench.run(
        ["--quick", "--sizes", "1,16", "--epochs", "4", "--target-s", "0.005", "--chunk-size", f"mlp={CHUNK}",
         "--out", str(tmp_path), "--name", name, "--quiet", "--no-peaks", *extra]
    )  # fmt: skip


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench")
    return path, _quick(path)


@pytest.mark.slow
def test_quick_suite_writes_json_markdown_and_png(quick):
    tmp_path, result = quick
    paths = {k: tmp_path / f"t.{ext}" for k, ext in (("json", "json"), ("markdown", "md"), ("png", "png"))}
    assert result["paths"] == {k: str(v) for k, v in paths.items()}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 10_000

    data = json.loads(paths["json"].read_text())
    assert data["schema_version"] == bench.SCHEMA_VERSION == 2
    assert {"name", "argv", "date", "machine", "settings", "total_s", "cases", "skipped", "ratios", "targets"} <= set(
        data
    )
    m = data["machine"]
    assert {"cpu", "cores", "memory_gb", "jax", "jaxlib", "numpy", "lrsweep", "backends", "devices", "python"} <= set(m)
    assert m["backends"][0] == "cpu" and m["devices"]["cpu"]["count"] >= 1 and m["devices"]["cpu"]["kind"]
    assert not [s for s in data["skipped"] if "failed" in s], data["skipped"]  # every lrsweep case ran
    for case in data["cases"]:
        assert set(bench.CASE_KEYS) <= set(case)
        assert case["id"] == bench.case_id(case)
        assert len(case["times_s"]) == 3 and case["seconds"] == pytest.approx(sorted(case["times_s"])[1])
        assert case["config_steps_per_s"] == pytest.approx(case["configs"] * case["epochs"] / case["seconds"])
    seen = {(r["problem"], r["impl"], r["grad"], r["record"]) for r in data["cases"]}
    for name in PROBLEM_NAMES:
        assert (name, "notebook loop", "forward", None) in seen
        for grad in bench.GRADS:
            assert (name, "numpy plain", grad, None) in seen
            for record in bench.RECORDS:
                assert (name, "lrsweep", grad, record) in seen
    assert any(t["target"].startswith("lesson: compile time") for t in data["targets"])
    md = paths["markdown"].read_text()
    for heading in ("# lrsweep benchmark: t", "## Ratios", "## linear", "## chapter_net", "## mlp", "## Targets"):
        assert heading in md


@pytest.mark.slow
def test_quick_rows_carry_the_real_chunk_kernel_devices_compile_and_cost(quick):
    _, result = quick
    lrs = [r for r in result["cases"] if r["impl"] == "lrsweep"]
    assert {r["configs"] for r in lrs} == {1, 16} and {r["epochs"] for r in lrs} == {4}
    for r in lrs:
        expected = lrsweep.sweep(
            bench.SPECS[r["problem"]].make(), f"log:1e-3:1:{r['configs']}", epochs=4, grad=r["grad"],
            record=r["record"], progress=False, chunk_size=CHUNK if r["problem"] == "mlp" else None,
        ).attrs["chunk_size"]  # fmt: skip
        assert r["chunk"] == expected, r["id"]
        assert r["compile_s"] >= 0 and r["kernel"] and r["devices"] >= 1 and r["backend"] == "cpu"
        assert r["flops_per_config_step"] > 0 and r["bytes_per_config_step"] > 0
    # The lesson's autodiff step: 4 examples, a handful of FLOPs each; XLA counts tens per config-step.
    lesson = next(r for r in lrs if r["problem"] == "linear" and r["grad"] == "autodiff")
    assert 10 <= lesson["flops_per_config_step"] <= 500


@pytest.mark.slow
def test_schema_round_trips(quick, tmp_path):
    src, result = quick
    data = json.loads((src / "t.json").read_text())
    again = json.loads(json.dumps(data))
    assert again == data
    assert bench.report.markdown(again) == (src / "t.md").read_text()
    expected = {k: v for k, v in result.items() if k != "paths"}
    assert json.loads(json.dumps(expected)) == data


def _variant(src, dst, **changes):
    data = json.loads(src.read_text())
    data.update(changes)
    dst.write_text(json.dumps(data))
    return dst


@pytest.mark.slow
def test_compare_makes_one_table_from_two_files(quick, tmp_path):
    src, _ = quick
    a = src / "t.json"
    data = json.loads(a.read_text())
    faster = [dict(c, config_steps_per_s=c["config_steps_per_s"] * 2) for c in data["cases"]]
    b = _variant(a, tmp_path / "b.json", cases=faster[:-1])  # one case dropped: listed as missing
    assert bench.main(["compare", str(a), str(b), "--out", str(tmp_path), "--name", "cmp"]) == 0
    md = (tmp_path / "cmp.md").read_text()
    assert md.count("| case |") == 1
    assert "2.00x" in md and "## Missing" in md and data["cases"][-1]["id"] in md
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_compare_refuses_a_schema_mismatch_with_one_line(quick, tmp_path, capsys):
    src, _ = quick
    a = src / "t.json"
    old = _variant(a, tmp_path / "old.json", schema_version=1)
    with pytest.raises(ValueError, match="schema") as err:
        bench.compare.compare([str(a), str(old)])
    assert "\n" not in str(err.value)
    assert cli.main(["bench", "compare", str(a), str(old)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrsweep: error: files=")
    disjoint = _variant(
        a, tmp_path / "other.json", cases=[dict(c, id="x/" + c["id"]) for c in json.loads(a.read_text())["cases"]]
    )
    with pytest.raises(ValueError, match="share no case"):
        bench.compare.compare([str(a), str(disjoint)])


TINY = (128, 5, 128)


@pytest.mark.slow
def test_verify_passes_on_cpu_at_a_tiny_size(capsys):
    entries = bench.verify.verify("cpu", TINY, log=lambda _: None)
    assert [e["sweep"] for e in entries] == [s[0] for s in bench.verify.SWEEPS]
    assert all(e["status"] in ("ok", "skipped") for e in entries), entries
    assert any(e["status"] == "ok" for e in entries)


def test_verify_fails_on_an_injected_disagreement(monkeypatch, capsys):
    real = bench.verify.run_path

    def perturbed(problem, lr, kernel, kw):
        ds = real(problem, lr, kernel, kw)
        if kernel != "xla" and problem.name == "chapter_net":
            ds["loss"] = ds.loss.where(ds.lr != ds.lr[0], ds.loss * (1 + 1e-3))  # one config off by 1e-3
        return ds

    monkeypatch.setattr(bench.verify, "run_path", perturbed)
    assert bench.main(["--verify", "--backends", "cpu", "--size", ",".join(map(str, TINY))]) == 1
    out = capsys.readouterr().out
    assert "chapter_net autodiff float32 on cpu: 1 of 128 configs disagree" in out


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
        bench.run(["--chunk-size", "nope=3", "--out", "x"])
    assert stop.value.code == 2
    assert "expected a list from" in capsys.readouterr().err


def test_out_is_required_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="give --out DIR"):
        bench.run(["--quick", "--impls", "numpy"])
