"""The one answer of a sweep: :func:`suggest`, the best point of the joint grid of lr and
hyperparameters, and :func:`suggestion`, what ``lrsweep run``, ``show``, ``--json``, ``lrsweep.plot``
and the explorer all report (the same function, so the same lr, method, aggregation and metric).
The methods and their rules are ``lrsweep.suggest``'s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from . import _checks
from . import suggest as suggest_mod


def suggest(
    result: xr.Dataset, method: str = "best", *, across: str = "worst", smooth: float = 0.0, metric: str | None = None
) -> dict:
    """The best point of the joint grid of lr and hyperparameters: ``{"lr": ..., "opt_momentum": ...}``.

    Without hyperparameter dims (module docstring) it is ``{"lr": lrsweep.suggest_lr(result, ...)}``. With
    them, for every combination ``h`` of their values, ``lr_h`` = ``lrsweep.suggest_lr`` on the runs at
    ``h`` (``method``, ``across``, ``metric`` as there), and ``m_h`` = the combined final ``metric``
    at ``lr_h``; the answer is the ``h`` with the best ``m_h`` (lowest, or highest when maximised;
    the first in grid order among ties), with its ``lr_h``. Combinations where no lr qualifies are
    skipped; a ``ValueError`` says so when none qualifies. No warning: the edge of the grid is
    :func:`suggestion`'s to report.

    >>> import xarray as xr
    >>> ds = xr.Dataset({"loss": (("lr", "opt_momentum"), [[0.5, 0.2], [0.1, 0.01], [float("inf")] * 2])},
    ...                 coords={"lr": [0.01, 0.1, 1.0], "opt_momentum": [0.0, 0.9]})
    >>> suggest(ds)
    {'lr': 0.1, 'opt_momentum': 0.9}
    """
    _checks.choice("method", method, suggest_mod.METHODS)
    _checks.choice("across", across, suggest_mod.ACROSS)
    metric = suggest_mod.check_metric(result, metric)
    suggest_mod.check_result(result, (metric,), 1)
    dims = suggest_mod.hyper_dims(result)
    if not dims:
        return {"lr": suggest_mod.answer(result, method, across, metric, float(smooth))}
    sign = -1.0 if suggest_mod.goal(result, metric) == "max" else 1.0
    found, why = None, None
    for index in np.ndindex(*(result.sizes[d] for d in dims)):
        view = result.isel(dict(zip(dims, index)))
        try:
            lr = suggest_mod.answer(view, method, across, metric, float(smooth))
        except ValueError as err:
            why = why or str(err)
            continue
        lrs, value = suggest_mod.combined_loss(view, across, metric)
        m = sign * float(value[np.flatnonzero(lrs == lr)[0]])
        if found is None or m < found[0]:
            point = {"lr": lr, **{d: result[d].values[k].item() for d, k in zip(dims, index)}}
            found = (m, point)
    if found is None:
        raise ValueError(f"suggest(method={method!r}): no point of the grid qualifies: {why}")
    return found[1]


class Suggestion(NamedTuple):
    """What :func:`suggestion` found: the one answer that ``lrsweep run``, ``show``, ``--json``,
    ``lrsweep.plot`` and the explorer all report.

    Attributes:
      lr: the suggested learning rate, or None when no method could answer.
      method: the method that answered (the one asked for, or ``FALLBACK``).
      across: how runs at one lr were combined.
      edge: the edge-of-grid warning (``"... extend lr above X"``), or None.
      why_not: why the method asked for could not answer (then ``method`` is the fallback), or None.
      metric: the variable compared (``"loss"``, ``"eval_loss"``, ...).
      point: the joint best (:func:`suggest`: ``{"lr": ..., "opt_<name>": ...}``), or None.
      how: the runs combined, e.g. ``"worst over 5 inits"`` (over the runs at one point of the grid).
    """

    lr: float | None
    method: str
    across: str
    edge: str | None
    why_not: str | None
    metric: str = "loss"
    point: dict | None = None
    how: str = ""

    def text(self) -> str:
        """``"suggested lr (best on eval_loss, worst over 5 inits): 0.1 at opt_momentum 0.9"``."""
        if self.lr is None:
            return "suggested lr: none"
        at = ", ".join(f"{d} {suggest_mod.fmt(v)}" for d, v in (self.point or {}).items() if d != "lr")
        how = f"{self.method.replace('_', ' ')} on {self.metric}, {self.how}"
        return f"suggested lr ({how}): {self.lr:.6g}" + (f" at {at}" if at else "")

    def facts(self) -> dict:
        """JSON-able: lr, method, across, metric, point, how, warning, why_not."""
        return {
            "lr": self.lr,
            "method": self.method,
            "across": self.across,
            "metric": self.metric,
            "point": self.point,
            "how": self.how,
            "warning": self.edge,
            "why_not": self.why_not,
        }


def suggestion(
    result: xr.Dataset, method: str = "best", across: str = "worst", metric: str | None = None
) -> Suggestion:
    """:func:`suggest` for reports: no warning raised, the edge warning returned, and when ``method``
    cannot answer, ``lrsweep.suggest.FALLBACK`` (``"lowest_loss"``: it needs one finite value) tried,
    with the reason kept. Every surface (``lrsweep run``, ``show``, ``--json``, ``lrsweep.plot``, the explorer) calls
    this one function."""
    metric = suggest_mod.check_metric(result, metric)
    dims = suggest_mod.hyper_dims(result)
    view = result.isel({d: 0 for d in dims})
    how = suggest_mod.across_text(view, across)
    why_not = None
    for m in (method, suggest_mod.FALLBACK) if method != suggest_mod.FALLBACK else (method,):
        try:
            point = suggest(result, m, across=across, metric=metric)
        except ValueError as err:
            why_not = why_not or str(err)
            continue
        lr = float(point["lr"])
        edge = suggest_mod.edge_warning(result, lr)
        return Suggestion(lr, m, across, edge, why_not, metric, point if dims else None, how)
    return Suggestion(None, method, across, None, why_not, metric, None, how)
