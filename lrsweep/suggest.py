"""Pick a learning rate from a sweep's result: :func:`suggest_lr`; ``suggest`` (the best point of
the joint grid of lr and hyperparameters) and ``suggestion`` (the one answer every report
prints: ``lrsweep run``, ``show``, ``--json``, ``lrsweep.plot`` and the explorer), the latter two in
``lrsweep.answer``.

Every method reduces the sweep to one number per learning rate by combining all the runs at that
learning rate: every dim of the result except ``lr`` (``init``, an init grid's ``init_w``,
``problem_seed``, ``opt_<name>``, ...) and, for the loss, except ``epoch`` (the final epoch is
used). ``across`` names how (:data:`ACROSS`): ``"worst"`` (the default: a learning rate is only as
good as its worst run), ``"median"``, ``"mean"`` or ``"best"`` (the luckiest run).

Runs and hyperparameters. The dims ``init``, ``init_<name>`` and ``*_seed`` (``problem_seed``: a
problem instance is not a choice) hold *runs* of one setting. Every other dim but the lr's
(``opt_<name>``, ...) is a *hyperparameter*: :func:`suggest_lr` folds it in like a run (the lr that
is good for every value, with ``across="worst"``) and warns that it did; ``lrsweep.answer.suggest`` keeps it
and returns the best point of the joint grid.

Metrics. ``metric`` names the variable compared: the final value of ``"eval_loss"`` when the
result has it (held-out data), else the training ``"loss"``; any other variable over the config
dims (``"accuracy"``, ...) too. Its direction is ``result[metric].attrs["goal"]`` (``"min"`` when
absent); the worst of a maximised metric is its lowest. Outcomes, and so divergence, stay on the
training loss.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import xarray as xr

from . import _checks, _valley, outcomes

METHODS = ("best", "largest_stable", "fastest", "lowest_loss", "valley")
#: How the runs at one learning rate combine into one number.
ACROSS = ("worst", "median", "mean", "best")
#: The method the CLI falls back to when the default cannot answer: it needs one finite loss only.
FALLBACK = "lowest_loss"
#: ``"best"``: a learning rate whose gap (module docstring of :func:`suggest_lr`) is at most this
#: many times the lowest gap is as good as the lowest.
BEST_RATIO = 1.1
#: Outcomes that make a learning rate stable. Anything else ("diverged", "stuck", an interrupted
#: sweep's "pending") does not: a run that was never trained proves nothing. A run without progress
#: did not blow up: stable (and at a poor loss, which "best" sees).
STABLE = ("converged", "unfinished", "no_progress")
#: Dims that hold runs of one setting (with ``init_*`` and ``*_seed``); other non-lr dims are hyperparameters.
RUN_DIMS = ("init", "seed")
#: Dims of a record that are not configs: the final one is used.
TIME_DIMS = ("epoch", "eval_step")


def check_result(result, variables: tuple[str, ...], min_lr: int) -> np.ndarray:
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


def _final_loss(result: xr.Dataset, metric: str = "loss") -> xr.DataArray:
    """``metric`` at the last recorded epoch or evaluation (a summary's is already final)."""
    da = result[metric]
    last = {d: -1 for d in TIME_DIMS if d in da.dims}
    return da.isel(last) if last else da


def is_run_dim(dim: str) -> bool:
    """Whether ``dim`` holds runs of one setting (inits, seeds) rather than a hyperparameter."""
    return dim in RUN_DIMS or dim.startswith("init_") or dim.endswith("_seed")


def hyper_dims(result: xr.Dataset) -> list[str]:
    """The hyperparameter dims of ``result``: config dims that are neither the lr nor runs."""
    da = result["outcome"] if "outcome" in result else result["loss"]
    return [str(d) for d in da.dims if d != "lr" and d not in TIME_DIMS and not is_run_dim(str(d))]


def default_metric(result: xr.Dataset) -> str:
    """``"eval_loss"`` when ``result`` has it, else ``"loss"``."""
    return "eval_loss" if "eval_loss" in result.data_vars else "loss"


def goal(result: xr.Dataset, metric: str) -> str:
    """``"min"`` or ``"max"``: ``result[metric].attrs["goal"]``, ``"min"`` when absent."""
    value = result[metric].attrs.get("goal", "min")
    if value not in ("min", "max"):
        raise ValueError(f"result[{metric!r}].attrs['goal']={value!r} is invalid: expected 'min' or 'max'")
    return value


def check_metric(result, metric: str | None) -> str:
    """``metric``, or the default; one that is named must be a variable of ``result``."""
    if not isinstance(result, xr.Dataset) or metric is None:
        return default_metric(result) if isinstance(result, xr.Dataset) else "loss"
    if not isinstance(metric, str) or metric not in result.data_vars:
        have = [str(v) for v in result.data_vars] if isinstance(result, xr.Dataset) else []
        raise ValueError(f"metric={metric!r} is invalid: expected a variable of the result, one of {have}")
    return metric


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


def _final_losses(result: xr.Dataset, metric: str = "loss") -> np.ndarray:
    """Final values ``(L, R)`` float64; NaN and inf count as the worst (+inf, or -inf when maximised)."""
    loss = _per_lr(_final_loss(result, metric)).astype(np.float64)
    worst = -np.inf if goal(result, metric) == "max" else np.inf
    return np.where(np.isfinite(loss), loss, worst)


def combined_loss(result: xr.Dataset, across: str = "worst", metric: str = "loss") -> tuple[np.ndarray, np.ndarray]:
    """Per distinct learning rate, the final ``metric`` (the training loss by default) combined over
    its runs: ``(lrs (U,), values (U,))``, sorted by lr; NaN and infinite values count as the worst
    (``+inf``; ``-inf`` for a maximised metric)."""
    _checks.choice("across", across, ACROSS)
    lrs = check_result(result, (metric,), 1)
    lrs, runs = _by_lr(lrs, _final_losses(result, metric))
    return lrs, _combine(runs, across, worst_is_high=goal(result, metric) == "min")


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
    dims = [str(d) for d in da.dims if d != "lr" and d not in TIME_DIMS]
    n = int(np.prod([da.sizes[d] for d in dims], dtype=np.int64))
    if dims and all(d == "init" or d.startswith("init_") for d in dims):
        grid = f" ({' x '.join(dims)})" if dims != ["init"] else ""
        return f"{across} over {n} init{'s' if n != 1 else ''}{grid}"
    return f"{across} over {n} run{'s' if n != 1 else ''}" + (f" ({' x '.join(dims)})" if dims else "")


def _none_qualifies(method: str, why: str) -> ValueError:
    return ValueError(f"suggest_lr(method={method!r}): no learning rate qualifies: {why}")


# --- the methods ------------------------------------------------------------------------------


def _largest_stable(result: xr.Dataset, across: str) -> float:
    lrs = check_result(result, ("outcome",), 1)
    lrs, bad = _bad(result, lrs, across, STABLE)
    # The stable prefix: stop at the first unstable lr, so that a lucky stable lr above an
    # unstable one does not count.
    first_bad = int(np.argmax(bad)) if np.any(bad) else lrs.size
    if first_bad == 0:
        why = f"the smallest lr {float(lrs[0])!r} already has runs that are not in {list(STABLE)} ({across} over its runs)"
        raise _none_qualifies("largest_stable", why)
    return float(lrs[first_bad - 1])


def _fastest(result: xr.Dataset, across: str) -> float:
    lrs = check_result(result, ("outcome", "event_epoch"), 1)
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


def _lowest_loss(result: xr.Dataset, across: str, metric: str = "loss") -> float:
    lrs, value = combined_loss(result, across, metric)
    if not np.any(np.isfinite(value)):
        raise _none_qualifies("lowest_loss", f"every lr's final {metric} is NaN or infinite ({across} over its runs)")
    # The first, i.e. smallest, lr among ties.
    return float(lrs[np.argmax(value) if goal(result, metric) == "max" else np.argmin(value)])


def _diverged(result: xr.Dataset, across: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct lr ``(lrs (U,), values (U,), diverged (U,))``: the combined final ``metric`` and
    whether the lr diverged (a non-finite metric or training loss, a run "diverged" or "pending",
    or a combined score of 1 or more: see :func:`suggest_lr`)."""
    lrs, value = combined_loss(result, across, metric)
    diverged = ~np.isfinite(value)
    if metric != "loss" and "loss" in result.data_vars:
        diverged |= ~np.isfinite(combined_loss(result, across)[1])
    if "outcome" in result.data_vars:
        diverged |= _bad(result, check_result(result, ("outcome",), 1), across, (*STABLE, "stuck"))[1]
    if "score" in result.data_vars:
        _, scores = _by_lr(check_result(result, ("score",), 1), _per_lr(result["score"]).astype(np.float64))
        diverged |= ~(_combine(np.where(np.isnan(scores), np.inf, scores), across) < 1)
    return lrs, value, diverged


def gaps(result: xr.Dataset, metric: str, values: np.ndarray) -> np.ndarray:
    """``"best"``'s gaps ``g_k`` of the combined final values ``A_k`` (``(n,)``, finite): see :func:`suggest_lr`."""
    if goal(result, metric) == "max":
        gap = 1.0 - values if np.all(values <= 1.0) else values.max() - values
    else:
        attr = result.attrs.get("min_loss") if metric == "loss" else None
        reference = float(attr) if attr is not None and np.isfinite(float(attr)) else 0.0
        gap = values - reference
    top = float(gap.max()) if gap.size else 0.0
    dtype = result[metric].dtype if np.issubdtype(result[metric].dtype, np.floating) else np.dtype(np.float64)
    floor = float(np.finfo(dtype).eps) * top if top > 0 else np.finfo(np.float64).tiny
    return np.maximum(gap, floor)


def _best(result: xr.Dataset, across: str, metric: str = "loss") -> float:
    lrs, value, diverged = _diverged(result, across, metric)
    # The prefix below the first lr that diverged: a lucky lr above a divergence does not count.
    stop = int(np.argmax(diverged)) if np.any(diverged) else lrs.size
    if stop == 0:
        why = f"the smallest lr {float(lrs[0])!r} already diverged or has a non-finite final {metric} ({across} over its runs)"
        raise _none_qualifies("best", why)
    gap = gaps(result, metric, value[:stop])
    k = int(np.argmin(gap))  # the smallest lr among ties
    # On along the candidates while the gap stays within BEST_RATIO of the lowest: as good, faster.
    while k + 1 < stop and gap[k + 1] <= BEST_RATIO * gap.min():
        k += 1
    return float(lrs[k])


def _valley_method(result: xr.Dataset, smooth: float, across: str) -> float:
    check_result(result, ("loss",), 2)
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
    curve = _valley.ema(np.log10(np.maximum(gap, floor)), smooth)
    start, end = _valley.longest_descent(curve)
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def suggest_lr(
    result: xr.Dataset, method: str = "best", *, across: str = "worst", smooth: float = 0.0, metric: str | None = None
) -> float:
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

    - ``"best"`` (the default): the learning rate to train with. ``lr_k`` *diverged* when ``A_k`` or
      its combined final training loss is not finite, its runs combined are "diverged" or
      "pending", or their combined score is 1 or more (not trainable, ``lrsweep.outcomes``). The
      candidates are ``lr_1 .. lr_m``, the learning rates below the first that diverged (a lucky
      one above a divergence does not count). Losses span decades, so they are compared as
      ratios of their *gaps* ``g_k = A_k - R`` (``R`` = ``result.attrs["min_loss"]`` for the
      training loss when known, else 0; for a maximised metric ``g_k = 1 - A_k`` when every ``A_k
      <= 1``, an accuracy's error, else ``max A - A_k``), floored at ``eps`` times the largest
      candidate gap (``eps`` of the metric's dtype: below it gaps are round-off, and tie).
      With ``k*`` the lowest gap (the smallest lr among ties), returns the largest ``lr_k``,
      ``k >= k*``, such that ``g_{k*} .. g_k`` are all within ``1.1 g_{k*}`` (``BEST_RATIO``): as
      good as the best to within 10%, the fastest of those, and never past a rise beyond 10% of
      the lowest gap (the rising wall past the minimum).
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
      metric: the variable ``"best"`` and ``"lowest_loss"`` compare (module docstring): default
        ``"eval_loss"`` when the result has it, else ``"loss"``. ``"valley"`` reads the training loss.

    Hyperparameter dims (``opt_<name>``; module docstring) are folded into each lr like runs, and a
    ``UserWarning`` names them, their values and ``across``: ``lrsweep.suggest_point`` keeps them apart.

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
    >>> suggest_lr(ds)   # below the divergence at 0.3: 0.03 has the lowest loss, 0.1's is 100x higher
    0.03
    """
    _checks.choice("method", method, METHODS)
    _checks.choice("across", across, ACROSS)
    ok = isinstance(smooth, numbers.Real) and not isinstance(smooth, bool) and 0.0 <= smooth < 1.0
    if not ok:
        raise ValueError(f"smooth={smooth!r} is invalid: expected a number in [0, 1)")
    metric = check_metric(result, metric)
    folded = folded_text(result, across)
    if folded:
        warnings.warn(f"suggest_lr: {folded}; lrsweep.suggest_point gives the joint best", UserWarning, stacklevel=2)
    lr = answer(result, method, across, metric, float(smooth))
    message = edge_warning(result, lr)
    if message:
        warnings.warn(f"suggest_lr(method={method!r}): {message}", UserWarning, stacklevel=2)
    return lr


def answer(result: xr.Dataset, method: str, across: str, metric: str, smooth: float) -> float:
    """:func:`suggest_lr`'s learning rate, arguments checked, without its warnings."""
    if method == "valley":
        return _valley_method(result, smooth, across)
    if method in ("best", "lowest_loss"):
        return {"best": _best, "lowest_loss": _lowest_loss}[method](result, across, metric)
    return {"largest_stable": _largest_stable, "fastest": _fastest}[method](result, across)


def folded_text(result: xr.Dataset, across: str) -> str | None:
    """``"folded opt_momentum (0, 0.5, 0.9) into each lr, worst over them"``, or None without hyperparameter dims."""
    dims = hyper_dims(result) if isinstance(result, xr.Dataset) and "lr" in result.dims else []
    if not dims:
        return None
    parts = [f"{d} ({', '.join(fmt(v) for v in np.asarray(result[d].values))})" for d in dims]
    return f"folded {' x '.join(parts)} into each lr, {across} over them"


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


def fmt(value) -> str:
    """A coordinate value for a message: ``"0.9"``, ``"adam"``."""
    return f"{float(value):.6g}" if isinstance(value, (numbers.Real, np.number)) else str(value)
