"""Learning-rate axes: lists and spaces, validated.

A space is a string ``KIND:START:STOP:NUM``:

- ``log:1e-4:10:256``: 256 values log-spaced from 1e-4 to 10, both ends included;
- ``lin:0.01:0.2:20``: 20 values evenly spaced from 0.01 to 0.2, both ends included.

A list is comma-separated numbers (``0.01,0.1,1``), a number, or any 1-D array-like.
"""

from __future__ import annotations

import numpy as np


def _error(arg: str, value, accepted: str) -> ValueError:
    return ValueError(f"{arg}={value!r} is invalid: {accepted}")


def parse_space(text: str, arg: str = "lr") -> np.ndarray:
    """Parse ``log:START:STOP:NUM`` or ``lin:START:STOP:NUM`` into a float64 array of NUM values."""
    parts = text.split(":")
    accepted = "expected 'log:START:STOP:NUM' or 'lin:START:STOP:NUM' with 0 < START < STOP and NUM >= 1"
    if len(parts) != 4 or parts[0] not in ("log", "lin"):
        raise _error(arg, text, accepted)
    kind, start, stop, num = parts
    try:
        start, stop, num = float(start), float(stop), int(num)
    except ValueError:
        raise _error(arg, text, accepted) from None
    if not (np.isfinite(start) and np.isfinite(stop)) or num < 1 or start <= 0 or stop < start or (
        num > 1 and stop == start
    ):
        raise _error(arg, text, accepted)
    if kind == "log":
        return np.geomspace(start, stop, num)
    return np.linspace(start, stop, num)


def parse_lr(value, arg: str = "lr") -> np.ndarray:
    """Turn a learning-rate spec into a validated 1-D float64 array of positive finite values.

    Accepts a number, a 1-D array-like, a comma-separated string (``"0.01,0.1,1"``) or a space
    (``"log:1e-4:10:256"``).

    >>> parse_lr("0.01,0.1,1")
    array([0.01, 0.1 , 1.  ])
    >>> parse_lr("lin:0.1:0.3:3")
    array([0.1, 0.2, 0.3])
    """
    if isinstance(value, str):
        text = value.strip()
        if ":" in text:
            lr = parse_space(text, arg)
        else:
            try:
                lr = np.array([float(v) for v in text.split(",") if v.strip()], dtype=np.float64)
            except ValueError:
                raise _error(
                    arg, value, "expected comma-separated numbers ('0.01,0.1,1') or a space ('log:1e-4:10:256')"
                ) from None
    else:
        try:
            lr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise _error(arg, value, "expected a number or a 1-D sequence of numbers") from None
        lr = lr.reshape(1) if lr.ndim == 0 else lr
    if lr.ndim != 1:
        raise _error(arg, value, f"expected a 1-D sequence, got an array of shape {lr.shape}")
    if lr.size == 0:
        raise _error(arg, value, "expected at least one learning rate")
    bad = ~np.isfinite(lr) | (lr <= 0)
    if bad.any():
        first = float(lr[bad][0])
        raise _error(arg, value, f"learning rates must be finite and > 0, got {first!r}")
    return lr


class InitGrid:
    """A Cartesian grid over chosen scalar parameters' initial values (see :func:`init_grid`).

    Attributes:
      values: parameter name -> 1-D float64 array of initial values, in the order given.
    """

    def __init__(self, values: dict[str, np.ndarray]):
        self.values = values

    def __repr__(self) -> str:
        return f"init_grid({', '.join(f'{k}=<{v.size} values>' for k, v in self.values.items())})"


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
    out = {}
    for name, spec in values.items():
        arg = f"init_grid({name}=...)"
        if isinstance(spec, str) and ":" in spec:
            kind = spec.split(":")[0]
            if kind == "lin":  # linear spaces may cross zero for inits
                parts = spec.split(":")
                try:
                    start, stop, num = float(parts[1]), float(parts[2]), int(parts[3])
                except (ValueError, IndexError):
                    raise _error(arg, spec, "expected 'lin:START:STOP:NUM'") from None
                if len(parts) != 4 or num < 1 or not (np.isfinite(start) and np.isfinite(stop)) or stop < start:
                    raise _error(arg, spec, "expected 'lin:START:STOP:NUM' with START <= STOP and NUM >= 1")
                arr = np.linspace(start, stop, num)
            else:
                arr = parse_space(spec, arg)
        else:
            try:
                arr = np.atleast_1d(np.asarray(spec, dtype=np.float64))
            except (TypeError, ValueError):
                raise _error(arg, spec, "expected numbers") from None
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise _error(arg, spec, "expected a non-empty 1-D list of finite numbers")
        out[name] = arr
    return InitGrid(out)
