"""The lesson's problem across many learning rates, and beyond it: the figures that show why.

- ``03-weight-fan``: the weight over 1000 epochs at 64 lrs, below and above the critical one;
- ``04-final-loss-vs-lr``: final loss against lr, exact vs forward-difference gradient, with outcomes;
- ``05-loss-heatmap``: the loss over lr x epoch;
- ``07-outcome-map``: the outcome over lr x initial weight;
- ``09-chapter-net``: the chapter's 2-3-1 network at 33 lrs;
- ``10-optimizers``: gradient descent, momentum and Adam on a quadratic bowl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.collections import LineCollection

import lrsweep

from ._data import BOWL_COND, EPOCHS, Data
from ._style import (
    LESSON_LRS,
    LR_CMAP,
    OKABE_ITO,
    figure,
    log_formatter,
    loss_curve,
    lr_edges,
    note,
    outcome_cmap,
    outcome_codes,
    outcome_legend,
    pow10,
    save,
)


def _lr_colorbar(fig, ax, mappable, data: Data, label="learning rate (log scale)"):
    """A log lr colour bar with the critical lr marked and labelled (decade ticks too close to it dropped)."""
    cb = fig.colorbar(mappable, ax=ax, pad=0.01, aspect=30)
    cb.set_label(label)
    # The two-line critical tick label is wider than the others and ran into the label on the
    # right; the label goes on the bar's left, where nothing else is.
    cb.ax.yaxis.set_label_position("left")
    lo, hi = mappable.norm.vmin, mappable.norm.vmax
    ticks = [
        t for t in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0) if lo <= t <= hi and abs(np.log10(t / data.critical)) > 0.25
    ]
    cb.set_ticks(ticks + [data.critical], labels=[f"{t:g}" for t in ticks] + [f"critical\n{data.critical:.4f}"])
    cb.ax.minorticks_off()
    cb.ax.axhline(data.critical, color="black", lw=3)
    cb.ax.axhline(data.critical, color="white", lw=1.2, ls=(0, (3, 2)))
    return cb


def fig_fan(data: Data, out: Path) -> list[Path]:
    """The weight over 1000 epochs at 64 lrs, coloured by lr: left the stable ones (crawl, overshoot,
    settle), right |w| of the unstable ones on a log scale (explode, then freeze above |w| = 2048)."""
    ds = data.traj.sel(lr=data.fan_lrs)
    lrs = ds.lr.values
    w = ds.w.isel(init=0).values[:, 1:].astype(np.float64)
    epochs = np.arange(1, EPOCHS + 1)
    norm = mcolors.LogNorm(lrs[0], lrs[-1])
    stable = lrs < data.critical
    fig = figure()
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.75, 1])
    lc = LineCollection([np.column_stack([epochs, row]) for row in w[stable]], cmap=LR_CMAP, norm=norm, linewidths=1.6)
    lc.set_array(lrs[stable])
    lc.set_rasterized(True)
    ax.add_collection(lc)
    ax.axhline(3.0, color="black", lw=1.8, ls="--")
    ax.text(1.15, 3.1, "target w = 3", va="bottom", fontsize=14)
    ax.set_xscale("log")
    ax.set_xlim(1, EPOCHS)
    ax.set_ylim(-0.1, 5.0)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("weight w")
    ax.set_title(f"{stable.sum()} lrs below the critical {data.critical:.4f}", fontsize=17)
    note(ax, 0.98, 0.04, "small lrs crawl,\nlarger ones overshoot,\noscillate and settle")
    up = ~stable
    lc2 = LineCollection(
        [np.column_stack([epochs, np.abs(row)]) for row in w[up]], cmap=LR_CMAP, norm=norm, linewidths=1.6
    )
    lc2.set_array(lrs[up])
    lc2.set_rasterized(True)
    ax2.add_collection(lc2)
    ax2.axhline(2048, color="black", lw=1.5, ls=":")
    ax2.text(
        EPOCHS * 0.9,
        2048 / 1.35,
        "|w| = 2048: above it float32\nabsorbs the nudge h = 1e-4",
        fontsize=12.5,
        va="top",
        ha="right",
    )
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlim(1, EPOCHS)
    ax2.set_ylim(1e-1, 1e6)
    ax2.set_xlabel("epoch (log scale)")
    ax2.set_ylabel("|w| (log scale)")
    ax2.set_title(f"{up.sum()} lrs above it", fontsize=17)
    note(ax2, 0.96, 0.04, "|w| explodes; most\nthen freeze (stuck)")
    fig.suptitle(f"The weight over 1000 epochs at {lrs.size} learning rates from 0.001 to 1")
    _lr_colorbar(fig, [ax, ax2], lc, data)
    return save(fig, out, "03-weight-fan")


def fig_final_loss(data: Data, out: Path) -> list[Path]:
    """Final loss against lr for the exact and the forward-difference gradient, theory's critical and
    optimal lr and ``suggest_lr`` marked, a zoom on the edge of stability, and each run's outcome below."""
    fig = figure((12.8, 8.0))
    gs = fig.add_gridspec(3, 1, height_ratios=[10, 0.9, 0.9])
    ax = fig.add_subplot(gs[0])
    strips = [fig.add_subplot(gs[1], sharex=ax), fig.add_subplot(gs[2], sharex=ax)]
    styles: dict[str, dict[str, Any]] = {
        "autodiff": dict(color=OKABE_ITO["blue"], ls="-", label="autodiff (exact gradient)"),
        "forward": dict(color=OKABE_ITO["orange"], ls="--", label="forward difference (the lesson's)"),
    }
    floor = 1e-16
    top = 1e12
    for grad, ds in data.final.items():
        lrs = ds.lr.values
        loss = ds.loss.isel(init=0, epoch=-1).values.astype(np.float64)
        loss_curve(ax, lrs, loss, styles[grad], floor, top, ms=7, label=f"{grad}: final loss overflowed (inf or NaN)")
    sug = lrsweep.suggest_lr(data.final["autodiff"], "largest_stable")
    marks = [
        (data.critical, "black", "-", f"theory: critical lr 2/λmax = {data.critical:.4f}"),
        (data.optimal, OKABE_ITO["green"], (0, (6, 3)), f"theory: optimal lr 2/(λmax+λmin) = {data.optimal:.4f}"),
        (sug, OKABE_ITO["purple"], (0, (1.5, 1.5)), f"suggest_lr(largest_stable) = {sug:.4f}"),
    ]
    for x, c, ls, label in marks:
        ax.axvline(x, color=c, ls=ls, lw=2.2, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, top * 3)
    ax.set_xlim(1e-4, 10)
    ax.set_ylabel("final loss after 1000 epochs (MSE)")
    ax.set_title("Final loss against learning rate: 256 lrs, exact vs forward-difference gradient")
    ax.tick_params(labelbottom=False)
    # Zoom on the edge of stability, where the three marks nearly coincide.
    ins = ax.inset_axes((0.70, 0.07, 0.28, 0.36))
    for grad, ds in data.final.items():
        lrs = ds.lr.values
        loss = ds.loss.isel(init=0, epoch=-1).values.astype(np.float64)
        sel = (lrs > 0.105) & (lrs < 0.135) & np.isfinite(loss)
        ins.plot(
            lrs[sel],
            np.maximum(loss[sel], floor),
            marker="o",
            ms=4,
            **{k: v for k, v in styles[grad].items() if k != "label"},
        )
    for x, c, ls, _ in marks:
        ins.axvline(x, color=c, ls=ls, lw=2)
    ins.set_yscale("log")
    ins.set_xlim(0.105, 0.135)
    ins.set_title("zoom: lr 0.105 to 0.135", fontsize=13, fontweight="normal")
    ins.tick_params(labelsize=11)
    ins.set_xticks([0.11, 0.12, 0.13])
    ins.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ins.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    _names, cmap, norm = outcome_cmap()
    present = set()
    for strip, (grad, ds) in zip(strips, data.final.items()):
        lrs = ds.lr.values
        outcome = lrsweep.outcome_names(ds.outcome.isel(init=0).values)
        present |= set(outcome.tolist())
        strip.pcolormesh(lr_edges(lrs), [0, 1], outcome_codes(outcome)[None, :], cmap=cmap, norm=norm, rasterized=True)
        strip.set_yticks([0.5], labels=[grad])
        strip.tick_params(axis="y", length=0)
        strip.grid(False)
    strips[0].tick_params(labelbottom=False)
    strips[1].set_xlabel("learning rate (log scale)")
    strips[1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    # Two legends on one axes: keep the lines' legend as an artist, then add the outcomes'.
    ax.add_artist(ax.legend(loc="upper left", fontsize=12.5))
    outcome_legend(ax, loc="lower left", present=present, ncols=4, fontsize=12.5, title_fontsize=12.5)
    return save(fig, out, "04-final-loss-vs-lr")


def fig_heatmap(data: Data, out: Path) -> list[Path]:
    """The loss of 128 lrs over 1000 epochs as a heat map: where, and how fast, the loss falls or explodes."""
    ds = data.traj.sel(lr=data.heat_lrs)
    lrs = ds.lr.values
    loss = ds.loss.isel(init=0).values[:, 1:].astype(np.float64)  # epochs 1..1000
    positive = loss[np.isfinite(loss) & (loss > 0)]
    vmin = 10.0 ** np.floor(np.log10(positive.min()))
    vmax = 10.0 ** np.ceil(np.log10(positive.max()))
    cmap = matplotlib.colormaps["viridis"].with_extremes(under="black", bad="white")
    fig = figure()
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        np.arange(EPOCHS + 1) + 0.5,
        lr_edges(lrs),
        np.where(loss > 0, loss, 0.0),
        cmap=cmap,
        norm=mcolors.LogNorm(vmin, vmax),
        rasterized=True,
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, EPOCHS)
    ax.grid(False)
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("learning rate (log scale)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.set_title(f"Loss over learning rate and epoch: {lrs.size} lrs x 1000 epochs")
    ax.axhline(data.critical, color="white", lw=2.5, ls="--")
    ax.text(
        1.15,
        data.critical * 1.08,
        f"critical lr 2/λmax = {data.critical:.4f}",
        color="white",
        fontsize=15,
        va="bottom",
        fontweight="bold",
    )
    sec = ax.secondary_yaxis("right")
    sec.set_yticks(list(LESSON_LRS), labels=[f"lesson {lr:g}" for lr in LESSON_LRS])
    sec.tick_params(length=8, width=2)
    sec.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    cb = fig.colorbar(mesh, ax=ax, pad=0.02, aspect=30)
    cb.set_label("loss (MSE, log scale)")
    box = dict(boxstyle="round", fc="white", ec="0.6", alpha=0.9)
    ax.text(
        0.97,
        0.80,
        "above the critical lr the loss explodes\nwithin a few epochs, then stays (stuck)",
        transform=ax.transAxes,
        ha="right",
        va="center",
        fontsize=14,
        bbox=box,
    )
    ax.text(
        0.03,
        0.06,
        "below it the loss falls, the faster the larger the lr;\n"
        "the darkest cells reached the forward difference's floor",
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=14,
        bbox=box,
    )
    return save(fig, out, "05-loss-heatmap")


def fig_outcome_map(data: Data, out: Path) -> list[Path]:
    """The outcome over lr x initial weight: the edge of stability does not move with the start, and
    far-away starts are stuck at any lr (float32 absorbs the nudge)."""
    ds = data.outcome_map
    lrs = ds.lr.values
    outcome = lrsweep.outcome_names(ds.outcome.transpose("lr", "init_w").values)
    pos = data.init_w[data.init_w > 0]
    e = lr_edges(pos)
    x_edges = np.concatenate([-e[::-1], e])  # the zero cell spans (-e[0], e[0])
    _names, cmap, norm = outcome_cmap()
    fig = figure((12.8, 7.6))
    ax = fig.add_subplot()
    ax.pcolormesh(x_edges, lr_edges(lrs), outcome_codes(outcome), cmap=cmap, norm=norm, rasterized=True)
    ax.set_xscale("symlog", linthresh=e[0], linscale=0.15)
    ax.set_yscale("log")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.grid(False)
    ticks = [-1e5, -1e3, -10, -0.1, 0, 0.1, 10, 1e3, 1e5]
    ax.set_xticks(
        ticks,
        labels=[
            f"{t:g}" if 0 < abs(t) < 100 or t == 0 else ("−" if t < 0 else "") + pow10(round(np.log10(abs(t))))
            for t in ticks
        ],
    )
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.set_xlabel("initial weight w0 (symmetric log scale; b0 = 0)")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_title(f"Outcome over learning rate x initial weight ({lrs.size} x {data.init_w.size} runs, 1000 epochs)")
    ax.axhline(data.critical, color="white", lw=2.5, ls="--")
    ax.text(
        0.2, data.critical * 1.12, f"critical lr {data.critical:.4f}", color="white", fontsize=14, fontweight="bold"
    )
    absorb = 2048.0  # float32 spacing is 2^-12 > 2e-4 from here up: w + 1e-4 rounds back to w
    for s in (-1, 1):
        ax.axvline(s * absorb, color="black", lw=1.8, ls=":")
    box = dict(boxstyle="round", fc="white", ec="0.5", alpha=0.9)
    ax.text(
        0.5,
        0.93,
        "above the critical lr the runs blow up, then freeze (stuck);\n"
        "dotted: |w| = 2048, beyond which float32 absorbs the nudge h = 1e-4,\n"
        "so far-away starts are stuck at any lr",
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=13,
        bbox=box,
    )
    ax.plot([0.0, 0.0, 0.0], [0.01, 0.1, 1.0], marker="o", ms=10, mec="black", mfc="white", ls="none")
    ax.annotate(
        "the lesson's runs\n(w0 = 0; lr 0.01, 0.1, 1)",
        xy=(0.0, 0.01),
        xytext=(60, 1.5e-3),
        fontsize=12.5,
        ha="center",
        arrowprops=dict(arrowstyle="->", lw=1.5),
        bbox=box,
    )
    outcome_legend(ax, loc="lower left", present=set(outcome.ravel().tolist()), ncols=2, fontsize=13)
    return save(fig, out, "07-outcome-map")


def fig_chapter_net(data: Data, out: Path) -> list[Path]:
    """The chapter's 2-3-1 network's loss per epoch at 33 lrs, the notebook's lr 0.01 in black."""
    ds = data.net
    lrs = ds.lr.values
    loss = ds.loss.isel(init=0).values.astype(np.float64)
    epochs = ds.epoch.values
    floor = 1e-12
    fig = figure()
    ax = fig.add_subplot()
    norm = mcolors.LogNorm(lrs[0], lrs[-1])
    lc = LineCollection(
        [np.column_stack([epochs, np.maximum(row, floor)]) for row in loss],
        cmap=LR_CMAP,
        norm=norm,
        linewidths=2.0,
        alpha=0.9,
    )
    lc.set_array(lrs)
    ax.add_collection(lc)
    k = int(np.argmin(np.abs(lrs - 0.01)))
    ax.plot(
        epochs, loss[k], color="black", lw=3.5, label=f"lr {lrs[k]:g}: the notebook's run (first loss {loss[k, 0]:.4f})"
    )
    ax.set_yscale("log")
    ax.set_xlim(0, epochs[-1])
    ax.set_ylim(1e-10, 1e10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (squared error)")
    ax.set_title(f"The chapter's 2-3-1 network: loss per epoch at {lrs.size} learning rates")
    outcome = lrsweep.outcome_names(ds.outcome.isel(init=0).values)
    counts = ", ".join(f"{(outcome == n).sum()} {n}" for n in lrsweep.OUTCOMES if (outcome == n).any())
    ax.legend(loc="upper left", fontsize=14)
    note(ax, 0.985, 0.66, f"{counts}\n(forward difference, 100 epochs)", va="center")
    cb = fig.colorbar(lc, ax=ax, pad=0.01, aspect=30)
    cb.set_label("learning rate (log scale)")
    cb.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    return save(fig, out, "09-chapter-net")


def fig_optimizers(data: Data, out: Path) -> list[Path]:
    """Final loss against lr for gd, momentum and Adam on a quadratic bowl, with theory's critical
    lrs for gd and momentum: where each optimizer's usable lrs lie."""
    styles = {
        "gd": dict(color=OKABE_ITO["blue"], ls="-", label="gradient descent"),
        "momentum": dict(color=OKABE_ITO["orange"], ls="--", label="heavy-ball momentum 0.9"),
        "adam": dict(color=OKABE_ITO["green"], ls="-.", label="Adam"),
    }
    floor, top = 1e-30, 1e12
    fig = figure()
    ax = fig.add_subplot()
    for opt, ds in data.bowl_runs.items():
        lrs = ds.lr.values
        loss = ds.loss.isel(init=0).values.astype(np.float64)
        # A diverged run's finite but huge loss would join the line with a vertical spike at the
        # critical lr, over theory's mark: every diverged run is a marker at the top instead.
        diverged = lrsweep.outcome_names(ds.outcome.isel(init=0).values) == "diverged"
        loss_curve(ax, lrs, loss, styles[opt], floor, top, ms=6, off=diverged)
    for opt, ls in (("gd", "-"), ("momentum", "--")):
        crit = data.bowl_critical[opt]
        ax.axvline(crit, color=styles[opt]["color"], ls=ls, lw=1.8, alpha=0.8)
        ax.text(
            crit * (0.93 if opt == "gd" else 1.07),
            1e-25,
            f"theory: {opt} critical\n{crit:.3g}",
            ha="right" if opt == "gd" else "left",
            fontsize=13,
            color=styles[opt]["color"],
        )
    ax.plot([], [], marker="^", ls="none", color="0.3", label="diverged (final loss huge, inf or NaN)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-4, 10)
    ax.set_ylim(1e-27, top * 10)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_formatter))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("final loss after 500 epochs")
    ax.set_title(f"Optimizers on a quadratic bowl (curvatures 1 and {BOWL_COND:g})")
    ax.legend(loc="upper left", fontsize=14)
    return save(fig, out, "10-optimizers")
