"""Trainability maps: the fractal of "The boundary of neural network trainability is fractal".

Sohl-Dickstein (2024) trains one network at every point of a grid of two learning rates, one for
the input layer and one for the output layer, and colours each point by whether training worked.
The boundary between the two is fractal. :func:`trainability` makes such a map through
:func:`lrsweep.sweep` (``record="summary"``: O(1) memory per run, so a megapixel map never keeps a
trajectory; ``out=`` streams it to a resumable store)::

    ds = lrsweep.maps.trainability(x_range=(-1, 3), y_range=(0, 2), res=256, steps=500)
    lrsweep.maps.figure(ds).savefig("map.png")
    lrsweep.maps.fractal_dimension(ds.trainable).dimension

The default problem is the paper's "tanh full batch" network, :func:`lrsweep.problems.mlp`, with
its loss also written for the whole data set (``Problem.batch_loss``) so that the first layer of
a chunk of configs is one large matrix product. Ranges are log10 of the learning rates, x the
input layer's and y the output layer's, as in the paper. A run is trainable iff its ``score``
(the paper's measure: the mean of the last ``score_window`` relative losses, ``lrsweep.outcomes``)
is below 1. Its colour is the paper's: ``-sum_v`` if trainable, else ``sum_inv_v``, the sums over
every step of the relative loss and of its inverse, which the sweep accumulates as it trains
(``track_sums=True``: two numbers per run).

From the command line::

    lrsweep map --x-range -1:3 --y-range 0:2 --res 256 --steps 500 --out map.zarr --png map.png
    lrsweep map --center 1.5,1.4 --zoom 100 --png zoom.png
    lrsweep map --zoom-to 1.5,1.4 --zoom 1000 --frames 12 --out frames/ --gif zoom.gif
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _checks, problems
from ..problems._problem import Problem
from ..problems.builtins import mlp_batch_loss
from ._fractal import FractalDimension, boundary, box_counts, fractal_dimension
from ._render import colour_value, draw, figure, image_of, restretch, write_gif

__all__ = [
    "DEFAULT_X_RANGE",
    "DEFAULT_Y_RANGE",
    "FractalDimension",
    "boundary",
    "box_counts",
    "colour_value",
    "draw",
    "figure",
    "fractal_dimension",
    "image_of",
    "paper_problem",
    "restretch",
    "trainability",
    "window",
    "write_gif",
    "zoom_windows",
]

#: The default window (log10 lr): the input layer's lr from 0.1 to 10^4, the output layer's from
#: 10^1.5 to 10^3, where the paper's tanh network's boundary crosses the map.
DEFAULT_X_RANGE = (-1.0, 4.0)
DEFAULT_Y_RANGE = (1.5, 3.0)
MAX_RES = 16384


def paper_problem(batch_loss: str = "manual") -> Problem:
    """:func:`lrsweep.problems.mlp` (the paper's tanh full-batch network) with its loss also given
    for the whole data set (``batch_loss``), the notebook's ``loss(theta, X, Y)`` on all 272 points.

    ``batch_loss``: ``"manual"`` (:func:`lrsweep.problems.builtins.mlp_batch_loss`, its gradient
    written by hand: 1.3 to 1.6 times faster) or ``"autodiff"`` (the per-example loss applied to
    the whole data set, differentiated by JAX as the notebook's code is). Both are the same math,
    but near the boundary training is chaotic: a difference in the last bit of a gradient grows to
    a different trajectory within tens of steps. Autodiff in float64 rounds as the notebook's code
    does and reproduces its scores bit for bit, so :func:`trainability` uses it for float64 and
    the manual gradient for float32 (which differs from float64 there anyway)."""
    p = problems.mlp()
    per_example = getattr(p.loss, "loss", p.loss)
    if batch_loss not in ("manual", "autodiff"):
        raise ValueError(f"batch_loss={batch_loss!r} is invalid: expected 'manual' or 'autodiff'")
    whole = mlp_batch_loss() if batch_loss == "manual" else per_example
    return dataclasses.replace(p, loss=per_example, batch_loss=whole)


def _range(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is invalid: expected (lo, hi), log10 of learning rates") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and -30 <= lo and hi <= 30):
        raise ValueError(f"{name}={value!r} is invalid: expected finite lo < hi within [-30, 30] (log10 of lr)")
    return lo, hi


def grid(lo: float, hi: float, res: int) -> np.ndarray:
    """``res`` learning rates ``10**linspace(lo, hi)``, computed as the notebook does (``jnp.logspace``, float64)."""
    with jax.enable_x64(True):
        return np.asarray(jnp.logspace(lo, hi, res, dtype=jnp.float64))


def window(center, zoom: float, base_x=DEFAULT_X_RANGE, base_y=DEFAULT_Y_RANGE):
    """``(x_range, y_range)`` of a window centred at ``center = (x, y)`` (log10 lr), ``zoom`` times
    narrower than ``base_x`` and ``base_y``."""
    try:
        cx, cy = (float(v) for v in center)
    except (TypeError, ValueError):
        raise ValueError(f"center={center!r} is invalid: expected (x, y), log10 of the two learning rates") from None
    zoom = _checks.real("zoom", zoom, 1.0)
    hx, hy = (base_x[1] - base_x[0]) / 2 / zoom, (base_y[1] - base_y[0]) / 2 / zoom
    return _range("center", (cx - hx, cx + hx)), _range("center", (cy - hy, cy + hy))


def zoom_windows(target, zoom: float, frames: int, base_x=DEFAULT_X_RANGE, base_y=DEFAULT_Y_RANGE) -> list:
    """``frames`` windows from ``(base_x, base_y)`` to one ``zoom`` times narrower centred at
    ``target``: each ``zoom**(1 / (frames - 1))`` times narrower than the last, all scaled about
    one fixed point (the notebook's ``interpolate_history``), so the zoom moves smoothly."""
    frames = _checks.integer("frames", frames, 2, 1000)
    zoom = _checks.real("zoom", zoom, 1.0, closed_low=False)
    c0 = np.array([(base_x[0] + base_x[1]) / 2, (base_y[0] + base_y[1]) / 2])
    w0 = np.array([base_x[1] - base_x[0], base_y[1] - base_y[0]])
    target = np.asarray(target, np.float64)
    fixed = (target - c0 / zoom) / (1 - 1 / zoom)
    out = []
    for k in range(frames):
        s = zoom ** (k / (frames - 1))
        c, w = fixed + (c0 - fixed) / s, w0 / s
        out.append(((c[0] - w[0] / 2, c[0] + w[0] / 2), (c[1] - w[1] / 2, c[1] + w[1] / 2)))
    return out


def _groups(problem: Problem, x_group: str | None, y_group: str | None) -> tuple[str, str]:
    names = list(problem.init) if isinstance(problem.init, dict) else []
    if x_group is None or y_group is None:
        if len(names) != 2:
            raise ValueError(
                f"problem {problem.name!r} has parameters {names}: name x_group and y_group "
                "(the input and output layers' parameters)"
            )
        x_group, y_group = x_group or names[0], y_group or names[-1]
    for arg, g in (("x_group", x_group), ("y_group", y_group)):
        if g not in names:
            raise ValueError(f"{arg}={g!r} is invalid: expected one of the problem's parameters {names}")
    if x_group == y_group:
        raise ValueError(f"x_group and y_group are both {x_group!r}: expected two different parameters")
    return x_group, y_group


def trainability(
    problem: Problem | str | None = None,
    x_range=DEFAULT_X_RANGE,
    y_range=DEFAULT_Y_RANGE,
    res: int = 256,
    steps: int = 500,
    precision: str = "float32",
    out: str | Path | None = None,
    *,
    x_group: str | None = None,
    y_group: str | None = None,
    **settings: Any,
) -> xr.Dataset:
    """A trainability map: one run per pixel of a ``res x res`` grid of two learning rates.

    Args:
      problem: None (the paper's network, :func:`paper_problem`), a :class:`lrsweep.Problem` or a
        problem's name; its two parameters (or ``x_group`` and ``y_group``) get the two lrs.
      x_range, y_range: ``(lo, hi)``, log10 of the input layer's (x) and output layer's (y) lr;
        both ends are on the grid (``jnp.logspace(lo, hi, res)``, as the notebook).
      res: pixels per side (2 to 16384).
      steps: gradient-descent steps per run (the paper: 500 or 1000).
      precision: ``"float32"`` (fast) or ``"float64"`` (the paper's).
      out: a Zarr store: results stream there and the same call resumes a killed run.
      x_group, y_group: the parameter groups of the two axes (default: the problem's first and
        last parameter, ``W0`` and ``W1``).
      settings: more :func:`lrsweep.sweep` settings (``score_window``, ``memory``, ``chunk_size``,
        ``progress``, ...); ``record`` is always ``"summary"`` and ``track_sums`` always True.

    Returns:
      The sweep's ``xarray.Dataset`` over dims ``lr_<x_group>`` and ``lr_<y_group>``: ``score``,
      ``trainable`` (``score < 1``), ``colour`` (:func:`colour_value`, the paper's: negative iff
      trainable), ``sum_v`` and ``sum_inv_v`` (what the colour is made of), ``outcome``,
      ``event_epoch``, ``loss`` (final), the parameters, ...; attrs
      ``map_x_range``, ``map_y_range``, ``map_x_dim``, ``map_y_dim`` and ``fraction_trainable``.
    """
    from .. import api

    x_range, y_range = _range("x_range", x_range), _range("y_range", y_range)
    res = _checks.integer("res", res, 2, MAX_RES)
    steps = _checks.integer("steps", steps, 1)
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision={precision!r} is invalid: expected 'float32' or 'float64'")
    if settings.get("record", "summary") != "summary":
        raise ValueError(f"record={settings['record']!r} is invalid: a map keeps summaries only ('summary')")
    if not settings.get("track_sums", True):
        raise ValueError("track_sums=False is invalid: a map's colour is made of the sums")
    for key in ("lr", "init", "epochs", "groups", "problem_seed"):
        if key in settings:
            raise ValueError(f"{key}={settings[key]!r} is invalid here: a map sets it from its window and steps")
    if problem is None:  # float64 differentiates as the notebook does: the same trajectories, bit for bit
        problem = paper_problem("manual" if precision == "float32" else "autodiff")
    else:
        problem = problems.resolve(problem)
    gx, gy = _groups(problem, x_group, y_group)
    lr = {gx: grid(*x_range, res), gy: grid(*y_range, res)}
    settings.setdefault("progress", False)
    settings.pop("track_sums", None)
    ds = api.sweep(
        problem,
        lr,
        epochs=steps,
        precision=precision,
        record="summary",
        track_sums=True,
        out=None if out is None else str(out),
        **settings,
    )
    if "init" in ds.dims:
        ds = ds.isel(init=0, drop=True)
    x_dim, y_dim = f"lr_{gx}", f"lr_{gy}"
    ds = ds.transpose(x_dim, y_dim, ...)
    score = ds["score"].values
    ds["trainable"] = ((x_dim, y_dim), score < 1, {"long_name": "trainable (score < 1)"})
    ds["colour"] = (
        (x_dim, y_dim),
        colour_value(score, ds["sum_v"].values, ds["sum_inv_v"].values),
        {"long_name": "the paper's colour value: -sum_v if trainable, else sum_inv_v", "units": "1"},
    )
    ds.attrs.update(
        map_x_range=list(x_range),
        map_y_range=list(y_range),
        map_x_dim=x_dim,
        map_y_dim=y_dim,
        fraction_trainable=float(np.mean(score < 1)),
    )
    return ds


def summary_line(ds, seconds: float | None = None) -> str:
    """``trainable 41.2% of 65,536 pixels; fractal dimension 1.43 (95% CI 1.38-1.48, boxes 2-64 px)``."""
    fd = fractal_dimension(ds["trainable"].values)
    n = ds["trainable"].size
    text = f"trainable {100 * ds.attrs['fraction_trainable']:.1f}% of {n:,} pixels; "
    if math.isnan(fd.dimension):
        text += "fractal dimension: none (no boundary in the window)"
    else:
        text += (
            f"fractal dimension {fd.dimension:.3f} (95% CI {fd.ci_low:.3f} to {fd.ci_high:.3f}, "
            f"boxes {fd.sizes[0]} to {fd.sizes[-1]} px, boundary {100 * fd.boundary_fraction:.1f}% of pixels)"
        )
    if seconds is not None:
        text += f"; time {seconds:.1f} s"
    return text


__all__ += ["summary_line"]
