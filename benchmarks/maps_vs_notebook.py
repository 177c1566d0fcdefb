"""A setting's map in float64 against the paper's notebook code (as ``tests/paper_reference.py``
transcribes it), on the setting's default window or another:

    python benchmarks/maps_vs_notebook.py paraminit --res 32 --steps 150   # appends to results/maps-vs-notebook.txt

Prints the share trainable and on the boundary, the steady pixels (whose notebook score moves by
less than 1e-6, relative, when ``W0`` is nudged by 1e-12; on the others training is chaotic), the
verdict agreement on the steady pixels and on all, and how many of the notebook's own verdicts the
nudge flips (the agreement no two codes that round differently can beat on chaotic pixels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from paper_reference import paper_setting_map  # pyright: ignore[reportMissingImports] (tests/ is put on sys.path above)

from lrsweep import maps
from lrsweep.maps import settings

RESULTS = Path(__file__).parent / "results" / "maps-vs-notebook.txt"


def compare(setting: str, x_range, y_range, res: int, steps: int) -> dict:
    ratio, _ = paper_setting_map(setting, x_range, y_range, res, steps, as_written=False)
    nudged, _ = paper_setting_map(setting, x_range, y_range, res, steps, as_written=False, init_shift=1e-12)
    ds = maps.trainability(setting=setting, x_range=x_range, y_range=y_range, res=res, steps=steps, precision="float64")
    mine = ds.score.values.T  # rows y, columns x, as the notebook's image
    steady = np.abs(nudged - ratio) <= 1e-6 * np.abs(ratio)
    return {
        "trainable": float(np.mean(ratio < 1)),
        "boundary": float(maps.boundary(ratio < 1).mean()),
        "steady": float(steady.mean()),
        "agree_steady": float(np.mean((mine[steady] < 1) == (ratio[steady] < 1))),
        "agree_all": float(np.mean((mine < 1) == (ratio < 1))),
        "nudge_flips": float(np.mean((nudged < 1) != (ratio < 1))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="a setting's map against the paper's notebook code, float64")
    ap.add_argument("setting", choices=settings.SETTINGS)
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--x-range", default=None, help="LO:HI (default: the setting's window)")
    ap.add_argument("--y-range", default=None, help="LO:HI (default: the setting's window)")
    ap.add_argument("--out", default=str(RESULTS), help="a text file to append to, or - for stdout only")
    args = ap.parse_args(argv)
    wx, wy = settings.WINDOWS[args.setting]
    x_range = tuple(float(v) for v in args.x_range.split(":")) if args.x_range else wx
    y_range = tuple(float(v) for v in args.y_range.split(":")) if args.y_range else wy
    m = compare(args.setting, x_range, y_range, args.res, args.steps)
    text = (
        f"{args.setting} x {x_range[0]:g}:{x_range[1]:g} y {y_range[0]:g}:{y_range[1]:g}, {args.res} x {args.res} px, "
        f"{args.steps} steps, float64: trainable {100 * m['trainable']:.1f}%, boundary {100 * m['boundary']:.1f}%, "
        f"steady {100 * m['steady']:.1f}%; verdicts agree on {100 * m['agree_steady']:.2f}% of the steady pixels, "
        f"{100 * m['agree_all']:.2f}% of all; a 1e-12 nudge of W0 flips {100 * m['nudge_flips']:.2f}% of the "
        "notebook's own verdicts\n"
    )
    sys.stdout.write(text)
    if args.out != "-":
        with Path(args.out).open("a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
