"""Pictures of trainability maps in the paper's style: its colour restretch, orientation and labels.

The paper's notebook (github.com/Sohl-Dickstein/fractal, ``convergence_measure``, ``cdf_img`` and
``plot_img``) colours a pixel by a signed value, negative where training is trainable, then
restretches the values by rank: the negative ones, in sorted order, onto ``[-1, -0.25]``, the
others onto ``[0.25, 1]``, the image is negated and drawn with matplotlib's ``Spectral`` map from
-1 to 1. So trainable pixels take the map's blue-green half and untrainable ones its red-yellow
half, with a gap at the boundary, each half spread evenly over its pixels: two colour maps in one.

The image: the input layer's lr along x, the output layer's lr along y, ``origin="lower"``, extent
the log10 window, the two ends of each axis labelled with the learning rates themselves (as many
digits as it takes to tell them apart, the notebook's ``truncate_sci_notation``), the y labels
turned 90 degrees; axis labels "Input layer learning rate" and "Output layer learning rate".
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from ._axes import PAPER_LR_DIMS, axis_label

if TYPE_CHECKING:  # matplotlib loads when a map is drawn, not with `import lrsweep`
    from matplotlib.figure import Figure

#: The gap the restretch leaves between the two classes (the notebook's ``buffer``).
BUFFER = 0.25
CMAP = "Spectral"
X_LABEL = "Input layer learning rate"
Y_LABEL = "Output layer learning rate"


def colour_value(score, sum_v, sum_inv_v) -> np.ndarray:
    """The paper's signed colour value (its notebook's ``convergence_measure``): ``-sum_v`` where
    trainable (``score < 1``), ``sum_inv_v`` elsewhere.

    ``sum_v`` and ``sum_inv_v`` are the sums over every step of the relative loss ``r_e = L_e /
    L_0`` (non-finite 1e6, clipped at 1e6) and of ``1 / r_e`` (``lrsweep.outcomes``; the sweep
    keeps them with ``track_sums=True``). So a trainable pixel is darker the faster its loss fell,
    an untrainable one the faster it blew up; :func:`restretch` turns the values into ranks.
    """
    score = np.asarray(score, np.float64)
    return np.where(score < 1, -np.asarray(sum_v, np.float64), np.asarray(sum_inv_v, np.float64))


def restretch(values, reference=None, buffer: float = BUFFER) -> np.ndarray:
    """The notebook's ``cdf_img``: values to ``[-1, 1]`` by rank within each sign, then negated.

    ``reference`` (default ``values``) gives the ranks. Negative values (trainable) land in
    ``[buffer, 1]``, the others in ``[-1, -buffer]``.
    """
    x = np.asarray(values, np.float64)
    u = np.sort(np.asarray(x if reference is None else reference, np.float64).ravel())
    num_neg = int(np.sum(u < 0))
    v = np.concatenate([np.linspace(-1, -buffer, num_neg), np.linspace(buffer, 1, u.size - num_neg)])
    return -np.interp(x, u, v)


def truncate_sci(lo: float, hi: float) -> list[str]:
    """Labels for two numbers with four digits past the first that differ (the notebook's
    ``truncate_sci_notation``): ``(0.001, 1e6) -> ['1.000e-3', '1.000e+6']``."""
    a, b = f"{lo:.15e}", f"{hi:.15e}"
    sig_a, exp_a = a.split("e")
    sig_b, exp_b = b.split("e")
    cut = min(len(sig_a), len(sig_b))
    for i in range(cut):
        if sig_a[i] != sig_b[i] or exp_a != exp_b:
            cut = i + 4 + (1 if i == 0 else 0)
            break

    def exponent(e: str) -> str:
        k = int(e)
        return f"{'+' if k >= 0 else '-'}{abs(k)}"

    return [f"{sig_a[:cut]}e{exponent(exp_a)}", f"{sig_b[:cut]}e{exponent(exp_b)}"]


def draw(ax, image: np.ndarray, x_range, y_range, cmap: str = CMAP, labels=None):
    """Draw a restretched image (rows: y from low to high; columns: x) on ``ax`` in the notebook's style;
    ``labels``: the axes' (x, y) labels (default the two layers' learning rates)."""
    (x0, x1), (y0, y1) = x_range, y_range
    im = ax.imshow(
        image,
        extent=[x0, x1, y0, y1],
        origin="lower",
        vmin=-1,
        vmax=1,
        cmap=cmap,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_xlabel((labels or (X_LABEL, Y_LABEL))[0])
    ax.set_ylabel((labels or (X_LABEL, Y_LABEL))[1])
    ax.set_xticks([x0, x1], truncate_sci(10.0**x0, 10.0**x1))
    ax.set_yticks([y0, y1], truncate_sci(10.0**y0, 10.0**y1), rotation=90)
    xl, yl = ax.get_xticklabels(), ax.get_yticklabels()
    xl[0].set_horizontalalignment("left")
    xl[1].set_horizontalalignment("right")
    yl[0].set_verticalalignment("bottom")
    yl[1].set_verticalalignment("top")
    ax.grid(False)
    return im


def labels_of(ds) -> tuple[str, str]:
    """A map's axis labels, as the notebook's for its network (the offset and the learning rate for
    paraminit maps), else named by the axes (``_axes.axis_label``)."""
    dims = (ds.attrs.get("map_x_dim"), ds.attrs.get("map_y_dim"))
    if dims[0] == "init_offset":
        return "Input layer weight offset", "Learning rate"
    if dims in PAPER_LR_DIMS:
        return X_LABEL, Y_LABEL
    return axis_label(str(dims[0])), axis_label(str(dims[1]))


def image_of(ds) -> np.ndarray:
    """A map's restretched colour as an image: rows the output layer's lr (low first), columns the input layer's."""
    x_dim, y_dim = ds.attrs["map_x_dim"], ds.attrs["map_y_dim"]
    return restretch(ds["colour"].transpose(y_dim, x_dim).values)


def figure(ds, title: str | None = None, size=(8.0, 8.0), dpi: int = 100, cmap: str = CMAP) -> Figure:
    """A matplotlib ``Figure`` (no pyplot) of a map from :func:`lrsweep.maps.trainability`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    draw(ax, image_of(ds), ds.attrs["map_x_range"], ds.attrs["map_y_range"], cmap, labels_of(ds))
    if title:
        ax.set_title(title)
    return fig


def png_bytes(fig: Figure, dpi: int | None = None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def write_gif(figures: list[Figure], path, ms_per_frame: int = 400) -> None:
    """An animated GIF (looping) of the figures, one frame each."""
    import PIL.Image

    frames = []
    for fig in figures:
        with PIL.Image.open(io.BytesIO(png_bytes(fig))) as im:
            frames.append(im.convert("RGB").quantize(256, method=PIL.Image.Quantize.MEDIANCUT))
    frames[0].save(path, format="gif", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
