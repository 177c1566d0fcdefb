"""The ``lrsweep`` command line: ``run``, ``trace`` and ``info``.

    lrsweep run                               # the built-in default sweep
    lrsweep run --lr 0.01,0.1,1 --grad forward --precision mixed
    lrsweep trace --lr 0.01 --epochs 10       # the lesson notebook's printed lines
    lrsweep export sweep.zarr summary.csv     # a store's summary as a table
    lrsweep figures --out figures             # the lecture gallery
    lrsweep bench --quick                     # the benchmark suite
    lrsweep info                              # versions, backend, devices

Bad input prints one line ``lrsweep: error: ...`` naming the argument and exits with status 2.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import jax
import numpy as np

from . import api, notebook, optimizers, outcomes, problems, store, suggest, theory
from . import spec as spec_mod

DEFAULT_LR = "log:1e-4:10:256"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``lrsweep: error: ...``, exit 2), like every other error."""

    def error(self, message: str):  # type: ignore[override]
        print(f"lrsweep: error: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lrsweep", description="Train many learning rates at once, in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep and print a summary table")
    run.add_argument("spec", nargs="?", default=None, help="a TOML file with the sweep's settings (flags override it)")
    spec_mod.add_flags(run)  # one flag per setting of lrsweep.spec.SweepSpec
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    export = sub.add_parser("export", help="write a store's summary (one row per config) to CSV or Parquet")
    export.add_argument("store", help="a store written by lrsweep run --out")
    export.add_argument("table", help="the output file, .csv or .parquet")

    trace = sub.add_parser("trace", help="print the lesson's per-epoch lines for one learning rate")
    trace.add_argument("--problem", default="linear")
    trace.add_argument("--lr", type=float, required=True)
    trace.add_argument("--epochs", type=int, default=10)
    trace.add_argument("--grad", default="forward")
    trace.add_argument("--precision", default="mixed")
    trace.add_argument("--param", default=None, help="parameter to print (default: the first, 'w')")

    # `lrsweep bench ...` hands its arguments to lrsweep.bench (see main); listed here for --help.
    sub.add_parser("bench", help="the benchmark suite (lrsweep bench --help for its options)", add_help=False)

    # `lrsweep figures ...` hands its arguments to lrsweep.gallery (see main); listed here for --help.
    sub.add_parser(
        "figures", help="the lecture figure gallery (lrsweep figures --help for its options)", add_help=False
    )

    sub.add_parser("info", help="print versions, backend and devices")
    return parser


def _summary(ds, block: int = 2**22) -> str:
    """Per outcome: count and lr range; the largest converged lr; the lr with the lowest final loss.

    Streams over blocks of the first dim, so a store larger than memory is summarised too.
    """
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
                f"{name:<11} {count[k]:>9}" + "".join(f"  {lo[d][k]:>12.4g}  {hi[d][k]:>12.4g}" for d in lr_dims)
            )
    conv = outcomes.CONVERGED
    for d in lr_dims:
        label = "lr" if d == "lr" else d
        lines.append(f"largest {label} that converged: " + (f"{hi[d][conv]:.6g}" if count[conv] else "none converged"))
    if best[1] is not None:
        where = ", ".join(f"{v:.6g}" if d == "lr" else f"{d} {v:.6g}" for d, v in best[1].items())
        lines.append(f"lr with the lowest final loss: {where} (loss {best[0]:.4g})")
    elif "loss" in ds:
        lines.append("lr with the lowest final loss: none (every final loss is NaN or infinite)")
    return "\n".join(lines)


def _run_settings(args) -> dict:
    """The sweep's settings: the CLI's defaults, then the TOML file, then the flags given."""
    settings = spec_mod.cli_defaults()
    if args.spec is not None:
        settings.update(spec_mod.load_toml(args.spec))
    settings.update(spec_mod.from_flags(args))
    return settings


def _run(args) -> None:
    settings = _run_settings(args)
    t0 = time.perf_counter()
    problem = settings.pop("problem")
    try:
        ds = api.sweep(problem, settings.pop("lr"), progress=False if args.quiet else None, **settings)
    except api.SweepInterrupted as stop:
        done = stop.partial.attrs.get("chunks_done")
        where = (
            f"; {done} of {stop.partial.attrs['chunks_total']} chunks are done in {settings['out']}, run the same command again to resume"
            if done is not None
            else ""
        )
        raise KeyboardInterrupt(f"interrupted{where}") from None
    seconds = time.perf_counter() - t0
    sizes = " x ".join(f"{ds.sizes[d]} {d}" for d in ds["outcome"].dims)
    epochs = ds.attrs["epochs"]
    print(
        f"lrsweep run: problem {ds.attrs['problem']}, {sizes}, {epochs} epochs, grad {ds.attrs['grad']}, "
        f"precision {ds.attrs['precision']}, record {ds.attrs['record']}, optimizer {ds.attrs['optimizer']}"
    )
    print(_summary(ds))
    plain = isinstance(problem, str) and not settings.get("problem_args") and not settings.get("problem_seed")
    advice_problem = problems.get(problem) if plain else None
    if advice_problem is not None and "lr" in ds.dims and ds["outcome"].size <= store.INDEX_MAX:
        print(_advice(advice_problem, ds, ds.attrs["optimizer"]))
    if "out" in settings:
        print(f"results: {settings['out']} (lrsweep.open to read them; lrsweep export to write a table)")
    print(f"time: {seconds:.2f} s for {ds['outcome'].size * epochs:,} config-steps (compile included)")


def _export(args) -> None:
    path = store.export(args.store, args.table)
    print(f"wrote {path}")


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
    print("\n".join(notebook.trace_lines(table, param)))
    print(notebook.final_params_line(problem, table))


def _info(_args) -> None:
    import chex
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["bench"], ["figures"]):
        # Their own parsers; matplotlib and the baselines load only for these commands.
        if argv[0] == "bench":
            from .bench import main as command
        else:
            from .gallery import main as command
        try:
            return command(argv[1:])
        except ValueError as err:
            print(f"lrsweep: error: {err}", file=sys.stderr)
            return 2
    args = _parser().parse_args(argv)
    try:
        {"run": _run, "trace": _trace, "info": _info, "export": _export}[args.command](args)
    except ValueError as err:
        print(f"lrsweep: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"lrsweep: {stop or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
