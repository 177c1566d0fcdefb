"""Box-counting dimension of a trainability map's boundary.

The boundary is the set of pixels whose 4-neighbourhood mixes classes: a pixel is on it when its
left, right, upper or lower neighbour has the other class (trainable vs not). That set is two
pixels thick (one on each side of an edge), which biases box counts at small sizes (a box holds
one or two columns of a straight edge depending on where its grid falls), so the boxes count its
trainable side only: the trainable pixels with an untrainable neighbour, one pixel thick. The box
count ``N(s)`` is the number of ``s x s`` boxes of a grid (anchored at the image's corner) that
hold at least one of them; for a fractal ``N(s) ~ s^-D``. The dimension ``D`` is the slope of a
least-squares line through ``(log(1/s), log N(s))`` over box sizes ``s = 2, 4, 8, ...`` up to a
quarter of the image's shorter side (``s = 1`` counts the pixel raster itself, a boundary two
pixels thick; boxes larger than a quarter of the image are too few to count). The confidence
interval is ``D +- t * stderr`` from the regression (Student's t, 95%).

The paper (Sohl-Dickstein 2024) marks edges the same way, as sign changes over 2 x 2 blocks of its
measure, and reports the median of porespy's local box-count slopes over a zoom sequence of
4096 x 4096 images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (larger: 1.96).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)


class FractalDimension(NamedTuple):
    """A box-counting estimate: ``dimension`` first, then how it was fitted.

    Attributes:
      dimension: the fitted slope ``D`` (NaN when the boundary is empty or fewer than 2 sizes fit).
      stderr: the slope's standard error from the regression (0 with exactly 2 sizes).
      ci_low, ci_high: the 95% confidence interval, ``D +- t * stderr``.
      sizes: the box sizes used for the fit (pixels).
      counts: the boxes holding boundary pixels (trainable side) at each size.
      boundary_fraction: the fraction of pixels on the boundary (both sides, :func:`boundary`).
    """

    dimension: float
    stderr: float
    ci_low: float
    ci_high: float
    sizes: tuple[int, ...]
    counts: tuple[int, ...]
    boundary_fraction: float


def boundary(trainable) -> np.ndarray:
    """Pixels of a 2-D boolean map whose left, right, upper or lower neighbour has the other class."""
    t = _as_map(trainable)
    edge = np.zeros(t.shape, bool)
    dx = t[:, 1:] != t[:, :-1]
    dy = t[1:, :] != t[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


def box_counts(mask: np.ndarray, sizes) -> list[int]:
    """Boxes of side ``s`` (a grid from the corner; partial boxes at the far edges count) holding any pixel of ``mask``."""
    out = []
    for s in sizes:
        h, w = -(-mask.shape[0] // s), -(-mask.shape[1] // s)
        padded = np.zeros((h * s, w * s), bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask
        out.append(int(padded.reshape(h, s, w, s).any(axis=(1, 3)).sum()))
    return out


def fractal_dimension(trainable, min_size: int = 2, max_size: int | None = None) -> FractalDimension:
    """The box-counting dimension of the boundary of a 2-D boolean map (``True`` = trainable).

    ``min_size`` and ``max_size`` bound the box sizes (powers of two); the default ``max_size`` is
    a quarter of the map's shorter side. Accepts a numpy array or an ``xarray.DataArray``.

    >>> fractal_dimension(np.broadcast_to(np.arange(64) < 32, (64, 64))).dimension  # a straight edge
    1.0
    """
    t = _as_map(trainable)
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 1:
        raise ValueError(f"min_size={min_size!r} is invalid: expected an integer >= 1")
    top = min(t.shape) // 4 if max_size is None else max_size
    sizes = [1 << k for k in range(0, 31) if min_size <= (1 << k) <= top]
    edge = boundary(t)
    frac = float(edge.mean())
    counts = box_counts(edge & t, sizes)  # the trainable side: one pixel thick
    keep = [(s, c) for s, c in zip(sizes, counts) if c > 0]
    if len(keep) < 2:
        nan = float("nan")
        return FractalDimension(nan, nan, nan, nan, tuple(sizes), tuple(counts), frac)
    s, c = np.array(keep, dtype=np.float64).T
    xs, ys = -np.log(s), np.log(c)
    slope, intercept = np.polyfit(xs, ys, 1)
    n = len(xs)
    if n > 2:
        resid = ys - (slope * xs + intercept)
        stderr = float(np.sqrt(resid @ resid / (n - 2) / ((xs - xs.mean()) @ (xs - xs.mean()))))
        t95 = _T95[n - 3] if n - 2 <= len(_T95) else 1.96
    else:
        stderr, t95 = 0.0, 0.0
    d = round(float(slope), 12)
    return FractalDimension(
        d, stderr, d - t95 * stderr, d + t95 * stderr, tuple(int(v) for v in s), tuple(int(v) for v in c), frac
    )


def _as_map(trainable) -> np.ndarray:
    t = np.asarray(getattr(trainable, "values", trainable))
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError(f"trainable has shape {t.shape}: expected a 2-D map of at least 2 x 2 pixels")
    if t.dtype != np.bool_:
        raise ValueError(f"trainable has dtype {t.dtype}: expected a boolean map (True = trainable)")
    return t
