"""Argument checks shared by the public functions: a ValueError naming the argument, the value and
what is accepted."""

from __future__ import annotations

import functools
import numbers
import os

import jax
import jax.numpy as jnp
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

#: The longest file name lrsweep writes beside a path is the name plus ``.lock`` (5 bytes), and most
#: filesystems allow names of 255 bytes; Linux allows paths of 4096.
MAX_NAME_BYTES = 250
MAX_PATH_BYTES = 4000


def path_length(arg: str, value: str) -> str:
    """``value`` if no part of it is longer than a filesystem allows (checked before anything is written)."""
    encoded = os.fsencode(value)
    longest = max((len(part) for part in encoded.split(os.fsencode(os.sep))), default=0)
    if len(encoded) > MAX_PATH_BYTES or longest > MAX_NAME_BYTES:
        raise ValueError(
            f"{arg}={value[:60]!r}... is invalid: {len(encoded):,} bytes, a part of {longest:,}; expected a path of "
            f"at most {MAX_PATH_BYTES:,} bytes whose names have at most {MAX_NAME_BYTES} bytes each"
        )
    return value


@functools.cache
def backend_keeps_subnormals(dtype: str, backend: str) -> bool:
    """Whether ``backend``'s arithmetic in ``dtype`` keeps subnormal numbers (below the smallest
    normal number ``finfo(dtype).tiny``) instead of flushing them to 0. Measured, once per dtype
    and backend: XLA:CPU flushes them in float32 and float64 (it runs with flush-to-zero), so a
    float32 lr of 1e-40, which numpy keeps, trains as 0 there."""
    sub = np.asarray(np.finfo(dtype).tiny / 4, dtype)
    with jax.default_device(jax.devices(backend)[0]):
        return float(jnp.asarray(sub) * jnp.asarray(np.ones((), dtype))) != 0.0


def representable(arg: str, values, dtype, *, nonzero: bool = False) -> None:
    """Refuse ``values`` that ``dtype`` turns into inf or NaN (or into 0, where ``nonzero``).

    A learning rate of 1e-46 is 0 in float32, and 1e39 is inf: training with them would give a
    verdict ("stuck", "diverged") about a run nobody asked for. Where ``nonzero``, a subnormal
    value (1e-40 in float32) is refused too when the backend flushes subnormals to 0
    (:func:`backend_keeps_subnormals`): numpy keeps it, the device computes with 0. The error
    names the argument, the value and the dtype.
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
    if nonzero and dtype.kind == "f":
        tiny = np.finfo(dtype).tiny
        small = (values != 0) & (np.abs(cast) < tiny)
        if np.any(small):
            backend = jax.default_backend()
            if not backend_keeps_subnormals(dtype.name, backend):
                raise ValueError(
                    f"{arg}={float(values[small][0])!r} is below {dtype.name}'s smallest normal number ({tiny:.4g}), "
                    f"which the {backend} backend flushes to 0; use a value of at least {tiny:.4g}"
                    + (" or precision='float64'" if dtype.itemsize < 8 else "")
                )
