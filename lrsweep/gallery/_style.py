"""The gallery's look, shared by every figure: colours, rcParams, sizes, and how a figure is saved.

One home for what makes the figures consistent and deterministic: the Okabe–Ito palette, one
colour per learning rate and outcome, fixed sizes and dpi, ``svg.hashsalt``, no dates or versions
in PNG/SVG metadata, and plain-text (not mathtext) log-axis labels.

>>> float32_repr(np.float32(2.984288454055786))
'2.9842885'
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
import PIL.Image
from cycler import cycler
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import lrsweep

from ..colors import OKABE_ITO, OUTCOME_COLORS

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
SLIDE = (12.8, 7.2)  # inches; at DPI, 1280 x 720 pixels (a 720p slide)
DPI = 100
RC: dict[Any, Any] = {
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
    "axes.prop_cycle": cycler(color=list(OKABE_ITO.values())),
    "image.cmap": "viridis",
    "svg.hashsalt": "lrsweep-figures",
    "svg.fonttype": "path",
    "path.simplify": False,
}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}


def float32_repr(v) -> str:
    """The shortest decimal that reads back as the same float32 (as numpy prints it)."""
    return str(np.float32(v))


def fmt_lr(lr: float) -> str:
    """A learning rate in a file name or label: up to 4 significant digits (0.01, 0.1198, 1)."""
    return f"{lr:.4g}"


def figure(size=SLIDE, **kwargs) -> Figure:
    """A pyplot-free figure at the gallery's dpi with constrained layout (default: one 720p slide)."""
    return Figure(figsize=size, dpi=DPI, layout="constrained", **kwargs)


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
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


def pow10(k: int) -> str:
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
            return ("−" if x < 0 else "") + pow10(round(exponent))
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
                            base=f._base,  # pyright: ignore[reportAttributeAccessIssue] - set in LogFormatter.__init__, not in the stubs
                            labelOnlyBase=f.labelOnlyBase,
                            minor_thresholds=f.minor_thresholds,
                            linthresh=f._linthresh,  # pyright: ignore[reportAttributeAccessIssue] - as _base
                        )
                    )


def lr_edges(lrs: np.ndarray) -> np.ndarray:
    """Cell edges for log-spaced centres: geometric midpoints, extended by half a step at the ends."""
    lg = np.log10(lrs)
    mid = (lg[1:] + lg[:-1]) / 2
    return 10 ** np.concatenate([[lg[0] - (mid[0] - lg[0])], mid, [lg[-1] + (lg[-1] - mid[-1])]])


def outcome_cmap():
    """``(names, colormap, norm)`` that colour outcome indices (:func:`outcome_codes`) by :data:`OUTCOME_COLORS`."""
    names = list(lrsweep.OUTCOMES)
    return (
        names,
        mcolors.ListedColormap([OUTCOME_COLORS[n] for n in names]),
        mcolors.BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names)),
    )


def outcome_codes(outcome: np.ndarray) -> np.ndarray:
    """Colour indices into :func:`outcome_cmap` for a result's outcomes, names or int8 codes alike.

    Decoded through :func:`lrsweep.outcome_names` first, so the gallery draws the same whether a
    result stores its outcomes as strings or as codes.
    """
    names = list(lrsweep.OUTCOMES)
    return np.vectorize(names.index, otypes=[np.int64])(lrsweep.outcome_names(outcome))


def outcome_legend(ax, loc="upper left", present=None, **kwargs):
    """A legend of outcome colour patches on ``ax``: all outcomes, or only the names in ``present``."""
    names = [n for n in lrsweep.OUTCOMES if present is None or n in present]
    handles = [Patch(facecolor=OUTCOME_COLORS[n], edgecolor="black", label=n) for n in names]
    return ax.legend(handles=handles, loc=loc, title="outcome", **kwargs)


def log_formatter(v, _pos=None) -> str:
    """Tick labels such as 0.001, 0.01, 0.1, 1, 10 (not 10^-3) for learning rates."""
    return f"{v:g}"


def loss_curve(
    ax, lrs, loss, style: dict, floor: float, top: float, ms: float, label: str | None = None, off=None
) -> None:
    """Final loss against lr (clipped below at ``floor``) as a line; runs in ``off`` (default: the
    non-finite losses) as markers at ``top`` instead, so a blow-up does not draw a spike."""
    off = ~np.isfinite(loss) if off is None else np.asarray(off) | ~np.isfinite(loss)
    ax.plot(lrs[~off], np.maximum(loss[~off], floor), **style)
    if off.any():
        extra = {} if label is None else {"label": label}
        ax.plot(
            lrs[off],
            np.full(off.sum(), top),
            marker="^",
            ls="none",
            ms=ms,
            color=style["color"],
            clip_on=False,
            **extra,
        )


def note(ax, x: float, y: float, text: str, va: str = "bottom") -> None:
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
