"""Outcomes of a training run, tracked epoch by epoch in O(1) memory, and the run's score.

Notation. ``L_e`` is the loss at epoch ``e``, computed from the parameters *before* update ``e``
(``L_0`` at the init, ``L_E`` after the last of ``E`` updates); ``L*`` is the problem's ``min_loss``
when it is known (``Problem.min_loss``; None or NaN when it is not); ``K = min(score_window, E)``
(``score_window`` defaults to 20).

The score (Sohl-Dickstein 2024, "The boundary of neural network trainability is fractal", the
``convergence_measure`` of its notebook, github.com/Sohl-Dickstein/fractal). Over the ``K`` losses
recorded before the last ``K`` steps, ``L_{E-K} .. L_{E-1}`` (the notebook keeps the loss computed
before each of its ``steps`` updates and averages the last 20 of them)::

    r_e   = L_e / D,  D = L_0 unless |L_0| < a, then D = a   (a = ``ATOL`` = 1e-6: the guard)
    r_e   = 1e6  where r_e is NaN or infinite
    r_e   = min(r_e, 1e6)
    score = (1 / K) sum_{e=E-K}^{E-1} r_e       (summed in numpy's pairwise order)

and the run is *trainable* iff ``score < 1``: averaged over the window, which smooths oscillations,
the loss ended below where it started. The guarded denominator ``D`` is the paper's ``L_0`` for
every start of at least ``1e-6`` in size (bit for bit), and keeps a start at zero loss from giving
``L_e / 0 = inf`` (a forward difference's bias nudges such a run to ``5e-8``, which is no
divergence); ``0 / D = 0`` as before. ``ATOL`` is absolute: losses are taken to be of order one
at the start, as the score's ``1e6`` clip already does. The notebook replaces non-finite losses with ``1e6``
*before* dividing by the first one (and, as written, ``v * fin`` keeps a NaN as NaN, so a
non-finite loss makes its measure NaN: not trainable); we replace the non-finite ratio with the
clip value ``1e6``. Both make any run with a non-finite loss in the window untrainable (here its
score is at least ``1e6 / K``), and they agree exactly on finite runs. The score assumes losses
``>= 0``, as the paper's does.

Also kept: ``best_loss = min(L_0 .. L_E)`` ignoring NaN (NaN when every loss is NaN) and
``best_epoch``, the first epoch at which it was reached (-1 when every loss is NaN).

The sums (opt-in, ``track_sums``): with ``r_e`` as above (non-finite 1e6, clipped at 1e6), over
every step's loss ``L_0 .. L_{E-1}``::

    sum_v     = sum_{e=0}^{E-1} r_e
    sum_inv_v = sum_{e=0}^{E-1} 1 / r_e

accumulated epoch by epoch in the compute dtype (two numbers per config, whatever ``E``). The
paper colours a pixel ``-sum_v`` when trainable and ``sum_inv_v`` otherwise (its notebook's
``convergence_measure``; ``lrsweep.maps``). The notebook replaces a non-finite loss by 1e6 before
dividing by ``L_0``; with ``L_0 <= 1`` (the paper's network starts at 0.91) the clip makes that
the same ``r_e = 1e6``.

The plateau (for problems whose minimum is unknown). Over the window and the final loss,
``W = {L_{E-K}, .., L_{E-1}, L_E}``::

    plateau  <=>  max(W) - min(W) <= plateau_rtol * max(|max(W)|, |min(W)|)

(``plateau_rtol`` defaults to ``1e-4``): the loss moved by at most a ten-thousandth of its level
over the window. Every value of the window counts, not two endpoints: a period-2 cycle has equal
endpoints and a large spread. A NaN or infinite value in ``W`` is no plateau.

Progress. ``R = L*`` when known, else ``0`` (losses taken as ``>= 0``); the start's gap to it,
guarded, is ``G = max(L_0 - R, a)`` with ``a = ATOL * max(1, |R|)``. The run *made progress* iff::

    L_0 - L_E >= progress_rtol * G        (progress_rtol = PROGRESS_RTOL = 1e-2)

it closed at least 1% of the gap to the minimum (of its starting loss when the minimum is
unknown). A run *started at its minimum* iff ``L_0 <= R + a``, and *stayed there* iff
``L_E <= R + a``.

The outcome. With ``tol = L* + rtol * (L_0 - L*)`` (``rtol = 1e-6``: the gap to the minimum has
shrunk a million-fold), *at the minimum* means ``L_E <= tol`` when ``L*`` is known (which implies
progress unless the run started at its minimum), and ``plateau and score < 1 and progress`` when it
is not (a plateau the run never left, at lr 1e-5 on a network at chance level, is no minimum). The
first rule that applies wins:

1. ``"diverged"``: ``L_E`` is NaN or infinite. (Under gradient descent a non-finite loss stays
   non-finite: its gradient makes the parameters NaN.)
2. ``"converged"``: it started at its minimum and stayed there, whatever the lr and the score.
3. ``"stuck"``: no parameter changed over the last ``window`` epochs (``stuck_window``, default
   ``max(1, E // 10)``) and the run is not at the minimum. Floating-point absorption does this: an
   update (or a finite-difference nudge) smaller than half the float spacing at a parameter leaves
   it unchanged, as in the lesson's ``lr = 1`` run, frozen at a huge loss.
4. ``"no_progress"``: no progress, the final loss no more than ``progress_rtol * G`` above the
   start and ``score < 1 + progress_rtol``: the run moved, if at all, less than the threshold either
   way. An lr too small to change the loss in this precision lands here (its score is exactly 1),
   as does an lr that trains too slowly to matter within ``E`` epochs.
5. ``"diverged"``: ``score >= 1``, not trainable: the last ``K`` losses average at or above
   ``L_0``. A bounded oscillation below the start is *not* divergence.
6. ``"converged"``: at the minimum (``L_E <= tol`` with a known ``L*``; a plateau, trainable and
   progress with an unknown one).
7. ``"unfinished"``: none of the above: still improving, or cycling in a bounded orbit below the
   start (trainable, but no plateau).

``event_epoch``: for "stuck", the epoch at which the parameters took their final values; for
"converged" by rule 2, 0; for "converged" with a known minimum, the first epoch of the final
stretch of epochs with ``L_e <= tol`` (it reached the tolerance for good); for "diverged", the
first epoch of the final stretch of epochs above ``L_0`` (or non-finite) when the run ends there,
else -1 (it diverged on average over the window while its last loss lies below the start);
otherwise -1 (no tolerance to reach when ``L*`` is unknown; nothing happened when unfinished or
without progress).

Codes: 0 converged, 1 unfinished, 2 diverged, 3 stuck, 4 no_progress (appended: stores written
before it keep their meaning), -1 pending.

The tracker keeps four numbers per config, updated every epoch: ``run_start * 4 + zone`` (one
int32: the zone of the latest epoch, 0 below ``tol``, 1 in between, 2 above ``L_0`` or
non-finite, and the epoch at which the current run of same-zone epochs began), the last epoch with
a parameter change, and the best loss and its epoch. Few numbers, few selects: under ``vmap`` each
carried array costs the CPU one more pass over the configs every epoch. The score's window is not
in the tracker: the engine collects the last ``K`` losses as the output of a short final scan (a
summary) or a ring of ``K`` losses (a trajectory), so memory never grows with ``E``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

CONVERGED, UNFINISHED, DIVERGED, STUCK, NO_PROGRESS = 0, 1, 2, 3, 4
#: Outcome names indexed by their integer code (new outcomes are appended: old codes keep their meaning).
NAMES = ("converged", "unfinished", "diverged", "stuck", "no_progress")
#: The code and name of a config that was not trained (yet): an interrupted or resumable sweep.
PENDING, PENDING_NAME = -1, "pending"
#: CF attributes of an ``outcome`` variable: what its int8 codes mean.
FLAG_ATTRS = {
    "flag_values": [PENDING, *range(len(NAMES))],
    "flag_meanings": " ".join((PENDING_NAME, *NAMES)),
    "long_name": "outcome of the run",
}
DEFAULT_RTOL = 1e-6
#: Losses in the score's window (the paper's 20).
DEFAULT_SCORE_WINDOW = 20
#: Relative spread of the final losses that counts as a plateau (an unknown minimum).
DEFAULT_PLATEAU_RTOL = 1e-4
#: Relative losses are clipped here, and a non-finite one counts as this (the paper's ``max_val``).
SCORE_CLIP = 1e6
#: Absolute tolerance at the minimum (``a`` of the module docstring, times ``max(1, |L*|)``) and
#: the score's guard on a start near zero: losses are taken to be of order one at the start.
ATOL = 1e-6
#: Fraction of the start's gap to the minimum a run must close to have made progress.
PROGRESS_RTOL = 1e-2
#: The version of the rules above that classify a run (2: ``no_progress`` and the guarded start). A store is
#: classified under one version throughout: one written under other rules is readable but does not resume
#: (``identity.stored_differences``; stores from before versions were written count as 1).
RULES = 2
#: Runs up to this many epochs can be tracked (run_start * 4 + zone must fit in an int32).
MAX_EPOCHS = 2**29 - 1


def default_window(epochs: int) -> int:
    """Epochs without a parameter change that make a run "stuck": ``max(1, epochs // 10)``."""
    return max(1, epochs // 10)


class Tracker(NamedTuple):
    """Running facts about one config's run; scalars per config.

    Attributes:
      zone_run: int32 ``run_start * 4 + zone``: the zone of the latest epoch (0, 1 or 2, see the
        module docstring) and the epoch at which the current run of epochs in that zone began.
      last_change: int32, the last epoch whose parameters differ from the epoch before; 0 at the start.
      best_loss: the lowest loss so far (compute dtype); +inf while every loss was NaN.
      best_epoch: int32, the first epoch with ``best_loss``; -1 while every loss was NaN.
    """

    zone_run: jnp.ndarray
    last_change: jnp.ndarray
    best_loss: jnp.ndarray
    best_epoch: jnp.ndarray


def zone(loss, loss0, tol):
    """0 below tolerance, 1 in between, 2 above the start or non-finite."""
    return jnp.where(loss <= tol, 0, jnp.where(loss <= loss0, 1, 2)).astype(jnp.int32)


def start(loss0, tol) -> Tracker:
    """The tracker after observing epoch 0."""
    z = zone(loss0, loss0, tol)
    nan = jnp.isnan(loss0)
    return Tracker(
        z,
        jnp.zeros_like(z),
        jnp.where(nan, jnp.inf, loss0),
        jnp.where(nan, -1, 0).astype(jnp.int32),
    )


def observe(t: Tracker, epoch, loss, loss0, tol, best: bool = True) -> Tracker:
    """Fold in the loss ``L_e`` at ``epoch`` (observing epoch 0 again changes nothing).

    ``best=False`` leaves the best loss and epoch as they were: carried unchanged, they cost the
    compiled loop nothing, where updating them costs each epoch two more selects and (under
    ``vmap`` on CPU) two more passes over the configs.
    """
    z = zone(loss, loss0, tol)
    zone_run = jnp.where(z == (t.zone_run & 3), t.zone_run, epoch * 4 + z)
    if not best:
        return t._replace(zone_run=zone_run)
    better = loss < t.best_loss  # False for NaN: a NaN loss is never the best
    return Tracker(
        zone_run, t.last_change, jnp.where(better, loss, t.best_loss), jnp.where(better, epoch, t.best_epoch)
    )


def moved(t: Tracker, epoch, changed) -> Tracker:
    """Record whether the parameters of ``epoch`` differ from those of ``epoch - 1``."""
    return t._replace(last_change=jnp.where(changed, epoch, t.last_change))


def best(t: Tracker):
    """``(best_loss, best_epoch)``: NaN and -1 when every loss was NaN."""
    return jnp.where(t.best_epoch < 0, jnp.nan, t.best_loss).astype(t.best_loss.dtype), t.best_epoch


def relative(loss, loss0):
    """``r_e``, the loss relative to the first one as the score counts it: over the guarded
    denominator ``D`` (``L_0``, or ``ATOL`` when ``|L_0| < ATOL``), ``0 / D := 0``, a non-finite
    ratio ``SCORE_CLIP``, clipped at ``SCORE_CLIP`` (module docstring)."""
    loss = jnp.asarray(loss)
    loss0 = jnp.asarray(loss0)
    den = jnp.where(jnp.abs(loss0) < ATOL, jnp.asarray(ATOL, loss0.dtype), loss0)  # the guard
    r = jnp.where(loss == 0, jnp.zeros_like(loss), loss / den)
    r = jnp.where(jnp.isfinite(r), r, SCORE_CLIP)
    return jnp.minimum(r, SCORE_CLIP).astype(jnp.result_type(loss))


def score(window: Sequence, loss0, total: Callable[[list], Any] = sum) -> Any:
    """The paper's score of the ``K`` losses ``window = [L_{E-K}, .., L_{E-1}]`` (scalars): see the
    module docstring. ``total`` sums a list of ``K`` scalars (the engine passes numpy's pairwise
    order, so that a float64 score equals ``np.mean`` of the same ratios bit for bit)."""
    ratios = [relative(loss, loss0) for loss in window]
    return total(ratios) / len(ratios)


def start_sums(loss0):
    """``(sum_v, sum_inv_v)`` before any step: zeros of the loss's dtype."""
    zero = jnp.zeros_like(loss0)
    return zero, zero


def add_sums(sums, loss, loss0):
    """Fold the loss ``L_e`` of one more step into ``(sum_v, sum_inv_v)`` (module docstring)."""
    r = relative(loss, loss0)
    return sums[0] + r, sums[1] + 1 / r


def plateau(window: Sequence, loss_final, rtol) -> jnp.ndarray:
    """Whether ``W = window + [L_E]`` spans at most ``rtol`` of its level (module docstring)."""
    values = [*window, loss_final]
    hi, lo = values[0], values[0]
    for v in values[1:]:
        hi, lo = jnp.maximum(hi, v), jnp.minimum(lo, v)  # NaN propagates: no plateau
    level = jnp.maximum(jnp.abs(hi), jnp.abs(lo))
    return jnp.isfinite(hi) & jnp.isfinite(lo) & (hi - lo <= rtol * level)


def classify(t: Tracker, epochs: int, window: int, loss_final, tol, score_value, plateaued, known, *, loss0, min_loss):
    """Return ``(outcome code, event_epoch)`` as int8 and int32 scalars; see the module docstring.

    ``window`` is the stuck window; ``score_value`` the run's score; ``plateaued`` whether the final
    losses form a plateau; ``known`` whether the problem's minimum (hence ``tol``) is known;
    ``loss0`` is ``L_0`` and ``min_loss`` is ``L*`` (NaN when unknown). Elementwise: scalars or
    vectors of configs alike.
    """
    final_zone = t.zone_run & 3
    run_start = t.zone_run >> 2
    nonfinite = ~jnp.isfinite(loss_final)
    trainable = score_value < 1
    reference = jnp.where(known, min_loss, jnp.zeros_like(min_loss)).astype(jnp.result_type(loss_final))
    atol = ATOL * jnp.maximum(1, jnp.abs(reference))
    gap = jnp.maximum(loss0 - reference, atol)
    progress = loss0 - loss_final >= PROGRESS_RTOL * gap
    at_start = (loss0 <= reference + atol) & (loss_final <= reference + atol)  # started and stayed there
    level = ~progress & (loss_final <= loss0 + PROGRESS_RTOL * gap) & (score_value < 1 + PROGRESS_RTOL)
    at_minimum = jnp.where(known, loss_final <= tol, plateaued & trainable & progress) | at_start
    frozen = (epochs - t.last_change) >= window
    # Nested selects, not jnp.select: the per-example GPU kernel lowers plain selects only.
    rules = [(at_start, CONVERGED), (frozen & ~at_minimum, STUCK), (level, NO_PROGRESS), (~trainable, DIVERGED)]
    outcome = jnp.where(at_minimum, CONVERGED, UNFINISHED)
    for condition, code in reversed(rules):
        outcome = jnp.where(condition, code, outcome)
    outcome = jnp.where(nonfinite, DIVERGED, outcome).astype(jnp.int8)
    event = jnp.where((outcome == CONVERGED) & known, run_start, -1)
    event = jnp.where(at_start & (outcome == CONVERGED), 0, event)
    event = jnp.where(outcome == DIVERGED, jnp.where(final_zone == 2, run_start, -1), event)
    event = jnp.where(outcome == STUCK, t.last_change, event)
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
