"""``17-digits-lr``: a learning-rate sweep of a real model, judged on held-out data.

``lrsweep.problems.digits()`` (scikit-learn's handwritten digits, an MLP 64-32-10 with softmax
cross-entropy, 1437 training and 360 held-out images) trained on minibatches of ``BATCH`` for
``EPOCHS`` epochs by SGD and by Adam, ``N_LR`` learning rates x ``INITS`` initialisations each, through
the public API (``lrsweep.sweep``, ``lrsweep.suggest_lr(..., metric="accuracy")``). Left: the
held-out accuracy against lr; right: the final training loss (the whole training set) against lr.
A line is the median over the initialisations, the band their range; the suggested lr is marked.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

import lrsweep

from ._style import OKABE_ITO, figure, save

BATCH, EPOCHS, INITS, N_LR = 128, 12, 3, 40
#: Each optimizer's lr range: from too small to learn much in the run to past divergence.
LRS = {"gd": (1e-3, 100.0), "adam": (1e-5, 1.0)}
LABELS = {"gd": "SGD", "adam": "Adam"}
COLORS = {"gd": OKABE_ITO["blue"], "adam": OKABE_ITO["vermillion"]}


@functools.cache
def runs() -> dict:
    """Per optimizer: the summary sweep and its suggested lr on held-out accuracy."""
    p = lrsweep.problems.digits()
    out = {}
    for opt, (lo, hi) in LRS.items():
        ds = lrsweep.sweep(p, f"log:{lo}:{hi}:{N_LR}", optimizer=opt, epochs=EPOCHS, batch_size=BATCH, init=INITS,
                           record="summary", progress=False)  # fmt: skip
        out[opt] = (ds, lrsweep.suggest_lr(ds, metric="accuracy"))
    return out


def _band(ax, lr, values, color, label, transform=lambda v: v):
    v = transform(values)
    ax.fill_between(lr, np.nanmin(v, axis=1), np.nanmax(v, axis=1), color=color, alpha=0.22, lw=0)
    ax.plot(lr, np.nanmedian(v, axis=1), color=color, lw=2.0, label=label)


def fig_digits_lr(data, out: Path) -> list[Path]:
    """Held-out accuracy (left) and final training loss (right) against lr, SGD and Adam."""
    fig = figure()
    acc_ax, loss_ax = fig.subplots(1, 2)
    for opt, (ds, lr_s) in runs().items():
        lr = ds.lr.values
        acc = ds.accuracy.transpose("lr", "init").values
        loss = ds.loss.transpose("lr", "init").values
        color = COLORS[opt]
        _band(acc_ax, lr, acc, color, LABELS[opt], lambda v: 100 * v)
        _band(loss_ax, lr, np.where(np.isfinite(loss), loss, np.nan), color, LABELS[opt])
        for ax in (acc_ax, loss_ax):
            ax.axvline(lr_s, color=color, ls="--", lw=1.4)
        k = int(np.argmin(np.abs(lr - lr_s)))
        acc_ax.plot(
            [lr_s], [100 * np.min(acc[k])], "o", color=color, ms=8, label=f"{LABELS[opt]} suggested: {lr_s:.3g}"
        )
    acc_ax.set_xscale("log")
    acc_ax.set_ylim(0, 100)
    acc_ax.set_xlabel("learning rate (log scale)")
    acc_ax.set_ylabel("held-out accuracy (%)")
    acc_ax.set_title("held-out accuracy (360 images)", fontsize=17)
    acc_ax.legend(loc="lower left", fontsize=12)
    loss_ax.set_xscale("log")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("learning rate (log scale)")
    loss_ax.set_ylabel("final training loss")
    loss_ax.set_title("training loss (1437 images)", fontsize=17)
    fig.suptitle(f"digits MLP, minibatch {BATCH}, {EPOCHS} epochs: median and range over {INITS} inits", fontsize=18)
    return save(fig, out, "17-digits-lr")


def readme_values(data=None) -> dict[str, str]:
    """The caption's numbers, from the runs."""
    found = runs()
    values = {
        "dg_steps": str(found["gd"][0].attrs["steps"]),
        "dg_ratio": f"{found['gd'][1] / found['adam'][1]:.0f}",
        "dg_batch": str(BATCH),
        "dg_epochs": str(EPOCHS),
        "dg_inits": str(INITS),
        "dg_n_lr": str(N_LR),
    }
    for opt, (ds, lr_s) in found.items():
        worst = ds.accuracy.min("init")
        values[f"dg_{opt}_range"] = f"{LRS[opt][0]:g} to {LRS[opt][1]:g}"
        values[f"dg_{opt}_lr"] = f"{lr_s:.3g}"
        values[f"dg_{opt}_acc"] = f"{100 * float(worst.sel(lr=lr_s)):.1f}"
        values[f"dg_{opt}_best"] = f"{100 * float(worst.max()):.1f}"
        values[f"dg_{opt}_best_lr"] = f"{float(worst.lr[int(worst.argmax('lr'))]):.3g}"
    return values
