"""One figure of a sweep, as fastai's ``lr_find`` gives one: :func:`plot`.

- A sweep over one ``lr`` axis: the final loss (the metric the suggestion compares: ``eval_loss`` when
  the sweep has it) against the learning rate on log axes, the runs at
  each lr combined as :func:`lrsweep.suggest_lr` combines them (``across``, the worst by default)
  with the spread over the runs (lowest to highest) as a band; under it an outcome strip (each
  lr's outcome, the worst over its runs: diverged, then stuck, pending, unfinished, converged);
  the suggested lr and, when given, theory's critical lr marked.
- A sweep over ``lr`` and hyperparameters (``opt_<name>``; ``lrsweep.suggest``): the map of lr x
  the first hyperparameter, each cell the final metric combined over its runs (``log10`` when
  positive), the joint suggestion (``lrsweep.answer.suggestion``, the answer ``lrsweep run`` prints)
  circled; further hyperparameters are folded with ``across``.
- A sweep over two per-group learning rates (``lr_<a>``, ``lr_<b>``): the trainability map of
  Sohl-Dickstein 2024 ("The boundary of neural network trainability is fractal"): ``log10`` of the
  score (``lrsweep.outcomes``; worst over the other dims) as an image, the first group on ``x``,
  both axes ``log10`` of the learning rates, a diverging colour map centred on score 1, the
  trainability boundary (score = 1) outlined. Without a ``score`` variable, the outcomes.

Plain ``matplotlib.figure.Figure``: no pyplot state, nothing shown; ``fig.savefig(path)`` writes it.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import answer, outcomes, suggest

#: Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OUTCOME_COLORS = {
    "converged": "#009E73",
    "unfinished": "#56B4E9",
    "diverged": "#D55E00",
    "stuck": "#CC79A7",
    "no_progress": "#F0E442",
    "pending": "#BBBBBB",
}
#: Worst first: the outcome shown for an lr is the first of these among its runs.
SEVERITY = ("diverged", "stuck", "pending", "no_progress", "unfinished", "converged")
_LINE, _SUGGEST, _CRITICAL = "#0072B2", "#E69F00", "#000000"


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted positive values: geometric midpoints, the ends mirrored."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 1:
        return np.array([v[0] / 1.1, v[0] * 1.1])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def _worst_outcome(ds: xr.Dataset, lrs: np.ndarray) -> list[str]:
    names = outcomes.names(outcomes.codes(ds["outcome"].transpose("lr", ...)).reshape(ds.sizes["lr"], -1))
    order = np.argsort(np.asarray(ds["lr"].values, dtype=np.float64), kind="stable")
    names = names[order]
    values = np.asarray(ds["lr"].values, dtype=np.float64)[order]
    out = []
    for lr in lrs:
        runs = set(names[values == lr].ravel().tolist())
        out.append(next(n for n in SEVERITY if n in runs))
    return out


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)


def _plot_1d(ds: xr.Dataset, method: str, across: str, critical_lr: float | None) -> Figure:
    found = answer.suggestion(ds, method, across)
    metric = found.metric
    lrs, combined = suggest.combined_loss(ds, across, metric)
    _, low = suggest.combined_loss(ds, "best", metric)
    _, high = suggest.combined_loss(ds, "worst", metric)
    how = suggest.across_text(ds, across)
    n_runs = int(ds["outcome"].size // ds.sizes["lr"])
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[9, 1])
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    finite = np.isfinite(combined)
    positive = combined[finite & (combined > 0)]
    log_y = positive.size >= 2
    # Zero losses (exact fits) sit on a floor a decade below the smallest positive one, on a log axis.
    floor = positive.min() / 10 if log_y else -np.inf
    shown = lambda v: np.where(np.isfinite(v), np.maximum(v, floor), np.nan)
    if n_runs > 1:
        band = np.isfinite(low)
        ax.fill_between(
            lrs, shown(np.where(band, low, np.nan)), shown(np.where(band, high, np.nan)), color=_LINE, alpha=0.18,
            lw=0, label=f"spread over {n_runs} runs (best to worst)",
        )  # fmt: skip
    ax.plot(lrs, shown(combined), color=_LINE, lw=1.8, marker="o", ms=3, label=f"final {metric}, {how}")
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    # Like lr_find: the y range follows the learning rates that trained; diverged ones run off the top.
    ok = finite & np.array([n not in ("diverged", "stuck") for n in _worst_outcome(ds, lrs)])
    if np.any(ok):
        top, bottom = np.nanmax(shown(combined)[ok]), np.nanmin(shown(combined)[ok])
        if log_y:
            ax.set_ylim(bottom / 3, top * 30)
        else:
            pad = 0.1 * (top - bottom) or 1.0
            ax.set_ylim(bottom - pad, top + 3 * pad)
    ax.set_ylabel(f"final {metric}", fontsize=10)
    if found.lr is not None:
        k = int(np.flatnonzero(lrs == found.lr)[0])
        ax.axvline(found.lr, color=_SUGGEST, lw=1.6, ls="-", zorder=1)
        label = f"suggested lr {found.lr:.3g} ({found.method.replace('_', ' ')} on {metric}, {found.how})"
        if found.edge is not None:
            label += ": at the grid's edge"
        if np.isfinite(combined[k]):
            y_k = float(shown(combined[k : k + 1])[0])
            ax.plot(
                [found.lr],
                [y_k],
                marker="o",
                ms=8,
                mfc="none",
                mec=_SUGGEST,
                mew=2,
                lw=1.6,
                color=_SUGGEST,
                label=label,
            )
        else:
            ax.plot([], [], color=_SUGGEST, lw=1.6, label=label)
    if critical_lr is not None and np.isfinite(critical_lr):
        ax.axvline(
            critical_lr,
            color=_CRITICAL,
            lw=1.2,
            ls=(0, (5, 3)),
            zorder=1,
            label=f"critical lr {critical_lr:.3g} (theory)",
        )
    problem = ds.attrs.get("problem", "")
    title = f"{problem}: {int(ds.attrs['epochs']):,} epochs" if "epochs" in ds.attrs else str(problem)
    if "optimizer" in ds.attrs:
        title += f", {ds.attrs['optimizer']}"
    ax.set_title(title, fontsize=11, loc="left")
    ax.legend(fontsize=8.5, frameon=False, loc="best")
    ax.grid(True, which="major", color="#DDDDDD", lw=0.6)
    _style(ax)
    ax.tick_params(labelbottom=False)
    worst = _worst_outcome(ds, lrs)
    palette = [OUTCOME_COLORS[n] for n in SEVERITY]
    cmap = mcolors.ListedColormap(palette)
    codes = np.array([[SEVERITY.index(n) for n in worst]])
    strip.pcolormesh(_edges(lrs), [0, 1], codes, cmap=cmap, vmin=-0.5, vmax=len(SEVERITY) - 0.5)
    strip.set_yticks([])
    strip.set_xlabel("learning rate", fontsize=10)
    strip.set_ylabel("outcome", fontsize=8, rotation=0, ha="right", va="center")
    _style(strip)
    strip.spines["left"].set_visible(False)
    present = [n for n in SEVERITY if n in worst]
    strip.legend(
        handles=[Patch(color=OUTCOME_COLORS[n], label=n) for n in present],
        ncols=len(present), fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -1.6),
    )  # fmt: skip
    return fig


def _plot_map(ds: xr.Dataset, hyper: str, method: str, across: str) -> Figure:
    """lr x hyperparameter: the combined final metric per cell (log10 when positive), the joint
    suggestion (``answer.suggestion``) marked; other hyperparameter dims folded with ``across``."""
    found = answer.suggestion(ds, method, across)
    metric = found.metric
    values = np.asarray(ds[hyper].values)
    rows = [suggest.combined_loss(ds.isel({hyper: k}), across, metric) for k in range(values.size)]
    lrs = rows[0][0]
    grid = np.array([row[1] for row in rows], dtype=np.float64)
    grid = np.where(np.isfinite(grid), grid, np.nan)
    positive = bool(np.all(grid[np.isfinite(grid)] > 0))
    shown = np.log10(grid) if positive else grid
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    rev = "_r" if suggest.goal(ds, metric) == "max" else ""
    image = ax.pcolormesh(_edges(lrs), np.arange(values.size + 1) - 0.5, shown, cmap="viridis" + rev)
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(f"{'log10 ' if positive else ''}final {metric}, {found.how}  (blank: non-finite)", fontsize=9)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(values.size), [suggest.fmt(v) for v in values])
    ax.set_xlabel("learning rate", fontsize=10)
    ax.set_ylabel(hyper, fontsize=10)
    if found.lr is not None and found.point is not None:
        y = int(np.flatnonzero(values == found.point[hyper])[0])
        ax.plot([found.lr], [y], marker="o", ms=11, mfc="none", mec=_SUGGEST, mew=2.2, ls="none", label=found.text())
        ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    folded = [d for d in suggest.hyper_dims(ds) if d != hyper]
    extra = f", {across} over {' x '.join(folded)}" if folded else ""
    ax.set_title(f"{ds.attrs.get('problem', '')}: final {metric} by lr and {hyper}{extra}", fontsize=11, loc="left")
    _style(ax)
    return fig


def _plot_2d(ds: xr.Dataset, dims: list[str]) -> Figure:
    xdim, ydim = dims
    fig = Figure(figsize=(6.2, 5.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.log10(np.asarray(ds[xdim].values, dtype=np.float64))
    y = np.log10(np.asarray(ds[ydim].values, dtype=np.float64))
    xe, ye = np.log10(_edges(10**x)), np.log10(_edges(10**y))
    rest = [d for d in ds["outcome"].dims if d not in dims]
    if "score" in ds:
        score = ds["score"].astype(np.float64).fillna(np.inf)
        score = (score.max(rest) if rest else score).transpose(ydim, xdim).values
        logs = np.log10(np.clip(score, 1e-6, outcomes.SCORE_CLIP))
        # Each side of the boundary gets the whole of its half of the colour map.
        lo, hi = min(float(np.nanmin(logs)), -1e-3), max(float(np.nanmax(logs)), 1e-3)
        image = ax.pcolormesh(xe, ye, logs, cmap="RdBu_r", norm=mcolors.TwoSlopeNorm(0.0, lo, hi))
        bar = fig.colorbar(image, ax=ax, shrink=0.85)
        bar.set_ticks(sorted({round(lo, 2), round(lo / 2, 2), 0.0, round(hi / 2, 2), round(hi, 2)}))
        bar.set_label("log10 score  (< 0 trainable, > 0 diverged)", fontsize=9)
        if np.nanmin(logs) < 0 < np.nanmax(logs):
            ax.contour(x, y, logs, levels=[0.0], colors="k", linewidths=0.7)
        what = "score"
    else:
        codes = outcomes.codes(ds["outcome"].transpose(ydim, xdim, *rest)).reshape(y.size, x.size, -1)
        names = outcomes.names(codes)
        worst = np.array([[next(n for n in SEVERITY if n in set(c)) for c in row] for row in names])
        index = np.vectorize(SEVERITY.index)(worst)
        cmap = mcolors.ListedColormap([OUTCOME_COLORS[n] for n in SEVERITY])
        ax.pcolormesh(xe, ye, index, cmap=cmap, vmin=-0.5, vmax=len(SEVERITY) - 0.5)
        present = [n for n in SEVERITY if n in set(worst.ravel())]
        ax.legend(handles=[Patch(color=OUTCOME_COLORS[n], label=n) for n in present], fontsize=8, loc="lower left")
        what = "outcome"
    ax.set_xlabel(f"log10 learning rate of {xdim.removeprefix('lr_')}", fontsize=10)
    ax.set_ylabel(f"log10 learning rate of {ydim.removeprefix('lr_')}", fontsize=10)
    n_rest = int(np.prod([ds.sizes[d] for d in rest]))
    worst_text = f", worst over {n_rest} runs" if n_rest > 1 else ""
    if "epochs" in ds.attrs:
        worst_text += f", {int(ds.attrs['epochs']):,} epochs"
    ax.set_title(f"{ds.attrs.get('problem', '')}: {what}{worst_text}", fontsize=11, loc="left")
    ax.set_aspect("auto")
    return fig


def plot(
    result: xr.Dataset,
    *,
    method: str = "best",
    across: str = "worst",
    critical_lr: float | None = None,
) -> Figure:
    """A figure of a sweep's result (see the module docstring).

    Args:
      result: the Dataset of :func:`lrsweep.sweep` (summary or trajectory; a trajectory's final
        epoch is used): one ``lr`` dim, or two ``lr_<group>`` dims.
      method: the :func:`lrsweep.suggest_lr` method of the marked suggestion (its fallback when it
        cannot answer).
      across: how the runs at one lr combine (``"worst"``, ``"median"``, ``"mean"``, ``"best"``).
      critical_lr: theory's critical learning rate to mark (``lrsweep.theory.critical_lr``), or None.

    Returns:
      A ``matplotlib.figure.Figure``.

    Raises:
      ValueError: a result with neither one ``lr`` dim nor two ``lr_<group>`` dims, or bad
        ``method`` / ``across`` / ``critical_lr``.
    """
    if not isinstance(result, xr.Dataset) or "outcome" not in result:
        raise ValueError(f"result={type(result).__name__} is invalid: expected the xarray.Dataset of lrsweep.sweep()")
    if critical_lr is not None and not (isinstance(critical_lr, (int, float)) and critical_lr > 0):
        raise ValueError(f"critical_lr={critical_lr!r} is invalid: expected a number > 0 or None")
    if method not in suggest.METHODS:
        raise ValueError(f"method={method!r} is invalid: expected one of {list(suggest.METHODS)}")
    if across not in suggest.ACROSS:
        raise ValueError(f"across={across!r} is invalid: expected one of {list(suggest.ACROSS)}")
    groups = [d for d in result["outcome"].dims if str(d).startswith("lr_")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of never-trained configs
        hyper = suggest.hyper_dims(result) if "lr" in result.dims else []
        if hyper:
            return _plot_map(result, hyper[0], method, across)
        if "lr" in result.dims:
            return _plot_1d(result, method, across, critical_lr)
        if len(groups) == 2:
            return _plot_2d(result, [str(g) for g in groups])
    raise ValueError(
        f"result is invalid for plot: expected an 'lr' dim or two 'lr_<group>' dims, got dims {list(result['outcome'].dims)}"
    )
