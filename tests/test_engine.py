"""The engine: sweeps equal single runs and an independent float64 reference; no retracing."""

import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as R

import lrsweep
from lrsweep import engine, gradients, sums

N_LR, N_INIT, EPOCHS = 1000, 3, 300


def _compiles(fn) -> int:
    """How many programs a jitted function has compiled (JAX's private count, absent from its type stubs)."""
    return fn._cache_size()  # pyright: ignore[reportAttributeAccessIssue]


@pytest.fixture(scope="module")
def inits():
    rng = np.random.default_rng(0)
    w0 = np.concatenate([[0.0], rng.normal(0, 3, N_INIT - 1)]).astype(np.float32)
    b0 = np.concatenate([[0.0], rng.normal(0, 3, N_INIT - 1)]).astype(np.float32)
    return {"w": w0, "b": b0}


@pytest.fixture(scope="module")
def big_sweep(inits):
    lr = np.geomspace(1e-4, 0.3, N_LR)
    return lrsweep.sweep("linear", lr, init=inits, epochs=EPOCHS, grad="autodiff", precision="float32")


def test_result_layout(big_sweep, inits):
    ds = big_sweep
    assert dict(ds.sizes) == {"lr": N_LR, "init": N_INIT, "epoch": EPOCHS + 1}
    assert ds.loss.dims == ("lr", "init", "epoch") and ds.w.dims == ("lr", "init", "epoch")
    assert ds.outcome.dims == ("lr", "init") and ds.event_epoch.dims == ("lr", "init")
    assert ds.w.dtype == np.float32 and ds.loss.dtype == np.float32
    np.testing.assert_array_equal(ds.init_w.values, inits["w"])
    np.testing.assert_array_equal(ds.w.isel(epoch=0).values, np.broadcast_to(inits["w"], (N_LR, N_INIT)))
    assert set(np.unique(lrsweep.outcome_names(ds.outcome))) <= set(lrsweep.OUTCOMES)


def test_sweep_matches_float64_numpy_reference(big_sweep, inits):
    ds = big_sweep
    lr = ds.lr.values[:, None]
    w, b, loss = R.gd_linear_f64(lr, inits["w"][None, :], inits["b"][None, :], EPOCHS)
    w, b, loss = (np.moveaxis(a, 0, -1) for a in (w, b, loss))  # (lr, init, epoch)
    stable = ds.lr.values < 0.11  # below the critical lr 0.1198, float32 error stays bounded
    np.testing.assert_allclose(ds.w.values[stable], w[stable], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ds.b.values[stable], b[stable], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ds.loss.values[stable], loss[stable], rtol=1e-3, atol=1e-5)
    # Above the critical lr both diverge; the float32 run is flagged, the reference blows up.
    unstable = ds.lr.values > 0.125
    assert np.all(lrsweep.outcome_names(ds.outcome)[unstable] == "diverged")
    assert not np.any(loss[unstable][:, :, -1] <= loss[unstable][:, :, 0])  # NaN or inf or larger


@pytest.mark.parametrize("k", [0, 137, 500, 742, 999])
@pytest.mark.parametrize("j", [0, 2])
def test_sweep_equals_each_config_alone(big_sweep, inits, k, j):
    lr = float(big_sweep.lr.values[k])
    one = {"w": inits["w"][j : j + 1], "b": inits["b"][j : j + 1]}
    alone = lrsweep.sweep("linear", lr, init=one, epochs=EPOCHS, grad="autodiff", precision="float32")
    together = big_sweep.isel(lr=[k], init=[j])
    for var in ("w", "b", "loss", "outcome", "event_epoch"):
        np.testing.assert_array_equal(alone[var].values, together[var].values, err_msg=var)


@pytest.mark.parametrize("grad", ["autodiff", "forward", "central"])
def test_summary_equals_last_epoch_of_trajectory(grad):
    lr = np.geomspace(1e-3, 1.0, 50)
    kw: dict[str, Any] = dict(epochs=200, grad=grad, precision="float32")
    traj = lrsweep.sweep("linear", lr, record="trajectory", **kw)
    summ = lrsweep.sweep("linear", lr, record="summary", **kw)
    assert "epoch" not in summ.dims
    for var in ("w", "b", "loss"):
        np.testing.assert_array_equal(summ[var].values, traj[var].isel(epoch=-1).values)
    for var in ("outcome", "event_epoch"):
        np.testing.assert_array_equal(summ[var].values, traj[var].values)


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_chunking_does_not_change_results(precision):
    lr = np.geomspace(1e-3, 0.2, 301)
    kw: dict[str, Any] = dict(epochs=100, grad="forward", precision=precision, record="summary")
    ref = lrsweep.sweep("linear", lr, chunk_size=4096, **kw)
    for chunk in (8, 64):  # 8: the smallest chunk accepted
        other = lrsweep.sweep("linear", lr, chunk_size=chunk, **kw)
        for var in ("w", "b", "loss", "outcome"):
            np.testing.assert_array_equal(other[var].values, ref[var].values)


@pytest.mark.parametrize("record", ["summary", "trajectory"])
def test_a_chunk_trained_in_blocks_equals_each_block_as_its_own_chunk(record):
    # The paper's network is costly: the plan trains blocks of 8 configs, many blocks per chunk
    # (one call, one store region). Each block gives the bits it gives as a chunk of its own.
    p = lrsweep.problems.mlp()
    kw: dict[str, Any] = dict(epochs=6, record=record, progress=False, grad="autodiff")
    lrs = np.geomspace(1e-2, 10, 64)
    alone = lrsweep.sweep(p, lrs, chunk_size=8, **kw)
    assert (alone.attrs["chunk_size"], alone.attrs["block_size"]) == (8, 8)
    for n in (64, 40):  # 8 blocks; 5 blocks, padded
        blocks = lrsweep.sweep(p, lrs[:n], **kw)
        assert blocks.attrs["block_size"] == 8 and blocks.attrs["chunk_size"] > 8  # several blocks per chunk
        for name in alone.data_vars:
            want = alone[name].isel(lr=slice(0, n)).values
            np.testing.assert_array_equal(blocks[name].values, want, err_msg=name)


def test_a_costly_problem_gets_chunks_of_many_blocks():
    p = lrsweep.problems.mlp()
    static = engine.Static(
        loss=p.loss,
        n_data=p.n_data,
        grad="autodiff",
        policy=lrsweep.precision.get("float32"),
        epochs=500,
        record="summary",
        window=50,
    )
    chunk, block = lrsweep.plan.chunks(static, p, 2**30, 65536)
    assert block == lrsweep.plan.chunk_size(static, p, 2**30, None, 65536) == 8
    assert chunk == lrsweep.plan.MIN_CALL_CONFIGS
    # A small sweep is shared among the chunks in flight (two on a multi-core CPU), never below a block.
    workers = lrsweep.plan.workers()
    assert lrsweep.plan.chunks(static, p, 2**30, 100) == ({1: 128, 2: 64}[workers], 8)
    assert lrsweep.plan.chunks(static, p, 2**30, 3) == (8, 8)
    # The lesson's chunk is already large: one block per chunk, and a small sweep pads to little.
    q = lrsweep.problems.linear()
    lesson = engine.Static(
        loss=q.loss,
        n_data=q.n_data,
        grad="autodiff",
        policy=lrsweep.precision.get("float32"),
        epochs=500,
        record="summary",
        window=50,
    )
    assert lrsweep.plan.chunks(lesson, q, 2**30, 10**7) == (lrsweep.plan.MAX_CHUNK,) * 2
    assert lrsweep.plan.chunks(lesson, q, 2**30, 100) == (128, 128)


def test_sweep_trajectory_equals_trace_a_python_loop_of_epochs():
    # trace() scans one unbatched config; sweep() vmaps the scan; both equal a Python loop.
    lr, epochs = 0.05, 30
    ds = lrsweep.sweep("linear", lr, epochs=epochs, grad="forward", precision="mixed")
    table = lrsweep.trace("linear", lr, epochs)
    w_trace = table[table.parameter == "w"].value.to_numpy()
    np.testing.assert_array_equal(ds.w.isel(lr=0, init=0).values[:-1], w_trace)

    static = engine.Static(
        loss=lrsweep.problems.linear().loss,
        n_data=4,
        grad="forward",
        policy=lrsweep.precision.get("mixed"),
        epochs=1,
        record="trace",
        window=1,
    )
    with jax.enable_x64(True):
        x, y = engine.to_compute_dtype(static, np.arange(1.0, 5.0), 3 * np.arange(1.0, 5.0))
        init, epoch, _ = engine._epoch_fn(static, jnp.array([lr]), x, y, jnp.float64(1e-4), jnp.float64(0.0))
        params = {"w": jnp.float32(0.0), "b": jnp.float32(0.0)}
        state = init(params)
        loop = []
        for _ in range(epochs):
            _, _, _, params, state = epoch(params, state)
            loop.append(float(params["w"]))
    np.testing.assert_array_equal(ds.w.isel(lr=0, init=0).values[1:], np.array(loop, np.float32))


def test_gradient_estimators_agree_where_well_conditioned():
    problem = lrsweep.problems.linear()
    static = engine.Static(
        loss=problem.loss,
        n_data=4,
        grad="autodiff",
        policy=lrsweep.precision.get("float64"),
        epochs=1,
        record="summary",
        window=1,
    )
    with jax.enable_x64(True):
        x, y = engine.to_compute_dtype(static, problem.x, problem.y)
        loss = engine._mean_loss(static, x, y, jnp.float64(0.0))
        params = {"w": jnp.float64(1.3), "b": jnp.float64(-0.4)}
        # Closed form: dL/dw = mean(2 r x), dL/db = mean(2 r), r = w x + b - y.
        r = 1.3 * np.arange(1, 5) - 0.4 - 3 * np.arange(1, 5)
        exact = {"w": np.mean(2 * r * np.arange(1, 5)), "b": np.mean(2 * r)}
        for name, tol in [("autodiff", 1e-12), ("central", 1e-7), ("forward", 1e-3)]:
            _, g, _ = gradients.estimate(name, loss, params, 1e-4)
            np.testing.assert_allclose([g["w"], g["b"]], [exact["w"], exact["b"]], rtol=tol, err_msg=name)


def test_forward_difference_bias_matches_theory():
    # g_fd = g + (h/2) diag(H): at the minimum, H delta = -(h/2) [15, 2], so GD with the forward
    # difference settles at delta = (-2e-4, 4.5e-4) from (3, 0), in float64.
    ds = lrsweep.sweep("linear", 0.1, epochs=2000, grad="forward", precision="float64", record="summary")
    np.testing.assert_allclose([ds.w.item() - 3, ds.b.item()], [-2e-4, 4.5e-4], rtol=1e-6)


def test_no_retracing_when_only_values_change():
    kw: dict[str, Any] = dict(epochs=17, grad="forward", precision="float32", record="summary")
    lrsweep.sweep("linear", [0.1, 0.2], **kw)
    before = _compiles(engine.run_chunk)
    lrsweep.sweep("linear", [0.3, 0.05], **kw)  # new values
    lrsweep.sweep("linear", 0.05, init={"w": np.arange(5.0), "b": -np.arange(5.0)}, **kw)  # new inits
    lrsweep.sweep("linear", np.geomspace(1e-3, 1, 7), **kw)  # another count, the same chunk of 8
    assert _compiles(engine.run_chunk) == before
    # ...and the check can fail: a bigger sweep gets a bigger chunk (one compile, then reused),
    # and a new epoch count is a new program.
    lrsweep.sweep("linear", np.geomspace(1e-3, 1, 33), **kw)
    lrsweep.sweep("linear", np.geomspace(1e-2, 1, 40), **kw)
    assert _compiles(engine.run_chunk) == before + 1
    longer: dict[str, Any] = {**kw, "epochs": 18}
    lrsweep.sweep("linear", 0.05, **longer)
    assert _compiles(engine.run_chunk) == before + 2


@pytest.mark.parametrize(
    "precision,param,compute",
    [("float32", np.float32, np.float32), ("float64", np.float64, np.float64), ("mixed", np.float32, np.float64)],
)
def test_precision_dtypes(precision, param, compute):
    ds = lrsweep.sweep("linear", 0.01, epochs=3, precision=precision)
    assert ds.w.dtype == param and ds.loss.dtype == compute


def test_precision_leaves_global_x64_off():
    lrsweep.sweep("linear", 0.01, epochs=3, precision="float64")
    assert not jax.config.read("jax_enable_x64")
    assert jnp.asarray(1.0).dtype == jnp.float32


def test_pairwise_sum_matches_numpy_order():
    rng = np.random.default_rng(3)
    for n in (1, 3, 7, 8, 9, 16, 23, 130, 300):
        terms = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, size=n)
        with jax.enable_x64(True):
            ours = float(jax.jit(lambda t, n=n: sums.pairwise_sum([t[i] for i in range(n)]))(terms))
        assert ours == float(np.sum(terms)), n


def test_ctrl_c_keeps_every_finished_chunk(monkeypatch):
    lr = np.geomspace(1e-3, 0.2, 40)
    kw: dict[str, Any] = dict(epochs=50, grad="autodiff", record="summary", chunk_size=8)
    full = lrsweep.sweep("linear", lr, **kw)
    calls = []
    real = engine.run_chunk

    def interrupted_on_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_chunk", interrupted_on_third_chunk)
    with pytest.raises(lrsweep.SweepInterrupted) as err:
        lrsweep.sweep("linear", lr, **kw)
    part = err.value.partial
    done = slice(0, 16)  # two chunks of 8 configs
    for var in ("w", "b", "loss", "outcome", "event_epoch"):
        np.testing.assert_array_equal(part[var].isel(lr=done).values, full[var].isel(lr=done).values)
    assert np.all(lrsweep.outcome_names(part.outcome.isel(lr=slice(16, None))) == "pending")
    assert np.all(np.isnan(part.w.isel(lr=slice(16, None)).values))


def test_progress_bar_reports_chunks(capsys):
    lrsweep.sweep("linear", np.geomspace(1e-3, 0.2, 24), epochs=5, record="summary", chunk_size=8, progress=True)
    err = capsys.readouterr().err
    assert "sweep" in err and "3/3" in err


def paper_score(losses, window=20, max_val=1e6):
    """The fractal paper's convergence_measure (github.com/Sohl-Dickstein/fractal), in numpy: the
    mean of the last ``window`` of the losses recorded before each step, each over the first."""
    v = np.asarray(losses, dtype=np.float64).copy()
    v[~np.isfinite(v)] = max_val
    v = v / v[0]
    v[v > max_val] = max_val
    return np.mean(v[-window:])


@pytest.mark.parametrize("window", [20, 7, pytest.param(500, marks=pytest.mark.slow)])
def test_score_and_best_equal_numpy_from_the_trajectory(window):
    lrs = np.geomspace(0.01, 0.13, 40)
    kw: dict[str, Any] = dict(epochs=300, precision="float64", score_window=window, track_best=True)
    traj = lrsweep.sweep("linear", lrs, **kw)
    summ = lrsweep.sweep("linear", lrs, record="summary", **kw)
    for var in ("score", "best_loss", "best_epoch", "outcome", "event_epoch"):
        np.testing.assert_array_equal(summ[var].values, traj[var].values, err_msg=var)
    for k in range(len(lrs)):
        losses = traj.loss.isel(lr=k, init=0).values  # L_0 .. L_E
        finite = np.all(np.isfinite(losses[:-1]))
        expected = paper_score(losses[:-1], window)  # the losses before each step
        got = float(traj.score.isel(lr=k, init=0))
        if finite:
            np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert (got < 1) == (expected < 1)
        assert float(traj.best_loss.isel(lr=k, init=0)) == np.nanmin(losses)
        assert int(traj.best_epoch.isel(lr=k, init=0)) == int(np.nanargmin(losses))


def test_fewer_epochs_than_the_window_average_them_all():
    ds = lrsweep.sweep("linear", [0.01, 0.05], epochs=5, precision="float64")
    for k in range(2):
        losses = ds.loss.isel(lr=k, init=0).values
        np.testing.assert_allclose(float(ds.score.isel(lr=k, init=0)), np.mean(losses[:5] / losses[0]), rtol=1e-15)


def test_best_tracking_is_opt_in_and_changes_nothing_else():
    lrs = np.geomspace(0.01, 0.13, 24)
    plain = lrsweep.sweep("linear", lrs, epochs=200, record="summary")
    best = lrsweep.sweep("linear", lrs, epochs=200, record="summary", track_best=True)
    assert "best_loss" not in plain and "best_epoch" not in plain
    for var in plain.data_vars:
        np.testing.assert_array_equal(plain[var].values, best[var].values, err_msg=var)
    assert json.loads(best.attrs["spec"])["track_best"] is True
