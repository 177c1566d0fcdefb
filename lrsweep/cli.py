"""The ``lrsweep`` command line: ``run``, ``show``, ``explore``, ``export``, ``trace``, ``info``, ...

    lrsweep run                               # the built-in default sweep
    lrsweep run --lr 0.01,0.1,1 --grad forward --precision mixed
    lrsweep run --json                        # a machine-readable summary on stdout
    lrsweep show sweep.zarr                   # a stored sweep's summary table, without rerunning it
    lrsweep explore sweep.zarr --out page.html  # one offline HTML page to explore a sweep
    lrsweep trace --lr 0.01 --epochs 10       # the lesson notebook's printed lines
    lrsweep export sweep.zarr summary.csv     # a store's summary as a table
    lrsweep figures --out figures             # the lecture gallery
    lrsweep bench --quick                     # the benchmark suite
    lrsweep info                              # versions, backend, devices

Bad input prints one line ``lrsweep: error: ...`` naming the argument and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import platform
import sys
import time

import jax
import numpy as np

from . import (
    _text,
    api,
    cli_parser,
    executor,
    grid,
    notebook,
    plan,
    planner,
    problems,
    results,
    sharpness,
    sinks,
    spec_sources,
    summary,
)
from . import spec as spec_mod

DEFAULT_LR = "log:1e-4:10:256"


def _parser() -> argparse.ArgumentParser:
    """The full parser: :func:`lrsweep.cli_parser.top_parser` with each command's options."""
    parser, command = cli_parser.top_parser()

    run = command["run"]
    run.add_argument(
        "spec", nargs="?", default=None, help="a TOML file with the sweep's settings (flags override it; default: none)"
    )
    spec_sources.add_flags(run)  # one flag per setting of lrsweep.spec.SweepSpec
    run.add_argument(
        "--trust-spec",
        dest="trust_spec",
        action="store_true",
        help="let the spec file set where to run (" + ", ".join(spec_sources.PLACE_KEYS) + "); without it "
        "those come from flags only (default: off)",
    )
    run.add_argument(
        "--init-grid",
        dest="init_grid",
        action="append",
        metavar="NAME=SPEC",
        help="a grid of initial values of a scalar parameter, e.g. w=lin:-5:5:11 or b=0,2 (repeat the flag; "
        "lrsweep.init_grid; default: none)",
    )
    run.add_argument(
        "--plot", metavar="FILE.png", default=None, help="write lrsweep.plot's figure of the result (default: none)"
    )
    _output_flags(run, json_help="print a machine-readable summary (JSON) on stdout instead of the table")

    show = command["show"]
    show.add_argument("store", help="a store written by lrsweep run --out")
    show.add_argument(
        "--json", action="store_true", help="print the summary as JSON, as run --json does (default: off)"
    )

    explore = command["explore"]
    explore.add_argument("source", help="a store (lrsweep run --out) or a spec TOML file (the sweep runs first)")
    explore.add_argument("--out", default="explore.html", help="the page to write, .html (default: explore.html)")
    explore.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")

    export = command["export"]
    export.add_argument("store", help="a store written by lrsweep run --out")
    export.add_argument("table", help="the output file, .csv or .parquet")
    export.add_argument("--force", action="store_true", help="replace the output file if it exists (default: refuse)")

    verify = command["verify"]
    verify.add_argument("store", help="a store written by lrsweep run --out")

    trace = command["trace"]
    trace.add_argument("--problem", default="linear", help="a built-in problem (default: linear)")
    trace.add_argument("--lr", type=float, required=True, help="the learning rate (required)")
    trace.add_argument("--epochs", type=int, default=10, help="epochs to print (default: 10; run's default is 1000)")
    trace.add_argument(
        "--grad",
        default="forward",
        help="gradient estimator (default: forward, the lesson's; run's default is autodiff)",
    )
    trace.add_argument(
        "--precision",
        default="mixed",
        help="precision policy (default: mixed, the notebook's arithmetic; run's default is float32)",
    )
    trace.add_argument("--param", default=None, help="parameter to print (default: the first, 'w')")

    info = command["info"]
    info.add_argument("--json", action="store_true", help="print them as JSON (default: off)")
    return parser


def _output_flags(parser: argparse.ArgumentParser, json_help: str) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no warnings (default: off)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print the settings and the chunk plan on stderr (default: off)"
    )
    parser.add_argument("--json", action="store_true", help=json_help + " (default: off)")


def _run_settings(args) -> dict:
    """The sweep's settings: the CLI's defaults, then the TOML file, then the flags given."""
    settings = spec_sources.cli_defaults()
    if args.spec is not None:
        settings.update(spec_sources.load_toml(args.spec, trust=args.trust_spec))
    settings.update(spec_sources.from_flags(args))
    if getattr(args, "init_grid", None):
        if getattr(args, "init", None) is not None:
            raise ValueError(f"--init-grid={args.init_grid!r} is invalid with --init: give a count or a grid, not both")
        pairs = [item.partition("=") for item in args.init_grid]
        bad = [item for item, (key, sep, _) in zip(args.init_grid, pairs) if not sep or not key.strip()]
        if bad:
            raise ValueError(f"--init-grid={bad[0]!r} is invalid: expected NAME=SPEC, e.g. w=lin:-5:5:11 or b=0,2")
        settings["init"] = grid.init_grid(**{key.strip(): value.strip() for key, _, value in pairs})
    return settings


def _run(args) -> None:
    settings = _run_settings(args)
    quiet = args.quiet or args.json
    planned = _prepare(settings, quiet)  # checks every setting first; the problem is resolved once, here
    if settings.get("record") == "trajectory" and "out" not in settings and not args.quiet:
        print(
            "lrsweep: warning: --record trajectory without --out: only the summary is printed and the "
            "trajectories are dropped; add --out STORE to keep them",
            file=sys.stderr,
        )
    problem = settings["problem"]
    try:
        with sinks.open_sink(planned) as sink:
            if args.verbose:
                _print_plan(settings, planned, sink)
            ran = executor.run(planned, sink, compile_first=True)
    except executor.SweepInterrupted as stop:
        done = stop.partial.attrs.get("chunks_done")
        where = (
            f"; {done} of {stop.partial.attrs['chunks_total']} chunks are done in {settings['out']}, run the same command again to resume"
            if done is not None
            else ""
        )
        raise KeyboardInterrupt(f"interrupted{where}") from None
    ds, seconds = ran.dataset, ran.sweep_s
    epochs = ds.attrs.get("steps", ds.attrs["epochs"])  # optimizer steps per config
    timing = {"compile_s": ran.compile_s, "sweep_s": seconds, "theory_s": 0.0, "configs_computed": ran.configs_computed}
    timing["config_steps_computed"] = ran.configs_computed * epochs
    # A store can be larger than the budget: it is summarised in blocks, and suggested from only if
    # it fits (lrsweep.plan.summary_configs). A result in memory fitted the budget already.
    limit = min(results.INDEX_MAX, plan.summary_configs(planned.memory)) if "out" in settings else results.INDEX_MAX
    plain = isinstance(problem, str) and not settings.get("problem_args") and not settings.get("problem_seed")
    advice_problem = planned.instances[0] if plain else None  # the plan's, built once: problems.get(problem)
    if getattr(args, "plot", None):
        summary.write_plot(ds, args.plot, advice_problem, seconds)
    if args.json:
        t1 = time.perf_counter()
        facts = summary.facts(ds, advice_problem, limit)
        timing["theory_s"] = time.perf_counter() - t1
        print(json.dumps({**facts, "out": settings.get("out"), "timing": timing}, indent=2, default=str))
        return
    sizes = " x ".join(f"{ds.sizes[d]:,} {d}" for d in ds["outcome"].dims)
    print(
        f"lrsweep run: problem {ds.attrs['problem']}, {sizes}, {epochs} epochs, grad {ds.attrs['grad']}, "
        f"precision {ds.attrs['precision']}, record {ds.attrs['record']}, optimizer {ds.attrs['optimizer']}"
    )
    print(summary.table(ds, limit=limit))
    if "edge_step" in ds:
        print(sharpness.edge_line(ds))
    if advice_problem is not None and summary.suggestable(ds, limit):
        t1 = time.perf_counter()
        print(summary.advice(advice_problem, ds, ds.attrs["optimizer"], sweep_s=seconds))
        timing["theory_s"] = time.perf_counter() - t1
    elif summary.suggestable(ds, limit):
        print("\n".join(summary.suggestion_lines(ds)))
    elif summary.suggestable(ds):
        print(summary.skipped_line(ds, planned.memory))
    if "out" in settings:
        print(f"results: {settings['out']} (lrsweep.open to read them; lrsweep export to write a table)")
    if getattr(args, "plot", None):
        print(f"plot: {args.plot} (lrsweep.plot)")
    print(summary.time_line(timing, epochs, ds["outcome"].size))


def _prepare(settings: dict, quiet: bool) -> planner.Plan:
    """The sweep's spec and run options from ``settings``, planned (the one plan of this run);
    ``quiet``: no progress bar."""
    rest = {k: v for k, v in settings.items() if k not in ("problem", "lr")}
    if quiet:
        rest["progress"] = False
    return planner.plan(*spec_mod.build(settings["problem"], settings["lr"], **rest))


def _print_plan(settings: dict, planned: planner.Plan, sink: sinks.Sink) -> None:
    """The settings and the chunk plan on stderr (``--verbose``): the sink's chunks, which a resumed
    store keeps, and those this run computes."""
    layout, todo = sink.layout, sinks.todo(sink)
    shown = {k: v for k, v in settings.items() if v is not None}
    print("lrsweep: settings " + json.dumps(shown, sort_keys=True, default=str), file=sys.stderr)
    print(
        f"lrsweep: plan: {planned.axes.size:,} configs in {layout.n_chunks:,} chunks of up to "
        f"{int(layout.attrs['chunk_size']):,} configs (chunk shape {layout.chunk_shape} over dims {layout.dims}), "
        f"{len(todo):,} to compute; memory budget {planned.memory / 2**20:,.0f} MiB; kernel path "
        f"{layout.attrs.get('kernel_path')}",
        file=sys.stderr,
    )


def _show(args) -> None:
    ds = results.open(args.store)
    if args.json:
        print(json.dumps({**summary.facts(ds, None), "out": args.store}, indent=2, default=str))
        return
    sizes = " x ".join(f"{ds.sizes[d]:,} {d}" for d in ds["outcome"].dims)
    a = ds.attrs
    print(
        f"lrsweep show: {args.store}: problem {a.get('problem')}, {sizes}, {int(a.get('epochs', 0)):,} epochs, "
        f"grad {a.get('grad')}, precision {a.get('precision')}, record {a.get('record')}, optimizer {a.get('optimizer')}"
    )
    print(f"chunks done: {a['chunks_done']:,} of {a['chunks_total']:,}")
    print(summary.table(ds))
    if summary.suggestable(ds):
        print("\n".join(summary.suggestion_lines(ds)))


def _explore(args) -> None:
    from .explore import explore

    path = explore(args.source, args.out, progress=False if args.quiet else None)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def _export(args) -> None:
    path = results.export(args.store, args.table, overwrite=args.force)
    print(f"wrote {path}")


def _verify(args) -> int:
    """Print the store's damage, one line each; exit status 1 if any, 0 if clean."""
    damage = results.verify(args.store)
    for line in damage.lines():
        print(f"{args.store}: {line}")
    if not damage.clean:
        print(f"{args.store}: damaged; run the same lrsweep run command (same --out) again to repair it")
        return 1
    print(f"{args.store}: ok, {damage.finished} of {damage.total} chunks finished and verified")
    return 0


def _trace(args) -> None:
    problem = problems.get(args.problem)
    table = api.trace(problem, args.lr, args.epochs, grad=args.grad, precision=args.precision)
    param = args.param or table.parameter.iloc[0]
    print("\n".join(notebook.trace_lines(table, param)))
    print(notebook.final_params_line(problem, table))


def _info(args) -> None:
    import chex
    import jaxlib
    import xarray

    from ._version import __version__

    if getattr(args, "json", False):
        facts = {
            "lrsweep": __version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "system": platform.system(),
            **{mod.__name__: mod.__version__ for mod in (jax, jaxlib, np, chex, xarray)},
            "backend": jax.default_backend(),
            "devices": [{"id": d.id, "platform": d.platform, "kind": d.device_kind} for d in jax.devices()],
        }
        print(json.dumps(facts, indent=2))
        return
    print(f"lrsweep {__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for mod in (jax, jaxlib, np, chex, xarray):
        print(f"{mod.__name__} {mod.__version__}")
    print(f"backend {jax.default_backend()}")
    for d in jax.devices():
        print(f"device {d.id}: {d.platform} {d.device_kind}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its stdout shows names from specs and stores with control characters escaped
    (:func:`lrsweep._text.printable`), and a closed or full stdout ends it quietly."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stdout = sys.stdout
    if stdout is None:  # started with stdout closed: what it would print goes nowhere
        stdout = open(os.devnull, "w")  # lives as long as the process
    sys.stdout = _text.Printable(stdout)
    try:
        return _main(argv)
    except _text.StreamLost as lost:
        # `lrsweep run | head`: the reader is gone, which is no error. Python would report the
        # stream again when it flushes stdout at exit; point stdout at /dev/null instead.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        if lost.errno in (errno.EPIPE, errno.EBADF):  # closed: nobody reads it
            return 0
        _error(f"cannot write to stdout: {lost}")
        return 1
    finally:
        sys.stdout = stdout


def _error(message: str) -> None:
    """One line on stderr (control characters escaped); nothing if stderr is gone too."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        print(f"lrsweep: {_text.printable(message)}", file=sys.stderr)


def _main(argv: list[str]) -> int:
    if argv[:1] in (["bench"], ["figures"], ["map"]):
        # Their own parsers; matplotlib and the baselines load only for these commands.
        if argv[0] == "bench":
            from .bench import main as command
        elif argv[0] == "map":
            from .maps._cli import main as command
        else:
            from .gallery import main as command
        try:
            code = command(argv[1:])
            sys.stdout.flush()
            return code
        except ValueError as err:
            _error(f"error: {err}")
            return 2
    try:
        args = _parser().parse_args(argv)
        commands = {"run": _run, "show": _show, "explore": _explore, "trace": _trace, "info": _info, "export": _export}
        code = {**commands, "verify": _verify}[args.command](args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except ValueError as err:
        _error(f"error: {err}")
        return 2
    except KeyboardInterrupt as stop:
        _error(str(stop) or "interrupted")
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
