"""The ``lrsweep`` command line: ``run``, ``trace`` and ``info``.

    lrsweep run                               # the built-in default sweep
    lrsweep run --lr 0.01,0.1,1 --grad forward --precision mixed
    lrsweep trace --lr 0.01 --epochs 10       # the lesson notebook's printed lines
    lrsweep info                              # versions, backend, devices

Bad input prints one line ``lrsweep: error: ...`` naming the argument and exits with status 2.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

import jax

from . import api, optimizers, outcomes, problems, suggest, theory

DEFAULT_LR = "log:1e-4:10:256"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrsweep", description="Train many learning rates at once, in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep and print a summary table")
    run.add_argument(
        "--problem", default="linear", help=f"built-in problem {sorted(problems.BUILTINS)} or 'package.module:function'"
    )
    run.add_argument("--lr", default=DEFAULT_LR, help="list '0.01,0.1,1' or space 'log:1e-4:10:256', 'lin:0.01:0.2:20'")
    run.add_argument("--epochs", type=int, default=1000)
    run.add_argument("--grad", default="autodiff", help="autodiff, forward or central")
    run.add_argument("--precision", default="float32", help="float32, float64 or mixed")
    run.add_argument("--record", default="summary", help="summary or trajectory")
    run.add_argument("--optimizer", default="gd", help=f"one of {list(optimizers.NAMED)}")
    run.add_argument("--init", type=int, default=None, help="number of inits drawn by the problem's sampler")
    run.add_argument("--seed", type=int, default=0, help="seed for --init")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    trace = sub.add_parser("trace", help="print the lesson's per-epoch lines for one learning rate")
    trace.add_argument("--problem", default="linear")
    trace.add_argument("--lr", type=float, required=True)
    trace.add_argument("--epochs", type=int, default=10)
    trace.add_argument("--grad", default="forward")
    trace.add_argument("--precision", default="mixed")
    trace.add_argument("--param", default=None, help="parameter to print (default: the first, 'w')")

    sub.add_parser("info", help="print versions, backend and devices")
    return parser


def _fmt(v) -> str:
    # The notebook prints np.round(value, 2) of numpy scalars; str() of a float32 scalar is its
    # shortest float32 repr, which is what makes the lines equal.
    return str(np.round(v, 2))


def trace_lines(table, param: str) -> list[str]:
    """The notebook's line for each epoch of one parameter of a :func:`lrsweep.trace` table."""
    rows = table[table.parameter == param]
    if rows.empty:
        raise ValueError(f"--param={param!r} is invalid: expected one of {list(dict.fromkeys(table.parameter))}")
    cols = {c: rows[c].to_numpy() for c in ("value", "loss", "loss_plus", "gradient", "updated")}
    return [
        f"weight value: {_fmt(cols['value'][k])} original loss: {_fmt(cols['loss'][k])} "
        f"loss_plus: {_fmt(cols['loss_plus'][k])} gradient: {_fmt(cols['gradient'][k])} "
        f"updated_weights: {_fmt(cols['updated'][k])}"
        for k in range(len(rows))
    ]


def final_params_line(problem: problems.Problem, table) -> str:
    """The final parameters as the notebook prints its weight list: ``[array([[2.265477]], ...), ...]``."""
    last = table[table.epoch == table.epoch.max()]
    arrays = []
    for i in api.display_order(problem):
        leaf = np.asarray(jax.tree_util.tree_leaves(problem.init)[i])
        name = problems.param_names(problem.init)[i]
        values = last[last.parameter.str.fullmatch(rf"{name}(\[.*\])?")].updated.to_numpy()
        arrays.append(np.atleast_2d(values.reshape(leaf.shape)))
    return repr(arrays)


def _summary(ds) -> str:
    lr = np.broadcast_to(ds.lr.values[:, None], ds.outcome.shape)
    outcome = ds.outcome.values
    loss = ds.loss.values if "epoch" not in ds.loss.dims else ds.loss.isel(epoch=-1).values
    lines = [f"{'outcome':<11} {'count':>7}  {'lr min':>10}  {'lr max':>10}"]
    for name in outcomes.NAMES:
        mask = outcome == name
        if mask.any():
            lines.append(f"{name:<11} {int(mask.sum()):>7}  {lr[mask].min():>10.4g}  {lr[mask].max():>10.4g}")
    conv = outcome == "converged"
    lines.append(
        "largest lr that converged: " + (f"{lr[conv].max():.6g}" if conv.any() else "none converged")
    )
    finite = np.isfinite(loss)
    if finite.any():
        k = np.nanargmin(np.where(finite, loss, np.inf))
        lines.append(f"lr with the lowest final loss: {lr.flat[k]:.6g} (loss {loss.flat[k]:.4g})")
    else:
        lines.append("lr with the lowest final loss: none (every final loss is NaN or infinite)")
    return "\n".join(lines)


def _run(args) -> None:
    problem = problems.get(args.problem)
    t0 = time.perf_counter()
    ds = api.sweep(
        problem,
        args.lr,
        init=args.init,
        seed=args.seed,
        epochs=args.epochs,
        grad=args.grad,
        precision=args.precision,
        record=args.record,
        optimizer=args.optimizer,
        progress=False if args.quiet else None,
    )
    seconds = time.perf_counter() - t0
    n = ds.sizes["lr"] * ds.sizes["init"]
    print(
        f"lrsweep run: problem {problem.name}, {ds.sizes['lr']} learning rates x {ds.sizes['init']} init, "
        f"{args.epochs} epochs, grad {args.grad}, precision {args.precision}, record {args.record}, "
        f"optimizer {args.optimizer}"
    )
    print(_summary(ds))
    print(_advice(problem, ds, args.optimizer))
    print(f"time: {seconds:.2f} s for {n * args.epochs:,} config-steps (compile included)")


def _advice(problem: problems.Problem, ds, optimizer: str) -> str:
    """The suggested lr, and theory's critical lr where theory has one for this optimizer."""
    try:
        line = f"suggested lr (largest stable): {suggest.suggest_lr(ds, 'largest_stable'):.6g}"
    except ValueError:
        line = "suggested lr (largest stable): none (the smallest lr is already unstable)"
    if optimizer in theory.OPTIMIZERS:
        at = "the minimum" if problem.minimum is not None else "the init"
        kwargs = dict(optimizers.get(optimizer).kwargs)
        kwargs.pop("nesterov", None)
        try:
            critical = theory.critical_lr(problem, optimizer, **kwargs)
            line += f"\ntheory: critical lr {critical:.6g} (from the Hessian at {at})"
        except ValueError as err:  # e.g. a Hessian that is not positive there
            line += f"\ntheory: no critical lr ({err})"
    return line


def _trace(args) -> None:
    problem = problems.get(args.problem)
    table = api.trace(problem, args.lr, args.epochs, grad=args.grad, precision=args.precision)
    param = args.param or table.parameter.iloc[0]
    print("\n".join(trace_lines(table, param)))
    print(final_params_line(problem, table))


def _info(_args) -> None:
    import chex
    import jax
    import jaxlib
    import xarray

    from . import __version__

    print(f"lrsweep {__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for mod in (jax, jaxlib, np, chex, xarray):
        print(f"{mod.__name__} {mod.__version__}")
    print(f"backend {jax.default_backend()}")
    for d in jax.devices():
        print(f"device {d.id}: {d.platform} {d.device_kind}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        {"run": _run, "trace": _trace, "info": _info}[args.command](args)
    except ValueError as err:
        print(f"lrsweep: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrsweep: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
