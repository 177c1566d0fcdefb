"""``13-trainability-map``: the fractal paper's network over its two learning rates, and a zoom;
``14-six-settings``: the paper's six settings (:mod:`lrsweep.maps.settings`), one small map each.

Two panels side by side, each computed by :func:`lrsweep.maps.trainability` (the paper's "tanh full
batch" network, float32, ``record="summary"``) and drawn in the paper's colouring, orientation and
axis labels (:mod:`lrsweep.maps`): the default window, with a white box where the right panel
zooms in on the boundary. The caption's numbers (fraction trainable, fractal dimension, steps,
resolution) come from these runs (:func:`readme_values`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from matplotlib.patches import Rectangle

from .. import maps
from ..maps import settings as map_settings
from ._style import figure, save

RES = 96
STEPS = 300
#: The zoom: centred on the boundary's ragged stretch, 10 times narrower than the full window.
ZOOM_CENTER = (2.7, 2.12)
ZOOM = 10.0


#: The six settings' page: small maps (the gallery stays fast), float64 as the paper.
SIX_RES = 32
SIX_STEPS = 150


@functools.cache
def _maps():
    # float32 as before the precision option existed (the figure and its caption unchanged); the map
    # also measures its float32/float64 agreement on a sample.
    full = maps.trainability(
        None, maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE, res=RES, steps=STEPS, precision="float32"
    )
    x_range, y_range = maps.window(ZOOM_CENTER, ZOOM)
    zoom = maps.trainability(None, x_range, y_range, res=RES, steps=STEPS, precision="float32")
    return full, zoom


@functools.cache
def _six():
    return {
        s: maps.trainability(setting=s, res=SIX_RES, steps=SIX_STEPS, precision="float64")
        for s in map_settings.SETTINGS
    }


def _dimension_label(ds) -> str:
    fd = maps.fractal_dimension(ds["trainable"].values, warn=False)
    if fd.reason == "no boundary":
        return "no boundary"
    if not fd.meaningful:
        return f"dimension not meaningful at {ds['trainable'].shape[0]} px"
    return f"dimension {fd.dimension:.2f} (lsq, 95% CI {fd.ci_low:.2f} to {fd.ci_high:.2f})"


def fig_six_settings(data, out: Path) -> list[Path]:
    """The paper's six settings, each on its default window, in the paper's colouring."""
    six = _six()
    fig = figure((15.0, 10.4))
    axes = fig.subplots(2, 3)
    for ax, (name, ds) in zip(axes.ravel(), six.items()):
        maps.draw(ax, maps.image_of(ds), ds.attrs["map_x_range"], ds.attrs["map_y_range"], labels=maps.labels_of(ds))
        ax.set_title(
            f"{name}: {100 * ds.attrs['fraction_trainable']:.0f}% trainable\n{_dimension_label(ds)}", fontsize=12
        )
    fig.suptitle(
        f"The paper's six settings ({SIX_RES} x {SIX_RES} runs, {SIX_STEPS} steps each, float64, today's JAX draws)"
    )
    return save(fig, out, "14-six-settings")


def fig_trainability_map(data, out: Path) -> list[Path]:
    """The full window and a zoom into its boundary, side by side."""
    full, zoom = _maps()
    fig = figure((12.8, 6.8))
    axes = fig.subplots(1, 2)
    for ax, ds, name in zip(axes, (full, zoom), ("full window", f"{ZOOM:g}x zoom")):
        maps.draw(ax, maps.image_of(ds), ds.attrs["map_x_range"], ds.attrs["map_y_range"])
        fd = maps.fractal_dimension(ds["trainable"].values)
        ax.set_title(
            f"{name}: {100 * ds.attrs['fraction_trainable']:.0f}% trainable, dimension {fd.dimension:.2f}", fontsize=14
        )
    (x0, x1), (y0, y1) = zoom.attrs["map_x_range"], zoom.attrs["map_y_range"]
    axes[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=2))
    fig.suptitle(f"Trainability over two learning rates ({RES} x {RES} runs, {STEPS} steps each)")
    return save(fig, out, "13-trainability-map")


def readme_values(data=None) -> dict[str, str]:
    """The caption's numbers, keyed by their placeholder names in the README template."""
    full, zoom = _maps()
    fd_full = maps.fractal_dimension(full["trainable"].values)
    fd_zoom = maps.fractal_dimension(zoom["trainable"].values)
    (x0, x1), (y0, y1) = zoom.attrs["map_x_range"], zoom.attrs["map_y_range"]
    return {
        "map_res": str(RES),
        "map_steps": str(STEPS),
        "map_trainable_full": f"{100 * full.attrs['fraction_trainable']:.1f}",
        "map_trainable_zoom": f"{100 * zoom.attrs['fraction_trainable']:.1f}",
        "map_dim_full": f"{fd_full.dimension:.2f}",
        "map_dim_full_ci": f"{fd_full.ci_low:.2f} to {fd_full.ci_high:.2f}",
        "map_dim_zoom": f"{fd_zoom.dimension:.2f}",
        "map_dim_zoom_ci": f"{fd_zoom.ci_low:.2f} to {fd_zoom.ci_high:.2f}",
        "map_zoom": f"{ZOOM:g}",
        "map_zoom_x": f"10^{x0:.3g} to 10^{x1:.3g}",
        "map_zoom_y": f"10^{y0:.4g} to 10^{y1:.4g}",
        "six_res": str(SIX_RES),
        "six_steps": str(SIX_STEPS),
        "six_facts": "; ".join(
            f"{name} {100 * ds.attrs['fraction_trainable']:.0f}% trainable ({_dimension_label(ds)})"
            for name, ds in _six().items()
        ),
    }
