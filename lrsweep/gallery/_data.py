"""The sweeps the lesson gallery draws from, run once through the public API.

Nothing here trains anything itself: every number comes from ``lrsweep.sweep``, ``lrsweep.trace``
and ``lrsweep.theory`` on the built-in problems.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import lrsweep

from ._style import LESSON_LRS, LR_COLORS

EPOCHS = 1000
#: The lesson's arithmetic: forward differences, float32 parameters, float64 loss and update.
LESSON: dict[str, Any] = {"grad": "forward", "precision": "mixed"}
EXPLORER_LRS = 100
BOWL_DIM, BOWL_COND = 2, 100.0
TRAJ_CHUNK = 1024
GIF_MAX_BYTES = 2_000_000


class Data:
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
        """One run's per-epoch values of ``var`` at ``lr`` (first init) from a trajectory sweep ``ds``."""
        return ds[var].sel(lr=lr, init=0).values


def _explorer_lrs() -> np.ndarray:
    """100 log-spaced lrs from 0.001 to 1 (4 significant digits, so 0.01, 0.1 and 1 are exact),
    plus theory's optimal lr and the lesson's pair either side of the critical one (0.119, 0.12)."""
    lrs = [float(f"{v:.4g}") for v in np.logspace(-3, 0, EXPLORER_LRS)]
    return np.unique(np.array(lrs + [0.1176, 0.119, 0.12]))
