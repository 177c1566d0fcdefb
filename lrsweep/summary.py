"""What ``lrsweep run`` and ``lrsweep show`` say about a sweep: the summary table, the outcome
counts, the JSON facts, the suggested and critical learning rates, the time line and the plot.

Each function takes a result ``xarray.Dataset`` (in memory or a store opened lazily) and streams
over blocks of its first dim where it reads every config, so a store larger than memory is
summarised too. The command line itself (parsers, dispatch) is ``lrsweep.cli``.
"""

from __future__ import annotations

import json

import jax
import numpy as np

from . import answer, optimizers, outcomes, plan, problems, results, suggest, theory


def table(ds, block: int = 2**22, limit: int = results.INDEX_MAX) -> str:
    """Per outcome: count and lr range; the largest converged lr; the lr with the lowest final loss.

    Streams over blocks of the first dim (at most ``block`` configs, or ``limit``), so a store
    larger than memory is summarised too. Runs at one lr are combined (the worst of them) only for
    results of at most ``limit`` configs, which that reads whole; larger ones get the single runs'
    extremes.
    """
    block = max(1, min(block, limit))
    dims = ds["outcome"].dims
    lr_dims = [d for d in dims if d == "lr" or d.startswith("lr_")]
    first = dims[0]
    per_row = max(1, int(np.prod([ds.sizes[d] for d in dims[1:]], dtype=np.int64)))
    step = max(1, block // per_row)
    count = np.zeros(len(outcomes.NAMES) + 1, np.int64)  # the last slot: pending
    lo = {d: np.full(len(count), np.inf) for d in lr_dims}
    hi = {d: np.full(len(count), -np.inf) for d in lr_dims}
    best = (np.inf, None)
    for start in range(0, ds.sizes[first], step):
        part = ds.isel({first: slice(start, start + step)})
        codes = outcomes.codes(part["outcome"].values)
        loss = part["loss"] if "loss" in part else None
        if loss is not None and "epoch" in loss.dims:
            loss = loss.isel(epoch=-1)
        lrs = {
            d: np.broadcast_to(part[d].values.reshape([-1 if x == d else 1 for x in dims]), codes.shape)
            for d in lr_dims
        }
        for k in range(len(count)):
            mask = codes == (k if k < len(outcomes.NAMES) else -1)
            n = int(mask.sum())
            count[k] += n
            if n:
                for d in lr_dims:
                    lo[d][k], hi[d][k] = min(lo[d][k], lrs[d][mask].min()), max(hi[d][k], lrs[d][mask].max())
        if loss is not None:
            values = np.asarray(loss.values, dtype=np.float64)
            values = np.where(np.isfinite(values), values, np.inf)
            i = int(np.argmin(values))
            if values.flat[i] < best[0]:
                best = (values.flat[i], {d: lrs[d].flat[i] for d in lr_dims})
    head = f"{'outcome':<11} {'count':>9}" + "".join(f"  {d + ' min':>12}  {d + ' max':>12}" for d in lr_dims)
    lines = [head]
    for k, name in enumerate((*outcomes.NAMES, "pending")):
        if count[k]:
            lines.append(
                f"{name:<11} {count[k]:>9,}" + "".join(f"  {lo[d][k]:>12.4g}  {hi[d][k]:>12.4g}" for d in lr_dims)
            )
    conv = outcomes.CONVERGED
    if "lr" in ds.dims and ds["outcome"].size <= limit:
        # One lr axis: the runs at each lr combined as suggest_lr combines them (the worst run).
        how = suggest.across_text(ds, "worst")
        all_conv = (outcomes.codes(ds["outcome"].transpose("lr", ...)).reshape(ds.sizes["lr"], -1) == conv).all(axis=1)
        text = f"{ds['lr'].values[all_conv].max():.6g}" if all_conv.any() else "none converged"
        lines.append(f"largest lr that converged: {text} ({how})")
        if "loss" in ds:
            lrs, loss = suggest.combined_loss(ds, "worst")
            if np.any(np.isfinite(loss)):
                i = int(np.argmin(loss))
                lines.append(f"lr with the lowest final loss: {lrs[i]:.6g} (loss {loss[i]:.4g}), {how}")
            else:
                lines.append(f"lr with the lowest final loss: none (every final loss is NaN or infinite, {how})")
        return "\n".join(lines)
    for d in lr_dims:
        label = "lr" if d == "lr" else d
        lines.append(f"largest {label} that converged: " + (f"{hi[d][conv]:.6g}" if count[conv] else "none converged"))
    if best[1] is not None:
        where = ", ".join(f"{v:.6g}" if d == "lr" else f"{d} {v:.6g}" for d, v in best[1].items())
        lines.append(f"lowest final loss of a single run: {where} (loss {best[0]:.4g})")
    elif "loss" in ds:
        lines.append("lowest final loss of a single run: none (every final loss is NaN or infinite)")
    return "\n".join(lines)


def time_line(timing: dict, epochs: int, total: int) -> str:
    """``time: compile ... s, sweep ... s (N config-steps computed in this run), theory ... s``."""
    configs = timing["configs_computed"]
    compile_s = timing["compile_s"]
    parts = ["compile included in the sweep" if compile_s is None else f"compile {compile_s:.2f} s"] if configs else []
    if configs:
        rate = configs * epochs / timing["sweep_s"] if timing["sweep_s"] > 0 else float("inf")
        of = "" if configs == total else f" of {total:,}"
        parts.append(
            f"sweep {timing['sweep_s']:.2f} s ({configs:,}{of} configs x {epochs:,} epochs = "
            f"{configs * epochs:,} config-steps computed in this run, {rate:,.0f} per second)"
        )
    else:
        parts.append(f"sweep {timing['sweep_s']:.2f} s (nothing to compute: every chunk was already done)")
    if timing["theory_s"]:
        parts.append(f"theory {timing['theory_s']:.2f} s")
    return "time: " + ", ".join(parts)


def counts(ds, block: int = 2**22) -> dict[str, int]:
    """Configs per outcome (and "pending"), streamed over blocks of the first dim."""
    dims = ds["outcome"].dims
    per_row = max(1, int(np.prod([ds.sizes[d] for d in dims[1:]], dtype=np.int64)))
    step = max(1, block // per_row)
    count = np.zeros(len(outcomes.NAMES) + 1, np.int64)
    for start in range(0, ds.sizes[dims[0]], step):
        codes = outcomes.codes(ds["outcome"].isel({dims[0]: slice(start, start + step)}).values)
        count += np.bincount(np.where(codes < 0, len(outcomes.NAMES), codes).ravel(), minlength=count.size)
    return {name: int(n) for name, n in zip((*outcomes.NAMES, outcomes.PENDING_NAME), count)}


def facts(ds, problem: problems.Problem | None, limit: int = results.INDEX_MAX) -> dict:
    """A sweep's summary as JSON-able data: settings, sizes, outcome counts, suggested and critical lr
    (those two for results of at most ``limit`` configs, see :func:`suggestable`)."""
    keep = ("problem", "epochs", "grad", "precision", "record", "optimizer", "optimizer_kwargs", "seed", "kernel_path")
    facts: dict = {
        "settings": {k: ds.attrs[k] for k in keep if k in ds.attrs},
        "spec": json.loads(ds.attrs["spec"]) if "spec" in ds.attrs else None,
        "sizes": {str(d): int(ds.sizes[d]) for d in ds["outcome"].dims},
        "configs": int(ds["outcome"].size),
        "outcomes": counts(ds, max(1, min(2**22, limit))),
        "suggested_lr": None,
        "critical_lr": None,
    }
    if "chunks_done" in ds.attrs:
        facts["chunks"] = {"done": ds.attrs["chunks_done"], "total": ds.attrs["chunks_total"]}
    if suggestable(ds, limit):
        found = answer.suggestion(ds)
        if found.lr is not None:
            facts["suggested_lr"] = found.facts()
    if suggestable(ds, limit):
        optimizer = ds.attrs.get("optimizer")
        if problem is not None and optimizer in theory.OPTIMIZERS:
            kwargs = dict(optimizers.get(optimizer).kwargs)
            kwargs.pop("nesterov", None)
            try:
                facts["critical_lr"] = float(theory.critical_lr(problem, optimizer, **kwargs))
            except ValueError:
                pass
    return facts


def write_plot(ds, path: str, problem: problems.Problem | None, sweep_s: float) -> None:
    """``lrsweep.plot(ds)`` written to ``path`` (theory's critical lr marked where it is cheap)."""
    from .plot import plot

    critical = None
    optimizer = ds.attrs.get("optimizer")
    if problem is not None and optimizer in theory.OPTIMIZERS and theory_cost(problem) <= max(sweep_s, 1.0):
        kwargs = dict(optimizers.get(optimizer).kwargs)
        kwargs.pop("nesterov", None)
        try:
            critical = theory.critical_lr(problem, optimizer, **kwargs)
        except ValueError:
            critical = None
    fig = plot(ds, critical_lr=critical)
    try:
        fig.savefig(path, dpi=150)
    except (OSError, ValueError) as err:
        raise ValueError(f"--plot={path!r} cannot be written: {err}") from None


#: Seconds per unit of ``theory_cost``: op-by-op float64 JAX on a CPU core, generously.
THEORY_UNIT_S = 2e-8


def theory_cost(problem: problems.Problem) -> float:
    """Rough seconds for theory's ``lambda_max``: a dense Hessian is ``P`` gradients, power
    iteration up to 200 Hessian-vector products (3 gradients each); a gradient costs about
    ``P * n`` (parameters x examples), plus a fixed 0.5 s of tracing."""
    n_param = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(problem.init))
    gradients_needed = n_param if n_param <= theory.DENSE_MAX else 600
    return 0.5 + THEORY_UNIT_S * gradients_needed * n_param * problem.n_data


def suggestable(ds, limit: int = results.INDEX_MAX) -> bool:
    """Whether ``ds`` has one ``lr`` dim and at most ``limit`` configs: small enough to suggest
    from in memory (the suggestion reads the result whole)."""
    return "lr" in ds.dims and ds["outcome"].size <= limit


def skipped_line(ds, memory: int) -> str:
    """Why ``lrsweep run`` suggests no lr for a store too large to suggest from within ``memory``."""
    need = int(ds["outcome"].size) * plan.SUMMARY_BYTES
    return (
        f"suggested lr: skipped ({ds['outcome'].size:,} configs need about {plan.human_size(need)} to suggest from, "
        f"more than memory={plan.human_size(memory)}; run the same command with --memory {-(-need // 10**6)}MB "
        "or more: the finished chunks are not recomputed)"
    )


def suggestion_lines(ds) -> list[str]:
    """The suggested lr (``lrsweep.answer.suggestion``: method "best" on ``eval_loss`` when the
    sweep has it, else the training loss, worst over each point's runs, the joint best point with
    hyperparameter dims, the fallback named when it cannot answer, the edge-of-grid warning): what
    ``lrsweep run`` and ``lrsweep show`` print."""
    found = answer.suggestion(ds)
    lines = []
    if found.lr is None:
        lines.append(f"suggested lr: none ({found.why_not}; the fallback {suggest.FALLBACK!r} cannot answer either)")
    else:
        if found.why_not is not None:
            lines.append(f"suggested lr: {found.why_not}; falling back to method {found.method!r}")
        lines.append(found.text())
    if found.edge is not None:
        lines.append(f"warning: {found.edge}")
    return lines


def advice(problem: problems.Problem, ds, optimizer: str, sweep_s: float | None = None) -> str:
    """The suggested lr (:func:`suggestion_lines`), and theory's critical lr where theory has one
    for this optimizer and it costs less than the sweep took (``sweep_s``)."""
    lines = suggestion_lines(ds)
    if optimizer in theory.OPTIMIZERS:
        at = "the minimum" if problem.minimum is not None else "the init"
        cost = theory_cost(problem)
        if sweep_s is not None and cost > max(sweep_s, 1.0):
            n_param = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(problem.init))
            lines.append(
                f"theory: skipped (the Hessian of {n_param:,} parameters at {at} would take about {cost:.0f} s, "
                f"longer than the sweep's {sweep_s:.1f} s; lrsweep.theory.critical_lr computes it)"
            )
            return "\n".join(lines)
        kwargs = dict(optimizers.get(optimizer).kwargs)
        kwargs.pop("nesterov", None)
        try:
            critical = theory.critical_lr(problem, optimizer, **kwargs)
            lines.append(f"theory: critical lr {critical:.6g} (from the Hessian at {at})")
        except ValueError as err:  # e.g. a Hessian that is not positive there
            lines.append(f"theory: no critical lr at {at} ({err})")
    return "\n".join(lines)
