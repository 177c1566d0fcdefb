"""``15-edge-of-stability`` and ``16-sharpness-vs-lr``: the lesson's 2 / lambda rule on a network.

The lesson: gradient descent is stable for ``lr < 2 / lambda_max``, with ``lambda_max`` fixed (16.70).
On a network the Hessian moves, and Cohen et al. (ICLR 2021, "Gradient Descent on Neural Networks
Typically Occurs at the Edge of Stability", their Figure 1) found that under full-batch gradient
descent the sharpness rises until it reaches ``2 / lr`` and then hovers there while the loss keeps
falling, unevenly. These figures reproduce that, qualitatively, on a small tanh network trained on
a subset of scikit-learn's digits (the copy lrsweep ships, ``lrsweep.problems.datasets``), through
the public API (``lrsweep.sweep(..., track_sharpness=True)``):

- ``15-edge-of-stability``: training loss and sharpness against step at four lrs, ``2 / lr`` dashed;
- ``16-sharpness-vs-lr``: over many lrs in one sweep, the largest and the final sharpness times lr
  against 2: the view no single-run tool draws.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import lrsweep
from lrsweep.problems import datasets

from ._style import OKABE_ITO, figure, save

#: Examples of the digits subset, and the network's widths: 64 inputs, a tanh layer, 10 outputs.
N_DATA, SIZES, SEED = 256, (64, 32, 10), 0
STEPS, EVERY = 800, 10
#: The sweep-wide view estimates every ``SWEEP_EVERY`` steps (it keeps the last and largest only).
SWEEP_EVERY = 20
#: The four runs of the first figure: 2 / lr = 4, 5, 6 and 7 (the initial sharpness is 3.5).
EDGES = (4.0, 5.0, 6.0, 7.0)
SWEEP_LRS = "log:0.05:0.8:32"
COLORS = (OKABE_ITO["vermillion"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["blue"])
#: The lesson's page (``lesson.fig_lesson_edge``): four lrs either side of its stability limit
#: 2 / 16.70 = 0.1198, largest first (2 / lr = 14.3, 15.4, 18.2, 20), every step estimated.
LESSON_EDGE_LRS, LESSON_EDGE_STEPS = (0.14, 0.13, 0.11, 0.1), 50


def _net(params, x):
    h = x
    for k in range(len(SIZES) - 1):
        z = h @ params[f"W{k}"]  # one example (n_in,) or a batch (n, n_in): the bias gets z's rank
        h = z + jnp.expand_dims(params[f"b{k}"], tuple(range(z.ndim - 1)))
        if k < len(SIZES) - 2:
            h = jnp.tanh(h)
    return h


def _loss(params, x, y):
    """Squared error, half the sum over the 10 outputs (Cohen et al.'s square loss)."""
    return 0.5 * jnp.sum((_net(params, x) - y) ** 2)


def _batch_loss(params, x, y):
    return 0.5 * jnp.sum((_net(params, x) - y) ** 2) / x.shape[0]


def _init(key):
    """PyTorch's default for a linear layer: weights and biases uniform in +-1 / sqrt(fan_in)."""
    out = {}
    for k, key_k in enumerate(jax.random.split(key, len(SIZES) - 1)):
        a = 1.0 / np.sqrt(SIZES[k])
        kw, kb = jax.random.split(key_k)
        out[f"W{k}"] = jax.random.uniform(kw, (SIZES[k], SIZES[k + 1]), minval=-a, maxval=a)
        out[f"b{k}"] = jax.random.uniform(kb, (SIZES[k + 1],), minval=-a, maxval=a)
    return out


@functools.cache
def digits_problem() -> lrsweep.Problem:
    """``N_DATA`` digits (a fixed random subset), pixels standardised, one-hot targets; the network
    ``SIZES`` with tanh, initialised by :func:`_init` from ``key(SEED)``."""
    data, target = datasets.load()  # scikit-learn's digits, as shipped with lrsweep (equal to load_digits)
    idx = np.random.default_rng(SEED).permutation(len(target))[:N_DATA]
    x = np.asarray(data)[idx]
    x = (x - x.mean(axis=0)) / x.std()
    y = np.eye(10)[target[idx]]
    desc = f"{N_DATA} digits, a {'-'.join(map(str, SIZES))} tanh network, half squared error"
    return lrsweep.Problem("digits-tanh", _loss, x, y, _init, description=desc, batch_loss=_batch_loss)


_COMMON: dict[str, Any] = dict(epochs=STEPS, track_sharpness=True, sharpness_every=EVERY, progress=False)


@functools.cache
def four_runs():
    """The four runs at 2 / lr = ``EDGES`` (trajectories, every ``EVERY`` steps)."""
    return lrsweep.sweep(digits_problem(), [2.0 / e for e in EDGES], every=EVERY, variables=["loss"], **_COMMON)


@functools.cache
def lesson_runs():
    """The lesson's problem at ``LESSON_EDGE_LRS`` (trajectories), its sharpness estimated at every step."""
    return lrsweep.sweep(
        "linear",
        list(LESSON_EDGE_LRS),
        epochs=LESSON_EDGE_STEPS,
        track_sharpness=True,
        sharpness_every=1,
        progress=False,
    )


@functools.cache
def runs():
    """The four runs (:func:`four_runs`) and the sweep over ``SWEEP_LRS`` (summaries)."""
    settings: dict[str, Any] = {**_COMMON, "sharpness_every": SWEEP_EVERY}
    many = lrsweep.sweep(digits_problem(), SWEEP_LRS, record="summary", **settings)
    return four_runs(), many


def fig_edge_of_stability(data, out: Path) -> list[Path]:
    """Loss (top) and sharpness (bottom) against step at four lrs; 2 / lr dashed in each run's colour."""
    four, _ = runs()
    fig = figure((12.8, 8.4))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i, color in enumerate(COLORS):
        run = four.isel(lr=i, init=0)
        lr = float(run.lr)
        top.plot(run.epoch, run.loss, color=color, lw=1.6, label=f"lr {lr:.3g}  (2 / lr = {2 / lr:g})")
        bottom.plot(run.sharpness_step, run.sharpness, color=color, lw=1.8)
        bottom.axhline(2 / lr, color=color, ls="--", lw=1.4)
    top.set_yscale("log")
    top.set_ylabel("training loss")
    top.legend(loc="upper right")
    top.set_title("Full-batch gradient descent on a tanh network: the loss keeps falling")
    bottom.set_title("while the sharpness rises to 2 / lr (dashed) and stays there", fontsize=17)
    bottom.set_ylabel("sharpness")
    bottom.set_xlabel("step")
    bottom.set_ylim(0, max(EDGES) * 1.25)
    return save(fig, out, "15-edge-of-stability")


def fig_sharpness_vs_lr(data, out: Path) -> list[Path]:
    """Largest and final sharpness times lr against lr (one sweep), with the edge at 2."""
    _, many = runs()
    lr = many.lr.values
    final = many.sharpness.isel(init=0).values * lr
    peak = many.max_sharpness.isel(init=0).values * lr
    fig = figure()
    ax = fig.subplots()
    band = f"within {100 * lrsweep.sharpness.EDGE_BAND:g}% of the edge"
    ax.axhspan(2 * (1 - lrsweep.sharpness.EDGE_BAND), 2.0, color=OKABE_ITO["green"], alpha=0.15, lw=0, label=band)
    ax.axhline(2.0, color="black", ls="--", lw=1.4, label="the edge: sharpness = 2 / lr")
    ax.plot(lr, peak, "o", color=OKABE_ITO["vermillion"], ms=6, label="largest sharpness x lr")
    ax.plot(lr, final, "s", color=OKABE_ITO["blue"], ms=5, label=f"sharpness x lr at step {_last_step()}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("sharpness x lr")
    ax.set_ylim(0, 3.0)
    ax.legend(loc="upper left")
    ax.set_title(f"{lr.size} learning rates in one sweep, {STEPS} steps each")
    return save(fig, out, "16-sharpness-vs-lr")


def _last_step() -> int:
    return int(lrsweep.sharpness.steps(STEPS, SWEEP_EVERY)[-1])


def readme_values(data=None) -> dict[str, str]:
    """The captions' numbers, from the runs."""
    four, many = runs()
    edge = four.edge_step.isel(init=0).values
    # Sharpness over 2 / lr from each run's edge step on (runs that never reach it: none).
    ratio = np.concatenate(
        [
            four.sharpness.isel(lr=i, init=0).values[four.sharpness_step.values >= e] * float(four.lr[i]) / 2
            for i, e in enumerate(edge)
            if e >= 0
        ]
        or [np.array([np.nan])]
    )
    loss = four.loss.isel(init=0)
    lr = many.lr.values
    reached = many.edge_step.isel(init=0).values >= 0
    peak = many.max_sharpness.isel(init=0).values * lr
    return {
        "eos_n_data": str(N_DATA),
        "eos_sizes": "-".join(map(str, SIZES)),
        "eos_steps": str(STEPS),
        "eos_every": str(EVERY),
        "eos_edges": ", ".join(f"{e:g}" for e in EDGES),
        "eos_sharp0": f"{float(four.sharpness.isel(lr=0, init=0, sharpness_step=0)):.2f}",
        "eos_ratio_lo": f"{float(np.nanmin(ratio)):.2f}",
        "eos_ratio_hi": f"{float(np.nanmax(ratio)):.2f}",
        "eos_edge_steps": ", ".join(str(int(s)) if s >= 0 else "never" for s in edge),
        "eos_loss_first": f"{float(loss.isel(lr=0, epoch=0)):.3f}",
        "eos_loss_last": ", ".join(f"{float(v):.3f}" for v in loss.isel(epoch=-1).values),
        "eos_n_lrs": str(lr.size),
        "eos_n_reached": str(int(reached.sum())),
        "eos_reach_lr": f"{float(lr[reached].min()):.3g}" if reached.any() else "none",
        "eos_peak_hi": f"{float(np.nanmax(peak)):.2f}",
        "eos_iters": str(four.attrs["sharpness_iters"]),
    } | _lesson_values(ratio)


def _lesson_values(ratio) -> dict[str, str]:
    """The lesson page's numbers: the lesson's runs beside the network's (``ratio``: the network's
    sharpness over 2 / lr once at the edge)."""
    les = lesson_runs()
    lam = float(lrsweep.theory.eigenvalues(lrsweep.problems.linear())[-1])
    tracked = les.sharpness.values.astype(np.float64)
    outcome = les.outcome.isel(init=0).values
    names = les.outcome.attrs["flag_meanings"].split()
    codes = dict(zip(names, les.outcome.attrs["flag_values"]))
    lrs = les.lr.values
    loss = les.loss.isel(init=0)
    return {
        "lte_lambda": f"{lam:.2f}",
        "lte_crit": f"{2 / lam:.4f}",
        "lte_steps": str(LESSON_EDGE_STEPS),
        "lte_lrs": ", ".join(f"{v:g}" for v in sorted(lrs)),
        "lte_lo": f"{tracked.min():.4f}",
        "lte_hi": f"{tracked.max():.4f}",
        "lte_err": f"{np.abs(tracked / lam - 1).max():.0e}",
        "lte_diverged": ", ".join(f"{v:g}" for v in sorted(lrs[outcome == codes["diverged"]])),
        "lte_fell": ", ".join(f"{v:g}" for v in sorted(lrs[outcome != codes["diverged"]])),
        "lte_loss_hi": f"{float(loss.isel(epoch=-1).max()):.1e}",
        "lte_net_lo": f"{float(np.nanmin(ratio)):.2f}",
        "lte_net_hi": f"{float(np.nanmax(ratio)):.2f}",
    }
