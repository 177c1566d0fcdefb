"""A map's two axes for any problem: which pairs of sweep axes make a map, and the sweep they ask for.

A map's axis is named by the dim the sweep gives it:

- ``lr_<group>``: the learning rate of one parameter (or of a group in ``groups=``);
- ``lr``: one learning rate for every parameter;
- ``init_<name>``: the initial value of a scalar parameter (:func:`lrsweep.init_grid`);
- ``opt_<name>``: a hyperparameter of the optimizer (``optimizer_axes``).

A map is two lrs (``lr_<a>`` on x, ``lr_<b>`` on y, the two groups covering every parameter), or
an initial value or a hyperparameter on x with one lr for every parameter on y (as the paper's
"parameter initialisation vs learning rate" map). Every axis is log-spaced: its range is log10 of
its values, as the paper draws both of its axes. Any other pair is refused in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import problems
from ..grid import init_grid
from ..problems._problem import Problem
from .settings import MapProblem

#: What a map accepts as its (x, y) axes, for the one-line refusals.
ACCEPTED = (
    "two lr_<group> axes (x and y: the lrs of two parameter groups), or init_<name> or opt_<name> on x with lr on y"
)
_PREFIXES = ("lr_", "init_", "opt_")
#: The paper network's dims, whose axes are its input and output layers' lrs.
PAPER_LR_DIMS = (("lr_W0", "lr_W1"), ("lr_even", "lr_odd"))


def _kind(axis: str) -> tuple[str, str]:
    """``("lr", "W0")`` for ``"lr_W0"``, ``("lr", "")`` for ``"lr"``."""
    if axis == "lr":
        return "lr", ""
    kind, _, name = axis.partition("_")
    return kind, name


def _checked_name(arg: str, axis) -> str:
    if not isinstance(axis, str) or not (axis == "lr" or (axis.startswith(_PREFIXES) and _kind(axis)[1])):
        raise ValueError(f"{arg}={axis!r} is invalid: expected lr, lr_<group>, init_<name> or opt_<name>")
    return axis


def user_problem(
    problem: Problem | str, x_axis: str | None, y_axis: str | None, problem_args=None, groups=None, optimizer="gd"
) -> MapProblem:
    """The :class:`MapProblem` of a map of ``problem`` (a :class:`Problem` or a name with
    ``problem_args``, as :func:`lrsweep.problems.resolve` takes them) over ``x_axis`` and
    ``y_axis``; ``groups`` and ``optimizer`` as in a sweep. Without axes, a problem of exactly two
    parameters (or groups) maps their two lrs."""
    p = problems.resolve(problem, problem_args)
    params = list(p.init) if isinstance(p.init, dict) else []
    names = list(groups) if isinstance(groups, dict) else params
    if x_axis is None and y_axis is None:
        if len(names) != 2:
            raise ValueError(
                f"problem {p.name!r} has parameters {params}: name its map's x_axis and y_axis, {ACCEPTED}"
            )
        x_axis, y_axis = f"lr_{names[0]}", f"lr_{names[-1]}"
    x = _checked_name("x_axis", x_axis)
    y = _checked_name("y_axis", y_axis)
    (kx, nx), (ky, ny) = _kind(x), _kind(y)
    if kx == "lr" and ky == "lr" and nx and ny and nx != ny:
        for arg, axis, name in (("x_axis", x, nx), ("y_axis", y, ny)):
            if name not in names:
                raise ValueError(f"{arg}={axis!r} is invalid: expected lr_<group> with a group of {names}")
        if len(names) != 2:
            rest = sorted(set(names) - {nx, ny})
            raise ValueError(
                f"x_axis={x!r} and y_axis={y!r} leave {rest} without a learning rate: expected two groups "
                "that cover every parameter (give groups={...} with two groups)"
            )
    elif kx in ("init", "opt") and y == "lr":
        if kx == "init" and (nx not in params or np.shape(p.init[nx]) != ()):
            scalars = [k for k in params if np.shape(p.init[k]) == ()]
            raise ValueError(f"x_axis={x!r} is invalid: init_<name> takes a scalar parameter, one of {scalars}")
        if kx == "opt" and optimizer in (None, "gd"):
            raise ValueError(
                f"x_axis={x!r} needs an optimizer with the hyperparameter {nx!r} (optimizer=..., e.g. 'momentum')"
            )
    else:
        raise ValueError(f"x_axis={x!r} and y_axis={y!r} are invalid: expected {ACCEPTED}")
    return MapProblem(problem, x, y, groups, {}, optimizer)


def sweep_kwargs(mp: MapProblem, xs: np.ndarray, ys: np.ndarray) -> dict[str, Any]:
    """What :func:`lrsweep.sweep` takes for the map ``xs x ys`` of ``mp``: ``lr`` and, as the axes
    ask, ``init``, ``optimizer_axes``, ``groups`` and ``optimizer``."""
    lr: dict[str, Any] = {}
    one_lr, inits, hypers = None, {}, {}
    for axis, values in ((mp.x_axis, xs), (mp.y_axis, ys)):
        kind, name = _kind(axis)
        if axis == "lr":
            one_lr = values
        elif kind == "lr":
            lr[name] = values
        elif kind == "init":
            inits[name] = values
        else:
            hypers[name] = values
    out: dict[str, Any] = {"lr": one_lr if one_lr is not None else {**lr, **mp.fixed_lr}}
    if inits:
        out["init"] = init_grid(**inits)
    if hypers:
        out["optimizer_axes"] = hypers
    if mp.groups is not None:
        out["groups"] = mp.groups
    if mp.optimizer != "gd":
        out["optimizer"] = mp.optimizer
    return out


def map_dims(ds) -> tuple[str, str]:
    """The map's (x, y) dims in a sweep's Dataset: two ``lr_<group>`` dims in the sweep's order,
    or an ``init_<name>`` or ``opt_<name>`` dim (x) and ``lr`` (y)."""
    axes = [str(d) for d in ds.dims if d in ds.coords and (d == "lr" or str(d).startswith(_PREFIXES))]
    lrs = [d for d in axes if _kind(d)[0] == "lr"]
    others = [d for d in axes if d not in lrs]
    if len(axes) == 2 and lrs == ["lr"] and len(others) == 1:
        return others[0], "lr"
    if len(axes) == 2 and not others:
        return lrs[0], lrs[1]
    raise ValueError(f"dims {list(ds.dims)} are not a map's: expected {ACCEPTED}")


def axis_label(dim: str) -> str:
    """``"Learning rate of W0"``, ``"Learning rate"``, ``"Initial w"`` or ``"momentum"``."""
    kind, name = _kind(dim)
    if kind == "lr":
        return f"Learning rate of {name}" if name else "Learning rate"
    return f"Initial {name}" if kind == "init" else name
