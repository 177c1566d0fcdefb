"""Planning a sweep: :func:`plan` turns a spec and its run options into a :class:`Plan`, once.

:func:`plan` is the one place that plans. It resolves the problem (a user's factory runs here, once
per problem instance), checks the spec against it, lays out the sweep's axes (``lrsweep.axes``),
builds the engine's static settings (``lrsweep.engine.Static``), picks the chunk size from the
memory budget and lays out the result (``lrsweep.plan``, the chunk and layout arithmetic). The CLI,
``sweep``, the benchmarks and every Dask worker call it; a sink (``lrsweep.sinks``) then holds the
result and an executor (``lrsweep.executor``) trains the chunks.
"""

from __future__ import annotations

import dataclasses
import json

from . import _checks, devices, engine, gradients, identity, kernel_paths, optimizers, outcomes, problems
from . import plan as chunking
from .axes import Axes
from .plan import Layout
from .precision import get as get_policy
from .problems import Problem
from .runner import Job
from .spec import RunOptions, SweepSpec


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A planned sweep: everything needed to open its sink and train any of its chunks.

    Frozen; compared and hashed by identity (it holds problems and arrays, which have no value
    equality worth computing).

    Attributes:
      spec, options: what it computes and where and how it runs.
      axes: the sweep's axes (a config's index -> its values).
      statics: the engine's static settings, one per problem instance (``problem_seed``).
      instances: the problem instances, built once.
      layout: the result's dims, variables, chunk shape and attrs (``attrs["spec"]`` the canonical spec).
      chunk: configs per compiled chunk; ``block`` of them train at once on each device.
      devices: local devices a chunk is sharded over.
      memory: the memory budget in bytes.
    """

    spec: SweepSpec
    options: RunOptions
    axes: Axes
    statics: tuple[engine.Static, ...]
    instances: tuple[Problem, ...]
    layout: Layout
    chunk: int
    devices: int
    memory: int

    def job(self, layout: Layout | None = None) -> Job:
        """A :class:`lrsweep.runner.Job` that trains this plan's chunks into ``layout`` (default: the
        plan's; a resumed store's keeps its own chunk shape and size)."""
        layout = self.layout if layout is None else layout
        chunk = int(layout.attrs["chunk_size"])
        statics, instances = list(self.statics), list(self.instances)
        return Job(layout, self.axes, statics, instances, chunk, self.spec.h, self.spec.rtol, self.devices)


def _optimizer(spec: SweepSpec, steps: int) -> optimizers.Optimizer:
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


def _kept(spec: SweepSpec, axes: Axes) -> tuple[bool, tuple[int, ...] | None]:
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


def _check_scalars(spec: SweepSpec, opt: optimizers.Optimizer, instances: list[Problem], policy) -> None:
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


def _steps(spec: SweepSpec, problem: Problem) -> tuple[int, int]:
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


def plan(spec: SweepSpec, options: RunOptions | None = None) -> Plan:
    """Check a spec against its problem and lay the sweep out under ``options`` (default: none given).

    Public as ``lrsweep.plan_sweep``; ``spec, options = lrsweep.spec.build(problem, lr, **settings)``
    makes its arguments from ``sweep``'s keywords.

    Pure in (spec, options) and the local devices: the same inputs give the same plan, and nothing
    is written or compiled. Every ValueError names the setting at fault.

    Returns:
      A frozen :class:`Plan`: ``axes`` (dims such as ``("lr", "init")``, ``shape`` their sizes;
      ``axes.size`` configs in all), ``chunk`` configs per compiled chunk, ``layout`` (the result's
      dims, variables and ``n_chunks`` chunks; ``layout.attrs["spec"]`` the canonical spec), one
      ``engine.Static`` and one problem instance per ``problem_seed``.
    """
    options = RunOptions() if options is None else options
    policy = get_policy(spec.precision)
    seeds = spec.problem_seed
    instances = [problems.resolve(spec.problem, spec.problem_args, s) for s in (seeds or [None])]
    base = instances[0]
    epochs, eval_every = _steps(spec, base)
    opt = _optimizer(spec, epochs)  # a schedule spans every optimizer update
    if not opt.is_gd:  # one abstract update on the problem's own parameters
        optimizers.probe(opt, tuple(spec.optimizer_axes or ()), base.init)
    window = outcomes.default_window(epochs) if spec.stuck_window is None else spec.stuck_window
    memory = chunking.default_memory() if options.memory is None else options.memory
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
                f"init={spec.init:,} draws need about {chunking.human_size(need)}, more than memory="
                f"{chunking.human_size(memory)}; draw fewer inits or raise --memory"
            )

    axes = Axes(base, spec.lr_axes, spec.init, spec.groups, spec.seed, spec.optimizer_axes, seeds, spec.data_seed)
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
    n_devices = devices.resolve(options.devices)
    if options.chunk_size is not None:
        chunk = chunking.chunk_size(statics[0], base, memory, options.chunk_size, axes.size)
        n_devices = devices.check_chunk(chunk, n_devices, options.devices)
        block = chunk // n_devices  # a requested chunk trains at once on each device
    else:
        per_device, block = chunking.chunks(statics[0], base, memory, -(-axes.size // n_devices))
        chunk = n_devices * per_device
    statics = [dataclasses.replace(s, block=block) for s in statics]
    resolved = {} if spec.batch_size is None and spec.steps is None else {"steps": epochs}
    if base.has_eval:
        resolved["eval_every"] = eval_every
    attrs = identity.attrs(
        spec, problem=base.name, optimizer=opt.name, stuck_window=window, devices=options.devices, **resolved
    )
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
    layout = chunking.layout(axes, statics[0], base, attrs)
    layout = dataclasses.replace(layout, chunk_shape=chunking.chunk_shape(axes.shape, axes.dims, chunk))
    return Plan(spec, options, axes, tuple(statics), tuple(instances), layout, chunk, n_devices, memory)
