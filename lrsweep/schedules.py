"""Learning-rate schedules where the swept learning rate is the peak: ``lr_t = lr * unit(t)``.

``unit`` is an optax schedule whose largest value over the run is 1, ``t`` the optimizer's update
count (0 for the first update, ``T - 1`` for the last of ``T``). Every config of a sweep shares
``unit``; only the peak ``lr`` is a per-config array, so one compiled program serves the whole
sweep, and a config equals optax run on its own with the schedule scaled by its lr.

Schedules, for ``T`` updates (their keyword arguments, ``schedule_kwargs``, and defaults):

- ``constant``: ``unit(t) = 1``, the default (no schedule; results as without the setting).
- ``warmup_cosine``: a linear rise ``t / W`` from 0 for ``t < W``, then a cosine from 1 down to
  ``end`` at ``t = T`` (``optax.warmup_cosine_decay_schedule(0, 1, W, T, end)``); ``warmup`` W
  (default ``T // 10``, a tenth of the run), ``end`` (default 0).
- ``warmup_linear``: the same rise, then a straight line from 1 down to ``end`` at ``t = T``;
  ``warmup`` (default ``T // 10``), ``end`` (default 0).
- ``exponential``: ``end ** (t / T)`` (``optax.exponential_decay(1, T, end)``); ``end`` (default 0.01).
- ``step``: ``factor ** floor(t / every)``; ``every`` (default ``T // 3``, at least 1), ``factor``
  (default 0.1).
- ``optax:NAME``: the optax schedule factory ``optax.NAME`` with the given keyword arguments
  (``optax:polynomial_schedule``, ``optax:cosine_decay_schedule`` ...). Arguments left out are
  filled where the factory takes them: ``peak_value=1`` (else ``init_value=1``), and
  ``decay_steps=T`` or ``transition_steps=T``.

A schedule is checked against ``T`` before the sweep starts: its values over ``t = 0 .. T-1``
must be finite, at least 0, and peak at 1 (the swept lr is the peak); anything else is a one-line
ValueError naming the setting. A built-in's checked keyword arguments guarantee this (its values
lie in ``[0, 1]`` and it is 1 at ``t = 0`` or at the end of the warmup), so only ``optax:NAME``
schedules are evaluated for the check (a built-in is only built): evaluating one runs each of its
operations eagerly, and each operation compiles on its first use in a process.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import optax

CONSTANT = "constant"
#: The built-in schedules and their keyword arguments (None: computed from the number of updates).
BUILTIN: dict[str, dict[str, Any]] = {
    CONSTANT: {},
    "warmup_cosine": {"warmup": None, "end": 0.0},
    "warmup_linear": {"warmup": None, "end": 0.0},
    "exponential": {"end": 0.01},
    "step": {"every": None, "factor": 0.1},
}
OPTAX_PREFIX = "optax:"
#: How far the largest value of a schedule over the run may be from 1.
PEAK_RTOL = 1e-6
#: The most updates whose schedule values are checked one by one (beyond: a sample of them).
CHECK_MAX = 1 << 20


def check_name(arg: str, value: Any) -> str:
    """``value`` if it names a schedule (a built-in or ``optax:NAME``), else a one-line ValueError."""
    if isinstance(value, str) and (value in BUILTIN or _optax_factory(value) is not None):
        return value
    raise ValueError(
        f"{arg}={value!r} is invalid: expected one of {list(BUILTIN)} or 'optax:NAME' naming an optax schedule "
        "factory (e.g. 'optax:polynomial_schedule')"
    )


def _optax_factory(name: str) -> Callable | None:
    if not name.startswith(OPTAX_PREFIX):
        return None
    attr = name[len(OPTAX_PREFIX) :]
    fn = getattr(optax, attr, None) if attr.isidentifier() and not attr.startswith("_") else None
    return fn if callable(fn) and not inspect.isclass(fn) else None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A resolved, hashable schedule: its name, its complete keyword arguments and ``T``.

    ``unit()`` builds the optax schedule ``count -> unit(count)`` (None for ``constant``): plain
    Python, cheap, called again inside each trace.
    """

    name: str = CONSTANT
    kwargs: tuple[tuple[str, Any], ...] = ()
    steps: int = 0

    @property
    def is_constant(self) -> bool:
        return self.name == CONSTANT

    def unit(self) -> Callable[[Any], Any] | None:
        kw, total = dict(self.kwargs), self.steps
        if self.name == CONSTANT:
            return None
        if self.name in ("warmup_cosine", "warmup_linear"):
            warmup, end = kw["warmup"], float(kw["end"])
            if self.name == "warmup_cosine":
                return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, total, end)
            rise = optax.linear_schedule(0.0, 1.0, warmup)
            return optax.join_schedules([rise, optax.linear_schedule(1.0, end, total - warmup)], [warmup])
        if self.name == "exponential":
            return optax.exponential_decay(1.0, total, float(kw["end"]))
        if self.name == "step":
            return optax.exponential_decay(1.0, kw["every"], float(kw["factor"]), staircase=True)
        factory = _optax_factory(self.name)
        assert factory is not None
        return factory(**kw)


#: No schedule: ``lr_t = lr``.
NONE = Schedule()


def resolve(name: Any = CONSTANT, kwargs: dict | None = None, steps: int | None = None) -> Schedule:
    """The :class:`Schedule` ``name`` with ``kwargs`` over ``steps`` updates, checked.

    Args:
      name: a built-in name (module docstring) or ``"optax:NAME"``.
      kwargs: the schedule's keyword arguments (``schedule_kwargs``); numbers or booleans.
      steps: ``T``, the total number of optimizer updates of each config (the caller's count:
        epochs of full-batch training). Needed by every schedule but ``constant``.
    """
    name = check_name("schedule", name)
    kwargs = dict(kwargs or {})
    for key, v in kwargs.items():
        if not (isinstance(v, numbers.Real) and (isinstance(v, bool) or math.isfinite(float(v)))):
            raise ValueError(f"schedule_kwargs[{key!r}]={v!r} is invalid: expected a finite number or a boolean")
    if name == CONSTANT:
        if kwargs:
            raise ValueError(f"schedule_kwargs={kwargs!r} is invalid: schedule='constant' takes none")
        return NONE
    if steps is None or steps < 1:
        raise ValueError(f"schedule={name!r} needs the number of updates, got {steps!r}")
    full = _builtin_kwargs(name, kwargs, steps) if name in BUILTIN else _optax_kwargs(name, kwargs, steps)
    schedule = Schedule(name, tuple(sorted(full.items())), steps)
    _check_values(schedule, kwargs, evaluate=name not in BUILTIN)  # a built-in's kwargs bound its values
    return schedule


def _builtin_kwargs(name: str, kwargs: dict, steps: int) -> dict:
    known = BUILTIN[name]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(
            f"schedule_kwargs={kwargs!r} is invalid for schedule={name!r}: it takes {sorted(known)}, not {unknown}"
        )
    full = {**known, **kwargs}
    for key in ("warmup", "every"):
        if key not in full:
            continue
        if full[key] is None:  # the documented defaults
            full[key] = steps // 10 if key == "warmup" else max(1, steps // 3)
        v = full[key]
        low, high = (0, steps - 1) if key == "warmup" else (1, steps)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= int(v) <= high:
            raise ValueError(
                f"schedule_kwargs[{key!r}]={v!r} is invalid: expected an integer number of updates in "
                f"[{low}, {high}] (the sweep has {steps} updates)"
            )
        full[key] = int(v)
    for key in ("end", "factor"):
        if key in full:
            v = full[key]
            if isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"schedule_kwargs[{key!r}]={v!r} is invalid: expected a number in [0, 1]")
            full[key] = float(v)
    return full


def _optax_kwargs(name: str, kwargs: dict, steps: int) -> dict:
    factory = _optax_factory(name)
    assert factory is not None
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    full = dict(kwargs)
    if "peak_value" in params:
        full.setdefault("peak_value", 1.0)
    elif "init_value" in params:
        full.setdefault("init_value", 1.0)
    for key in ("decay_steps", "transition_steps"):
        if key in params:
            full.setdefault(key, steps)
    return full


def _check_values(schedule: Schedule, given: dict, evaluate: bool = True) -> None:
    """The schedule builds, and (``evaluate``) its values over the run are finite, at least 0, with a peak of 1."""
    where = f"schedule={schedule.name!r} with schedule_kwargs={given!r}"
    try:
        unit = schedule.unit()
        assert unit is not None
        if not evaluate:
            return
        t = np.arange(schedule.steps, dtype=np.int32)
        if t.size > CHECK_MAX:  # a sample of the run, both ends included
            t = np.unique(np.linspace(0, schedule.steps - 1, CHECK_MAX).round().astype(np.int32))
        values = np.asarray(unit(t), np.float64)
    except Exception as err:  # noqa: BLE001 - any failure of the factory is the user's to fix
        raise ValueError(f"{where} is invalid: building it failed with {type(err).__name__}: {err}") from None
    values = np.broadcast_to(values, t.shape)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{where} is invalid: its values must be finite and at least 0 over the run")
    peak = float(values.max())
    if abs(peak - 1.0) > PEAK_RTOL:
        raise ValueError(
            f"{where} is invalid: it peaks at {peak:.6g} over the {schedule.steps} updates, but the swept lr is the "
            "peak, so the schedule must peak at 1 (e.g. init_value=1 or peak_value=1)"
        )
