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

``method="paper"`` is the paper's estimator (Sohl-Dickstein 2024, its notebook's
``estimate_fractal_dimension``): the edge set is every 2 x 2 block of pixels that mixes classes (an
``(n - 1) x (n - 1)`` image), boxes of sizes ``unique(int(logspace(1, log10(n), 10)))`` (10 px to
the whole image, as porespy's ``boxcount``) count the boxes that hold some edge pixels but are not
all edge, the local slopes are ``-d log N / d log s`` (``numpy.gradient``), and the estimate is the
median of the local slopes of every image of a zoom sequence. Its interval is the quartiles of those
slopes (a spread, not a confidence interval). The paper used 4096 x 4096 images.

Either estimate means nothing when the boxes span less than ``MIN_SPAN`` (three octaves) or when
the boundary covers more than ``MAX_BOUNDARY_SHARE`` of the pixels (the structure is finer than a
pixel): the estimate then says so (``meaningful``, ``reason``) and warns in one line.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

#: The box sizes must span at least this ratio (largest / smallest) for a dimension to mean anything.
MIN_SPAN = 8
#: Above this share of pixels on the boundary the map is unresolved (finer than a pixel).
MAX_BOUNDARY_SHARE = 0.5
METHODS = ("lsq", "paper")


class NotMeaningfulWarning(UserWarning):
    """A fractal dimension estimated where the box range or the boundary share makes it meaningless."""


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
      method: ``"lsq"`` (least squares, interval a 95% CI) or ``"paper"`` (median of local slopes,
        interval their quartiles).
      meaningful: False when the box range or the boundary share makes the estimate meaningless.
      reason: why not (empty when meaningful).
    """

    dimension: float
    stderr: float
    ci_low: float
    ci_high: float
    sizes: tuple[int, ...]
    counts: tuple[int, ...]
    boundary_fraction: float
    method: str = "lsq"
    meaningful: bool = True
    reason: str = ""


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


def fractal_dimension(
    trainable, min_size: int = 2, max_size: int | None = None, *, method: str = "lsq", warn: bool = True
) -> FractalDimension:
    """The box-counting dimension of the boundary of a 2-D boolean map (``True`` = trainable).

    ``method="lsq"`` (module docstring): ``min_size`` and ``max_size`` bound the box sizes (powers
    of two); the default ``max_size`` is a quarter of the map's shorter side. ``method="paper"``:
    the paper's estimator; ``trainable`` may then be a sequence of maps (a zoom sequence), whose
    local slopes are pooled. Accepts numpy arrays or ``xarray.DataArray``. ``warn``: warn in one
    line (:class:`NotMeaningfulWarning`) when the estimate is not meaningful.

    >>> fractal_dimension(np.broadcast_to(np.arange(64) < 32, (64, 64))).dimension  # a straight edge
    1.0
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is invalid: expected one of {list(METHODS)}")
    fd = _paper(trainable) if method == "paper" else _lsq(_as_map(trainable), min_size, max_size)
    if warn and not fd.meaningful and not np.isnan(fd.dimension):
        warnings.warn(f"fractal dimension {fd.dimension:.3f} is not meaningful: {fd.reason}", NotMeaningfulWarning, 2)
    return fd


def _assess(sizes, frac: float) -> str:
    """Why an estimate from these box sizes and boundary share means nothing ("" if it does)."""
    if len(sizes) < 2 or sizes[-1] < MIN_SPAN * sizes[0]:
        span = f"{sizes[0]} to {sizes[-1]} px" if len(sizes) else "none"
        return f"the boxes span {span}, less than {MIN_SPAN}x (a larger resolution is needed)"
    if frac > MAX_BOUNDARY_SHARE:
        return (
            f"the boundary covers {100 * frac:.0f}% of pixels (more than {100 * MAX_BOUNDARY_SHARE:.0f}%: unresolved)"
        )
    return ""


def _lsq(t: np.ndarray, min_size, max_size) -> FractalDimension:
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
        reason = "no boundary" if not edge.any() else _assess(tuple(sizes), frac) or "fewer than 2 box sizes hold it"
        return FractalDimension(nan, nan, nan, nan, tuple(sizes), tuple(counts), frac, "lsq", False, reason)
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
    used = tuple(int(v) for v in s)
    reason = _assess(used, frac)
    return FractalDimension(
        d, stderr, d - t95 * stderr, d + t95 * stderr, used, tuple(int(v) for v in c), frac, "lsq", not reason, reason
    )


def edges_2x2(trainable) -> np.ndarray:
    """The paper's edge set: ``(n - 1) x (m - 1)``, True where a 2 x 2 block of pixels mixes classes."""
    t = _as_map(trainable)
    blocks = np.stack([t[1:, 1:], t[:-1, 1:], t[1:, :-1], t[:-1, :-1]])
    return np.asarray(blocks.any(axis=0) & ~blocks.all(axis=0))


def paper_box_sizes(shape) -> np.ndarray:
    """porespy's default box sizes for an image: ``unique(int(logspace(1, log10(min(shape)), 10)))``."""
    return np.unique(np.logspace(1, np.log10(min(shape)), 10).astype(int))


def spanning_counts(mask: np.ndarray, sizes) -> list[int]:
    """Boxes of side ``s`` (a grid from the corner; partial boxes count) with some but not all pixels of ``mask``."""
    out = []
    for s in sizes:
        h, w = -(-mask.shape[0] // s), -(-mask.shape[1] // s)
        some = np.zeros((h * s, w * s), bool)
        some[: mask.shape[0], : mask.shape[1]] = mask
        every = np.ones(
            (h * s, w * s), bool
        )  # outside the image counts as "all" (a partial box is judged on its pixels)
        every[: mask.shape[0], : mask.shape[1]] = mask
        any_ = some.reshape(h, s, w, s).any(axis=(1, 3))
        all_ = every.reshape(h, s, w, s).all(axis=(1, 3))
        out.append(int((any_ & ~all_).sum()))
    return out


def _paper(maps_) -> FractalDimension:
    seq = list(maps_) if isinstance(maps_, Sequence) and not isinstance(maps_, np.ndarray) else [maps_]
    if not seq:
        raise ValueError("trainable=[] is invalid: expected a map or a non-empty sequence of maps")
    slopes, reasons, frac = [], [], []
    sizes: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()
    for m in seq:
        t = _as_map(m)
        edge = edges_2x2(t)
        ds = paper_box_sizes(edge.shape)
        n = np.array(spanning_counts(edge, ds), np.float64)
        frac.append(float(boundary(t).mean()))
        sizes, counts = tuple(int(v) for v in ds), tuple(int(v) for v in n)
        reasons.append(_assess(sizes, frac[-1]))
        if len(ds) >= 2 and (n > 0).all():
            slopes.append(-np.gradient(np.log(n), np.log(ds)))
    share = float(np.mean(frac))
    if not slopes:
        nan = float("nan")
        return FractalDimension(nan, nan, nan, nan, sizes, counts, share, "paper", False, "no boundary")
    pooled = np.concatenate(slopes)
    d = float(np.median(pooled))
    q1, q3 = (float(v) for v in np.percentile(pooled, [25, 75]))
    reason = next((r for r in reasons if r), "")
    return FractalDimension(d, float("nan"), q1, q3, sizes, counts, share, "paper", not reason, reason)


def _as_map(trainable) -> np.ndarray:
    t = np.asarray(getattr(trainable, "values", trainable))
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError(f"trainable has shape {t.shape}: expected a 2-D map of at least 2 x 2 pixels")
    if t.dtype != np.bool_:
        raise ValueError(f"trainable has dtype {t.dtype}: expected a boolean map (True = trainable)")
    return t
