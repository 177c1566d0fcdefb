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
    lrsweep map --problem linear --x-axis init_w --y-axis lr --x-range -2:1 --y-range -3:0.5

Any problem maps over two of its sweep axes (``lrsweep.maps._axes``): two parameter groups' lrs,
or a scalar parameter's initial value or an optimizer hyperparameter against one lr.
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

from .. import _checks, problems, results
from ..problems._problem import Problem
from ..problems.builtins import mlp_batch_loss
from . import _axes
from . import settings as settings_mod
from ._fractal import (
    METHODS,
    FractalDimension,
    NotMeaningfulWarning,
    boundary,
    box_counts,
    edges_2x2,
    fractal_dimension,
)
from ._render import colour_value, draw, figure, image_of, labels_of, restretch, write_gif

__all__ = [
    "DEFAULT_X_RANGE",
    "DEFAULT_Y_RANGE",
    "METHODS",
    "FractalDimension",
    "NotMeaningfulWarning",
    "boundary",
    "box_counts",
    "colour_value",
    "draw",
    "edges_2x2",
    "figure",
    "fractal_dimension",
    "image_of",
    "labels_of",
    "open",
    "paper_problem",
    "restretch",
    "trainability",
    "window",
    "write_gif",
    "zoom_windows",
]

#: The default window (log10 lr): the input layer's lr from 0.1 to 10^4, the output layer's from
#: 10^1.5 to 10^3, where the paper's tanh network's boundary crosses the map.
DEFAULT_X_RANGE, DEFAULT_Y_RANGE = settings_mod.WINDOWS["tanh"]
MAX_RES = 16384
DEFAULT_RES = 256
DEFAULT_STEPS = 500
PRECISIONS = ("auto", "float32", "float64")
#: float64 by default unless a sample of the window agrees in float32 (``precision="auto"``).
DEFAULT_PRECISION = "auto"
#: The precision check trains a ``CHECK_RES x CHECK_RES`` sample of a map's pixels in float64.
CHECK_RES = 16
#: ``precision="auto"`` takes float32 only where the sample's verdicts agree on this share of pixels.
AUTO_AGREEMENT = 0.995


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


def _map_problem(problem, setting, precision, steps, x_axis, y_axis, net, axes_kw) -> settings_mod.MapProblem:
    """The setting's :class:`settings.MapProblem`, or a problem's over ``x_axis`` and ``y_axis``
    (``_axes``: two lr groups, or an initial value or a hyperparameter against one lr)."""
    if problem is None:
        for arg, value in (("x_axis", x_axis), ("y_axis", y_axis)):
            if value is not None:
                raise ValueError(f"{arg}={value!r} is invalid without a problem: a setting names its own axes")
        return settings_mod.setting_problem(
            setting or settings_mod.DEFAULT_SETTING, steps=steps, precision=precision, **net
        )
    if setting is not None or net:
        raise ValueError(
            f"setting={setting!r} and {sorted(net)} are invalid with a problem: they choose the paper's network"
        )
    return _axes.user_problem(problem, x_axis, y_axis, **axes_kw)


def _sweep_map(mp: settings_mod.MapProblem, xs, ys, steps, precision, out, settings) -> xr.Dataset:
    """One run per pixel of ``xs x ys`` (axis values), finished by :func:`_finish`."""
    from .. import api

    kw = {**settings, **_axes.sweep_kwargs(mp, xs, ys)}
    lr = kw.pop("lr")
    ds = api.sweep(
        mp.problem, lr, epochs=steps, precision=precision, record="summary", track_sums=True,
        out=None if out is None else str(out), **kw,
    )  # fmt: skip
    return _finish(ds)


def _finish(ds: xr.Dataset) -> xr.Dataset:
    """A sweep's Dataset as a map: dims ``(x, y)``, ``trainable``, ``colour`` and the map's attrs."""
    for dim in ("init", "lr_step"):
        if dim in ds.dims and ds.sizes[dim] == 1:
            ds = ds.isel({dim: 0}, drop=True)
    x_dim, y_dim = _axes.map_dims(ds)
    ds = ds.transpose(x_dim, y_dim, ...)
    score = np.asarray(ds["score"].values)
    ds["trainable"] = ((x_dim, y_dim), score < 1, {"long_name": "trainable (score < 1)"})
    ds["colour"] = (
        (x_dim, y_dim),
        colour_value(score, ds["sum_v"].values, ds["sum_inv_v"].values),
        {"long_name": "the paper's colour value: -sum_v if trainable, else sum_inv_v", "units": "1"},
    )
    xs, ys = ds[x_dim].values, ds[y_dim].values
    ds.attrs.update(
        map_x_range=[float(np.log10(xs[0])), float(np.log10(xs[-1]))],
        map_y_range=[float(np.log10(ys[0])), float(np.log10(ys[-1]))],
        map_x_dim=x_dim,
        map_y_dim=y_dim,
        fraction_trainable=float(np.mean(score < 1)),
    )
    return ds


def open(store: str | Path, *, verify: bool = True) -> xr.Dataset:  # noqa: A001 - as lrsweep.open
    """Reopen a map's store (``trainability(..., out=store)``) as the Dataset :func:`trainability`
    returned: ``trainable``, ``colour`` and the map's attrs included (read with :func:`lrsweep.open`)."""
    ds = _finish(results.open(store, verify=verify))
    return ds.assign_attrs(map_precision=ds.attrs.get("precision"))


def check_indices(res: int) -> np.ndarray:
    """The rows and columns of a map's precision check: ``CHECK_RES`` evenly spread indices."""
    return np.unique(np.linspace(0, res - 1, min(res, CHECK_RES)).round().astype(int))


def trainability(
    problem: Problem | str | None = None,
    x_range=None,
    y_range=None,
    res: int = DEFAULT_RES,
    steps: int = DEFAULT_STEPS,
    precision: str = DEFAULT_PRECISION,
    out: str | Path | None = None,
    *,
    setting: str | None = None,
    width: int | None = None,
    depth: int | None = None,
    n_data: int | None = None,
    target_dim: int | None = None,
    prng: str | None = None,
    offset_mode: str | None = None,
    x_axis: str | None = None,
    y_axis: str | None = None,
    **settings: Any,
) -> xr.Dataset:
    """A trainability map: one run per pixel of a ``res x res`` grid of two hyperparameters.

    Args:
      problem: None (the paper's network in ``setting``), a :class:`lrsweep.Problem` or a problem
        named as :func:`lrsweep.sweep` takes it (a built-in, a registered name or a marked
        ``"module:function"``, with ``problem_args``); its axes are ``x_axis`` and ``y_axis``.
      x_range, y_range: ``(lo, hi)``, log10 of the x and y axes' values (default: the setting's
        window, ``settings.WINDOWS``; a problem needs both); both ends are on the grid
        (``jnp.logspace(lo, hi, res)``).
      res: pixels per side (2 to 16384).
      steps: gradient-descent steps per run (the paper: 500 or 1000).
      precision: ``"float64"`` (the paper's), ``"float32"`` (faster; the map then also trains a
        ``CHECK_RES x CHECK_RES`` sample of its pixels in float64 and records how many verdicts
        agree), or ``"auto"`` (the default): that sample in both, then float32 for the whole map
        only if they agree on at least ``AUTO_AGREEMENT`` of it, else float64.
      out: a Zarr store: results stream there and the same call resumes a killed run.
      setting: one of ``settings.SETTINGS`` (default ``"tanh"``; lrsweep.maps.settings).
      width, depth, n_data, target_dim: the network and data (:func:`lrsweep.problems.mlp`).
      prng: ``"jax"`` (default, today's draws) or ``"paper"`` (the draws of the paper's figures).
      offset_mode: the paraminit setting's ``"every_step"`` (default, the notebook's) or ``"init"``.
      x_axis, y_axis: a problem's axes, named as the sweep names its dims: ``lr_<group>`` and
        ``lr_<group>`` (two parameters', or ``groups=``' groups' lrs; the default for a problem of
        two parameters: the first on x), or ``init_<name>`` (a scalar parameter's initial value)
        or ``opt_<name>`` (a hyperparameter of ``optimizer=``) on x with ``lr`` (one lr for every
        parameter) on y. Every axis is log-spaced (lrsweep.maps._axes).
      settings: more :func:`lrsweep.sweep` settings (``score_window``, ``memory``, ``chunk_size``,
        ``progress``, ...; with a problem also ``problem_args``, ``groups``, ``optimizer`` and
        ``optimizer_kwargs``); ``record`` is always ``"summary"`` and ``track_sums`` always True.

    Returns:
      The sweep's ``xarray.Dataset`` over dims ``(x, y)``: ``lr_W0, lr_W1`` (``lr_even, lr_odd``
      for deeper networks; ``init_offset, lr`` for paraminit): ``score``, ``trainable``
      (``score < 1``), ``colour`` (:func:`colour_value`, the paper's: negative iff trainable),
      ``sum_v`` and ``sum_inv_v``, ``outcome``, ``loss`` (final), the parameters, ...; attrs
      ``map_x_range``, ``map_y_range``, ``map_x_dim``, ``map_y_dim``, ``fraction_trainable``,
      ``map_precision`` and, where float32 was used, ``f32_f64_agreement`` over
      ``f32_f64_checked`` pixels.
    """
    net = {
        k: v
        for k, v in dict(
            width=width, depth=depth, n_data=n_data, target_dim=target_dim, prng=prng, offset_mode=offset_mode
        ).items()
        if v is not None
    }
    window = settings_mod.WINDOWS[_checks.choice("setting", setting or "tanh", settings_mod.SETTINGS)]
    if problem is not None:
        for arg, value in (("x_range", x_range), ("y_range", y_range)):
            if value is None:
                raise ValueError(f"{arg}=None is invalid with a problem: expected (lo, hi), log10 of its axis's values")
    x_range = _range("x_range", window[0] if x_range is None else x_range)
    y_range = _range("y_range", window[1] if y_range is None else y_range)
    res = _checks.integer("res", res, 2, MAX_RES)
    steps = _checks.integer("steps", steps, 1)
    precision = _checks.choice("precision", precision, PRECISIONS)
    if settings.get("record", "summary") != "summary":
        raise ValueError(f"record={settings['record']!r} is invalid: a map keeps summaries only ('summary')")
    if not settings.get("track_sums", True):
        raise ValueError("track_sums=False is invalid: a map's colour is made of the sums")
    for key in ("lr", "init", "epochs", "problem_seed", "optimizer_axes"):
        if key in settings:
            raise ValueError(f"{key}={settings[key]!r} is invalid here: a map sets it from its window and steps")
    axes_kw = {"problem_args": settings.get("problem_args")}
    axes_kw.update({key: settings.pop(key) for key in ("groups", "optimizer") if key in settings})
    for key in ("groups", "optimizer", "optimizer_kwargs", "problem_args"):
        if problem is None and settings.get(key, axes_kw.get(key)) is not None:
            raise ValueError(f"{key}=... is invalid without a problem: a setting is the paper's network and plain gd")
    settings.setdefault("progress", False)
    settings.pop("track_sums", None)
    xs, ys = grid(*x_range, res), grid(*y_range, res)
    check = {}
    if precision != "float64":
        k = check_indices(res)
        quiet = {**settings, "progress": False}
        quiet.pop("out", None)
        mp64 = _map_problem(problem, setting, "float64", steps, x_axis, y_axis, net, axes_kw)
        ref = _sweep_map(mp64, xs[k], ys[k], steps, "float64", None, quiet)["trainable"].values
        if precision == "auto":
            mp32 = _map_problem(problem, setting, "float32", steps, x_axis, y_axis, net, axes_kw)
            sample = _sweep_map(mp32, xs[k], ys[k], steps, "float32", None, quiet)["trainable"].values
            check["auto"] = float(np.mean(sample == ref))
            precision = "float32" if check["auto"] >= AUTO_AGREEMENT else "float64"
        check.update(k=k, ref=ref)
    mp = _map_problem(problem, setting, precision, steps, x_axis, y_axis, net, axes_kw)
    ds = _sweep_map(mp, xs, ys, steps, precision, out, settings)
    ds.attrs.update(map_precision=precision)
    if "auto" in check:  # what precision="auto" measured on its sample before choosing
        ds.attrs.update(auto_sample_agreement=check["auto"], auto_sample_pixels=int(check["ref"].size))
    if precision == "float32" and check:
        k = check["k"]
        mine = ds["trainable"].values[np.ix_(k, k)]
        ds.attrs.update(f32_f64_agreement=float(np.mean(mine == check["ref"])), f32_f64_checked=int(mine.size))
    return ds


def dimension_text(fd: FractalDimension) -> str:
    """``fractal dimension 1.43 (lsq, 95% CI 1.38 to 1.48, boxes 2 to 64 px, ...)``, or why it is not meaningful."""
    if fd.reason == "no boundary":
        return "fractal dimension: none (no boundary in the window)"
    if not fd.meaningful or math.isnan(fd.dimension):
        return f"fractal dimension: not meaningful at this resolution ({fd.reason})"
    interval = "95% CI" if fd.method == "lsq" else "quartiles of local slopes"
    return (
        f"fractal dimension {fd.dimension:.3f} ({fd.method}, {interval} {fd.ci_low:.3f} to {fd.ci_high:.3f}, "
        f"boxes {fd.sizes[0]} to {fd.sizes[-1]} px, boundary {100 * fd.boundary_fraction:.1f}% of pixels)"
    )


def precision_text(ds) -> str:
    """``float64`` or ``float32 (agrees with float64 on 99.2% of a 256-pixel sample)``."""
    text = str(ds.attrs.get("map_precision", ""))
    if "auto_sample_agreement" in ds.attrs and "f32_f64_agreement" not in ds.attrs:
        text += (
            f" (auto: float32 verdicts agreed with float64 on {100 * ds.attrs['auto_sample_agreement']:.1f}% of a "
            f"{ds.attrs['auto_sample_pixels']}-pixel sample, below {100 * AUTO_AGREEMENT:g}%)"
        )
    if "f32_f64_agreement" in ds.attrs:
        text += (
            f" (verdicts agree with float64 on {100 * ds.attrs['f32_f64_agreement']:.1f}% of a "
            f"{ds.attrs['f32_f64_checked']}-pixel sample)"
        )
    return text


def summary_line(ds, seconds: float | None = None, method: str = "lsq") -> str:
    """``trainable 41.2% of 65,536 pixels; <dimension_text>; precision ...; time 3.1 s``."""
    fd = fractal_dimension(ds["trainable"].values, method=method, warn=False)
    n = ds["trainable"].size
    text = f"trainable {100 * ds.attrs['fraction_trainable']:.1f}% of {n:,} pixels; {dimension_text(fd)}"
    if ds.attrs.get("map_precision"):
        text += f"; {precision_text(ds)}"
    if seconds is not None:
        text += f"; time {seconds:.1f} s"
    return text


__all__ += ["dimension_text", "precision_text", "summary_line"]
