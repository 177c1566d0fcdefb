"""The public entry points: :func:`sweep` and :func:`trace`.

A sweep runs on three floors: a spec and its run options (``lrsweep.spec``: ``SweepSpec``, what is
computed, and ``RunOptions``, where and how) are planned once (``lrsweep.planner.plan``: problem,
axes, the engine's static settings, chunks, the result's layout); a sink holds the result
(``lrsweep.sinks.open_sink``: memory, or a resumable Zarr store); an executor trains the chunks
into it (``lrsweep.executor.run``: threads here, or Dask workers).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict, Unpack

import jax
import numpy as np
import pandas as pd
import xarray as xr

from . import _checks, engine, executor, gradients, grid, notebook, optimizers, outcomes, plan, planner, problems, sinks
from . import spec as spec_mod
from .executor import SweepInterrupted
from .grid import InitGrid
from .precision import get as get_policy
from .problems import Problem
from .spec_checks import AxisValue, LrValue
from .types import GradName, KernelName, PrecisionName, PyTree, RecordName

if TYPE_CHECKING:  # for the annotations only: importing them would load optax and Dask
    import optax
    from distributed import Client

__all__ = ["SweepInterrupted", "SweepSettings", "sweep", "trace"]


#: A count as the checks take it (numbers.Integral: Python's int or numpy's), and a real number likewise.
Integer: TypeAlias = int | np.integer
Real: TypeAlias = float | np.floating | Integer


class SweepSettings(TypedDict, total=False):
    """The keywords of :func:`sweep` as a type checker reads them: every setting of ``SweepSpec`` and
    ``RunOptions`` but ``problem`` and ``lr`` (``lrsweep.spec`` declares them, with their defaults and
    checks), each with the values it accepts. The spec holds some in another form once checked (a
    count of seeds as the list of seeds, a memory size as bytes); ``tests/test_spec.py`` checks that
    the keys are the settings."""

    init: Integer | InitGrid | PyTree | None
    epochs: Integer
    steps: Integer | None
    batch_size: Integer | None
    data_seed: Integer | Sequence[Integer] | None
    eval_every: Integer | None
    grad: GradName
    precision: PrecisionName
    record: RecordName
    every: Integer
    variables: str | Sequence[str] | None
    optimizer: str | Callable[..., optax.GradientTransformation]
    optimizer_kwargs: Mapping[str, float | bool] | None
    optimizer_axes: Mapping[str, AxisValue] | None
    schedule: str
    schedule_kwargs: Mapping[str, float | bool] | None
    groups: Mapping[str, str | Sequence[str]] | None
    seed: Integer
    problem_args: Mapping[str, Any] | None
    problem_seed: Integer | Sequence[Integer] | None
    h: Real
    rtol: Real
    stuck_window: Integer | None
    score_window: Integer
    plateau_rtol: Real
    track_best: bool
    track_sums: bool
    track_sharpness: bool
    sharpness_every: Integer
    sharpness_iters: Integer
    kernel: KernelName
    memory: Integer | str | None
    out: str | os.PathLike[str] | None
    chunk_size: Integer | None
    progress: bool | None
    allow_mixed: bool
    break_lock: bool
    devices: Integer | None
    scheduler: str | None
    workers: Integer | None
    client: Client | None


def sweep(problem: Problem | str, lr: LrValue, **settings: Unpack[SweepSettings]) -> xr.Dataset:
    """Train every (learning rate, initialisation, ...) config at once.

    Args:
      problem: an :class:`lrsweep.Problem`, a built-in name (``"linear"``, ``"chapter_net"``,
        ``"quadratic"``, ``"logistic"``, ``"mlp"``), a name registered under the ``lrsweep.problems``
        entry point, or ``"package.module:function"`` / ``"path/file.py:function"`` naming a function
        marked ``@lrsweep.problem_factory`` (anything else is refused before it is called;
        docs/trust.md).
      lr: learning rates: a number, a 1-D array, ``"0.01,0.1,1"`` or a space ``"log:1e-4:10:256"``;
        each finite and > 0. Or a dict ``{group: lr spec}`` for a sweep axis per parameter group:
        by default each group is the top-level parameter of the same name (``{"W0": ..., "W1": ...}``
        for ``mlp()``); ``groups`` maps group names to lists of parameters otherwise.
      init: the initialisations: None (the problem's init, a batch of one); a batch of parameter
        pytrees with a leading axis (``{"w": array of n, "b": array of n}``); a count ``n``, drawn
        by the problem's sampler from ``seed``; or ``lrsweep.init_grid(w=..., b=...)``, a grid over
        chosen scalar parameters (dims ``init_w``, ``init_b``).
      epochs: passes over the training data, >= 1 (full batch: optimizer steps; with ``batch_size``,
        ``n // batch_size`` steps each). ``steps``: optimizer steps in all, instead of ``epochs``.
      batch_size: examples per step (default: the whole training set); each epoch a new order,
        shared by every config with the same ``data_seed`` (a count or a list: a sweep dim).
      eval_every: steps between held-out evaluations of a problem with ``x_eval``, ``y_eval``
        (default ``max(1, steps // 20)``, and one after the last step); docs/training.md.
      grad: ``"autodiff"``, ``"forward"`` (the lesson's) or ``"central"`` (``lrsweep.gradients``).
      precision: ``"float32"``, ``"float64"`` or ``"mixed"`` (``lrsweep.precision``).
      record: ``"trajectory"`` keeps every ``every``-th epoch; ``"summary"`` keeps final values only,
        so memory does not grow with ``epochs``.
      every: a trajectory keeps epochs ``0, every, 2 every, ...`` and the last one.
      variables: what a trajectory keeps: a list of ``"loss"`` and parameter names (default: all).
      optimizer: ``"gd"`` (the lesson's), ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"rmsprop"``,
        or an optax factory taking ``learning_rate`` (``lrsweep.optimizers``).
      optimizer_kwargs: the optimizer's other hyperparameters, e.g. ``{"momentum": 0.5}``.
      optimizer_axes: hyperparameters as sweep axes, e.g. ``{"momentum": [0.0, 0.5, 0.9]}``
        (dims ``opt_<name>``; injected per config like the learning rate: one compile).
      groups: ``{group: [parameter, ...]}`` for per-group learning rates.
      seed: seed of the sampler when ``init`` is a count.
      problem_args: keyword arguments for a problem given by name (``{"dim": 10, "cond": 100}``).
      problem_seed: a count or a list of seeds: a sweep axis of problem instances (each built with
        ``seed=``, e.g. a new data set for ``logistic``).
      h: finite-difference step.
      rtol: convergence tolerance relative to the initial loss gap (``lrsweep.outcomes``).
      stuck_window: epochs without a parameter change that make a run "stuck";
        default ``max(1, epochs // 10)``.
      memory: the memory budget for the sweep's data (``"2GB"``, ``"64MB"`` or bytes; default half
        the machine, at most 4 GiB): it sets the chunk size, and without ``out`` the whole result
        must fit in it too. The runtime's own footprint (about 250 MB) comes on top.
      out: a Zarr store path: results stream there chunk by chunk, and the same call resumes an
        interrupted run (``lrsweep.store``). The returned Dataset then reads from the store.
      chunk_size: configs per compiled chunk, overriding the budget's choice. Results do not depend
        on it (from ``MIN_CHUNK`` configs on).
      kernel: ``"auto"`` (a fused Pallas kernel of ``lrsweep.kernels`` on GPU for summaries of
        small data sets, XLA otherwise), ``"xla"``, ``"pallas"`` (the generic fused kernel),
        ``"pallas-examples"`` (the one written on per-example terms), or either with
        ``"-interpret"`` (interpreted on CPU, for tests). Results agree within float32 tolerance.
      progress: a progress bar (chunks, config-steps per second, ETA); default when there are
        several chunks and stderr is a terminal.
      devices: local devices each chunk is sharded over (``lrsweep.devices``); default all of
        them. Results do not depend on it, bit for bit; ``attrs["devices"]`` records it.
      scheduler: a Dask scheduler's address, ``"tcp://HOST:PORT"``: its workers train the chunks
        and write them into ``out``, which they must all reach (``lrsweep.distributed``).
      workers: train the chunks in this many Dask worker processes on this machine (needs ``out``).
      client: a ``dask.distributed.Client`` whose workers train the chunks (needs ``out``).

    Returns:
      An ``xarray.Dataset`` with the sweep's dims (``problem_seed``; ``lr`` or ``lr_<group>``;
      ``opt_<name>``; ``init`` or ``init_<name>``) and, for trajectories, ``epoch`` (the recorded
      epochs; epoch 0 is the state before training). Variables: ``loss`` and one per parameter
      (``w``, ``b``) over the sweep's dims [, epoch] and the parameter's own dims; ``outcome``
      (int8 codes of "converged", "unfinished", "diverged", "stuck", -1 "pending" if never trained;
      CF ``flag_values``/``flag_meanings`` attrs; ``lrsweep.outcome_names`` decodes them) and
      ``event_epoch`` over the sweep's dims; with held-out data ``eval_loss``, each metric and their
      ``best_<name>`` (a trajectory's along ``eval_step``). ``attrs`` hold the settings, and ``attrs["spec"]`` the
      canonical spec as JSON.

    Example:
      >>> import lrsweep
      >>> ds = lrsweep.sweep("linear", [0.01, 0.1, 1.0], epochs=1000, grad="forward", precision="mixed")
      >>> lrsweep.outcome_names(ds.outcome.sel(init=0)).tolist()
      ['unfinished', 'converged', 'stuck']
      >>> float(ds.w.sel(lr=1.0, init=0, epoch=1000))
      12755.16015625
    """
    spec, options = spec_mod.build(problem, lr, **settings)
    planned = planner.plan(spec, options)
    with sinks.open_sink(planned) as sink:
        return executor.run(planned, sink).dataset


def _signature() -> inspect.Signature:
    """``sweep(problem, lr, *, <every other setting, of SweepSpec and RunOptions, with its default>)``."""
    params = [
        inspect.Parameter("problem", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("lr", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in spec_mod.defaults().items()
        if name not in ("problem", "lr")
    ]
    return inspect.Signature(params, return_annotation=xr.Dataset)


sweep.__signature__ = _signature()  # type: ignore[attr-defined]


def trace(
    problem: Problem | str,
    lr: float,
    epochs: int,
    *,
    grad: str = "forward",
    precision: str = "mixed",
    h: float = 1e-4,
    optimizer="gd",
    optimizer_kwargs: dict | None = None,
) -> pd.DataFrame:
    """The lesson's per-epoch table for one run from the problem's init.

    One row per (epoch, parameter element): ``epoch`` (0-based; ``value`` is the parameter at the
    start of that epoch), ``parameter`` (``"w"``, or ``"W1[0,2]"`` for array elements), ``value``,
    ``loss`` (at the epoch's parameters), ``loss_plus`` (at this element nudged by ``+h``; NaN for
    autodiff), ``loss_minus`` (central difference only), ``gradient`` and ``updated``.

    Example:
      >>> import lrsweep
      >>> t = lrsweep.trace("linear", 0.01, 10)
      >>> round(float(t.query("parameter == 'w'").updated.iloc[0]), 2)
      0.45
    """
    problem = problems.resolve(problem)
    lrs = grid.parse_lr(lr)
    if lrs.size != 1:
        raise ValueError(f"lr={lrs.tolist()!r} is invalid: trace takes one learning rate")
    epochs = _checks.integer("epochs", epochs, 1, outcomes.MAX_EPOCHS)
    grad = gradients.check_name(grad)
    policy = get_policy(precision)
    h = _checks.real("h", h, 0.0, closed_low=False)
    _checks.representable("lr", lrs, policy.compute_dtype, nonzero=True)
    _checks.representable("h", h, policy.param_dtype, nonzero=True)
    # Every intermediate of every epoch is kept: parameters, gradient, update and probes per element.
    need = 8 * 8 * epochs * (gradients.n_elements(problem.init) + 1)
    if need > plan.default_memory():
        raise ValueError(
            f"epochs={epochs:,} would keep about {plan.human_size(need)} of per-epoch rows; trace is for a "
            "few epochs of one run: use sweep(..., record='trajectory', every=k) for long runs"
        )
    opt = optimizers.get(optimizer, optimizer_kwargs)
    static = engine.Static(
        loss=problem.loss,
        n_data=problem.n_data,
        grad=grad,
        policy=policy,
        epochs=epochs,
        record="trace",
        window=1,
        optimizer=opt,
    )
    params0 = jax.tree.map(lambda leaf: np.asarray(leaf, policy.param_dtype), problem.init)
    with policy.context():
        x, y = engine.to_compute_dtype(static, problem.x, problem.y)
        scalar = policy.compute_dtype.type
        rows = engine.trace_run(lrs.astype(policy.compute_dtype), params0, x, y, scalar(h), scalar(0.0), static=static)
        rows = jax.tree.map(np.asarray, rows)

    names = problems.param_names(problem.init)
    columns = {k: jax.tree.leaves(rows[k]) if k in rows else [] for k in ("params", "grad", "updated")}
    columns.update({k: jax.tree.leaves(rows.get(k, [])) for k in ("loss_plus", "loss_minus")})
    frames = []
    for i in notebook.display_order(problem):
        shape = columns["params"][i].shape[1:]
        for idx in np.ndindex(shape):
            label = names[i] if not shape else f"{names[i]}[{','.join(map(str, idx))}]"
            at = (slice(None), *idx)
            frame = {
                "epoch": np.arange(epochs),
                "parameter": label,
                "value": columns["params"][i][at],
                "loss": rows["loss"],
                "loss_plus": columns["loss_plus"][i][at] if columns["loss_plus"] else np.full(epochs, np.nan),
            }
            if columns["loss_minus"]:
                frame["loss_minus"] = columns["loss_minus"][i][at]
            frame["gradient"] = columns["grad"][i][at]
            frame["updated"] = columns["updated"][i][at]
            frames.append(pd.DataFrame(frame))
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["epoch"], kind="stable", ignore_index=True)
