"""The lesson itself: its three weight plots, its printed tables, and why lr = 1 gets stuck.

- ``01-lesson-weight-*``: the notebook's weight-vs-epoch plots, with its titles and labels;
- ``02-lesson-table-*`` and ``lesson-tables.md``: its 10-epoch printouts, number for number, from
  :func:`lrsweep.notebook.trace_lines`;
- ``08-why-stuck``: float32 absorbing the finite-difference nudge at lr = 1;
- ``18-lesson-to-edge``: the lesson's 2 / 16.70 beside a network's edge of stability (the
  sweeps of :mod:`lrsweep.gallery.edge`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lrsweep.notebook import final_params_line, trace_lines

from . import edge
from ._data import EPOCHS, Data
from ._style import LESSON_LRS, OKABE_ITO, figure, float32_repr, fmt_lr, save

#: The notebook's plot titles, word for word.
LESSON_TITLES = {
    0.01: "Weight value over increasing epochs",
    0.1: "Weight value over increasing epochs with learning rate of 0.1",
    1.0: "Weight value over increasing epochs with learning rate of 1",
}


def _lesson_axes(ax, data: Data, lr: float, title: str, fontsize: float = 13) -> None:
    w = data.run(data.lesson, lr)
    epochs = np.arange(1, EPOCHS + 1)
    ax.plot(epochs, w[1:], color=OKABE_ITO["blue"])
    ax.set_title(title)
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Weight value")
    ax.set_xlim(0, EPOCHS + 10)
    if lr >= 1.0:
        _first_epochs_inset(ax, w, fontsize)


def _first_epochs_inset(ax, w: np.ndarray, fontsize: float, shown: int = 6) -> None:
    """An inset with the first epochs of a run that explodes: on the 0 to 1000 axis its jumps
    (0, 45, -654.22, 12755.16, then frozen) all fall on the first pixel column. A symmetric log
    scale shows the small first step and the sign flip beside the large third one."""
    ins = ax.inset_axes([0.3, 0.12, 0.62, 0.6])
    k = np.arange(shown + 1)
    ins.plot(k, w[: shown + 1], color=OKABE_ITO["blue"], marker="o", ms=6, lw=1.8)
    ins.set_yscale("symlog", linthresh=10, linscale=0.6)
    ins.set_ylim(-3e3, 1e5)
    ins.set_yticks([-1000, -10, 0, 10, 1000, 10000])
    ins.set_xticks(k)
    ins.tick_params(labelsize=fontsize - 2)
    ins.set_title(f"the first {shown} epochs (symmetric log scale)", fontsize=fontsize, fontweight="normal")
    ins.set_xlabel("epoch", fontsize=fontsize - 1)
    for e in (1, 2, 3):
        ins.annotate(
            float32_repr(np.round(w[e], 2)),
            xy=(e, w[e]),
            xytext=(8, -4 if w[e] > 0 else 4),
            textcoords="offset points",
            ha="left",
            va="top" if w[e] > 0 else "bottom",
            fontsize=fontsize - 2,
        )


def fig_lesson(data: Data, out: Path) -> list[Path]:
    """The notebook's three plots of the weight after each of 1000 epochs (lr 0.01, 0.1, 1), one
    per file and side by side: what the lesson showed, redrawn from the engine's runs."""
    paths = []
    for lr in LESSON_LRS:
        fig = figure()
        ax = fig.add_subplot()
        _lesson_axes(ax, data, lr, LESSON_TITLES[lr])
        paths += save(fig, out, f"01-lesson-weight-lr{fmt_lr(lr)}")
    fig = figure((19.2, 6.6))
    axes = fig.subplots(1, 3)
    for ax, lr in zip(axes, LESSON_LRS):
        _lesson_axes(ax, data, lr, LESSON_TITLES[lr].replace(" with", "\nwith"), fontsize=12)
    fig.suptitle(
        "The lesson: the weight after each of 1000 epochs at learning rates 0.01, 0.1 and 1 "
        "(forward difference, the notebook's arithmetic)",
        fontsize=18,
    )
    paths += save(fig, out, "01-lesson-weight-panel")
    return paths


# --- figure 2: the lesson's printed tables ------------------------------------------------------

_LINE = re.compile(r"weight value: (\S+) original loss: (\S+) loss_plus: (\S+) gradient: (\S+) updated_weights: (\S+)")
TABLE_COLUMNS = ("epoch", "weight value", "original loss", "loss_plus", "gradient", "updated_weights")


def lesson_table_rows(table) -> list[list[str]]:
    """The notebook's printed numbers, one row per epoch, from :func:`lrsweep.notebook.trace_lines`."""
    rows = []
    for k, line in enumerate(trace_lines(table, "w"), start=1):
        match = _LINE.fullmatch(line)
        assert match is not None, line  # trace_lines writes every line in this form
        rows.append([str(k), *match.groups()])
    return rows


def _table_markdown(data: Data) -> str:
    """``lesson-tables.md``: each lr's printout as a Markdown table and as the notebook printed it."""
    out = [
        "# The lesson's 10-epoch printouts",
        "",
        "The weight's line per epoch, as the notebook prints it (numbers rounded with numpy's `round` to",
        "2 decimals), for 10 epochs from w = b = 0: the first 10 epochs of",
        '`lrsweep.trace("linear", lr, 40, grad="forward", precision="mixed")`, formatted by',
        "`lrsweep.notebook.trace_lines`. Regenerate with `lrsweep figures --out figures`.",
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


def fig_tables(data: Data, out: Path) -> list[Path]:
    """The 10-epoch printouts drawn as tables (for slides): frozen epochs (gradient exactly 0)
    shaded yellow and the gradient's sign coloured, since those are what the lesson points at."""
    paths = []
    for lr in LESSON_LRS:
        table = data.tables[lr]
        rows = lesson_table_rows(table)
        fig = figure()
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
        paths += save(fig, out, f"02-lesson-table-lr{fmt_lr(lr)}")
    md = out / "lesson-tables.md"
    md.write_text(_table_markdown(data), encoding="utf-8")
    return [*paths, md]


# --- figure 8: why lr = 1 gets stuck -----------------------------------------------------------


def fig_why_stuck(data: Data, out: Path) -> list[Path]:
    """Three stacked panels over lr = 1's first 40 epochs: |w| (forward difference freezes, autodiff
    overflows), float32's spacing at w against the nudge h, and the gradient that drops to exactly 0."""
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
    fig = figure((12.8, 9.6))
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
        f"frozen at w = {float32_repr(fwd_w[-1])}",
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
        f"{np.spacing(np.abs(fwd_w[-1])):.2g} at w = {float32_repr(fwd_w[-1])}",
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
    return save(fig, out, "08-why-stuck")


# --- figure 17: from the lesson's 2 / 16.70 to the edge of stability ------------------------------


def fig_lesson_edge(data: Data, out: Path) -> list[Path]:
    """Two columns, loss (top) and tracked sharpness (bottom) against step, ``2 / lr`` dashed in each
    run's colour: the lesson (its sharpness fixed at 16.70; the lrs above 2 / 16.70 diverge) and
    the gallery's tanh network (its sharpness rises to 2 / lr and stays there)."""
    lam = float(data.eig[-1])
    fig = figure((12.8, 8.4))
    (loss_l, loss_n), (sharp_l, sharp_n) = fig.subplots(2, 2, sharex="col")
    for ds, top, bottom in ((edge.lesson_runs(), loss_l, sharp_l), (edge.four_runs(), loss_n, sharp_n)):
        for i, color in enumerate(edge.COLORS):
            run = ds.isel(lr=i, init=0)
            lr = float(run.lr)
            top.plot(run.epoch, run.loss, color=color, lw=1.8, label=f"lr {lr:.3g}  (2 / lr = {2 / lr:.3g})")
            # The lesson's four runs share one sharpness: drawn once, in black, below.
            if bottom is sharp_n:
                bottom.plot(run.sharpness_step, run.sharpness, color=color, lw=2.2)
            bottom.axhline(2 / lr, color=color, ls="--", lw=1.6)
        top.set_yscale("log")
        top.legend(loc="upper left", fontsize=12)
        bottom.set_xlabel("step")
    les = edge.lesson_runs()
    sharp_l.plot(les.sharpness_step, les.sharpness.isel(init=0).max("lr"), color="black", lw=2.6)
    sharp_l.text(1, lam + 0.25, "tracked sharpness, all four runs", fontsize=13, va="bottom")
    sharp_l.axhspan(12, lam, color=OKABE_ITO["vermillion"], alpha=0.1, lw=0)
    sharp_l.text(48, 12.4, "2 / lr below it: the run diverges", fontsize=13, ha="right")
    sharp_l.text(48, 21.6, "2 / lr above it: the loss falls", fontsize=13, ha="right", va="top")
    loss_l.set_ylabel("training loss")
    sharp_l.set_ylabel("sharpness")
    loss_l.set_title(f"The lesson: stable only for lr < 2 / {lam:.2f} = {2 / lam:.4f}", fontsize=15)
    loss_n.set_title("A tanh network on digits: the loss still falls", fontsize=15)
    sharp_l.set_title(f"its sharpness is {lam:.2f} at every step", fontsize=15)
    sharp_n.set_title("as the sharpness rises to 2 / lr and stays", fontsize=15)
    sharp_l.set_ylim(12, 22)
    sharp_n.set_ylim(0, max(edge.EDGES) * 1.25)
    return save(fig, out, "18-lesson-to-edge")
