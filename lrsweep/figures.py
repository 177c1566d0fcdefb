"""The lecture figure gallery, regenerated from real sweeps by one command.

    lrsweep figures --out figures        # or: python -m lrsweep.figures --out figures

:func:`build_gallery` runs every sweep the figures need through the public API (``lrsweep.sweep``,
``lrsweep.trace``, ``lrsweep.theory``, ``lrsweep.suggest_lr``, ``lrsweep.problems``,
``lrsweep.init_grid``; nothing here trains anything itself) and writes, into one folder:

- ``01-lesson-weight-lr*.png`` / ``.svg`` and ``01-lesson-weight-panel``: the lesson's three
  weight-vs-epoch plots (its titles and axis labels), one each and side by side;
- ``02-lesson-table-lr*``: the lesson's 10-epoch printouts as tables, and ``lesson-tables.md``;
- ``03`` to ``10``: the figures that show why (a fan of 64 learning rates, final loss against lr, a
  loss heatmap over lr x epoch, the loss landscape with trajectories, an outcome map over lr x
  initial weight, float32 absorption at lr = 1, the chapter's 2-3-1 network, optimizers on a bowl);
- ``11-landscape-animation.gif``: trajectories on the landscape as the epochs advance;
- ``explorer.html``: one self-contained page (data embedded as JSON, inline JavaScript on
  ``<canvas>``, no network) with a learning-rate slider;
- ``README.md``: every figure, a caption saying what a student should see, and this command.

Every file is deterministic: a rerun on the same machine writes the same bytes (fixed rcParams,
``svg.hashsalt``, no dates or software versions in PNG/SVG metadata, fixed sizes and dpi, no
timestamps in the HTML). Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg
renderer, never through pyplot, so building the gallery leaves matplotlib's global state alone.

>>> _float32_repr(np.float32(2.984288454055786))
'2.9842885'
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import sys
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import PIL.Image
from matplotlib import colors as mcolors
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import lrsweep
from lrsweep.notebook import final_params_line, trace_lines

# --- style -------------------------------------------------------------------------------------

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
OUTCOME_COLORS = {
    "converged": OKABE_ITO["green"],
    "unfinished": OKABE_ITO["sky"],
    "diverged": OKABE_ITO["vermillion"],
    "stuck": OKABE_ITO["purple"],
}
#: The lesson's learning rates and the two either side of the critical one, each with one colour.
LR_COLORS = {
    0.01: OKABE_ITO["blue"],
    0.1: OKABE_ITO["orange"],
    0.1198: OKABE_ITO["green"],
    0.12: OKABE_ITO["purple"],
    1.0: OKABE_ITO["vermillion"],
}
LESSON_LRS = (0.01, 0.1, 1.0)
#: viridis without its lightest yellows, which vanish on white.
LR_CMAP = mcolors.ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.82, 256)), name="viridis_dark")
#: The notebook's plot titles, word for word (lesson.md).
LESSON_TITLES = {
    0.01: "Weight value over increasing epochs",
    0.1: "Weight value over increasing epochs with learning rate of 0.1",
    1.0: "Weight value over increasing epochs with learning rate of 1",
}
SLIDE = (12.8, 7.2)  # inches; at DPI, 1280 x 720 pixels (a 720p slide)
DPI = 100
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 16,
    "axes.titlesize": 19,
    "axes.titleweight": "bold",
    "axes.labelsize": 17,
    "xtick.labelsize": 15,
    "ytick.labelsize": 15,
    "legend.fontsize": 14,
    "legend.framealpha": 0.92,
    "figure.titlesize": 20,
    "figure.titleweight": "bold",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "lines.linewidth": 2.4,
    "axes.linewidth": 1.2,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values())),
    "image.cmap": "viridis",
    "svg.hashsalt": "lrsweep-figures",
    "svg.fonttype": "path",
    "path.simplify": False,
}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}

EPOCHS = 1000
#: The lesson's arithmetic: forward differences, float32 parameters, float64 loss and update.
LESSON = {"grad": "forward", "precision": "mixed"}
EXPLORER_LRS = 100
BOWL_DIM, BOWL_COND = 2, 100.0
TRAJ_CHUNK = 1024
GIF_MAX_BYTES = 2_000_000


def _float32_repr(v) -> str:
    """The shortest decimal that reads back as the same float32 (as numpy prints it)."""
    return str(np.float32(v))


def _fmt_lr(lr: float) -> str:
    return f"{lr:.4g}"


def _figure(size=SLIDE, **kwargs) -> Figure:
    return Figure(figsize=size, dpi=DPI, layout="constrained", **kwargs)


def _save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """``stem.png`` (slides) and ``stem.svg`` (print, scaling), both without dates or versions.

    The PNG is stored with a 256-colour palette (median cut, no dithering): these flat-colour
    figures look the same and take about a third of the bytes.
    """
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    _plain_log_labels(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=PNG_METADATA)
    buf.seek(0)
    with PIL.Image.open(buf) as im:
        quantized = im.convert("RGB").quantize(256, method=PIL.Image.Quantize.MEDIANCUT, dither=PIL.Image.Dither.NONE)
    quantized.save(png, format="png")
    fig.set_layout_engine("none")  # keep the layout just computed: the SVG is the same figure
    fig.savefig(svg, format="svg", metadata=SVG_METADATA)
    return [png, svg]


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _pow10(k: int) -> str:
    """``10`` with a superscript exponent in plain Unicode (DejaVu Sans has the glyphs), not mathtext."""
    return "10" + str(int(k)).translate(_SUPERSCRIPT)


class _Pow10Formatter(matplotlib.ticker.LogFormatter):
    """Log-axis tick labels like matplotlib's default (10⁻³ at the decades), as plain text.

    Mathtext (``$10^{-3}$``) is parsed by pyparsing on every draw and was a third of the gallery's
    drawing time; Unicode superscripts look the same.
    """

    def __call__(self, x, pos=None):
        label = super().__call__(x, pos)
        if not label or x == 0:
            return label
        exponent = math.log10(abs(x))
        if abs(exponent - round(exponent)) < 1e-10:
            return ("−" if x < 0 else "") + _pow10(round(exponent))
        return label


def _plain_log_labels(fig: Figure) -> None:
    """Swap every default (mathtext) log-axis formatter of ``fig`` for :class:`_Pow10Formatter`."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for get, put in (
                (axis.get_major_formatter, axis.set_major_formatter),
                (axis.get_minor_formatter, axis.set_minor_formatter),
            ):
                f = get()
                if type(f) is matplotlib.ticker.LogFormatterSciNotation:
                    put(
                        _Pow10Formatter(
                            base=f._base,
                            labelOnlyBase=f.labelOnlyBase,
                            minor_thresholds=f.minor_thresholds,
                            linthresh=f._linthresh,
                        )
                    )


def _lr_edges(lrs: np.ndarray) -> np.ndarray:
    """Cell edges for log-spaced centres: geometric midpoints, extended by half a step at the ends."""
    lg = np.log10(lrs)
    mid = (lg[1:] + lg[:-1]) / 2
    return 10 ** np.concatenate([[lg[0] - (mid[0] - lg[0])], mid, [lg[-1] + (lg[-1] - mid[-1])]])


def _outcome_cmap():
    names = list(lrsweep.OUTCOMES)
    return (
        names,
        mcolors.ListedColormap([OUTCOME_COLORS[n] for n in names]),
        mcolors.BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names)),
    )


def _outcome_codes(outcome: np.ndarray) -> np.ndarray:
    names = list(lrsweep.OUTCOMES)
    return np.vectorize(names.index, otypes=[np.int64])(outcome)


def _outcome_legend(ax, loc="upper left", present=None, **kwargs):
    names = [n for n in lrsweep.OUTCOMES if present is None or n in present]
    handles = [Patch(facecolor=OUTCOME_COLORS[n], edgecolor="black", label=n) for n in names]
    return ax.legend(handles=handles, loc=loc, title="outcome", **kwargs)


def _log_formatter(v, _pos=None) -> str:
    """Tick labels such as 0.001, 0.01, 0.1, 1, 10 (not 10^-3) for learning rates."""
    return f"{v:g}"


# --- data: the sweeps --------------------------------------------------------------------------


class _Data:
    """Every sweep the gallery draws from, run once through the public API.

    Sweeps that share their settings are run as one: a config's result does not depend on the
    company it is computed in (``lrsweep.sweep`` runs fixed-shape chunks), so the lesson's three runs
    are the same, bit for bit, inside a sweep of 600 learning rates as on their own.
    """

    def __init__(self):
        self.problem = lrsweep.problems.linear()
        p = self.problem
        self.critical = lrsweep.theory.critical_lr(p)
        self.optimal = lrsweep.theory.optimal_lr(p)
        self.eig = lrsweep.theory.eigenvalues(p)
        self.fan_lrs = lrsweep.parse_lr("log:1e-3:1:64")
        self.heat_lrs = lrsweep.parse_lr("log:1e-3:1:128")
        self.final_lrs = lrsweep.parse_lr("log:1e-4:10:256")
        self.explorer_lrs = _explorer_lrs()
        # Every trajectory of the lesson's problem with the lesson's arithmetic, in one sweep: the
        # lesson's runs, the two lrs either side of the critical one, the fan, the heatmap, the
        # final losses and the explorer.
        lrs = np.unique(
            np.concatenate([list(LR_COLORS), self.fan_lrs, self.heat_lrs, self.final_lrs, self.explorer_lrs])
        )
        # chunk_size: one chunk of 1024 configs; the default chunk may be far larger than these
        # ~540 runs need (the results are the same, bit for bit).
        self.traj = lrsweep.sweep(p, lrs, epochs=EPOCHS, chunk_size=TRAJ_CHUNK, progress=False, **LESSON)
        # The same with the exact gradient (autodiff), for the final losses and the float32 story at lr = 1.
        self.traj_autodiff = lrsweep.sweep(
            p,
            np.union1d(self.final_lrs, [1.0]),
            epochs=EPOCHS,
            grad="autodiff",
            precision="mixed",
            chunk_size=TRAJ_CHUNK,
            progress=False,
        )
        self.lesson = self.traj.sel(lr=list(LR_COLORS))
        self.trace40 = {lr: lrsweep.trace(p, lr, 40, **LESSON) for lr in LESSON_LRS}
        # The notebook's 10 printed epochs are the first 10 of a longer trace (each epoch depends
        # only on the ones before it).
        self.tables = {lr: t[t.epoch < 10] for lr, t in self.trace40.items()}
        self.final = {
            "autodiff": self.traj_autodiff.sel(lr=self.final_lrs),
            "forward": self.traj.sel(lr=self.final_lrs),
        }
        # Initial weights 0 and +-10^k, k from -2 to 5: the lesson's w0 = 0 and far beyond.
        mags = np.logspace(-2, 5, 43)
        self.init_w = np.concatenate([-mags[::-1], [0.0], mags])
        self.outcome_map = lrsweep.sweep(
            p,
            "log:1e-4:10:121",
            init=lrsweep.init_grid(w=self.init_w),
            epochs=EPOCHS,
            record="summary",
            chunk_size=16384,  # one chunk for these 10527 runs (the default pads to 65536)
            progress=False,
            **LESSON,
        )
        # The loss landscape: epoch 0 of a one-epoch sweep over a grid of initial (w, b) is the
        # loss at every grid point, computed by the engine itself. The explorer takes every other point.
        self.land_w = np.linspace(-1.5, 7.5, 181)
        self.land_b = np.linspace(-3.0, 3.0, 121)
        ds = lrsweep.sweep(
            p, 0.01, init=lrsweep.init_grid(w=self.land_w, b=self.land_b), epochs=1, progress=False, **LESSON
        )
        # (init_b, init_w): rows are b, columns are w, as contour plots want.
        self.landscape = ds.loss.isel(lr=0, epoch=0).transpose("init_b", "init_w").values
        self.ex_w, self.ex_b, self.ex_land = self.land_w[::2], self.land_b[::2], self.landscape[::2, ::2]
        # The chapter's 2-3-1 network, trained as the notebook trains it (100 epochs), at 33 lrs
        # (0.01 among them). chunk_size: the default (4096 padded configs for this problem) costs seconds.
        self.net = lrsweep.sweep(
            lrsweep.problems.chapter_net(), "log:1e-3:10:33", epochs=100, chunk_size=33, progress=False, **LESSON
        )
        self.bowl = lrsweep.problems.quadratic(dim=BOWL_DIM, cond=BOWL_COND)
        self.bowl_runs = {
            opt: lrsweep.sweep(
                self.bowl,
                "log:1e-4:10:161",
                optimizer=opt,
                epochs=500,
                record="summary",
                chunk_size=256,
                progress=False,
            )
            for opt in ("gd", "momentum", "adam")
        }
        self.bowl_critical = {
            "gd": lrsweep.theory.critical_lr(self.bowl, "gd"),
            "momentum": lrsweep.theory.critical_lr(self.bowl, "momentum", momentum=0.9),
        }

    def run(self, ds, lr: float, var: str = "w") -> np.ndarray:
        return ds[var].sel(lr=lr, init=0).values


def _explorer_lrs() -> np.ndarray:
    """100 log-spaced lrs from 0.001 to 1 (4 significant digits, so 0.01, 0.1 and 1 are exact),
    plus theory's optimal lr and the lesson's pair either side of the critical one (0.119, 0.12)."""
    lrs = [float(f"{v:.4g}") for v in np.logspace(-3, 0, EXPLORER_LRS)]
    return np.unique(np.array(lrs + [0.1176, 0.119, 0.12]))


# --- figure 1: the lesson's plots --------------------------------------------------------------


def _lesson_axes(ax, data: _Data, lr: float, title: str) -> None:
    w = data.run(data.lesson, lr)
    epochs = np.arange(1, EPOCHS + 1)
    ax.plot(epochs, w[1:], color=OKABE_ITO["blue"])
    ax.set_title(title)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Weight value")
    ax.set_xlim(0, EPOCHS + 10)


def fig_lesson(data: _Data, out: Path) -> list[Path]:
    paths = []
    for lr in LESSON_LRS:
        fig = _figure()
        ax = fig.add_subplot()
        _lesson_axes(ax, data, lr, LESSON_TITLES[lr])
        paths += _save(fig, out, f"01-lesson-weight-lr{_fmt_lr(lr)}")
    fig = _figure((19.2, 6.6))
    axes = fig.subplots(1, 3)
    for ax, lr in zip(axes, LESSON_LRS):
        _lesson_axes(ax, data, lr, LESSON_TITLES[lr].replace(" with", "\nwith"))
    fig.suptitle(
        "The lesson: the weight after each of 1000 epochs at learning rates 0.01, 0.1 and 1 "
        "(forward difference, the notebook's arithmetic)",
        fontsize=18,
    )
    paths += _save(fig, out, "01-lesson-weight-panel")
    return paths


# --- figure 2: the lesson's printed tables ------------------------------------------------------

_LINE = re.compile(r"weight value: (\S+) original loss: (\S+) loss_plus: (\S+) gradient: (\S+) updated_weights: (\S+)")
TABLE_COLUMNS = ("epoch", "weight value", "original loss", "loss_plus", "gradient", "updated_weights")


def lesson_table_rows(table) -> list[list[str]]:
    """The notebook's printed numbers, one row per epoch, from :func:`lrsweep.cli.trace_lines`."""
    rows = []
    for k, line in enumerate(trace_lines(table, "w"), start=1):
        rows.append([str(k), *_LINE.fullmatch(line).groups()])
    return rows


def _table_markdown(data: _Data) -> str:
    out = [
        "# The lesson's 10-epoch printouts",
        "",
        "The weight's line per epoch, as the notebook prints it (numbers rounded with numpy's `round` to",
        "2 decimals), for 10 epochs from w = b = 0: the first 10 epochs of",
        '`lrsweep.trace("linear", lr, 40, grad="forward", precision="mixed")`, formatted by',
        "`lrsweep.cli.trace_lines`. Regenerate with `lrsweep figures --out figures`.",
    ]
    for lr in LESSON_LRS:
        table = data.tables[lr]
        out += ["", f"## Learning rate {lr:g}", ""]
        out.append("| " + " | ".join(TABLE_COLUMNS) + " |")
        out.append("|" + "---:|" * len(TABLE_COLUMNS))
        for row in lesson_table_rows(table):
            out.append("| " + " | ".join(row) + " |")
        out += [
            "",
            "As printed:",
            "",
            "```text",
            *trace_lines(table, "w"),
            final_params_line(data.problem, table),
            "```",
        ]
    return "\n".join(out) + "\n"


def fig_tables(data: _Data, out: Path) -> list[Path]:
    paths = []
    for lr in LESSON_LRS:
        table = data.tables[lr]
        rows = lesson_table_rows(table)
        fig = _figure()
        ax = fig.add_subplot()
        ax.axis("off")
        ax.set_title(f"Learning rate {lr:g}: the notebook's printout, 10 epochs from w = b = 0", pad=12)
        tab = ax.table(
            cellText=rows,
            colLabels=list(TABLE_COLUMNS),
            cellLoc="right",
            colLoc="right",
            loc="upper center",
            colWidths=[0.08, 0.15, 0.2, 0.2, 0.15, 0.2],
        )
        tab.auto_set_font_size(False)
        tab.set_fontsize(16)
        tab.scale(1.0, 2.3)
        frozen_rows = {r for r, row in enumerate(rows, start=1) if row[4] == "0.0"}
        for (r, c), cell in tab.get_celld().items():
            cell.set_edgecolor("#999999")
            if r == 0:
                cell.set_facecolor("#DDDDDD")
                cell.set_text_props(weight="bold")
            elif r in frozen_rows:
                cell.set_facecolor("#FBF6C4")  # a light Okabe-Ito yellow
            elif r % 2 == 0:
                cell.set_facecolor("#F2F2F2")
            if r > 0 and c == 4 and float(rows[r - 1][4]) != 0:
                negative = float(rows[r - 1][4]) < 0
                cell.set_text_props(color=OKABE_ITO["blue"] if negative else OKABE_ITO["vermillion"], weight="bold")
        foot = "gradient < 0 (blue) while w is below 3, > 0 (vermillion) while above\n"
        foot += "final [w, b]: " + final_params_line(data.problem, table)
        if frozen_rows:
            foot = "yellow: loss_plus = original loss, gradient exactly 0 (float32 absorbed the 1e-4 nudge)\n" + foot
        ax.text(
            0.5,
            0.0,
            foot,
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            family="DejaVu Sans Mono",
            fontsize=14,
            linespacing=1.6,
        )
        paths += _save(fig, out, f"02-lesson-table-lr{_fmt_lr(lr)}")
    md = out / "lesson-tables.md"
    md.write_text(_table_markdown(data), encoding="utf-8")
    return [*paths, md]


# --- figure 3: a fan of trajectories -----------------------------------------------------------


def _loss_curve(ax, lrs, loss, style: dict, floor: float, top: float, ms: float, label: str | None = None) -> None:
    """Final loss against lr (clipped below at ``floor``); non-finite losses as markers at ``top``."""
    finite = np.isfinite(loss)
    ax.plot(lrs[finite], np.maximum(loss[finite], floor), **style)
    if (~finite).any():
        extra = {} if label is None else {"label": label}
        ax.plot(
            lrs[~finite],
            np.full((~finite).sum(), top),
            marker="^",
            ls="none",
            ms=ms,
            color=style["color"],
            clip_on=False,
            **extra,
        )


def _note(ax, x: float, y: float, text: str, va: str = "bottom") -> None:
    """A boxed note, right-aligned at (x, y) in axes coordinates."""
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha="right",
        va=va,
        fontsize=14,
        bbox=dict(boxstyle="round", fc="white", ec="0.6"),
    )


def _lr_colorbar(fig, ax, mappable, data: _Data, label="learning rate (log scale)"):
    cb = fig.colorbar(mappable, ax=ax, pad=0.01, aspect=30)
    cb.set_label(label)
    lo, hi = mappable.norm.vmin, mappable.norm.vmax
    ticks = [
        t for t in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0) if lo <= t <= hi and abs(np.log10(t / data.critical)) > 0.25
    ]
    cb.set_ticks(ticks + [data.critical], labels=[f"{t:g}" for t in ticks] + [f"critical\n{data.critical:.4f}"])
    cb.ax.minorticks_off()
    cb.ax.axhline(data.critical, color="black", lw=3)
    cb.ax.axhline(data.critical, color="white", lw=1.2, ls=(0, (3, 2)))
    return cb


def fig_fan(data: _Data, out: Path) -> list[Path]:
    ds = data.traj.sel(lr=data.fan_lrs)
    lrs = ds.lr.values
    w = ds.w.isel(init=0).values[:, 1:].astype(np.float64)
    epochs = np.arange(1, EPOCHS + 1)
    norm = mcolors.LogNorm(lrs[0], lrs[-1])
    stable = lrs < data.critical
    fig = _figure()
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
    _note(ax, 0.98, 0.04, "small lrs crawl,\nlarger ones overshoot,\noscillate and settle")
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
    _note(ax2, 0.96, 0.04, "|w| explodes; most\nthen freeze (stuck)")
    fig.suptitle(f"The weight over 1000 epochs at {lrs.size} learning rates from 0.001 to 1")
    _lr_colorbar(fig, [ax, ax2], lc, data)
    return _save(fig, out, "03-weight-fan")


# --- figure 4: final loss against lr -----------------------------------------------------------


def fig_final_loss(data: _Data, out: Path) -> list[Path]:
    fig = _figure((12.8, 8.0))
    gs = fig.add_gridspec(3, 1, height_ratios=[10, 0.9, 0.9])
    ax = fig.add_subplot(gs[0])
    strips = [fig.add_subplot(gs[1], sharex=ax), fig.add_subplot(gs[2], sharex=ax)]
    styles = {
        "autodiff": dict(color=OKABE_ITO["blue"], ls="-", label="autodiff (exact gradient)"),
        "forward": dict(color=OKABE_ITO["orange"], ls="--", label="forward difference (the lesson's)"),
    }
    floor = 1e-16
    top = 1e12
    for grad, ds in data.final.items():
        lrs = ds.lr.values
        loss = ds.loss.isel(init=0, epoch=-1).values.astype(np.float64)
        _loss_curve(ax, lrs, loss, styles[grad], floor, top, ms=7, label=f"{grad}: final loss overflowed (inf or NaN)")
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
    ins = ax.inset_axes([0.70, 0.07, 0.28, 0.36])
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
    ins.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
    ins.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    _names, cmap, norm = _outcome_cmap()
    present = set()
    for strip, (grad, ds) in zip(strips, data.final.items()):
        lrs = ds.lr.values
        outcome = ds.outcome.isel(init=0).values
        present |= set(outcome.tolist())
        strip.pcolormesh(
            _lr_edges(lrs), [0, 1], _outcome_codes(outcome)[None, :], cmap=cmap, norm=norm, rasterized=True
        )
        strip.set_yticks([0.5], labels=[grad])
        strip.tick_params(axis="y", length=0)
        strip.grid(False)
    strips[0].tick_params(labelbottom=False)
    strips[1].set_xlabel("learning rate (log scale)")
    strips[1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
    # Two legends on one axes: keep the lines' legend as an artist, then add the outcomes'.
    ax.add_artist(ax.legend(loc="upper left", fontsize=12.5))
    _outcome_legend(ax, loc="lower left", present=present, ncols=4, fontsize=12.5, title_fontsize=12.5)
    return _save(fig, out, "04-final-loss-vs-lr")


# --- figure 5: loss heatmap over lr x epoch ----------------------------------------------------


def fig_heatmap(data: _Data, out: Path) -> list[Path]:
    ds = data.traj.sel(lr=data.heat_lrs)
    lrs = ds.lr.values
    loss = ds.loss.isel(init=0).values[:, 1:].astype(np.float64)  # epochs 1..1000
    positive = loss[np.isfinite(loss) & (loss > 0)]
    vmin = 10.0 ** np.floor(np.log10(positive.min()))
    vmax = 10.0 ** np.ceil(np.log10(positive.max()))
    cmap = matplotlib.colormaps["viridis"].with_extremes(under="black", bad="white")
    fig = _figure()
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(
        np.arange(EPOCHS + 1) + 0.5,
        _lr_edges(lrs),
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
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
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
    return _save(fig, out, "05-loss-heatmap")


# --- figure 6: the loss landscape --------------------------------------------------------------

LAND_LEVELS = np.arange(-3.0, 3.01, 0.5)  # log10 of the loss


LAND_CMAP = mcolors.LinearSegmentedColormap.from_list("lightgreys", ["#FFFFFF", "#8C8C8C"])


def _landscape_background(fig, ax, data: _Data, colorbar: bool = True, lines: bool = True, fontsize: float = 13):
    """Filled contours of log10 loss (or, with ``lines=False``, the same bands as a fast image)."""
    z = np.log10(np.maximum(data.landscape, 10.0 ** LAND_LEVELS[0]))
    if lines:
        filled = ax.contourf(data.land_w, data.land_b, z, levels=LAND_LEVELS, cmap=LAND_CMAP, extend="both")
        filled.set_rasterized(True)
    else:
        dw, db = np.diff(data.land_w[:2])[0] / 2, np.diff(data.land_b[:2])[0] / 2
        filled = ax.imshow(
            z,
            origin="lower",
            cmap=LAND_CMAP,
            interpolation="nearest",
            norm=mcolors.BoundaryNorm(LAND_LEVELS, LAND_CMAP.N, extend="both"),
            extent=(data.land_w[0] - dw, data.land_w[-1] + dw, data.land_b[0] - db, data.land_b[-1] + db),
        )
    if lines:
        ax.contour(data.land_w, data.land_b, z, levels=LAND_LEVELS, colors="0.5", linewidths=0.6, linestyles="solid")
    ax.plot([3.0], [0.0], marker="*", ms=18, color="black", ls="none", zorder=5)
    ax.text(3.15, -0.25, "minimum (3, 0)", fontsize=fontsize, va="top", zorder=6)
    ax.plot([0.0], [0.0], marker="s", ms=9, color="black", ls="none", zorder=5)
    ax.text(-0.15, 0.2, "start (0, 0)", fontsize=fontsize, va="bottom", ha="center", zorder=6)
    ax.set_xlim(data.land_w[0], data.land_w[-1])
    ax.set_ylim(data.land_b[0], data.land_b[-1])
    ax.set_aspect("equal")
    ax.set_xlabel("weight w")
    ax.set_ylabel("bias b")
    ax.grid(False)
    if colorbar:
        cb = fig.colorbar(filled, ax=colorbar if colorbar is not True else ax, pad=0.01, aspect=25, shrink=0.82)
        cb.set_label("loss (MSE, log scale)")
        cb.set_ticks(np.arange(-3, 4), labels=[_pow10(k) for k in range(-3, 4)])
    return filled


def _first_exit(w, b, data: _Data) -> int | None:
    inside = (w >= data.land_w[0]) & (w <= data.land_w[-1]) & (b >= data.land_b[0]) & (b <= data.land_b[-1])
    return int(np.argmin(inside)) if not inside.all() else None


def fig_landscape(data: _Data, out: Path) -> list[Path]:
    fig = _figure((12.8, 5.0))
    ax, ax2 = fig.subplots(1, 2)
    _landscape_background(fig, ax, data, colorbar=False)
    _landscape_background(fig, ax2, data, colorbar=[ax, ax2])
    outcome = lambda lr: str(data.lesson.outcome.sel(lr=lr, init=0).values)
    for lr in (0.01, 0.1):
        w, b = data.run(data.lesson, lr), data.run(data.lesson, lr, "b")
        ax.plot(
            w,
            b,
            color=LR_COLORS[lr],
            lw=2.4,
            marker="o",
            ms=4,
            markevery=list(range(30)),
            label=f"lr {lr:g}: {outcome(lr)}",
            zorder=5 if lr == 0.01 else 4,
        )
    w1, b1 = data.run(data.lesson, 1.0), data.run(data.lesson, 1.0, "b")
    # lr 1's first step goes from (0, 0) to (45, 15); draw it to the frame's edge.
    edge = data.land_w[-1]
    ax.annotate(
        "",
        xy=(edge, edge * b1[1] / w1[1]),
        xytext=(0, 0),
        zorder=3,
        arrowprops=dict(arrowstyle="-|>", color=LR_COLORS[1.0], lw=5, alpha=0.6, mutation_scale=26),
    )
    ax.plot([], [], color=LR_COLORS[1.0], lw=5, alpha=0.6, label=f"lr 1: {outcome(1.0)}")
    frozen = int(data.lesson.event_epoch.sel(lr=1.0, init=0))
    ax.text(
        7.35,
        2.85,
        f"lr 1 leaves at epoch 1: ({_float32_repr(w1[1])}, {_float32_repr(b1[1])}),\n"
        f"then ({_float32_repr(w1[2])}, {_float32_repr(b1[2])}); frozen from\nepoch {frozen} at "
        f"({_float32_repr(w1[-1])}, {_float32_repr(b1[-1])})",
        ha="right",
        va="top",
        fontsize=12,
        color=LR_COLORS[1.0],
        bbox=dict(boxstyle="round", fc="white", ec=LR_COLORS[1.0], alpha=0.92),
        zorder=7,
    )
    ax.legend(loc="lower right", fontsize=12.5)
    ax.set_title("The lesson's learning rates", fontsize=17)
    notes = []
    for lr in (0.1198, 0.12):
        w, b = data.run(data.lesson, lr), data.run(data.lesson, lr, "b")
        ax2.plot(w[:8], b[:8], color=LR_COLORS[lr], lw=1.2, zorder=3)
        ax2.plot(
            w,
            b,
            color=LR_COLORS[lr],
            ls="none",
            marker="o",
            ms=2.6,
            alpha=0.8,
            zorder=4,
            label=f"lr {lr:g}: {outcome(lr)}",
            rasterized=True,
        )
        k = _first_exit(w, b, data)
        notes.append(f"lr {lr:g}: " + (f"leaves the frame at epoch {k}" if k is not None else "stays in the frame"))
    ax2.legend(loc="lower right", fontsize=12.5, markerscale=3)
    ax2.text(
        -1.35,
        2.85,
        "every epoch's (w, b) as a dot;\n" + "\n".join(notes),
        fontsize=12,
        va="top",
        bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.92),
        zorder=7,
    )
    ax2.set_title(f"Either side of the critical lr {data.critical:.5f}", fontsize=17)
    fig.suptitle("The loss landscape over (w, b) and the path of each learning rate (1000 epochs)")
    return _save(fig, out, "06-landscape")


# --- figure 7: outcome map over lr x initial weight --------------------------------------------


def fig_outcome_map(data: _Data, out: Path) -> list[Path]:
    ds = data.outcome_map
    lrs = ds.lr.values
    outcome = ds.outcome.transpose("lr", "init_w").values
    pos = data.init_w[data.init_w > 0]
    e = _lr_edges(pos)
    x_edges = np.concatenate([-e[::-1], e])  # the zero cell spans (-e[0], e[0])
    _names, cmap, norm = _outcome_cmap()
    fig = _figure((12.8, 7.6))
    ax = fig.add_subplot()
    ax.pcolormesh(x_edges, _lr_edges(lrs), _outcome_codes(outcome), cmap=cmap, norm=norm, rasterized=True)
    ax.set_xscale("symlog", linthresh=e[0], linscale=0.15)
    ax.set_yscale("log")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.grid(False)
    ticks = [-1e5, -1e3, -10, -0.1, 0, 0.1, 10, 1e3, 1e5]
    ax.set_xticks(
        ticks,
        labels=[
            f"{t:g}" if 0 < abs(t) < 100 or t == 0 else ("−" if t < 0 else "") + _pow10(round(np.log10(abs(t))))
            for t in ticks
        ],
    )
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
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
    _outcome_legend(ax, loc="lower left", present=set(outcome.ravel().tolist()), ncols=2, fontsize=13)
    return _save(fig, out, "07-outcome-map")


# --- figure 8: why lr = 1 gets stuck -----------------------------------------------------------


def fig_why_stuck(data: _Data, out: Path) -> list[Path]:
    shown = 40
    epochs = np.arange(shown + 1)
    fwd_w = data.run(data.lesson, 1.0)[: shown + 1].astype(np.float32)
    fwd_b = data.run(data.lesson, 1.0, "b")[: shown + 1].astype(np.float32)
    ad_w = data.run(data.traj_autodiff, 1.0)[: shown + 1].astype(np.float32)
    frozen = int(data.lesson.event_epoch.sel(lr=1.0, init=0))
    finite = np.isfinite(ad_w)
    overflow = int(np.argmin(finite)) if not finite.all() else None
    h = float(data.lesson.attrs["h"])
    trace = data.trace40[1.0]  # 40 epochs
    grad_w = trace[trace.parameter == "w"].gradient.to_numpy()
    colors = {"fwd": OKABE_ITO["orange"], "ad": OKABE_ITO["blue"]}
    fig = _figure((12.8, 9.6))
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
    ax1.plot(
        epochs[1:],
        np.abs(fwd_w[1:]),
        marker="o",
        ms=5,
        color=colors["fwd"],
        label="forward difference + mixed (the lesson)",
    )
    ax1.plot(
        epochs[1:][finite[1:]],
        np.abs(ad_w[1:][finite[1:]]),
        marker="s",
        ms=4,
        color=colors["ad"],
        ls="--",
        label="autodiff + mixed (exact gradient)",
    )
    f32max = float(np.finfo(np.float32).max)
    ax1.axhline(f32max, color="0.3", ls=":", lw=1.8)
    ax1.text(shown, f32max / 5, "float32 max", ha="right", va="top", fontsize=13, color="0.3")
    ax1.set_yscale("log")
    ax1.set_ylim(1e-1, 1e42)
    ax1.set_yticks([1, 1e10, 1e20, 1e30, 1e40])
    ax1.set_ylabel("|w|")
    ax1.set_title("Why lr = 1 gets stuck: float32 absorbs the finite-difference nudge")
    if overflow is not None:
        ax1.annotate(
            f"overflows to inf\nat epoch {overflow}",
            xy=(overflow - 1, abs(ad_w[overflow - 1])),
            xytext=(overflow + 4, 1e22),
            fontsize=13,
            ha="center",
            color=colors["ad"],
            arrowprops=dict(arrowstyle="->", color=colors["ad"], lw=1.5),
        )
    ax1.annotate(
        f"frozen at w = {_float32_repr(fwd_w[-1])}",
        xy=(frozen + 1, abs(fwd_w[-1])),
        xytext=(frozen + 5, 1e-0),
        fontsize=13,
        color="#A66F00",
        arrowprops=dict(arrowstyle="->", color="#A66F00", lw=1.5),
    )
    ax1.legend(loc="upper left", fontsize=13)

    ax2.fill_between([0, shown], 2 * h, 1e3, color=OKABE_ITO["yellow"], alpha=0.35, lw=0)
    ax2.text(shown - 0.3, 30, "spacing > 2h: w + h rounds back to w", ha="right", va="top", fontsize=13)
    ax2.axhline(h, color="black", lw=2)
    ax2.text(shown - 0.3, h / 1.5, f"the nudge h = {h:g}", ha="right", va="top", fontsize=13)
    ax2.plot(
        epochs[1:], np.spacing(np.abs(fwd_w[1:])), marker="o", ms=5, color=colors["fwd"], label="at w, forward run"
    )
    ax2.plot(
        epochs[1:],
        np.spacing(np.abs(fwd_b[1:])),
        marker="^",
        ms=5,
        color=colors["fwd"],
        ls=":",
        label="at b, forward run",
    )
    ax2.plot(
        epochs[1:][finite[1:]],
        np.spacing(np.abs(ad_w[1:][finite[1:]])),
        marker="s",
        ms=4,
        color=colors["ad"],
        ls="--",
        label="at w, autodiff run",
    )
    ax2.set_yscale("log")
    ax2.set_ylim(1e-9, 1e2)
    ax2.set_yticks([1e-8, 1e-6, 1e-4, 1e-2, 1])
    ax2.set_ylabel("float32 spacing\nnp.spacing(w)")
    ax2.annotate(
        f"{np.spacing(np.abs(fwd_w[-1])):.2g} at w = {_float32_repr(fwd_w[-1])}",
        xy=(frozen + 2, np.spacing(np.abs(fwd_w[-1]))),
        xytext=(frozen + 8, 5e-8),
        fontsize=13,
        color="#A66F00",
        arrowprops=dict(arrowstyle="->", color="#A66F00", lw=1.5),
    )
    ax2.legend(loc="lower right", fontsize=12.5, ncols=3)

    nz = grad_w != 0
    ax3.plot(
        np.arange(shown)[nz],
        np.abs(grad_w[nz]),
        marker="o",
        ms=6,
        color=colors["fwd"],
        label="forward-difference gradient of w",
    )
    ax3.plot(
        np.arange(shown)[~nz],
        np.full((~nz).sum(), 1e-1),
        marker="x",
        ms=8,
        mew=2.5,
        ls="none",
        color=colors["fwd"],
        label="exactly 0 (plotted at 0.1)",
    )
    ax3.set_yscale("log")
    ax3.set_ylim(3e-2, 1e6)
    ax3.set_ylabel("|gradient|\nused for w")
    ax3.set_xlabel("epoch")
    ax3.legend(loc="upper right", fontsize=12.5)
    for ax in (ax1, ax2, ax3):
        ax.axvline(frozen, color="black", ls="--", lw=1.8)
    ax3.text(frozen + 0.3, 3e4, f"event_epoch = {frozen}: parameters frozen", fontsize=13, va="center")
    ax3.set_xlim(-0.5, shown + 0.5)
    return _save(fig, out, "08-why-stuck")


# --- figure 9: the chapter's 2-3-1 network -----------------------------------------------------


def fig_chapter_net(data: _Data, out: Path) -> list[Path]:
    ds = data.net
    lrs = ds.lr.values
    loss = ds.loss.isel(init=0).values.astype(np.float64)
    epochs = ds.epoch.values
    floor = 1e-12
    fig = _figure()
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
    outcome = ds.outcome.isel(init=0).values
    counts = ", ".join(f"{(outcome == n).sum()} {n}" for n in lrsweep.OUTCOMES if (outcome == n).any())
    ax.legend(loc="upper left", fontsize=14)
    _note(ax, 0.985, 0.66, f"{counts}\n(forward difference, 100 epochs)", va="center")
    cb = fig.colorbar(lc, ax=ax, pad=0.01, aspect=30)
    cb.set_label("learning rate (log scale)")
    cb.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
    return _save(fig, out, "09-chapter-net")


# --- figure 10: optimizers on a quadratic bowl -------------------------------------------------


def fig_optimizers(data: _Data, out: Path) -> list[Path]:
    styles = {
        "gd": dict(color=OKABE_ITO["blue"], ls="-", label="gradient descent"),
        "momentum": dict(color=OKABE_ITO["orange"], ls="--", label="heavy-ball momentum 0.9"),
        "adam": dict(color=OKABE_ITO["green"], ls="-.", label="Adam"),
    }
    floor, top = 1e-30, 1e12
    fig = _figure()
    ax = fig.add_subplot()
    for opt, ds in data.bowl_runs.items():
        lrs = ds.lr.values
        loss = ds.loss.isel(init=0).values.astype(np.float64)
        _loss_curve(ax, lrs, loss, styles[opt], floor, top, ms=6)
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
    ax.plot([], [], marker="^", ls="none", color="0.3", label="final loss inf or NaN (diverged)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-4, 10)
    ax.set_ylim(1e-27, top * 10)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_log_formatter))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("final loss after 500 epochs")
    ax.set_title(f"Optimizers on a quadratic bowl (curvatures 1 and {BOWL_COND:g})")
    ax.legend(loc="upper left", fontsize=14)
    return _save(fig, out, "10-optimizers")


# --- figure 11: the animation ------------------------------------------------------------------


def _gif_epochs() -> list[int]:
    return [*range(0, 15), 16, 18, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200, 250, 300, 400, 500, 600, 800, 1000]


def fig_animation(data: _Data, out: Path) -> list[Path]:
    lrs = [0.01, 0.1, 0.1198, 0.12]
    with matplotlib.rc_context(
        {
            "font.size": 12,
            "axes.titlesize": 13,
            "axes.labelsize": 12,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 10.5,
        }
    ):
        fig = Figure(figsize=(7.2, 4.6), dpi=80, layout="constrained")
        FigureCanvasAgg(fig)  # one canvas, so text metrics are cached across frames
        ax = fig.add_subplot()
        _landscape_background(fig, ax, data, colorbar=False, lines=False, fontsize=10)
        lines, heads = {}, {}
        tail = 4  # the lrs either side of the critical one zigzag across the valley: show their last steps only
        for lr in lrs:
            w, b = data.run(data.lesson, lr), data.run(data.lesson, lr, "b")
            k = _first_exit(w, b, data)
            label = (
                f"lr {lr:g}"
                + (f" (last {tail} steps)" if lr > 0.11 else "")
                + (f", leaves at epoch {k}" if k is not None else "")
            )
            (lines[lr],) = ax.plot(
                [], [], color=LR_COLORS[lr], lw=1.8 if lr < 0.11 else 1.4, label=label, zorder=5 if lr == 0.01 else 4
            )
            (heads[lr],) = ax.plot([], [], marker="o", ms=8, mec="black", color=LR_COLORS[lr], ls="none", zorder=6)
        ax.legend(loc="lower right")
        title = ax.set_title("Gradient descent on the loss landscape: epoch 1000")
        fig.draw_without_rendering()
        fig.set_layout_engine("none")  # freeze the layout: every frame then costs one draw
        series = {lr: (data.run(data.lesson, lr), data.run(data.lesson, lr, "b")) for lr in lrs}
        path = out / "11-landscape-animation.gif"
        writer = PillowWriter(fps=5)
        with writer.saving(fig, path, dpi=80):
            for k in _gif_epochs():
                for lr in lrs:
                    first = max(0, k - tail) if lr > 0.11 else 0
                    w, b = series[lr][0][first : k + 1], series[lr][1][first : k + 1]
                    lines[lr].set_data(w, b)
                    heads[lr].set_data(w[-1:], b[-1:])
                title.set_text(f"Gradient descent on the loss landscape: epoch {k}")
                writer.grab_frame()
    return [path]


# --- 12: the explorer page ---------------------------------------------------------------------


def _b64_f32(values) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def explorer_data(data: _Data) -> dict:
    """The explorer's embedded data: every lr's trajectory (float32, base64), outcomes, theory, landscape.

    Each run is stored up to its last change (``w``, ``b`` and ``loss`` constant afterwards; the page
    holds the last value), which keeps the file small without dropping a single value.
    """
    ds = data.traj.sel(lr=data.explorer_lrs)
    lrs = ds.lr.values
    w = ds.w.isel(init=0).values
    b = ds.b.isel(init=0).values
    loss = ds.loss.isel(init=0).values.astype(np.float32)
    ws, bs, losses = [], [], []
    for i in range(lrs.size):
        series = np.stack([w[i], b[i], loss[i]])
        changed = np.nonzero(np.any(series[:, 1:] != series[:, :-1], axis=0))[0]
        n = int(changed[-1]) + 2 if changed.size else 1
        ws.append(_b64_f32(w[i, :n]))
        bs.append(_b64_f32(b[i, :n]))
        losses.append(_b64_f32(loss[i, :n]))
    z = np.log10(np.maximum(data.ex_land, 1e-3))
    cmap = LAND_CMAP
    return {
        "problem": "linear: y_hat = w*x + b fit to y = 3x on x = 1..4, mean squared error",
        "grad": ds.attrs["grad"],
        "precision": ds.attrs["precision"],
        "h": float(ds.attrs["h"]),
        "epochs": int(ds.sizes["epoch"]) - 1,
        "lr": [float(v) for v in lrs],
        "outcome": [str(v) for v in ds.outcome.isel(init=0).values],
        "event_epoch": [int(v) for v in ds.event_epoch.isel(init=0).values],
        "rho": [round(float(v), 6) for v in lrsweep.theory.convergence_factor(data.problem, lrs)],
        "w": ws,
        "b": bs,
        "loss": losses,
        "encoding": "base64 of little-endian float32, epochs 0..n-1 (constant after the last stored epoch)",
        "theory": {
            "critical": float(data.critical),
            "optimal": float(data.optimal),
            "lambda_min": float(data.eig[0]),
            "lambda_max": float(data.eig[-1]),
        },
        "landscape": {
            "w": [float(data.ex_w[0]), float(data.ex_w[-1]), int(data.ex_w.size)],
            "b": [float(data.ex_b[0]), float(data.ex_b[-1]), int(data.ex_b.size)],
            "log10_loss": [round(float(v), 3) for v in z.ravel()],
            "levels": [float(v) for v in LAND_LEVELS],
            "colors": [mcolors.to_hex(cmap(t)) for t in np.linspace(0, 1, LAND_LEVELS.size + 1)],
        },
        "outcome_colors": dict(OUTCOME_COLORS),
        "lesson": {
            "0.01": "The lesson: slow, smooth approach to w = 3 (first epoch 0 -> 0.45); not there after 1000 epochs.",
            "0.1": "The lesson: oscillates around w = 3 (first epoch 0 -> 4.5), then settles quickly.",
            "1": "The lesson: explodes (45 after the first epoch) and then gets stuck at w = 12755.16, where "
            "the float32 spacing (0.00098) swallows the 1e-4 nudge.",
        },
    }


EXPLORER_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lrsweep explorer: one learning rate at a time</title>
<style>
  :root { --ink: #1a1a1a; --muted: #555; --line: #c8c8c8; }
  * { box-sizing: border-box; }
  body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: var(--ink); margin: 16px 22px;
         background: #fff; font-size: 15px; }
  h1 { font-size: 22px; margin: 0 0 4px 0; }
  .sub { color: var(--muted); margin: 0 0 12px 0; }
  .controls { display: grid; grid-template-columns: auto 1fr auto; gap: 6px 14px; align-items: center; max-width: 1360px; }
  .controls label { font-weight: bold; }
  input[type=range] { width: 100%; }
  #lr-value { font-size: 24px; font-weight: bold; min-width: 170px; font-variant-numeric: tabular-nums; }
  #outcome { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: bold; color: #000;
             border: 1px solid #333; }
  .row2 { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; margin: 8px 0; max-width: 1360px; }
  button { font: inherit; padding: 3px 10px; border: 1px solid #777; border-radius: 6px; background: #f4f4f4; cursor: pointer; }
  button:hover, button:focus { background: #e2e2e2; }
  #info { margin: 6px 0 10px 0; line-height: 1.45; max-width: 1360px; }
  #info b { font-variant-numeric: tabular-nums; }
  .plots { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; max-width: 1360px; }
  @media (max-width: 1000px) { .plots { grid-template-columns: minmax(0, 1fr); } }
  .plot { border: 1px solid var(--line); border-radius: 6px; padding: 4px; min-width: 0; }
  canvas.chart { width: 100%; height: 340px; display: block; }
  .legend { display: inline-flex; gap: 14px; font-size: 13px; color: #333; }
  .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; border: 1px solid #333; vertical-align: -1px; }
  #strip { width: 100%; height: 40px; display: block; cursor: pointer; }
  .note { color: var(--muted); font-size: 13px; min-height: 18px; margin: 2px 4px; }
  #errors { color: #b00; font-weight: bold; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>lrsweep explorer: the learning-rate lesson, one learning rate at a time</h1>
<p class="sub">Fit y = 3x with y&#770; = w&middot;x + b by gradient descent, 1000 epochs from w = b = 0, with the lesson's
forward-difference gradient (h = 1e-4) and the notebook's arithmetic (float32 parameters, float64 loss).
Every curve below is a real <code>lrsweep.sweep</code> run, embedded in this page; nothing is computed here.</p>
<div class="controls">
  <label for="lr-slider">learning rate</label>
  <input type="range" id="lr-slider" min="0" max="0" step="1" value="0" aria-label="learning rate">
  <span id="lr-value">lr = ?</span>
  <span></span>
  <canvas id="strip" aria-label="outcome of every learning rate; click to choose one"></canvas>
  <span><span id="outcome">?</span></span>
</div>
<div class="row2">
  <span>jump to:</span>
  <button data-lr="0.01">0.01 (lesson)</button>
  <button data-lr="0.1">0.1 (lesson)</button>
  <button data-lr="1">1 (lesson)</button>
  <button data-lr="0.1176">0.1176 (optimal)</button>
  <button data-lr="0.119">0.119</button>
  <button data-lr="0.12">0.12</button>
  <label><input type="checkbox" id="logx"> log-scale epochs</label>
  <span><label for="epoch-slider">epochs shown:</label>
  <input type="range" id="epoch-slider" min="1" max="1000" step="1" value="1000" style="width: 180px; vertical-align: middle" aria-label="epochs shown">
  <span id="epoch-value" style="display: inline-block; min-width: 3em">1000</span></span>
  <span class="legend" id="strip-legend"></span>
</div>
<div id="info"></div>
<div class="plots">
  <div class="plot"><canvas id="weight" class="chart"></canvas><div class="note" id="weight-note"></div></div>
  <div class="plot"><canvas id="loss" class="chart"></canvas><div class="note" id="loss-note"></div></div>
  <div class="plot"><canvas id="landscape" class="chart"></canvas><div class="note" id="land-note"></div></div>
</div>
<div id="errors"></div>
<script type="application/json" id="lrsweep-data">__DATA__</script>
<script>
(function () {
  "use strict";
  window.addEventListener("error", function (e) { document.getElementById("errors").textContent += "error: " + e.message + "\n"; });
  const D = JSON.parse(document.getElementById("lrsweep-data").textContent);
  const $ = (id) => document.getElementById(id);
  const COLORS = { w: "#0072B2", b: "#E69F00", loss: "#D55E00", path: "#0072B2", head: "#D55E00", event: "#000000" };

  function decode(b64) {
    const s = atob(b64), u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return new Float32Array(u.buffer);
  }
  const runs = D.lr.map((lr, i) => ({ lr: lr, w: decode(D.w[i]), b: decode(D.b[i]), loss: decode(D.loss[i]),
    outcome: D.outcome[i], event: D.event_epoch[i], rho: D.rho[i] }));
  const E = D.epochs;
  const at = (a, k) => a[Math.min(k, a.length - 1)];

  // Numbers: float32 values in their shortest decimal form, others to 4 significant digits.
  function f32(v) {
    if (!isFinite(v)) return String(v);
    for (let p = 1; p <= 9; p++) {
      const s = v.toPrecision(p);
      if (Math.fround(parseFloat(s)) === v) return String(parseFloat(s));
    }
    return String(v);
  }
  function num(v, p) {
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-4) return v.toExponential((p || 4) - 1).replace("e+", "e");
    return String(parseFloat(v.toPrecision(p || 4)));
  }
  function tickLabel(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential().replace("e+", "e");
    return String(parseFloat(v.toPrecision(6)));
  }

  function setup(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    return { ctx: ctx, W: w, H: h };
  }

  function linTicks(lo, hi, n) {
    const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function logTicks(lo, hi) {  // lo, hi: powers of ten (log10 units)
    const a = Math.ceil(lo - 1e-9), b = Math.floor(hi + 1e-9), step = Math.max(1, Math.ceil((b - a + 1) / 7));
    const out = [];
    for (let k = a; k <= b; k += step) out.push(Math.pow(10, k));
    return out;
  }

  // One set of axes: returns data -> pixel maps and the plot box.
  function axes(c, o) {
    const ctx = c.ctx, m = { l: 72, r: 24, t: 30, b: 46 };
    const px = m.l, py = m.t, pw = c.W - m.l - m.r, ph = c.H - m.t - m.b;
    const tx = o.xlog ? Math.log10 : (v) => v, ty = o.ylog ? Math.log10 : (v) => v;
    const x0 = tx(o.x[0]), x1 = tx(o.x[1]), y0 = ty(o.y[0]), y1 = ty(o.y[1]);
    const clamp = (v) => Math.max(-1e5, Math.min(1e5, v));
    const X = (v) => clamp(px + (tx(v) - x0) / (x1 - x0) * pw);
    const Y = (v) => clamp(py + ph - (ty(v) - y0) / (y1 - y0) * ph);
    if (o.background) o.background(ctx, px, py, pw, ph);
    ctx.font = "13px DejaVu Sans, Arial, sans-serif";
    ctx.lineWidth = 1;
    const xt = o.xlog ? logTicks(x0, x1) : linTicks(o.x[0], o.x[1], 5);
    const yt = o.ylog ? logTicks(y0, y1) : linTicks(o.y[0], o.y[1], 5);
    ctx.strokeStyle = o.background ? "rgba(0,0,0,0.12)" : "#e3e3e3";
    ctx.fillStyle = "#222";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    xt.forEach((v) => { const x = X(v); ctx.beginPath(); ctx.moveTo(x, py); ctx.lineTo(x, py + ph); ctx.stroke();
      ctx.fillText(tickLabel(v), x, py + ph + 5); });
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    yt.forEach((v) => { const y = Y(v); ctx.beginPath(); ctx.moveTo(px, y); ctx.lineTo(px + pw, y); ctx.stroke();
      ctx.fillText(tickLabel(v), px - 5, y); });
    ctx.strokeStyle = "#333"; ctx.strokeRect(px, py, pw, ph);
    ctx.font = "14px DejaVu Sans, Arial, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(o.xlabel, px + pw / 2, c.H - 4);
    ctx.save(); ctx.translate(14, py + ph / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "top";
    ctx.fillText(o.ylabel, 0, 0); ctx.restore();
    ctx.font = "bold 15px DejaVu Sans, Arial, sans-serif";
    ctx.textAlign = "left"; ctx.textBaseline = "top";
    ctx.fillText(o.title, px, 6);
    return { X: X, Y: Y, px: px, py: py, pw: pw, ph: ph, ctx: ctx,
      clip: function () { ctx.save(); ctx.beginPath(); ctx.rect(px, py, pw, ph); ctx.clip(); },
      unclip: function () { ctx.restore(); } };
  }

  function star(ctx, x, y, r) {  // a five-pointed star: the minimum
    ctx.fillStyle = "#000"; ctx.beginPath();
    for (let i = 0; i < 10; i++) {
      const rad = i % 2 ? r * 0.45 : r, t = -Math.PI / 2 + i * Math.PI / 5;
      ctx.lineTo(x + rad * Math.cos(t), y + rad * Math.sin(t));
    }
    ctx.closePath(); ctx.fill();
  }

  function polyline(a, xs, ys, color, width, dash) {
    const ctx = a.ctx;
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash || []);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i], y = ys[i];
      if (!isFinite(x) || !isFinite(y)) { pen = false; continue; }
      if (pen) ctx.lineTo(a.X(x), a.Y(y)); else ctx.moveTo(a.X(x), a.Y(y));
      pen = true;
    }
    ctx.stroke(); ctx.setLineDash([]);
  }

  // A legend in the top margin, right-aligned: [label, colour, dash] per item.
  function legend(a, items) {
    const ctx = a.ctx;
    ctx.font = "13px DejaVu Sans, Arial, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    const widths = items.map((it) => ctx.measureText(it[0]).width + 34 + 12);
    let x = a.px + a.pw - widths.reduce((s, v) => s + v, 0) + 12;
    const y = 14;
    items.forEach((it, i) => {
      ctx.strokeStyle = it[1]; ctx.lineWidth = 2.5; ctx.setLineDash(it[2] || []);
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 26, y); ctx.stroke();
      ctx.setLineDash([]); ctx.fillStyle = "#222"; ctx.fillText(it[0], x + 31, y);
      x += widths[i];
    });
  }

  const state = { index: 0, logx: false, shown: E };
  window.explorerState = state;

  function epochRange() {
    const first = state.logx ? 1 : 0;
    const ks = [];
    for (let k = first; k <= state.shown; k++) ks.push(k);
    return ks;
  }

  function eventLine(a, run, ylo) {
    if (run.event < 0 || run.event > state.shown || (state.logx && run.event < 1)) return;
    const ctx = a.ctx, x = a.X(run.event);
    ctx.strokeStyle = COLORS.event; ctx.lineWidth = 1.5; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(x, a.py); ctx.lineTo(x, a.py + a.ph); ctx.stroke(); ctx.setLineDash([]);
  }
  const EVENT_TEXT = { converged: "converged from epoch ", stuck: "frozen (stuck) from epoch ", diverged: "above the start loss from epoch " };

  function drawWeight(run) {
    const c = setup($("weight")), ks = epochRange();
    const ws = ks.map((k) => at(run.w, k)), bs = ks.map((k) => at(run.b, k));
    let lo = Math.min(0, 3), hi = 3;
    ws.concat(bs).forEach((v) => { if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    const pad = 0.06 * (hi - lo);
    const a = axes(c, { x: [ks[0], Math.max(ks[ks.length - 1], ks[0] + 1)], y: [lo - pad, hi + pad], xlog: state.logx,
      title: "Parameters", xlabel: state.logx ? "epoch (log scale)" : "epoch", ylabel: "parameter value" });
    a.clip();
    polyline(a, [ks[0], ks[ks.length - 1]], [3, 3], "#888", 1.2, [3, 3]);
    eventLine(a, run);
    polyline(a, ks, bs, COLORS.b, 1.8, [6, 3]);
    polyline(a, ks, ws, COLORS.w, 2.4);
    a.unclip();
    legend(a, [["w", COLORS.w], ["b", COLORS.b, [6, 3]], ["w = 3", "#888", [3, 3]]]);
    $("weight-note").textContent = "epoch " + state.shown + ": w = " + f32(at(run.w, state.shown)) + ", b = " + f32(at(run.b, state.shown));
  }

  function drawLoss(run) {
    const c = setup($("loss")), ks = epochRange();
    const ls = ks.map((k) => at(run.loss, k));
    let lo = Infinity, hi = -Infinity;
    ls.forEach((v) => { if (isFinite(v) && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (!isFinite(lo)) { lo = 1e-8; hi = 1; }
    let y0 = Math.floor(Math.log10(lo)), y1 = Math.ceil(Math.log10(hi));
    if (y1 - y0 < 2) { y0 -= 1; y1 += 1; }
    const floor = Math.pow(10, y0);
    const a = axes(c, { x: [ks[0], Math.max(ks[ks.length - 1], ks[0] + 1)], y: [floor, Math.pow(10, y1)], xlog: state.logx, ylog: true,
      title: "Loss over the epochs", xlabel: state.logx ? "epoch (log scale)" : "epoch", ylabel: "loss (MSE, log scale)" });
    a.clip();
    eventLine(a, run);
    polyline(a, ks, ls.map((v) => Math.max(v, floor)), COLORS.loss, 2.4);
    a.unclip();
    const ev = run.event >= 0 && EVENT_TEXT[run.outcome]
      ? EVENT_TEXT[run.outcome] + run.event + (run.event <= state.shown ? " (dashed line)" : "") : "no event: still moving";
    $("loss-note").textContent = "epoch " + state.shown + ": loss = " + num(at(run.loss, state.shown), 4) + "; " + ev;
  }

  // The landscape: the loss over a (w, b) grid, computed by lrsweep (epoch 0 of a sweep over inits).
  const L = D.landscape, nw = L.w[2], nb = L.b[2];
  const land = document.createElement("canvas");
  land.width = nw; land.height = nb;
  (function () {
    const lctx = land.getContext("2d"), img = lctx.createImageData(nw, nb), lev = L.levels;
    const rgb = L.colors.map((h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]);
    for (let j = 0; j < nb; j++) {
      for (let i = 0; i < nw; i++) {
        const z = L.log10_loss[j * nw + i];
        let band = 0;
        while (band < lev.length && z >= lev[band]) band++;
        const px = ((nb - 1 - j) * nw + i) * 4, col = rgb[Math.min(band, rgb.length - 1)];
        img.data[px] = col[0]; img.data[px + 1] = col[1]; img.data[px + 2] = col[2]; img.data[px + 3] = 255;
      }
    }
    lctx.putImageData(img, 0, 0);
  })();

  function drawLandscape(run) {
    const c = setup($("landscape"));
    const a = axes(c, { x: [L.w[0], L.w[1]], y: [L.b[0], L.b[1]], title: "Path on the loss landscape", xlabel: "weight w",
      ylabel: "bias b", background: function (ctx, px, py, pw, ph) { ctx.imageSmoothingEnabled = true; ctx.drawImage(land, px, py, pw, ph); } });
    const ctx = a.ctx, ks = [];
    for (let k = 0; k <= state.shown; k++) ks.push(k);
    const ws = ks.map((k) => at(run.w, k)), bs = ks.map((k) => at(run.b, k));
    a.clip();
    star(ctx, a.X(3), a.Y(0), 9);
    polyline(a, ws, bs, COLORS.path, 1.6);
    ctx.fillStyle = COLORS.path;
    for (let k = 0; k < Math.min(ks.length, 40); k++) { ctx.beginPath(); ctx.arc(a.X(ws[k]), a.Y(bs[k]), 2.6, 0, 2 * Math.PI); ctx.fill(); }
    ctx.fillStyle = "#000"; ctx.fillRect(a.X(0) - 5, a.Y(0) - 5, 10, 10);
    const wl = ws[ws.length - 1], bl = bs[bs.length - 1];
    ctx.fillStyle = COLORS.head; ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(a.X(wl), a.Y(bl), 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    a.unclip();
    let out = -1;
    for (let k = 0; k < ws.length; k++) {
      if (!(ws[k] >= L.w[0] && ws[k] <= L.w[1] && bs[k] >= L.b[0] && bs[k] <= L.b[1])) { out = k; break; }
    }
    $("land-note").textContent = (out >= 0
      ? "the path leaves the frame at epoch " + out + " (w = " + f32(ws[out]) + ", b = " + f32(bs[out]) + "); "
      : "square: start (0, 0); star: minimum (3, 0); ") + "dot: epoch " + state.shown + " (w = " + f32(wl) + ", b = " + f32(bl) + ")";
  }

  // The outcome strip: one cell per learning rate, the theory's critical lr marked.
  function drawStrip() {
    const c = setup($("strip")), ctx = c.ctx, n = runs.length, cw = c.W / n, h = 22;
    runs.forEach((r, i) => {  // whole pixels, overlapping by one: no seams between cells
      ctx.fillStyle = D.outcome_colors[r.outcome] || "#999";
      ctx.fillRect(Math.floor(i * cw), 0, Math.ceil(cw) + 1, h);
    });
    const crit = D.theory.critical;
    let xc = null;
    for (let i = 0; i + 1 < n; i++) {
      if (runs[i].lr <= crit && crit < runs[i + 1].lr) {
        const t = (Math.log(crit) - Math.log(runs[i].lr)) / (Math.log(runs[i + 1].lr) - Math.log(runs[i].lr));
        xc = (i + 0.5 + t) * cw;
      }
    }
    ctx.font = "12px DejaVu Sans, Arial, sans-serif"; ctx.textBaseline = "top";
    if (xc !== null) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(xc, 0); ctx.lineTo(xc, h + 4); ctx.stroke();
      ctx.fillStyle = "#000"; ctx.textAlign = "left"; ctx.fillText("critical lr " + num(crit, 4), xc + 4, h + 4);
    }
    ctx.strokeStyle = "#000"; ctx.lineWidth = 3;
    ctx.strokeRect(state.index * cw + 1.5, 1.5, Math.max(cw - 3, 2), h - 3);
    ctx.fillStyle = "#333"; ctx.strokeStyle = "#333"; ctx.lineWidth = 1;
    [0.001, 0.01, 0.1, 1].forEach((v) => {
      const i = runs.findIndex((r) => r.lr === v);
      if (i < 0) return;
      const x = (i + 0.5) * cw;
      ctx.beginPath(); ctx.moveTo(x, h); ctx.lineTo(x, h + 4); ctx.stroke();
      // Left of the critical lr's label, labels end at their tick; the first starts at it.
      ctx.textAlign = i === 0 ? "left" : (xc !== null && x < xc && xc - x < 80) || v === 1 ? "right" : "center";
      ctx.fillText("lr " + v, ctx.textAlign === "left" ? x - 3 : ctx.textAlign === "right" ? x + 3 : x, h + 4);
    });
  }
  $("strip-legend").innerHTML = ["converged", "unfinished", "diverged", "stuck"].map((name) =>
    '<span><i style="background:' + D.outcome_colors[name] + '"></i>' + name + "</span>").join("");

  const OUTCOME_TEXT = {
    converged: "the loss fell below the tolerance (1e-6 of the start) and stayed there",
    unfinished: "still on its way after 1000 epochs: the steps are too small",
    diverged: "the loss ended above where it started",
    stuck: "the parameters froze: float32 absorbed the 1e-4 nudge, so the forward-difference gradient is exactly 0",
  };

  function draw() {
    const run = runs[state.index];
    const t = D.theory;
    $("lr-slider").value = String(state.index);
    $("lr-value").textContent = "lr = " + run.lr;
    const badge = $("outcome");
    badge.textContent = run.outcome + (run.event >= 0 ? " (epoch " + run.event + ")" : "");
    badge.style.background = D.outcome_colors[run.outcome] || "#ccc";
    const key = String(run.lr);
    $("info").innerHTML =
      "<b>" + run.outcome + "</b>: " + OUTCOME_TEXT[run.outcome] + ". After " + E + " epochs: w = <b>" + f32(at(run.w, E)) +
      "</b>, b = <b>" + f32(at(run.b, E)) + "</b>, loss = <b>" + num(at(run.loss, E), 4) + "</b>.<br>" +
      "Theory: the error shrinks (or grows) by &rho; = max|1 &minus; lr&middot;&lambda;| = <b>" + num(run.rho, 5) + "</b> per epoch " +
      "(&lambda; = " + num(t.lambda_min, 4) + ", " + num(t.lambda_max, 4) + "); " + (run.rho < 1 ? "&rho; &lt; 1: stable" : "&rho; &gt; 1: unstable") +
      ". Critical lr 2/&lambda;max = " + num(t.critical, 4) + ", optimal 2/(&lambda;max + &lambda;min) = " + num(t.optimal, 4) + "." +
      (D.lesson[key] ? "<br>" + D.lesson[key] : "");
    drawStrip();
    drawWeight(run);
    drawLoss(run);
    drawLandscape(run);
  }

  function select(i) { state.index = Math.max(0, Math.min(runs.length - 1, i)); draw(); }
  const slider = $("lr-slider");
  slider.max = String(runs.length - 1);
  slider.addEventListener("input", () => select(parseInt(slider.value, 10)));
  document.querySelectorAll("button[data-lr]").forEach((btn) => {
    btn.addEventListener("click", () => {
      const v = parseFloat(btn.dataset.lr);
      let best = 0;
      runs.forEach((r, i) => { if (Math.abs(Math.log(r.lr / v)) < Math.abs(Math.log(runs[best].lr / v))) best = i; });
      select(best);
    });
  });
  $("strip").addEventListener("click", (e) => {
    const rect = $("strip").getBoundingClientRect();
    select(Math.floor((e.clientX - rect.left) / rect.width * runs.length));
  });
  $("logx").addEventListener("change", (e) => { state.logx = e.target.checked; draw(); });
  const es = $("epoch-slider");
  es.max = String(E); es.value = String(E);
  es.addEventListener("input", () => { state.shown = parseInt(es.value, 10); $("epoch-value").textContent = es.value; draw(); });
  window.addEventListener("resize", draw);
  select(runs.findIndex((r) => r.lr === 0.01));
  document.body.dataset.ready = "1";
})();
</script>
</body>
</html>
"""


def fig_explorer(data: _Data, out: Path) -> list[Path]:
    payload = json.dumps(explorer_data(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    path = out / "explorer.html"
    path.write_text(EXPLORER_TEMPLATE.replace("__DATA__", payload), encoding="utf-8")
    return [path]


# --- the gallery's README ----------------------------------------------------------------------


def _readme(data: _Data) -> str:
    crit, opt = data.critical, data.optimal
    lam_min, lam_max = float(data.eig[0]), float(data.eig[-1])
    les = data.lesson
    w_end = {lr: _float32_repr(data.run(les, lr)[-1]) for lr in LESSON_LRS}
    b_end = {lr: _float32_repr(data.run(les, lr, "b")[-1]) for lr in LESSON_LRS}
    frozen = int(les.event_epoch.sel(lr=1.0, init=0))
    conv01 = int(les.event_epoch.sel(lr=0.1, init=0))
    spacing_w = float(np.spacing(np.float32(data.run(les, 1.0)[-1])))
    ad = data.traj_autodiff.w.sel(lr=1.0, init=0).values
    overflow = int(np.argmin(np.isfinite(ad))) if not np.isfinite(ad).all() else None
    sug = lrsweep.suggest_lr(data.final["autodiff"], "largest_stable")
    net_lr = data.net.lr.values
    k = int(np.argmin(np.abs(net_lr - 0.01)))
    net_loss = data.net.loss.isel(init=0).values
    bowl = data.bowl_critical
    fan = data.traj.sel(lr=data.fan_lrs)
    fan_outcome = fan.outcome.isel(init=0).values
    n_fan_below = int((data.fan_lrs < crit).sum())
    n_fan_above = int((data.fan_lrs > crit).sum())
    n_fan_stuck = int((fan_outcome[data.fan_lrs > crit] == "stuck").sum())
    heat_loss = data.traj.sel(lr=data.heat_lrs).loss.isel(init=0, epoch=-1).values
    heat_floor = float(np.min(heat_loss[np.isfinite(heat_loss) & (heat_loss > 0)]))
    exits = {lr: _first_exit(data.run(les, lr), data.run(les, lr, "b"), data) for lr in (0.1198, 0.12)}
    om = data.outcome_map
    stuck_everywhere = (om.outcome == "stuck").all("lr").values
    far = np.abs(data.init_w)[stuck_everywhere]
    all_stuck = float(f"{far.min():.3g}") if far.size else float("nan")
    failed = om.outcome.isin(["diverged", "stuck"]).transpose("lr", "init_w").values
    holds = (failed == (om.lr.values > crit)[:, None]).all(axis=0)
    mags = np.abs(data.init_w)
    broken = mags[~holds]
    rule_holds = float(f"{mags[mags < broken.min()].max() if broken.size else mags.max():.3g}")
    lines = [
        "# The lecture figures",
        "",
        "Every file in this folder is regenerated, deterministically, from real sweeps by one command:",
        "",
        "```bash",
        "lrsweep figures --out figures        # or: python -m lrsweep.figures --out figures",
        "```",
        "",
        "(`lrsweep.figures.build_gallery(out_dir)` from Python.) Each figure comes as a PNG for slides",
        "(1280 px wide; the side-by-side panel 1920) and an SVG for print. The numbers in the captions are",
        "computed by the build, not typed.",
        'The lesson\'s runs use its arithmetic: `grad="forward"` (the nudge h = 1e-4) and `precision="mixed"`',
        "(float32 parameters, float64 loss and update), which reproduces the notebook bit for bit.",
        "Theory for the lesson's problem (`lrsweep.theory`): the Hessian [[15, 5], [5, 2]] has eigenvalues",
        f"{lam_min:.4f} and {lam_max:.2f}, so gradient descent converges only for lr < 2/{lam_max:.2f} = {crit:.4f}",
        f"(the critical lr), fastest at 2/(λmax + λmin) = 2/17 = {opt:.4f} (the optimal lr).",
        "Colours: the Okabe–Ito palette and viridis, which colour-blind readers can tell apart.",
        "",
        "Open [`explorer.html`](explorer.html) in a browser for the interactive version (one file, no network).",
        "",
        "## 1. The lesson's plots",
        "",
        "![Weight value over increasing epochs](01-lesson-weight-lr0.01.png)",
        "![Weight value over increasing epochs with learning rate of 0.1](01-lesson-weight-lr0.1.png)",
        "![Weight value over increasing epochs with learning rate of 1](01-lesson-weight-lr1.png)",
        "![The three side by side](01-lesson-weight-panel.png)",
        "",
        "The notebook's three plots, with its titles and labels: the weight after each of 1000 epochs.",
        f"At lr 0.01 the weight **crawls** smoothly towards 3 and is not there after 1000 epochs (w = {w_end[0.01]}).",
        "At lr 0.1 it **oscillates** around 3 (0 -> 4.5 -> 1.5 -> 3.53 ...) and then **settles**",
        f"(w = {w_end[0.1]}; converged by epoch {conv01}). At lr 1 it **explodes** (45, then -654.22, then 12755.16)",
        f"and then **freezes** at w = {w_end[1.0]}, b = {b_end[1.0]} from epoch {frozen} on: not because the",
        "gradient barely changes, but because float32 cannot add 1e-4 to 12755.16 (figure 8).",
        "",
        "## 2. The lesson's printouts",
        "",
        "![lr 0.01](02-lesson-table-lr0.01.png)",
        "![lr 0.1](02-lesson-table-lr0.1.png)",
        "![lr 1](02-lesson-table-lr1.png)",
        "",
        "The 10-epoch printouts, number for number as the notebook printed them (also as Markdown:",
        "[lesson-tables.md](lesson-tables.md)). The gradient is negative while the weight is below 3 and",
        "positive above it; at lr 1 `loss_plus` equals the loss from epoch 4 on and the gradient is exactly 0.",
        "",
        "## 3. A fan of 64 learning rates",
        "",
        "![Fan of weight trajectories](03-weight-fan.png)",
        "",
        "The weight over 1000 epochs (log-scale epochs) for 64 log-spaced learning rates from 0.001 to 1,",
        f"coloured by lr (the critical lr {crit:.4f} is marked on the colour bar). Left, the {n_fan_below} lrs below",
        "it: small lrs crawl towards 3, larger ones overshoot, oscillate and settle. Right, the",
        f"{n_fan_above} above it, on a log scale: |w| explodes within a few epochs, and {n_fan_stuck} of them then freeze",
        "(stuck) once |w| passes 2048, where float32 can no longer add the nudge h = 1e-4.",
        "",
        "## 4. Final loss against learning rate",
        "",
        "![Final loss against lr](04-final-loss-vs-lr.png)",
        "",
        "The loss after 1000 epochs for 256 lrs from 1e-4 to 10, with the exact (autodiff) gradient and the lesson's",
        "forward difference, and below it each run's outcome. The loss falls as lr grows, is lowest just below",
        f"the critical lr {crit:.4f} (black), near the optimal lr {opt:.4f} (green), and explodes above it. The",
        f'suggested lr (`suggest_lr(ds, "largest_stable")` = {sug:.4f}) is the last grid point below the critical',
        "one. Above it the exact gradient overflows to inf/NaN (diverged), while the forward difference gets",
        "stuck at a huge but finite loss: same lr, different arithmetic, different failure.",
        "",
        "## 5. Loss over learning rate and epoch",
        "",
        "![Loss heatmap](05-loss-heatmap.png)",
        "",
        "The loss of 128 runs (rows, lr 0.001 to 1) over 1000 epochs (columns, log scale). Below the critical lr",
        "the loss falls, faster for larger lr; the converged runs reach the forward difference's floor",
        f"(about {heat_floor:.0e}: with h = 1e-4 the estimated gradient is off by O(h), so the run settles a",
        "little beside the minimum). Above the critical lr the loss explodes within a few epochs and then",
        "stays constant: those runs froze.",
        "",
        "## 6. The loss landscape",
        "",
        "![Loss landscape](06-landscape.png)",
        "",
        "Contours of the loss over (w, b) (computed by the engine: epoch 0 of a sweep over a grid of inits) and",
        "the path of each lr from (0, 0). The valley is long and narrow: the steep direction has curvature",
        f"{lam_max:.2f}, the flat one {lam_min:.4f}. Left: lr 0.01 slides down the steep side into the valley",
        "and then creeps along it; lr 0.1 overshoots, zigzags across the valley and settles; lr 1 leaves the",
        f"frame at its first step. Right: 0.1198 and 0.12, just above the critical lr {crit:.5f}, zigzag across",
        "the valley every epoch (one dot per epoch), and the zigzag grows instead of dying out: they leave",
        f"the frame at epochs {exits[0.1198]} and {exits[0.12]}.",
        "",
        "## 7. Outcome over learning rate and initial weight",
        "",
        "![Outcome map](07-outcome-map.png)",
        "",
        f"The outcome of the lesson's arithmetic for {om.sizes['lr']} lrs x {om.sizes['init_w']} initial weights (b0 = 0).",
        f"Where the weight starts does not move the edge of stability: for every start with |w0| up to {rule_holds:g}",
        "the runs above the critical lr fail (diverged or stuck) and those below it do not. Slow lrs are 'unfinished', faster",
        "ones converge, larger ones blow up and then freeze. Far from the minimum float32's spacing exceeds",
        "twice the nudge, the forward difference is 0, and the run is stuck whatever the lr: every lr is",
        f"stuck from |w0| = {all_stuck:g} on.",
        "",
        "## 8. Why lr = 1 gets stuck",
        "",
        "![Why lr 1 gets stuck](08-why-stuck.png)",
        "",
        f"Top: |w| for lr 1. With the lesson's forward difference the weight freezes at {w_end[1.0]}; with the exact",
        "gradient (autodiff) it keeps growing"
        + (f" until it overflows float32 at epoch {overflow}." if overflow is not None else "."),
        "Middle: the gap between neighbouring float32 numbers at w (`np.spacing`). Once it exceeds 2h, adding",
        f"h = 1e-4 rounds back to w: at w = 12755.16 the spacing is {spacing_w:.2g}, so `loss_plus` equals the",
        "loss. The same happens at b = 3765.97 (spacing 0.00024). Bottom: so the forward-difference gradient is",
        f"exactly 0 from epoch {frozen} (the run's `event_epoch`) on, and training stops.",
        "",
        "## 9. The chapter's 2-3-1 network",
        "",
        "![Chapter network](09-chapter-net.png)",
        "",
        "The chapter's sigmoid network (`problems.chapter_net()`, the notebook's initial weights), trained as the",
        f"notebook trains it (forward difference, 100 epochs) at {net_lr.size} lrs from 0.001 to 10. Black: the notebook's",
        f"lr 0.01 (loss {net_loss[k, 0]:.4f} -> {net_loss[k, -1]:.3g}). Larger lrs fit the single example much",
        "faster; the largest blow up and freeze, just like the lesson's lr 1.",
        "",
        "## 10. Optimizers on a quadratic bowl",
        "",
        "![Optimizers](10-optimizers.png)",
        "",
        f"Final loss after 500 epochs on a {BOWL_DIM}-dimensional bowl with curvatures 1 and {BOWL_COND:g}",
        f"(`problems.quadratic(dim={BOWL_DIM}, cond={BOWL_COND:g})`), for gradient descent, heavy-ball momentum (0.9)",
        "and Adam (`optimizer=` in `sweep`), 161 lrs each.",
        f"Gradient descent diverges above 2/λmax = {bowl['gd']:.3g}, momentum above (2 + 2·0.9)/λmax = {bowl['momentum']:.3g}",
        "(theory, marked), and below that momentum reaches a far lower loss than plain gradient descent.",
        "Adam divides each step by the gradient's running size, so its step is about lr whatever the",
        "curvature: its usable lrs sit elsewhere (here from about 0.1 to 10) and it never blows up.",
        "",
        "## 11. The paths, epoch by epoch",
        "",
        "![Animation](11-landscape-animation.gif)",
        "",
        "Figure 6 as it happens: lr 0.01, 0.1, 0.1198 and 0.12 on the landscape, epoch 0 to 1000",
        "(every epoch at first, then in larger steps).",
        "",
        "## 12. The explorer",
        "",
        f"[`explorer.html`](explorer.html): a learning-rate slider over {data.explorer_lrs.size} lrs (100 log-spaced",
        "from 0.001 to 1, plus 0.1176, 0.119 and 0.12) showing, for the lesson's problem, the weight and bias,",
        "the loss and the path on the landscape, with each run's outcome, theory's contraction factor per",
        "epoch and the critical lr. Every value is from a real sweep, embedded in the page; it needs no network.",
        "",
    ]
    return "\n".join(lines)


# --- the gallery -------------------------------------------------------------------------------

FIGURES = (
    fig_lesson,
    fig_tables,
    fig_fan,
    fig_final_loss,
    fig_heatmap,
    fig_landscape,
    fig_outcome_map,
    fig_why_stuck,
    fig_chapter_net,
    fig_optimizers,
    fig_animation,
    fig_explorer,
)


def build_gallery(out_dir) -> list[Path]:
    """Run the sweeps and write the whole gallery into ``out_dir``; return the files written, sorted.

    Deterministic: building twice on one machine writes identical bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with matplotlib.rc_context(RC):
        data = _Data()
        for make in FIGURES:
            paths += make(data, out)
    readme = out / "README.md"
    readme.write_text(_readme(data), encoding="utf-8")
    paths.append(readme)
    gif = out / "11-landscape-animation.gif"
    if gif.stat().st_size > GIF_MAX_BYTES:  # pragma: no cover - a guard for future edits
        raise RuntimeError(f"{gif} is {gif.stat().st_size} bytes; keep it under {GIF_MAX_BYTES}")
    return sorted(paths)


def main(argv: list[str] | None = None) -> int:
    """``lrsweep figures --out DIR``: build the gallery into DIR (default ``figures``)."""
    parser = argparse.ArgumentParser(prog="lrsweep figures", description="Regenerate the lecture figure gallery.")
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    args = parser.parse_args(argv)
    matplotlib.use("Agg")
    t0 = time.perf_counter()
    paths = build_gallery(args.out)
    size = sum(p.stat().st_size for p in paths)
    print(
        f"lrsweep figures: wrote {len(paths)} files ({size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
