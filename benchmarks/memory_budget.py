"""Peak resident memory of ``lrsweep run --out`` against its ``--memory`` budget.

Each case is a fresh process that (1) imports lrsweep (JAX, zarr, xarray), (2) runs a warm-up:
the same ``lrsweep run`` command on a few configs into a scratch store (the runtime's fixed
footprint: JAX's compiler, the first program, zarr's codecs and thread pools), (3) records its
resident set (``VmRSS``) as the *baseline* and resets the peak (``VmHWM``, by writing 5 to
``/proc/self/clear_refs``), (4) runs the measured command in-process (``lrsweep.cli.main``) and
(5) reads the peak. The *growth* is peak minus baseline: what the sweep itself added, which the
budget bounds. The baseline after the import alone is reported too, so the fixed footprint is
explicit (Linux only: it reads ``/proc/self/status``).

    python benchmarks/memory_budget.py                 # 3000 lrs x 1000 inits and 3e6 lrs; 64MB 200MB 1GB
    python benchmarks/memory_budget.py --sweeps 3000x100 --budgets 16MB
    python benchmarks/memory_budget.py --write benchmarks/results/memory-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, os, sys, time

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

    import jax, lrsweep
    from lrsweep import cli

    warm, argv = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    imported = status("VmRSS")
    if warm:
        with open(os.devnull, "w") as null:
            sys.stdout, real = null, sys.stdout
            assert cli.main(warm) == 0
            sys.stdout = real
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    base = status("VmRSS")
    t0 = time.perf_counter()
    with open(os.devnull, "w") as null:
        sys.stdout, real = null, sys.stdout
        code = cli.main(argv)
        sys.stdout = real
    print(json.dumps({"code": code, "imported": imported, "baseline": base, "peak": status("VmHWM"),
                      "seconds": time.perf_counter() - t0}))
""")


def parse_size(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9}
    for unit, scale in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * scale)
    return int(text)


def command(lrs: int, inits: int, epochs: int, budget: str, record: str, out: str) -> list[str]:
    """The ``lrsweep run`` arguments of a case."""
    argv = ["run", "--problem", "linear", "--lr", f"log:1e-4:10:{lrs}", "--epochs", str(epochs)]
    argv += ["--record", record, "--memory", budget, "--out", out, "--quiet"]
    return argv + ([f"--init-grid=w=lin:-5:5:{inits}"] if inits > 1 else [])


def measure(lrs: int, inits: int, epochs: int, budget: str, record: str = "summary") -> dict:
    """One fresh process: baseline, peak and growth in bytes for one budget."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        argv = command(lrs, inits, epochs, budget, record, f"{tmp}/sweep.zarr")
        warm = command(8, 1, epochs, budget, record, f"{tmp}/warm.zarr")
        out = child(warm, argv)
    out.update(budget=parse_size(budget), budget_text=budget, configs=lrs * max(inits, 1), record=record)
    out["growth"] = out["peak"] - out["baseline"]
    out["ratio"] = out["growth"] / out["budget"]
    out["over_import"] = out["peak"] - out["imported"]
    return out


def child(warm: list[str], argv: list[str]) -> dict:
    """Run ``CHILD``: the warm-up command (if any), then the measured one; its report."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(warm), json.dumps(argv)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["code"] != 0:
        raise RuntimeError(f"lrsweep run exited {out['code']}: {proc.stderr[-2000:]}")
    return out


def machine() -> dict:
    import jax
    import numpy
    import zarr

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "zarr": zarr.__version__,
        "backend": jax.default_backend(),
    }


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def report(rows: list[dict], info: dict, command: str) -> str:
    lines = [
        "# Peak memory of `lrsweep run --out` against `--memory`",
        "",
        f"Regenerate: `{command}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, backend {info['backend']}; Python {info['python']}, "
        f"jax {info['jax']}, numpy {info['numpy']}, zarr {info['zarr']}.",
        "",
        "Each case is a fresh process. *Imported*: its resident set after `import lrsweep`. *Baseline*: after "
        "a warm-up run of the same command on 8 configs into a scratch store (the runtime's fixed footprint: "
        "JAX, its compiler, zarr). *Growth*: the peak resident set during the measured run minus the baseline.",
        "",
        "| sweep | record | epochs | `--memory` | imported | baseline | peak | growth | growth / budget "
        "| peak over import | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sweep']} | {r['record']} | {r['epochs']} | {r['budget_text']} | {mb(r['imported'])} | "
            f"{mb(r['baseline'])} | {mb(r['peak'])} | {mb(r['growth'])} | {r['ratio']:.2f} | "
            f"{mb(r['over_import'])} | {r['seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sweeps", default="3000x1000,3000000x1", help="LRSxINITS,... (inits: a grid of w)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--budgets", default="64MB,200MB,1GB")
    parser.add_argument("--record", default="summary")
    parser.add_argument("--write", help="write a Markdown table here, and the raw rows beside it (.json)")
    args = parser.parse_args(argv)
    rows = []
    cases = [(sweep, budget) for sweep in args.sweeps.split(",") for budget in args.budgets.split(",")]
    for sweep, budget in cases:
        lrs, inits = (int(n) for n in sweep.lower().split("x"))
        row = measure(lrs, inits, args.epochs, budget, args.record)
        row.update(epochs=args.epochs, sweep=f"{lrs:,} lr x {inits:,} init")
        rows.append(row)
        print(
            f"{row['configs']:,} configs {args.record}, --memory {budget}: baseline {row['baseline'] / 1e6:.0f} MB "
            f"(import {row['imported'] / 1e6:.0f} MB), growth {row['growth'] / 1e6:.0f} MB = "
            f"{row['ratio']:.2f}x budget (peak over the import: {row['over_import'] / 1e6:.0f} MB), "
            f"{row['seconds']:.1f} s",
            flush=True,
        )
    if args.write:
        info = machine()
        command = "python benchmarks/memory_budget.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.write).write_text(report(rows, info, command.strip()))
        Path(args.write).with_suffix(".json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
