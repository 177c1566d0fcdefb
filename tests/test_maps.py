"""Trainability maps (lrsweep.maps): exactness against the paper's own code path, the box-counting
dimension on shapes of known dimension, pictures, zooms, the CLI and the whole-batch loss path.

References are independent: the paper's notebook code (float64; a Python loop over jitted,
vmapped steps on chunks of configs) transcribed in ``tests/paper_reference.py`` from
github.com/Sohl-Dickstein/fractal, and closed-form dimensions (a line, a square's outline, noise,
the Koch curve's log 4 / log 3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
from paper_reference import paper_map

import lrsweep
from lrsweep import maps
from lrsweep.cli import main as cli_main


def _check_exact(x_range, y_range, res, steps):
    ratio, _ = paper_map([y_range[0], y_range[1], x_range[0], x_range[1]], res, steps)
    ds = maps.trainability(x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64")
    score = ds.score.transpose("lr_W1", "lr_W0").values
    trainable = ds.trainable.transpose("lr_W1", "lr_W0").values
    assert maps.boundary(trainable).mean() >= 0.25  # the window straddles the boundary
    finite = np.isfinite(ratio)  # the notebook's ratio is NaN where a loss overflowed (v * 0 = NaN)
    np.testing.assert_allclose(score[finite], ratio[finite], rtol=1e-9, atol=0)
    assert (score[~finite] >= 1).all()
    agree = ((ratio < 1) == trainable).mean()
    assert agree >= 0.999, agree


@pytest.mark.slow
def test_score_equals_the_papers_code_path():
    # 24 x 24 pixels at 500 steps straddling the boundary (32% of the pixels on it).
    _check_exact((2.5, 2.9), (2.08, 2.17), 24, 500)


def test_colour_equals_the_papers_convergence_measure():
    # The paper's per-pixel value, -sum(v) if trainable else sum(1 / v) over all 300 steps, from
    # sums the sweep accumulated as it trained; non-finite losses count as 1e6 (the notebook's intent).
    x_range, y_range, res, steps = (2.5, 3.6), (2.05, 2.3), 16, 300
    ratio, value = paper_map([*y_range, *x_range], res, steps, as_written=False)
    ds = maps.trainability(x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64")
    colour = ds.colour.transpose("lr_W1", "lr_W0").values
    trainable = ds.trainable.transpose("lr_W1", "lr_W0").values
    assert 0.1 <= trainable.mean() <= 0.9 and not np.isfinite(ds.loss).all()  # both classes, some overflowed
    assert ((ratio < 1) == trainable).all()
    np.testing.assert_allclose(colour, value, rtol=1e-9, atol=0)
    # and the picture is the notebook's cdf_img of it
    np.testing.assert_allclose(maps.image_of(ds), maps.restretch(value), rtol=1e-12, atol=1e-12)
    for name in ("sum_v", "sum_inv_v"):
        assert ds[name].attrs["long_name"]


@pytest.mark.slow
def test_score_equals_the_papers_code_path_held_out():
    _check_exact((3.0, 3.4), (2.03, 2.11), 24, 500)
    _check_exact((2.6, 3.0), (2.085, 2.165), 40, 1000)


# ------------------------------------------------------------------------------------------------
# Box counting on shapes of known dimension
# ------------------------------------------------------------------------------------------------


def test_dimension_of_a_straight_edge_is_one():
    half = np.broadcast_to(np.arange(512) < 200, (512, 512))
    fd = maps.fractal_dimension(half)
    assert fd.dimension == pytest.approx(1.0, abs=0.02)
    i, j = np.mgrid[0:512, 0:512]
    for slope in (0.3, 0.7):  # tilted edges: a staircase of pixels, still a line
        assert maps.fractal_dimension(i < 100 + slope * j).dimension == pytest.approx(1.0, abs=0.05)


def test_dimension_of_a_filled_square_outline_is_one():
    square = np.zeros((512, 512), bool)
    square[100:400, 130:430] = True
    fd = maps.fractal_dimension(square)
    assert fd.dimension == pytest.approx(1.0, abs=0.05)
    assert fd.ci_low <= fd.dimension <= fd.ci_high
    assert fd.sizes[0] == 2 and fd.sizes[-1] == 128


def test_dimension_of_noise_is_near_two():
    noise = np.random.default_rng(0).random((512, 512)) < 0.5
    with pytest.warns(maps.NotMeaningfulWarning, match="boundary covers 94% of pixels"):
        fd = maps.fractal_dimension(noise)  # near two, but unresolved: finer than a pixel
    assert fd.dimension == pytest.approx(2.0, abs=0.02) and not fd.meaningful


def _koch_snowflake(level: int) -> np.ndarray:
    pts = np.array([[0.0, 0.0], [0.5, math.sqrt(3) / 2], [1.0, 0.0], [0.0, 0.0]])
    rot = np.array([[0.5, -math.sqrt(3) / 2], [math.sqrt(3) / 2, 0.5]])  # +60 degrees
    for _ in range(level):
        a, b = pts[:-1], pts[1:]
        d = (b - a) / 3
        p1, p2 = a + d, a + 2 * d
        peak = p1 + d @ rot.T
        pts = np.concatenate([np.stack([a, p1, peak, p2], axis=1).reshape(-1, 2), pts[-1:]])
    return pts


def test_dimension_of_a_koch_curve_raster():
    # A Koch snowflake (7 levels) filled into a 2048 x 2048 raster: its outline has dimension log 4 / log 3.
    n = 2048
    flake = _koch_snowflake(7) * 0.8 * n + [0.1 * n, 0.12 * n]
    image = PIL.Image.new("1", (n, n), 0)
    PIL.ImageDraw.Draw(image).polygon([tuple(p) for p in flake], fill=1)
    fd = maps.fractal_dimension(np.asarray(image, bool))
    koch = math.log(4) / math.log(3)
    assert fd.dimension == pytest.approx(koch, abs=0.05)
    assert fd.ci_low < koch < fd.ci_high


def test_dimension_of_no_boundary_is_nan_and_bad_maps_are_refused():
    assert math.isnan(maps.fractal_dimension(np.ones((64, 64), bool)).dimension)
    with pytest.raises(ValueError, match="trainable has dtype"):
        maps.fractal_dimension(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="trainable has shape"):
        maps.fractal_dimension(np.zeros(8, bool))


# ------------------------------------------------------------------------------------------------
# Maps, pictures, zooms and the CLI
# ------------------------------------------------------------------------------------------------


def test_map_dataset_and_resumable_store(tmp_path):
    ds = maps.trainability(x_range=(2.0, 3.5), y_range=(2.0, 2.4), res=12, steps=60, out=tmp_path / "m.zarr")
    assert ds.trainable.dims == ("lr_W0", "lr_W1") and ds.trainable.dtype == bool
    assert {"score", "trainable", "colour", "outcome", "event_epoch", "loss"} <= set(ds.data_vars)
    np.testing.assert_array_equal(ds.trainable.values, ds.score.values < 1)
    np.testing.assert_array_equal(ds.colour.values < 0, ds.trainable.values)
    assert ds.attrs["record"] == "summary"
    np.testing.assert_allclose(ds.lr_W0.values, np.logspace(2.0, 3.5, 12), rtol=1e-15)
    again = maps.trainability(x_range=(2.0, 3.5), y_range=(2.0, 2.4), res=12, steps=60, out=tmp_path / "m.zarr")
    np.testing.assert_array_equal(again.score.values, ds.score.values)
    assert again.attrs["chunks_done"] == again.attrs["chunks_total"]


def test_restretch_is_the_notebooks_cdf():
    values = np.array([[-3.0, -1.0, 0.0], [2.0, 5.0, -2.0]])
    out = maps.restretch(values)
    # negatives (trainable) in [0.25, 1] by rank, the rest in [-1, -0.25]
    np.testing.assert_allclose(out, [[1.0, 0.25, 0.25 - 0.5], [-0.625, -1.0, 0.625]])


def test_figure_orientation_labels_and_zoom_windows():
    ds = maps.trainability(x_range=(2.0, 3.5), y_range=(2.0, 2.4), res=8, steps=30)
    fig = maps.figure(ds)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Input layer learning rate" and ax.get_ylabel() == "Output layer learning rate"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1.000e+2", "3.162e+3"]
    image = ax.images[0]
    assert image.origin == "lower" and list(image.get_extent()) == [2.0, 3.5, 2.0, 2.4]
    # rows of the image are the output layer's lr: row 0 is its smallest
    np.testing.assert_array_equal(np.asarray(image.get_array()), maps.restretch(ds.colour.values.T))
    wins = maps.zoom_windows((1.0, 2.0), 100.0, 5)
    assert wins[0] == (maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE) or np.allclose(
        np.array(wins[0]), np.array((maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE))
    )
    (x0, x1), (y0, y1) = wins[-1]
    assert (x0 + x1) / 2 == pytest.approx(1.0) and (x1 - x0) == pytest.approx(0.05)
    assert (y0 + y1) / 2 == pytest.approx(2.0) and (y1 - y0) == pytest.approx(0.015)


def test_cli_map_png_and_gif(tmp_path, capsys):
    png = tmp_path / "m.png"
    assert (
        cli_main(
            ["map", "--x-range", "2:3.5", "--y-range", "2:2.4", "--res", "8", "--steps", "30", "--png", str(png), "-q"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "trainable" in out and "fractal dimension" in out and "time" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    gif = tmp_path / "z.gif"
    args = ["map", "--zoom-to", "2.7,2.1", "--zoom", "10", "--frames", "2", "--res", "8", "--steps", "20"]
    assert cli_main([*args, "--out", str(tmp_path / "frames"), "--gif", str(gif), "-q"]) == 0
    assert gif.read_bytes()[:3] == b"GIF" and len(list((tmp_path / "frames").glob("frame-*.zarr"))) == 2
    assert cli_main(["map", "--x-range", "3:1"]) == 2
    assert "x_range=(3.0, 1.0) is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"res": 1}, "res=1 is invalid"),
        ({"steps": 0}, "steps=0 is invalid"),
        ({"precision": "mixed"}, "precision='mixed' is invalid"),
        ({"x_range": (0, float("nan"))}, "x_range="),
        ({"record": "trajectory"}, "record='trajectory' is invalid"),
        ({"x_axis": "lr_W2"}, "x_axis='lr_W2' is invalid without a problem"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        maps.trainability(**{"res": 4, "steps": 2, **kwargs})
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# The whole-batch loss path
# ------------------------------------------------------------------------------------------------


def test_whole_batch_loss_agrees_with_the_per_example_path():
    per_example = lrsweep.problems.mlp()
    batched = maps.paper_problem("autodiff")
    assert batched.batch_loss is not None and per_example.batch_loss is None
    assert not hasattr(per_example.loss, "batch_loss")  # built-ins keep their compiled program
    lr = {"W0": [1.0, 100.0, 1000.0], "W1": [10.0, 150.0]}
    kw: dict[str, Any] = dict(epochs=40, record="summary", precision="float64", progress=False)
    a = lrsweep.sweep(per_example, lr, **kw)
    b = lrsweep.sweep(batched, lr, **kw)
    np.testing.assert_allclose(b.score.values, a.score.values, rtol=1e-9)
    same = dataclasses.replace(batched)  # replace keeps the pair, and equal pairs hash equal
    assert same.loss == batched.loss and hash(same.loss) == hash(batched.loss)
    # The hand-written gradient: the same math, rounded differently, so compared over a few steps
    # (near the boundary a last-bit difference grows into another trajectory within tens of steps).
    kw["epochs"] = 4
    a = lrsweep.sweep(per_example, lr, **kw)
    c = lrsweep.sweep(maps.paper_problem("manual"), lr, **kw)
    np.testing.assert_allclose(c.loss.values, a.loss.values, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{}, {"depth": 2, "activation": "relu"}, {"depth": 3, "activation": "sigmoid", "target_dim": 2}]
)
def test_hand_written_gradient_equals_autodiff(kwargs):
    from lrsweep.problems.builtins import DEFAULT_GAINS, mlp_batch_loss

    p = lrsweep.problems.mlp(**kwargs)
    act = kwargs.get("activation", "tanh")
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v) * 1.3 for k, v in p.init.items()}
        x, y = jnp.asarray(p.x), jnp.asarray(p.y)
        per_example = p.loss
        value, grad = jax.jit(jax.value_and_grad(mlp_batch_loss(act, DEFAULT_GAINS[act])))(params, x, y)
        ref_value, ref = jax.jit(
            jax.value_and_grad(lambda q: jnp.mean(jax.vmap(per_example, in_axes=(None, 0, 0))(q, x, y)))
        )(params)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-14)
    for k in ref:
        g, r = np.asarray(grad[k]), np.asarray(ref[k])
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-14 * np.abs(r).max())


def test_batch_loss_must_return_a_scalar():
    p = lrsweep.problems.mlp(width=2)
    with pytest.raises(ValueError, match="batch_loss"):
        dataclasses.replace(p, batch_loss=lambda params, x, y: x)
