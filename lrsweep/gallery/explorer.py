"""``explorer.html``: one self-contained page with a learning-rate slider over the lesson's runs.

The page (``templates/explorer.html``: HTML, CSS and inline JavaScript drawing on ``<canvas>``)
is package data; the build embeds the data as JSON in place of its ``__DATA__`` placeholder. No
network, no timestamps: the same runs give the same bytes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from matplotlib import colors as mcolors

import lrsweep

from . import _templates
from ._data import Data
from ._style import OUTCOME_COLORS
from .landscape import LAND_CMAP, LAND_LEVELS


def _b64_f32(values) -> str:
    """Base64 of little-endian float32: compact, exact, and decoded by the page with a Float32Array."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def explorer_data(data: Data) -> dict:
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
        "outcome": [str(v) for v in lrsweep.outcome_names(ds.outcome.isel(init=0).values)],
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


def fig_explorer(data: Data, out: Path) -> list[Path]:
    """Write ``explorer.html``: the page template with :func:`explorer_data` embedded as JSON."""
    payload = json.dumps(explorer_data(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    path = out / "explorer.html"
    path.write_text(_templates.read("explorer.html").replace("__DATA__", payload), encoding="utf-8")
    return [path]
