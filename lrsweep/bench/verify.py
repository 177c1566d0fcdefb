"""``lrsweep bench --verify``: the fused kernel path against the XLA path, on the same sweeps.

On the backend present (GPU: ``kernel="pallas"``; CPU: ``kernel="pallas-interpret"``, at small sizes)
each sweep runs twice through ``lrsweep.sweep(..., record="summary")``, once with the kernel and
once with ``kernel="xla"``, and the results are compared config by config: outcomes equal, final
losses within ``RTOL`` relative (``|a - b| <= RTOL * max(|a|, |b|) + ATOL``; NaN equals NaN). Each
path's speed is the median of 3 timed calls after a warm-up. A sweep the fused kernel does not
take (it takes summary records of data sets of at most 16 examples) is reported as skipped.
Exit status 1 when any sweep disagrees, naming the sweep and how many configs disagree.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import numpy as np

from .. import api, problems

RTOL = 1e-5
#: Losses this close in absolute terms agree whatever their ratio (float32 noise around a minimum of 0).
ATOL = 1e-7

#: ``(name, problem factory, sweep keywords)``; the lesson in both of its modes, the chapter's
#: network and a quadratic bowl with momentum.
SWEEPS = (
    ("linear forward mixed", problems.linear, {"grad": "forward", "precision": "mixed"}),
    ("linear autodiff float32", problems.linear, {"grad": "autodiff", "precision": "float32"}),
    ("chapter_net autodiff float32", problems.chapter_net, {"grad": "autodiff", "precision": "float32"}),
    ("quadratic momentum", lambda: problems.quadratic(dim=2, cond=10.0), {"optimizer": "momentum"}),
)
#: ``(configs, epochs, chunk)`` per backend kind: the interpreted kernel on CPU is slow.
SIZES = {"cpu": (256, 50, 128), "accelerator": (1 << 20, 1000, None)}


def run_path(problem, lr: str, kernel: str, kw: dict):
    """One sweep through one path (the seam a test perturbs)."""
    return api.sweep(problem, lr, record="summary", progress=False, kernel=kernel, **kw)


def _timed(call) -> tuple[object, float]:
    ds = call()  # warm-up: compiles
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ds = call()
        times.append(time.perf_counter() - t)
    return ds, statistics.median(times)


def disagreements(ref, other) -> dict:
    """Configs whose outcome differs or whose final loss differs beyond the tolerance."""
    a = np.asarray(ref.loss, np.float64).ravel()
    b = np.asarray(other.loss, np.float64).ravel()
    oa, ob = np.asarray(ref.outcome).ravel(), np.asarray(other.outcome).ravel()
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= RTOL * np.maximum(np.abs(a), np.abs(b)) + ATOL
        close |= (a == b) | both_nan  # equal infinities too
    return {"configs": a.size, "outcome": int(np.sum(oa != ob)), "loss": int(np.sum(~close))}


def verify(backend: str | None = None, sizes: tuple[int, int, int | None] | None = None, log=print) -> list[dict]:
    """Every sweep of ``SWEEPS`` through both paths on ``backend`` (default: JAX's default)."""
    backend = backend or jax.default_backend()
    kernel = "pallas-interpret" if backend == "cpu" else "pallas"
    n, epochs, chunk = sizes or SIZES["cpu" if backend == "cpu" else "accelerator"]
    lr = f"log:1e-3:1:{n}"
    out = []
    with jax.default_device(jax.devices(backend)[0]):
        for name, make, kw in SWEEPS:
            problem, kw = make(), {**kw, "epochs": epochs, "chunk_size": chunk}
            entry = {"sweep": name, "backend": backend, "kernel": kernel, "configs": n, "epochs": epochs}
            try:
                fused, t_fused = _timed(functools.partial(run_path, problem, lr, kernel, kw))
            except ValueError as err:  # the fused kernel does not take this sweep
                entry.update(status="skipped", reason=str(err))
                out.append(entry)
                log(f"verify: {name}: skipped ({err})")
                continue
            xla, t_xla = _timed(functools.partial(run_path, problem, lr, "xla", kw))
            bad = disagreements(xla, fused)
            ran = fused.attrs.get("kernel_path", "not recorded")
            entry.update(
                bad,
                kernel_ran=ran,
                status="ok" if bad["outcome"] == 0 and bad["loss"] == 0 else "DISAGREE",
                fused_config_steps_per_s=n * epochs / t_fused,
                xla_config_steps_per_s=n * epochs / t_xla,
            )
            out.append(entry)
            log(
                f"verify: {name}: {entry['status']} ({bad['outcome']} outcomes and {bad['loss']} losses of {n:,} "
                f"configs differ); {kernel} (ran: {ran}) {entry['fused_config_steps_per_s']:,.0f} config-steps/s, "
                f"xla {entry['xla_config_steps_per_s']:,.0f}"
            )
    return out


def markdown(entries: list[dict]) -> str:
    lines = [
        "| sweep | backend | kernel (ran) | configs x epochs | status | outcomes differ | losses differ | "
        "kernel config-steps/s | xla config-steps/s |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for e in entries:
        if e["status"] == "skipped":
            lines.append(f"| {e['sweep']} | {e['backend']} | {e['kernel']} | | skipped: {e['reason']} | | | | |")
            continue
        lines.append(
            f"| {e['sweep']} | {e['backend']} | {e['kernel']} ({e['kernel_ran']}) | {e['configs']:,} x {e['epochs']:,} "
            f"| {e['status']} | {e['outcome']} | {e['loss']} | {e['fused_config_steps_per_s']:,.0f} | "
            f"{e['xla_config_steps_per_s']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def _size(text: str) -> tuple[int, int, int | None]:
    try:
        n, e, *c = (int(float(v)) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CONFIGS,EPOCHS[,CHUNK] like 256,50,128, got {text!r}") from None
    return n, e, (c[0] if c else None)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lrsweep bench --verify", description=__doc__.splitlines()[0])
    p.add_argument("--backends", default=None, help="JAX backend to verify on (default: JAX's default)")
    p.add_argument("--size", type=_size, default=None, help="CONFIGS,EPOCHS[,CHUNK] (default: 256,50,128 on CPU)")
    args = p.parse_args(argv)
    entries = verify(args.backends, args.size)
    print(markdown(entries))
    bad = [e for e in entries if e["status"] == "DISAGREE"]
    for e in bad:
        print(
            f"lrsweep bench --verify: {e['sweep']} on {e['backend']}: {max(e['outcome'], e['loss'])} of "
            f"{e['configs']:,} configs disagree between kernel={e['kernel']!r} and kernel='xla'"
        )
    return 1 if bad else 0
