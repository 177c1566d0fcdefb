"""The loss landscape over (w, b) and the paths gradient descent takes on it.

- ``06-landscape``: contours of the loss with each learning rate's path;
- ``11-landscape-animation.gif``: the same paths, epoch by epoch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import lrsweep

from ._data import Data
from ._style import LR_COLORS, figure, float32_repr, pow10, save

LAND_LEVELS = np.arange(-3.0, 3.01, 0.5)  # log10 of the loss


LAND_CMAP = mcolors.LinearSegmentedColormap.from_list("lightgreys", ["#FFFFFF", "#8C8C8C"])


def landscape_background(fig, ax, data: Data, colorbar: bool | list = True, lines: bool = True, fontsize: float = 13):
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
        cb.set_ticks(np.arange(-3, 4), labels=[pow10(k) for k in range(-3, 4)])
    return filled


def first_exit(w, b, data: Data) -> int | None:
    """The first epoch at which the path (w, b) leaves the landscape's frame, or None if it never does."""
    inside = (w >= data.land_w[0]) & (w <= data.land_w[-1]) & (b >= data.land_b[0]) & (b <= data.land_b[-1])
    return int(np.argmin(inside)) if not inside.all() else None


def fig_landscape(data: Data, out: Path) -> list[Path]:
    """Two landscape panels: the lesson's lrs (0.01 slides into the valley, 0.1 zigzags and settles,
    1 leaves at its first step) and two lrs near the critical one, every epoch as a dot."""
    fig = figure((12.8, 5.0))
    ax, ax2 = fig.subplots(1, 2)
    landscape_background(fig, ax, data, colorbar=False)
    landscape_background(fig, ax2, data, colorbar=[ax, ax2])
    outcome = lambda lr: str(lrsweep.outcome_names(data.lesson.outcome.sel(lr=lr, init=0).values))
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
        f"lr 1 leaves at epoch 1: ({float32_repr(w1[1])}, {float32_repr(b1[1])}),\n"
        f"then ({float32_repr(w1[2])}, {float32_repr(b1[2])}); frozen from\nepoch {frozen} at "
        f"({float32_repr(w1[-1])}, {float32_repr(b1[-1])})",
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
    # These lrs differ from the critical one in the fifth decimal: print them to five, as the title does.
    near = lambda lr: f"{lr:.5f}"
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
            label=f"lr {near(lr)}: {outcome(lr)}",
            rasterized=True,
        )
        k = first_exit(w, b, data)
        notes.append(f"lr {near(lr)}: " + (f"leaves the frame at epoch {k}" if k is not None else "stays in the frame"))
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
    ax2.set_title(f"Just above the critical lr {data.critical:.5f}", fontsize=17)
    fig.suptitle("The loss landscape over (w, b) and the path of each learning rate (1000 epochs)")
    return save(fig, out, "06-landscape")


def _gif_epochs() -> list[int]:
    """The epochs shown as frames: every one while paths change fast, then ever larger steps."""
    return [*range(0, 15), 16, 18, 20, 25, 30, 40, 50, 60, 80, 100, 130, 160, 200, 250, 300, 400, 500, 600, 800, 1000]


def fig_animation(data: Data, out: Path) -> list[Path]:
    """The landscape paths of lr 0.01, 0.1, 0.1198 and 0.12 as a GIF, epoch 0 to 1000 (every epoch
    at first, then in larger steps); the layout is frozen after the first draw so frames are cheap."""
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
        landscape_background(fig, ax, data, colorbar=False, lines=False, fontsize=10)
        lines, heads = {}, {}
        tail = 4  # the lrs either side of the critical one zigzag across the valley: show their last steps only
        for lr in lrs:
            w, b = data.run(data.lesson, lr), data.run(data.lesson, lr, "b")
            k = first_exit(w, b, data)
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
