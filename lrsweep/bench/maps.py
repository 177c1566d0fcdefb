"""``lrsweep bench --maps``: trainability maps of the paper's network against its own approach.

Cases, all on the default window of :mod:`lrsweep.maps` (where the boundary crosses the map):

- ``lrsweep float32`` and ``lrsweep float64``: :func:`lrsweep.maps.trainability` (the engine with
  the whole-batch loss), timed after an identical warm-up call (the same chunk program);
- ``paper float64``: the paper's notebook approach re-run here: float64, a Python loop over the
  steps calling one jitted, vmapped step on a chunk of at most 50,000 configs, the losses stacked
  and reduced at the end (``train`` and ``train_step_lrvmap`` of github.com/Sohl-Dickstein/fractal);
- ``GEMMs alone``: a ceiling for the network on this machine: only the two large products of
  each step, ``X W0`` and ``X^T dZ`` for a block of 8 configs (the engine's block), float32, in a
  scan of the same length, no tanh and no output layer (their 278,528 FLOPs per config-step);
- the machine's float32 matrix-product peak (``roofline.peaks``, a 2048 x 2048 ``jnp.dot``).

FLOPs are the network's matrix products per config-step, counted by hand: forward ``X W0`` (272 x
16 by 16 x 16) and ``H W1``, backward ``H^T d`` , ``d W1^T`` and ``X^T dZ``: ``2 * 272 * (16 * 16 *
2 + 16 * 3) = 304,640``. tanh and the elementwise work are not counted, so the FLOP/s are a floor.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import maps
from . import roofline
from .machine import machine as machine_info

N_DATA, WIDTH = 272, 16
FLOPS_PER_STEP = 2 * N_DATA * (WIDTH * WIDTH * 2 + WIDTH * 3)
PAPER_CHUNK = 50_000


def paper_rate(res: int, steps: int, x_range, y_range) -> dict:
    """The paper's approach (float64) on a ``res x res`` map: config-steps per second, and its ratios."""
    p = maps.paper_problem()
    with jax.enable_x64(True):
        theta = [jnp.asarray(p.init["W0"]), jnp.asarray(p.init["W1"])]
        X, Y = jnp.asarray(p.x), jnp.asarray(p.y)

        def net(theta, X):
            for W in theta:
                Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
                X = jax.nn.tanh(Z * jnp.sqrt(2))
            return Z / jnp.sqrt(W.shape[0])

        def loss(theta, X, Y):
            return jnp.mean((net(theta, X) - Y) ** 2)

        def train_step(theta, hparams, X, Y):
            g_loss, grad = jax.value_and_grad(loss)(theta, X, Y)
            lrs = [hparams[i % 2] for i in range(len(theta))]
            return jax.tree_util.tree_map(lambda t, g, lr: t - lr * g, theta, grad, lrs), g_loss

        step = jax.jit(jax.vmap(train_step, in_axes=(0, 0, None, None)), donate_argnums=(0,))

        def measure(v, max_val=1e6):
            fin = jnp.isfinite(v)
            v = v * fin + max_val * (1 - fin)
            v = v / v[0]
            v = jnp.where(v > max_val, max_val, v)
            return jnp.mean(v[-20:])

        measure_v = jax.jit(jax.vmap(measure))

        def train(hparams, num_steps):
            bs = hparams.shape[0]
            if bs > PAPER_CHUNK:
                return jnp.concatenate([train(hparams[: bs // 2], num_steps), train(hparams[bs // 2 :], num_steps)])
            t = [jnp.tile(u, (bs, 1, 1)) for u in theta]
            losses = []
            for _ in range(num_steps):
                t, g_loss = step(t, hparams, X, Y)
                losses.append(g_loss)
            return measure_v(jnp.stack(losses, axis=-1))

        gx, gy = jnp.logspace(x_range[0], x_range[1], res), jnp.logspace(y_range[0], y_range[1], res)
        lr0, lr1 = jnp.meshgrid(gx, gy)
        lr = jnp.stack([lr0.ravel(), lr1.ravel()], axis=-1)
        jax.block_until_ready(train(lr[:8], 2))  # compile the step at a small shape
        jax.block_until_ready(train(lr, 1))  # and at the timed one
        t0 = time.perf_counter()
        ratio = np.asarray(jax.block_until_ready(train(lr, steps)))
        seconds = time.perf_counter() - t0
    return {
        "configs": res * res,
        "steps": steps,
        "seconds": seconds,
        "rate": res * res * steps / seconds,
        "ratio": ratio,
    }


GEMM_FLOPS_PER_STEP = 2 * 2 * N_DATA * WIDTH * WIDTH


def gemm_rate(steps: int, chunk: int = 8, reps: int = 256) -> dict:
    """The two large products of each step alone (``X W0``, ``X^T dZ``), float32, ``chunk`` configs
    at a time as the engine lays them out (per config), two chunks in flight as the runner does."""
    import threading

    p = maps.paper_problem()
    x = jnp.asarray(p.x, jnp.float32)
    w0 = jnp.tile(jnp.asarray(p.init["W0"], jnp.float32), (chunk, 1, 1))

    def step(w, _):
        z = jnp.einsum("nd,cdj->cnj", x, w)
        g = jnp.einsum("nd,cnj->cdj", x, z)
        return w - 1e-6 * g, None

    run = jax.jit(lambda w: jax.lax.scan(step, w, None, length=steps, unroll=4)[0])
    jax.block_until_ready(run(w0))

    def work():
        for _ in range(reps // 2):
            jax.block_until_ready(run(w0))

    threads = [threading.Thread(target=work) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    configs = (reps // 2) * 2 * chunk
    return {"configs": configs, "steps": steps, "seconds": seconds, "rate": configs * steps / seconds}


def lrsweep_rate(res: int, steps: int, precision: str, x_range, y_range, **kw) -> dict:
    """:func:`lrsweep.maps.trainability` on a ``res x res`` map, timed after an identical warm-up
    call: the chunk a map compiles follows its size (``plan.chunks``), so only the same call is
    sure to compile the very program timed."""
    maps.trainability(None, x_range, y_range, res=res, steps=steps, precision=precision, **kw)
    t0 = time.perf_counter()
    ds = maps.trainability(None, x_range, y_range, res=res, steps=steps, precision=precision, **kw)
    seconds = time.perf_counter() - t0
    return {
        "configs": res * res,
        "steps": steps,
        "seconds": seconds,
        "rate": res * res * steps / seconds,
        "chunk_size": int(ds.attrs["chunk_size"]),
        "block_size": int(ds.attrs["block_size"]),
        "trainable": ds["trainable"].transpose("lr_W1", "lr_W0").values,
        "score": ds["score"].transpose("lr_W1", "lr_W0").values,
    }


def run(res: int = 64, steps: int = 500, paper_res: int = 128, paper_steps: int = 10, log=print) -> dict:
    """Every case; a JSON-able dict of rates, FLOP/s, ratios and agreement."""
    x_range, y_range = maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE
    peak = roofline.peaks("cpu")["matmul_flops_per_s"]
    log(f"matmul peak (float32, 2048^3): {peak / 1e9:.1f} GFLOP/s")
    cases = {}
    for precision in ("float32", "float64"):
        r = lrsweep_rate(res, steps, precision, x_range, y_range)
        cases[f"lrsweep {precision}"] = r
        log(
            f"lrsweep {precision}: {r['rate']:,.0f} config-steps/s ({r['seconds']:.1f} s, chunk {r['chunk_size']}, block {r['block_size']})"
        )
    r = paper_rate(paper_res, paper_steps, x_range, y_range)
    cases["paper float64"] = r
    log(f"paper float64: {r['rate']:,.0f} config-steps/s ({r['seconds']:.1f} s for {paper_res}^2 x {paper_steps})")
    gemm = gemm_rate(steps)
    gemm_flops = gemm["rate"] * GEMM_FLOPS_PER_STEP
    log(f"GEMMs alone: {gemm_flops / 1e9:.1f} GFLOP/s ({100 * gemm_flops / peak:.1f}% of the peak)")
    a, b = cases["lrsweep float32"], cases["lrsweep float64"]
    out = {
        "machine": machine_info([jax.default_backend()]),  # the suite's machine block: CPU model, cores, versions
        "matmul_peak_flops": peak,
        "flops_per_config_step": FLOPS_PER_STEP,
        "window": {"x_range": list(x_range), "y_range": list(y_range)},
        "cases": {
            name: {
                k: v for k, v in c.items() if k in ("configs", "steps", "seconds", "rate", "chunk_size", "block_size")
            }
            | {"gflops": c["rate"] * FLOPS_PER_STEP / 1e9, "of_peak": c["rate"] * FLOPS_PER_STEP / peak}
            for name, c in cases.items()
        },
        "gemms_alone": {
            "chunk": 8,
            "flops_per_config_step": GEMM_FLOPS_PER_STEP,
            "gflops": gemm_flops / 1e9,
            "of_peak": gemm_flops / peak,
        },
        "float32_vs_float64_trainable_agreement": float((a["trainable"] == b["trainable"]).mean()),
        "lrsweep_float32_over_paper": a["rate"] / cases["paper float64"]["rate"],
        "lrsweep_float64_over_paper": b["rate"] / cases["paper float64"]["rate"],
    }
    return out


def markdown(result: dict) -> str:
    rows = [
        "| case | configs x steps | config-steps/s | GFLOP/s (matmul) | of matmul peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, c in result["cases"].items():
        rows.append(
            f"| {name} | {c['configs']:,} x {c['steps']} | {c['rate']:,.0f} | {c['gflops']:.1f} | "
            f"{100 * c['of_peak']:.1f}% |"
        )
    lines = [
        f"matmul peak (float32 2048^3 jnp.dot): {result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; "
        f"FLOPs per config-step (matrix products): {result['flops_per_config_step']:,}",
        "",
        *rows,
        "",
        f"- lrsweep float32 / paper float64: {result['lrsweep_float32_over_paper']:.1f}x",
        f"- lrsweep float64 / paper float64: {result['lrsweep_float64_over_paper']:.1f}x",
        f"- the two large products alone (X W0 and X^T dZ, chunks of {result['gemms_alone']['chunk']}, no tanh): "
        f"{result['gemms_alone']['gflops']:.1f} GFLOP/s, {100 * result['gemms_alone']['of_peak']:.1f}% of the peak",
        f"- float32 and float64 agree on trainability at {100 * result['float32_vs_float64_trainable_agreement']:.2f}% "
        "of the pixels",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lrsweep bench --maps", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--res", type=int, default=64, help="lrsweep's map, pixels per side (default 64)")
    p.add_argument("--steps", type=int, default=500, help="steps per run (default 500)")
    p.add_argument(
        "--paper-res",
        type=int,
        default=128,
        help="the paper's approach, pixels per side (default 128: one chunk of 16,384)",
    )
    p.add_argument("--paper-steps", type=int, default=10, help="the paper's approach, steps (default 10)")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    result = run(args.res, args.steps, args.paper_res, args.paper_steps)
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0
