"""The lesson notebook's printed lines, from a :func:`lrsweep.trace` table.

The notebook prints one line per epoch (``weight value: ... updated_weights: ...``) and, at the
end, its weight list. The CLI (``lrsweep trace``) and the gallery's tables print the same lines
from here, so they equal the notebook's stored output character for character.
"""

from __future__ import annotations

import jax
import numpy as np

from . import problems
from .problems import Problem


def display_order(problem: Problem) -> list[int]:
    """Leaf indices in the order a reader expects: ``init``'s own key order (``w`` before ``b``)."""
    names = problems.param_names(problem.init)
    if not isinstance(problem.init, dict):
        return list(range(len(names)))
    keys = [str(k) for k in problem.init]
    return sorted(range(len(names)), key=lambda i: (keys.index(names[i].split(".")[0]), i))


def _fmt(v) -> str:
    # The notebook prints np.round(value, 2) of numpy scalars; str() of a float32 scalar is its
    # shortest float32 repr, which is what makes the lines equal.
    return str(np.round(v, 2))


def trace_lines(table, param: str) -> list[str]:
    """The notebook's line for each epoch of one parameter of a :func:`lrsweep.trace` table."""
    rows = table[table.parameter == param]
    if rows.empty:
        raise ValueError(f"--param={param!r} is invalid: expected one of {list(dict.fromkeys(table.parameter))}")
    cols = {c: rows[c].to_numpy() for c in ("value", "loss", "loss_plus", "gradient", "updated")}
    return [
        f"weight value: {_fmt(cols['value'][k])} original loss: {_fmt(cols['loss'][k])} "
        f"loss_plus: {_fmt(cols['loss_plus'][k])} gradient: {_fmt(cols['gradient'][k])} "
        f"updated_weights: {_fmt(cols['updated'][k])}"
        for k in range(len(rows))
    ]


def final_params_line(problem: Problem, table) -> str:
    """The final parameters as the notebook prints its weight list: ``[array([[2.265477]], ...), ...]``."""
    last = table[table.epoch == table.epoch.max()]
    arrays = []
    for i in display_order(problem):
        leaf = np.asarray(jax.tree.leaves(problem.init)[i])
        name = problems.param_names(problem.init)[i]
        values = last[last.parameter.str.fullmatch(rf"{name}(\[.*\])?")].updated.to_numpy()
        arrays.append(np.atleast_2d(values.reshape(leaf.shape)))
    return repr(arrays)
