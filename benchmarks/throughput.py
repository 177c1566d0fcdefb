"""Throughput of lrsweep against numpy on the lesson's problem, measured in one run.

Unit: config-steps per second (one config trained for one epoch). Every number below comes from
the same process, so the ratios hold even on a shared, noisy machine.

- ``notebook loop``: the lesson's own Python loop (deepcopy, one config at a time);
- ``numpy plain``: numpy over all configs at once, written straight from the math: an
  ``(N, 4)`` broadcast of configs against the data and ``mean`` over it, as a reader of the
  lesson would vectorise it (float32 parameters, float32 data);
- ``numpy tuned``: the same in float32 with the 4-point sum unrolled into ``(N,)`` operations,
  the fastest numpy we know for this problem;
- ``lrsweep``: ``sweep(..., record="summary")``, compile time measured apart (a first call with
  the same static settings).

numpy's cost per config-step does not depend on the number of epochs, so it runs fewer epochs
than lrsweep (--numpy-epochs) to keep the benchmark short.

    python benchmarks/throughput.py                       # 1e6 configs x 1000 epochs
    python benchmarks/throughput.py --configs 100000 --epochs 200 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import jax

import lrsweep

# The lesson notebook's own loop lives with the tests' independent references.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference  # noqa: E402

X = (1.0, 2.0, 3.0, 4.0)


def tuned_loss(w, b):
    total = np.zeros_like(w)
    for x in X:
        r = w * np.float32(x) + b - np.float32(3 * x)
        total += r * r
    return total * np.float32(1 / len(X))


def tuned_grad(w, b):
    gw, gb = np.zeros_like(w), np.zeros_like(w)
    for x in X:
        r = w * np.float32(x) + b - np.float32(3 * x)
        gw += r * np.float32(x)
        gb += r
    return gw * np.float32(2 / len(X)), gb * np.float32(2 / len(X))


X_COL = np.array(X, dtype=np.float32)
Y_COL = 3 * X_COL


def plain_loss(w, b):
    return np.mean((w[:, None] * X_COL + b[:, None] - Y_COL) ** 2, axis=1)


def plain_grad(w, b):
    err = w[:, None] * X_COL + b[:, None] - Y_COL
    return np.mean(2 * err * X_COL, axis=1), np.mean(2 * err, axis=1)


STYLES = {"numpy plain": (plain_loss, plain_grad), "numpy tuned": (tuned_loss, tuned_grad)}


def numpy_gd(style: str, lr, w, b, epochs: int, grad: str):
    """GD vectorized over configs in one of the numpy ``STYLES``; returns final (w, b, loss)."""
    loss, exact_grad = STYLES[style]
    h = np.float32(1e-4)
    for _ in range(epochs):
        if grad == "autodiff":  # the closed-form gradient
            gw, gb = exact_grad(w, b)
        else:  # the lesson's forward difference
            base = loss(w, b)
            gw = (loss(w + h, b) - base) / h
            gb = (loss(w, b + h) - base) / h
        w = w - lr * gw
        b = b - lr * gb
    return w, b, loss(w, b)


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "lrsweep": lrsweep.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--numpy-epochs", type=int, default=20)
    parser.add_argument("--notebook-epochs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default="foundation-cpu")
    args = parser.parse_args(argv)

    n, epochs = args.configs, args.epochs
    lr = np.geomspace(1e-4, 0.1, n).astype(np.float32)
    rows = []

    def add(impl, grad, configs, steps, seconds, compile_s=None):
        rows.append(
            {"impl": impl, "grad": grad, "configs": configs, "epochs": steps, "seconds": seconds,
             "compile_s": compile_s, "config_steps_per_s": configs * steps / seconds}
        )
        print(f"{impl:<18} {grad:<9} {configs:>9} x {steps:>5}  {configs * steps / seconds:>14,.0f} config-steps/s",
              file=sys.stderr, flush=True)

    t = timed(lambda: reference.notebook_train(0.01, args.notebook_epochs))
    add("notebook loop", "forward", 1, args.notebook_epochs, t)

    for grad in ("autodiff", "forward"):
        zeros = np.zeros(n, np.float32)
        for style in STYLES:
            t = timed(lambda: numpy_gd(style, lr, zeros, zeros, args.numpy_epochs, grad), args.repeat)
            add(style, grad, n, args.numpy_epochs, t)

        kw = dict(epochs=epochs, grad=grad, precision="float32", record="summary", progress=False)
        compile_s = timed(lambda: lrsweep.sweep("linear", lr[:1], **kw))  # compile + one chunk
        t = timed(lambda: lrsweep.sweep("linear", lr, **kw), args.repeat)
        add("lrsweep", grad, n, epochs, t, compile_s)

    speed = {(r["impl"], r["grad"]): r["config_steps_per_s"] for r in rows}
    ratios = {
        f"lrsweep / {impl} ({g})": speed[("lrsweep", g)] / speed[(impl, g)]
        for impl in ("numpy plain", "numpy tuned")
        for g in ("autodiff", "forward")
    }
    ratios.update({
        f"lrsweep / notebook loop ({g})": speed[("lrsweep", g)] / speed[("notebook loop", "forward")]
        for g in ("autodiff", "forward")
    })
    result = {"machine": machine(), "args": vars(args), "rows": rows, "ratios": ratios}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return result


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# Throughput, lesson problem, float32, summary record ({m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; {m['platform']}; backend {m['backend']}.",
        f"Versions: python {m['python']}, jax {m['jax']}, numpy {m['numpy']}, lrsweep {m['lrsweep']}.",
        "",
        "| implementation | gradient | configs | epochs | config-steps/s | compile (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        compile_s = "" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        lines.append(
            f"| {r['impl']} | {r['grad']} | {r['configs']:,} | {r['epochs']:,} | "
            f"{r['config_steps_per_s']:,.0f} | {compile_s} |"
        )
    lines += ["", "| ratio (same run) | value |", "|---|---:|"]
    lines += [f"| {k} | {v:,.1f}x |" for k, v in result["ratios"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
