"""``lrsweep map``: a trainability map, its PNG and fractal dimension, or a zoom GIF."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

from .. import spec_sources
from . import (
    AUTO_AGREEMENT,
    CHECK_RES,
    DEFAULT_PRECISION,
    DEFAULT_RES,
    DEFAULT_STEPS,
    PRECISIONS,
    figure,
    summary_line,
    trainability,
    window,
    write_gif,
    zoom_windows,
)
from ._axes import ACCEPTED
from .settings import (
    DEFAULT_OFFSET_MODE,
    DEFAULT_PRNG,
    DEFAULT_SETTING,
    LABELS,
    OFFSET_MODES,
    PRNGS,
    SETTINGS,
    WINDOWS,
    setting_problem,
)

EXAMPLES = """examples:
  lrsweep map --res 128 --steps 500 --png map.png                the default window
  lrsweep map --x-range -1:3 --y-range 0:2 --res 256 --out map.zarr --png map.png
  lrsweep map --center 1.5,1.4 --zoom 100 --png zoom.png         100x narrower, centred there
  lrsweep map --zoom-to 1.5,1.4 --zoom 1000 --frames 12 --res 96 --out frames --gif zoom.gif
  lrsweep map --problem mlp --x-range -1:4 --y-range 1.5:3 --res 64   any problem: lr_W0 x lr_W1
  lrsweep map --problem linear --x-axis init_w --y-axis lr --x-range -2:1 --y-range -3:0.5
  lrsweep map --problem quadratic --optimizer momentum --x-axis opt_momentum --y-axis lr \
      --x-range -2:-0.01 --y-range -3:0.5

Killed? Run the same command again: every store (one per GIF frame under --out) resumes."""

#: Frames of a zoom sequence unless --frames says.
FRAMES = 10
#: The network's defaults, as ``settings.setting_problem`` has them.
NET = {
    k: v.default
    for k, v in inspect.signature(setting_problem).parameters.items()
    if k in ("width", "depth", "target_dim")
}
#: Options that take a value which may start with '-' (a negative log10 lr).
_VALUED = ("--x-range", "--y-range", "--center", "--zoom-to")


def _pair(text: str, sep: str, what: str) -> tuple[float, float]:
    parts = text.split(sep)
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what}={text!r} is invalid: expected two numbers separated by {sep!r}") from None
    return a, b


def _fmt(r) -> str:
    return f"{r[0]:g}:{r[1]:g}"


def parser() -> argparse.ArgumentParser:
    windows = ", ".join(f"{k} {_fmt(x)} x {_fmt(y)}" for k, (x, y) in WINDOWS.items())
    p = argparse.ArgumentParser(
        prog="lrsweep map",
        description="A trainability map over two hyperparameters of the fractal paper's network (Sohl-Dickstein "
        "2024), or of any problem.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--setting", default=None, choices=SETTINGS, help=f"the paper's setting (default {DEFAULT_SETTING})")
    p.add_argument(
        "--problem",
        default=None,
        help="instead of a setting: a problem named as lrsweep run --problem names it (a built-in, a registered "
        "name, or 'module:function' / 'path/to/file.py:function' marked with @lrsweep.problem_factory); "
        "needs --x-range and --y-range",
    )
    p.add_argument(
        "--problem-args",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="the problem's arguments, key=value,...",
    )
    p.add_argument(
        "--x-axis",
        default=None,
        help=f"with --problem: the x axis; a map is {ACCEPTED}, named as a sweep names its dims "
        "(default lr_<first parameter>)",
    )
    p.add_argument("--y-axis", default=None, help="with --problem: the y axis (default lr_<last parameter>)")
    p.add_argument("--optimizer", default=None, help="with --problem: the optimizer (default gd)")
    p.add_argument("--x-range", help=f"LO:HI, log10 of the x axis (default per setting: {windows})")
    p.add_argument("--y-range", help="LO:HI, log10 of the y axis (default per setting, as --x-range)")
    p.add_argument("--center", help="X,Y: centre of the window (log10), with --zoom instead of the ranges")
    p.add_argument("--zoom", type=float, default=None, help="how many times narrower than the default window")
    p.add_argument("--zoom-to", help="X,Y: render a zoom sequence towards this point into --gif")
    p.add_argument("--frames", type=int, default=FRAMES, help=f"frames of the zoom sequence (default {FRAMES})")
    p.add_argument("--res", type=int, default=DEFAULT_RES, help=f"pixels per side (default {DEFAULT_RES})")
    p.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"gradient-descent steps per run (default {DEFAULT_STEPS})"
    )
    p.add_argument(
        "--precision",
        default=DEFAULT_PRECISION,
        choices=PRECISIONS,
        help=f"default {DEFAULT_PRECISION}: float32 only where a {CHECK_RES} x {CHECK_RES} sample agrees with float64 "
        f"on >= {100 * AUTO_AGREEMENT:g}%% of verdicts, else float64; float32 prints its measured agreement",
    )
    p.add_argument("--width", type=int, default=None, help=f"hidden units (default {NET['width']})")
    p.add_argument("--depth", type=int, default=None, help=f"hidden layers (default {NET['depth']})")
    p.add_argument("--n-data", type=int, default=None, help="data points (default: the paper's for the setting)")
    p.add_argument("--target-dim", type=int, default=None, help=f"outputs per point (default {NET['target_dim']})")
    p.add_argument("--prng", default=None, choices=PRNGS, help=f"draws (default {DEFAULT_PRNG}; paper: the figures')")
    p.add_argument(
        "--offset-mode",
        default=None,
        choices=OFFSET_MODES,
        help=f"paraminit: add the offset every step (the notebook's) or at init only (default {DEFAULT_OFFSET_MODE})",
    )
    p.add_argument("--out", default=None, help="a resumable Zarr store (with --zoom-to: a folder of stores)")
    p.add_argument("--png", default=None, help="write the map in the paper's colouring (PNG)")
    p.add_argument("--gif", default=None, help="with --zoom-to: the animated GIF (default zoom.gif)")
    p.add_argument("--memory", default=None, help="memory budget, e.g. 2GB (default: lrsweep's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (the results are still printed)")
    return p


def _join_values(argv: list[str]) -> list[str]:
    """``--x-range -3:6`` as ``--x-range=-3:6``: argparse would take ``-3:6`` for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _VALUED and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _map_kwargs(args) -> dict:
    """``trainability``'s keywords from the options: the setting's network, or the problem's axes."""
    kw = {"res": args.res, "steps": args.steps, "precision": args.precision, "progress": not args.quiet}
    net = {k: getattr(args, k) for k in ("setting", "prng", "offset_mode", "width", "depth", "n_data", "target_dim")}
    net = {k: v for k, v in net.items() if v is not None}
    if args.problem is None:
        for flag in ("problem_args", "x_axis", "y_axis", "optimizer"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} is invalid without --problem: a setting names its axes")
        return {**kw, **net}
    if net:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in net)
        raise ValueError(f"{flags} are invalid with --problem={args.problem!r}: they choose the paper's network")
    for flag in ("x_range", "y_range"):
        if getattr(args, flag) is None:
            raise ValueError(f"--{flag.replace('_', '-')} is needed with --problem: LO:HI, log10 of the axis's values")
    if args.problem_args:
        kw["problem_args"] = spec_sources.from_flags(argparse.Namespace(problem_args=args.problem_args))["problem_args"]
    for key in ("x_axis", "y_axis", "optimizer"):
        if getattr(args, key) is not None:
            kw[key] = getattr(args, key)
    return kw


def main(argv: list[str] | None = None) -> int:
    """Run ``lrsweep map``; bad input raises a one-line ValueError (the CLI prints it, exit 2)."""
    args = parser().parse_args(_join_values(list(sys.argv[1:] if argv is None else argv)))
    setting = args.setting or DEFAULT_SETTING
    base_x, base_y = WINDOWS[setting]
    x_range = _pair(args.x_range, ":", "--x-range") if args.x_range else base_x
    y_range = _pair(args.y_range, ":", "--y-range") if args.y_range else base_y
    kw = _map_kwargs(args)
    if args.memory is not None:
        kw["memory"] = args.memory
    problem = args.problem
    if args.zoom_to:
        if args.center:
            raise ValueError(f"--center={args.center!r} is invalid with --zoom-to: give one of them")
        target = _pair(args.zoom_to, ",", "--zoom-to")
        zoom = 1000.0 if args.zoom is None else args.zoom
        folder = Path(args.out or "map-zoom")
        folder.mkdir(parents=True, exist_ok=True)
        figs, t0 = [], time.perf_counter()
        for k, (xr_, yr_) in enumerate(zoom_windows(target, zoom, args.frames, x_range, y_range)):
            ds = trainability(problem, xr_, yr_, out=folder / f"frame-{k:03d}.zarr", **kw)
            print(
                f"frame {k + 1}/{args.frames}: x {xr_[0]:.6g}:{xr_[1]:.6g}, y {yr_[0]:.6g}:{yr_[1]:.6g}; {summary_line(ds)}"
            )
            figs.append(figure(ds, size=(6.0, 6.0)))
        gif = Path(args.gif or "zoom.gif")
        write_gif(figs, gif)
        print(f"wrote {gif} ({args.frames} frames, stores under {folder}); time {time.perf_counter() - t0:.1f} s")
        return 0
    if args.center:
        x_range, y_range = window(
            _pair(args.center, ",", "--center"), 1.0 if args.zoom is None else args.zoom, x_range, y_range
        )
    elif args.zoom is not None:
        raise ValueError(f"--zoom={args.zoom!r} needs --center X,Y or --zoom-to X,Y")
    t0 = time.perf_counter()
    ds = trainability(problem, x_range, y_range, out=args.out, **kw)
    seconds = time.perf_counter() - t0
    if problem is None:
        xl, yl = LABELS["paraminit" if setting == "paraminit" else "lr"]
        what = f"{setting}, {args.prng or DEFAULT_PRNG} draws"
    else:
        xl, yl = (f"{ds.attrs['map_x_dim']}, log10", f"{ds.attrs['map_y_dim']}, log10")
        what = f"problem {ds.attrs.get('problem', problem)}"
    print(
        f"lrsweep map ({what}): x ({xl}) {x_range[0]:.6g} to {x_range[1]:.6g}, "
        f"y ({yl}) {y_range[0]:.6g} to {y_range[1]:.6g}, {args.res} x {args.res} pixels, {args.steps} steps, "
        f"{ds.attrs['map_precision']}"
    )
    print(summary_line(ds, seconds))
    if args.png:
        figure(ds).savefig(args.png, metadata={"Software": None})
        print(f"wrote {args.png}")
    if args.out:
        print(f"results: {args.out} (lrsweep.open reads them; the same command resumes)")
    return 0
