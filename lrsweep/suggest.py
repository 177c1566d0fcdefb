"""Pick a learning rate from a sweep's result: :func:`suggest_lr`.

Every method reduces the sweep to one number per learning rate, taking the *worst case* over all
the other runs at that learning rate: every dim of the result except ``lr`` (``init``, an init grid's
``init_w``, ... and any dim added later) and, for the loss, except ``epoch`` (the final epoch is
used). A learning rate is only as good as its worst run.
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from . import _checks, outcomes

METHODS = ("largest_stable", "fastest", "lowest_loss", "valley")
#: Outcomes that make a learning rate stable. Anything else ("diverged", "stuck", an interrupted
#: sweep's "pending") does not: a run that was never trained proves nothing.
STABLE = ("converged", "unfinished")


def _check_result(result, variables: tuple[str, ...], min_lr: int) -> np.ndarray:
    """Validate ``result`` and return its learning rates, shape ``(L,)`` float64."""
    if not isinstance(result, xr.Dataset):
        raise ValueError(f"result={type(result).__name__} is invalid: expected the xarray.Dataset of lrsweep.sweep()")
    if "lr" not in result.dims:
        raise ValueError(f"result is invalid: it has no 'lr' dim (dims {list(result.dims)})")
    missing = [v for v in variables if v not in result.data_vars]
    if missing:
        raise ValueError(f"result is invalid: it lacks the variables {missing} (has {list(result.data_vars)})")
    for v in variables:
        if "lr" not in result[v].dims:
            raise ValueError(f"result[{v!r}] is invalid: it has no 'lr' dim (dims {list(result[v].dims)})")
    lrs = np.asarray(result["lr"].values, dtype=np.float64)
    if lrs.size < min_lr:
        raise ValueError(f"result is invalid: it has {lrs.size} learning rates, this method needs at least {min_lr}")
    if not np.all(np.isfinite(lrs) & (lrs > 0)):
        raise ValueError(f"result.lr is invalid: learning rates must be finite and > 0, got {lrs.tolist()!r}")
    return lrs


def _per_lr(da: xr.DataArray) -> np.ndarray:
    """``da`` as an ``(L, R)`` numpy array: one row per learning rate, one column per run at it."""
    arr = np.asarray(da.transpose("lr", ...).values)
    if arr[0].size == 0:
        raise ValueError(f"result[{da.name!r}] is invalid: it holds no runs per learning rate (dims {dict(da.sizes)})")
    return arr.reshape(arr.shape[0], -1)


def _final_loss(result: xr.Dataset) -> xr.DataArray:
    """The loss at the last recorded epoch (a summary's loss is already final)."""
    loss = result["loss"]
    return loss.isel(epoch=-1) if "epoch" in loss.dims else loss


def _worst_loss(result: xr.Dataset) -> np.ndarray:
    """Per learning rate, the largest final loss over its runs, shape ``(L,)``; NaN and inf count as +inf."""
    loss = _per_lr(_final_loss(result)).astype(np.float64)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    return loss.max(axis=1)


def _merge_duplicates(lrs: np.ndarray, score: np.ndarray, worst) -> tuple[np.ndarray, np.ndarray]:
    """Sort by learning rate; positions that share a learning rate merge into their worst score.

    Returns the sorted unique learning rates ``(U,)`` and their scores ``(U,)``. ``worst`` is
    ``np.maximum`` (higher is worse) or ``np.minimum``.
    """
    unique, inverse = np.unique(lrs, return_inverse=True)
    merged = np.empty(unique.shape, dtype=score.dtype)
    merged[inverse] = score  # seed each slot with one of its own scores, then fold in all of them
    worst.at(merged, inverse, score)
    return unique, merged


def _none_qualifies(method: str, why: str) -> ValueError:
    return ValueError(f"suggest_lr(method={method!r}): no learning rate qualifies: {why}")


# --- the methods ------------------------------------------------------------------------------


def _largest_stable(result: xr.Dataset) -> float:
    lrs = _check_result(result, ("outcome",), 1)
    stable = np.all(np.isin(outcomes.names(_per_lr(result["outcome"])), STABLE), axis=1)
    lrs, stable = _merge_duplicates(lrs, stable, np.minimum)
    # The stable prefix: stop at the first unstable lr, so that a lucky stable lr above a diverged
    # one does not count.
    first_bad = int(np.argmin(stable)) if not np.all(stable) else lrs.size
    if first_bad == 0:
        why = f"the smallest lr {lrs[0]!r} already has a run that is not in {list(STABLE)}"
        raise _none_qualifies("largest_stable", why)
    return float(lrs[first_bad - 1])


def _fastest(result: xr.Dataset) -> float:
    lrs = _check_result(result, ("outcome", "event_epoch"), 1)
    converged = np.all(outcomes.names(_per_lr(result["outcome"])) == "converged", axis=1)
    epochs = _per_lr(result["event_epoch"]).astype(np.float64).max(axis=1)
    # A learning rate with any run that did not converge takes forever.
    score = np.where(converged & (epochs >= 0), epochs, np.inf)
    lrs, score = _merge_duplicates(lrs, score, np.maximum)
    if not np.any(np.isfinite(score)):
        raise _none_qualifies("fastest", "at no lr did every run converge")
    return float(lrs[np.argmin(score)])  # argmin: the first, i.e. smallest, lr among ties


def _lowest_loss(result: xr.Dataset) -> float:
    lrs = _check_result(result, ("loss",), 1)
    lrs, loss = _merge_duplicates(lrs, _worst_loss(result), np.maximum)
    if not np.any(np.isfinite(loss)):
        raise _none_qualifies("lowest_loss", "every lr has a run with a NaN or infinite final loss")
    return float(lrs[np.argmin(loss)])  # argmin: the smallest lr among ties


def _ema(values: np.ndarray, beta: float) -> np.ndarray:
    """Debiased exponential moving average of ``values`` ``(n,)``, as fastai's ``Recorder`` smooths losses.

    ``a_k = beta a_{k-1} + (1 - beta) v_k`` from ``a_{-1} = 0``, and ``s_k = a_k / (1 - beta^(k+1))``.
    """
    if beta == 0.0:
        return values.copy()
    out = np.empty_like(values)
    avg = 0.0
    for k, v in enumerate(values):
        avg = beta * avg + (1.0 - beta) * v
        out[k] = avg / (1.0 - beta ** (k + 1))
    return out


def _longest_descent(values: np.ndarray) -> tuple[int, int]:
    """``(start, end)`` of the longest valley in ``values``, shape ``(n,)`` with ``n >= 1``.

    ``d[i]``: the length of the longest strictly decreasing subsequence of ``values`` ending at
    ``i`` (fastai's ``lds``). ``end``: the first index with the largest ``d``. ``start``: the
    smallest index at which such a subsequence (of length ``d[end]``, ending at ``end``) can begin,
    found with ``f[j]``, the longest strictly decreasing subsequence from ``j`` to ``end``.
    ``O(n^2)`` time in ``n`` numpy passes: well under a second for ``n`` up to about ``10^4``.
    """
    n = values.size
    d = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        higher = values[:i] > values[i]
        if np.any(higher):
            d[i] = d[:i][higher].max() + 1
    end = int(np.argmax(d))
    f = np.zeros(n, dtype=np.int64)  # 0: no decreasing path from j to end
    f[end] = 1
    for j in range(end - 1, -1, -1):
        after = slice(j + 1, end + 1)
        reach = (values[after] < values[j]) & (f[after] > 0)
        if np.any(reach):
            f[j] = f[after][reach].max() + 1
    return int(np.argmax(f == d[end])), end


def _valley(result: xr.Dataset, smooth: float) -> float:
    lrs = _check_result(result, ("loss",), 2)
    lrs, loss = _merge_duplicates(lrs, _worst_loss(result), np.maximum)
    if lrs.size < 2:
        raise ValueError(
            f"result is invalid: it has {lrs.size} distinct learning rate, method='valley' needs at least 2"
        )
    # Like fastai, which drops the lr finder's curve from its first NaN on: keep the finite prefix.
    finite = np.isfinite(loss)
    stop = int(np.argmin(finite)) if not np.all(finite) else loss.size
    if stop < 2:
        why = f"fewer than 2 learning rates before the first non-finite loss (at lr={lrs[stop]!r})"
        raise _none_qualifies("valley", why)
    lrs, loss = lrs[:stop], loss[:stop]
    # The gap to the problem's minimum spans many decades (1e-30 .. 1e2 in a GD sweep): work on
    # log10 of it, with zero or negative gaps (exact fits, round-off) floored at the smallest
    # positive gap so that the logarithm stays finite.
    gap = loss - float(result.attrs.get("min_loss", 0.0))
    positive = gap[gap > 0]
    floor = positive.min() if positive.size else 1.0
    curve = _ema(np.log10(np.maximum(gap, floor)), smooth)
    start, end = _longest_descent(curve)
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def suggest_lr(result: xr.Dataset, method: str = "largest_stable", *, smooth: float = 0.0) -> float:
    """A learning rate suggested by a sweep's result.

    ``result`` is the ``xarray.Dataset`` of :func:`lrsweep.sweep` (a summary or a trajectory): dim
    ``lr``, variables ``outcome`` and ``event_epoch`` over ``(lr, ...)`` and ``loss`` over
    ``(lr, ...[, epoch])``. All runs at one learning rate (every dim but ``lr``, and ``epoch`` for
    the loss) are reduced to their **worst case**, and learning rates that occur more than once are
    merged the same way. With ``lr_1 < lr_2 < ... < lr_L`` the sorted distinct learning rates:

    - ``"largest_stable"``: ``lr`` is *stable* when every run at it ended "converged" or
      "unfinished" (none "diverged", "stuck" or "pending"). Returns ``lr_k`` for the largest ``k``
      such that ``lr_1 .. lr_k`` are all stable, so a lucky stable learning rate above an unstable
      one does not count. (If every ``lr`` is stable that is ``lr_L``: the sweep did not reach
      the edge of stability.)
    - ``"fastest"``: among learning rates at which every run "converged", the one whose slowest run
      converged first: the smallest ``max(event_epoch)``, where ``event_epoch`` is the first epoch
      from which the loss stayed below the tolerance. Ties go to the smallest such ``lr``, the
      farthest from the edge of stability.
    - ``"lowest_loss"``: the learning rate with the smallest worst-case final loss, a NaN or
      infinite loss counting as ``+inf``. Ties go to the smallest ``lr``.
    - ``"valley"``: the "valley" heuristic of fastai's learning-rate finder (``fastai.callback.schedule.valley``,
      https://docs.fast.ai/callback.schedule.html), applied to the curve of worst-case final loss
      versus ``lr``:

      1. keep the learning rates before the first one with a NaN or infinite loss (fastai also
         cuts its curve at the first NaN);
      2. ``v_k = log10(max(L_k - L*, g))``: the loss gap to ``result.attrs["min_loss"]`` (``L*``, 0
         when absent), floored at the smallest positive gap ``g`` so that exact fits stay finite;
      3. optionally smooth ``v`` with a debiased exponential moving average of factor ``smooth``
         (fastai's recorder smooths its losses with 0.98; the default 0 does not smooth: a
         full-batch sweep's final losses are deterministic, and smoothing lags the curve);
      4. the valley: ``d_k`` is the length of the longest strictly decreasing subsequence of ``v``
         ending at ``k`` (fastai's ``lds``); it ends at ``e``, the first ``k`` with the largest
         ``d_k``, and starts at ``s``, the smallest index from which a strictly decreasing
         subsequence of that length reaches ``e``;
      5. return ``lr_i`` with ``i = s + floor(t) + floor(t / 2)`` and ``t = (e - s) / 3``.

      Step 5 is fastai's index arithmetic: about halfway along the valley (1/3 + 1/6 of it), although
      the heuristic is often described as "2/3 of the way down". fastai estimates the start as
      ``e - d_e``, which is one index before a contiguous valley (and can give ``i = -1``, the
      largest ``lr``, for a valley of length 2); we use the subsequence's actual first index.
      Strict descent is unchanged by the logarithm, so the log matters only with smoothing. A
      flat curve gives ``lr_1``.

    Args:
      result: a sweep's Dataset.
      method: one of ``"largest_stable"``, ``"fastest"``, ``"lowest_loss"``, ``"valley"``.
      smooth: the ``"valley"`` smoothing factor in ``[0, 1)``; other methods ignore it.

    Returns:
      A learning rate of the sweep (a float; never NaN).

    Raises:
      ValueError: an unknown ``method``; a ``result`` that is not such a Dataset (no ``lr`` dim,
        a missing variable, fewer than 2 learning rates for ``"valley"``); or no learning rate
        qualifies (the message names the method).

    >>> import xarray as xr
    >>> ds = xr.Dataset(
    ...     {"outcome": ("lr", ["unfinished", "converged", "converged", "diverged", "converged"]),
    ...      "event_epoch": ("lr", [-1, 40, 12, 1, 30]),
    ...      "loss": ("lr", [1e-3, 1e-14, 1e-12, float("inf"), 1e-10])},
    ...     coords={"lr": [0.01, 0.03, 0.1, 0.3, 1.0]})
    >>> suggest_lr(ds), suggest_lr(ds, "fastest"), suggest_lr(ds, "lowest_loss")
    (0.1, 0.1, 0.03)
    """
    _checks.choice("method", method, METHODS)
    ok = isinstance(smooth, numbers.Real) and not isinstance(smooth, bool) and 0.0 <= smooth < 1.0
    if not ok:
        raise ValueError(f"smooth={smooth!r} is invalid: expected a number in [0, 1)")
    if method == "largest_stable":
        return _largest_stable(result)
    if method == "fastest":
        return _fastest(result)
    if method == "lowest_loss":
        return _lowest_loss(result)
    return _valley(result, float(smooth))
