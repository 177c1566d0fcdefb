"""A sweep reduced to what one explorer page shows, within the page's size budget.

Two shapes of page:

- **1-D** (one learning-rate axis swept): every other dim (``init``, ``problem_seed``, an axis of
  size 1, ...) is folded into *runs*, and the page shows, per learning rate, each run's final loss,
  outcome and (for trajectories) loss curve and parameters.
- **2-D** (two swept axes among ``lr``/``lr_<group>``, ``opt_<name>`` and ``init_<name>``): a map
  over the first two, the rest folded into runs; each cell's colour is its worst outcome or its
  median final loss.

Arrays travel as base64 of little-endian typed arrays (float32, int8, int32), which the page decodes
with ``Float32Array`` and friends: compact and exact. Large sweeps are thinned by even strides
(both ends kept) until the page fits ``PAGE_MAX_BYTES``; the page says what was dropped.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import xarray as xr

from .. import answer, identity, outcomes, problems, suggest, theory
from ..colors import OUTCOME_COLORS

#: The page's size budget: every page stays below it (a 256-lr x 3-init x 1000-epoch trajectory
#: store with both parameters takes about 2.7 MB).
PAGE_MAX_BYTES = 5_000_000
#: What the embedded arrays may take, in float32 values (base64: 4/3 bytes per byte): about 4 MB of
#: text, leaving room for the page itself (~40 KB) and the JSON around the arrays.
VALUES_MAX = 750_000
#: 1-D pages: learning rates on the slider, at most.
LR_MAX = 2048
#: Runs per learning rate (or per map cell) whose values are embedded, at most.
RUNS_MAX = 16
#: 2-D pages: cells along each axis of the map, at most.
MAP_MAX = 256
#: Epochs per curve, at most (a curve is drawn on a few hundred pixels).
EPOCHS_MAX = 1001
#: Fewer epochs than this per curve and a 2-D page drops its curves instead.
EPOCHS_MIN = 16
#: Parameters' trajectories are drawn for problems with at most this many scalar parameters.
PARAMS_MAX = 4
#: ``suggest_lr`` methods shown on 1-D pages, in this order.
METHODS = ("largest_stable", "valley", "lowest_loss")
#: Worst first: the order in which a map cell's runs decide its colour.
SEVERITY = {
    outcomes.CONVERGED: 0,
    outcomes.UNFINISHED: 1,
    outcomes.NO_PROGRESS: 2,
    outcomes.STUCK: 3,
    outcomes.DIVERGED: 4,
    outcomes.PENDING: 5,
}
#: Variables of a result that are not parameters.
NOT_PARAMS = {"loss", "outcome", "event_epoch", "score", "best_loss", "best_epoch"}
#: Per-run variables shown when present (added by newer versions of lrsweep).
EXTRAS = ("score", "best_loss", "best_epoch")


def b64(values, dtype: str) -> str:
    """Base64 of ``values`` as a little-endian typed array (``"<f4"``, ``"<i4"``, ``"i1"``)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def stride(n: int, m: int) -> np.ndarray:
    """At most ``m`` indices of ``range(n)``, evenly spaced, first and last kept."""
    if n <= m:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max(m, 2))).astype(np.int64))


def _is_axis(dim: str) -> bool:
    return dim == "lr" or dim.startswith(("lr_", "opt_", "init_"))


def map_axes(ds: xr.Dataset) -> list[str]:
    """The swept axes a page is drawn over: one learning-rate dim (1-D) or two axes (2-D)."""
    dims = [str(d) for d in ds["outcome"].dims]
    lr_dims = [d for d in dims if d == "lr" or d.startswith("lr_")]
    if not lr_dims:
        raise ValueError(f"source is invalid: its outcome has no learning-rate dim (dims {dims})")
    swept = [d for d in dims if _is_axis(d) and ds.sizes[d] > 1]
    if len(swept) >= 2:
        return swept[:2]
    if swept and swept[0] not in lr_dims:  # one non-lr axis swept: map it against the lr
        return [lr_dims[0], swept[0]]
    return [swept[0] if swept else lr_dims[0]]


def _run_labels(ds: xr.Dataset, rest: list[str], picks: dict[str, np.ndarray]) -> list[str]:
    """A short label per run (the folded dims' values), in C order over ``rest``."""
    if not rest:
        return ["run"]
    per_dim = []
    for d in rest:
        idx = picks[d]
        values = ds[d].values[idx] if d in ds.coords else idx
        labels = [f"{d} {_fmt(v)}" for v in values]
        extras = [str(c) for c in ds.coords if c != d and ds[c].dims == (d,) and str(c).startswith("init_")]
        if extras and len(extras) <= 4:
            cols = {c: np.asarray(ds[c].values)[idx] for c in extras}
            labels = [
                f"{lab} ({', '.join(f'{c[5:]}={_fmt(cols[c][i])}' for c in extras)})" for i, lab in enumerate(labels)
            ]
        per_dim.append(labels)
    out = [""]
    for labels in per_dim:
        out = [f"{a}, {b}" if a else b for a in out for b in labels]
    return out


def _fmt(v) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _params(ds: xr.Dataset) -> list[str]:
    """Parameter variables kept in a trajectory, when the problem has at most ``PARAMS_MAX`` scalars."""
    dims = ds["outcome"].dims + ("epoch",)
    names = [str(v) for v in ds.data_vars if v not in NOT_PARAMS and "epoch" in ds[v].dims]
    if not names or len(names) > PARAMS_MAX or any(ds[v].dims != dims for v in names):
        return []
    return names


def _numbers(spec_attr: Any) -> dict:
    try:
        return json.loads(spec_attr) if isinstance(spec_attr, str) else {}
    except ValueError:
        return {}


def builtin_problem(ds: xr.Dataset) -> problems.Problem | None:
    """The sweep's problem when it is a built-in name with default arguments and one instance."""
    spec = _numbers(ds.attrs.get("spec"))
    name = ds.attrs.get("problem")
    if not isinstance(name, str) or name not in problems.registry.BUILTINS:
        return None
    if spec.get("problem_args") or spec.get("problem_seed") is not None:
        return None
    problem = problems.get(name)
    saved = spec.get("problem")
    # The spec names the problem, or identifies it by name and data: a user's own problem that
    # happens to be called "linear" is not the built-in one.
    if saved != name and saved != getattr(identity, "problem_id", lambda p: None)(problem):
        return None
    return problem


def critical_lr(ds: xr.Dataset, lr_dim: str) -> float | None:
    """Theory's critical lr for plain gradient descent on a built-in problem; None where unknown."""
    if lr_dim != "lr" or ds.attrs.get("optimizer") != "gd" or any(str(d).startswith("opt_") for d in ds.dims):
        return None
    problem = builtin_problem(ds)
    if problem is None:
        return None
    try:
        return float(theory.critical_lr(problem))
    except (ValueError, ArithmeticError):  # e.g. a Hessian that is not positive at the minimum
        return None


def suggestion(ds: xr.Dataset, lr_dim: str) -> dict[str, Any] | None:
    """The answer every report gives (``lrsweep.answer.suggestion``): lr, method, across, metric,
    how, the joint point and its one-line text; None where it has none. The page opens on it."""
    view = ds if lr_dim == "lr" else ds.rename({lr_dim: "lr"})
    try:
        found = answer.suggestion(view)
    except (ValueError, KeyError, TypeError):  # a result it cannot read
        return None
    if found.lr is None:
        return None
    return {**found.facts(), "text": found.text()}


def suggested(ds: xr.Dataset, lr_dim: str) -> dict[str, float]:
    """``lrsweep.suggest_lr`` by each of ``METHODS`` that gives an answer (other marks to jump to)."""
    view = ds if lr_dim == "lr" else ds.rename({lr_dim: "lr"})
    out = {}
    for method in METHODS:
        try:
            out[method] = suggest.answer(view, method, "worst", "loss", 0.0)
        except (ValueError, KeyError, TypeError):  # no lr qualifies, or a result it cannot read
            continue
    return out


def _final(ds: xr.Dataset) -> xr.DataArray | None:
    if "loss" not in ds:
        return None
    loss = ds["loss"]
    return loss.isel(epoch=-1) if "epoch" in loss.dims else loss


def _grid(da: xr.DataArray, order: list[str], picks: dict[str, np.ndarray], dtype) -> np.ndarray:
    """``da`` at the picked indices, dims in ``order`` (then epoch), as a numpy array."""
    sub = da.isel({d: picks[d] for d in order if d in da.dims})
    return np.asarray(sub.transpose(*order, ...).values, dtype=dtype)


def _worst(codes: np.ndarray) -> np.ndarray:
    """Per row of ``codes`` (..., R): the worst outcome code (``SEVERITY``)."""
    rank = np.vectorize(SEVERITY.get, otypes=[np.int8])(codes)
    inverse = np.array(sorted(SEVERITY, key=lambda code: SEVERITY[code]), dtype=np.int8)
    return inverse[rank.max(axis=-1)]


def build(ds: xr.Dataset, values_max: int = VALUES_MAX) -> dict[str, Any]:
    """The page's data for ``ds`` (a sweep's result, in memory or a store opened lazily)."""
    axes = map_axes(ds)
    dims = [str(d) for d in ds["outcome"].dims]
    rest = [d for d in dims if d not in axes]
    n_runs = int(np.prod([ds.sizes[d] for d in rest], dtype=np.int64)) if rest else 1
    traj = "epoch" in ds.dims
    params = _params(ds) if traj and len(axes) == 1 else []
    has_loss_curves = traj and "loss" in ds and "epoch" in ds["loss"].dims
    notes: list[str] = []

    # -- how much fits: axes first, then runs, then epochs per curve --------------------------
    cap = LR_MAX if len(axes) == 1 else MAP_MAX
    picks = {d: stride(ds.sizes[d], cap) for d in axes}
    # Runs: strided along the folded dims, the last (innermost) dims thinned first.
    room = RUNS_MAX
    for d in reversed(rest):
        picks[d] = stride(ds.sizes[d], max(1, room))
        room = max(1, room // len(picks[d]))
    runs = int(np.prod([len(picks[d]) for d in rest], dtype=np.int64)) if rest else 1
    cells = int(np.prod([len(picks[d]) for d in axes], dtype=np.int64))
    n_epochs = ds.sizes["epoch"] if traj else 0
    series = (1 + len(params)) if has_loss_curves else 0
    fixed = cells * runs * (3 + len(EXTRAS))
    epochs_kept = 0
    if series:
        epochs_kept = min(n_epochs, EPOCHS_MAX, max(0, (values_max - fixed) // (cells * runs * series)))
        while len(axes) == 1 and epochs_kept < 100 < n_epochs and len(picks[axes[0]]) > 64:
            picks[axes[0]] = stride(ds.sizes[axes[0]], len(picks[axes[0]]) // 2)
            cells = len(picks[axes[0]])
            fixed = cells * runs * (3 + len(EXTRAS))
            epochs_kept = min(n_epochs, EPOCHS_MAX, max(0, (values_max - fixed) // (cells * runs * series)))
        if len(axes) == 2 and epochs_kept < EPOCHS_MIN:
            notes.append(
                f"loss curves left out: {cells:,} cells x {runs} runs would leave fewer than {EPOCHS_MIN} epochs "
                "per curve within the page's budget"
            )
            series = epochs_kept = 0
    picks["epoch"] = stride(n_epochs, max(2, epochs_kept)) if series else np.arange(0)

    for d in axes:
        if len(picks[d]) < ds.sizes[d]:
            notes.append(f"{len(picks[d]):,} of {ds.sizes[d]:,} values of {d} (evenly spaced, both ends kept)")
    if runs < n_runs:
        notes.append(f"{runs} of {n_runs:,} runs per {'learning rate' if len(axes) == 1 else 'cell'}")
    if series and len(picks["epoch"]) < n_epochs:
        notes.append(f"{len(picks['epoch']):,} of {n_epochs:,} recorded epochs per curve (evenly spaced)")
    if notes:
        notes.insert(0, f"Downsampled to fit the page's {PAGE_MAX_BYTES / 1e6:.0f} MB budget:")

    # -- the arrays --------------------------------------------------------------------------
    order = axes + rest
    shape = [len(picks[d]) for d in axes] + [runs]
    codes = _grid(ds["outcome"], order, picks, np.int8).reshape(shape)
    data: dict[str, Any] = {
        "kind": "1d" if len(axes) == 1 else "2d",
        "axes": [
            {"name": d, "values": [float(v) for v in np.asarray(ds[d].values)[picks[d]]], "label": _axis_label(ds, d)}
            for d in axes
        ],
        "runs": _run_labels(ds, rest, picks),
        "n_runs": n_runs,
        "outcome": b64(codes, "i1"),
        "event_epoch": b64(_grid(ds["event_epoch"], order, picks, np.int32).reshape(shape), "<i4"),
        "notes": notes,
        "extras": {},
    }
    final = _final(ds)
    if final is not None:
        data["final"] = b64(_grid(final, order, picks, np.float32).reshape(shape), "<f4")
    for name in EXTRAS:
        if name in ds and ds[name].dims == tuple(dims):
            data["extras"][name] = b64(_grid(ds[name], order, picks, np.float32).reshape(shape), "<f4")
    if len(axes) == 2 and runs < n_runs:  # the map's colour from every run, not the embedded ones
        all_picks = {**picks, **{d: np.arange(ds.sizes[d]) for d in rest}}
        full = _grid(ds["outcome"], order, all_picks, np.int8).reshape(shape[:2] + [n_runs])
        data["worst"] = b64(_worst(full), "i1")
        if final is not None:
            loss = _grid(final, order, all_picks, np.float64).reshape(shape[:2] + [n_runs])
            loss = np.where(np.isfinite(loss), loss, np.inf)
            data["median"] = b64(np.median(loss, axis=-1), "<f4")
    if series:
        epochs = np.asarray(ds["epoch"].values)[picks["epoch"]]
        data["epochs"] = [int(e) for e in epochs]
        curve_picks = picks
        data["loss"] = b64(_grid(ds["loss"], order + ["epoch"], curve_picks, np.float32), "<f4")
        data["params"] = {p: b64(_grid(ds[p], order + ["epoch"], curve_picks, np.float32), "<f4") for p in params}
    elif traj and len(axes) == 1 and not has_loss_curves:
        notes.append("this trajectory kept no loss: no loss curves")
    if traj and len(axes) == 1 and not params:
        scalars = [v for v in ds.data_vars if v not in NOT_PARAMS]
        if scalars:
            notes.append(f"parameters' trajectories are drawn for at most {PARAMS_MAX} scalar parameters")
    data["epochs_total"] = int(ds.attrs.get("epochs", n_epochs - 1 if traj else 0))
    return data


def _axis_label(ds: xr.Dataset, dim: str) -> str:
    long_name = ds[dim].attrs.get("long_name") if dim in ds.coords else None
    return f"{long_name} ({dim})" if long_name and long_name != dim else dim


def outcome_colors() -> dict[str, str]:
    """The gallery's colours for the outcomes (Okabe-Ito), and grey for "pending"."""
    return {**OUTCOME_COLORS, outcomes.PENDING_NAME: "#b0b0b0"}
