"""Minibatches and held-out metrics: the engine against plain loops run one config at a time."""

import doctest
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any, cast

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax
import pytest

import lrsweep
from lrsweep import engine, plan, problems

N, N_EVAL, B = 20, 7, 6  # 20 // 6 = 3 steps per epoch; 2 examples sit each epoch out


def _data():
    rng = np.random.default_rng(3)
    w = np.array([1.0, -2.0, 0.5])
    x = rng.normal(size=(N, 3))
    xe = rng.normal(size=(N_EVAL, 3))
    return x, x @ w + 0.3 * rng.normal(size=N), xe, xe @ w + 0.3 * rng.normal(size=N_EVAL)


def _loss(p, xi, yi):
    return (xi @ p["w"] - yi) ** 2


def _mae(p, xi, yi):
    return jnp.abs(xi @ p["w"] - yi)


def make_problem(dtype: npt.DTypeLike = np.float32):
    x, y, xe, ye = (a.astype(dtype) for a in _data())
    init = {"w": np.array([0.1, 0.2, -0.3], dtype)}
    return problems.Problem("lin3", _loss, x, y, init, x_eval=xe, y_eval=ye, metrics={"mae": _mae})


def order(seed: int, epoch: int) -> np.ndarray:
    """The documented data order: epoch k of data seed s is permutation(fold_in(key(s), k), n)."""
    key = jax.random.fold_in(jax.random.key(seed), epoch)
    return np.asarray(jax.random.permutation(key, N))


def batch_indices(seed: int, step: int) -> np.ndarray:
    per_epoch = N // B
    slot = step % per_epoch
    return order(seed, step // per_epoch)[slot * B : (slot + 1) * B]


def numpy_gd(lr, seed, steps, eval_every):
    """Minibatch gradient descent in float64 numpy, one config: final w, full-data loss, evaluations."""
    x, y, xe, ye = _data()
    w = np.array([0.1, 0.2, -0.3])
    evals = {}
    for t in range(steps):
        if t % eval_every == 0:
            evals[t] = (np.mean((xe @ w - ye) ** 2), np.mean(np.abs(xe @ w - ye)))
        idx = batch_indices(seed, t)
        r = x[idx] @ w - y[idx]
        w = w - lr * (2.0 / B) * (x[idx].T @ r)
    evals[steps] = (np.mean((xe @ w - ye) ** 2), np.mean(np.abs(xe @ w - ye)))
    return w, np.mean((x @ w - y) ** 2), evals


def test_minibatch_gd_equals_a_numpy_loop_per_config():
    lrs, steps, every = [0.01, 0.05, 0.2], 11, 4
    ds = lrsweep.sweep(
        make_problem(np.float64),
        lrs,
        steps=steps,
        batch_size=B,
        data_seed=[5, 9],
        eval_every=every,
        precision="float64",
        record="trajectory",
        progress=False,
    )
    assert ds.eval_step.values.tolist() == [0, 4, 8, 11]
    assert ds.eval_loss.dims == ("data_seed", "lr", "init", "eval_step")
    assert ds.best_mae.attrs["goal"] == "min" and "long_name" in ds.mae.attrs
    for seed in (5, 9):
        for lr in lrs:
            w, loss, evals = numpy_gd(lr, seed, steps, every)
            got = ds.sel(data_seed=seed, lr=lr, init=0)
            np.testing.assert_allclose(got.w.isel(epoch=-1).values, w, rtol=1e-12)
            np.testing.assert_allclose(float(got.loss.isel(epoch=-1)), loss, rtol=1e-12)
            want = np.array([evals[s] for s in ds.eval_step.values])
            np.testing.assert_allclose(got.eval_loss.values, want[:, 0], rtol=1e-12)
            np.testing.assert_allclose(got.mae.values, want[:, 1], rtol=1e-12)
            np.testing.assert_allclose(float(got.best_eval_loss), want[:, 0].min(), rtol=1e-12)
            np.testing.assert_allclose(float(got.best_mae), want[:, 1].min(), rtol=1e-12)


def optax_adam(lr, seed, steps):
    """Plain optax, one config, float32: the same data order, the minibatch mean loss."""
    x, y, _, _ = (jnp.asarray(a, jnp.float32) for a in _data())
    params = {"w": jnp.array([0.1, 0.2, -0.3], jnp.float32)}
    tx = optax.adam(lr)
    state = tx.init(params)
    mean = lambda p, xb, yb: jnp.mean(jax.vmap(_loss, in_axes=(None, 0, 0))(p, xb, yb))
    for t in range(steps):
        idx = batch_indices(seed, t)
        grads = jax.grad(mean)(params, x[idx], y[idx])
        updates, state = tx.update(grads, state, params)
        params = cast(dict, optax.apply_updates(params, updates))
    return np.asarray(params["w"])


def test_minibatch_adam_summary_equals_optax_run_one_config_at_a_time():
    lrs = [0.003, 0.03, 0.3]
    ds = lrsweep.sweep(
        make_problem(),
        lrs,
        epochs=4,
        batch_size=B,
        data_seed=[1, 2],
        optimizer="adam",
        record="summary",
        progress=False,
    )
    assert ds.attrs["steps"] == 12 and ds.eval_loss.dims == ("data_seed", "lr", "init")
    for seed in (1, 2):
        for lr in lrs:
            want = optax_adam(lr, seed, 12)
            np.testing.assert_allclose(ds.w.sel(data_seed=seed, lr=lr, init=0).values, want, rtol=2e-5, atol=1e-6)


def test_summary_keeps_the_trajectorys_last_and_best_evaluation():
    kw: dict[str, Any] = dict(steps=13, batch_size=B, eval_every=5, progress=False)
    summ = lrsweep.sweep(make_problem(), [0.02, 0.1], record="summary", **kw)
    traj = lrsweep.sweep(make_problem(), [0.02, 0.1], record="trajectory", **kw)
    for name in ("eval_loss", "mae"):
        np.testing.assert_allclose(summ[name].values, traj[name].isel(eval_step=-1).values, rtol=1e-6)
        np.testing.assert_allclose(summ[f"best_{name}"].values, traj[name].min("eval_step").values, rtol=1e-6)


def test_default_eval_every_and_full_batch_metrics():
    ds = lrsweep.sweep(make_problem(), 0.05, epochs=40, progress=False)  # full batch: a step is an epoch
    assert ds.eval_step.values.tolist() == list(range(0, 40, 2)) + [40]  # max(1, 40 // 20) = 2
    assert ds.attrs["eval_every"] == 2 and "steps" not in ds.attrs
    _, _, xe, ye = _data()
    w = ds.w.isel(lr=0, init=0, epoch=-1).values.astype(np.float64)
    np.testing.assert_allclose(
        float(ds.eval_loss.isel(lr=0, init=0, eval_step=-1)), np.mean((xe @ w - ye) ** 2), rtol=1e-5
    )


def _same_bits(a, b):
    for name in a.data_vars:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        view = f"u{x.itemsize}" if x.dtype.kind == "f" else x.dtype
        np.testing.assert_array_equal(x.view(view), y.view(view), err_msg=name)


def test_minibatch_results_do_not_depend_on_chunks_or_resume(tmp_path, monkeypatch):
    lr = "log:1e-3:0.3:40"
    kw: dict[str, Any] = dict(steps=9, batch_size=B, data_seed=2, record="trajectory", eval_every=2, progress=False)
    ref = lrsweep.sweep(make_problem(), lr, chunk_size=64, **kw)
    _same_bits(lrsweep.sweep(make_problem(), lr, chunk_size=8, **kw), ref)
    real, calls = engine.run_chunk, []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_chunk", crash_on_third)
    with pytest.raises(lrsweep.SweepInterrupted):
        lrsweep.sweep(make_problem(), lr, chunk_size=16, out=tmp_path / "s.zarr", **kw)
    monkeypatch.setattr(engine, "run_chunk", real)
    _same_bits(lrsweep.sweep(make_problem(), lr, chunk_size=16, out=tmp_path / "s.zarr", **kw), ref)
    _same_bits(lrsweep.open(tmp_path / "s.zarr"), ref)


def test_a_store_refuses_other_held_out_data(tmp_path):
    kw: dict[str, Any] = dict(epochs=3, record="summary", progress=False, out=tmp_path / "s.zarr")
    lrsweep.sweep(make_problem(), 0.1, **kw)
    p = make_problem()
    assert p.x_eval is not None
    other = problems.Problem("lin3", _loss, p.x, p.y, p.init, x_eval=p.x_eval + 1, y_eval=p.y_eval, metrics=p.metrics)
    with pytest.raises(ValueError, match="eval_data"):
        lrsweep.sweep(other, 0.1, **kw)
    plain = problems.Problem("lin3", _loss, p.x, p.y, p.init)
    assert "eval_data" not in lrsweep.identity.problem_id(plain)  # stores made before held-out data resume


def _dims(jaxpr) -> set[int]:
    """Every dimension of every value in a jaxpr, nested jaxprs included."""
    out = set()
    for eqn in jaxpr.eqns:
        for var in [*eqn.invars, *eqn.outvars]:
            out |= set(getattr(var.aval, "shape", ()))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            out |= _dims(sub)
    return out


def test_summary_memory_does_not_grow_with_steps():
    p = make_problem()
    spec = lrsweep.spec.build(p, [0.1, 0.2], steps=997, batch_size=B, record="summary", eval_every=3)
    job = lrsweep.planner.plan(*spec).job()
    _, inputs = job.inputs(0)
    jaxpr = jax.make_jaxpr(lambda i: engine.run_chunk(i, static=job.statics[0]))(inputs)
    n_evals = len(lrsweep.engine_data.eval_steps(job.statics[0]))
    assert n_evals == 334 and not {997, n_evals} & _dims(jaxpr.jaxpr)  # no per-step or per-evaluation arrays
    short = lrsweep.planner.plan(*lrsweep.spec.build(p, [0.1, 0.2], steps=10, batch_size=B, record="summary")).job()
    assert short.layout.nbytes() == job.layout.nbytes()
    assert plan.bytes_per_config(short.statics[0], p) == plan.bytes_per_config(job.statics[0], p)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(batch_size=0), "batch_size=0 is invalid"),
        (dict(batch_size=-3), "batch_size=-3 is invalid"),
        (dict(batch_size=21), "batch_size=21 is invalid: expected at most the 20 training examples"),
        (dict(steps=5, epochs=3), "steps=5 is invalid with epochs=3: expected one of them"),
        (dict(steps=5, epochs=1000), "steps=5 is invalid with epochs=1000"),
        (dict(data_seed=3), "data_seed=[0, 1, 2] is invalid without batch_size"),
        (dict(batch_size=4, kernel="pallas-interpret"), "kernel='pallas-interpret' is invalid here"),
        (dict(kernel="pallas-examples-interpret"), "without track_sums, held-out metrics or track_sharpness"),
    ],
)
def test_bad_training_settings_are_one_line(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        settings: dict[str, Any] = {"epochs": 2, **kwargs}
        lrsweep.sweep(make_problem(), 0.1, progress=False, **settings)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_eval_every_needs_held_out_data():
    with pytest.raises(ValueError, match=r"eval_every=3 is invalid: problem 'linear' has no held-out data"):
        lrsweep.sweep("linear", 0.1, epochs=5, eval_every=3)


def test_result_names_are_reserved_for_parameters_and_metrics():
    x, y = np.ones((3, 1)), np.ones(3)
    lossv = lambda p, xi, yi: (p["sum_v"] * xi[0] - yi) ** 2
    with pytest.raises(ValueError, match="parameter name 'sum_v' is reserved"):
        problems.Problem("t", lossv, x, y, {"sum_v": np.float32(1.0)})
    for name in lrsweep.types.RESULT_VARIABLES + lrsweep.types.RESULT_DIMS + ("eval_loss", "best_eval_loss"):
        assert name in problems.RESERVED_NAMES
    loss = lambda p, xi, yi: (p["accuracy"] * xi[0] - yi) ** 2
    metric = lambda p, xi, yi: jnp.abs(p["accuracy"] * xi[0] - yi)
    with pytest.raises(ValueError, match="metric name 'accuracy' is invalid: the result would name it"):
        problems.Problem(
            "t", loss, x, y, {"accuracy": np.float32(1.0)}, x_eval=x, y_eval=y, metrics={"accuracy": metric}
        )
    with pytest.raises(ValueError, match="metric name 'best_acc' is reserved"):
        problems.Problem(
            "t", loss, x, y, {"accuracy": np.float32(1.0)}, x_eval=x, y_eval=y, metrics={"best_acc": metric}
        )


def test_every_result_variable_is_in_the_one_list():
    ds = lrsweep.sweep(
        make_problem(), 0.1, epochs=3, batch_size=B, track_best=True, track_sums=True, record="summary", progress=False
    )
    metrics = {m for name in make_problem().metric_fns() for m in (name, f"best_{name}")}
    assert set(ds.data_vars) - {"w"} <= set(lrsweep.types.RESULT_VARIABLES) | metrics
    assert set(ds.dims) - {"w_dim0"} <= set(lrsweep.types.RESULT_DIMS)


@pytest.mark.slow
def test_four_devices_change_no_bit_of_a_minibatch_sweep():
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"  # before JAX starts
        sys.path.insert(0, sys.argv[1])
        import jax, numpy as np, lrsweep
        from test_training import make_problem
        kw = dict(steps=7, batch_size=6, data_seed=2, record="trajectory", eval_every=3, progress=False)
        runs = [lrsweep.sweep(make_problem(), "log:1e-3:1:64", devices=n, **kw) for n in (4, 1)]
        assert runs[0].attrs["devices"] == 4
        for name in runs[1].data_vars:
            a, b = (np.asarray(r[name].values) for r in runs)
            view = np.uint32 if a.dtype == np.float32 else a.dtype
            assert np.array_equal(a.view(view), b.view(view)), name
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    here = os.path.dirname(__file__)
    done = subprocess.run([sys.executable, "-c", script, here], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_cli_takes_the_training_flags(tmp_path, capsys):
    from lrsweep import cli

    cli.main(
        [
            "run",
            "--problem",
            "linear",
            "--lr",
            "0.01,0.1",
            "--batch-size",
            "2",
            "--steps",
            "6",
            "--data-seed",
            "2",
            "--out",
            str(tmp_path / "s.zarr"),
        ]
    )
    spec = json.loads(lrsweep.open(tmp_path / "s.zarr").attrs["spec"])
    assert (spec["batch_size"], spec["steps"], spec["data_seed"]) == (2, 6, [0, 1])
    assert "steps" in capsys.readouterr().out


def test_the_training_docs_run_as_written():
    path = pathlib.Path(__file__).parent.parent / "docs" / "training.md"
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
