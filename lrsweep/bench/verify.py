"""``lrsweep bench --verify``: the fused kernel paths against the XLA path, on the same sweeps.

Each sweep names the fused kernel it checks: ``"pallas-examples"`` (written on per-example terms)
or ``"pallas"`` (the generic one), run as such on GPU and with ``"-interpret"`` on CPU (at small
sizes). Each sweep runs through ``lrsweep.sweep(..., record="summary")`` with its kernel and with
``kernel="xla"`` (once per distinct sweep), and the results are compared config by config:
outcomes equal, final losses within ``RTOL`` relative (``|a - b| <= RTOL * max(|a|, |b|) + ATOL``;
NaN equals NaN). Each path's speed is the median of 3 timed calls after a warm-up; for the lesson's
analytic gradient through the per-example kernel it is set against ``TARGET`` on an accelerator. A
sweep its kernel does not take is reported as skipped; a kernel that fails to compile or run (on
GPU the Triton lowering takes only some programs: the per-example kernel lowers for problems whose
parameters are scalars, such as the lesson) as an error, with its message. Exit status 1 when any
sweep disagrees or errs, naming the sweep.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from typing import TYPE_CHECKING, cast

import jax
import numpy as np
import xarray as xr

from .. import api, planner, problems
from .. import spec as spec_mod

if TYPE_CHECKING:
    from ..types import KernelName

RTOL = 1e-5
#: Losses this close in absolute terms agree whatever their ratio (float32 noise around a minimum of 0).
ATOL = 1e-7

#: The per-example kernel's speed target for ``TARGET_SWEEP`` on one H100-class GPU, config-steps/s.
TARGET = 8e11
TARGET_SWEEP = "linear autodiff float32"

_LESSON_FORWARD = {"grad": "forward", "precision": "mixed"}
_LESSON_AUTODIFF = {"grad": "autodiff", "precision": "float32"}
_CENTRAL_MIXED = {"grad": "central", "precision": "mixed"}
#: ``(name, problem factory, sweep keywords, fused kernel)``: the lesson in both of its modes through
#: both kernels, the chapter's network, a quadratic bowl with momentum, and logistic regression on
#: 20 examples (more than the generic kernel takes).
SWEEPS = (
    ("linear forward mixed", problems.linear, _LESSON_FORWARD, "pallas-examples"),
    (TARGET_SWEEP, problems.linear, _LESSON_AUTODIFF, "pallas-examples"),
    ("linear forward mixed, generic kernel", problems.linear, _LESSON_FORWARD, "pallas"),
    ("linear autodiff float32, generic kernel", problems.linear, _LESSON_AUTODIFF, "pallas"),
    ("chapter_net autodiff float32", problems.chapter_net, _LESSON_AUTODIFF, "pallas-examples"),
    ("quadratic momentum", lambda: problems.quadratic(dim=2, cond=10.0), {"optimizer": "momentum"}, "pallas-examples"),
    # float64 arithmetic: a float32 central difference magnifies any change of rounding by 1 / h.
    ("logistic 20 examples central", lambda: problems.logistic(n=20), _CENTRAL_MIXED, "pallas-examples"),
)
#: ``(configs, epochs, chunk)`` per backend kind: the interpreted kernel on CPU is slow.
SIZES = {"cpu": (256, 50, 128), "accelerator": (1 << 20, 1000, None)}


def run_path(problem, lr: str, kernel: str, kw: dict):
    """One sweep through one path (the seam a test perturbs)."""
    return api.sweep(problem, lr, record="summary", progress=False, kernel=cast("KernelName", kernel), **kw)


def _timed(call) -> tuple[xr.Dataset, float]:
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
    n, epochs, chunk = sizes or SIZES["cpu" if backend == "cpu" else "accelerator"]
    lr = f"log:1e-3:1:{n}"
    out = []
    references = {}  # the XLA path's result and time per distinct sweep, shared by both kernels
    with jax.default_device(jax.devices(backend)[0]):
        for name, make, kw, family in SWEEPS:
            kernel = f"{family}-interpret" if backend == "cpu" else family
            problem, kw = make(), {**kw, "epochs": epochs, "chunk_size": chunk}
            entry = {"sweep": name, "backend": backend, "kernel": kernel, "configs": n, "epochs": epochs}
            try:  # planning checks that the kernel takes this sweep, without compiling anything
                planner.plan(*spec_mod.build(problem, lr, record="summary", kernel=kernel, **kw))
            except ValueError as err:
                entry.update(status="skipped", reason=str(err))
                out.append(entry)
                log(f"verify: {name}: skipped ({err})")
                continue
            try:
                fused, t_fused = _timed(functools.partial(run_path, problem, lr, kernel, kw))
            except Exception as err:  # noqa: BLE001 - a kernel that does not compile or run is a finding
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
                entry.update(status="error", reason=reason)
                out.append(entry)
                log(f"verify: {name}: error ({kernel} failed: {reason})")
                continue
            key = (make, repr(sorted(kw.items())))
            if key not in references:
                references[key] = _timed(functools.partial(run_path, problem, lr, "xla", kw))
            xla, t_xla = references[key]
            bad = disagreements(xla, fused)
            ran = fused.attrs.get("kernel_path", "not recorded")
            entry.update(
                bad,
                kernel_ran=ran,
                status="ok" if bad["outcome"] == 0 and bad["loss"] == 0 else "DISAGREE",
                fused_config_steps_per_s=n * epochs / t_fused,
                xla_config_steps_per_s=n * epochs / t_xla,
            )
            target = ""
            if name == TARGET_SWEEP and backend != "cpu":
                entry["target_config_steps_per_s"] = TARGET
                met = entry["fused_config_steps_per_s"] >= TARGET
                target = f" (target {TARGET:.2g}: {'met' if met else 'missed'})"
            out.append(entry)
            log(
                f"verify: {name}: {entry['status']} ({bad['outcome']} outcomes and {bad['loss']} losses of {n:,} "
                f"configs differ); {kernel} (ran: {ran}) {entry['fused_config_steps_per_s']:,.0f} config-steps/s"
                f"{target}, xla {entry['xla_config_steps_per_s']:,.0f}"
            )
    return out


def markdown(entries: list[dict]) -> str:
    lines = [
        "| sweep | backend | kernel (ran) | configs x epochs | status | outcomes differ | losses differ | "
        "kernel config-steps/s | xla config-steps/s |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for e in entries:
        if e["status"] in ("skipped", "error"):
            reason = e["reason"].replace("|", "/")
            lines.append(f"| {e['sweep']} | {e['backend']} | {e['kernel']} | | {e['status']}: {reason} | | | | |")
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
    p = argparse.ArgumentParser(prog="lrsweep bench --verify", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--backends", default=None, help="JAX backend to verify on (default: JAX's default)")
    p.add_argument("--size", type=_size, default=None, help="CONFIGS,EPOCHS[,CHUNK] (default: 256,50,128 on CPU)")
    args = p.parse_args(argv)
    entries = verify(args.backends, args.size)
    print(markdown(entries))
    bad = [e for e in entries if e["status"] in ("DISAGREE", "error")]
    for e in bad:
        if e["status"] == "error":
            print(
                f"lrsweep bench --verify: {e['sweep']} on {e['backend']}: kernel={e['kernel']!r} failed: {e['reason']}"
            )
            continue
        print(
            f"lrsweep bench --verify: {e['sweep']} on {e['backend']}: {max(e['outcome'], e['loss'])} of "
            f"{e['configs']:,} configs disagree between kernel={e['kernel']!r} and kernel='xla'"
        )
    return 1 if bad else 0
