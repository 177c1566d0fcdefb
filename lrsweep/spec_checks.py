"""How a setting of :class:`lrsweep.spec.SweepSpec` is declared (:class:`Setting`) and its value checked
(``check(arg, value) -> value``).

Each raises a one-line ValueError naming the argument, the value and what is accepted; the limits
they enforce are constants here, so messages, docs and tests read the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from . import _checks, grid, outcomes


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one setting is spelled and checked (the metadata of a ``SweepSpec`` or ``RunOptions`` field).

    Attributes:
      help: one line for ``--help``, the docs and error messages.
      toml: the TOML types it accepts (empty: not in TOML files), and ``what`` names them.
      flag: how ``lrsweep run`` parses it: ``"str"``, ``"int"``, ``"float"``, ``"bool"`` (a switch), ``"list"`` (comma
        separated), ``"pairs"`` (``key=value,...``, repeatable), ``"keyed"`` (``KEY=VALUE``, repeatable,
        one key each), ``"lr"`` (``SPEC`` or ``GROUP=SPEC``, repeatable); None: no flag.
      check: ``value -> value`` for a given (non-None) value, raising ValueError naming it.
      identity: part of the sweep's identity (``identity.canonical``): changing it changes results.
      attr: written to the Dataset's attributes.
      cli_default: the CLI's default where it differs from Python's (``lrsweep run`` prints a
        summary of 256 learning rates of the lesson by default).
    """

    help: str
    toml: tuple[type, ...] = ()
    what: str = ""
    flag: str | None = "str"
    check: Callable[[str, Any], Any] | None = None
    identity: bool = True
    attr: bool = True
    cli_default: Any = None


#: One sweep axis as given: a number, a list or 1-D array of numbers, comma-separated numbers
#: (``"0.01,0.1,1"``), a space (``"log:1e-4:10:256"``, ``"lin:0.01:0.2:20"``) or an :class:`lrsweep.grid.Axis`.
AxisValue: TypeAlias = float | str | Sequence[float] | np.ndarray | grid.Axis
#: The learning rates: one axis, or one per learning-rate group (``{"w": "log:...", "b": [0.1]}``).
LrValue: TypeAlias = AxisValue | Mapping[str, AxisValue]


def integer_in(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    return lambda arg, v: _checks.integer(arg, v, minimum, maximum)


#: Seeds are JAX PRNG seeds: above 2**32 - 1 they wrap (2**32 draws what 0 draws).
MAX_SEED = 2**32 - 1
#: The most configs or inits one count may ask for (2**40, about 1.1e12); memory checks come after.
MAX_COUNT = 2**40


def init(arg: str, value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return _checks.integer(arg, value, 1, MAX_COUNT)
    if isinstance(value, (bool, str, float)):
        raise ValueError(
            f"{arg}={value!r} is invalid: expected a count, a batch of parameter pytrees or lrsweep.init_grid(...)"
        )
    return value


def path(arg: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"{arg}={value!r} is invalid: expected a path (a string or a pathlib.Path)")
    path = os.fspath(value)
    _checks.path_length(arg, os.fsdecode(path))
    return path


def hyperparameters(arg: str, value: Any) -> dict:
    """An optimizer's fixed hyperparameters: finite numbers or booleans (a flag such as nesterov=True)."""
    entries = table(arg, value)
    for key, v in entries.items():
        number = isinstance(v, numbers.Real) and (isinstance(v, bool) or math.isfinite(float(v)))
        if not number:
            raise ValueError(f"{arg}[{key!r}]={v!r} is invalid: expected a finite number or a boolean")
    return entries


def epochs(arg: str, value: Any) -> int:
    epochs = _checks.integer(arg, value, 1)
    if epochs > outcomes.MAX_EPOCHS:
        raise ValueError(f"{arg}={epochs} is invalid: at most {outcomes.MAX_EPOCHS} epochs can be tracked")
    return epochs


def one_of(choices) -> Callable[[str, Any], str]:
    return lambda arg, v: _checks.choice(arg, v, choices)


def positive(arg: str, value: Any) -> float:
    return _checks.real(arg, value, 0.0, closed_low=False)


def nonnegative(arg: str, value: Any) -> float:
    return _checks.real(arg, value, 0.0)


def table(arg: str, value: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{arg}={value!r} is invalid: expected a dict with string keys")
    return dict(value)


def names(arg: str, value: Any) -> list[str]:
    wanted = [value] if isinstance(value, str) else value
    if not isinstance(wanted, (list, tuple)) or not all(isinstance(v, str) for v in wanted):
        raise ValueError(f"{arg}={value!r} is invalid: expected a list of names")
    return list(wanted)


def groups(arg: str, value: Any) -> dict:
    entries = table(arg, value)
    return {g: [k.strip() for k in v.split(",") if k.strip()] if isinstance(v, str) else v for g, v in entries.items()}


def boolean(arg: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{arg}={value!r} is invalid: expected True or False")
    return value


def address(arg: str, value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    host = text.partition("://")[2] if "://" in text else text
    if not host or ":" not in host or any(c.isspace() for c in text):
        raise ValueError(f"{arg}={value!r} is invalid: expected a Dask scheduler address such as tcp://10.0.0.1:8786")
    return text


def client(arg: str, value: Any) -> Any:
    if not (callable(getattr(value, "submit", None)) and callable(getattr(value, "scheduler_info", None))):
        raise ValueError(f"{arg}={value!r} is invalid: expected a dask.distributed.Client")
    return value


def dask(scheduler: Any, workers: Any, client: Any, out: Any) -> None:
    """Refuse Dask settings that cannot run: two ways to reach workers, or any without ``out``."""
    given = [
        (name, v) for name, v in (("scheduler", scheduler), ("workers", workers), ("client", client)) if v is not None
    ]
    if not given:
        return
    if len(given) > 1:
        raise ValueError(f"{given[0][0]}= and {given[1][0]}= are both given; choose one way to reach Dask workers")
    name, value = given[0]
    shown = "<Client>" if name == "client" else repr(value)
    if out is None:
        raise ValueError(
            f"{name}={shown} needs out=: the workers write their chunks into a Zarr store on a filesystem they all reach"
        )
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError(
            f"{name}={shown} needs dask.distributed, which is not installed: pip install 'lrsweep[distributed]'"
        ) from None


#: Each problem instance is built, checked and identified on its own (about 0.1 s each measured
#: here): more than this many would take hours before the first chunk, so they are refused up front.
MAX_PROBLEM_SEEDS = 1024


def problem_seed(arg: str, value: Any) -> list[int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return list(range(_checks.integer(arg, value, 1, MAX_PROBLEM_SEEDS)))
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_PROBLEM_SEEDS:
        raise ValueError(
            f"{arg}={reprlib.repr(value)} is invalid: expected a count or a non-empty list of at most "
            f"{MAX_PROBLEM_SEEDS:,} seeds"
        )
    return [_checks.integer(f"{arg}[]", s, 0, MAX_SEED) for s in value]


def frozen(value: Any) -> Any:
    """A hashable stand-in for a setting's value, equal for equal values: dicts as their items in
    order, lists and tuples alike, arrays (numpy or JAX) as dtype, shape and bytes; anything else
    hashable as itself (a problem or a callable: by identity)."""
    if isinstance(value, Mapping):
        return (dict, tuple((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (tuple, tuple(frozen(v) for v in value))
    if isinstance(value, np.ndarray) or (hasattr(value, "__array__") and not _hashable(value)):
        array = np.asarray(value)
        return (np.ndarray, array.dtype.str, array.shape, array.tobytes())
    hash(value)  # a TypeError naming the type: a value this cannot stand in for
    return value


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def frozen_fields(obj: Any) -> tuple:
    """A dataclass's field values as :func:`frozen` stand-ins: what a spec is compared and hashed by."""
    return tuple(frozen(getattr(obj, f.name)) for f in dataclasses.fields(obj))
