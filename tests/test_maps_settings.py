"""The six settings of the fractal paper's notebook (lrsweep.maps.settings) against its own code.

The reference is the notebook's code (github.com/Sohl-Dickstein/fractal, cells "Network and
training" and "Train networks over grid"), transcribed here with its hyperparameters as arguments
and run in float64 as the notebook runs: a Python loop over a jitted, vmapped ``train_step``, the
minibatch keys ``split(PRNGKey(42), steps)``, the offset added to the stored weights inside each
step. Nothing of lrsweep is used to compute it.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrsweep import maps
from lrsweep.cli import main as cli_main
from lrsweep.maps import settings as map_settings


def paper_verdicts(
    mnmx, res, steps, *, nonlinearity="tanh", minibatch_size=None, dataset="full", phase_space="lr_vs_lr",
    width=16, depth=2, target_dim=1, partitionable=True, init_shift=0.0,
):  # fmt: skip
    """The notebook's map: ``(ratio, value)`` images, rows the y axis (low first), columns x.
    ``ratio < 1`` is trainable. ``init_shift`` nudges ``W0`` by that much (a chaos probe)."""
    with jax.enable_x64(True), jax.threefry_partitionable(partitionable):

        def net(theta, X):
            for W in theta:
                Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
                if nonlinearity == "tanh":
                    X = jax.nn.tanh(Z * jnp.sqrt(2))
                elif nonlinearity == "relu":
                    X = jax.nn.relu(Z) * jnp.sqrt(2)
                else:
                    X = Z
            return Z / jnp.sqrt(W.shape[0])

        def init(rng):
            rng = jax.random.split(rng, depth)
            theta, out_width = [], width
            for i in range(depth):
                if i == depth - 1:
                    out_width = target_dim
                theta.append(jax.random.normal(rng[i], (width, out_width)))
            return theta

        def loss(theta, X, Y):
            return jnp.mean((net(theta, X) - Y) ** 2)

        def train_step(rng, theta, hparams, X, Y):
            if phase_space == "lr_vs_lr":
                learning_rates = [hparams[i % len(hparams)] for i in range(len(theta))]
            else:
                theta = [t + hparams[0] if i == 0 else t for i, t in enumerate(theta)]
                learning_rates = [hparams[1] for _ in theta]
            if minibatch_size is None:
                _loss, _grad = jax.value_and_grad(loss)(theta, X, Y)
            else:
                idx = jax.random.randint(rng, (minibatch_size,), 0, X.shape[0])
                _loss = loss(theta, X, Y)
                _grad = jax.grad(loss)(theta, X[idx], Y[idx])
            return jax.tree.map(lambda t, g, lr: t - lr * g, theta, _grad, learning_rates), _loss

        step = jax.jit(jax.vmap(train_step, in_axes=(None, 0, 0, None, None)))

        def measure(v, max_val=1e6):
            v = jnp.where(jnp.isfinite(v), v, max_val)
            v = v / v[0]
            v = jnp.where(v > max_val, max_val, v)
            ratio = jnp.mean(v[-20:])
            return ratio, jnp.where(ratio < 1, -jnp.sum(v), jnp.sum(1 / v))

        rng = jax.random.PRNGKey(0)
        rng, srng = jax.random.split(rng)
        theta = init(srng)
        theta[0] = theta[0] + init_shift
        n_params = sum(int(t.size) for t in theta)
        rng, srng = jax.random.split(rng)
        if dataset == "single":
            n = 1
        elif nonlinearity == "identity":
            n = width
        else:
            n = n_params // target_dim
        X = jax.random.normal(srng, (n, width))
        rng, srng = jax.random.split(rng)
        Y = jax.random.normal(srng, (n, target_dim))
        mn1, mx1, mn2, mx2 = mnmx
        lr0, lr1 = jnp.meshgrid(jnp.logspace(mn2, mx2, res), jnp.logspace(mn1, mx1, res))
        hp = jnp.stack([lr0.ravel(), lr1.ravel()], axis=-1)
        th = [jnp.tile(t, (hp.shape[0], 1, 1)) for t in theta]
        losses = []
        for k in jax.random.split(jax.random.PRNGKey(42), steps):
            th, lv = step(k, th, hp, X, Y)
            losses.append(lv)
        ratio, value = jax.vmap(measure)(jnp.stack(losses, axis=-1))
        return np.asarray(ratio).reshape(res, res), np.asarray(value).reshape(res, res)


NOTEBOOK = {
    "tanh": {},
    "relu": {"nonlinearity": "relu"},
    "identity": {"nonlinearity": "identity"},
    "minibatch": {"minibatch_size": 16},
    "single": {"dataset": "single"},
    "paraminit": {"phase_space": "paraminit_vs_lr"},
}


def compare(setting, x_range, y_range, res, steps, prng="jax"):
    """lrsweep's float64 map against the notebook's: ``(agreement, steady share, boundary share)``.

    ``agreement`` is the share of verdicts that agree on the steady pixels: those whose notebook
    score moves by less than 1e-6 (relative) when ``W0`` is nudged by 1e-12. On the others the
    trajectory is chaotic (a difference in the last bit grows to a different run), so no two codes
    that round differently can agree there. On steady pixels the scores must agree to 1e-6 too."""
    mnmx = [y_range[0], y_range[1], x_range[0], x_range[1]]
    kw: dict[str, Any] = dict(NOTEBOOK[setting], partitionable=prng == "jax")
    ratio, _ = paper_verdicts(mnmx, res, steps, **kw)
    nudged, _ = paper_verdicts(mnmx, res, steps, init_shift=1e-12, **kw)
    ds = maps.trainability(
        setting=setting, x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64", prng=prng
    )
    mine = ds.score.values.T  # rows y, columns x, as the notebook's image
    steady = np.abs(nudged - ratio) <= 1e-6 * np.abs(ratio)
    np.testing.assert_allclose(mine[steady], ratio[steady], rtol=1e-6, atol=1e-9)
    agree = float(np.mean((mine[steady] < 1) == (ratio[steady] < 1)))
    return agree, float(steady.mean()), float(maps.boundary(ratio < 1).mean())


@pytest.mark.slow
@pytest.mark.parametrize("setting", map_settings.SETTINGS)
def test_each_setting_matches_the_notebooks_code(setting):
    x_range, y_range = map_settings.WINDOWS[setting]
    agree, steady, edge = compare(setting, x_range, y_range, 12, 100)
    assert edge >= 0.08  # the window straddles the boundary
    assert steady >= 0.8
    assert agree >= 0.999, agree


@pytest.mark.slow
def test_the_papers_draws_match_the_notebook_as_it_ran_in_2024():
    agree, steady, edge = compare("tanh", (-1.0, 4.0), (1.5, 3.0), 12, 100, prng="paper")
    assert edge >= 0.08 and steady >= 0.8 and agree >= 0.999


def test_paper_draws_differ_from_todays_and_equal_the_old_threefry():
    mp_new = map_settings.setting_problem("tanh", steps=10)
    mp_old = map_settings.setting_problem("tanh", steps=10, prng="paper")
    with jax.enable_x64(True), jax.threefry_partitionable(False):
        k = jax.random.split(jax.random.PRNGKey(0))[1]  # rng, srng = split(rng): the second
        w0 = np.asarray(jax.random.normal(jax.random.split(k, 2)[0], (16, 16)))
    np.testing.assert_array_equal(mp_old.problem.init["W0"], w0)
    assert not np.array_equal(mp_new.problem.init["W0"], w0)


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
    x, y = map_settings.WINDOWS["tanh"]
    assert f"tanh {x[0]:g}:{x[1]:g} x {y[0]:g}:{y[1]:g}" in text
    assert f"(default {maps.DEFAULT_RES})" in text and f"(default {maps.DEFAULT_STEPS})" in text
    assert f"default {maps.DEFAULT_PRECISION}" in text and f"default {map_settings.DEFAULT_PRNG}" in text


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
