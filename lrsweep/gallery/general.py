"""The gallery's general figures for any built-in problem and any learning-rate list.

    lrsweep figures --problem quadratic --lr log:1e-4:10:64 --out figs

The lesson gallery tells one story about one problem; these are the figures of it that make sense
for every problem: the first parameter and the loss over the epochs at every lr (a fan), the final
loss against lr with each run's outcome, the loss over lr x epoch, the outcome over lr x init (when
the problem can draw inits or has a scalar parameter to vary), and the loss landscape with paths
(when the problem has exactly two scalar parameters). Each is a PNG and an SVG named
``<problem>-<figure>``, written with the gallery's style.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.collections import LineCollection

import lrsweep

from ._style import (
    LR_CMAP,
    OKABE_ITO,
    RC,
    figure,
    fmt_lr,
    log_formatter,
    loss_curve,
    lr_edges,
    outcome_cmap,
    outcome_codes,
    outcome_legend,
    save,
)

DEFAULT_LR = "log:1e-4:10:64"
#: Inits drawn from a problem's sampler for the outcome map.
SAMPLED_INITS = 24
#: Result variables that are not parameters.
_NOT_PARAMS = ("loss", "outcome", "event_epoch")


def _resolve(problem: str) -> lrsweep.Problem:
    builtins = lrsweep.problems.BUILTINS
    if problem not in builtins:
        raise ValueError(f"--problem={problem!r} is invalid: expected one of {sorted(builtins)}")
    return builtins[problem]()


def _scalar_params(p: lrsweep.Problem) -> list[tuple[str, float]]:
    """``(name, initial value)`` of every top-level parameter that is a single number."""
    if not isinstance(p.init, dict):
        return []
    return [(str(k), float(np.asarray(v))) for k, v in p.init.items() if np.ndim(v) == 0]


def _first_param(ds) -> tuple[str, np.ndarray]:
    """The first parameter's first element per (lr, epoch) and its label, e.g. ``W1[0,0]``."""
    name = next(v for v in ds.data_vars if v not in _NOT_PARAMS)
    da = ds[name].isel(init=0)
    extra = [d for d in da.dims if d not in ("lr", "epoch")]
    da = da.isel({d: 0 for d in extra})
    label = name + (f"[{','.join('0' * len(extra))}]" if extra else "")
    return label, da.transpose("lr", "epoch").values.astype(np.float64)


def _lr_bar(fig, ax, mappable):
    cb = fig.colorbar(mappable, ax=ax, pad=0.01, aspect=30)
    cb.set_label("learning rate (log scale)")
    cb.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    return cb


def fig_fan(name: str, ds, out: Path) -> list[Path]:
    """The first parameter and the loss over the epochs at every lr, coloured by lr: which lrs
    crawl, which settle, which blow up (the parameter on a symmetric log scale, since it may)."""
    lrs = ds.lr.values
    epochs = ds.epoch.values
    label, param = _first_param(ds)
    loss = ds.loss.isel(init=0).values.astype(np.float64)
    norm = mcolors.LogNorm(lrs.min(), lrs.max()) if lrs.size > 1 and lrs.min() < lrs.max() else None
    fig = figure()
    ax, ax2 = fig.subplots(1, 2)
    x = epochs + 1  # epoch 0 on a log axis
    for a, values in ((ax, param), (ax2, loss)):
        keep = np.isfinite(values)
        lc = LineCollection(
            [np.column_stack([x[k], row[k]]) for row, k in zip(values, keep)], cmap=LR_CMAP, norm=norm, linewidths=1.6
        )
        lc.set_array(lrs)
        a.add_collection(lc)
        a.set_xscale("log")
        a.set_xlim(1, x[-1])
        a.set_xlabel("epoch + 1 (log scale)")
    finite = param[np.isfinite(param)]
    span = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(-span * 1.5, span * 1.5)
    ax.set_ylabel(f"{label} (symmetric log scale)")
    ax.set_title(f"The parameter {label}", fontsize=17)
    positive = loss[np.isfinite(loss) & (loss > 0)]
    ax2.set_yscale("log")
    if positive.size:
        ax2.set_ylim(positive.min() / 2, positive.max() * 2)
    ax2.set_ylabel("loss (log scale)")
    ax2.set_title("The loss", fontsize=17)
    fig.suptitle(f"{name}: {lrs.size} learning rates over {epochs[-1]} epochs")
    _lr_bar(fig, [ax, ax2], lc)
    return save(fig, out, f"{name}-fan")


def fig_final_loss(name: str, ds, out: Path) -> list[Path]:
    """Final loss against lr, diverged runs as markers at the top, and each run's outcome below it:
    where the usable lrs are and where training breaks."""
    lrs = ds.lr.values
    loss = ds.loss.isel(init=0, epoch=-1).values.astype(np.float64)
    outcome = lrsweep.outcome_names(ds.outcome.isel(init=0).values)
    # The scale follows the runs that did not diverge; the diverged ones are markers at the top.
    finite = loss[np.isfinite(loss) & (loss > 0) & (outcome != "diverged")]
    floor = float(finite.min()) / 3 if finite.size else 1e-12
    top = float(finite.max()) * 30 if finite.size else 1.0
    fig = figure((12.8, 7.2))
    gs = fig.add_gridspec(2, 1, height_ratios=[10, 0.9])
    ax = fig.add_subplot(gs[0])
    strip = fig.add_subplot(gs[1], sharex=ax)
    style = dict(color=OKABE_ITO["blue"], marker="o", ms=4, label="final loss")
    loss_curve(ax, lrs, loss, style, floor, top, ms=7, label="diverged (plotted at the top)", off=outcome == "diverged")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, top * 3)
    ax.set_ylabel(f"final loss after {int(ds.epoch.values[-1])} epochs")
    ax.set_title(f"{name}: final loss against learning rate ({lrs.size} lrs)")
    ax.tick_params(labelbottom=False)
    ax.legend(loc="upper left", fontsize=13)
    _names, cmap, norm = outcome_cmap()
    strip.pcolormesh(lr_edges(lrs), [0, 1], outcome_codes(outcome)[None, :], cmap=cmap, norm=norm, rasterized=True)
    strip.set_yticks([])
    strip.grid(False)
    strip.set_xlabel("learning rate (log scale)")
    strip.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.add_artist(
        outcome_legend(ax, loc="lower left", present=set(outcome.tolist()), ncols=4, fontsize=12.5, title_fontsize=12.5)
    )
    ax.legend(loc="upper left", fontsize=13)
    return save(fig, out, f"{name}-final-loss-vs-lr")


def fig_heatmap(name: str, ds, out: Path) -> list[Path]:
    """The loss over lr x epoch (log colour scale; black: 0, white: inf or NaN): how fast each lr
    gets where, and when the unstable ones leave."""
    lrs = ds.lr.values
    epochs = ds.epoch.values
    loss = ds.loss.isel(init=0).values.astype(np.float64)
    positive = loss[np.isfinite(loss) & (loss > 0)]
    vmin = 10.0 ** np.floor(np.log10(positive.min())) if positive.size else 1e-12
    vmax = 10.0 ** np.ceil(np.log10(positive.max())) if positive.size else 1.0
    cmap = matplotlib.colormaps["viridis"].with_extremes(under="black", bad="white")
    fig = figure()
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        np.arange(epochs.size + 1) - 0.5,
        lr_edges(lrs) if lrs.size > 1 else [lrs[0] / 1.5, lrs[0] * 1.5],
        np.where(loss > 0, loss, 0.0),
        cmap=cmap,
        norm=mcolors.LogNorm(vmin, vmax),
        rasterized=True,
    )
    ax.set_yscale("log")
    ax.grid(False)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (log scale)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.set_title(f"{name}: loss over learning rate and epoch ({lrs.size} lrs x {epochs[-1]} epochs)")
    fig.colorbar(mesh, ax=ax, pad=0.02, aspect=30).set_label("loss (log scale)")
    return save(fig, out, f"{name}-loss-heatmap")


def fig_outcome_map(name: str, p: lrsweep.Problem, lrs: np.ndarray, epochs: int, out: Path) -> list[Path]:
    """The outcome over lr x init: inits drawn by the problem's sampler (one row each), or else the
    first scalar parameter's start moved around its own value. Shows whether the start moves the
    edge of stability. Returns no files when the problem has neither."""
    scalars = _scalar_params(p)
    if p.sampler is not None:
        ds = lrsweep.sweep(p, lrs, init=SAMPLED_INITS, epochs=epochs, record="summary", progress=False)
        y_label, y_edges = f"init drawn by the sampler (seed 0), {SAMPLED_INITS} of them", np.arange(SAMPLED_INITS + 1)
        outcome = lrsweep.outcome_names(ds.outcome.transpose("init", "lr").values)
    elif scalars:
        param, start = scalars[0]
        values = start + np.linspace(-10.0, 10.0, 41) * max(1.0, abs(start))
        ds = lrsweep.sweep(
            p, lrs, init=lrsweep.init_grid(**{param: values}), epochs=epochs, record="summary", progress=False
        )
        step = (values[1] - values[0]) / 2
        y_label, y_edges = f"initial {param} (others at their start)", np.append(values - step, values[-1] + step)
        outcome = lrsweep.outcome_names(ds.outcome.transpose(f"init_{param}", "lr").values)
    else:
        return []
    _names, cmap, norm = outcome_cmap()
    fig = figure()
    ax = fig.add_subplot()
    ax.pcolormesh(lr_edges(lrs), y_edges, outcome_codes(outcome), cmap=cmap, norm=norm, rasterized=True)
    ax.set_xscale("log")
    ax.grid(False)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(y_label)
    ax.set_title(f"{name}: outcome over learning rate x init ({outcome.size} runs, {epochs} epochs)")
    outcome_legend(ax, loc="upper left", present=set(outcome.ravel().tolist()), ncols=4, fontsize=13)
    return save(fig, out, f"{name}-outcome-map")


def fig_landscape(name: str, p: lrsweep.Problem, ds, out: Path) -> list[Path]:
    """For a problem with exactly two scalar parameters: contours of the loss over both (the loss at
    epoch 0 of a sweep over a grid of inits, so the engine computes it) with the paths of up to
    four lrs. Returns no files for any other problem."""
    scalars = _scalar_params(p)
    if len(scalars) != 2 or len(jax.tree.leaves(p.init)) != 2:
        return []
    (a, a0), (b, b0) = scalars
    lrs = ds.lr.values
    shown = lrs[np.unique(np.linspace(0, lrs.size - 1, min(4, lrs.size)).round().astype(int))]
    paths = {lr: (ds[a].sel(lr=lr).isel(init=0).values, ds[b].sel(lr=lr).isel(init=0).values) for lr in shown}
    # A frame around the start and the minimum (paths that leave it are cut at its edge): the runs
    # that blow up would otherwise stretch it until the valley is a dot.
    start = np.array([a0, b0])
    if p.minimum is not None:
        end = np.array([float(np.asarray(p.minimum[a])), float(np.asarray(p.minimum[b]))])
    else:
        end = start
    centre = (start + end) / 2
    half = np.full(2, max(1.0, 0.75 * float(np.max(np.abs(end - start)))))
    ga = np.linspace(centre[0] - half[0], centre[0] + half[0], 61)
    gb = np.linspace(centre[1] - half[1], centre[1] + half[1], 61)
    grid = lrsweep.sweep(p, lrs[0], init=lrsweep.init_grid(**{a: ga, b: gb}), epochs=1, progress=False)
    z = grid.loss.isel(lr=0, epoch=0).transpose(f"init_{b}", f"init_{a}").values.astype(np.float64)
    z = np.log10(np.maximum(z, max(float(np.nanmin(z[z > 0])) if (z > 0).any() else 1e-12, 1e-12)))
    fig = figure()
    ax = fig.add_subplot()
    filled = ax.contourf(ga, gb, z, levels=16, cmap="Greys")
    with warnings.catch_warnings():
        # matplotlib < 3.10 cannot rasterize a contour set: it warns and draws vectors, which is fine.
        warnings.filterwarnings("ignore", message="Rasterization of", category=UserWarning)
        filled.set_rasterized(True)
    norm = mcolors.LogNorm(lrs.min(), lrs.max()) if lrs.min() < lrs.max() else None
    for lr, (wa, wb) in paths.items():
        color = LR_CMAP(norm(lr)) if norm is not None else OKABE_ITO["blue"]
        ax.plot(wa, wb, color=color, marker="o", ms=3, lw=1.6, label=f"lr {fmt_lr(lr)}")
    ax.plot([a0], [b0], marker="s", ms=9, color="black", ls="none", label="start")
    ax.set_xlim(ga[0], ga[-1])
    ax.set_ylim(gb[0], gb[-1])
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.grid(False)
    ax.legend(loc="upper right", fontsize=13)
    ax.set_title(f"{name}: the loss over ({a}, {b}) and the path of {len(paths)} learning rates")
    fig.colorbar(filled, ax=ax, pad=0.02, aspect=30).set_label("log10 loss")
    return save(fig, out, f"{name}-landscape")


def build_problem_figures(problem: str, lr=DEFAULT_LR, out_dir="figures", epochs: int = 1000) -> list[Path]:
    """Sweep ``problem`` (a built-in name) over ``lr`` (a list or a spec such as ``'log:1e-4:10:64'``)
    for ``epochs`` epochs (autodiff, float32) and write its general figures into ``out_dir``;
    return the files written, sorted."""
    p = _resolve(problem)
    lrs = lrsweep.parse_lr(lr)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--epochs={epochs!r} is invalid: expected a positive integer")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with matplotlib.rc_context(RC):
        ds = lrsweep.sweep(p, lrs, epochs=epochs, progress=False)
        paths += fig_fan(problem, ds, out)
        paths += fig_final_loss(problem, ds, out)
        paths += fig_heatmap(problem, ds, out)
        paths += fig_outcome_map(problem, p, lrs, epochs, out)
        paths += fig_landscape(problem, p, ds, out)
    return sorted(paths)
