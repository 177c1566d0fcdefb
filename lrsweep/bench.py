"""The benchmark suite: lrsweep against the notebook loop, numpy and torch, in one process.

Unit: **config-steps per second**, one config (a learning rate and an init) trained for one epoch.
Every number of a run comes from the same process, so the ratios between implementations hold
even on a shared, noisy machine; compare ratios, not absolute numbers, across machines.

Implementations, each on the lesson's problem (``linear``), the chapter's 2-3-1 network
(``chapter_net``) and a width-16 mean-field network (``mlp``), float32 unless said otherwise:

- ``notebook loop``: the lesson notebook's own Python loop, one config at a time (deepcopy, an
  in-place ``+= 0.0001`` nudge per weight, forward difference only; Python int or float64 data, so
  numpy promotes the arithmetic to float64 as the notebook does). Its rate does not depend on how
  many configs it loops over, so it is measured on one.
- ``numpy plain``: numpy over all configs at once, written straight from the math (broadcasting
  the configs against the data); ``numpy tuned`` (the lesson only): the 4-point sum unrolled into
  float32 ``(N,)`` operations, the fastest numpy we know for it. ``autodiff`` means the closed-form
  gradient, ``forward`` the lesson's forward difference (``(L(p + h e_j) - L(p)) / h`` per element).
- ``torch``: the plain formulation in torch (``torch.autograd`` for ``autodiff``), when torch is
  importable; skipped otherwise.
- ``lrsweep``: ``lrsweep.sweep(problem, "log:LO:HI:N", record="summary" | "trajectory",
  progress=False)`` end to end (host-side config building and the ``xarray`` result included; the
  learning rates given as a log space, as a user writes a large sweep) on every JAX backend
  (``cpu``, ``gpu``, ``tpu``) that is available. ``compile (s)`` is the first call's extra time
  with the same static settings (``jax.clear_caches()`` first): a sweep of one config, run twice.

numpy's, torch's and the notebook's cost per config-step does not depend on the number of epochs,
so they run as many epochs (up to the largest of the suite) as fit in ``--target-s`` seconds;
lrsweep runs the suite's epoch counts. Sizes whose config-steps exceed a per-problem cap are
skipped (``--cap-scale`` scales the caps). Memory is the peak growth of the process's resident
set (RSS, sampled every 2 ms) during a timed call, after ``malloc_trim``.

Outputs go to ``--out`` (default: ``benchmarks/results`` of a source checkout, else
``./lrsweep-bench``), named by machine and backends: ``<cpu>-<cores>c-<backends>.json`` with every
row and the machine, ``.md`` with the tables, ratios and targets, ``.png`` with throughput
against configs per implementation. ``--quick`` runs a small subset in well under a minute.

    lrsweep bench                           # the default suite, a few minutes on 2 cores
    lrsweep bench --quick --out /tmp/bench  # the CI subset
    python -m lrsweep.bench --problems linear --sizes 1e6 --epochs 1000 --grads forward

The numpy baselines are independent re-implementations (tests check their final losses against
lrsweep's on a few configs):

>>> import numpy as np
>>> base = BASELINES["linear"]["numpy plain"]()
>>> params, loss = numpy_train(base, np.array([0.01, 0.1], np.float32), base.init(2), 1000, "autodiff")
>>> [round(float(v), 4) for v in params["w"]]
[2.9845, 3.0]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import math
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from . import __version__, api, gradients, problems

GRADS = ("autodiff", "forward")
RECORDS = ("summary", "trajectory")
IMPLS = ("notebook", "numpy", "torch", "lrsweep")
H = 1e-4  # the lesson's finite-difference step

# ------------------------------------------------------------------------------------------------
# numpy baselines, vectorized over configs
#
# Each baseline holds its problem's data in ``dtype`` and offers ``init(n)`` (the problem's init
# repeated for n configs, leaves ``(n, *shape)``), ``loss(params) -> (n,)`` and
# ``grad(params) -> params-like`` (closed form). ``numpy_train`` runs gradient descent with either
# gradient. They never call lrsweep or JAX: they re-implement each problem from its math.
# ------------------------------------------------------------------------------------------------


class _Baseline:
    name = ""
    chunk: int | None = None  # configs per pass, to bound memory (None: all at once)

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)

    def _cast(self, a):
        return np.asarray(a, dtype=self.dtype)

    def init(self, n: int) -> dict:
        return {k: np.repeat(self._cast(v)[None], n, axis=0) for k, v in self.init0.items()}


class LinearPlain(_Baseline):
    """The lesson's ``mean((w x + b - y)^2)`` as an ``(N, 4)`` broadcast and a ``mean``."""

    name = "numpy plain"

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)
        self.x = self._cast([1.0, 2.0, 3.0, 4.0])
        self.y = 3 * self.x
        self.init0 = {"w": 0.0, "b": 0.0}

    def loss(self, p):
        return np.mean((p["w"][:, None] * self.x + p["b"][:, None] - self.y) ** 2, axis=1)

    def grad(self, p):
        err = p["w"][:, None] * self.x + p["b"][:, None] - self.y
        two = self.dtype.type(2)
        return {"w": np.mean(two * err * self.x, axis=1), "b": np.mean(two * err, axis=1)}


class LinearTuned(LinearPlain):
    """The same with the 4-point sum unrolled into ``(N,)`` operations: no ``(N, 4)`` temporaries."""

    name = "numpy tuned"

    def loss(self, p):
        w, b = p["w"], p["b"]
        total = np.zeros_like(w)
        for x, y in zip(self.x, self.y):
            r = w * x + b - y
            total += r * r
        return total * self.dtype.type(1 / len(self.x))

    def grad(self, p):
        w, b = p["w"], p["b"]
        gw, gb = np.zeros_like(w), np.zeros_like(w)
        for x, y in zip(self.x, self.y):
            r = w * x + b - y
            gw += r * x
            gb += r
        scale = self.dtype.type(2 / len(self.x))
        return {"w": gw * scale, "b": gb * scale}


class ChapterNet(_Baseline):
    """The chapter's 2-3-1 sigmoid network, ``mean((sigmoid(x W1 + b1) W2 + b2 - y)^2)``.

    Written with broadcasting and sums over the tiny axes (faster in numpy than ``matmul`` on a
    million stacked 1x2 @ 2x3 matrices).
    """

    name = "numpy plain"

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)
        p = problems.chapter_net()
        self.x, self.y = self._cast(p.x), self._cast(p.y)  # (e, 2), (e, 1)
        self.init0 = {k: np.asarray(v) for k, v in p.init.items()}

    def _forward(self, p):
        # pre[n, e, j] = sum_i x[e, i] W1[n, i, j] + b1[n, j]
        pre = (self.x[None, :, :, None] * p["W1"][:, None, :, :]).sum(axis=2) + p["b1"][:, None, :]
        hidden = 1 / (1 + np.exp(-pre))
        out = (hidden[:, :, :, None] * p["W2"][:, None, :, :]).sum(axis=2) + p["b2"][:, None, :]  # (n, e, o)
        return hidden, out

    def loss(self, p):
        _, out = self._forward(p)
        return np.mean((out - self.y) ** 2, axis=(1, 2))

    def grad(self, p):
        hidden, out = self._forward(p)
        e, o = self.y.shape
        dout = (out - self.y) * self.dtype.type(2 / (e * o))  # (n, e, o)
        g_w2 = (hidden[:, :, :, None] * dout[:, :, None, :]).sum(axis=1)  # (n, 3, o)
        dh = (dout[:, :, None, :] * p["W2"][:, None, :, :]).sum(axis=3)  # (n, e, 3)
        dpre = dh * hidden * (1 - hidden)
        g_w1 = (self.x[None, :, :, None] * dpre[:, :, None, :]).sum(axis=1)  # (n, 2, 3)
        return {"W1": g_w1, "b1": dpre.sum(axis=1), "W2": g_w2, "b2": dout.sum(axis=1)}


class MLP(_Baseline):
    """``mlp(width, depth=1, "tanh")``: ``mean_i (tanh(x_i W0 / sqrt(width)) Wout / width - y_i)^2``.

    The hidden layer of all configs is one matrix product, ``x (n, width) @ W0 (width, N * width)``
    (BLAS); configs run in chunks of ``chunk`` to bound memory.
    """

    name = "numpy plain"
    chunk = 1024

    def __init__(self, dtype=np.float32, width: int = 16):
        super().__init__(dtype)
        p = problems.mlp(width=width)
        self.width = width
        self.x, self.y = self._cast(p.x), self._cast(p.y)[:, 0]  # (e, width), (e,)
        self.init0 = {k: np.asarray(v) for k, v in p.init.items()}

    def _forward(self, p):
        w0, wout = p["W0"], p["Wout"][:, :, 0]  # (N, d, k), (N, k)
        n, d = w0.shape[0], self.width
        stacked = w0.transpose(1, 0, 2).reshape(d, n * d)
        hidden = np.tanh((self.x @ stacked).reshape(-1, n, d) / self.dtype.type(math.sqrt(d)))  # (e, N, k)
        out = (hidden * wout).sum(axis=2) / self.dtype.type(d)  # (e, N)
        return hidden, out

    def loss(self, p):
        _, out = self._forward(p)
        return np.mean((out - self.y[:, None]) ** 2, axis=0)

    def grad(self, p):
        hidden, out = self._forward(p)
        e, n, d = hidden.shape
        dout = (out - self.y[:, None]) * self.dtype.type(2 / e)  # (e, N)
        g_out = (hidden * dout[:, :, None]).sum(axis=0) / self.dtype.type(d)  # (N, k)
        dpre = dout[:, :, None] * (p["Wout"][:, :, 0] / self.dtype.type(d)) * (1 - hidden * hidden)
        dpre /= self.dtype.type(math.sqrt(d))
        g_w0 = (self.x.T @ dpre.reshape(e, n * d)).reshape(d, n, d).transpose(1, 0, 2)
        return {"W0": g_w0, "Wout": g_out[:, :, None]}


def _forward_difference(loss, params: dict, h) -> dict:
    """``(L(p + h e_j) - L(p)) / h`` for every element ``j``: each nudged in place, then restored."""
    base = loss(params)
    grads = {}
    for key, leaf in params.items():
        g = np.empty_like(leaf)
        for idx in np.ndindex(leaf.shape[1:]):
            at = (slice(None), *idx)
            saved = leaf[at].copy()
            leaf[at] = saved + h  # in the parameter dtype, as the notebook's += on a float32 array
            g[at] = (loss(params) - base) / h
            leaf[at] = saved
        grads[key] = g
    return grads


def numpy_train(baseline: _Baseline, lr, params: dict, epochs: int, grad: str):
    """Gradient descent over all configs; returns the final ``(params, loss)``; ``lr`` is ``(N,)``."""
    lr = np.asarray(lr, baseline.dtype)
    n = lr.shape[0]
    step = baseline.chunk or n
    h = baseline.dtype.type(H)
    out_params, out_loss = {k: np.empty_like(v) for k, v in params.items()}, np.empty(n, baseline.dtype)
    with np.errstate(all="ignore"):  # diverging configs overflow, as they should
        for start in range(0, n, step):
            part = slice(start, start + step)
            p = {k: v[part].copy() for k, v in params.items()}
            rate = lr[part]
            for _ in range(epochs):
                g = baseline.grad(p) if grad == "autodiff" else _forward_difference(baseline.loss, p, h)
                p = {k: v - rate.reshape(-1, *(1,) * (v.ndim - 1)) * g[k] for k, v in p.items()}
            for k in p:
                out_params[k][part] = p[k]
            out_loss[part] = baseline.loss(p)
    return out_params, out_loss


BASELINES: dict[str, dict[str, Callable[..., _Baseline]]] = {
    "linear": {"numpy plain": LinearPlain, "numpy tuned": LinearTuned},
    "chapter_net": {"numpy plain": ChapterNet},
    "mlp": {"numpy plain": MLP},
}

# ------------------------------------------------------------------------------------------------
# torch, vectorized over configs (the plain formulations), when torch is importable
# ------------------------------------------------------------------------------------------------


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchBaseline:
    """A problem's plain formulation in torch: ``torch.autograd`` for autodiff, in-place nudges for forward."""

    name = "torch"

    def __init__(self, problem: str, dtype="float32"):
        torch = _torch()
        self.torch, self.problem = torch, problem
        self.dtype = getattr(torch, np.dtype(dtype).name)
        base = BASELINES[problem]["numpy plain"](np.dtype(dtype))
        self.np_base = base
        self.chunk = base.chunk
        t = lambda a: torch.as_tensor(np.asarray(a, np.dtype(dtype)))
        self.x, self.y = t(base.x), t(base.y)
        if problem == "mlp":
            self.width = base.width

    def init(self, n: int) -> dict:
        return {k: self.torch.as_tensor(v) for k, v in self.np_base.init(n).items()}

    def loss(self, p):
        torch, x, y = self.torch, self.x, self.y
        if self.problem == "linear":
            return ((p["w"][:, None] * x + p["b"][:, None] - y) ** 2).mean(dim=1)
        if self.problem == "chapter_net":
            pre = (x[None, :, :, None] * p["W1"][:, None, :, :]).sum(dim=2) + p["b1"][:, None, :]
            hidden = torch.sigmoid(pre)
            out = (hidden[:, :, :, None] * p["W2"][:, None, :, :]).sum(dim=2) + p["b2"][:, None, :]
            return ((out - y) ** 2).mean(dim=(1, 2))
        d = self.width
        hidden = torch.tanh(torch.matmul(x, p["W0"]) / math.sqrt(d))  # (N, e, d), batched matmul
        out = torch.matmul(hidden, p["Wout"])[:, :, 0] / d  # (N, e)
        return ((out - y) ** 2).mean(dim=1)

    def train(self, lr, params: dict, epochs: int, grad: str):
        torch = self.torch
        lr = torch.as_tensor(np.asarray(lr, self.np_base.dtype))
        n = lr.shape[0]
        step = self.chunk or n
        finals, losses = {k: [] for k in params}, []
        for start in range(0, n, step):
            p = {k: v[start : start + step].clone() for k, v in params.items()}
            rate = lr[start : start + step]
            for _ in range(epochs):
                if grad == "autodiff":
                    leaves = {k: v.requires_grad_(True) for k, v in p.items()}
                    g = dict(zip(leaves, torch.autograd.grad(self.loss(leaves).sum(), list(leaves.values()))))
                    p = {k: v.detach() for k, v in leaves.items()}
                else:
                    with torch.no_grad():
                        g = _torch_forward_difference(self.loss, p, H)
                with torch.no_grad():
                    p = {k: v - rate.reshape(-1, *(1,) * (v.dim() - 1)) * g[k] for k, v in p.items()}
            with torch.no_grad():
                losses.append(self.loss(p))
            for k in p:
                finals[k].append(p[k])
        return {k: torch.cat(v).numpy() for k, v in finals.items()}, torch.cat(losses).numpy()


def _torch_forward_difference(loss, params: dict, h) -> dict:
    base = loss(params)
    grads = {}
    for key, leaf in params.items():
        g = leaf.new_empty(leaf.shape)
        for idx in np.ndindex(tuple(leaf.shape[1:])):
            at = (slice(None), *idx)
            saved = leaf[at].clone()
            leaf[at] = saved + h
            g[at] = (loss(params) - base) / h
            leaf[at] = saved
        grads[key] = g
    return grads


# ------------------------------------------------------------------------------------------------
# The notebook loops: one config at a time, as the chapter's notebooks write it
# ------------------------------------------------------------------------------------------------


def notebook_update_weights(inputs, outputs, weights, lr, feed_forward):
    """One epoch of the notebook's forward-difference update (deepcopy, in-place ``+= 0.0001``)."""
    original_weights = deepcopy(weights)
    org_loss = feed_forward(inputs, outputs, original_weights)
    updated_weights = deepcopy(weights)
    for i, layer in enumerate(original_weights):
        for index, weight in np.ndenumerate(layer):
            temp_weights = deepcopy(weights)
            temp_weights[i][index] += 0.0001
            _loss_plus = feed_forward(inputs, outputs, temp_weights)
            grad = (_loss_plus - org_loss) / (0.0001)
            updated_weights[i][index] -= grad * lr
    return updated_weights, org_loss


def _lesson_feed_forward(inputs, outputs, weights):
    out = np.dot(inputs, weights[0]) + weights[1]
    return np.mean(np.square(out - outputs))


def _chapter_feed_forward(inputs, outputs, weights):
    pre_hidden = np.dot(inputs, weights[0]) + weights[1]
    hidden = 1 / (1 + np.exp(-pre_hidden))
    pred_out = np.dot(hidden, weights[2]) + weights[3]
    return np.mean(np.square(pred_out - outputs))


def _mlp_feed_forward(inputs, outputs, weights):
    width = inputs.shape[1]
    hidden = np.tanh(np.dot(inputs, weights[0]) / np.sqrt(width))
    return np.mean(np.square(np.dot(hidden, weights[1]) / width - outputs))


def _notebook_setup(problem: str):
    """``(inputs, outputs, initial weights list, feed_forward)`` of the notebook for ``problem``."""
    if problem == "linear":  # the lesson: Python int data, float32 weights
        return (
            [[1], [2], [3], [4]],
            [[3], [6], [9], [12]],
            [np.array([[0.0]], np.float32), np.array([[0.0]], np.float32)],
            _lesson_feed_forward,
        )
    if problem == "chapter_net":  # the back-propagation notebook
        p = problems.chapter_net()
        weights = [p.init["W1"], p.init["b1"], p.init["W2"], p.init["b2"]]
        return np.array([[1, 1]]), np.array([[0]]), [w.copy() for w in weights], _chapter_feed_forward
    p = problems.mlp(width=16)
    return p.x, p.y, [p.init["W0"].copy(), p.init["Wout"].copy()], _mlp_feed_forward


def notebook_train(problem: str, lr: float, epochs: int):
    """Train one config with the notebook's loop; returns ``(weights list, per-epoch losses)``."""
    inputs, outputs, weights, feed_forward = _notebook_setup(problem)
    losses = []
    for _ in range(epochs):
        weights, loss = notebook_update_weights(inputs, outputs, weights, lr, feed_forward)
        losses.append(loss)
    return weights, losses


# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------


def _rss() -> int:
    """Resident set size of this process in bytes (Linux); else the peak so far (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak growth of the process's RSS inside a ``with`` block, sampled by a thread every ``interval`` s."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval

    def __enter__(self):
        _trim()
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def measure(fn: Callable[[], object], repeat: int, long_s: float = 3.0) -> tuple[float, float, float]:
    """Best wall time of ``repeat`` calls (stopping early after a call longer than ``long_s``), the
    process CPU time of that call, and the peak RSS growth over the calls (MB)."""
    best, cpu, peak = math.inf, math.nan, 0.0
    for _ in range(max(1, repeat)):
        with PeakRSS() as mem:
            c = time.process_time()
            t = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - t
            c = time.process_time() - c
        del out
        if seconds < best:
            best, cpu = seconds, c
        peak = max(peak, mem.delta_mb)
        if seconds > long_s:
            break
    return best, cpu, peak


def machine(backends: list[str]) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    torch = _torch()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None,
        "lrsweep": __version__,
        "backends": backends,
        "devices": {b: [str(d) for d in jax.devices(b)] for b in backends},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def jax_backends() -> list[str]:
    """The JAX platforms with devices here, CPU first."""
    found = []
    for name in ("cpu", "gpu", "tpu"):
        try:
            if jax.devices(name):
                found.append(name)
        except RuntimeError:
            pass
    return found


# ------------------------------------------------------------------------------------------------
# The suite
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How one problem is benchmarked.

    ``cap`` bounds lrsweep's config-steps per case (per gradient); trajectories are also bounded by
    ``TRAJECTORY_BYTES`` of recorded values. ``lr`` is the log-spaced range of learning rates.
    """

    make: Callable[[], problems.Problem]
    sizes: tuple[int, ...]
    epochs: tuple[int, ...]
    cap: dict = field(default_factory=dict)
    lr: tuple[float, float] = (1e-4, 0.1)
    quick_sizes: tuple[int, ...] = (1, 1000)
    quick_epochs: tuple[int, ...] = (20,)


SPECS = {
    "linear": Spec(
        problems.linear,
        (1, 100, 10_000, 100_000, 1_000_000, 10_000_000),
        (100, 1000),
        {"autodiff": 2e9, "forward": 2e9},
        (1e-4, 0.1),
        (1, 1000, 100_000),
        (100,),
    ),
    "chapter_net": Spec(
        problems.chapter_net,
        (1, 100, 10_000, 100_000, 1_000_000),
        (10, 100),
        {"autodiff": 3e7, "forward": 1e7},
        (1e-3, 1.0),
        (1, 1000),
        (10,),
    ),
    "mlp": Spec(
        lambda: problems.mlp(width=16),
        (1, 100, 1000, 10_000),
        (2, 10),
        {"autodiff": 1e5, "forward": 2e3},
        (1e-2, 1.0),
        (1, 10),
        (2,),
    ),
}
#: The most bytes a trajectory case may record (loss and parameters per epoch per config).
TRAJECTORY_BYTES = 512 * 2**20
#: A baseline size is skipped when one epoch is predicted to take longer than this (seconds).
MAX_EPOCH_S = 8.0


class Suite:
    """Runs the cases. Per problem: the notebook loop, lrsweep's compile probes, then one size at a
    time every implementation back to back, so that a ratio compares measurements taken seconds
    apart (the machine's load drifts)."""

    def __init__(self, args):
        self.args = args
        self.rows: list[dict] = []
        self.skipped: list[str] = []
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def skip(self, msg: str) -> None:
        self.skipped.append(msg)
        self.log("skip: " + msg)

    def add(self, **row) -> dict:
        row["config_steps_per_s"] = row["configs"] * row["epochs"] / row["seconds"]
        for key in ("record", "compile_s", "chunk_size", "peak_mb", "backend", "cpu_s"):
            row.setdefault(key, None)
        self.rows.append(row)
        extra = f"  compile {row['compile_s']:.2f}s" if row["compile_s"] is not None else ""
        self.log(
            f"{row['problem']:<11} {row['impl']:<13} {row['backend'] or '':<6} {row['grad']:<8} "
            f"{row['record'] or '':<10} {row['configs']:>10,} x {row['epochs']:>5}  "
            f"{row['config_steps_per_s']:>15,.0f} config-steps/s  {row['peak_mb']:8.1f} MB{extra}"
        )
        return row

    def _adaptive(self, run: Callable[[int], object], max_epochs: int) -> tuple[int, float, float, float]:
        """Epochs that fit in ``target_s`` (from a one-epoch probe), then the timed run."""
        t = time.perf_counter()
        run(1)
        one = time.perf_counter() - t
        epochs = int(max(1, min(max_epochs, self.args.target_s / max(one, 1e-9))))
        seconds, cpu, peak = measure(lambda: run(epochs), self.args.repeat)
        return epochs, seconds, cpu, peak

    def _baselines(self, name: str) -> list[tuple[str, object, str]]:
        impls = []
        if "numpy" in self.args.impls:
            impls += [(label, make(), "numpy") for label, make in BASELINES[name].items()]
        if "torch" in self.args.impls:
            if _torch() is None:
                self.skip(f"{name} torch: torch is not importable")
            else:
                impls.append(("torch", TorchBaseline(name), "torch"))
        return impls

    def _baseline_case(self, name, spec, label, base, kind, grad, n, max_epochs, prev) -> None:
        key = (label, grad)
        # Predict one epoch's time from the last size run (linear in configs; sizes below 64 are
        # overhead, not a guide).
        if key in prev and prev[key][0] >= 64 and prev[key][1] * n / prev[key][0] > MAX_EPOCH_S:
            self.skip(
                f"{name} {label} {grad} {n:,} configs: one epoch would take about "
                f"{prev[key][1] * n / prev[key][0]:.0f} s"
            )
            return
        lr = np.geomspace(*spec.lr, n).astype(np.float32)
        params = base.init(n)
        if kind == "torch":
            run = lambda k: base.train(lr, params, k, grad)
        else:
            run = lambda k: numpy_train(base, lr, params, k, grad)
        e, seconds, cpu, peak = self._adaptive(run, max_epochs)
        prev[key] = (n, seconds / e)
        self.add(
            problem=name,
            impl=label,
            backend=kind,
            grad=grad,
            configs=n,
            epochs=e,
            seconds=seconds,
            cpu_s=cpu,
            peak_mb=peak,
        )

    def _lrsweep_plan(self, name, spec, problem, sizes, epochs) -> dict:
        """``{(backend, grad, record, epochs): [sizes]}`` within the caps."""
        args, plan = self.args, {}
        per_step = (gradients.n_elements(problem.init) + 1) * 4
        for backend in args.backends:
            for grad in args.grads:
                for record in args.records:
                    for e in epochs:
                        todo = []
                        for n in sizes:
                            cap = spec.cap[grad] * args.cap_scale
                            where = f"{name} lrsweep {backend} {grad} {record} {n:,} x {e:,}"
                            if n * e > cap:
                                self.skip(f"{where}: {n * e:.0e} config-steps > cap {cap:.0e}")
                            elif record == "trajectory" and n * (e + 1) * per_step > TRAJECTORY_BYTES * args.cap_scale:
                                self.skip(f"{where}: records more than {TRAJECTORY_BYTES // 2**20} MB")
                            else:
                                todo.append(n)
                        if todo:
                            plan[(backend, grad, record, e)] = todo
        return plan

    def _sweep_kw(self, name, grad, record, e) -> dict:
        chunks = self.args.chunk_size or {}
        return dict(
            epochs=e,
            grad=grad,
            precision="float32",
            record=record,
            progress=False,
            chunk_size=chunks.get(name, chunks.get(None)),
        )

    def _compile(self, name, spec, problem, plan) -> dict:
        """Compile time per static setting: a one-config sweep run twice, the difference."""
        compiled = {}
        for key in plan:
            backend, grad, record, e = key
            kw, one = self._sweep_kw(name, grad, record, e), np.array([spec.lr[0]], np.float32)
            try:
                with jax.default_device(jax.devices(backend)[0]):
                    t = time.perf_counter()
                    ds = api.sweep(problem, one, **kw)
                    first = time.perf_counter() - t
                    t = time.perf_counter()
                    api.sweep(problem, one, **kw)
                    again = time.perf_counter() - t
            except Exception as err:  # noqa: BLE001 - report the engine's failure and go on
                self.skip(f"{name} lrsweep {backend} {grad} {record} {e} epochs failed: {type(err).__name__}: {err}")
                continue
            compiled[key] = (max(0.0, first - again), int(ds.attrs["chunk_size"]))
            self.log(
                f"{name:<11} lrsweep {backend} {grad} {record} {e} epochs: compile {compiled[key][0]:.2f} s, "
                f"chunk {compiled[key][1]:,}"
            )
        return compiled

    def run(self) -> None:
        args = self.args
        for name in args.problems:
            spec = SPECS[name]
            sizes = sorted(args.sizes or (spec.quick_sizes if args.quick else spec.sizes))
            epochs = sorted(args.epochs or (spec.quick_epochs if args.quick else spec.epochs))
            problem = spec.make()
            if "notebook" in args.impls and "forward" in args.grads:
                lr = float(np.sqrt(spec.lr[0] * spec.lr[1]))
                e, seconds, cpu, peak = self._adaptive(lambda k: notebook_train(name, lr, k), max(epochs))
                self.add(
                    problem=name,
                    impl="notebook loop",
                    backend="python",
                    grad="forward",
                    configs=1,
                    epochs=e,
                    seconds=seconds,
                    cpu_s=cpu,
                    peak_mb=peak,
                )
            baselines = self._baselines(name)
            plan = self._lrsweep_plan(name, spec, problem, sizes, epochs) if "lrsweep" in args.impls else {}
            compiled = self._compile(name, spec, problem, plan)
            prev = {}
            for n in sizes:
                for grad in args.grads:
                    for label, base, kind in baselines:
                        self._baseline_case(name, spec, label, base, kind, grad, n, max(epochs), prev)
                    for key, todo in plan.items():
                        backend, g, record, e = key
                        if g != grad or n not in todo or key not in compiled:
                            continue
                        # A log space, as a user writes a big sweep (an explicit array of a million
                        # values costs lrsweep about 1.4 us per config to record in the result's spec).
                        lr = f"log:{spec.lr[0]:g}:{spec.lr[1]:g}:{n}"
                        kw = self._sweep_kw(name, grad, record, e)
                        try:
                            with jax.default_device(jax.devices(backend)[0]):
                                seconds, cpu, peak = measure(lambda: api.sweep(problem, lr, **kw), args.repeat)
                        except Exception as err:  # noqa: BLE001 - report the engine's failure and go on
                            self.skip(
                                f"{name} lrsweep {backend} {grad} {record} {n:,} x {e:,} failed: "
                                f"{type(err).__name__}: {err}"
                            )
                            continue
                        self.add(
                            problem=name,
                            impl="lrsweep",
                            backend=backend,
                            grad=grad,
                            record=record,
                            configs=n,
                            epochs=e,
                            seconds=seconds,
                            cpu_s=cpu,
                            compile_s=compiled[key][0],
                            chunk_size=compiled[key][1],
                            peak_mb=peak,
                        )


# ------------------------------------------------------------------------------------------------
# Ratios, targets and reports
# ------------------------------------------------------------------------------------------------

BASELINE_ORDER = ("notebook loop", "numpy plain", "numpy tuned", "torch")
#: The issue's targets (lesson problem, float32, summary record, CPU).
TARGETS = {
    "throughput": 1e9,
    "vs numpy plain": 60.0,
    "vs notebook loop": 40_000.0,
    "others vs numpy plain": 10.0,
    "compile_s": 5.0,
    "memory_growth": 0.25,
}


def _lrsweep_best(rows, problem, grad, backend, n=None, record="summary"):
    """The lrsweep row at ``n`` configs (default: the largest) with the most epochs."""
    cands = [
        r
        for r in rows
        if r["impl"] == "lrsweep"
        and r["problem"] == problem
        and r["grad"] == grad
        and r["backend"] == backend
        and r["record"] == record
        and (n is None or r["configs"] == n)
    ]
    if not cands:
        return None
    return max(cands, key=lambda r: (r["epochs"], r["configs"]))


def _baseline_rate(rows, problem, impl, grad, n):
    """A baseline's rate at ``n`` configs; the notebook loop's (one config, forward) at any ``n``."""
    for r in rows:
        if r["problem"] == problem and r["impl"] == impl:
            if impl == "notebook loop" and r["grad"] == "forward":
                return r["config_steps_per_s"]
            if r["grad"] == grad and r["configs"] == n:
                return r["config_steps_per_s"]
    return None


def ratios(rows: list[dict]) -> list[dict]:
    """lrsweep (summary, most epochs at each size) over every baseline at the same problem, gradient and size."""
    out = []
    keys = sorted(
        {
            (r["problem"], r["grad"], r["backend"], r["configs"])
            for r in rows
            if r["impl"] == "lrsweep" and r["record"] == "summary"
        },
        key=lambda k: (list(SPECS).index(k[0]) if k[0] in SPECS else 99, k[1], k[2], k[3]),
    )
    for problem, grad, backend, n in keys:
        ref = _lrsweep_best(rows, problem, grad, backend, n)
        entry = {
            "problem": problem,
            "grad": grad,
            "backend": backend,
            "configs": n,
            "epochs": ref["epochs"],
            "lrsweep": ref["config_steps_per_s"],
            "vs": {},
        }
        for impl in BASELINE_ORDER:
            rate = _baseline_rate(rows, problem, impl, grad, n)
            if rate:
                entry["vs"][impl] = ref["config_steps_per_s"] / rate
        out.append(entry)
    return out


def headline(rows: list[dict], problem: str, grad: str, backend: str):
    """The size a problem is judged at: the largest size run with the most epochs (the lesson: 1e6 x 1000)."""
    cands = [
        r
        for r in rows
        if r["impl"] == "lrsweep"
        and r["problem"] == problem
        and r["grad"] == grad
        and r["backend"] == backend
        and r["record"] == "summary"
    ]
    if not cands:
        return None
    top = max(r["epochs"] for r in cands)
    return max((r for r in cands if r["epochs"] == top), key=lambda r: r["configs"])


def _mem_check(rows, backend="cpu"):
    """Peak memory of the lesson's sweeps at one size, fewest vs most epochs: summary (the largest
    size run with two epoch counts) and, for contrast, trajectory."""
    out = []
    for grad in GRADS:
        for record in RECORDS:
            by_n = {}
            for r in rows:
                if (r["impl"], r["problem"], r["grad"], r["backend"], r["record"]) == (
                    "lrsweep",
                    "linear",
                    grad,
                    backend,
                    record,
                ):
                    by_n.setdefault(r["configs"], []).append(r)
            both = [n for n, rs in by_n.items() if len({r["epochs"] for r in rs}) >= 2]
            if both:
                rs = sorted(by_n[max(both)], key=lambda r: r["epochs"])
                out.append(
                    {
                        "grad": grad,
                        "record": record,
                        "configs": max(both),
                        "epochs": [rs[0]["epochs"], rs[-1]["epochs"]],
                        "peak_mb": [rs[0]["peak_mb"], rs[-1]["peak_mb"]],
                    }
                )
    return out


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets on the CPU backend: measured value, goal and whether it is met.

    ``kind`` says how to read ``value``: ``rate`` (config-steps/s), ``ratio``, ``seconds`` or
    ``memory`` (``[fewer epochs, more epochs]`` in MB).
    """
    out = []

    def add(what, kind, value, goal, met, note=""):
        out.append({"target": what, "kind": kind, "value": value, "goal": goal, "met": bool(met), "note": note})

    for grad in GRADS:
        ref = _lrsweep_best(rows, "linear", grad, "cpu", 1_000_000)
        if ref is None or ref["epochs"] < 1000:
            continue
        rate = ref["config_steps_per_s"]
        add(
            f"lesson {grad}: config-steps/s at 1e6 x {ref['epochs']:,}",
            "rate",
            rate,
            TARGETS["throughput"],
            rate >= TARGETS["throughput"],
        )
        for impl, key in (("numpy plain", "vs numpy plain"), ("notebook loop", "vs notebook loop")):
            base = _baseline_rate(rows, "linear", impl, grad, 1_000_000)
            if base:
                add(f"lesson {grad}: lrsweep / {impl}", "ratio", rate / base, TARGETS[key], rate / base >= TARGETS[key])
        base = _baseline_rate(rows, "linear", "numpy tuned", grad, 1_000_000)
        if base:
            add(f"lesson {grad}: lrsweep / numpy tuned", "ratio", rate / base, None, True, "no target; for reference")
    for problem in ("chapter_net", "mlp"):
        for grad in GRADS:
            ref = headline(rows, problem, grad, "cpu")
            if ref is None:
                continue
            base = _baseline_rate(rows, problem, "numpy plain", grad, ref["configs"])
            if base:
                ratio = ref["config_steps_per_s"] / base
                goal = TARGETS["others vs numpy plain"]
                add(
                    f"{problem} {grad}: lrsweep / numpy plain at {ref['configs']:,} x {ref['epochs']:,}",
                    "ratio",
                    ratio,
                    goal,
                    ratio >= goal,
                )
    comp = [r for r in rows if r["impl"] == "lrsweep" and r["problem"] == "linear" and r["backend"] == "cpu"]
    if comp:
        worst = max(comp, key=lambda r: r["compile_s"])
        add(
            "lesson: compile time, worst static setting",
            "seconds",
            worst["compile_s"],
            TARGETS["compile_s"],
            worst["compile_s"] < TARGETS["compile_s"],
            f"{worst['grad']}, {worst['record']}, {worst['epochs']:,} epochs",
        )
    for m in _mem_check(rows):
        a, b = m["peak_mb"]
        what = (
            f"lesson {m['grad']}: {m['record']} memory at {m['configs']:,} configs, "
            f"{m['epochs'][0]:,} vs {m['epochs'][1]:,} epochs"
        )
        if m["record"] == "summary":
            add(
                what,
                "memory",
                [a, b],
                "independent of epochs",
                abs(b - a) <= max(TARGETS["memory_growth"] * a, 16.0),
                "peak RSS growth during the sweep",
            )
        else:
            add(what, "memory", [a, b], None, True, "no target; grows with epochs, for contrast")
    return out


def _fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _fmt_ratio(v: float) -> str:
    return f"{v:,.1f}x" if v < 1000 else f"{v:,.0f}x"


def markdown(result: dict) -> str:
    m = result["machine"]
    a = result["args"]
    lines = [
        f"# lrsweep benchmark: {result['name']} ({m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB; {m['platform']}; JAX backends "
        f"{', '.join(m['backends'])} ({'; '.join(d for ds in m['devices'].values() for d in ds)}).",
        f"Versions: python {m['python']}, jax {m['jax']}, numpy {m['numpy']}, "
        f"torch {m['torch'] + ' (' + str(m['torch_threads']) + ' threads)' if m['torch'] else 'not installed'}, "
        f"lrsweep {m['lrsweep']}.",
        f"Command: `lrsweep bench {' '.join(result['argv'])}`; total {result['total_s']:.0f} s.",
        "",
        "Unit: config-steps/s (one config trained for one epoch), float32. All numbers come from one process; "
        "compare ratios, not absolute numbers, across machines. numpy, torch and the notebook loop cost the same "
        "per config-step whatever the number of epochs, so they run as many epochs as fit in "
        f"{a['target_s']} s. `compile` is the first call's extra time with the same static settings; "
        "`peak MB` the growth of the process's resident memory during the call; `CPU use` the process's CPU "
        "seconds per wall second in it (about 1 for one busy core; lower when the shared machine is loaded).",
        "",
    ]
    targets_ = result["targets"]
    if targets_:
        lines += [
            "## Targets (lesson problem, float32, summary, CPU)",
            "",
            "| target | measured | goal | met |",
            "|---|---:|---:|:---:|",
        ]
        for t in targets_:
            v, g, kind = t["value"], t["goal"], t["kind"]
            if kind == "rate":
                vs, gs = _fmt_rate(v), f">= {g:,.0f}"
            elif kind == "ratio":
                vs, gs = _fmt_ratio(v), "-" if g is None else f">= {_fmt_ratio(g)}"
            elif kind == "seconds":
                vs, gs = f"{v:.2f} s", f"< {g:g} s"
            else:
                vs, gs = f"{v[0]:.1f} vs {v[1]:.1f} MB", g or "-"
            note = f" ({t['note']})" if t["note"] else ""
            met = "-" if g is None else "yes" if t["met"] else "**no**"
            lines.append(f"| {t['target']}{note} | {vs} | {gs} | {met} |")
        lines.append("")
    lines += [
        "## Ratios: lrsweep (summary, most epochs run at that size) / baseline, same problem, gradient and size",
        "",
        "| problem | gradient | backend | configs | epochs | lrsweep config-steps/s | "
        + " | ".join(f"/ {b}" for b in BASELINE_ORDER)
        + " |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(BASELINE_ORDER),
    ]
    for r in result["ratios"]:
        cells = " | ".join(_fmt_ratio(r["vs"][b]) if b in r["vs"] else "" for b in BASELINE_ORDER)
        lines.append(
            f"| {r['problem']} | {r['grad']} | {r['backend']} | {r['configs']:,} | {r['epochs']:,} | "
            f"{_fmt_rate(r['lrsweep'])} | {cells} |"
        )
    lines.append("")
    for problem in dict.fromkeys(r["problem"] for r in result["rows"]):
        lines += [
            f"## {problem}",
            "",
            "| implementation | backend | gradient | record | configs | epochs | "
            "config-steps/s | compile (s) | chunk | peak MB | CPU use |",
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            if r["problem"] != problem:
                continue
            comp = "" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
            chunk = "" if r["chunk_size"] is None else f"{r['chunk_size']:,}"
            use = "" if r["cpu_s"] is None else f"{r['cpu_s'] / r['seconds']:.2f}"
            lines.append(
                f"| {r['impl']} | {r['backend']} | {r['grad']} | {r['record'] or ''} | {r['configs']:,} | "
                f"{r['epochs']:,} | {_fmt_rate(r['config_steps_per_s'])} | {comp} | {chunk} | {r['peak_mb']:.1f} "
                f"| {use} |"
            )
        lines.append("")
    if result["skipped"]:
        lines += ["## Skipped", ""] + [f"- {s}" for s in result["skipped"]] + [""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Throughput against configs, log-log: one panel per (problem, gradient), one line per implementation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = result["rows"]
    probs = list(dict.fromkeys(r["problem"] for r in rows))
    grads = [g for g in GRADS if any(r["grad"] == g for r in rows)]
    fig, axes = plt.subplots(len(probs), len(grads), figsize=(6.2 * len(grads), 4.3 * len(probs)), squeeze=False)
    styles = {
        "notebook loop": ("tab:gray", "s"),
        "numpy plain": ("tab:blue", "o"),
        "numpy tuned": ("tab:cyan", "D"),
        "torch": ("tab:orange", "^"),
    }
    lr_colors = iter(["tab:red", "tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive"] * 4)
    lr_color = {}
    for i, problem in enumerate(probs):
        for j, grad in enumerate(grads):
            ax = axes[i][j]
            sel = [r for r in rows if r["problem"] == problem and (r["grad"] == grad or r["impl"] == "notebook loop")]
            ns = [r["configs"] for r in sel] or [1]
            lo, hi = min(ns), max(ns)
            for impl, (color, marker) in styles.items():
                rs = sorted((r for r in sel if r["impl"] == impl), key=lambda r: r["configs"])
                if not rs:
                    continue
                if impl == "notebook loop":  # one config; a loop over N configs runs at the same rate
                    ax.plot([lo, max(hi, 2 * lo)], [rs[0]["config_steps_per_s"]] * 2, ls=":", color=color)
                    ax.plot(
                        [1],
                        [rs[0]["config_steps_per_s"]],
                        marker=marker,
                        color=color,
                        ls="",
                        label="notebook loop, forward (one config; dotted: looped)",
                    )
                    continue
                ax.plot(
                    [r["configs"] for r in rs],
                    [r["config_steps_per_s"] for r in rs],
                    marker=marker,
                    color=color,
                    label=impl,
                )
            series = sorted(
                {(r["backend"], r["record"], r["epochs"]) for r in sel if r["impl"] == "lrsweep"},
                key=lambda k: (k[0], k[1], -k[2]),
            )
            for backend, record, epochs in series:
                rs = sorted(
                    (
                        r
                        for r in sel
                        if r["impl"] == "lrsweep"
                        and r["backend"] == backend
                        and r["record"] == record
                        and r["epochs"] == epochs
                    ),
                    key=lambda r: r["configs"],
                )
                key = (backend, epochs)
                if key not in lr_color:
                    lr_color[key] = next(lr_colors)
                ax.plot(
                    [r["configs"] for r in rs],
                    [r["config_steps_per_s"] for r in rs],
                    marker="*" if record == "summary" else "x",
                    ms=8 if record == "summary" else 6,
                    ls="-" if record == "summary" else "--",
                    lw=2 if record == "summary" else 1.2,
                    color=lr_color[key],
                    label=f"lrsweep {backend} {record}, {epochs:,} epochs",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{problem}, {grad} gradient")
            ax.set_xlabel("configs trained at once (N)")
            ax.set_ylabel("config-steps / s")
            ax.grid(True, which="major", alpha=0.4)
            ax.grid(True, which="minor", alpha=0.1)
            ax.legend(fontsize=7, loc="best")
    m = result["machine"]
    fig.suptitle(
        f"lrsweep benchmark: throughput vs configs, float32 ({m['cpu']}, {m['cores']} cores; "
        f"jax {m['jax']}, {m['date'][:10]})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def default_out() -> Path:
    """``benchmarks/results`` of a source checkout, else ``./lrsweep-bench``."""
    repo = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
    return repo if repo.is_dir() else Path("lrsweep-bench")


def default_name(backends: list[str], quick: bool) -> str:
    m = machine(backends)
    cpu = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$", "", m["cpu"].lower())
    cpu = re.sub(r"[^a-z0-9]+", "-", cpu).strip("-") or "machine"
    return f"{cpu}-{m['cores']}c-{'-'.join(backends)}" + ("-quick" if quick else "")


def _list(kind, choices=None):
    def parse(text: str):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if kind is int:
            try:
                values = [int(float(s)) for s in items]
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a list of integers like 1,1e4,1e6, got {text!r}") from None
            if any(v < 1 for v in values):
                raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
            return values
        bad = [s for s in items if choices and s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a list from {list(choices)}, got {text!r}")
        return items

    return parse


def _chunks(text: str) -> dict:
    """``"4096"`` -> ``{None: 4096}`` (every problem); ``"mlp=16,linear=4096"`` -> per problem."""
    out = {}
    try:
        for item in (s.strip() for s in text.split(",") if s.strip()):
            name, _, value = item.rpartition("=")
            if name and name not in SPECS:
                raise ValueError(name)
            out[name or None] = int(float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N or PROBLEM=N[,PROBLEM=N...] with problems from {list(SPECS)}, got {text!r}"
        ) from None
    if not out or min(out.values()) < 1:
        raise argparse.ArgumentTypeError(f"expected chunk sizes >= 1, got {text!r}")
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lrsweep bench", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a small subset that runs in well under a minute (CI)")
    p.add_argument("--problems", type=_list(str, list(SPECS)), default=list(SPECS), help="linear,chapter_net,mlp")
    p.add_argument("--sizes", type=_list(int), default=None, help="configs, e.g. 1,1e4,1e6 (default: per problem)")
    p.add_argument(
        "--epochs", type=_list(int), default=None, help="lrsweep epoch counts, e.g. 100,1000 (default: per problem)"
    )
    p.add_argument("--grads", type=_list(str, GRADS), default=list(GRADS))
    p.add_argument("--records", type=_list(str, RECORDS), default=list(RECORDS))
    p.add_argument("--impls", type=_list(str, IMPLS), default=list(IMPLS), help="notebook,numpy,torch,lrsweep")
    p.add_argument(
        "--backends",
        type=_list(str, ("cpu", "gpu", "tpu")),
        default=None,
        help="JAX backends (default: every one available)",
    )
    p.add_argument("--repeat", type=int, default=None, help="timed calls per case, best kept (default 2; quick 1)")
    p.add_argument(
        "--target-s",
        type=float,
        default=None,
        help="seconds a baseline case aims at, choosing its epochs (default 0.3; quick 0.05)",
    )
    p.add_argument("--cap-scale", type=float, default=1.0, help="scale the per-problem config-step caps")
    p.add_argument(
        "--chunk-size",
        type=_chunks,
        default=None,
        help="lrsweep configs per compiled chunk: N for every problem, or per problem 'mlp=16,linear=4096' "
        "(default: lrsweep's own choice)",
    )
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results of a checkout)")
    p.add_argument("--name", default=None, help="file stem (default: <cpu>-<cores>c-<backends>[-quick])")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def run(argv=None) -> dict:
    """Run the suite; write JSON, Markdown and PNG; return the result dict (with ``paths``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    available = jax_backends()
    if args.backends is None:
        args.backends = available
    missing = [b for b in args.backends if b not in available]
    if missing:
        raise SystemExit(f"lrsweep bench: error: backend {missing} is not available here (available: {available})")
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    args.target_s = args.target_s if args.target_s is not None else (0.05 if args.quick else 0.3)
    if args.torch_threads is not None and _torch() is not None:
        _torch().set_num_threads(args.torch_threads)
    out = args.out or default_out()
    name = args.name or default_name(args.backends, args.quick)
    suite = Suite(args)
    suite.run()
    result = {
        "name": name,
        "argv": argv,
        "machine": machine(args.backends),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_s": time.perf_counter() - suite.t0,
        "rows": suite.rows,
        "skipped": suite.skipped,
    }
    result["ratios"] = ratios(suite.rows)
    result["targets"] = targets(suite.rows)
    result["memory"] = _mem_check(suite.rows)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "markdown": out / f"{name}.md"}
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    paths["markdown"].write_text(markdown(result))
    if not args.no_plot and suite.rows:
        paths["png"] = out / f"{name}.png"
        plot(result, paths["png"])
    result["paths"] = {k: str(v) for k, v in paths.items()}
    suite.log("wrote " + ", ".join(result["paths"].values()))
    return result


def main(argv=None) -> int:
    """``lrsweep bench``: run the suite, print the Markdown report; exit status 0."""
    result = run(argv)
    print(Path(result["paths"]["markdown"]).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
