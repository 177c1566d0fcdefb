"""Outcomes of a training run, tracked epoch by epoch in O(1) memory.

Write ``L_e`` for the loss at epoch ``e`` (``e = 0`` is the state before training, ``E`` the last
epoch), ``L*`` for the problem's ``min_loss`` and ``tol = L* + rtol * (L_0 - L*)`` (``rtol`` defaults
to ``1e-6``: the loss gap has shrunk a million-fold). A run's outcome is the first that applies:

1. ``"diverged"``: some ``L_e`` is NaN or infinite. ``event_epoch``: the first such epoch.
2. ``"stuck"``: no parameter changed over the last ``window`` epochs (default ``max(1, E // 10)``)
   and ``L_E > tol``. Floating-point absorption does this: an update (or a finite-difference nudge)
   smaller than half the float spacing at a parameter leaves it unchanged, as in the lesson's
   ``lr = 1`` run. ``event_epoch``: the epoch at which the parameters took their final values.
3. ``"diverged"``: ``L_E > L_0``, the run ends above where it started. ``event_epoch``: the first
   epoch of the final stretch of epochs with ``L_e > L_0``.
4. ``"converged"``: ``L_E <= tol``. ``event_epoch``: the first epoch from which ``L_e <= tol`` held
   to the end.
5. ``"unfinished"``: none of the above. ``event_epoch``: -1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import jax.numpy as jnp

CONVERGED, UNFINISHED, DIVERGED, STUCK = 0, 1, 2, 3
#: Outcome names indexed by their integer code.
NAMES = ("converged", "unfinished", "diverged", "stuck")
DEFAULT_RTOL = 1e-6


def default_window(epochs: int) -> int:
    """Epochs without a parameter change that make a run "stuck": ``max(1, epochs // 10)``."""
    return max(1, epochs // 10)


class Tracker(NamedTuple):
    """Running facts about one config's loss sequence; every field an int32 scalar (per config).

    Attributes:
      first_nonfinite: first epoch with a non-finite loss; ``sentinel`` (epochs + 1) if none yet.
      last_above_tol: last epoch with ``L_e > tol`` or non-finite; -1 if none.
      last_within_start: last epoch with ``L_e <= L_0``; 0 at the start.
      last_change: last epoch whose parameters differ from the epoch before; 0 at the start.
    """

    first_nonfinite: jnp.ndarray
    last_above_tol: jnp.ndarray
    last_within_start: jnp.ndarray
    last_change: jnp.ndarray


def start(epochs: int) -> Tracker:
    i = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    return Tracker(i(epochs + 1), i(-1), i(0), i(0))


def observe(t: Tracker, epoch, loss, loss0, tol) -> Tracker:
    """Fold in the loss ``L_e`` at ``epoch``."""
    finite = jnp.isfinite(loss)
    first_nonfinite = jnp.where(finite, t.first_nonfinite, jnp.minimum(t.first_nonfinite, epoch))
    last_above_tol = jnp.where(finite & (loss <= tol), t.last_above_tol, epoch)
    last_within_start = jnp.where(loss <= loss0, epoch, t.last_within_start)
    return t._replace(
        first_nonfinite=first_nonfinite, last_above_tol=last_above_tol, last_within_start=last_within_start
    )


def moved(t: Tracker, epoch, changed) -> Tracker:
    """Record whether the parameters of ``epoch`` differ from those of ``epoch - 1``."""
    return t._replace(last_change=jnp.where(changed, epoch, t.last_change))


def classify(t: Tracker, epochs: int, window: int, loss_final, loss0, tol):
    """Return ``(outcome code, event_epoch)`` as int8 and int32 scalars; see the module docstring."""
    nonfinite = t.first_nonfinite <= epochs
    converged = loss_final <= tol
    frozen = (epochs - t.last_change) >= window
    above_start = loss_final > loss0
    outcome = jnp.where(
        nonfinite,
        DIVERGED,
        jnp.where(
            frozen & ~converged,
            STUCK,
            jnp.where(above_start, DIVERGED, jnp.where(converged, CONVERGED, UNFINISHED)),
        ),
    ).astype(jnp.int8)
    event = jnp.where(
        nonfinite,
        t.first_nonfinite,
        jnp.where(
            outcome == STUCK,
            t.last_change,
            jnp.where(
                outcome == DIVERGED,
                t.last_within_start + 1,
                jnp.where(outcome == CONVERGED, t.last_above_tol + 1, -1),
            ),
        ),
    ).astype(jnp.int32)
    return outcome, event


def names(codes) -> np.ndarray:
    """Map integer outcome codes to their names (a numpy string array of the same shape)."""
    return np.asarray(NAMES)[np.asarray(codes, dtype=np.int64)]
