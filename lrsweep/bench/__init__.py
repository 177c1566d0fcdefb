"""The benchmark suite: lrsweep against the notebook loop and numpy, in one process.

Unit: **config-steps per second**, one config (a learning rate and an init) trained for one epoch.
Every number of a run comes from the same process, so the ratios between implementations hold
even on a shared, noisy machine; compare ratios, not absolute numbers, across machines.

The package, by job: ``baselines`` (the notebook loop, numpy plain and tuned), ``suite``
(the cases and how each is timed), ``roofline`` (FLOPs and bytes per config-step, the machine's
measured peaks), ``machine`` (machine facts, memory sampling), ``report`` (ratios, targets,
Markdown, PNG), ``compare`` (one table across result files) and ``verify`` (the fused kernel
against the XLA path). benchmarks/README.md documents the cases and the result schema.

Timing: every case is warmed up with the very arguments it is timed with, then timed ``--repeat``
times (default 3, quick mode too); the median is reported, every call's time kept, and lrsweep's
compile time reported apart (the warm-up call's time minus the median).

    lrsweep bench                           # the default suite, several minutes on 2 cores
    lrsweep bench --quick --out /tmp/bench  # a small subset
    lrsweep bench compare A.json B.json     # one table and one plot across result files
    lrsweep bench --verify                  # the fused kernel against the XLA path
    lrsweep bench --maps                    # trainability maps against the paper's approach
    lrsweep bench --sharpness               # what track_sharpness costs
    lrsweep bench --digits                  # a real model's sweep against a loop and a hand-written vmap
    python -m lrsweep.bench --problems linear --sizes 1e6 --epochs 1000 --grads forward
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import compare, roofline, verify
from .baselines import (
    BASELINES,
    MLP,
    ChapterNet,
    H,
    LinearPlain,
    LinearTuned,
    notebook_train,
    numpy_train,
)
from .machine import default_name, jax_backends, machine
from .report import _mem_check, markdown, plot, ratios, targets
from .suite import CASE_KEYS, GRADS, IMPLS, RECORDS, SPECS, Suite, case_id, measure

#: The version of the result files' layout (benchmarks/README.md, "Result schema").
SCHEMA_VERSION = 2

__all__ = [
    "BASELINES",
    "CASE_KEYS",
    "GRADS",
    "IMPLS",
    "MLP",
    "RECORDS",
    "SCHEMA_VERSION",
    "SPECS",
    "ChapterNet",
    "H",
    "LinearPlain",
    "LinearTuned",
    "Suite",
    "case_id",
    "compare",
    "jax_backends",
    "machine",
    "main",
    "markdown",
    "measure",
    "notebook_train",
    "numpy_train",
    "plot",
    "ratios",
    "roofline",
    "run",
    "targets",
    "verify",
]


def default_out() -> Path:
    """``./benchmarks/results`` when run inside a checkout of lrsweep (the current directory holds
    ``pyproject.toml`` naming lrsweep and a ``benchmarks`` folder); elsewhere ``--out`` is required."""
    here = Path.cwd()
    try:
        is_checkout = (here / "benchmarks").is_dir() and 'name = "lrsweep"' in (here / "pyproject.toml").read_text()
    except OSError:
        is_checkout = False
    if not is_checkout:
        raise ValueError(
            f"out=None is invalid outside a checkout of lrsweep (current directory {here}): "
            "give --out DIR, or run inside a checkout to write ./benchmarks/results"
        )
    return here / "benchmarks" / "results"


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
            raise argparse.ArgumentTypeError(f"expected a list from {list(choices or [])}, got {text!r}")
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
        prog="lrsweep bench",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a small subset that runs in well under a minute (CI)")
    p.add_argument("--problems", type=_list(str, list(SPECS)), default=list(SPECS), help="linear,chapter_net,mlp")
    p.add_argument("--sizes", type=_list(int), default=None, help="configs, e.g. 1,1e4,1e6 (default: per problem)")
    p.add_argument(
        "--epochs", type=_list(int), default=None, help="lrsweep epoch counts, e.g. 100,1000 (default: per problem)"
    )
    p.add_argument("--grads", type=_list(str, GRADS), default=list(GRADS))
    p.add_argument("--records", type=_list(str, RECORDS), default=list(RECORDS))
    p.add_argument("--impls", type=_list(str, IMPLS), default=list(IMPLS), help="notebook,numpy,lrsweep")
    p.add_argument(
        "--backends",
        type=_list(str, ("cpu", "gpu", "tpu")),
        default=None,
        help="JAX backends (default: every one available)",
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="timed calls per case after a warm-up; the median is reported (default 3)"
    )
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
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default: ./benchmarks/results inside a checkout)"
    )
    p.add_argument("--name", default=None, help="file stem (default: <cpu>-<cores>c_<device>[-quick])")
    p.add_argument("--no-peaks", action="store_true", help="skip measuring the machine's peaks (no %% peak columns)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="instead of timing: check the fused kernel against the XLA path (exit 1 on a disagreement)",
    )
    p.add_argument(
        "--maps",
        action="store_true",
        help="instead: trainability maps against the paper's approach (lrsweep bench --maps --help)",
    )
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def run(argv=None) -> dict:
    """Run the suite; write JSON, Markdown and PNG; return the result dict (with ``paths``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.repeat < 1:
        raise ValueError(f"--repeat={args.repeat} is invalid: expected an integer >= 1 (3 or more for a median)")
    available = jax_backends()
    if args.backends is None:
        args.backends = available
    missing = [b for b in args.backends if b not in available]
    if missing:
        raise ValueError(f"--backends={','.join(args.backends)} is invalid here: expected some of {available}")
    args.target_s = args.target_s if args.target_s is not None else (0.05 if args.quick else 0.3)
    out = args.out or default_out()
    m = machine(args.backends)
    name = args.name or default_name(m) + ("-quick" if args.quick else "")
    suite = Suite(args)
    if not args.no_peaks:
        for backend in args.backends:
            suite.peaks[backend] = roofline.peaks(backend)
            p = suite.peaks[backend]
            suite.log(
                f"peaks {backend}: {p['matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s matmul, "
                f"{p['copy_bytes_per_s'] / 1e9:,.1f} GB/s copy"
            )
    m["peaks"] = suite.peaks
    suite.run()
    result = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "argv": argv,
        "date": m["date"],
        "total_s": time.perf_counter() - suite.t0,
        "machine": m,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cases": suite.rows,
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
    """``lrsweep bench [...]``, ``lrsweep bench compare A.json B.json ...`` and ``lrsweep bench --verify``.

    Bad input raises ``ValueError`` (the CLI prints ``lrsweep: error: ...`` and exits 2); ``--verify``
    returns 1 on a disagreement."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return compare.main(argv[1:])
    if "--verify" in argv:
        return verify.main([a for a in argv if a != "--verify"])
    if "--maps" in argv:  # trainability maps against the paper's approach (lrsweep.bench.maps)
        from . import maps as maps_bench

        return maps_bench.main([a for a in argv if a != "--maps"])
    if "--sharpness" in argv:  # what track_sharpness costs (lrsweep.bench.sharpness)
        from . import sharpness as sharpness_bench

        return sharpness_bench.main([a for a in argv if a != "--sharpness"])
    if "--digits" in argv:  # a real model's sweep against what users write (lrsweep.bench.digits)
        from . import digits as digits_bench

        return digits_bench.main([a for a in argv if a != "--digits"])
    result = run(argv)
    print(Path(result["paths"]["markdown"]).read_text())
    return 0
