"""``lrsweep bench --sharpness``: what ``track_sharpness`` costs.

Each case times the same sweep with and without ``track_sharpness=True`` (defaults:
``sharpness_every=10``, ``sharpness_iters`` Hessian-vector products per estimate), each after an
identical warm-up call, back to back, and reports the ratio (the target: at most 2x). Cases:

- ``linear``: the lesson's problem, 4096 lrs x 1000 steps, summaries;
- ``mlp``: the fractal paper's network (``problems.mlp()``: 272 points, 272 weights), 256 lrs x
  200 steps, summaries;
- ``chapter_net``: the chapter's 2-3-1 network, 4096 lrs x 200 steps, summaries.

``--quick`` shrinks every case 8x in configs. The result is printed as Markdown and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

import lrsweep

from ..spec import defaults
from .machine import machine as machine_info

CASES = {
    "linear": ("linear", 4096, 1000),
    "mlp": ("mlp", 256, 200),
    "chapter_net": ("chapter_net", 4096, 200),
}


def _time(problem: str, n: int, epochs: int, repeat: int, **extra) -> float:
    """The median of ``repeat`` timed sweeps after an identical warm-up call, in seconds."""
    call = lambda: lrsweep.sweep(problem, f"log:1e-3:1:{n}", epochs=epochs, record="summary", progress=False, **extra)
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
        problem, n, epochs = CASES[name]
        n = max(8, n // 8) if args.quick else n
        plain = _time(problem, n, epochs, args.repeat)
        tracked = _time(problem, n, epochs, args.repeat, track_sharpness=True, sharpness_every=args.every)
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
