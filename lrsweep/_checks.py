"""Argument checks shared by the public functions: a ValueError naming the argument, the value and
what is accepted."""

from __future__ import annotations

import numbers

import numpy as np


def choice(arg: str, value, choices) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{arg}={value!r} is invalid: expected one of {list(choices)}")
    return value


def integer(arg: str, value, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) ``>= minimum`` (and ``<= maximum``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{arg}={value!r} is invalid: expected an integer >= {minimum}")
    if maximum is not None and int(value) > maximum:
        raise ValueError(f"{arg}={value!r} is invalid: expected an integer from {minimum} to {maximum:,}")
    return int(value)


def real(arg: str, value, low: float, high: float = np.inf, *, closed_low: bool = True) -> float:
    """``value`` as a float if it is a finite real number in ``[low, high)`` (or ``(low, high)``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(float(value))
    ok = ok and (float(value) >= low if closed_low else float(value) > low) and float(value) < high
    if not ok:
        if np.isinf(high):
            accepted = f"a finite number {'>=' if closed_low else '>'} {low:g}"
        else:
            accepted = f"a number in {'[' if closed_low else '('}{low:g}, {high:g})"
        raise ValueError(f"{arg}={value!r} is invalid: expected {accepted}")
    return float(value)


def size(arg: str, value) -> int:
    """``"2GB"``, ``"64MB"``, ``"512MiB"``, ``"1.5G"`` or a number of bytes, as bytes."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        nbytes = int(value)
    elif isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        units = {
            "TIB": 2**40,
            "GIB": 2**30,
            "MIB": 2**20,
            "KIB": 2**10,
            "TB": 10**12,
            "GB": 10**9,
            "MB": 10**6,
            "KB": 10**3,
            "T": 10**12,
            "G": 10**9,
            "M": 10**6,
            "K": 10**3,
            "B": 1,
        }
        for unit, unit_factor in units.items():
            if text.endswith(unit):
                number, factor = text[: -len(unit)], unit_factor
                break
        else:
            number, factor = text, 1
        try:
            nbytes = int(float(number) * factor)
        except (ValueError, OverflowError):
            raise ValueError(
                f"{arg}={value!r} is invalid: expected a size such as '2GB', '64MB' or a number of bytes"
            ) from None
    else:
        raise ValueError(f"{arg}={value!r} is invalid: expected a size such as '2GB', '64MB' or a number of bytes")
    if nbytes <= 0:
        raise ValueError(f"{arg}={value!r} is invalid: expected a positive size")
    if nbytes > MAX_BYTES:
        raise ValueError(f"{arg}={value!r} is invalid: expected at most 1 EiB (2**60 bytes)")
    return nbytes


#: The largest size a budget may name: 1 EiB, beyond any machine.
MAX_BYTES = 2**60


def representable(arg: str, values, dtype, *, nonzero: bool = False) -> None:
    """Refuse ``values`` that ``dtype`` turns into inf or NaN (or into 0, where ``nonzero``).

    A learning rate of 1e-46 is 0 in float32, and 1e39 is inf: training with them would give a
    verdict ("stuck", "diverged") about a run nobody asked for. The error names the argument,
    the value and the dtype.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        cast = values.astype(dtype)
    bad = ~np.isfinite(cast)
    if nonzero:
        bad |= cast == 0
    if np.any(bad):
        first = float(values[bad][0])
        becomes = "0" if np.isfinite(cast[bad][0]) else str(cast[bad][0])
        raise ValueError(
            f"{arg}={first!r} becomes {becomes} in {dtype.name}; use precision='float64' or a value "
            f"within float{dtype.itemsize * 8}'s range"
        )
