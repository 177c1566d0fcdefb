"""Sweep axes: per-group learning rates, inits drawn from a seed, init grids."""

import jax
import numpy as np
import pytest

import lrsweep
from lrsweep import problems


def test_per_group_lrs_make_one_dim_per_group():
    ds = lrsweep.sweep("linear", {"w": [0.01, 0.02, 0.03], "b": [0.1, 0.2]}, epochs=1)
    assert ds.w.dims == ("lr_w", "lr_b", "init", "epoch")
    assert dict(ds.sizes) == {"lr_w": 3, "lr_b": 2, "init": 1, "epoch": 2}
    # One epoch from w = b = 0: the gradient is (dL/dw, dL/db) = (-45, -15) in closed form.
    w1 = ds.w.isel(init=0, epoch=1).values
    b1 = ds.b.isel(init=0, epoch=1).values
    np.testing.assert_allclose(w1, 45 * np.array([0.01, 0.02, 0.03])[:, None] * np.ones((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(b1, 15 * np.ones((3, 1)) * np.array([0.1, 0.2])[None, :], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["gd", pytest.param("adam", marks=pytest.mark.slow)])
def test_equal_group_lrs_equal_a_single_lr(optimizer):
    p = problems.mlp(width=3, depth=1)
    lrs = [0.05, 0.2]
    grouped = lrsweep.sweep(
        p, {"W0": lrs, "W1": lrs}, epochs=30, optimizer=optimizer, record="summary", precision="float64"
    )
    single = lrsweep.sweep(p, lrs, epochs=30, optimizer=optimizer, record="summary", precision="float64")
    for k in range(2):
        for name in ("W0", "W1", "loss"):
            np.testing.assert_allclose(
                grouped[name].isel(lr_W0=k, lr_W1=k).values, single[name].isel(lr=k).values, rtol=1e-12
            )


def test_groups_map_names_to_parameters():
    p = problems.chapter_net()
    ds = lrsweep.sweep(
        p,
        {"hidden": [0.1], "output": [0.0001, 1.0]},
        epochs=5,
        record="summary",
        groups={"hidden": ["W1", "b1"], "output": ["W2", "b2"]},
    )
    # With a tiny output lr the output layer barely moves; the hidden layer moves the same.
    moved = np.abs(ds.W2.isel(lr_hidden=0, init=0).values - p.init["W2"]).max(axis=(1, 2))
    assert moved[0] < 1e-3 < moved[1]


@pytest.mark.parametrize(
    "lr,groups,fragment",
    [
        ({"w": [0.1]}, None, "leaves parameters ['b']"),
        ({"w": [0.1], "c": [0.1]}, None, "'c', which is not a parameter"),
        ({"g": [0.1], "h": [0.1]}, {"g": ["w", "b"], "h": ["b"]}, "in two learning-rate groups"),
        ({"g": [0.1]}, {"other": ["w"]}, "same keys as lr"),
        ({"w": [-1.0], "b": [0.1]}, None, "lr['w']"),
        ({}, None, "at least one group"),
        ([0.1], {"g": ["w"]}, "only used with per-group"),
    ],
)
def test_bad_groups(lr, groups, fragment):
    with pytest.raises(ValueError) as err:
        lrsweep.sweep("linear", lr, groups=groups, epochs=2)
    assert fragment in str(err.value)


def test_init_count_draws_from_the_problem_sampler():
    p = problems.quadratic(dim=4, cond=5.0)
    ds = lrsweep.sweep(p, 0.1, init=6, seed=3, epochs=2, precision="float64")
    keys = jax.random.split(jax.random.key(3), 6)
    sampler = p.sampler
    assert sampler is not None
    expected = np.stack([np.asarray(sampler(k)["p"]) for k in keys])
    np.testing.assert_array_equal(ds.p.isel(lr=0, epoch=0).values, expected)
    again = lrsweep.sweep(p, 0.1, init=6, seed=3, epochs=2, precision="float64")
    other = lrsweep.sweep(p, 0.1, init=6, seed=4, epochs=2, precision="float64")
    np.testing.assert_array_equal(again.p.values, ds.p.values)
    assert not np.array_equal(other.p.isel(epoch=0).values, ds.p.isel(epoch=0).values)


def test_init_count_needs_a_sampler():
    with pytest.raises(ValueError, match="no init sampler"):
        lrsweep.sweep("linear", 0.1, init=5)
    with pytest.raises(ValueError, match="init=0"):
        lrsweep.sweep(problems.quadratic(), 0.1, init=0)


def test_init_grid_is_a_product_of_named_dims():
    grid = lrsweep.init_grid(w="lin:-2:2:5", b=[0.0, 1.0, 2.0])
    ds = lrsweep.sweep("linear", [0.01, 0.1], init=grid, epochs=50, record="summary")
    assert ds.w.dims == ("lr", "init_w", "init_b")
    assert ds.init_w.values.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    # ... and equals the same inits given as a flat batch.
    w0, b0 = np.meshgrid(grid.values["w"], grid.values["b"], indexing="ij")
    flat = lrsweep.sweep("linear", [0.01, 0.1], init={"w": w0.ravel(), "b": b0.ravel()}, epochs=50, record="summary")
    for var in ("w", "b", "loss", "outcome"):
        np.testing.assert_array_equal(ds[var].values, flat[var].values.reshape(2, 5, 3))


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"z": [1.0]}, "'z', which is not a parameter"),
        ({"W1": [1.0]}, "a grid takes scalar parameters"),
    ],
)
def test_bad_init_grids(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        lrsweep.sweep("chapter_net" if "W1" in kwargs else "linear", 0.1, init=lrsweep.init_grid(**kwargs), epochs=2)
    assert fragment in str(err.value)


@pytest.mark.parametrize("spec", ["lin:2:1:3", "lin:0:1:0", [], [np.nan], "log:-1:1:3"])
def test_bad_init_grid_values(spec):
    with pytest.raises(ValueError, match="init_grid"):
        lrsweep.init_grid(w=spec)
