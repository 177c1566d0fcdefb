"""lrsweep.suggest: hand-built Datasets whose answer is known by construction, and real sweeps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import lrsweep
from lrsweep import _valley, answer, suggest
from lrsweep.suggest import suggest_lr

C, U, D, S = "converged", "unfinished", "diverged", "stuck"
LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
INF, NAN = float("inf"), float("nan")
# The lesson's critical learning rate, by hand: 2 / lambda_max with lambda_max = (17 + sqrt(269)) / 2.
LESSON_CRITICAL = 2 / ((17 + np.sqrt(269)) / 2)


def dataset(outcome, event=None, loss=None, lr=LRS, attrs=None):
    """A sweep-like Dataset over ``(lr, init)`` from per-lr lists (one init) or (L, I) nested lists."""
    outcome = np.asarray(outcome)
    if outcome.ndim == 1:
        outcome = outcome[:, None]
    shape = outcome.shape
    event = np.full(shape, -1) if event is None else np.asarray(event).reshape(shape)
    loss = np.ones(shape) if loss is None else np.asarray(loss, dtype=np.float64).reshape(shape)
    return xr.Dataset(
        {
            "loss": (("lr", "init"), loss),
            "outcome": (("lr", "init"), outcome),
            "event_epoch": (("lr", "init"), event.astype(np.int32)),
        },
        coords={"lr": np.asarray(lr, dtype=np.float64), "init": np.arange(shape[1])},
        attrs={"epochs": 100, "min_loss": 0.0, **(attrs or {})},
    )


# --- largest_stable ---------------------------------------------------------------------------


def test_largest_stable_stops_at_the_first_unstable_lr():
    # 0.3 is a lucky stable lr above a diverged one: it must not count.
    ds = dataset([U, U, C, C, D, C])
    assert suggest_lr(ds, "largest_stable") == 0.03


@pytest.mark.parametrize("bad", [D, S, "pending"])
def test_largest_stable_counts_stuck_and_pending_as_unstable(bad):
    assert suggest_lr(dataset([U, C, bad, C, C, C]), "largest_stable") == 0.003


def test_largest_stable_all_stable_is_the_largest_lr_and_warns():
    with pytest.warns(UserWarning, match=r"at the edge of the grid: extend lr above 0\.3"):
        assert suggest_lr(dataset([U, U, C, C, C, C]), "largest_stable") == 0.3


def test_largest_stable_takes_the_worst_init():
    # init 1 diverges at 0.03; init 0 is fine there.
    outcome = [[U, U], [C, C], [C, C], [C, D], [C, D], [D, D]]
    assert suggest_lr(dataset(outcome)) == 0.01


def test_largest_stable_any_extra_dims_and_unsorted_duplicate_lrs():
    # dims (lr, init_w, init_b, seed): every non-lr dim is reduced by the worst case.
    outcome = np.full((4, 2, 3, 2), C, dtype=object)
    outcome[2, 1, 2, 0] = S  # one run out of 12 at lr index 2
    ds = xr.Dataset(
        {"outcome": (("lr", "init_w", "init_b", "seed"), outcome.astype(str))},
        coords={"lr": [0.1, 0.2, 0.3, 0.4]},
    )
    assert suggest_lr(ds, "largest_stable") == 0.2
    # Reversed order and a duplicate 0.1 whose other copy diverged: the lr axis is sorted and merged.
    ds = dataset([C, C, D, C], lr=[0.3, 0.2, 0.1, 0.1])
    with pytest.raises(ValueError, match="largest_stable"):
        suggest_lr(ds, "largest_stable")
    assert suggest_lr(dataset([D, C, C, C], lr=[0.4, 0.3, 0.1, 0.1]), "largest_stable") == 0.3


def test_largest_stable_none_qualifies():
    with pytest.raises(ValueError, match=r"method='largest_stable'.*no learning rate qualifies"):
        suggest_lr(dataset([D] * 6), "largest_stable")
    with pytest.raises(ValueError, match="largest_stable"):
        suggest_lr(dataset([S, C, C, C, C, C]), "largest_stable")


# --- fastest ----------------------------------------------------------------------------------


def test_fastest_smallest_worst_case_event_epoch():
    outcome = [[U, U], [C, C], [C, C], [C, U], [C, C], [D, D]]
    event = [[-1, -1], [80, 90], [40, 60], [5, -1], [50, 50], [1, 1]]
    # 0.03 has a 5-epoch run but its other init is unfinished; 0.01's worst is 60, 0.1's is 50.
    assert suggest_lr(dataset(outcome, event), "fastest") == 0.1


def test_fastest_ties_go_to_the_smaller_lr():
    ds = dataset([U, C, C, C, C, D], event=[-1, 30, 20, 20, 20, 1])
    assert suggest_lr(ds, "fastest") == 0.01


def test_fastest_none_qualifies():
    with pytest.raises(ValueError, match=r"method='fastest'"):
        suggest_lr(dataset([U, U, U, S, D, D]), "fastest")


# --- lowest_loss ------------------------------------------------------------------------------


def test_lowest_loss_worst_case_with_nan_and_inf():
    loss = [[1.0, 2.0], [0.1, 0.2], [1e-3, NAN], [1e-2, 1e-4], [INF, 1e-9], [NAN, NAN]]
    # Worst cases: 2, 0.2, inf, 1e-2, inf, inf.
    assert suggest_lr(dataset(np.full((6, 2), C), loss=loss), "lowest_loss") == 0.03


def test_lowest_loss_ties_and_none_qualifies():
    assert suggest_lr(dataset([C] * 6, loss=[1.0, 0.0, 0.0, 0.5, INF, NAN]), "lowest_loss") == 0.003
    with pytest.raises(ValueError, match=r"method='lowest_loss'"):
        suggest_lr(dataset([D] * 6, loss=[NAN, INF, NAN, INF, NAN, NAN]), "lowest_loss")


def test_trajectory_uses_the_final_epoch():
    # Epoch 0 holds the lowest loss at 0.001; at the final epoch 0.01 is lowest.
    loss = np.array([[[0.0, 5.0]], [[1.0, 4.0]], [[1.0, 3.0]]])  # (lr, init, epoch)
    ds = xr.Dataset(
        {"loss": (("lr", "init", "epoch"), loss), "outcome": (("lr", "init"), [[U], [U], [U]])},
        coords={"lr": [0.001, 0.003, 0.01], "epoch": [0, 1]},
    )
    with pytest.warns(UserWarning, match="extend lr above"):
        assert suggest_lr(ds, "lowest_loss") == 0.01


# --- valley -----------------------------------------------------------------------------------


def test_valley_contiguous():
    lrs = np.geomspace(1e-4, 1.0, 12)
    # The longest strict descent runs from index 1 (5) to index 8 (0.2): s = 1, e = 8,
    # t = 7 / 3, i = 1 + 2 + 1 = 4. Index 0 (3) starts only a shorter descent.
    loss = [3, 5, 4, 3, 2, 1, 0.5, 0.25, 0.2, 0.3, 1, 2]
    assert suggest_lr(dataset([C] * 12, loss=loss, lr=lrs), "valley") == lrs[4]


def test_valley_follows_a_subsequence_through_bumps():
    lrs = np.geomspace(1e-4, 1.0, 10)
    # 10 > 8 > 6 > 4 > 2 > 1 (indices 0, 1, 3, 5, 6, 8): s = 0, e = 8, t = 8 / 3, i = 0 + 2 + 1 = 3.
    loss = [10, 8, 9, 6, 7, 4, 2, 3, 1, 5]
    assert suggest_lr(dataset([C] * 10, loss=loss, lr=lrs), "valley") == lrs[3]


def test_valley_cuts_the_curve_at_the_first_non_finite_loss():
    lrs = np.geomspace(1e-4, 1.0, 12)
    # Kept: indices 0..6 (9 .. 3), s = 0, e = 6, t = 2, i = 3. Uncut, the descent would reach
    # index 11 and give i = 4.
    loss = [9, 8, 7, 6, 5, 4, 3, NAN, 2, 1, 0.5, 0.1]
    assert suggest_lr(dataset([C] * 12, loss=loss, lr=lrs), "valley") == lrs[3]
    with pytest.raises(ValueError, match=r"method='valley'"):
        suggest_lr(dataset([C] * 6, loss=[1.0, INF, 0.5, 0.4, 0.3, 0.2]), "valley")


def test_valley_flat_curve_zero_gaps_and_smoothing():
    lrs = np.geomspace(1e-3, 1.0, 7)
    with pytest.warns(UserWarning, match="extend lr below"):
        assert suggest_lr(dataset([C] * 7, loss=[0.0] * 7, lr=lrs), "valley") == lrs[0]
    # Gaps to min_loss = 2: 1 .. 1e-5, then an exact fit (gap 0, floored at 1e-5: no further
    # descent). s = 0, e = 5, t = 5 / 3, i = 1. Counting the 0 as -inf (or ignoring min_loss:
    # 2.00001 > 2.0) would extend the valley to e = 6 and give i = 3.
    loss = [3.0, 2.1, 2.01, 2.001, 2.0001, 2.00001, 2.0]
    ds = dataset([C] * 7, loss=loss, lr=lrs, attrs={"min_loss": 2.0})
    assert suggest_lr(ds, "valley") == lrs[1]
    assert suggest_lr(ds.assign_attrs(min_loss=0.0), "valley") == lrs[3]
    # A strictly decreasing curve stays strictly decreasing under the moving average.
    mono = dataset([C] * 7, loss=np.geomspace(1.0, 1e-6, 7), lr=lrs)
    assert suggest_lr(mono, "valley", smooth=0.9) == suggest_lr(mono, "valley") == lrs[3]


def test_ema_by_hand():
    # a_1 = 0.5, s_1 = 0.5 / 0.5 = 1; a_2 = 0.25 + 1.5 = 1.75, s_2 = 1.75 / 0.75.
    np.testing.assert_allclose(_valley.ema(np.array([1.0, 3.0]), 0.5), [1.0, 1.75 / 0.75])


# --- validation -------------------------------------------------------------------------------


def test_bad_method_and_arguments():
    ds = dataset([C] * 6)
    accepted = r"expected one of \['best', 'largest_stable', 'fastest', 'lowest_loss', 'valley'\]"
    with pytest.raises(ValueError, match=r"method='steep' is invalid: " + accepted):
        suggest_lr(ds, "steep")
    with pytest.raises(ValueError, match=r"across='all' is invalid"):
        suggest_lr(ds, across="all")
    with pytest.raises(ValueError, match=r"smooth=1\.0"):
        suggest_lr(ds, "valley", smooth=1.0)
    with pytest.raises(ValueError, match=r"xarray\.Dataset"):
        suggest_lr(ds.outcome)
    with pytest.raises(ValueError, match="no 'lr' dim"):
        suggest_lr(ds.rename({"lr": "rate"}))
    with pytest.raises(ValueError, match=r"lacks the variables \['event_epoch'\]"):
        suggest_lr(ds.drop_vars("event_epoch"), "fastest")
    with pytest.raises(ValueError, match="at least 2"):
        suggest_lr(dataset([C], lr=[0.1]), "valley")
    with pytest.raises(ValueError, match="finite and > 0"):
        suggest_lr(dataset([C, C], lr=[0.0, 0.1]))


# --- real sweeps ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesson_sweep():
    init = {"w": np.array([0.0, 5.0, -5.0]), "b": np.array([0.0, 1.0, -1.0])}
    lrs = np.geomspace(0.05, 0.2, 400)
    return lrsweep.sweep("linear", lrs, init=init, epochs=3000, precision="float64", record="summary", chunk_size=512)


def test_largest_stable_on_the_lesson_is_one_step_below_critical(lesson_sweep):
    lrs = lesson_sweep.lr.values
    step = lrs[1] / lrs[0]
    best = suggest_lr(lesson_sweep, "largest_stable")
    assert LESSON_CRITICAL / step < best <= LESSON_CRITICAL


def test_other_methods_on_the_lesson(lesson_sweep):
    fastest = suggest_lr(lesson_sweep, "fastest")
    lowest = suggest_lr(lesson_sweep, "lowest_loss")
    valley = suggest_lr(lesson_sweep, "valley")
    for lr in (fastest, lowest, valley):
        assert lr in lesson_sweep.lr.values and lr < LESSON_CRITICAL
    assert np.all(lrsweep.outcome_names(lesson_sweep.outcome.sel(lr=fastest)) == "converged")


def test_summary_and_trajectory_agree():
    lrs = np.geomspace(0.01, 0.2, 40)
    runs = [lrsweep.sweep("linear", lrs, epochs=200, precision="float64", record=r) for r in ("summary", "trajectory")]
    for method in suggest.METHODS:
        assert suggest_lr(runs[0], method) == suggest_lr(runs[1], method), method


# --- across: how the runs at one lr combine ---------------------------------------------------


@pytest.mark.parametrize(
    ("across", "expected"),
    [("worst", 0.003), ("median", 0.01), ("mean", 0.003), ("best", 0.03)],
)
def test_lowest_loss_across(across, expected):
    # Per lr, three runs. worst: 9, 0.5, 0.8, 2, 5, inf -> 0.003. median: 5, 0.4, 0.3, 0.5, 4, inf
    # -> 0.01. mean: 5, 0.333, 0.367, 0.7, 3.033, inf -> 0.003. best: 1, 0.1, 0.01, 0.001, 0.1, 1 -> 0.03.
    loss = [[1, 5, 9], [0.1, 0.4, 0.5], [0.01, 0.3, 0.8], [0.001, 0.5, 2], [0.1, 4, 5], [1, INF, INF]]
    assert suggest_lr(dataset(np.full((6, 3), C), loss=loss), "lowest_loss", across=across) == expected


def test_largest_stable_across():
    outcome = [[C, C, C], [C, C, D], [C, D, D], [D, D, D], [D, D, D], [D, D, D]]
    ds = dataset(outcome)
    with pytest.warns(UserWarning, match="extend lr below 0.001"):
        assert suggest_lr(ds, "largest_stable", across="worst") == 0.001
    assert [suggest_lr(ds, "largest_stable", across=a) for a in ("median", "mean", "best")] == [0.003, 0.003, 0.01]


# --- best ---------------------------------------------------------------------------------------


def test_best_compares_gaps_as_ratios_and_stops_at_the_first_rise():
    # Gaps to min_loss 0: 0.7, 0.2, 0.006, 0.0005, 0.00054, 0.3. The lowest is 0.0005 at 0.03; 0.00054
    # is within 1.1x of it (0.00055), so 0.1 is as good and faster; 0.3 (600x) is not.
    loss = [0.7, 0.2, 0.006, 0.0005, 0.00054, 0.3]
    ds = dataset([U, U, C, C, C, U], loss=loss)
    assert suggest_lr(ds) == 0.1
    # The old linear rule (within 1% of the spread 0.7) took 0.004 at 0.1: 8x the lowest loss.
    ds = dataset([U, U, C, C, C, U], loss=[0.7, 0.2, 0.006, 0.0005, 0.004, 0.3])
    assert suggest_lr(ds) == 0.03
    # A diverged lr cuts the candidates, even if a lucky lr above it ends low.
    ds = dataset([U, U, C, C, D, C], loss=[0.7, 0.2, 0.006, 0.0005, INF, 0.0001])
    assert suggest_lr(ds) == 0.03
    # The score says diverged even when the outcome is not (a run ending low by luck).
    ds = dataset([U, U, C, C, C, U], loss=loss).assign(
        score=(("lr", "init"), [[0.9], [0.3], [0.01], [0.001], [2.0], [0.5]])
    )
    assert suggest_lr(ds) == 0.03


def test_best_walks_on_only_while_every_gap_is_within_the_ratio():
    # 0.01 is lowest (1e-3); 0.03 is within 1.1x, 0.1 is 2x (a bump), 0.3 is back within 1.1x: stop at 0.03.
    ds = dataset([U, U, C, C, C, C], loss=[1.0, 0.1, 1e-3, 1.05e-3, 2e-3, 1.01e-3], attrs={"min_loss": None})
    assert suggest_lr(ds) == 0.03


def test_best_treats_gaps_below_the_float_floor_as_equal():
    # float32 losses: gaps below eps32 * 0.5 = 6e-8 (the largest candidate gap) are round-off: 1e-20 ..
    # 3e-12 tie, so the largest of them, 0.1, below the divergence at 0.3.
    loss = [0.5, 1e-20, 3e-12, 4e-16, 2e-13, INF]
    ds = dataset([U, C, C, C, C, D], loss=loss)
    assert suggest_lr(ds.assign(loss=ds.loss.astype(np.float32))) == 0.1
    # float64 losses resolve them (eps64 * 0.5 = 1.1e-16): 1e-20 at 0.003 is lowest, 3e-12 next to it is not close.
    assert suggest_lr(ds) == 0.003


def test_best_goes_on_past_runs_without_progress():
    # The smallest lrs moved nothing: stable, at the initial loss; they do not stop "best".
    ds = dataset(["no_progress", "no_progress", U, C, C, D], loss=[2.3, 2.29, 0.5, 1e-3, 1.05e-3, INF])
    assert suggest_lr(ds) == 0.1


def _metric_dataset(loss, metric, goal, name="eval_loss"):
    ds = dataset([C] * len(loss), loss=loss, attrs={"min_loss": None})
    values = np.asarray(metric, dtype=np.float64)[:, None]
    return ds.assign({name: (("lr", "init"), values, {"goal": goal, "long_name": name})})


def test_best_uses_the_held_out_metric_by_default():
    # The training loss keeps falling to 0.3; the held-out loss is lowest at 0.01 (overfitting above it).
    ds = _metric_dataset([1.0, 0.5, 0.1, 0.01, 1e-3, 1e-4], [1.0, 0.6, 0.3, 0.5, 0.9, 1.5], "min")
    assert suggest_lr(ds) == 0.01
    with pytest.warns(UserWarning, match="extend lr above 0.3"):
        assert suggest_lr(ds, metric="loss") == 0.3
    assert answer.suggestion(ds).metric == "eval_loss"


def test_best_on_a_maximised_metric_compares_errors():
    # Accuracy: errors 0.5, 0.1, 0.03, 0.022, 0.021, 0.2. Lowest 0.021 at 0.1; 0.022 at 0.03 is below it in lr.
    ds = _metric_dataset([1.0] * 6, [0.5, 0.9, 0.97, 0.978, 0.979, 0.8], "max", name="accuracy")
    assert suggest_lr(ds, metric="accuracy") == 0.1
    assert suggest_lr(ds, "lowest_loss", metric="accuracy") == 0.1
    # worst over runs of a maximised metric is the lowest accuracy
    two = xr.concat([ds, ds.assign(accuracy=ds.accuracy * [[1.0], [1.0], [1.0], [1.0], [0.5], [1.0]])], "init")
    assert suggest_lr(two.assign_coords(init=[0, 1]), metric="accuracy") == 0.03
    with pytest.raises(ValueError, match=r"metric='f1' is invalid: expected a variable of the result"):
        suggest_lr(ds, metric="f1")


def test_suggest_point_is_the_best_of_the_joint_grid_and_suggest_lr_says_what_it_folded():
    # loss over (lr, opt_momentum, init): momentum 0 reaches 1e-2 at lr 0.1; momentum 0.9 reaches 1e-5 at 1e-3.
    m0, m9 = [2.0, 1.0, 0.3, 0.01, INF], [1e-3, 1e-5, 0.5, 0.6, INF]
    ds = xr.Dataset(
        {"loss": (("lr", "opt_momentum", "init"), np.array([m0, m9]).T[:, :, None])},
        coords={"lr": [1e-4, 1e-3, 0.01, 0.1, 1.0], "opt_momentum": [0.0, 0.9], "init": [0]},
    )
    assert lrsweep.suggest_point(ds) == {"lr": 1e-3, "opt_momentum": 0.9}
    with pytest.warns(UserWarning, match=r"folded opt_momentum \(0, 0\.9\) into each lr, worst over them"):
        assert suggest_lr(ds) == 0.01  # the worst over momenta: 2, 1, 0.5, 0.6, inf
    found = answer.suggestion(ds)
    assert (found.lr, found.point) == (1e-3, {"lr": 1e-3, "opt_momentum": 0.9})
    assert found.text() == "suggested lr (best on loss, worst over 1 init): 0.001 at opt_momentum 0.9"


def test_best_none_qualifies():
    with pytest.raises(ValueError, match=r"method='best'.*smallest lr 0\.001 already diverged"):
        suggest_lr(dataset([D] * 6, loss=[INF] * 6))


def test_best_prefers_a_low_loss_over_a_stable_poor_one():
    # largest_stable takes 0.3 (stable, poor loss 0.4); best takes 0.03.
    ds = dataset([U, C, C, C, U, U], loss=[0.69, 0.01, 0.001, 0.0005, 0.3, 0.4])
    with pytest.warns(UserWarning, match="extend lr above"):
        assert suggest_lr(ds, "largest_stable") == 0.3
    assert suggest_lr(ds) == 0.03


def test_valley_with_an_unknown_minimum():
    lrs = np.geomspace(1e-4, 1.0, 12)
    loss = [3, 5, 4, 3, 2, 1, 0.5, 0.25, 0.2, 0.3, 1, 2]
    ds = dataset([C] * 12, loss=loss, lr=lrs, attrs={"min_loss": None})
    assert suggest_lr(ds, "valley") == lrs[4]


# --- a user problem: a 2-16-1 tanh network, binary cross-entropy, Adam ------------------------


def _mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["W0"] + params["b0"])
    z = h @ params["W1"][:, 0] + params["b1"]
    return jnp.logaddexp(0.0, z) - y * z  # binary cross-entropy of sigmoid(z)


def _mlp_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float64)  # XOR of the signs: needs the hidden layer

    def sampler(key):
        k0, k1 = jax.random.split(key)
        return {
            "W0": jax.random.normal(k0, (2, 16)) / np.sqrt(2),
            "b0": jnp.zeros(16),
            "W1": jax.random.normal(k1, (16, 1)) / 4.0,
            "b1": jnp.zeros(()),
        }

    return lrsweep.Problem(name="xor_mlp", loss=_mlp_loss, x=x, y=y, init=sampler)


@pytest.fixture(scope="module")
def mlp_sweep():
    lrs = np.geomspace(1e-4, 100.0, 32)
    return lrsweep.sweep(_mlp_problem(), lrs, init=4, optimizer="adam", epochs=300, record="trajectory", every=300)


def test_best_on_an_adam_mlp_closes_the_gap_and_is_inside_the_grid(mlp_sweep):
    ds = mlp_sweep
    start = ds.loss.isel(epoch=0).max("init").values  # the worst initial loss per lr (same inits)
    final = ds.loss.isel(epoch=-1).fillna(np.inf).max("init").values
    final = np.where(np.isfinite(final), final, np.inf)
    lr = suggest_lr(ds)  # no warning: not at the edge
    k = int(np.flatnonzero(ds.lr.values == lr)[0])
    assert 0 < k < ds.sizes["lr"] - 1
    best = np.nanmin(final)
    assert (start[k] - final[k]) >= 0.95 * (start[k] - best)
    # The grid extends well past the divergence boundary: the largest lrs diverged.
    assert np.all(lrsweep.outcome_names(ds.outcome.isel(lr=-1)) == "diverged")


def test_a_too_narrow_grid_warns(mlp_sweep):
    narrow = mlp_sweep.isel(lr=slice(0, 10))  # lrs up to about 1e-2: still improving at the top
    with pytest.warns(UserWarning, match="at the edge of the grid: extend lr above"):
        suggest_lr(narrow)
