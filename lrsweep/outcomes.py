"""Outcomes of a training run, tracked epoch by epoch in O(1) memory.

Write ``L_e`` for the loss at epoch ``e`` (``e = 0`` is the state before training, ``E`` the last
epoch), ``L*`` for the problem's ``min_loss`` and ``tol = L* + rtol * (L_0 - L*)`` (``rtol`` defaults
to ``1e-6``: the loss gap has shrunk a million-fold). Each epoch falls in one zone:

- zone 0, *below tolerance*: ``L_e <= tol``;
- zone 1, *in between*: ``tol < L_e <= L_0``;
- zone 2, *above the start*: ``L_e > L_0``, or ``L_e`` is NaN or infinite.

A run's outcome is the first that applies:

1. ``"diverged"``: ``L_E`` is NaN or infinite. (Under gradient descent a non-finite loss stays
   non-finite: its gradient makes the parameters NaN.)
2. ``"stuck"``: no parameter changed over the last ``window`` epochs (default ``max(1, E // 10)``)
   and ``L_E > tol``. Floating-point absorption does this: an update (or a finite-difference nudge)
   smaller than half the float spacing at a parameter leaves it unchanged, as in the lesson's
   ``lr = 1`` run. ``event_epoch``: the epoch at which the parameters took their final values.
3. ``"diverged"``: ``L_E > L_0``, the run ends above where it started.
4. ``"converged"``: ``L_E <= tol``.
5. ``"unfinished"``: none of the above (``L_E`` in zone 1). ``event_epoch``: -1.

For "diverged" and "converged", ``event_epoch`` is the first epoch of the final stretch of epochs
spent in the final zone: when the run left the start for good, or reached the tolerance for good.

The tracker keeps two int32 numbers per config. The zone and the epoch at which the current run of
same-zone epochs began share one: ``run_start * 4 + zone``. One number instead of one per zone
keeps the per-epoch bookkeeping to two selects, which matters: under ``vmap`` each carried array
costs the CPU one more pass over the configs every epoch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

CONVERGED, UNFINISHED, DIVERGED, STUCK = 0, 1, 2, 3
#: Outcome names indexed by their integer code.
NAMES = ("converged", "unfinished", "diverged", "stuck")
#: The code and name of a config that was not trained (yet): an interrupted or resumable sweep.
PENDING, PENDING_NAME = -1, "pending"
#: CF attributes of an ``outcome`` variable: what its int8 codes mean.
FLAG_ATTRS = {
    "flag_values": [PENDING, *range(len(NAMES))],
    "flag_meanings": " ".join((PENDING_NAME, *NAMES)),
    "long_name": "outcome of the run",
}
DEFAULT_RTOL = 1e-6
#: Runs up to this many epochs can be tracked (run_start * 4 + zone must fit in an int32).
MAX_EPOCHS = 2**29 - 1


def default_window(epochs: int) -> int:
    """Epochs without a parameter change that make a run "stuck": ``max(1, epochs // 10)``."""
    return max(1, epochs // 10)


class Tracker(NamedTuple):
    """Running facts about one config's run; both fields int32 scalars (per config).

    Attributes:
      zone_run: ``run_start * 4 + zone``: the zone of the latest epoch (0, 1 or 2, see the module
        docstring) and the epoch at which the current run of epochs in that zone began.
      last_change: the last epoch whose parameters differ from the epoch before; 0 at the start.
    """

    zone_run: jnp.ndarray
    last_change: jnp.ndarray


def zone(loss, loss0, tol):
    """0 below tolerance, 1 in between, 2 above the start or non-finite."""
    return jnp.where(loss <= tol, 0, jnp.where(loss <= loss0, 1, 2)).astype(jnp.int32)


def start(loss0, tol) -> Tracker:
    """The tracker after observing epoch 0."""
    return Tracker(zone(loss0, loss0, tol), jnp.zeros_like(zone(loss0, loss0, tol)))


def observe(t: Tracker, epoch, loss, loss0, tol) -> Tracker:
    """Fold in the loss ``L_e`` at ``epoch`` (observing epoch 0 again changes nothing)."""
    z = zone(loss, loss0, tol)
    return t._replace(zone_run=jnp.where(z == (t.zone_run & 3), t.zone_run, epoch * 4 + z))


def moved(t: Tracker, epoch, changed) -> Tracker:
    """Record whether the parameters of ``epoch`` differ from those of ``epoch - 1``."""
    return t._replace(last_change=jnp.where(changed, epoch, t.last_change))


def classify(t: Tracker, epochs: int, window: int, loss_final, tol):
    """Return ``(outcome code, event_epoch)`` as int8 and int32 scalars; see the module docstring."""
    final_zone = t.zone_run & 3
    run_start = t.zone_run >> 2
    nonfinite = ~jnp.isfinite(loss_final)
    converged = loss_final <= tol
    frozen = (epochs - t.last_change) >= window
    outcome = jnp.where(
        nonfinite,
        DIVERGED,
        jnp.where(
            frozen & ~converged,
            STUCK,
            jnp.where(final_zone == 2, DIVERGED, jnp.where(final_zone == 0, CONVERGED, UNFINISHED)),
        ),
    ).astype(jnp.int8)
    event = jnp.where(outcome == STUCK, t.last_change, jnp.where(outcome == UNFINISHED, -1, run_start))
    return outcome, event.astype(jnp.int32)


def codes(values) -> np.ndarray:
    """Integer outcome codes (int64; -1 pending) for names or codes, same shape: the inverse of :func:`names`."""
    values = np.asarray(getattr(values, "values", values))
    if values.dtype.kind not in "US":
        return values.astype(np.int64)
    lookup = {name: k for k, name in enumerate(NAMES)}
    return np.vectorize(lambda v: lookup.get(v, PENDING), otypes=[np.int64])(values)


def names(codes) -> np.ndarray:
    """Outcome names for integer codes (-1: ``"pending"``, not trained yet), same shape.

    Results hold outcomes as int8 codes (CF ``flag_values``/``flag_meanings`` in their attrs);
    this decodes them. Names pass through unchanged, so it takes either.

    >>> names([[0, 3], [2, -1]]).tolist()
    [['converged', 'stuck'], ['diverged', 'pending']]
    """
    values = np.asarray(getattr(codes, "values", codes))
    if values.dtype.kind in "US":
        return values.astype(str)
    return np.asarray((*NAMES, PENDING_NAME))[np.asarray(values, dtype=np.int64)]
