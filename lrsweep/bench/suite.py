"""The suite: which cases run, in which order, and how each is timed."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from .. import api, gradients, problems
from .baselines import BASELINES, TorchBaseline, _torch, notebook_train, numpy_train
from .machine import PeakRSS

GRADS = ("autodiff", "forward")
RECORDS = ("summary", "trajectory")
IMPLS = ("notebook", "numpy", "torch", "lrsweep")


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
                e, seconds, cpu, peak = self._adaptive(
                    lambda k, name=name, lr=lr: notebook_train(name, lr, k), max(epochs)
                )
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
                                seconds, cpu, peak = measure(
                                    lambda problem=problem, lr=lr, kw=kw: api.sweep(problem, lr, **kw), args.repeat
                                )
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
