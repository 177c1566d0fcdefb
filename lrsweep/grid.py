"""Sweep axes: lists and spaces, validated, computed index by index.

A space is a string ``KIND:START:STOP:NUM``:

- ``log:1e-4:10:256``: 256 values log-spaced from 1e-4 to 10, both ends included;
- ``lin:0.01:0.2:20``: 20 values evenly spaced from 0.01 to 0.2, both ends included.

A list is comma-separated numbers (``0.01,0.1,1``), a number, or any 1-D array-like.

An :class:`Axis` computes the value at any index without building the whole axis, so a sweep of
1e8 learning rates never holds 1e8 coordinates in memory: value ``i`` of ``log:a:b:n`` is
``10 ** (log10(a) + i * (log10(b) - log10(a)) / (n - 1))`` and of ``lin:a:b:n`` is
``a + i * (b - a) / (n - 1)``, with both ends exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: The most values one axis may have (2**48, about 2.8e14): far beyond any machine's memory or
#: disk, so a larger count is a typo; it keeps every index inside int64 arithmetic.
MAX_VALUES = 2**48


def _error(arg: str, value, accepted: str) -> ValueError:
    shown = f"<{type(value).__name__} of shape {value.shape}>" if isinstance(value, np.ndarray) else repr(value)
    return ValueError(f"{arg}={shown} is invalid: {accepted}")


@dataclasses.dataclass(frozen=True, eq=False)
class Axis:
    """One sweep axis.

    Attributes:
      kind: ``"list"``, ``"log"`` or ``"lin"``.
      values: the values of a list axis (float64, 1-D), else None.
      start, stop, num: the space of a log or lin axis.
    """

    kind: str
    values: np.ndarray | None = None
    start: float = 0.0
    stop: float = 0.0
    num: int = 0

    def __len__(self) -> int:
        return int(self.values.size) if self.values is not None else self.num

    def at(self, index) -> np.ndarray:
        """The values at integer ``index`` (any shape), float64."""
        index = np.asarray(index, dtype=np.int64)
        if self.values is not None:
            return self.values[index]
        if self.num == 1:
            return np.full(index.shape, self.start)
        if self.kind == "log":
            lo, hi = np.log10(self.start), np.log10(self.stop)
            out = 10.0 ** (lo + index * ((hi - lo) / (self.num - 1)))
        else:
            out = self.start + index * ((self.stop - self.start) / (self.num - 1))
        # Both ends exact, whatever the rounding above.
        return np.where(index == 0, self.start, np.where(index == self.num - 1, self.stop, out))

    def all(self) -> np.ndarray:
        return self.at(np.arange(len(self)))

    def spec(self):
        """A JSON-able description: the space string, or the list of values."""
        if self.values is not None:
            return self.values.tolist()
        return f"{self.kind}:{self.start!r}:{self.stop!r}:{self.num}"


def parse_space(text: str, arg: str = "lr", positive: bool = True) -> Axis:
    """Parse ``log:START:STOP:NUM`` or ``lin:START:STOP:NUM``.

    ``START <= STOP`` (equal only for ``NUM == 1``), ``NUM >= 1``; a log space, and any space when
    ``positive``, needs ``START > 0``.
    """
    parts = text.split(":")
    lower = "0 < START" if positive else "START"
    accepted = f"expected 'log:START:STOP:NUM' or 'lin:START:STOP:NUM' with {lower} < STOP and NUM >= 1"
    if len(parts) != 4 or parts[0] not in ("log", "lin"):
        raise _error(arg, text, accepted)
    kind, start, stop, num = parts
    try:
        start, stop, num = float(start), float(stop), int(num)
    except ValueError:
        raise _error(arg, text, accepted) from None
    bad = not (np.isfinite(start) and np.isfinite(stop)) or num < 1 or stop < start or (num > 1 and stop == start)
    bad = bad or ((positive or kind == "log") and start <= 0)
    if bad:
        raise _error(arg, text, accepted + ("" if kind == "lin" else "; a log space needs START > 0"))
    if num > MAX_VALUES:
        raise _error(arg, text, f"NUM={num:,} is more values than any sweep can hold (at most {MAX_VALUES:,})")
    return Axis(kind, start=start, stop=stop, num=num)


def parse_axis(value, arg: str, positive: bool = True, what: str = "value") -> Axis:
    """Turn a number, a 1-D array-like, ``"a,b,c"`` or a space into a validated :class:`Axis`."""
    if isinstance(value, Axis):
        return value
    if isinstance(value, str) and ":" in value:
        return parse_space(value.strip(), arg, positive)
    if isinstance(value, str):
        try:
            arr = np.array([float(v) for v in value.split(",") if v.strip()], dtype=np.float64)
        except ValueError:
            raise _error(
                arg, value, "expected comma-separated numbers ('0.01,0.1,1') or a space ('log:1e-4:10:256')"
            ) from None
    else:
        flat = value if isinstance(value, (list, tuple)) else [value]
        if (
            isinstance(value, np.ma.MaskedArray)
            or np.asarray(value).dtype == bool
            or any(isinstance(v, bool) for v in flat)
        ):
            raise _error(arg, value, f"expected numbers; booleans and masked arrays are not {what}s")
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise _error(arg, value, "expected a number or a 1-D sequence of numbers") from None
        arr = arr.reshape(1) if arr.ndim == 0 else arr
    if arr.ndim != 1:
        raise _error(arg, value, f"expected a 1-D sequence, got an array of shape {arr.shape}")
    if arr.size == 0:
        raise _error(arg, value, f"expected at least one {what}")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if np.any(bad):
        first = float(arr[bad][0])
        raise _error(arg, value, f"{what}s must be finite{' and > 0' if positive else ''}, got {first!r}")
    return Axis("list", values=arr)


def parse_lr(value, arg: str = "lr") -> np.ndarray:
    """Turn a learning-rate spec into a validated 1-D float64 array of positive finite values.

    Accepts a number, a 1-D array-like, a comma-separated string (``"0.01,0.1,1"``) or a space
    (``"log:1e-4:10:256"``).

    >>> parse_lr("0.01,0.1,1")
    array([0.01, 0.1 , 1.  ])
    >>> parse_lr("lin:0.1:0.3:3")
    array([0.1, 0.2, 0.3])
    """
    return parse_axis(value, arg, positive=True, what="learning rate").all()


def lr_axes(value, arg: str = "lr") -> Axis | dict[str, Axis]:
    """Learning rates as a sweep takes them, validated: one :class:`Axis`, or for a dict (one axis per
    learning-rate group) a non-empty dict ``group -> Axis``; every value finite and > 0.

    >>> lr_axes({"w": "log:1e-3:1:4", "b": 0.1})["b"].all()
    array([0.1])
    """
    if not isinstance(value, dict):
        return parse_axis(value, arg, positive=True, what="learning rate")
    if not value:
        raise ValueError(f"{arg}={{}} is invalid: expected at least one group")
    return {g: parse_axis(v, f"{arg}[{g!r}]", positive=True, what="learning rate") for g, v in value.items()}


class InitGrid:
    """A Cartesian grid over chosen scalar parameters' initial values (see :func:`init_grid`).

    Attributes:
      axes: parameter name -> :class:`Axis` of initial values, in the order given.
    """

    def __init__(self, axes: dict[str, Axis]):
        self.axes = axes

    @property
    def values(self) -> dict[str, np.ndarray]:
        return {k: a.all() for k, a in self.axes.items()}

    def __repr__(self) -> str:
        return f"init_grid({', '.join(f'{k}={a.spec()!r}' for k, a in self.axes.items())})"


def init_grid(**values) -> InitGrid:
    """A grid of initialisations: the product of the given values, the other parameters at init.

    Each keyword names a scalar parameter of the problem and gives its initial values (a list, an
    array, or a space such as ``"lin:-5:5:41"``). In a sweep, each becomes a dim ``init_<name>``.

    >>> g = init_grid(w="lin:-2:2:5", b=[0.0, 1.0])
    >>> g.values["w"].tolist(), g.values["b"].tolist()
    ([-2.0, -1.0, 0.0, 1.0, 2.0], [0.0, 1.0])
    """
    if not values:
        raise ValueError("init_grid() needs at least one parameter, e.g. init_grid(w=[0.0, 1.0])")
    return InitGrid({name: parse_axis(spec, f"init_grid({name}=...)", positive=False) for name, spec in values.items()})
