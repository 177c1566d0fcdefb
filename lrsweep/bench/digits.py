"""``lrsweep bench --digits``: a real model's learning-rate sweep against what users write by hand.

The case: ``problems.digits()`` (an MLP 64-32-10, softmax cross-entropy, 1437 training examples),
minibatches of 128, Adam with the ``warmup_cosine`` schedule (the swept lr is the peak), ``L`` log-spaced
learning rates x ``I`` initialisations drawn by the problem's sampler, ``T`` steps each. Every
implementation trains the very same configs on the very same minibatches (data seed 0: step ``t``
takes slot ``t mod 11`` of ``permutation(fold_in(key(0), t // 11), 1437)``, lrsweep's documented order):

- ``lrsweep``: ``lrsweep.sweep(..., record="summary")`` with ``eval_every=T`` (held-out metrics before
  the first and after the last step, as the baselines); a second row with the default ``eval_every``
  (about 21 evaluations) shows what evaluating along the run costs;
- ``loop``: what users write: a jitted train function (one ``lax.scan`` over the steps of plain optax,
  ``optax.adam(lambda t: lr * unit(t))``) compiled once and called per config from Python;
- ``vmap``: the same train function under ``jit(vmap(...))`` over every config at once, by hand (the
  ceiling of the XLA path lrsweep takes).

Each is timed cold (its first call, compile included; the process's start, a one-epoch sweep of
``problems.linear()``, is paid before any timing) and warm (the median of
``--repeat`` further calls, and the fastest of them: on a shared machine other work only ever slows
a call down, so the fastest is the least disturbed). The run checks that the three agree: the final training loss (the
whole training set after the last step) of every config, within ``RTOL`` relative (float32
rounding grown over ``T`` steps; configs whose loss is not finite in all three must be non-finite
in all three). The work per config-step is XLA's cost analysis of one training step vmapped over
the configs, divided by them; the fraction of peak divides the achieved FLOP/s by this run's
measured float32 matmul peak (``roofline.peaks``). The summary's memory is checked as the result
layout's bytes at ``T`` and at ``10 T`` steps (equal: it does not grow with the number of steps).
PyTorch is not a baseline: it is not installed in lrsweep's environment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import lrsweep

from .. import engine, planner, problems, schedules, spec
from . import roofline
from .machine import machine as machine_info

BATCH = 128
SCHEDULE = "warmup_cosine"
LR_RANGE = (1e-4, 1.0)
#: (lrs, inits, steps) of the full and the quick case.
FULL = (256, 4, 100)
QUICK = (32, 2, 50)
#: Relative agreement of the final losses between implementations (float32 rounding over the run).
RTOL = 1e-3
ATOL = 1e-5


def _order(steps: int, n: int) -> np.ndarray:
    """``(steps, BATCH)`` example indices: lrsweep's documented minibatch order for data seed 0."""
    per_epoch = n // BATCH
    rows = []
    for k in range(-(-steps // per_epoch)):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(0), k), n))
        rows += [perm[s * BATCH : (s + 1) * BATCH] for s in range(per_epoch)]
    return np.stack(rows[:steps]).astype(np.int32)


def train_fn(problem: problems.Problem, steps: int):
    """``train(params0, lr, order) -> (final training loss, held-out accuracy)`` for one config: plain
    optax Adam with the unit warmup-cosine schedule times ``lr``, one ``lax.scan`` over the steps."""
    unit = schedules.resolve(SCHEDULE, None, steps).unit()
    assert unit is not None and problem.batch_loss is not None and problem.x_eval is not None
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)
    xe, ye = jnp.asarray(problem.x_eval), jnp.asarray(problem.y_eval)
    accuracy = problem.metrics["accuracy"].fn
    batch_loss = problem.batch_loss

    def train(params0, lr, order):
        tx = optax.adam(lambda t: lr * unit(t))

        def step(carry, idx):
            params, state = carry
            grads = jax.grad(batch_loss)(params, x[idx], y[idx])
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = lax.scan(step, (params0, tx.init(params0)), order)
        acc = jnp.mean(jax.vmap(accuracy, in_axes=(None, 0, 0))(params, xe, ye))
        return batch_loss(params, x, y), acc

    return train


def _timed(fn, repeat: int) -> dict:
    """The first call (cold: compile included) and the median of ``repeat`` more (warm)."""
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return {"cold_s": cold, "times_s": times, "warm_s": statistics.median(times), "out": out}


def _flops_per_config_step(problem, inits, lrs, steps: int) -> float | None:
    """XLA's FLOPs of one training step vmapped over the configs, per config."""
    one = train_fn(problem, steps)
    order = jnp.asarray(_order(1, problem.x.shape[0]))
    with_step = jax.jit(jax.vmap(one, in_axes=(0, 0, None))).lower(inits, lrs, order).compile()
    flops = roofline._cost_dict(with_step).get("flops")
    without = jax.jit(jax.vmap(one, in_axes=(0, 0, None))).lower(inits, lrs, order[:0]).compile()
    base = roofline._cost_dict(without).get("flops")
    if flops is None or base is None or flops <= base:
        return None
    return (float(flops) - float(base)) / lrs.shape[0]


def _agree(a: np.ndarray, b: np.ndarray, lrs: np.ndarray, upto: float) -> dict:
    """How two implementations' final losses agree, per config: within ``RTOL``/``ATOL`` or non-finite
    in both. Counted over every config and over those with lr at most ``upto`` (the suggested lr):
    past it training turns chaotic and rounding differences grow until the runs part."""
    both = np.isfinite(a) & np.isfinite(b)
    scale = np.maximum(np.abs(a), np.abs(b))
    ok = np.where(both, np.abs(a - b) <= ATOL + RTOL * scale, ~np.isfinite(a) & ~np.isfinite(b))
    gap = np.where(both, np.abs(a - b) / np.maximum(scale, 1e-30), 0.0)
    low = lrs <= upto
    return {
        "configs": int(a.size),
        "disagree": int((~ok).sum()),
        "smallest_lr_disagreeing": float(lrs[~ok].min()) if (~ok).any() else None,
        "max_rel_gap": float(gap.max()),
        "configs_upto_suggested": int(low.sum()),
        "disagree_upto_suggested": int((~ok & low).sum()),
        "max_rel_gap_upto_suggested": float(gap[low].max()) if low.any() else 0.0,
    }


def _summary_bytes(problem, lrs, n_init: int, steps: int) -> dict:
    """The summary layout's bytes at ``steps`` and at ``10 * steps`` (no training)."""
    out = {}
    for t in (steps, 10 * steps):
        s = spec.build(problem, lrs, steps=t, batch_size=BATCH, init=n_init, optimizer="adam", schedule=SCHEDULE,
                       eval_every=t, record="summary")  # fmt: skip
        out[t] = planner.plan(*s).layout.nbytes()
    return {"steps": list(out), "bytes": list(out.values()), "independent_of_steps": len(set(out.values())) == 1}


def run(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="lrsweep bench --digits", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"{QUICK[0]} lrs x {QUICK[1]} inits x {QUICK[2]} steps")
    p.add_argument("--size", default=None, help=f"LRS,INITS,STEPS (default {','.join(map(str, FULL))})")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results", help="folder for digits-<name>.json and .md")
    p.add_argument("--name", default="cpu", help="file stem suffix (default cpu)")
    args = p.parse_args(argv)
    if args.size is not None:
        try:
            n_lr, n_init, steps = (int(v) for v in args.size.split(","))
        except ValueError:
            raise ValueError(f"--size={args.size!r} is invalid: expected LRS,INITS,STEPS, e.g. 256,4,200") from None
    else:
        n_lr, n_init, steps = QUICK if args.quick else FULL
    if args.repeat < 1:
        raise ValueError(f"--repeat={args.repeat} is invalid: expected an integer >= 1")
    problem = problems.digits()
    assert problem.sampler is not None
    lr_values = np.geomspace(*LR_RANGE, n_lr).astype(np.float32)
    inits = engine.sample_inits(problem.sampler, 0, n_init)  # what sweep(init=I) draws (seed 0)
    configs = n_lr * n_init
    # Configs lr-major, as the sweep's (lr, init) grid: config k is lr k // I, init k % I.
    lrs = jnp.repeat(jnp.asarray(lr_values), n_init)
    params0 = jax.tree.map(lambda a: jnp.tile(a, (n_lr,) + (1,) * (a.ndim - 1)), inits)
    order = jnp.asarray(_order(steps, problem.x.shape[0]))
    kw = dict(steps=steps, batch_size=BATCH, init=n_init, optimizer="adam", schedule=SCHEDULE, record="summary",
              progress=False)  # fmt: skip
    rows, finals = [], {}
    # Start the backend and load the libraries a sweep uses (xarray for its result) before any
    # timing: the first implementation timed should not be charged for the process's start.
    lrsweep.sweep(problems.linear(), [0.1], epochs=1, progress=False)

    def add(impl: str, timing: dict, final: np.ndarray | None, **extra) -> None:
        row = {"impl": impl, "configs": configs, "steps": steps, **{k: v for k, v in timing.items() if k != "out"}}
        row["warm_config_steps_per_s"] = configs * steps / row["warm_s"]
        row["best_config_steps_per_s"] = configs * steps / min(row["times_s"])  # load only ever slows a call
        row["cold_config_steps_per_s"] = configs * steps / row["cold_s"]
        rows.append({**row, **extra})
        if final is not None:
            finals[impl] = final
        print(f"{impl}: cold {row['cold_s']:.2f} s, warm {row['warm_s']:.2f} s, "
              f"{row['warm_config_steps_per_s']:,.0f} config-steps/s warm", flush=True)  # fmt: skip

    sweep = lambda **more: lrsweep.sweep(problem, lr_values, **kw, **more)
    t = _timed(lambda: sweep(eval_every=steps), args.repeat)
    ds = t["out"]
    add("lrsweep", t, ds["loss"].transpose("lr", "init").values.ravel(), chunk=ds.attrs.get("chunk_size"))
    add(
        "lrsweep, default eval_every", _timed(lambda: sweep(), args.repeat), None, eval_every=ds.attrs.get("eval_every")
    )
    one = jax.jit(train_fn(problem, steps))

    singles = [jax.tree.map(lambda a, k=k: a[k], params0) for k in range(configs)]  # one config each, untimed

    def loop():
        outs = [one(singles[k], lrs[k], order) for k in range(configs)]
        return np.array([float(o[0]) for o in outs])

    t = _timed(loop, args.repeat)
    add("loop", t, t["out"])
    both = jax.jit(jax.vmap(train_fn(problem, steps), in_axes=(0, 0, None)))
    t = _timed(lambda: both(params0, lrs, order)[0], args.repeat)
    add("vmap", t, np.asarray(t["out"]))
    peak = roofline.peaks(jax.default_backend())
    flops = _flops_per_config_step(problem, params0, lrs, steps)
    for row in rows:
        row["flops_fraction"] = (
            None if flops is None else flops * row["warm_config_steps_per_s"] / peak["matmul_flops_per_s"]
        )
    speed = {r["impl"]: r for r in rows}
    ratios = {
        f"lrsweep/{b} {w}": speed["lrsweep"][f"{w}_config_steps_per_s"] / speed[b][f"{w}_config_steps_per_s"]
        for b in ("loop", "vmap")
        for w in ("warm", "best", "cold")
    }
    suggested = lrsweep.suggest_lr(ds, metric="accuracy")
    lr_of = np.asarray(lrs)
    agreement = {f"lrsweep vs {b}": _agree(finals["lrsweep"], finals[b], lr_of, suggested) for b in ("loop", "vmap")}
    agreement["loop vs vmap"] = _agree(finals["loop"], finals["vmap"], lr_of, suggested)
    result = {
        "machine": {**machine_info([jax.default_backend()]), "optax": optax.__version__, "peak": peak},
        "case": {
            "problem": "digits",
            "lrs": n_lr,
            "lr_range": list(LR_RANGE),
            "inits": n_init,
            "steps": steps,
            "batch_size": BATCH,
            "optimizer": "adam",
            "schedule": SCHEDULE,
            "repeat": args.repeat,
            "torch": "not installed: no PyTorch baseline",
        },
        "flops_per_config_step": flops,
        "rows": rows,
        "ratios": ratios,
        "agreement": agreement,
        "suggested_lr": suggested,
        "agree": all(a["disagree_upto_suggested"] == 0 for a in agreement.values()),
        "summary_memory": _summary_bytes(problem, lr_values, n_init, steps),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"digits-{args.name}{'-quick' if args.quick else ''}"
    result["paths"] = [str(out / f"{stem}.json"), str(out / f"{stem}.md")]
    Path(result["paths"][0]).write_text(json.dumps(result, indent=1, default=str) + "\n")
    Path(result["paths"][1]).write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    c, m = result["case"], result["machine"]
    lines = [
        f"# digits: {c['lrs']} lrs x {c['inits']} inits x {c['steps']} steps, minibatch {c['batch_size']}, "
        f"Adam + {c['schedule']}",
        "",
        f"{m['cpu']}, {m['cores']} cores; jax {m['jax']}, optax {m['optax']}, lrsweep {m['lrsweep']}; "
        f"matmul peak {m['peak']['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s; "
        f"{_fmt(result['flops_per_config_step'])} FLOPs per config-step (XLA cost analysis). PyTorch: {c['torch']}.",
        "",
        "| implementation | cold (s) | warm (s) | config-steps/s cold | warm (median) | warm (best) | % peak (warm) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        frac = "" if r["flops_fraction"] is None else f"{100 * r['flops_fraction']:.1f}%"
        lines.append(
            f"| {r['impl']} | {r['cold_s']:.2f} | {r['warm_s']:.2f} | {r['cold_config_steps_per_s']:,.0f} | "
            f"{r['warm_config_steps_per_s']:,.0f} | {r['best_config_steps_per_s']:,.0f} | {frac} |"
        )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f}x |" for k, v in result["ratios"].items()]
    lines += ["", f"Final training losses agree within {RTOL:g} relative + {ATOL:g} (or are non-finite in both):", ""]
    for k, a in result["agreement"].items():
        lines.append(
            f"- {k}: lr <= the suggested {result['suggested_lr']:.3g}: {a['disagree_upto_suggested']} of "
            f"{a['configs_upto_suggested']} disagree (largest relative gap {a['max_rel_gap_upto_suggested']:.1e}); "
            f"all lrs: {a['disagree']} of {a['configs']} (largest gap {a['max_rel_gap']:.1e}, smallest lr "
            f"disagreeing {_fmt(a['smallest_lr_disagreeing'], '.3g')})"
        )
    mem = result["summary_memory"]
    lines += [
        "",
        f"Summary memory: the result layout holds {mem['bytes'][0]:,} bytes at {mem['steps'][0]} steps and "
        f"{mem['bytes'][1]:,} at {mem['steps'][1]} ({'independent of' if mem['independent_of_steps'] else 'grows with'}"
        " the number of steps).",
        "",
    ]
    return "\n".join(lines)


def _fmt(v, spec: str = ",.0f") -> str:
    return "none" if v is None else format(v, spec)


def main(argv=None) -> int:
    result = run(argv)
    print(markdown(result))
    print("wrote " + ", ".join(result["paths"]))
    return 0 if result["agree"] else 1
