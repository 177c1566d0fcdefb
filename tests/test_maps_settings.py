"""The six settings of the fractal paper's notebook (lrsweep.maps.settings) against its own code.

The reference is the notebook's code (github.com/Sohl-Dickstein/fractal), transcribed in
``tests/paper_reference.py`` with its hyperparameters as arguments and run in float64 as the
notebook runs. Nothing of lrsweep is used to compute it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, cast

import jax
import numpy as np
import pytest
from paper_reference import paper_setting_map

from lrsweep import maps
from lrsweep.cli import main as cli_main
from lrsweep.maps import settings as map_settings


def compare(setting, x_range, y_range, res, steps, prng="jax"):
    """lrsweep's float64 map against the notebook's: ``(agreement, steady share, boundary share)``.

    ``agreement`` is the share of verdicts that agree on the steady pixels: those whose notebook
    score moves by less than 1e-6 (relative) when ``W0`` is nudged by 1e-12. On the others the
    trajectory is chaotic (a difference in the last bit grows to a different run), so no two codes
    that round differently can agree there. On steady pixels the scores must agree to 1e-6 too,
    except on runs whose loss went non-finite (scored differently, both far above 1)."""
    kw: dict[str, Any] = dict(partitionable=prng == "jax", as_written=False)
    ratio, _ = paper_setting_map(setting, x_range, y_range, res, steps, **kw)
    nudged, _ = paper_setting_map(setting, x_range, y_range, res, steps, init_shift=1e-12, **kw)
    ds = maps.trainability(
        setting=setting, x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64", prng=prng
    )
    mine = ds.score.values.T  # rows y, columns x, as the notebook's image
    steady = np.abs(nudged - ratio) <= 1e-6 * np.abs(ratio)
    # A loss gone non-finite counts 1e6 / L_0 in the notebook and 1e6 here (lrsweep.outcomes): the
    # same where L_0 <= 1 (the clip), not under the paper's draws (L_0 = 1.087). Both are far above 1.
    finite = ratio < 1e3
    np.testing.assert_allclose(mine[steady & finite], ratio[steady & finite], rtol=1e-6, atol=1e-9)
    assert (mine[steady & ~finite] >= 1e3).all()
    agree = float(np.mean((mine[steady] < 1) == (ratio[steady] < 1)))
    return agree, float(steady.mean()), float(maps.boundary(ratio < 1).mean())


@pytest.mark.slow
@pytest.mark.parametrize("setting", map_settings.SETTINGS)
def test_each_setting_matches_the_notebooks_code(setting):
    x_range, y_range = map_settings.WINDOWS[setting]
    agree, steady, edge = compare(setting, x_range, y_range, 12, 100)
    assert edge >= 0.08  # the window straddles the boundary
    assert steady >= 0.75  # paraminit's window is the most chaotic: 79.9% steady at 12 px
    assert agree >= 0.999, agree


@pytest.mark.slow
def test_paraminit_window_at_32px_matches_the_notebooks_code():
    # The default window at the gallery's size: a ragged edge, a third of the pixels on it.
    x_range, y_range = map_settings.WINDOWS["paraminit"]
    agree, steady, edge = compare("paraminit", x_range, y_range, 32, 150)
    assert edge >= 0.25 and steady >= 0.6  # measured: 36.2% on the boundary, 68.7% steady
    assert agree >= 0.999, agree


@pytest.mark.slow
def test_the_papers_draws_match_the_notebook_as_it_ran_in_2024():
    agree, steady, edge = compare("tanh", (-1.0, 4.0), (1.5, 3.0), 12, 100, prng="paper")
    assert edge >= 0.08 and steady >= 0.8 and agree >= 0.999


def test_the_papers_corner_shows_with_its_draws_only():
    # The corner of the paper's full view (x > 5, y < -1.8, log10 lr) is untrainable in its published
    # tanh figure. With the paper's draws every pixel of it is, score for score as the notebook's code
    # under the old threefry; with today's draws most of it trains (measured: 9 of 36 pixels do not).
    x_min, y_max = map_settings.PAPER_CORNER
    (_, x_hi), (y_lo, _) = map_settings.PAPER_FULL_VIEW
    win: dict[str, Any] = dict(x_range=(x_min, x_hi), y_range=(y_lo, y_max), res=6, steps=100, precision="float64")
    paper = maps.trainability(prng="paper", **win)
    today = maps.trainability(prng="jax", **win)
    ratio, _ = paper_setting_map("tanh", win["x_range"], win["y_range"], 6, 100, partitionable=False)
    np.testing.assert_allclose(paper.score.values.T, ratio, rtol=1e-9)
    assert not paper.trainable.values.any() and (ratio >= 1).all()
    assert today.trainable.values.mean() >= 0.5


@pytest.mark.slow
def test_the_papers_full_view_has_its_untrainable_corner():
    # The notebook's opening window x, y in [-3, 6] at 24 x 24 pixels, as the paper's figure.
    (x_range, y_range), (x_min, y_max) = map_settings.PAPER_FULL_VIEW, map_settings.PAPER_CORNER
    kw: dict[str, Any] = dict(x_range=x_range, y_range=y_range, res=24, steps=100, precision="float64")
    paper, today = maps.trainability(prng="paper", **kw), maps.trainability(prng="jax", **kw)
    corner = (np.log10(paper.lr_W0.values)[:, None] > x_min) & (np.log10(paper.lr_W1.values)[None, :] < y_max)
    assert corner.sum() == 12
    assert (~paper.trainable.values[corner]).mean() >= 0.9  # measured: 100%
    assert (~today.trainable.values[corner]).mean() <= 0.5  # measured: 8.3%
    agree, steady, _ = compare("tanh", x_range, y_range, 24, 100, prng="paper")
    assert steady >= 0.8 and agree >= 0.999


def test_paper_draws_differ_from_todays_and_equal_the_old_threefry():
    new = map_settings.setting_problem("tanh", steps=10).problem
    old = map_settings.setting_problem("tanh", steps=10, prng="paper").problem
    assert not isinstance(new, str) and not isinstance(old, str)
    with jax.enable_x64(True), jax.threefry_partitionable(False):
        k = jax.random.split(jax.random.PRNGKey(0))[1]  # rng, srng = split(rng): the second
        w0 = np.asarray(jax.random.normal(jax.random.split(k, 2)[0], (16, 16)))
    np.testing.assert_array_equal(old.init["W0"], w0)
    assert not np.array_equal(new.init["W0"], w0)


def test_minibatch_table_is_the_notebooks_draw():
    table = map_settings.minibatch_table(5, 272)
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.PRNGKey(42), 5)
        want = np.stack([np.asarray(jax.random.randint(k, (16,), 0, 272)) for k in keys])
    np.testing.assert_array_equal(table, want)
    assert table.shape == (5, 16) and table.min() >= 0 and table.max() < 272


def test_drift_sgd_adds_the_offset_each_step():
    tx = map_settings.drift_sgd(0.5)
    params = {"W0": np.array([1.0, 2.0]), "W1": np.array([3.0]), "offset": np.array(0.25)}
    grads = {"W0": np.array([2.0, -2.0]), "W1": np.array([4.0]), "offset": np.array(0.0)}
    u, _ = tx.update(grads, tx.init(params), params)
    u = cast(dict, u)
    new = {k: params[k] + u[k] for k in params}
    np.testing.assert_array_equal(new["W0"], [1.25 - 1.0, 2.25 + 1.0])
    np.testing.assert_array_equal(new["W1"], [1.0])
    assert float(new["offset"]) == 0.25


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"setting": "sigmoid"}, "setting='sigmoid' is invalid"),
        ({"setting": "single", "n_data": 5}, "n_data=5 is invalid"),
        ({"setting": "minibatch", "n_data": 10}, "n_data=10 is invalid"),
        ({"prng": "old"}, "prng='old' is invalid"),
        ({"setting": "paraminit", "offset_mode": "twice"}, "offset_mode='twice' is invalid"),
        ({"precision": "float16"}, "precision='float16' is invalid"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        maps.trainability(res=2, steps=2, **kwargs)


# ------------------------------------------------------------------------------------------------
# The paper's dimension estimator against a box count written as porespy's (a loop over boxes)
# ------------------------------------------------------------------------------------------------


def loop_box_slopes(image: np.ndarray) -> np.ndarray:
    """The notebook's estimate for one image, written out: the 2 x 2 edge set of the sign image
    (trainable negative), porespy's ``boxcount`` (boxes with some but not all edge pixels, sizes
    ``unique(int(logspace(1, log10(n), 10)))``), ``-gradient(log N, log s)``."""
    v = np.where(image, -1.0, 1.0)
    y = np.stack((v[1:, 1:], v[:-1, 1:], v[1:, :-1], v[:-1, :-1]), axis=-1)
    edges = np.sign(y.max(axis=-1) * y.min(axis=-1)) < 0
    sizes = np.unique(np.logspace(1, np.log10(min(edges.shape)), 10).astype(int))
    counts = []
    for d in sizes:
        n = 0
        for i in range(0, edges.shape[0], d):
            for j in range(0, edges.shape[1], d):
                box = edges[i : i + d, j : j + d]
                n += int(box.any()) - int(box.all())
        counts.append(n)
    return -np.gradient(np.log(np.array(counts, float)), np.log(sizes))


def test_paper_method_equals_a_loop_box_count_on_known_shapes():
    i, j = np.mgrid[0:300, 0:300]
    line = i < 100 + 0.37 * j
    disc = (i - 150) ** 2 + (j - 140) ** 2 < 90**2
    for image in (line, disc):
        fd = maps.fractal_dimension(image, method="paper")
        assert fd.method == "paper" and fd.meaningful
        assert fd.dimension == pytest.approx(float(np.median(loop_box_slopes(image))), abs=1e-12)
        assert fd.dimension == pytest.approx(1.0, abs=0.1)  # both are curves
    seq = maps.fractal_dimension([line, disc], method="paper")  # a zoom sequence pools the slopes
    pooled = np.concatenate([loop_box_slopes(line), loop_box_slopes(disc)])
    assert seq.dimension == pytest.approx(float(np.median(pooled)), abs=1e-12)
    assert seq.ci_low == pytest.approx(float(np.percentile(pooled, 25)))


def test_a_small_map_gives_no_meaningful_dimension():
    i, j = np.mgrid[0:48, 0:48]
    edge = i < 10 + 0.5 * j + 3 * np.sin(j)
    for method in maps.METHODS:
        with pytest.warns(maps.NotMeaningfulWarning, match="is not meaningful: the boxes span"):
            fd = maps.fractal_dimension(edge, method=method)
        assert not fd.meaningful
        assert "not meaningful at this resolution" in maps.dimension_text(fd)
    assert maps.fractal_dimension(np.broadcast_to(np.arange(64) < 32, (64, 64))).meaningful


# ------------------------------------------------------------------------------------------------
# The command line, the store, precision
# ------------------------------------------------------------------------------------------------


def test_help_states_the_codes_defaults(capsys):
    with pytest.raises(SystemExit):
        cli_main(["map", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, (x, y) in map_settings.WINDOWS.items():
        assert f"{name} {x[0]:g}:{x[1]:g} x {y[0]:g}:{y[1]:g}" in text
    assert f"(default {maps.DEFAULT_RES})" in text and f"(default {maps.DEFAULT_STEPS})" in text
    assert f"default {maps.DEFAULT_PRECISION}" in text and f"default {map_settings.DEFAULT_PRNG}" in text
    assert f"(default {map_settings.DEFAULT_SETTING})" in text
    assert f"(default {map_settings.DEFAULT_OFFSET_MODE})" in text
    net = inspect.signature(map_settings.setting_problem).parameters
    for flag, name in (("hidden units", "width"), ("hidden layers", "depth"), ("outputs per point", "target_dim")):
        assert f"{flag} (default {net[name].default})" in text
    assert f"{maps.CHECK_RES} x {maps.CHECK_RES} sample" in text and f">= {100 * maps.AUTO_AGREEMENT:g}%" in text


def test_quiet_drops_the_progress_bar_only(capsys):
    args = ["map", "--x-range", "2:3.5", "--y-range", "2:2.4", "--res", "4", "--steps", "10", "--precision", "float64"]
    outs = []
    for quiet in ([], ["-q"]):
        assert cli_main([*args, *quiet]) == 0
        out, err = capsys.readouterr()
        outs.append((re.sub(r"time [0-9.]+ s", "time s", out), err))
    (loud, bar), (quiet_out, no_bar) = outs
    assert loud == quiet_out and "fractal dimension" in loud and "trainable" in loud
    assert "config-step" in bar and no_bar == ""


def test_cli_setting_quiet_prints_the_facts_and_open_gives_the_same_map(tmp_path, capsys):
    store = tmp_path / "p.zarr"
    args = ["map", "--setting", "paraminit", "--res", "6", "--steps", "30", "--precision", "float32", "-q"]
    assert cli_main([*args, "--out", str(store)]) == 0
    out = capsys.readouterr().out
    assert "paraminit" in out and "trainable" in out and "fractal dimension: not meaningful" in out
    assert "verdicts agree with float64 on" in out  # float32 prints its measured agreement
    again = maps.open(store)
    ds = maps.trainability(setting="paraminit", res=6, steps=30, precision="float32")
    for name in ("trainable", "colour", "score"):
        np.testing.assert_array_equal(again[name].values, ds[name].values)
    assert again.trainable.dims == ds.trainable.dims == ("init_offset", "lr")
    assert again.attrs["fraction_trainable"] == ds.attrs["fraction_trainable"]
    np.testing.assert_allclose(again.attrs["map_x_range"], ds.attrs["map_x_range"], rtol=1e-12)


def test_bench_report_leads_with_float64_against_float64():
    from lrsweep.bench import maps as maps_bench

    case = {"configs": 16, "steps": 10, "seconds": 1.0, "cold_s": 2.0, "rate": 160.0, "gflops": 1.0, "of_peak": 0.1}
    result = {
        "window": {"res": 4, "steps": 10},
        "cases": {"paper float64": case, "lrsweep float64": case, "lrsweep float32": case},
        "float64_over_paper_warm": 3.0,
        "float64_over_paper_cold": 0.5,
        "float32_over_paper_warm": 5.0,
        "float32_over_paper_cold": 0.6,
        "float32_check_seconds": 0.1,
        "matmul_peak_flops": 1e10,
        "flops_per_config_step": 304640,
        "gemms_alone": {"chunk": 8, "gflops": 1.0, "of_peak": 0.1},
        "float32_vs_float64_by_window": [
            {"window": "w", "x_range": [0, 1], "y_range": [0, 1], "boundary_share": 0.1, "agreement": 0.99}
        ],
    }
    text = maps_bench.markdown(result)
    first = next(line for line in text.splitlines() if line.startswith("- "))
    assert first.startswith("- **lrsweep float64 / paper float64: 3.0x warm, 0.5x cold**")
    assert "Identical work on every row: the default window, 4 x 4 pixels, 10 steps;" in text


def test_auto_precision_measures_a_sample_then_chooses():
    ds = maps.trainability(x_range=(2.0, 3.5), y_range=(2.0, 2.4), res=4, steps=20)
    a = ds.attrs["auto_sample_agreement"]
    assert ds.attrs["auto_sample_pixels"] == 16 and 0.0 <= a <= 1.0
    assert ds.attrs["map_precision"] == ("float32" if a >= maps.AUTO_AGREEMENT else "float64")
    assert ds.attrs["map_precision"] in maps.precision_text(ds)
