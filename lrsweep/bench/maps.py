"""``lrsweep bench --maps``: trainability maps of the paper's network against its own approach.

Every case does the same work: the same window (the default one of :mod:`lrsweep.maps`, where the
boundary crosses the map), the same resolution and the same number of steps, each timed twice in
one process: cold (the first call, compiling included) and warm (the same call again).

- ``paper float64``: the paper's notebook approach re-run here: float64, a Python loop over the
  steps calling one jitted, vmapped step on a chunk of at most 50,000 configs, the losses stacked
  and reduced at the end (``train`` and ``train_step_lrvmap`` of github.com/Sohl-Dickstein/fractal);
  its functions are made afresh for the cold call;
- ``lrsweep float64`` and ``lrsweep float32``: the map's sweep (the engine with the whole-batch
  loss), without the float32 map's own float64 sample check (timed apart as ``check``);
- ``GEMMs alone``: a ceiling for the network on this machine: only the two large products of
  each step, ``X W0`` and ``X^T dZ`` for a block of 8 configs (the engine's block), float32, in a
  scan of the same length, no tanh and no output layer (their 278,528 FLOPs per config-step);
- the machine's float32 matrix-product peak (``roofline.peaks``, a 2048 x 2048 ``jnp.dot``);
- float32 against float64 verdicts per kind of window: the default window (a smooth edge), a 10x
  zoom on its ragged stretch, and a 1000x zoom centred on a boundary pixel of that zoom.

The headline is float64 against float64, warm (the same arithmetic on both sides).

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
from ..maps import settings as map_settings
from . import roofline
from .machine import machine as machine_info

N_DATA, WIDTH = 272, 16
FLOPS_PER_STEP = 2 * N_DATA * (WIDTH * WIDTH * 2 + WIDTH * 3)
PAPER_CHUNK = 50_000


def paper_runner(res: int, steps: int, x_range, y_range):
    """The paper's approach (float64) on a ``res x res`` map, made afresh: ``go() -> ratio`` (its
    first call compiles)."""
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
            return jax.tree.map(lambda t, g, lr: t - lr * g, theta, grad, lrs), g_loss

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

    def go():
        with jax.enable_x64(True):
            return np.asarray(jax.block_until_ready(train(lr, steps)))

    return go


def _timed(res: int, steps: int, times) -> dict:
    cold, warm = times
    n = res * res * steps
    return {
        "configs": res * res,
        "steps": steps,
        "cold_s": cold,
        "seconds": warm,
        "rate": n / warm,
        "cold_rate": n / cold,
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


def lrsweep_runner(res: int, steps: int, precision: str, x_range: tuple[float, float], y_range: tuple[float, float]):
    """The map's sweep of the tanh setting on a ``res x res`` window: ``go() -> Dataset`` (the sweep
    alone, without a float32 map's float64 sample check)."""
    mp = map_settings.setting_problem("tanh", steps=steps, precision=precision)
    xs, ys = maps.grid(*x_range, res), maps.grid(*y_range, res)
    return lambda: maps._sweep_map(mp, xs, ys, steps, precision, None, {"progress": False})


def timed_cases(runners: dict, res: int, steps: int, reps: int = 3) -> dict:
    """Each runner's first call (cold), then ``reps`` rounds of one call of each in turn, the fastest
    kept (warm): interleaving spreads the load of a shared machine over every case alike."""
    cold, warm, last = {}, {name: [] for name in runners}, {}
    for name, go in runners.items():
        t0 = time.perf_counter()
        last[name] = go()
        cold[name] = time.perf_counter() - t0
    for _ in range(reps):
        for name, go in runners.items():
            t0 = time.perf_counter()
            last[name] = go()
            warm[name].append(time.perf_counter() - t0)
    return {name: _timed(res, steps, [cold[name], min(warm[name])]) | {"result": last[name]} for name in runners}


def check_seconds(res: int, steps: int, x_range: tuple[float, float], y_range: tuple[float, float]) -> float:
    """What a float32 map adds for its float64 sample check (``maps.CHECK_RES`` squared pixels), warm."""
    mp = map_settings.setting_problem("tanh", steps=steps, precision="float64")
    k = maps.check_indices(res)
    xs, ys = maps.grid(*x_range, res)[k], maps.grid(*y_range, res)[k]
    maps._sweep_map(mp, xs, ys, steps, "float64", None, {"progress": False})
    t0 = time.perf_counter()
    maps._sweep_map(mp, xs, ys, steps, "float64", None, {"progress": False})
    return time.perf_counter() - t0


def agreement_by_window(res: int, steps: int) -> list[dict]:
    """float32 against float64 verdicts on three kinds of window (module docstring), full maps of each."""
    out = []
    ragged = maps.window(RAGGED_CENTER, 10.0)
    kinds = [
        ("smooth edge (default window)", (maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE)),
        ("ragged edge (10x zoom)", ragged),
    ]
    for k, (name, (xr_, yr_)) in enumerate(kinds):
        t64 = lrsweep_runner(res, steps, "float64", xr_, yr_)()["trainable"].transpose("lr_W1", "lr_W0").values
        t32 = lrsweep_runner(res, steps, "float32", xr_, yr_)()["trainable"].transpose("lr_W1", "lr_W0").values
        out.append(_agreement(name, xr_, yr_, t32, t64))
        if k == 1:  # a deep zoom centred on the ragged window's boundary pixel nearest its centre
            edge = np.argwhere(maps.boundary(t64))
            if len(edge):
                i, j = edge[np.argmin(((edge - (res - 1) / 2) ** 2).sum(axis=1))]
                cx = xr_[0] + (xr_[1] - xr_[0]) * j / (res - 1)
                cy = yr_[0] + (yr_[1] - yr_[0]) * i / (res - 1)
                kinds.append(("deep zoom (1000x)", maps.window((cx, cy), 1000.0)))
    return out


def _agreement(name, xr_, yr_, t32, t64) -> dict:
    return {
        "window": name,
        "x_range": list(xr_),
        "y_range": list(yr_),
        "agreement": float((t32 == t64).mean()),
        "boundary_share": float(maps.boundary(t64).mean()),
        "trainable_float64": float(t64.mean()),
    }


#: The ragged stretch of the default window's boundary (the gallery's zoom).
RAGGED_CENTER = (2.7, 2.12)


def run(res: int = 32, steps: int = 200, reps: int = 3, log=print) -> dict:
    """Every case; a JSON-able dict of rates, FLOP/s, ratios and agreement."""
    x_range, y_range = maps.DEFAULT_X_RANGE, maps.DEFAULT_Y_RANGE
    peak = roofline.peaks("cpu")["matmul_flops_per_s"]
    log(f"matmul peak (float32, 2048^3): {peak / 1e9:.1f} GFLOP/s")
    runners = {
        "paper float64": paper_runner(res, steps, x_range, y_range),
        "lrsweep float64": lrsweep_runner(res, steps, "float64", x_range, y_range),
        "lrsweep float32": lrsweep_runner(res, steps, "float32", x_range, y_range),
    }
    cases = timed_cases(runners, res, steps, reps)
    for name, r in cases.items():
        log(f"{name}: warm {r['rate']:,.0f} config-steps/s ({r['seconds']:.2f} s), cold {r['cold_s']:.2f} s")
        if name.startswith("lrsweep"):
            r.update(chunk_size=int(r["result"].attrs["chunk_size"]), block_size=int(r["result"].attrs["block_size"]))
    check = check_seconds(res, steps, x_range, y_range)
    gemm = gemm_rate(steps)
    gemm_flops = gemm["rate"] * GEMM_FLOPS_PER_STEP
    log(f"GEMMs alone: {gemm_flops / 1e9:.1f} GFLOP/s ({100 * gemm_flops / peak:.1f}% of the peak)")
    windows = agreement_by_window(res, steps)
    for w in windows:
        log(f"float32 vs float64, {w['window']}: {100 * w['agreement']:.1f}% of verdicts agree")
    paper, f64, f32 = (cases[k] for k in ("paper float64", "lrsweep float64", "lrsweep float32"))
    keys = ("configs", "steps", "seconds", "cold_s", "rate", "cold_rate", "chunk_size", "block_size")
    return {
        "machine": machine_info([jax.default_backend()]),  # the suite's machine block: CPU model, cores, versions
        "matmul_peak_flops": peak,
        "flops_per_config_step": FLOPS_PER_STEP,
        "window": {"x_range": list(x_range), "y_range": list(y_range), "res": res, "steps": steps, "warm_reps": reps},
        "cases": {
            name: {k: v for k, v in c.items() if k in keys}
            | {"gflops": c["rate"] * FLOPS_PER_STEP / 1e9, "of_peak": c["rate"] * FLOPS_PER_STEP / peak}
            for name, c in cases.items()
        },
        "float32_check_seconds": check,
        "gemms_alone": {
            "chunk": 8,
            "flops_per_config_step": GEMM_FLOPS_PER_STEP,
            "gflops": gemm_flops / 1e9,
            "of_peak": gemm_flops / peak,
        },
        "float64_over_paper_warm": f64["rate"] / paper["rate"],
        "float64_over_paper_cold": paper["cold_s"] / f64["cold_s"],
        "float32_over_paper_warm": f32["rate"] / paper["rate"],
        "float32_over_paper_cold": paper["cold_s"] / f32["cold_s"],
        "float32_vs_float64_by_window": windows,
    }


def markdown(result: dict) -> str:
    w = result["window"]
    rows = [
        "| case | configs x steps | warm s | cold s | config-steps/s (warm) | GFLOP/s (matmul) | of matmul peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in result["cases"].items():
        rows.append(
            f"| {name} | {c['configs']:,} x {c['steps']} | {c['seconds']:.2f} | {c['cold_s']:.2f} | {c['rate']:,.0f} | "
            f"{c['gflops']:.1f} | {100 * c['of_peak']:.1f}% |"
        )
    agree = [
        f"| {a['window']} | {a['x_range'][0]:.6g}:{a['x_range'][1]:.6g} | {a['y_range'][0]:.6g}:{a['y_range'][1]:.6g} | "
        f"{100 * a['boundary_share']:.1f}% | {100 * a['agreement']:.1f}% |"
        for a in result["float32_vs_float64_by_window"]
    ]
    lines = [
        f"Identical work on every row: the default window, {w['res']} x {w['res']} pixels, {w['steps']} steps; cold: "
        f"the first call, compiling included; warm: the fastest of {w.get('warm_reps', 1)} more, the cases interleaved.",
        "",
        f"- **lrsweep float64 / paper float64: {result['float64_over_paper_warm']:.1f}x warm, "
        f"{result['float64_over_paper_cold']:.1f}x cold** (the same arithmetic)",
        f"- lrsweep float32 / paper float64: {result['float32_over_paper_warm']:.1f}x warm, "
        f"{result['float32_over_paper_cold']:.1f}x cold; a float32 map also trains a float64 sample for its "
        f"agreement check: {result['float32_check_seconds']:.2f} s more here",
        "",
        *rows,
        "",
        f"matmul peak (float32 2048^3 jnp.dot): {result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; "
        f"FLOPs per config-step (matrix products): {result['flops_per_config_step']:,}; the two large products "
        f"alone (X W0 and X^T dZ, chunks of {result['gemms_alone']['chunk']}, no tanh): "
        f"{result['gemms_alone']['gflops']:.1f} GFLOP/s, {100 * result['gemms_alone']['of_peak']:.1f}% of the peak",
        "",
        "float32 against float64 verdicts, whole maps at the same size:",
        "",
        "| window | x (log10) | y (log10) | boundary pixels | verdicts agree |",
        "|---|---|---|---:|---:|",
        *agree,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lrsweep bench --maps", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--res", type=int, default=32, help="pixels per side of every map (default 32)")
    p.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    p.add_argument("--reps", type=int, default=3, help="warm calls per case, interleaved (default 3)")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    result = run(args.res, args.steps, args.reps)
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0
