"""Pick a learning rate from a sweep's result: :func:`suggest_lr`.

Every method reduces the sweep to one number per learning rate by combining all the runs at that
learning rate: every dim of the result except ``lr`` (``init``, an init grid's ``init_w``,
``problem_seed``, ``opt_<name>``, ...) and, for the loss, except ``epoch`` (the final epoch is
used). ``across`` names how (:data:`ACROSS`): ``"worst"`` (the default: a learning rate is only as
good as its worst run), ``"median"``, ``"mean"`` or ``"best"`` (the luckiest run).
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import xarray as xr

from . import _checks, outcomes

METHODS = ("best", "largest_stable", "fastest", "lowest_loss", "valley")
#: How the runs at one learning rate combine into one number.
ACROSS = ("worst", "median", "mean", "best")
#: The method the CLI falls back to when the default cannot answer: it needs one finite loss only.
FALLBACK = "lowest_loss"
#: ``"best"``: learning rates whose combined final loss is within this fraction of the spread
#: between the best and the worst qualifying learning rates count as equally good.
BEST_GAP = 0.01
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


def _combine(runs, across: str, worst_is_high: bool = True) -> np.ndarray:
    """Combine each learning rate's runs (``runs``: ``(U, R)``, or a list of ``U`` 1-D arrays) into
    ``(U,)``: the worst (the highest, or the lowest when ``worst_is_high`` is False), the median,
    the mean, or the best."""
    high = (across == "worst") == worst_is_high
    fn = {"median": np.median, "mean": np.mean}.get(across, np.max if high else np.min)
    if isinstance(runs, np.ndarray):
        return fn(runs, axis=1)
    return np.array([fn(r) for r in runs], dtype=np.float64)


def _by_lr(lrs: np.ndarray, values: np.ndarray):
    """Sort by learning rate and pool the runs of positions that share one.

    ``values`` is ``(L, R)``; returns the sorted distinct learning rates ``(U,)`` and their runs:
    ``(U, R m)`` when each is given ``m`` times, else a list of ``U`` 1-D arrays.
    """
    unique, inverse, counts = np.unique(lrs, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    if np.all(counts == counts[0]):
        return unique, values[order].reshape(unique.size, -1)
    bounds = np.cumsum(counts)[:-1]
    return unique, [v.ravel() for v in np.split(values[order], bounds)]


def _final_losses(result: xr.Dataset) -> np.ndarray:
    """Final losses ``(L, R)`` float64; NaN and inf count as +inf."""
    loss = _per_lr(_final_loss(result)).astype(np.float64)
    return np.where(np.isfinite(loss), loss, np.inf)


def combined_loss(result: xr.Dataset, across: str = "worst") -> tuple[np.ndarray, np.ndarray]:
    """Per distinct learning rate, the final loss combined over its runs: ``(lrs (U,), loss (U,))``,
    sorted by lr; NaN and infinite losses count as ``+inf``."""
    _checks.choice("across", across, ACROSS)
    lrs = _check_result(result, ("loss",), 1)
    lrs, runs = _by_lr(lrs, _final_losses(result))
    return lrs, _combine(runs, across)


def _bad(result: xr.Dataset, lrs: np.ndarray, across: str, good: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct lr, whether its runs combined are *not* in ``good`` (a run is bad: 1, good: 0;
    combined over runs, an lr is bad at 0.5 or more: worst = any bad run, best = every run bad,
    median and mean = half of them or more)."""
    bad = (~np.isin(outcomes.names(_per_lr(result["outcome"])), good)).astype(np.float64)
    unique, runs = _by_lr(lrs, bad)
    return unique, _combine(runs, across) >= 0.5


def across_text(result: xr.Dataset, across: str) -> str:
    """``"worst over 5 inits"``, ``"median over 20 runs (init x problem_seed)"``."""
    da = result["outcome"] if "outcome" in result else _final_loss(result)
    dims = [str(d) for d in da.dims if d != "lr"]
    n = int(np.prod([da.sizes[d] for d in dims], dtype=np.int64))
    if dims and all(d == "init" or d.startswith("init_") for d in dims):
        grid = f" ({' x '.join(dims)})" if dims != ["init"] else ""
        return f"{across} over {n} init{'s' if n != 1 else ''}{grid}"
    return f"{across} over {n} run{'s' if n != 1 else ''}" + (f" ({' x '.join(dims)})" if dims else "")


def _none_qualifies(method: str, why: str) -> ValueError:
    return ValueError(f"suggest_lr(method={method!r}): no learning rate qualifies: {why}")


# --- the methods ------------------------------------------------------------------------------


def _largest_stable(result: xr.Dataset, across: str) -> float:
    lrs = _check_result(result, ("outcome",), 1)
    lrs, bad = _bad(result, lrs, across, STABLE)
    # The stable prefix: stop at the first unstable lr, so that a lucky stable lr above an
    # unstable one does not count.
    first_bad = int(np.argmax(bad)) if np.any(bad) else lrs.size
    if first_bad == 0:
        why = f"the smallest lr {float(lrs[0])!r} already has runs that are not in {list(STABLE)} ({across} over its runs)"
        raise _none_qualifies("largest_stable", why)
    return float(lrs[first_bad - 1])


def _fastest(result: xr.Dataset, across: str) -> float:
    lrs = _check_result(result, ("outcome", "event_epoch"), 1)
    converged = outcomes.names(_per_lr(result["outcome"])) == "converged"
    epochs = _per_lr(result["event_epoch"]).astype(np.float64)
    # A run that did not converge takes forever (so does one without an event: an unknown minimum).
    runs = np.where(converged & (epochs >= 0), epochs, np.inf)
    lrs, runs = _by_lr(lrs, runs)
    score = _combine(runs, across)
    if not np.any(np.isfinite(score)):
        why = "no lr's runs converged with an event epoch (a problem with an unknown minimum has none)"
        raise _none_qualifies("fastest", f"{why}, {across} over its runs")
    return float(lrs[np.argmin(score)])  # argmin: the first, i.e. smallest, lr among ties


def _lowest_loss(result: xr.Dataset, across: str) -> float:
    lrs, loss = combined_loss(result, across)
    if not np.any(np.isfinite(loss)):
        raise _none_qualifies("lowest_loss", f"every lr's final loss is NaN or infinite ({across} over its runs)")
    return float(lrs[np.argmin(loss)])  # argmin: the smallest lr among ties


def _best(result: xr.Dataset, across: str) -> float:
    lrs, loss = combined_loss(result, across)
    diverged = ~np.isfinite(loss)
    if "outcome" in result.data_vars:
        diverged |= _bad(result, _check_result(result, ("outcome",), 1), across, (*STABLE, "stuck"))[1]
    if "score" in result.data_vars:
        _, scores = _by_lr(_check_result(result, ("score",), 1), _per_lr(result["score"]).astype(np.float64))
        diverged |= ~(_combine(np.where(np.isnan(scores), np.inf, scores), across) < 1)
    # The prefix below the first lr that diverged: a lucky lr above a divergence does not count.
    stop = int(np.argmax(diverged)) if np.any(diverged) else lrs.size
    if stop == 0:
        why = f"the smallest lr {float(lrs[0])!r} already diverged or has a non-finite final loss ({across} over its runs)"
        raise _none_qualifies("best", why)
    loss = loss[:stop]
    best, worst = loss.min(), loss.max()
    near = loss - best <= BEST_GAP * (worst - best)
    return float(lrs[np.flatnonzero(near)[-1]])


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


def _valley(result: xr.Dataset, smooth: float, across: str) -> float:
    _check_result(result, ("loss",), 2)
    lrs, loss = combined_loss(result, across)
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
    attr = result.attrs.get("min_loss")
    min_loss = float(attr) if attr is not None else float("nan")
    gap = loss - (min_loss if np.isfinite(min_loss) else 0.0)  # unknown: 0, losses are taken as >= 0
    positive = gap[gap > 0]
    floor = positive.min() if positive.size else 1.0
    curve = _ema(np.log10(np.maximum(gap, floor)), smooth)
    start, end = _longest_descent(curve)
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def suggest_lr(result: xr.Dataset, method: str = "best", *, across: str = "worst", smooth: float = 0.0) -> float:
    """A learning rate suggested by a sweep's result.

    ``result`` is the ``xarray.Dataset`` of :func:`lrsweep.sweep` (a summary or a trajectory): dim
    ``lr``, variables ``outcome``, ``event_epoch`` (and ``score``) over ``(lr, ...)`` and ``loss``
    over ``(lr, ...[, epoch])``. All runs at one learning rate (every dim but ``lr``, and ``epoch``
    for the loss) are combined as ``across`` says: ``"worst"`` (default), ``"median"``, ``"mean"`` or
    ``"best"`` of the final losses (NaN and inf count as ``+inf``), event epochs (a run that did not
    converge counts as ``+inf``) and verdicts (a bad run counts 1, a good one 0; the lr is bad when
    the combination is 0.5 or more: ``"worst"`` = any bad run, ``"best"`` = every run bad,
    ``"median"``/``"mean"`` = half of them or more). A learning rate given more than once pools its
    runs. With ``lr_1 < lr_2 < ... < lr_L`` the sorted distinct learning rates and ``A_k`` the
    combined final loss of ``lr_k``:

    - ``"best"`` (the default): the learning rate to train with. ``lr_k`` *diverged* when ``A_k`` is
      not finite, its runs combined are "diverged" or "pending", or their combined score is 1 or
      more (not trainable, ``lrsweep.outcomes``). Among ``lr_1 .. lr_m``, the learning rates below
      the first that diverged (a lucky one above a divergence does not count), with ``A_min`` and
      ``A_max`` their lowest and highest ``A``: the *largest* ``lr_k`` with
      ``A_k - A_min <= 0.01 (A_max - A_min)`` (``BEST_GAP``). As good as the best to within 1% of
      the spread, and the fastest of those (a larger step reaches the same loss sooner); its ``A``
      closes at least 99% of the gap from ``A_max`` (about the initial loss when the grid starts
      at learning rates too small to train) to ``A_min``. Unlike ``"largest_stable"`` it never
      takes a learning rate that merely did not blow up but ended at a poor loss.
    - ``"largest_stable"``: ``lr`` is *stable* when its runs ended "converged" or "unfinished"
      (not "diverged", "stuck" or "pending"). Returns ``lr_k`` for the largest ``k`` such that
      ``lr_1 .. lr_k`` are all stable, so a lucky stable learning rate above an unstable one does
      not count. A stable run may still end at a poor loss: it only did not blow up.
    - ``"fastest"``: the learning rate whose combined ``event_epoch`` (the first epoch from which the
      loss stayed below the tolerance; runs that did not converge count as never) is smallest.
      Ties go to the smallest such ``lr``. Needs a known minimum (``Problem.min_loss``): with an
      unknown one no run has an event epoch.
    - ``"lowest_loss"``: the learning rate with the smallest ``A``. Ties go to the smallest ``lr``.
    - ``"valley"``: the "valley" heuristic of fastai's learning-rate finder (``fastai.callback.schedule.valley``,
      https://docs.fast.ai/callback.schedule.html), applied to the curve of ``A`` versus ``lr``:

      1. keep the learning rates before the first one with a NaN or infinite loss (fastai also
         cuts its curve at the first NaN);
      2. ``v_k = log10(max(A_k - L*, g))``: the loss gap to ``result.attrs["min_loss"]`` (``L*``;
         0 when absent or unknown, losses taken as non-negative), floored at the smallest positive
         gap ``g`` so that exact fits stay finite;
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

    Every method returns a learning rate of the grid. When it is the grid's smallest or largest
    (``lr_1`` or ``lr_L``, with more than one), a ``UserWarning`` says so: "at the edge of the
    grid: extend lr below X" (or "above X"): the answer may lie outside the grid.

    Args:
      result: a sweep's Dataset.
      method: one of ``"best"``, ``"largest_stable"``, ``"fastest"``, ``"lowest_loss"``, ``"valley"``.
      across: how the runs at one learning rate combine: ``"worst"``, ``"median"``, ``"mean"``, ``"best"``.
      smooth: the ``"valley"`` smoothing factor in ``[0, 1)``; other methods ignore it.

    Returns:
      A learning rate of the sweep (a float; never NaN).

    Raises:
      ValueError: an unknown ``method`` or ``across``; a ``result`` that is not such a Dataset (no
        ``lr`` dim, a missing variable, fewer than 2 learning rates for ``"valley"``); or no
        learning rate qualifies (one line naming the method and why).

    >>> import xarray as xr
    >>> ds = xr.Dataset(
    ...     {"outcome": ("lr", ["unfinished", "converged", "converged", "diverged", "converged"]),
    ...      "event_epoch": ("lr", [-1, 40, 12, 1, 30]),
    ...      "loss": ("lr", [1e-3, 1e-14, 1e-12, float("inf"), 1e-10])},
    ...     coords={"lr": [0.01, 0.03, 0.1, 0.3, 1.0]})
    >>> suggest_lr(ds, "largest_stable"), suggest_lr(ds, "fastest"), suggest_lr(ds, "lowest_loss")
    (0.1, 0.1, 0.03)
    >>> suggest_lr(ds)   # below the divergence at 0.3, the largest lr within 1% of the loss spread of the best
    0.1
    """
    _checks.choice("method", method, METHODS)
    _checks.choice("across", across, ACROSS)
    ok = isinstance(smooth, numbers.Real) and not isinstance(smooth, bool) and 0.0 <= smooth < 1.0
    if not ok:
        raise ValueError(f"smooth={smooth!r} is invalid: expected a number in [0, 1)")
    if method == "valley":
        lr = _valley(result, float(smooth), across)
    else:
        lr = {"best": _best, "largest_stable": _largest_stable, "fastest": _fastest, "lowest_loss": _lowest_loss}[
            method
        ](result, across)
    message = edge_warning(result, lr)
    if message:
        warnings.warn(f"suggest_lr(method={method!r}): {message}", UserWarning, stacklevel=2)
    return lr


def edge_warning(result: xr.Dataset, lr: float) -> str | None:
    """``"lr X is at the edge of the grid: extend lr above X"`` (or below) when ``lr`` is the
    grid's largest (smallest) of more than one distinct learning rate, else None."""
    lrs = np.unique(np.asarray(result["lr"].values, dtype=np.float64))
    if lrs.size < 2:
        return None
    if lr == lrs[-1]:
        return f"lr {lr:.6g} is at the edge of the grid: extend lr above {lr:.6g}"
    if lr == lrs[0]:
        return f"lr {lr:.6g} is at the edge of the grid: extend lr below {lr:.6g}"
    return None


class Suggestion(NamedTuple):
    """What :func:`suggestion` found.

    Attributes:
      lr: the suggested learning rate, or None when no method could answer.
      method: the method that answered (the one asked for, or ``FALLBACK``).
      across: how runs at one lr were combined.
      edge: the edge-of-grid warning (``"... extend lr above X"``), or None.
      why_not: why the method asked for could not answer (then ``method`` is the fallback), or None.
    """

    lr: float | None
    method: str
    across: str
    edge: str | None
    why_not: str | None


def suggestion(result: xr.Dataset, method: str = "best", across: str = "worst") -> Suggestion:
    """:func:`suggest_lr` for reports (the CLI): no warning raised, the edge warning returned, and
    when ``method`` cannot answer, ``FALLBACK`` (``"lowest_loss"``: it needs one finite loss) tried,
    with the reason kept."""
    why_not = None
    for m in (method, FALLBACK) if method != FALLBACK else (method,):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                lr = suggest_lr(result, m, across=across)
        except ValueError as err:
            why_not = why_not or str(err)
            continue
        return Suggestion(lr, m, across, edge_warning(result, lr), why_not)
    return Suggestion(None, method, across, None, why_not)
