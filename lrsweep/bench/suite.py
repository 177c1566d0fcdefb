"""The suite: which cases run, in which order, and how each is timed."""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from .. import api, gradients, problems
from . import roofline
from .baselines import BASELINES, notebook_train, numpy_train
from .machine import PeakRSS

GRADS = ("autodiff", "forward")
RECORDS = ("summary", "trajectory")
IMPLS = ("notebook", "numpy", "lrsweep")
#: Every case's fields (benchmarks/README.md, "Result schema"); ``None`` where they do not apply.
CASE_KEYS = (
    "id",
    "problem",
    "impl",
    "backend",
    "grad",
    "record",
    "precision",
    "configs",
    "epochs",
    "times_s",
    "seconds",
    "compile_s",
    "config_steps_per_s",
    "chunk",
    "kernel",
    "devices",
    "cpu_s",
    "peak_mb",
    "flops_per_config_step",
    "bytes_per_config_step",
    "flops_fraction",
    "bytes_fraction",
)


def case_id(case: dict) -> str:
    """What a case is, independent of the machine and backend: ``problem/impl/grad[/record]/N[xE]``.

    Baselines choose their epochs to fit a time budget, so their id has no epochs."""
    parts = [case["problem"], case["impl"], case["grad"]]
    if case["impl"] == "lrsweep":
        parts += [case["record"], f"{case['configs']}x{case['epochs']}"]
    else:
        parts.append(str(case["configs"]))
    return "/".join(parts)


def measure(fn: Callable[[], object], repeat: int) -> dict:
    """``repeat`` timed calls of ``fn`` (warm it up first): ``times_s`` (every call), ``seconds``
    (their median), ``cpu_s`` (the process CPU time of the call nearest the median) and ``peak_mb``
    (the largest RSS growth during a call)."""
    times, cpus, peak = [], [], 0.0
    for _ in range(max(1, repeat)):
        with PeakRSS() as mem:
            c = time.process_time()
            t = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - t
            c = time.process_time() - c
        del out
        times.append(seconds)
        cpus.append(c)
        peak = max(peak, mem.delta_mb)
    median = statistics.median(times)
    nearest = min(range(len(times)), key=lambda k: abs(times[k] - median))
    return {"times_s": times, "seconds": median, "cpu_s": cpus[nearest], "peak_mb": peak}


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
        (1, 10_000, 100_000),
        (100,),
    ),
    "chapter_net": Spec(
        problems.chapter_net,
        (1, 100, 10_000, 100_000, 1_000_000),
        (10, 100),
        {"autodiff": 3e7, "forward": 1e7},
        (1e-3, 1.0),
        (1, 10_000),
        # 100 epochs, as the full suite's headline: at 10,000 x 10 a sweep takes about 10 ms, half
        # of it the call's fixed cost (planning, the Dataset), so it would time latency, not training.
        (100,),
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
    """Runs the cases. Per problem: the notebook loop, then one size at a
    time every implementation back to back, so that a ratio compares measurements taken seconds
    apart (the machine's load drifts)."""

    def __init__(self, args):
        self.args = args
        self.rows: list[dict] = []
        self.skipped: list[str] = []
        self.peaks: dict[str, dict] = {}  # backend -> roofline.peaks(backend), filled by the caller
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def skip(self, msg: str) -> None:
        self.skipped.append(msg)
        self.log("skip: " + msg)

    def add(self, **row) -> dict:
        row["config_steps_per_s"] = row["configs"] * row["epochs"] / row["seconds"]
        for key in CASE_KEYS:
            row.setdefault(key, None)
        row["precision"] = "float32"
        row["id"] = case_id(row)
        self.rows.append(row)
        extra = f"  compile {row['compile_s']:.2f}s" if row["compile_s"] is not None else ""
        self.log(
            f"{row['problem']:<11} {row['impl']:<13} {row['backend'] or '':<6} {row['grad']:<8} "
            f"{row['record'] or '':<10} {row['configs']:>10,} x {row['epochs']:>5}  "
            f"{row['config_steps_per_s']:>15,.0f} config-steps/s  {row['peak_mb']:8.1f} MB{extra}"
        )
        return row

    def _adaptive(self, run: Callable[[int], object], max_epochs: int) -> tuple[int, dict]:
        """Epochs that fit in ``target_s`` (from a one-epoch call at the same size, which also warms
        the code up), then ``repeat`` timed calls."""
        t = time.perf_counter()
        run(1)
        one = time.perf_counter() - t
        epochs = int(max(1, min(max_epochs, self.args.target_s / max(one, 1e-9))))
        return epochs, measure(lambda: run(epochs), self.args.repeat)

    def _baselines(self, name: str) -> list[tuple[str, object, str]]:
        impls = []
        if "numpy" in self.args.impls:
            impls += [(label, make(), "numpy") for label, make in BASELINES[name].items()]
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
        lr = np.geomspace(spec.lr[0], spec.lr[1], n).astype(np.float32)
        params = base.init(n)
        run = lambda k: numpy_train(base, lr, params, k, grad)
        e, m = self._adaptive(run, max_epochs)
        prev[key] = (n, m["seconds"] / e)
        self.add(
            problem=name,
            impl=label,
            backend=kind,
            grad=grad,
            configs=n,
            epochs=e,
            **m,
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

    def _lrsweep_case(self, name, spec, problem, key, n) -> None:
        """One lrsweep case: a warm-up call with the very arguments timed (its extra time over the
        median timed call is the compile time), then ``repeat`` timed calls."""
        backend, grad, record, e = key
        # A log space, as a user writes a big sweep (an explicit array of a million values costs
        # lrsweep about 1.4 us per config to record in the result's spec).
        lr = f"log:{spec.lr[0]:g}:{spec.lr[1]:g}:{n}"
        call = functools.partial(api.sweep, problem, lr, **self._sweep_kw(name, grad, record, e))
        try:
            with jax.default_device(jax.devices(backend)[0]):
                t = time.perf_counter()
                ds = call()
                first = time.perf_counter() - t
                attrs = dict(ds.attrs)
                del ds
                m = measure(call, self.args.repeat)
        except Exception as err:  # noqa: BLE001 - report the engine's failure and go on
            self.skip(f"{name} lrsweep {backend} {grad} {record} {n:,} x {e:,} failed: {type(err).__name__}: {err}")
            return
        chunk = int(attrs["chunk_size"])
        case = self.add(
            problem=name,
            impl="lrsweep",
            backend=backend,
            grad=grad,
            record=record,
            configs=n,
            epochs=e,
            compile_s=max(0.0, first - m["seconds"]),
            chunk=chunk,
            kernel=attrs.get("kernel_path", attrs.get("kernel", "xla")),
            devices=len(jax.devices(backend)),
            **m,
            **roofline.cost_per_config_step(name, problem, grad, chunk, backend),
        )
        case.update(roofline.fractions(case, self.peaks.get(backend)))

    def run(self) -> None:
        args = self.args
        for name in args.problems:
            spec = SPECS[name]
            sizes = sorted(args.sizes or (spec.quick_sizes if args.quick else spec.sizes))
            epochs = sorted(args.epochs or (spec.quick_epochs if args.quick else spec.epochs))
            problem = spec.make()
            if "notebook" in args.impls and "forward" in args.grads:
                lr = float(np.sqrt(spec.lr[0] * spec.lr[1]))
                e, m = self._adaptive(lambda k, name=name, lr=lr: notebook_train(name, lr, k), max(epochs))
                self.add(problem=name, impl="notebook loop", backend="python", grad="forward", configs=1, epochs=e, **m)
            baselines = self._baselines(name)
            plan = self._lrsweep_plan(name, spec, problem, sizes, epochs) if "lrsweep" in args.impls else {}
            prev = {}
            for n in sizes:
                for grad in args.grads:
                    for label, base, kind in baselines:
                        self._baseline_case(name, spec, label, base, kind, grad, n, max(epochs), prev)
                    for key, todo in plan.items():
                        if key[1] == grad and n in todo:
                            self._lrsweep_case(name, spec, problem, key, n)
