"""The paper's full-view tanh map with the paper's draws and with today's: its untrainable corner.

The notebook's interactive cell starts from ``mnmx = [-3, 6, -3, 6]`` (log10 of both layers' lrs);
the published full view of the tanh network shows an untrainable corner at large input-layer and
small output-layer lrs (x > 5, y < -1.8). This script makes that window with lrsweep in float64,
once with ``prng="paper"`` (the 2024 draws) and once with ``prng="jax"`` (today's), and writes the
share of untrainable pixels in the corner and the agreement of the two maps:

    python benchmarks/maps_paper_corner.py            # writes benchmarks/results/maps-paper-corner.txt
    python benchmarks/maps_paper_corner.py --res 24 --steps 100 --out -
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lrsweep import maps
from lrsweep.maps import settings

RESULTS = Path(__file__).parent / "results" / "maps-paper-corner.txt"


def corner_mask(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``(x, y)`` pixels of the corner ``settings.PAPER_CORNER`` (log10 lr bounds)."""
    (x_min, y_max) = settings.PAPER_CORNER
    return (np.log10(xs)[:, None] > x_min) & (np.log10(ys)[None, :] < y_max)


def measure(res: int, steps: int) -> dict:
    x_range, y_range = settings.PAPER_FULL_VIEW
    out = {}
    for prng in settings.PRNGS:
        ds = maps.trainability(x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64", prng=prng)
        mask = corner_mask(ds.lr_W0.values, ds.lr_W1.values)
        out[prng] = ds.trainable.values
        out[f"{prng} corner untrainable"] = float(np.mean(~ds.trainable.values[mask]))
        out[f"{prng} trainable"] = float(ds.trainable.values.mean())
        out["corner pixels"] = int(mask.sum())
    out["agreement"] = float(np.mean(out["paper"] == out["jax"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the paper's full-view tanh map: its untrainable corner by draws")
    ap.add_argument("--res", type=int, default=48)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--out", default=str(RESULTS), help="a text file, or - for stdout")
    args = ap.parse_args(argv)
    m = measure(args.res, args.steps)
    (x0, x1), (y0, y1) = settings.PAPER_FULL_VIEW
    cx, cy = settings.PAPER_CORNER
    lines = [
        f"# python benchmarks/maps_paper_corner.py --res {args.res} --steps {args.steps}",
        f"tanh full batch, float64, window x {x0:g}:{x1:g}, y {y0:g}:{y1:g} (log10 lr), {args.res} x {args.res} "
        f"pixels, {args.steps} steps; corner x > {cx:g}, y < {cy:g}: {m['corner pixels']} pixels",
    ]
    for prng in settings.PRNGS:
        lines.append(
            f"prng={prng}: corner untrainable {100 * m[f'{prng} corner untrainable']:.1f}%, "
            f"whole map trainable {100 * m[f'{prng} trainable']:.1f}%"
        )
    lines.append(f"verdicts agree between the two draws on {100 * m['agreement']:.1f}% of pixels")
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
