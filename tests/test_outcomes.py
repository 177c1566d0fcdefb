"""Outcome rules and the score on hand-made loss and parameter sequences, with hand-worked answers."""

import numpy as np
import pytest

from lrsweep import outcomes, sums


def classify(losses, params, window=1, rtol=1e-6, min_loss: float | None = 0.0, score_window=20, plateau_rtol=1e-4):
    """Run the tracker over L_0..L_E and parameters p_0..p_E like the engine does.

    ``min_loss=None``: the minimum is unknown. Returns ``(name, event_epoch)``.
    """
    losses = np.asarray(losses, dtype=np.float64)
    epochs = len(losses) - 1
    loss0 = losses[0]
    known = min_loss is not None
    min_loss = np.nan if min_loss is None else min_loss
    tol = min_loss + rtol * (loss0 - min_loss)
    t = outcomes.start(loss0, tol)
    for e in range(epochs + 1):
        t = outcomes.observe(t, e, losses[e], loss0, tol)
        if e > 0:
            t = outcomes.moved(t, e, params[e] != params[e - 1])
    k = min(score_window, epochs)
    terms = list(losses[epochs - k : epochs])
    score = outcomes.score(terms, loss0, sums.pairwise_sum)
    plateau = outcomes.plateau(terms, losses[-1], plateau_rtol)
    code, event = outcomes.classify(
        t, epochs, window, losses[-1], tol, score, plateau, known, loss0=loss0, min_loss=min_loss
    )
    return outcomes.NAMES[int(code)], int(event)


def test_converged_event_is_first_epoch_of_staying_below_tol():
    # tol = 1e-6 * 10 = 1e-5; epoch 2 dips below it, epoch 3 is above again, from epoch 4 on it stays.
    losses = [10.0, 1.0, 1e-6, 2e-5, 1e-6, 1e-7]
    assert classify(losses, params=[0, 1, 2, 3, 4, 5]) == ("converged", 4)


def test_unfinished():
    assert classify([10.0, 5.0, 2.0], params=[0, 1, 2]) == ("unfinished", -1)


def test_nonfinite_is_diverged_even_if_frozen_from_the_last_stretch_above_start():
    losses = [1.0, 0.5, 10.0, np.inf, np.nan, np.nan]
    assert classify(losses, params=[0, 1, 2, 3, 3, 3], window=1) == ("diverged", 2)


def test_a_nonfinite_loss_in_the_window_is_diverged_even_if_the_run_recovers():
    # Window L_0..L_2 = 1, inf, 0.5: ratios 1, 1e6 (non-finite), 0.5, score 333334.5 >= 1.
    # The last loss is below the start: no final stretch above it, event -1.
    assert classify([1.0, np.inf, 0.5, 0.4], params=[0, 1, 2, 3]) == ("diverged", -1)
    # Out of the window (score_window = 2: L_1, L_2 = 0.5, 0.4), the same run is judged by its end.
    assert classify([1.0, np.inf, 0.5, 0.4, 0.3], params=[0, 1, 2, 3, 4], score_window=2) == ("unfinished", -1)


def test_ends_above_start_is_diverged_from_the_last_stretch_above():
    # score = (1 + 2 + 0.5 + 3) / 4 = 1.625 >= 1; above the start from epoch 3 on.
    losses = [1.0, 2.0, 0.5, 3.0, 9.0]
    assert classify(losses, params=[0, 1, 2, 3, 4]) == ("diverged", 3)


def test_bounded_oscillation_below_the_start_is_not_divergence():
    # A period-2 cycle between 0.3 and 0.9 of L_0: score 0.6, the spread 0.6 is no plateau.
    losses = [1.0] + [0.3, 0.9] * 20
    assert classify(losses, params=list(range(41)), min_loss=None) == ("unfinished", -1)
    # Endpoints equal (0.3 .. 0.3 over an odd window) do not make a plateau either.
    assert classify(losses[:-1], params=list(range(40)), min_loss=None, score_window=19) == ("unfinished", -1)
    # Ending above the start, once, does not make it diverged: the window averages 0.6.
    assert classify(losses + [1.2], params=list(range(42)), min_loss=None) == ("unfinished", -1)


def test_oscillation_averaging_above_the_start_is_diverged():
    # Cycle between 0.5 and 1.7: score 1.1 >= 1, though the last loss (0.5) is below the start.
    losses = [1.0] + [1.7, 0.5] * 20
    assert classify(losses, params=list(range(41)), min_loss=None) == ("diverged", -1)


def test_unknown_minimum_plateau_is_converged():
    # Settles at 0.25 exactly from epoch 10: spread 0 over the window, score 0.25.
    losses = list(np.geomspace(1.0, 0.3, 10)) + [0.25] * 30
    assert classify(losses, params=list(range(40)), min_loss=None) == ("converged", -1)
    # Still falling 1% per epoch: the window's spread is 17% of its level, no plateau.
    falling = list(0.99 ** np.arange(60))
    assert classify(falling, params=list(range(60)), min_loss=None) == ("unfinished", -1)
    # The same fall with a known minimum of 0 is unfinished too (0.55 > tol = 1e-6).
    assert classify(falling, params=list(range(60)), min_loss=0.0) == ("unfinished", -1)


def test_plateau_tolerance_is_relative_to_the_level():
    # Over the last 21 losses the spread is 9e-6 at level 0.1: relative 9e-5, a plateau at
    # rtol 1e-4, not at 5e-5.
    losses = [1.0] + [0.1, 0.1 - 9e-6] * 15
    assert classify(losses, params=list(range(31)), min_loss=None) == ("converged", -1)
    assert classify(losses, params=list(range(31)), min_loss=None, plateau_rtol=5e-5) == ("unfinished", -1)


def test_stuck_beats_ends_above_start():
    # The lesson's lr = 1: huge finite loss, parameters frozen from epoch 3.
    losses = [67.5, 16604.4, 4.03e6, 1.47e9, 1.47e9, 1.47e9]
    assert classify(losses, params=[0, 45, -654, 12755, 12755, 12755], window=2) == ("stuck", 3)
    # Without a known minimum: frozen, a plateau, but not trainable (score 1e6): still stuck.
    assert classify(losses, params=[0, 45, -654, 12755, 12755, 12755], window=2, min_loss=None) == ("stuck", 3)


def test_frozen_below_the_start_with_an_unknown_minimum_is_converged():
    losses = [1.0, 0.5] + [0.4] * 30
    params = [0, 1] + [2] * 30
    assert classify(losses, params=params, window=2, min_loss=None) == ("converged", -1)
    # Known minimum 0: frozen at 0.4 > tol is stuck, from epoch 2.
    assert classify(losses, params=params, window=2, min_loss=0.0) == ("stuck", 2)


def test_frozen_for_fewer_epochs_than_the_window_is_not_stuck():
    losses = [67.5, 16604.4, 4.03e6, 1.47e9, 1.47e9, 1.47e9]
    assert classify(losses, params=[0, 45, -654, 12755, 12755, 12755], window=3) == ("diverged", 1)


def test_zone_changes_restart_the_run():
    # Zones by epoch: 1 1 0 1 0 0 (tol = 1e-5): converged from epoch 4.
    losses = [10.0, 5.0, 1e-6, 1.0, 1e-7, 1e-8]
    assert classify(losses, params=[0, 1, 2, 3, 4, 5]) == ("converged", 4)


def test_frozen_but_converged_is_converged():
    assert classify([1.0, 1e-9, 0.0, 0.0], params=[0, 1, 2, 2], window=1) == ("converged", 1)


def test_min_loss_shifts_the_tolerance():
    losses = [11.0, 5.0, 1.000001]
    assert classify(losses, params=[0, 1, 2], min_loss=1.0) == ("converged", 2)
    assert classify(losses, params=[0, 1, 2], min_loss=0.0) == ("unfinished", -1)


def test_default_window():
    assert [outcomes.default_window(e) for e in (1, 9, 10, 1000)] == [1, 1, 1, 100]


def test_names_maps_codes():
    np.testing.assert_array_equal(
        outcomes.names([[0, 3], [2, 1]]), [["converged", "stuck"], ["diverged", "unfinished"]]
    )


def test_zero_initial_loss_is_converged():
    # 0 / 0 counts as 0: score 0.
    assert classify([0.0, 0.0], params=[0, 0], window=1) == ("converged", 0)
    assert float(outcomes.score([0.0, 0.0], 0.0)) == 0.0


# --- the score, by hand ---------------------------------------------------------------------


def test_score_is_the_mean_of_clipped_ratios():
    # Ratios 0.5, 2, 1e6 (inf), 1e6 (NaN), 1e6 (3e7 / 1.0 clipped): mean (2.5 + 3e6) / 5.
    window = [0.5, 2.0, np.inf, np.nan, 3e7]
    assert float(outcomes.score(window, 1.0)) == (0.5 + 2.0 + 3e6) / 5
    assert float(outcomes.score([1.0, 3.0], 2.0)) == 1.0  # (0.5 + 1.5) / 2: not trainable at exactly 1


@pytest.mark.parametrize(
    ("losses", "best", "epoch"),
    [
        ([3.0, 1.0, 2.0, 1.0, 5.0], 1.0, 1),  # the first of ties
        ([3.0, np.nan, 2.0, np.inf], 2.0, 2),  # NaN is skipped, inf is no better
        ([np.nan, np.nan], np.nan, -1),  # every loss NaN
        ([np.inf, np.inf], np.inf, 0),
    ],
)
def test_best_loss_and_epoch(losses, best, epoch):
    t = outcomes.start(np.float64(losses[0]), 0.0)
    for e, loss in enumerate(losses):
        t = outcomes.observe(t, e, np.float64(loss), losses[0], 0.0)
    got_loss, got_epoch = outcomes.best(t)
    np.testing.assert_equal(float(got_loss), best)
    assert int(got_epoch) == epoch


# --- progress, and a start at the minimum -----------------------------------------------------


def test_a_plateau_without_progress_is_no_progress_not_converged():
    # The README's mlp at lr 1e-4: 0.92916 -> 0.92900 is 0.017% of the start, under the 1% threshold,
    # although the window is flat (a plateau) and below the start (trainable).
    losses = list(np.linspace(0.92916, 0.92900, 41))
    assert classify(losses, params=list(range(41)), min_loss=None) == ("no_progress", -1)
    # Closing 1% of the start (0.9 -> 0.891, then flat) is progress: converged on the plateau.
    losses = [0.9] + [0.891] * 40
    assert classify(losses, params=list(range(41)), min_loss=None) == ("converged", -1)


def test_an_lr_too_small_to_move_the_loss_is_no_progress_not_diverged():
    # The parameters change, the float loss does not: every ratio is exactly 1, score 1.
    losses = [2.302585] * 41
    assert classify(losses, params=list(range(41)), min_loss=None) == ("no_progress", -1)
    assert classify(losses, params=list(range(41)), min_loss=0.0) == ("no_progress", -1)


def test_no_progress_with_a_known_minimum_counts_the_gap():
    # L* = 2.0, L_0 = 2.1: the gap is 0.1, so 1% of it is 0.001. Ending at 2.0995 closes 0.5%.
    losses = list(np.linspace(2.1, 2.0995, 31))
    assert classify(losses, params=list(range(31)), min_loss=2.0) == ("no_progress", -1)
    # Ending at 2.098 closes 2%: progress, still far from the minimum: unfinished.
    losses = list(np.linspace(2.1, 2.098, 31))
    assert classify(losses, params=list(range(31)), min_loss=2.0) == ("unfinished", -1)


def test_rising_past_the_threshold_is_still_diverged():
    # Final loss 3% above the start, window averaging 1.02 L_0: more than the 1% band, diverged.
    losses = [1.0] + [1.02] * 20 + [1.03]
    assert classify(losses, params=list(range(22)), min_loss=None)[0] == "diverged"


def test_a_start_at_the_minimum_that_stays_there_is_converged_at_any_lr():
    # L_0 = L* = 0; a forward difference's bias nudges the run to 5e-8 (the README's TOML grid, w = 3).
    losses = [0.0, 2e-8, 4e-8, 5e-8, 5.2e-8, 5.2e-8]
    assert classify(losses, params=[0, 1, 2, 3, 4, 5]) == ("converged", 0)
    assert classify(losses, params=[0, 1, 2, 3, 4, 5], min_loss=None) == ("converged", 0)
    # Within tolerance of a nonzero minimum: L* = 2, atol = 2e-6.
    losses = [2.0 + 1e-6, 2.0 + 1.5e-6, 2.0 + 1.9e-6]
    assert classify(losses, params=[0, 1, 2], min_loss=2.0) == ("converged", 0)


def test_a_start_at_the_minimum_that_leaves_it_is_diverged_or_stuck():
    losses = [0.0, 1e-3, 10.0, 4e7]
    assert classify(losses, params=[0, 1, 2, 3]) == ("diverged", 1)
    losses = [0.0, 1e-3, 10.0, 4e7, 4e7, 4e7]
    assert classify(losses, params=[0, 1, 2, 3, 3, 3], window=2) == ("stuck", 3)


def test_the_score_guard_only_acts_on_a_start_below_atol():
    # |L_0| >= 1e-6: the paper's ratio L_e / L_0 exactly.
    assert float(outcomes.score([3e-6, 1e-6], 2e-6)) == (3e-6 / 2e-6 + 1e-6 / 2e-6) / 2
    # L_0 = 0: the denominator is ATOL = 1e-6, so 5e-8 counts as 0.05, not inf.
    assert float(outcomes.score([5e-8], 0.0)) == pytest.approx(5e-8 / 1e-6, rel=1e-6)  # float32


def test_codes_and_flag_attributes_append_no_progress():
    assert outcomes.NAMES[:4] == ("converged", "unfinished", "diverged", "stuck")
    assert outcomes.NAMES[outcomes.NO_PROGRESS] == "no_progress"
    values, meanings = outcomes.FLAG_ATTRS["flag_values"], outcomes.FLAG_ATTRS["flag_meanings"].split()
    assert dict(zip(values, meanings)) == {
        -1: "pending",
        0: "converged",
        1: "unfinished",
        2: "diverged",
        3: "stuck",
        4: "no_progress",
    }
    assert outcomes.names([4, -1]).tolist() == ["no_progress", "pending"]
    assert outcomes.codes(["no_progress", "stuck"]).tolist() == [4, 3]


# --- the engine applies the same rules ----------------------------------------------------------


def test_the_engine_gives_no_progress_and_a_start_at_the_minimum_converged():
    import lrsweep

    # float32: lr 1e-12 cannot change the loss (score exactly 1), once "diverged".
    ds = lrsweep.sweep("linear", [1e-12, 0.1], epochs=1000, record="summary", progress=False)
    assert lrsweep.outcome_names(ds.outcome.sel(init=0)).tolist() == ["no_progress", "converged"]
    assert float(ds.score.sel(lr=1e-12, init=0)) == 1.0
    # w = 3, b = 0 is the minimum (loss 0); forward differences nudge it to about 5e-8: converged, event 0.
    init = {"w": np.array([3.0, 0.0]), "b": np.zeros(2)}
    ds = lrsweep.sweep(
        "linear",
        [1e-3, 0.05],
        init=init,
        epochs=300,
        grad="forward",
        precision="mixed",
        record="summary",
        progress=False,
    )
    at_min = ds.sel(init=0)
    assert lrsweep.outcome_names(at_min.outcome).tolist() == ["converged", "converged"]
    assert at_min.event_epoch.values.tolist() == [0, 0] and np.all(at_min.score.values < 1)
