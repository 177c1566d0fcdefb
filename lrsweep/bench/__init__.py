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

The numpy baselines are independent re-implementations (``lrsweep.bench.baselines``; tests check
their final losses against lrsweep's).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from .baselines import (
    BASELINES,
    MLP,
    ChapterNet,
    H,
    LinearPlain,
    LinearTuned,
    TorchBaseline,
    _torch,
    notebook_train,
    numpy_train,
)
from .machine import jax_backends, machine
from .report import _mem_check, markdown, plot, ratios, targets
from .suite import GRADS, IMPLS, RECORDS, SPECS, Suite, measure

__all__ = [
    "BASELINES",
    "GRADS",
    "IMPLS",
    "MLP",
    "RECORDS",
    "SPECS",
    "ChapterNet",
    "H",
    "LinearPlain",
    "LinearTuned",
    "Suite",
    "TorchBaseline",
    "jax_backends",
    "machine",
    "main",
    "markdown",
    "measure",
    "notebook_train",
    "numpy_train",
    "plot",
    "ratios",
    "run",
    "targets",
]


def default_out() -> Path:
    """``benchmarks/results`` of a source checkout, else ``./lrsweep-bench``."""
    repo = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
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
