"""Outcome rules on hand-made loss and parameter sequences, with hand-worked answers."""

import numpy as np

from lrsweep import outcomes


def classify(losses, params, window=1, rtol=1e-6, min_loss=0.0):
    """Run the tracker over L_0..L_E and parameters p_0..p_E like the engine does."""
    losses = np.asarray(losses, dtype=np.float64)
    epochs = len(losses) - 1
    loss0 = losses[0]
    tol = min_loss + rtol * (loss0 - min_loss)
    t = outcomes.start(loss0, tol)
    for e in range(epochs + 1):
        t = outcomes.observe(t, e, losses[e], loss0, tol)
        if e > 0:
            t = outcomes.moved(t, e, params[e] != params[e - 1])
    code, event = outcomes.classify(t, epochs, window, losses[-1], tol)
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


def test_nonfinite_loss_that_recovers_is_judged_by_where_it_ends():
    assert classify([1.0, np.inf, 0.5, 0.4], params=[0, 1, 2, 3]) == ("unfinished", -1)


def test_ends_above_start_is_diverged_from_the_last_stretch_above():
    losses = [1.0, 2.0, 0.5, 3.0, 9.0]
    assert classify(losses, params=[0, 1, 2, 3, 4]) == ("diverged", 3)


def test_stuck_beats_ends_above_start():
    # The lesson's lr = 1: huge finite loss, parameters frozen from epoch 3.
    losses = [67.5, 16604.4, 4.03e6, 1.47e9, 1.47e9, 1.47e9]
    assert classify(losses, params=[0, 45, -654, 12755, 12755, 12755], window=2) == ("stuck", 3)


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
    assert classify([0.0, 0.0], params=[0, 0], window=1) == ("converged", 0)
