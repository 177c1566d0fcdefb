"""Which path trains a chunk: the XLA program, or one of the fused kernels of ``lrsweep.kernels``.

``engine.run_chunk`` asks :func:`kernel_path`; ``planner.plan`` asks :func:`check_kernel` before a
sweep starts. ``static`` is an ``engine.Static`` (read by attribute here, so this module stays a
leaf below the engine).
"""

from __future__ import annotations

from typing import Any

import jax

from . import kernels
from .sums import UNROLL_MAX
from .types import KernelName

#: Data sets up to this size may take the per-example fused kernel (``engine_block.train_block``): each example
#: is one more term in the traced program, so the program grows with the data set.
EXAMPLES_MAX = 64


def fusable(static: Any) -> bool:
    """Whether the fused kernel (``lrsweep.kernels``) handles these settings: summary records of
    data sets summed term by term (``UNROLL_MAX`` examples or fewer), full batch, plain (``_plain``)."""
    return static.record == "summary" and static.n_data <= UNROLL_MAX and _plain(static)


def _plain(static: Any) -> bool:
    """Full batch, without ``track_sums``, held-out metrics or ``track_sharpness``: what the fused
    kernels train."""
    return not (static.track_sums or static.batch_size or static.metrics or static.track_sharpness)


def fusable_per_example(static: Any) -> bool:
    """Whether the per-example fused kernel (``engine_block.train_block``) handles these settings: summary
    records of data sets of at most ``EXAMPLES_MAX`` examples whose mean loss the engine sums
    example by example (not through a problem's ``batch_loss``), plain (``_plain``)."""
    whole = (
        static.grad == "autodiff"
        and static.n_data > UNROLL_MAX
        and getattr(static.loss, "batch_loss", None) is not None
    )
    return static.record == "summary" and static.n_data <= EXAMPLES_MAX and not whole and _plain(static)


def check_kernel(static: Any) -> None:
    """Raise a ValueError if ``static.kernel`` asks for a fused kernel that does not handle these settings."""
    kernel = static.kernel
    if kernel.startswith("pallas-examples") and not fusable_per_example(static):
        raise ValueError(
            f"kernel={kernel!r} is invalid here: the per-example fused kernel takes summary records of data "
            f"sets of at most {EXAMPLES_MAX} examples (not summed through a problem's batch_loss), full batch, "
            "without track_sums, held-out metrics or track_sharpness; use kernel='xla' or 'auto'"
        )
    if kernel in ("pallas", "pallas-interpret") and not fusable(static):
        raise ValueError(
            f"kernel={kernel!r} is invalid here: the fused kernel takes summary records of data sets "
            f"of at most {UNROLL_MAX} examples, full batch, without track_sums, held-out metrics or track_sharpness; use kernel='xla' or 'auto'"
        )


def kernel_path(static: Any, chunk: int) -> KernelName:
    """The path ``run_chunk`` takes: the one asked for, or for "auto" on GPU the per-example fused
    kernel where it applies (``fusable_per_example``), else the generic fused kernel where it
    applies (``fusable``), else XLA. XLA on other backends, and for a chunk that is not a whole
    number of kernel blocks."""
    if static.kernel != "auto":
        return static.kernel
    if jax.default_backend() != "gpu" or chunk % min(kernels.BLOCK, chunk):
        return "xla"
    if fusable_per_example(static):
        return "pallas-examples"
    return "pallas" if fusable(static) else "xla"
