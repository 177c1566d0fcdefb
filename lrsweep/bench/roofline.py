"""Roofline numbers: this machine's measured peaks, and the work of one config-step.

Peaks are measured in the same run as the suite, on each JAX backend: a float32 matrix product
(``jnp.dot`` of two ``N x N`` matrices, ``2 N^3`` FLOPs, ``Precision.HIGHEST`` so a GPU does true
float32 rather than TF32) and a memory-bandwidth copy of a large float32 array, one read and one write
per element (on CPU ``numpy.copyto`` between preallocated arrays; on an accelerator ``y = 2 x``). Each is the median of 3 timed calls after a warm-up.

The work of one config-step comes from XLA's cost analysis (``jax.jit(...).lower(...).compile()
.cost_analysis()``) of one epoch of the problem's update, written here from the problem's loss (the
same algorithm as the engine: the mean per-example loss, its gradient by ``jax.grad`` or the forward
difference, a gradient-descent step), vmapped over the sweep's real chunk and divided by the chunk:
FLOPs and bytes accessed per config-step. The bytes are those of one epoch's pass over the chunk in
memory, an upper bound on the traffic of a program that keeps configs on chip across epochs: a
bytes fraction above 100% means the configs' state stays in cache or registers across epochs (the
engine fuses several epochs per loop iteration), i.e. the case is not bound by memory bandwidth.
"""

from __future__ import annotations

import statistics
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .baselines import H


def _median_s(fn, *args, repeat: int = 3) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peaks(backend: str, matmul_n: int = 2048, copy_elems: int | None = None) -> dict:
    """``{"matmul_flops_per_s", "copy_bytes_per_s", ...}`` measured on ``backend``'s first device."""
    device = jax.devices(backend)[0]
    copy_elems = copy_elems or (2**25 if backend == "cpu" else 2**28)
    key = jax.random.PRNGKey(0)
    a = jax.device_put(jax.random.normal(key, (matmul_n, matmul_n), jnp.float32), device)
    b = jax.device_put(jax.random.normal(jax.random.split(key)[0], (matmul_n, matmul_n), jnp.float32), device)
    dot = jax.jit(lambda u, v: jnp.dot(u, v, precision=jax.lax.Precision.HIGHEST))
    t_dot = _median_s(dot, a, b)
    del a, b
    if backend == "cpu":  # a copy between preallocated arrays: no page faults of fresh buffers timed
        src, dst = np.ones(copy_elems, np.float32), np.zeros(copy_elems, np.float32)
        t_copy = _median_s(lambda: np.copyto(dst, src))
        del src, dst
    else:
        x = jax.device_put(jnp.ones((copy_elems,), jnp.float32), device)
        t_copy = _median_s(jax.jit(lambda v: v * 2.0), x)
        del x
    return {
        "matmul_n": matmul_n,
        "matmul_flops_per_s": 2 * matmul_n**3 / t_dot,
        "copy_bytes": 2 * 4 * copy_elems,
        "copy_bytes_per_s": 2 * 4 * copy_elems / t_copy,
    }


def _cost_dict(compiled) -> dict:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per computation
        cost = cost[0] if cost else {}
    return dict(cost or {})


def epoch_fn(problem, grad: str):
    """One epoch of gradient descent for a chunk of configs: ``(params, lr) -> (params, loss)``."""
    x = jnp.asarray(np.asarray(problem.x), jnp.float32)
    y = jnp.asarray(np.asarray(problem.y), jnp.float32)

    def loss(p):
        return jnp.mean(jax.vmap(lambda xi, yi: problem.loss(p, xi, yi))(x, y))

    def step(p, lr):
        if grad == "autodiff":
            value, g = jax.value_and_grad(loss)(p)
        else:
            flat, unravel = ravel_pytree(p)
            value = loss(p)
            nudged = jax.vmap(lambda e: loss(unravel(flat + jnp.float32(H) * e)))(jnp.eye(flat.size, dtype=flat.dtype))
            g = unravel((nudged - value) / jnp.float32(H))
        return jax.tree.map(lambda a, b: a - lr * b, p, g), value

    return jax.vmap(step)


@lru_cache(maxsize=64)
def _cost_cached(name: str, problem, grad: str, chunk: int, backend: str) -> dict:
    init = jax.tree.map(lambda v: np.asarray(v, np.float32), problem.init)
    params = jax.tree.map(lambda v: jax.ShapeDtypeStruct((chunk, *v.shape), jnp.float32), init)
    lr = jax.ShapeDtypeStruct((chunk,), jnp.float32)
    with jax.default_device(jax.devices(backend)[0]):
        compiled = jax.jit(epoch_fn(problem, grad)).lower(params, lr).compile()
    cost = _cost_dict(compiled)
    flops, nbytes = cost.get("flops"), cost.get("bytes accessed")
    return {
        "flops_per_config_step": None if flops is None or flops < 0 else float(flops) / chunk,
        "bytes_per_config_step": None if nbytes is None or nbytes < 0 else float(nbytes) / chunk,
    }


def cost_per_config_step(name: str, problem, grad: str, chunk: int, backend: str) -> dict:
    """FLOPs and bytes per config-step from XLA's cost analysis (``None`` where XLA gives none)."""
    try:
        return _cost_cached(name, problem, grad, int(chunk), backend)
    except Exception:  # noqa: BLE001 - a missing cost analysis leaves the columns empty, not the suite
        return {"flops_per_config_step": None, "bytes_per_config_step": None}


def fractions(case: dict, peak: dict | None) -> dict:
    """The achieved fraction of the measured peaks: ``flops/cs * rate / peak`` and the same for bytes."""
    out = {"flops_fraction": None, "bytes_fraction": None}
    if not peak:
        return out
    rate = case["config_steps_per_s"]
    if case.get("flops_per_config_step"):
        out["flops_fraction"] = case["flops_per_config_step"] * rate / peak["matmul_flops_per_s"]
    if case.get("bytes_per_config_step"):
        out["bytes_fraction"] = case["bytes_per_config_step"] * rate / peak["copy_bytes_per_s"]
    return out
