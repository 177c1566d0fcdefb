"""Optimizers: the lesson's plain gradient descent, and optax transformations.

=============  ===============================================  ==============================
name           update (per parameter, learning rate ``lr``)     implementation
=============  ===============================================  ==============================
``gd``         ``p <- p - lr * g``                              built in (exact, the lesson's)
``momentum``   ``v <- g + beta v;  p <- p - lr * v``            ``optax.sgd(momentum=0.9)``
``nesterov``   ``v <- g + beta v;  p <- p - lr (g + beta v)``   ``optax.sgd(momentum=0.9, nesterov=True)``
``adam``       Adam (Kingma & Ba, 2015)                         ``optax.adam``
``rmsprop``    RMSProp                                          ``optax.rmsprop``
=============  ===============================================  ==============================

Any optax optimizer works too, by name (``"adamw"``, ``"optax:lion"``: the factory ``optax.<name>``,
which must take ``learning_rate``; from Python, TOML and ``--optimizer``) or, in Python, as a
factory, with keyword arguments for its other hyperparameters (``optimizer_kwargs``).

Only the learning rate is a per-config array, so one compiled program serves every learning rate
in a sweep: the factory is called inside the trace with this config's lr (a traced scalar; with a
schedule, ``count -> lr * unit(count)``, ``lrsweep.schedules``). Its other hyperparameters are
static: floats are passed as numpy scalars of the compute dtype (the values and roundings the
arrays of ``optax.inject_hyperparams`` had before, so results are unchanged), which optax may
branch on in Python. Only hyperparameters swept with ``optimizer_axes`` are traced too. A factory
that branches in Python on a traced value cannot be swept; :func:`get` (and :func:`probe`) finds
that out before a sweep starts, with an abstract trace (``jax.eval_shape``), and refuses it in one
line. With per-group learning rates each group gets its own transformation, combined with
``optax.partition``.

Why optax: its transformations are the reference implementations our users already trust, and
"trajectories equal optax run one config at a time" is then a property we can test.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from . import schedules
from .types import PyTree

NAMED: dict[str, tuple[Callable | None, dict]] = {
    "gd": (None, {}),
    "momentum": (optax.sgd, {"momentum": 0.9}),
    "nesterov": (optax.sgd, {"momentum": 0.9, "nesterov": True}),
    "adam": (optax.adam, {}),
    "rmsprop": (optax.rmsprop, {}),
}
OPTAX_PREFIX = "optax:"
#: Errors of a Python branch (or an int, or a numpy array) on a traced value.
_TRACER_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)


@functools.cache
def optax_names() -> tuple[str, ...]:
    """The optax factories that take ``learning_rate``, by name: what ``optimizer="NAME"`` accepts."""
    return tuple(n for n in sorted(dir(optax)) if _optax_factory(n) is not None)


def _optax_factory(name: str) -> Callable | None:
    fn = getattr(optax, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not callable(fn) or inspect.isclass(fn):
        return None
    try:
        return fn if "learning_rate" in inspect.signature(fn).parameters else None
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """A hashable optimizer spec: a name, an optax factory (None for the built-in ``gd``), its
    keyword args and the learning-rate schedule (``lrsweep.schedules``; constant by default)."""

    name: str
    factory: Callable[..., optax.GradientTransformation] | None
    kwargs: tuple[tuple[str, Any], ...] = ()
    schedule: schedules.Schedule = schedules.NONE

    @property
    def is_gd(self) -> bool:
        return self.factory is None

    def transformation(
        self, lr, labels: PyTree | None, groups: tuple[str, ...], hyper: dict | None = None
    ) -> optax.GradientTransformation:
        """The optax transformation for one config.

        ``lr`` has shape ``(G,)``, one per group (the peak, with a schedule); ``hyper`` maps swept
        hyperparameter names to this config's scalar values (traced arrays, cast to ``lr``'s dtype).
        """
        if self.factory is None:
            raise ValueError("gradient descent ('gd') is built into the engine; it has no optax transformation")
        dtype = np.dtype(lr.dtype)
        kwargs = _static_kwargs(self.factory, dict(self.kwargs), dtype)
        kwargs.update({k: jax.numpy.asarray(v, dtype) for k, v in (hyper or {}).items()})
        unit = self.schedule.unit()

        def make(rate):
            if unit is not None:  # the swept lr is the peak: lr_t = lr * unit(t)
                rate = functools.partial(_scaled, unit, rate)
            return self.factory(learning_rate=rate, **kwargs)  # type: ignore[misc]

        if labels is None:
            return make(lr[0])
        return optax.partition({g: make(lr[k]) for k, g in enumerate(groups)}, labels)


def _scaled(unit: Callable, lr, count):
    """``lr * unit(count)`` in ``lr``'s dtype."""
    return lr * jax.numpy.asarray(unit(count), lr.dtype)


def _static_kwargs(factory: Callable, kwargs: dict, dtype: np.dtype) -> dict:
    """``kwargs`` and the factory's float defaults as numpy scalars of ``dtype``.

    Such a scalar is static (optax may branch on it in Python) and rounds like the arrays of
    ``optax.inject_hyperparams`` did (``1 - b1`` in the compute dtype, not in Python's float64).
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    defaults = {k: p.default for k, p in params.items() if k != "learning_rate" and p.default is not p.empty}
    out = {}
    for k, v in {**defaults, **kwargs}.items():
        if isinstance(v, float):
            out[k] = dtype.type(v)
        elif k in kwargs:
            out[k] = v
    return out


def get(
    optimizer: str | Callable = "gd",
    kwargs: dict | None = None,
    *,
    schedule: str = schedules.CONSTANT,
    schedule_kwargs: dict | None = None,
    steps: int | None = None,
) -> Optimizer:
    """Resolve ``optimizer`` and its hyperparameters, and the learning-rate schedule.

    Args:
      optimizer: a name in ``NAMED``, an optax optimizer's name (``"adamw"`` or ``"optax:adamw"``:
        one of :func:`optax_names`), or an optax factory taking ``learning_rate``.
      kwargs: the optimizer's other hyperparameters (``optimizer_kwargs``).
      schedule, schedule_kwargs: the schedule (``lrsweep.schedules``); with any schedule but
        ``constant``, ``gd`` runs as ``optax.sgd`` (the built-in exact path has no schedule).
      steps: the number of updates of each config, ``T`` of the schedule.
    """
    kwargs = dict(kwargs or {})
    if isinstance(optimizer, str):
        if optimizer in NAMED:
            factory, defaults = NAMED[optimizer]
        else:
            bare = optimizer.removeprefix(OPTAX_PREFIX)
            factory, defaults = _optax_factory(bare), {}
            if factory is None:
                raise ValueError(
                    f"optimizer={optimizer!r} is invalid: expected one of {list(NAMED)}, an optax optimizer by name "
                    f"(NAME or 'optax:NAME', NAME one of {', '.join(optax_names())}) or, in Python, an optax factory "
                    "that takes learning_rate"
                )
        if factory is None and kwargs:
            raise ValueError(f"optimizer_kwargs={kwargs!r} is invalid: 'gd' takes no hyperparameters")
        kwargs = {**defaults, **kwargs}
        name = optimizer
    elif callable(optimizer):
        factory, name = optimizer, getattr(optimizer, "__name__", repr(optimizer))
    else:
        raise ValueError(
            f"optimizer={optimizer!r} is invalid: expected a name in {list(NAMED)}, an optax optimizer's name "
            "or an optax factory"
        )
    if "learning_rate" in kwargs:
        raise ValueError("optimizer_kwargs may not set 'learning_rate': the sweep's lr does")
    if factory is not None:
        try:  # fail now, with a clear message, rather than deep inside a trace
            tx = factory(learning_rate=0.1, **kwargs)
            tx.init({"p": jax.numpy.zeros(())})
        except Exception as err:  # noqa: BLE001 - any failure means the factory does not fit
            raise ValueError(
                f"optimizer={name!r} with optimizer_kwargs={kwargs!r} is invalid: calling it as "
                f"factory(learning_rate=0.1, **optimizer_kwargs) failed with {type(err).__name__}: {err}"
            ) from None
    sched = schedules.resolve(schedule, schedule_kwargs, steps)
    if factory is None and not sched.is_constant:
        factory = optax.sgd  # plain gradient descent with a schedule: p <- p - lr_t g
    opt = Optimizer(name, factory, tuple(sorted(kwargs.items())), sched)
    if factory is not None:
        probe(opt)
    return opt


def probe(opt: Optimizer, swept: tuple[str, ...] = (), params: PyTree | None = None) -> None:
    """Refuse an optimizer that cannot be swept: one abstract step (``jax.eval_shape``, no FLOPs)
    with a traced learning rate and traced ``swept`` hyperparameters, on ``params`` (a problem's
    initial parameters; None: a small parameter matrix).

    A factory that branches in Python on a traced value (``if learning_rate > 0``, a schedule
    built inside it from the lr) fails here with a one-line ValueError that says what to do. Any
    other failure is refused only on a problem's own parameters (``planner.plan`` probes with
    them): a factory may expect parameter names that a stand-in matrix lacks.
    """
    stand_in = params is None
    tree = {"p": np.zeros((3, 2), np.float32)} if stand_in else params
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.float32), tree)

    def step(lr, hyper, params):
        tx = opt.transformation(lr, None, ("lr",), dict(zip(swept, hyper)))
        updates, _ = tx.update(params, tx.init(params), params)
        return updates

    lr, hyper = jax.ShapeDtypeStruct((1,), np.float32), jax.ShapeDtypeStruct((len(swept),), np.float32)
    try:
        jax.eval_shape(step, lr, hyper, shapes)
    except _TRACER_ERRORS as err:
        what = "its learning_rate" + (f" or the swept {list(swept)}" if swept else "")
        raise ValueError(
            f"optimizer={opt.name!r} cannot be swept: it branches in Python on {what}, a traced array in a sweep "
            f"({type(err).__name__}); build the optax optimizer with learning_rate as given (a schedule goes in "
            "schedule=..., where the swept lr is the peak), and fix such a hyperparameter with optimizer_kwargs "
            "instead of optimizer_axes"
        ) from None
    except Exception as err:  # noqa: BLE001 - any other failure of one step means the factory does not fit
        if stand_in:
            return  # the problem's own parameters decide
        raise ValueError(
            f"optimizer={opt.name!r} with optimizer_kwargs={dict(opt.kwargs)!r} is invalid: one update on the "
            f"problem's initial parameters failed with {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from None


#: The lesson's plain gradient descent.
GD = get("gd")
