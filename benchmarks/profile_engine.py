"""Where lrsweep's time goes: measured variants of the engine's tuning knobs, in one process.

Each experiment times ``lrsweep.sweep(..., record="summary")`` for a few variants back to back
(best of ``--repeat``, variants interleaved per repeat so that the shared machine's drifting load
hits them alike) and prints config-steps/s and the ratio to the first (current) variant:

- ``chunk``: ``sweep(..., chunk_size=C)`` for several C (the default is ``api._chunk_size``'s);
- ``unroll-scan``: ``engine.UNROLL_SCAN`` (epochs per iteration of the compiled loop);
- ``chapter-elementwise``: ``chapter_net`` as built in (``x @ W1``, ``hidden @ W2``) against the same
  math written as unrolled scalar products (no ``dot_general`` under ``vmap``);
- ``small-contractions``: the same done generically: ``unroll_small_contractions(loss)`` rewrites any
  per-example loss's ``dot_general`` and ``reduce_sum`` over at most 8 elements into products and a
  left-to-right sum (a jaxpr interpreter; a prototype of an engine-level fix);
- ``mlp-unroll``: ``gradients.UNROLL_PARAMS`` (finite-difference probes written out) raised above
  ``mlp``'s 272, and chunk sizes. (``engine.UNROLL_MAX=512``, all 272 examples summed term by term,
  is left out: its compile ran for minutes and was killed for memory on a 2-core, 23 GiB machine);
- ``hlo``: the optimized HLO of ``engine.run_chunk`` for a problem (``--problem``), with a count
  of its ``dot``, ``reduce`` and ``fusion`` ops, written to ``--hlo-out``.

Module constants are patched in this process only (with ``jax.clear_caches()`` so that the
engine retraces); no file is changed.

    python benchmarks/profile_engine.py chunk --problem linear --configs 1000000 --epochs 1000
    python benchmarks/profile_engine.py chapter-elementwise
    python benchmarks/profile_engine.py hlo --problem chapter_net --grad autodiff
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np

import lrsweep
from lrsweep import engine, gradients

if TYPE_CHECKING:
    from lrsweep.types import GradName


PROBLEMS = {
    "linear": lrsweep.problems.linear,
    "chapter_net": lrsweep.problems.chapter_net,
    "mlp": lambda: lrsweep.problems.mlp(width=16),
}
LR = {"linear": (1e-4, 0.1), "chapter_net": (1e-3, 1.0), "mlp": (1e-2, 1.0)}


@contextlib.contextmanager
def patched(module, **values):
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    jax.clear_caches()
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)
        jax.clear_caches()


def compare(variants: dict, problem_name: str, configs: int, epochs: int, grad: str, repeat: int) -> None:
    """``variants``: name -> (context manager factory, problem factory, sweep kwargs)."""
    # A log space, not an array: lrsweep records an explicit array in the result's spec (JSON),
    # about 1.4 us per config, which would hide the engine's own differences.
    lo, hi = LR[problem_name]
    lr = f"log:{lo:g}:{hi:g}:{configs}"
    best = {k: float("inf") for k in variants}
    compile_s, failed = {}, {}
    for r in range(repeat):
        for name, (ctx, make, kw) in variants.items():
            if name in failed:
                continue
            problem = make()
            try:
                run_variant(ctx, problem, lr, epochs, grad, kw, r, name, best, compile_s)
            except Exception as err:  # noqa: BLE001 - report and go on
                failed[name] = f"{type(err).__name__}: {err}"
    base = None
    print(f"\n{problem_name}, {grad}, {configs:,} configs x {epochs:,} epochs (summary, best of {repeat})")
    for name, seconds in best.items():
        if name in failed:
            print(f"  {name:<44} failed: {failed[name][:150]}")
            continue
        rate = configs * epochs / seconds
        base = base or rate
        print(f"  {name:<44} {rate:>15,.0f} config-steps/s  {rate / base:6.2f}x  compile {compile_s[name]:5.2f} s")


def run_variant(ctx, problem, lr, epochs, grad, kw, r, name, best, compile_s) -> None:
    """One timed sweep of a variant; on the first round also its compile time (a one-config sweep run twice)."""
    with ctx():
        args: dict[str, Any] = dict(epochs=epochs, grad=grad, record="summary", progress=False, **kw)
        one = [float(lr.split(":")[1])]
        t = time.perf_counter()
        lrsweep.sweep(problem, one, **args)  # after clear_caches this retraces
        first = time.perf_counter() - t
        if r == 0:
            t = time.perf_counter()
            lrsweep.sweep(problem, one, **args)
            compile_s[name] = first - (time.perf_counter() - t)
        t = time.perf_counter()
        lrsweep.sweep(problem, lr, **args)
        best[name] = min(best[name], time.perf_counter() - t)


def nothing() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def _chapter_elementwise_loss(params, x, y):
    # The chapter's network, every product written out: no dot_general under vmap.
    w1, b1, w2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    out = b2[0]
    for j in range(3):
        pre = x[0] * w1[0, j] + x[1] * w1[1, j] + b1[j]
        out = out + (1 / (1 + jnp.exp(-pre))) * w2[j, 0]
    return (out - y[0]) ** 2


def chapter_elementwise() -> lrsweep.Problem:
    p = lrsweep.problems.chapter_net()
    return lrsweep.Problem(
        name="chapter_net_elementwise", loss=_chapter_elementwise_loss, x=p.x, y=p.y, init=p.init, min_loss=p.min_loss
    )


# -- a generic rewrite: small contractions written out, for any per-example loss ----------------
#
# What an engine-level fix could look like: trace the per-example loss to a jaxpr and evaluate it
# with every dot_general and reduce_sum over at most ``max_k`` elements replaced by products and a
# left-to-right sum. Under the engine's vmap these become elementwise operations that XLA fuses
# into the epoch, instead of a dot/reduce per epoch (chapter_net: x @ W1, hidden @ W2, mean).


def _sum_terms(terms):
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _small_dot(lhs, rhs, dimension_numbers, max_k):
    (lc, rc), (lb, rb) = dimension_numbers
    k = int(np.prod([lhs.shape[a] for a in lc], dtype=int))
    if lb or rb or k > max_k:
        return None
    lfree = [a for a in range(lhs.ndim) if a not in lc]
    rfree = [a for a in range(rhs.ndim) if a not in rc]
    l2 = jnp.transpose(lhs, lfree + list(lc)).reshape(-1, k)
    r2 = jnp.transpose(rhs, list(rc) + rfree).reshape(k, -1)
    out = _sum_terms([l2[:, i][:, None] * r2[i][None, :] for i in range(k)])
    return out.reshape([lhs.shape[a] for a in lfree] + [rhs.shape[a] for a in rfree])


def _small_sum(x, axes, max_k):
    k = int(np.prod([x.shape[a] for a in axes], dtype=int))
    if k > max_k:
        return None
    keep = [a for a in range(x.ndim) if a not in axes]
    flat = jnp.transpose(x, keep + list(axes)).reshape([x.shape[a] for a in keep] + [k])
    return _sum_terms([flat[..., i] for i in range(k)])


def _eval(jaxpr, consts, args, max_k):
    from jax.extend import core as jcore

    env = {}
    read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name, out = eqn.primitive.name, None
        if name == "dot_general":
            out = _small_dot(ins[0], ins[1], eqn.params["dimension_numbers"], max_k)
            if out is not None:
                out = out.astype(eqn.outvars[0].aval.dtype)
        elif name == "reduce_sum":
            out = _small_sum(ins[0], eqn.params["axes"], max_k)
        elif name in ("pjit", "jit", "closed_call", "custom_jvp_call"):
            inner = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
            outs = _eval(inner.jaxpr, inner.consts, ins, max_k)
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
            continue
        if out is None:
            out = eqn.primitive.bind(*ins, **eqn.params)
        if eqn.primitive.multiple_results:
            for v, o in zip(eqn.outvars, out):
                env[v] = o
        else:
            env[eqn.outvars[0]] = out
    return [read(v) for v in jaxpr.outvars]


def unroll_small_contractions(loss, max_k: int = 8):
    """``loss`` with its dot_generals and sums over at most ``max_k`` elements written out."""

    def unrolled(params, x, y):
        flat, tree = jax.tree.flatten((params, x, y))
        closed = jax.make_jaxpr(lambda *a: loss(*jax.tree.unflatten(tree, a)))(*flat)
        return _eval(closed.jaxpr, closed.consts, flat, max_k)[0]

    return unrolled


def rewritten(make):
    def problem():
        p = make()
        return lrsweep.Problem(
            name=p.name + "_unrolled",
            loss=_cached_rewrite(p.loss),
            x=p.x,
            y=p.y,
            init=p.init,
            min_loss=p.min_loss,
            sampler=p.sampler,
        )

    return problem


_REWRITES = {}


def _cached_rewrite(loss):
    # One wrapper per loss, so that lrsweep's jit cache (keyed by the loss's identity) is reused.
    return _REWRITES.setdefault(loss, unroll_small_contractions(loss))


def hlo(problem_name: str, grad: str, epochs: int, out: Path, chunk: int | None) -> None:
    captured = {}
    original = engine.run_chunk

    def spy(*a, **k):
        captured["a"], captured["k"] = a, k
        return original(*a, **k)

    engine.run_chunk = spy
    try:
        lrsweep.sweep(
            PROBLEMS[problem_name](),
            [0.01],
            epochs=epochs,
            grad=cast("GradName", grad),
            record="summary",
            progress=False,
            chunk_size=chunk,
        )
    finally:
        engine.run_chunk = original
    text = original.lower(*captured["a"], **captured["k"]).compile().as_text()
    assert text is not None  # XLA:CPU gives the HLO text
    out.write_text(text)
    counts = {
        op: len(re.findall(rf"\s{op}\(", text))
        for op in ("dot", "reduce", "fusion", "while", "exponential", "tanh", "copy", "transpose")
    }
    print(f"{problem_name} {grad}: {len(text.splitlines())} lines of HLO in {out}; ops: {counts}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "experiment", choices=["chunk", "unroll-scan", "chapter-elementwise", "small-contractions", "mlp-unroll", "hlo"]
    )
    p.add_argument("--problem", default="linear", choices=list(PROBLEMS))
    p.add_argument("--grad", default=None, choices=["autodiff", "forward"])
    p.add_argument("--configs", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--chunks", default="1024,4096,16384,65536,262144")
    p.add_argument("--chunk-size", type=int, default=None, help="for hlo")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--hlo-out", type=Path, default=Path("/tmp"))
    a = p.parse_args(argv)
    grads = [a.grad] if a.grad else ["autodiff", "forward"]

    if a.experiment == "hlo":
        for g in grads:
            hlo(a.problem, g, a.epochs or 100, a.hlo_out / f"{a.problem}-{g}.hlo.txt", a.chunk_size)
        return
    if a.experiment == "chunk":
        configs, epochs = a.configs or 262_144, a.epochs or 100
        for g in grads:
            variants = {"default chunk": (nothing, PROBLEMS[a.problem], {})}
            for c in (int(v) for v in a.chunks.split(",")):
                variants[f"chunk_size={c}"] = (nothing, PROBLEMS[a.problem], {"chunk_size": c})
            compare(variants, a.problem, configs, epochs, g, a.repeat)
    elif a.experiment == "unroll-scan":
        configs, epochs = a.configs or 1_000_000, a.epochs or 200
        for g in grads:
            variants = {
                f"UNROLL_SCAN={k}": ((lambda k=k: patched(engine, UNROLL_SCAN=k)), PROBLEMS[a.problem], {})
                for k in (engine.UNROLL_SCAN, 1, 2, 8)
            }
            compare(variants, a.problem, configs, epochs, g, a.repeat)
    elif a.experiment == "chapter-elementwise":
        configs, epochs = a.configs or 262_144, a.epochs or 100
        for g in grads:
            variants = {
                "chapter_net (x @ W1, hidden @ W2)": (nothing, PROBLEMS["chapter_net"], {}),
                "same loss, products written out": (nothing, chapter_elementwise, {}),
            }
            for c in (4096, 65536):
                variants[f"written out, chunk_size={c}"] = (nothing, chapter_elementwise, {"chunk_size": c})
            compare(variants, "chapter_net", configs, epochs, g, a.repeat)
    elif a.experiment == "small-contractions":
        configs, epochs = a.configs or 262_144, a.epochs or 100
        for g in grads:
            variants = {
                "chapter_net as built in": (nothing, PROBLEMS["chapter_net"], {}),
                "unroll_small_contractions(loss)": (nothing, rewritten(PROBLEMS["chapter_net"]), {}),
                "products written out by hand": (nothing, chapter_elementwise, {}),
            }
            compare(variants, "chapter_net", configs, epochs, g, a.repeat)
    elif a.experiment == "mlp-unroll":
        for g in grads:
            configs, epochs = a.configs or (4096 if g == "autodiff" else 64), a.epochs or 10
            small = {"chunk_size": 8}  # api's smallest chunk (MIN_CHUNK); its default for mlp is 1 to 8
            variants = {"chunk_size=8": (nothing, PROBLEMS["mlp"], small)}
            if g == "forward":
                variants["UNROLL_PARAMS=512 (probes written out)"] = (
                    lambda: patched(gradients, UNROLL_PARAMS=512),
                    PROBLEMS["mlp"],
                    small,
                )
            for c in (64, 512):
                variants[f"chunk_size={c}"] = (nothing, PROBLEMS["mlp"], {"chunk_size": c})
            compare(variants, "mlp", configs, epochs, g, a.repeat)


if __name__ == "__main__":
    main()
