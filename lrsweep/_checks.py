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


def integer(arg: str, value, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{arg}={value!r} is invalid: expected an integer >= {minimum}")
    return int(value)


def real(arg: str, value, low: float, high: float = np.inf, *, closed_low: bool = True) -> float:
    """``value`` as a float if it is a finite real number in ``[low, high)`` (or ``(low, high)``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value >= low if closed_low else value > low) and value < high
    if not ok:
        if np.isinf(high):
            accepted = f"a finite number {'>=' if closed_low else '>'} {low:g}"
        else:
            accepted = f"a number in {'[' if closed_low else '('}{low:g}, {high:g})"
        raise ValueError(f"{arg}={value!r} is invalid: expected {accepted}")
    return float(value)
