"""The public entry points: :func:`sweep` and :func:`trace`.

A sweep runs in five steps: check the settings (``lrsweep.spec.SweepSpec``); lay out the sweep's
axes (``lrsweep.axes``); choose a chunk size from the memory budget and cut the grid of configs
into chunks (``lrsweep.plan``); train each chunk through ``engine.run_chunk`` and write it into a
sink, memory or a resumable Zarr store (``lrsweep.runner``, ``lrsweep.store``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import sys
from typing import Any

import jax
import numpy as np
import pandas as pd
import xarray as xr

from . import (
    _checks,
    devices,
    distributed,
    engine,
    gradients,
    grid,
    identity,
    kernel_paths,
    lock,
    notebook,
    optimizers,
    outcomes,
    plan,
    problems,
    runner,
    store,
)
from . import spec as spec_mod
from .axes import Axes
from .precision import get as get_policy
from .problems import Problem


class SweepInterrupted(KeyboardInterrupt):
    """Raised when a sweep is interrupted (Ctrl-C); ``.partial`` holds every finished chunk.

    In ``.partial`` the configs that were not trained have NaN losses and parameters, outcome
    code -1 ("pending") and ``event_epoch`` -1. With ``out=``, the finished chunks are on disk too
    and the same call resumes.
    """

    def __init__(self, partial: xr.Dataset):
        super().__init__("sweep interrupted; the finished chunks are in .partial")
        self.partial = partial


def _optimizer(spec: spec_mod.SweepSpec, steps: int) -> optimizers.Optimizer:
    """The optimizer and its schedule over ``steps`` updates, with swept hyperparameters
    (``optimizer_axes``) left to be injected per config."""
    opt = optimizers.get(
        spec.optimizer, spec.optimizer_kwargs, schedule=spec.schedule, schedule_kwargs=spec.schedule_kwargs, steps=steps
    )
    if not spec.optimizer_axes:
        return opt
    if opt.is_gd:
        raise ValueError("optimizer_axes needs an optax optimizer: 'gd' has no hyperparameters")
    clash = sorted(set(spec.optimizer_axes) & set(spec.optimizer_kwargs or {}))
    if clash:
        raise ValueError(f"optimizer_axes and optimizer_kwargs both set {clash}; sweep it or fix it, not both")
    # The swept values replace the optimizer's defaults (e.g. momentum's 0.9); a trial call
    # checks that the factory takes them.
    try:
        optimizers.get(spec.optimizer, {**(spec.optimizer_kwargs or {}), **dict.fromkeys(spec.optimizer_axes, 0.5)})
    except ValueError:
        raise ValueError(
            f"optimizer_axes={spec.optimizer_axes!r} is invalid: optimizer {opt.name!r} does not take "
            f"{sorted(spec.optimizer_axes)}"
        ) from None
    opt = dataclasses.replace(opt, kwargs=tuple((k, v) for k, v in opt.kwargs if k not in spec.optimizer_axes))
    optimizers.probe(opt, tuple(spec.optimizer_axes))  # the swept ones are traced: refuse a branch on them now
    return opt


def _kept(spec: spec_mod.SweepSpec, axes: Axes) -> tuple[bool, tuple[int, ...] | None]:
    """What a trajectory keeps: the loss, and which parameter leaves (None: all)."""
    if spec.variables is None:
        return True, None
    if spec.record != "trajectory":
        raise ValueError("variables chooses what a trajectory keeps; use it with record='trajectory'")
    wanted = spec.variables
    unknown = [v for v in wanted if v != "loss" and v not in axes.names]
    if unknown or not wanted:
        raise ValueError(f"variables={wanted!r} is invalid: expected a non-empty list of 'loss' and {axes.names}")
    return "loss" in wanted, tuple(k for k, n in enumerate(axes.names) if n in wanted)


def _check_scalars(spec: spec_mod.SweepSpec, opt: optimizers.Optimizer, instances: list[Problem], policy) -> None:
    """Refuse settings and data that the policy's dtypes turn into 0, inf or NaN."""
    # The finite-difference nudge is added in the parameter dtype, its quotient taken in the compute dtype.
    for dtype in {policy.param_dtype, policy.compute_dtype}:
        _checks.representable("h", spec.h, dtype, nonzero=True)
    for key, value in opt.kwargs:
        if not isinstance(value, bool) and isinstance(value, (int, float)):
            _checks.representable(f"optimizer_kwargs[{key!r}]", value, policy.compute_dtype)
    for p in instances:
        _checks.representable(f"problem {p.name!r}: x", p.x, policy.compute_dtype)
        _checks.representable(f"problem {p.name!r}: y", p.y, policy.compute_dtype)


def _steps(spec: spec_mod.SweepSpec, problem: Problem) -> tuple[int, int]:
    """``(steps, eval_every)``: the optimizer updates in all, and the steps between evaluations.

    Full batch, a step is an epoch. With ``batch_size = B``, an epoch is ``n // B`` steps (the last
    ``n mod B`` examples of each epoch's order sit it out), so ``epochs`` makes ``epochs * (n // B)``
    steps; ``steps`` counts them directly. ``eval_every`` defaults to ``max(1, steps // 20)``.
    """
    n = problem.n_data
    if spec.batch_size is not None and spec.batch_size > n:
        raise ValueError(
            f"batch_size={spec.batch_size} is invalid: expected at most the {n} training examples of problem "
            f"{problem.name!r}"
        )
    if spec.data_seed is not None and spec.batch_size is None:
        raise ValueError(f"data_seed={spec.data_seed!r} is invalid without batch_size: it seeds the minibatch order")
    per_epoch = 1 if spec.batch_size is None else n // spec.batch_size
    steps = spec.steps if spec.steps is not None else spec.epochs * per_epoch
    if steps > outcomes.MAX_EPOCHS:
        raise ValueError(
            f"epochs={spec.epochs} is invalid with batch_size={spec.batch_size}: {steps} steps, at most "
            f"{outcomes.MAX_EPOCHS} can be tracked"
        )
    if spec.eval_every is not None and not problem.has_eval:
        raise ValueError(
            f"eval_every={spec.eval_every} is invalid: problem {problem.name!r} has no held-out data (x_eval, y_eval)"
        )
    return steps, spec.eval_every if spec.eval_every is not None else max(1, steps // 20)


def plan_sweep(spec: spec_mod.SweepSpec) -> tuple[runner.Job, int]:
    """Check a spec against its problem and lay the sweep out: the job (axes, chunks, result
    layout) and the memory budget in bytes."""
    policy = get_policy(spec.precision)
    seeds = spec.problem_seed
    instances = [problems.resolve(spec.problem, spec.problem_args, s) for s in (seeds or [None])]
    base = instances[0]
    epochs, eval_every = _steps(spec, base)
    opt = _optimizer(spec, epochs)  # a schedule spans every optimizer update
    if not opt.is_gd:  # one abstract update on the problem's own parameters
        optimizers.probe(opt, tuple(spec.optimizer_axes or ()), base.init)
    window = outcomes.default_window(epochs) if spec.stuck_window is None else spec.stuck_window
    memory = plan.default_memory() if spec.memory is None else spec.memory
    for other in instances[1:]:
        if other.x.shape != base.x.shape or other.y.shape != base.y.shape:
            raise ValueError("problem_seed: every instance must have data of the same shapes")
        if other.has_eval != base.has_eval or getattr(other.x_eval, "shape", None) != getattr(
            base.x_eval, "shape", None
        ):
            raise ValueError("problem_seed: every instance must have held-out data of the same shapes")
    if spec.every > epochs:
        what = "epochs" if spec.batch_size is None and spec.steps is None else "steps"
        raise ValueError(f"every={spec.every} is invalid: expected at most {what}={epochs}")
    _check_scalars(spec, opt, instances, policy)
    if isinstance(spec.init, int):  # drawn in full before the sweep: it must fit the budget
        need = 4 * 8 * spec.init * gradients.n_elements(base.init)
        if need > memory:
            raise ValueError(
                f"init={spec.init:,} draws need about {plan.human_size(need)}, more than memory="
                f"{plan.human_size(memory)}; draw fewer inits or raise --memory"
            )

    axes = Axes(base, spec.lr, spec.init, spec.groups, spec.seed, spec.optimizer_axes, seeds, spec.data_seed)
    axes.check_representable(policy)
    keep_loss, keep_leaves = _kept(spec, axes)
    statics = [
        engine.Static(
            loss=p.loss,
            n_data=p.n_data,
            grad=spec.grad,
            policy=policy,
            epochs=epochs,
            record=spec.record,
            window=window,
            optimizer=opt,
            groups=axes.groups,
            leaf_group=axes.leaf_group,
            hyper_names=axes.hyper_names,
            every=spec.every,
            keep_loss=keep_loss,
            keep_leaves=keep_leaves,
            kernel=spec.kernel,
            score_window=spec.score_window,
            track_best=spec.track_best,
            track_sums=spec.track_sums,
            batch_size=spec.batch_size or 0,
            metrics=tuple((name, m.fn, m.maximize) for name, m in p.metric_fns().items()),
            n_eval=0 if p.x_eval is None else len(p.x_eval),
            eval_every=eval_every,
            track_sharpness=spec.track_sharpness,
            sharpness_every=spec.sharpness_every,
            sharpness_iters=spec.sharpness_iters,
        )
        for p in instances
    ]
    kernel_paths.check_kernel(statics[0])  # a fused kernel asked for must handle these settings
    # Each device trains a block planned as a one-device chunk; the chunk is one block per device
    # (lrsweep.devices: results do not depend on the device count).
    n_devices = devices.resolve(spec.devices)
    if spec.chunk_size is not None:
        chunk = plan.chunk_size(statics[0], base, memory, spec.chunk_size, axes.size)
        n_devices = devices.check_chunk(chunk, n_devices, spec.devices)
        block = chunk // n_devices  # a requested chunk trains at once on each device
    else:
        per_device, block = plan.chunks(statics[0], base, memory, -(-axes.size // n_devices))
        chunk = n_devices * per_device
    statics = [dataclasses.replace(s, block=block) for s in statics]
    resolved = {} if spec.batch_size is None and spec.steps is None else {"steps": epochs}
    if base.has_eval:
        resolved["eval_every"] = eval_every
    attrs = identity.attrs(spec, problem=base.name, optimizer=opt.name, stuck_window=window, **resolved)
    attrs.update(
        optimizer_kwargs=repr(dict(opt.kwargs)),
        min_loss=base.min_loss,
        chunk_size=chunk,
        block_size=block,
        kernel_path=kernel_paths.kernel_path(statics[0], chunk // n_devices),
        devices=n_devices,
        # the instances built above, not built again (the canonical spec names a problem by what it computes)
        spec=json.dumps(identity.canonical(spec, stuck_window=window, problem=instances), sort_keys=True),
    )
    layout = plan.layout(axes, statics[0], base, attrs)
    layout = dataclasses.replace(layout, chunk_shape=plan.chunk_shape(axes.shape, axes.dims, chunk))
    return runner.Job(layout, axes, statics, instances, chunk, spec.h, spec.rtol, n_devices), memory


def sweep(problem: Problem | str, lr: Any, **settings: Any) -> xr.Dataset:
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
    spec = spec_mod.build(problem, lr, **settings)
    distributed.check(spec)
    job, memory = plan_sweep(spec)
    per_config = plan.inflight_bytes(job.statics[0], job.instances[0], 1)  # one config, every chunk in flight
    with contextlib.ExitStack() as held:
        if spec.out is not None:
            store.check_space(job.layout, spec.out)  # before anything is written, the lock included
            # One writer per store, for the whole run, creation included.
            held.enter_context(lock.acquire(spec.out, break_lock=bool(spec.break_lock)))
            sink = store.ZarrSink(
                job.layout, spec.out, memory=memory, per_config=per_config, allow_mixed=bool(spec.allow_mixed)
            )
            held.callback(sink.close)  # finished chunks' done-marks are written whatever happens
            job = dataclasses.replace(job, layout=sink.layout, chunk=int(sink.layout.attrs["chunk_size"]))
        else:
            need = plan.in_memory_bytes(job.layout) + per_config * job.chunk
            if need > memory:
                raise ValueError(
                    f"the results need about {plan.human_size(need)} (results, coordinates and chunks in flight), "
                    f"more than memory={plan.human_size(memory)}; stream them to disk with out='sweep.zarr' (--out), "
                    "or record less"
                )
            sink = store.MemorySink(job.layout)
        show = spec.progress if spec.progress is not None else (job.layout.n_chunks > 1 and sys.stderr.isatty())
        try:
            if distributed.wanted(spec):  # Dask workers train the chunks and write them to the store
                assert isinstance(sink, store.ZarrSink)
                retries = distributed.run(job, sink, spec, show, plan_sweep)
                ds = sink.dataset()
                ds.attrs["chunk_retries"] = json.dumps({str(k): n for k, n in sorted(retries.items())})
                return ds
            runner.run(job, sink, show)
        except KeyboardInterrupt:
            raise SweepInterrupted(sink.dataset()) from None
        return sink.dataset()


def _signature() -> inspect.Signature:
    """``sweep(problem, lr, *, <every other setting of SweepSpec with its default>)``."""
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
