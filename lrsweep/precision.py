"""Precision policies: which dtype holds the parameters and which dtype does the arithmetic.

=========  ==============  ==============================================================
policy     parameters      loss, gradient and update arithmetic
=========  ==============  ==============================================================
float32    float32         float32
float64    float64         float64
mixed      float32         float64, the update rounded back to float32 when it is stored
=========  ==============  ==============================================================

``"mixed"`` is what the lesson's numpy notebook really computes: its parameters live in float32
arrays, but its data are Python ints, so numpy promotes the loss, the finite difference and the
update to float64 and rounds only when the update is stored back into the float32 array. A
finite-difference nudge is added in the parameter dtype (the notebook's ``+=`` on a float32 array).

The float64 policies need JAX's x64 mode. It is switched on with ``jax.enable_x64`` around the
computation only, never globally, so importing lrsweep leaves the user's JAX configuration alone.
"""

from __future__ import annotations

import contextlib
import dataclasses

import jax
import numpy as np

from . import _checks


@dataclasses.dataclass(frozen=True)
class Policy:
    """A precision policy.

    Attributes:
      name: ``"float32"``, ``"float64"`` or ``"mixed"``.
      param_dtype: dtype of stored parameters (and of the finite-difference nudge).
      compute_dtype: dtype of data, loss, gradient and update arithmetic.
      exact: keep every rounding where numpy has one. XLA:CPU contracts ``a * b + c`` into a fused
        multiply-add (one rounding instead of two); numpy never does. An exact policy rounds the
        products that feed a sum on their own (see ``lrsweep.engine``), so that its results equal
        numpy's to the last bit.
    """

    name: str
    param_dtype: np.dtype
    compute_dtype: np.dtype
    exact: bool

    @property
    def needs_x64(self) -> bool:
        return np.dtype(np.float64) in (self.param_dtype, self.compute_dtype)

    def context(self):
        """A context in which this policy's dtypes exist (x64 on for float64, else unchanged)."""
        return jax.enable_x64(True) if self.needs_x64 else contextlib.nullcontext()


POLICIES = {
    "float32": Policy("float32", np.dtype(np.float32), np.dtype(np.float32), exact=False),
    "float64": Policy("float64", np.dtype(np.float64), np.dtype(np.float64), exact=False),
    "mixed": Policy("mixed", np.dtype(np.float32), np.dtype(np.float64), exact=True),
}


def get(name: str) -> Policy:
    """Return the policy called ``name``."""
    return POLICIES[_checks.choice("precision", name, tuple(POLICIES))]
