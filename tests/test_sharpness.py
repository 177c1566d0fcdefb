"""Sharpness along the path (``track_sharpness``): estimates against exact eigenvalues.

References are independent of the code under test: closed-form eigenvalues (the lesson, the
quadratic bowl), and ``numpy.linalg.eigvalsh`` of a dense ``jax.hessian`` of a network written
here, at the parameters the sweep recorded.
"""

import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import lrsweep
from lrsweep import cli, sharpness

#: The lesson's Hessian is [[15, 5], [5, 2]] (w, b): trace 17, determinant 5.
LESSON_LAMBDA_MAX = (17 + math.sqrt(269)) / 2


def test_lesson_sharpness_is_16_70_at_every_step():
    lrs = [0.01, 0.1, 0.11, 0.13]
    ds = lrsweep.sweep(
        "linear", lrs, epochs=40, track_sharpness=True, sharpness_every=1, sharpness_iters=4, progress=False
    )
    est = ds.sharpness.isel(init=0).values.astype(np.float64)
    assert est.shape == (4, 40)
    np.testing.assert_array_equal(ds.sharpness_step.values, np.arange(40))
    np.testing.assert_allclose(est, LESSON_LAMBDA_MAX, rtol=1e-4)
    # The edge: 2 / lr within 10% below it, from the first step on, or never.
    np.testing.assert_allclose(ds.edge_sharpness.isel(init=0).values, 2 / np.array(lrs), rtol=1e-6)
    reached = LESSON_LAMBDA_MAX >= 0.9 * 2 / np.array(lrs)
    np.testing.assert_array_equal(ds.edge_step.isel(init=0).values, np.where(reached, 0, -1))
    assert ds.edge_step.attrs["edge_band"] == 0.1 and ds.sharpness.attrs["sharpness_rtol"] == sharpness.RTOL


def test_quadratic_estimates_equal_the_exact_lambda_max():
    cond = 50.0
    bowl = lrsweep.problems.quadratic(dim=6, cond=cond, seed=3)  # eigenvalues geomspace(1, 50, 6)
    lam = np.geomspace(1.0, cond, 6)
    ds = lrsweep.sweep(bowl, [0.001, 0.01, 0.03], epochs=60, precision="float64", track_sharpness=True, progress=False)
    est = ds.sharpness.isel(init=0).values
    assert est.shape == (3, 6)  # steps 0, 10, ..., 50
    np.testing.assert_allclose(est, lam[-1], rtol=1e-4)
    summary = lrsweep.sweep(
        bowl,
        [0.001, 0.01, 0.03],
        epochs=60,
        precision="float64",
        record="summary",
        track_sharpness=True,
        progress=False,
    )
    np.testing.assert_allclose(summary.sharpness.values, lam[-1], rtol=1e-4)
    np.testing.assert_allclose(summary.max_sharpness.values, lam[-1], rtol=1e-4)
    assert np.all(summary.sharpness_residual.values < 1e-3)


def _net_problem(seed: int = 0):
    """A 3-5-2 tanh network with biases on 24 random points, mean squared error (not a built-in)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(24, 3)), rng.normal(size=(24, 2))

    def loss(p, xi, yi):
        h = jnp.tanh(xi @ p["A"] + p["a"])
        return jnp.sum((h @ p["B"] + p["c"] - yi) ** 2)

    init = {
        "A": rng.normal(size=(3, 5)) * 0.8,
        "a": rng.normal(size=5) * 0.1,
        "B": rng.normal(size=(5, 2)) * 0.5,
        "c": np.zeros(2),
    }
    return lrsweep.Problem("net", loss, x, y, init), loss


def _dense_lambda(loss, params, x, y) -> np.ndarray:
    """Every eigenvalue of the mean loss's Hessian at ``params``: dense ``jax.hessian``, float64."""
    with jax.enable_x64(True):
        flat, unravel = jax.flatten_util.ravel_pytree({k: jnp.asarray(v, jnp.float64) for k, v in params.items()})
        mean = lambda v: jnp.mean(jax.vmap(lambda xi, yi: loss(unravel(v), xi, yi))(x, y))
        h = np.asarray(jax.hessian(mean)(flat))
    return np.linalg.eigvalsh((h + h.T) / 2)


@pytest.mark.parametrize("precision, rtol", [("float64", 1e-4), ("float32", 1e-3)])
def test_network_estimates_equal_a_dense_hessian(precision, rtol):
    problem, loss = _net_problem()
    lrs = [0.02, 0.1]
    ds = lrsweep.sweep(
        problem,
        lrs,
        epochs=200,
        every=40,
        precision=precision,
        track_sharpness=True,
        sharpness_every=40,
        progress=False,
    )
    steps = ds.sharpness_step.values
    np.testing.assert_array_equal(steps, [0, 40, 80, 120, 160])
    for i in range(len(lrs)):
        for s in steps:
            params = {k: ds[k].isel(lr=i, init=0).sel(epoch=s).values for k in ("A", "a", "B", "c")}
            ev = _dense_lambda(loss, params, problem.x, problem.y)
            assert ev[-1] > abs(ev[0])  # the top eigenvalue is the largest in magnitude here
            est = float(ds.sharpness.isel(lr=i, init=0).sel(sharpness_step=s))
            assert abs(est - ev[-1]) <= rtol * ev[-1], (lrs[i], s, est, ev[-1])


def test_tracking_leaves_training_unchanged_and_records_agree():
    problem, _ = _net_problem(1)
    lrs = [0.01, 0.05, 0.2]
    plain = lrsweep.sweep(problem, lrs, epochs=50, progress=False)
    tracked = lrsweep.sweep(problem, lrs, epochs=50, track_sharpness=True, sharpness_every=5, progress=False)
    for name in ("loss", "A", "a", "B", "c", "outcome", "event_epoch", "score"):
        np.testing.assert_array_equal(tracked[name].values, plain[name].values)
    assert "sharpness" not in plain and "sharpness_step" not in plain.dims
    summary = lrsweep.sweep(
        problem, lrs, epochs=50, record="summary", track_sharpness=True, sharpness_every=5, progress=False
    )
    history = tracked.sharpness.values
    np.testing.assert_allclose(summary.sharpness.values, history[..., -1], rtol=1e-6)
    np.testing.assert_allclose(summary.max_sharpness.values, np.nanmax(history, axis=-1), rtol=1e-6)
    assert summary.sharpness.dims == ("lr", "init")


def test_edge_step_is_the_first_estimate_within_the_band():
    problem, _ = _net_problem(2)
    lrs = np.array([0.05, 0.2, 0.4])
    ds = lrsweep.sweep(problem, lrs, epochs=120, track_sharpness=True, sharpness_every=4, progress=False)
    est = ds.sharpness.isel(init=0).values
    steps = ds.sharpness_step.values
    for i, lr in enumerate(lrs):
        hits = np.flatnonzero(est[i] >= (1 - sharpness.EDGE_BAND) * 2 / lr)
        assert int(ds.edge_step.isel(lr=i, init=0)) == (int(steps[hits[0]]) if hits.size else -1)


def test_momentum_threshold_and_no_verdict_for_adam():
    betas = [0.0, 0.5, 0.9]
    mom = lrsweep.sweep(
        "linear",
        [0.05, 0.2],
        epochs=20,
        optimizer="momentum",
        optimizer_axes={"momentum": betas},
        record="summary",
        track_sharpness=True,
        progress=False,
    )
    edge = mom.edge_sharpness.transpose("lr", "opt_momentum", ...).isel(init=0).values
    expected = (2 + 2 * np.array(betas))[None, :] / np.array([0.05, 0.2])[:, None]
    np.testing.assert_allclose(edge, expected, rtol=1e-6)
    nest = lrsweep.sweep(
        "linear", 0.05, epochs=20, optimizer="nesterov", record="summary", track_sharpness=True, progress=False
    )
    np.testing.assert_allclose(float(nest.edge_sharpness.squeeze()), 2 * 1.9 / (2.8 * 0.05), rtol=1e-6)
    adam = lrsweep.sweep("linear", [0.1, 1.0], epochs=20, optimizer="adam", track_sharpness=True, progress=False)
    assert np.isnan(adam.edge_sharpness.values).all() and (adam.edge_step.values == -1).all()
    np.testing.assert_allclose(adam.sharpness.values, LESSON_LAMBDA_MAX, rtol=1e-4)  # still estimated


def test_store_keeps_the_sharpness_steps(tmp_path):
    out = tmp_path / "s.zarr"
    ds = lrsweep.sweep("linear", [0.01, 0.1], epochs=30, track_sharpness=True, out=str(out), progress=False)
    back = lrsweep.open(out)
    np.testing.assert_array_equal(back.sharpness_step.values, [0, 10, 20])
    xr.testing.assert_equal(back.sharpness.load(), ds.sharpness)
    assert back.attrs["sharpness_every"] == 10 and back.edge_step.attrs["edge_band"] == 0.1


@pytest.mark.parametrize("key, value", [("sharpness_every", 0), ("sharpness_iters", 0), ("track_sharpness", "yes")])
def test_bad_settings_are_one_line_errors(key, value):
    with pytest.raises(ValueError, match=key):
        lrsweep.sweep("linear", 0.1, epochs=5, **{key: value})


def test_start_vector_is_the_documented_weyl_sequence():
    params = {"b": np.zeros(()), "w": np.zeros((2, 2))}
    v = np.asarray(sharpness.start_vector(params, np.float32))
    u = np.mod(np.arange(1, 6) * (math.sqrt(5) - 1) / 2, 1.0) - 0.5
    np.testing.assert_allclose(v, u / np.linalg.norm(u), rtol=1e-6)  # b first: keys in sorted order


def test_run_prints_the_edge_line(capsys):
    cli.main(["run", "--lr", "0.01,0.1,0.13", "--epochs", "20", "--track-sharpness", "--quiet"])
    out = capsys.readouterr().out
    # Only lr 0.13 has 16.70 >= 0.9 x 2 / lr; the lesson's sharpness is 16.70 everywhere.
    assert "edge of stability: 1 of 3 configs reached 0.9 x the stability threshold" in out
    assert "from step 0 to 0" in out and "largest sharpness 16.7" in out


def test_hessian_vector_products_equal_a_dense_hessian():
    """``sharpness.hvp`` (linearized once, applied to several vectors) against ``jax.hessian``."""
    rng = np.random.default_rng(5)
    a, c = rng.normal(size=(7, 4)), rng.normal(size=7)
    with jax.enable_x64(True):
        f = lambda p: jnp.sum(jnp.tanh(a @ p["u"] + p["s"] * c) ** 2) + p["s"] ** 4
        params = {"s": jnp.asarray(0.3), "u": jnp.asarray(rng.normal(size=4))}
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        dense = np.asarray(jax.hessian(lambda v: f(unravel(v)))(flat))
        product = sharpness.hvp(f, params, jnp.float64)
        for _ in range(3):
            v = rng.normal(size=flat.size)
            np.testing.assert_allclose(np.asarray(product(jnp.asarray(v))), dense @ v, rtol=1e-12, atol=1e-12)


def test_a_diverged_run_does_not_hold_up_the_others():
    """Non-finite estimates stop at once; the finite ones beside them are still exact."""
    ds = lrsweep.sweep(
        "linear", [0.05, 2.0], epochs=40, track_sharpness=True, sharpness_iters=50, record="summary", progress=False
    )
    est = ds.sharpness.isel(init=0).values
    np.testing.assert_allclose(est[0], LESSON_LAMBDA_MAX, rtol=1e-4)
    assert not np.isfinite(ds.loss.isel(init=0).values[1])
