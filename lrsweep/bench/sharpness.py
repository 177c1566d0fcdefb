"""``lrsweep bench --sharpness``: what ``track_sharpness`` costs.

Each case times the same sweep with and without ``track_sharpness=True`` (defaults:
``sharpness_every=10``, ``sharpness_iters`` Hessian-vector products per estimate), each after an
identical warm-up call, back to back, and reports the ratio (the target: at most 2x). Cases:

- ``linear``: the lesson's problem, 4096 lrs x 1000 steps, summaries;
- ``mlp``: the fractal paper's network (``problems.mlp()``: 272 points, 272 weights), 256 lrs x
  200 steps, summaries;
- ``chapter_net``: the chapter's 2-3-1 network, 4096 lrs x 200 steps, summaries;
- ``digits_net``: the gallery's 64-32-10 tanh network on 256 digits (``lrsweep.gallery.edge``,
  2,410 parameters), 128 lrs from 0.25 to 0.5 (``2 / lr`` from 8 down to 4: every run trains and
  reaches the edge of stability), 400 steps, summaries: the case the estimate is made for.

``--quick`` shrinks every case 8x in configs. The result is printed as Markdown and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

import lrsweep

from ..gallery import edge
from ..spec import defaults
from .machine import machine as machine_info

#: name: (problem, lrs from .. to, configs, steps).
CASES = {
    "linear": ("linear", (1e-3, 1.0), 4096, 1000),
    "mlp": ("mlp", (1e-3, 1.0), 256, 200),
    "chapter_net": ("chapter_net", (1e-3, 1.0), 4096, 200),
    "digits_net": ("digits_net", (0.25, 0.5), 128, 400),
}


def _time(problem: str, lrs: tuple, n: int, epochs: int, repeat: int, **extra) -> float:
    """The median of ``repeat`` timed sweeps after an identical warm-up call, in seconds."""
    target = edge.digits_problem() if problem == "digits_net" else problem
    grid = f"log:{lrs[0]:g}:{lrs[1]:g}:{n}"
    call = lambda: lrsweep.sweep(target, grid, epochs=epochs, record="summary", progress=False, **extra)
    call()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def run(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="lrsweep bench --sharpness", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8x fewer configs per case")
    p.add_argument("--cases", default=",".join(CASES), help=f"a comma-separated subset of {list(CASES)}")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--every", type=int, default=10, help="sharpness_every (default 10)")
    p.add_argument("--out", default="benchmarks/results", help="folder for sharpness-<name>.json")
    p.add_argument("--name", default="cpu", help="file stem suffix (default cpu)")
    args = p.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    bad = [c for c in names if c not in CASES]
    if bad:
        raise ValueError(f"--cases={args.cases!r} is invalid: expected names from {list(CASES)}")
    rows = []
    for name in names:
        problem, lrs, n, epochs = CASES[name]
        n = max(8, n // 8) if args.quick else n
        plain = _time(problem, lrs, n, epochs, args.repeat)
        tracked = _time(problem, lrs, n, epochs, args.repeat, track_sharpness=True, sharpness_every=args.every)
        rows.append(dict(case=name, configs=n, epochs=epochs, every=args.every, plain_s=plain, tracked_s=tracked))
        rows[-1]["ratio"] = tracked / plain
        print(
            f"{name}: {n:,} x {epochs:,}: without {plain:.3f} s, with {tracked:.3f} s, {tracked / plain:.2f}x",
            flush=True,
        )
    iters = defaults()["sharpness_iters"]
    result = {"machine": machine_info([jax.default_backend()]), "sharpness_iters": iters, "cases": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sharpness-{args.name}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    result["path"] = str(path)
    return result


def markdown(result: dict) -> str:
    lines = [
        f"track_sharpness cost (sharpness_iters={result['sharpness_iters']}), summaries, median of timed sweeps",
        "",
        "| case | configs x steps | every | without (s) | with (s) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["cases"]:
        lines.append(
            f"| {r['case']} | {r['configs']:,} x {r['epochs']:,} | {r['every']} | {r['plain_s']:.3f} | "
            f"{r['tracked_s']:.3f} | {r['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    result = run(argv)
    print(markdown(result))
    print(f"\nwrote {result['path']}")
    return 0
