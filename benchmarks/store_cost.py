"""``python benchmarks/store_cost.py [--repeat 5] [--dir .]``: what a trustworthy store costs.

For two sweeps written to a store (big chunks: the lesson, 4e6 configs x 1000 epochs, summary,
62 chunks; small chunks: 65536 configs x 200 epochs, trajectory, 16 MB budget, 128 chunks):

- the sweep's time with and without fsync (``LRSWEEP_FSYNC=0``), each in a fresh process,
  alternating, ``--repeat`` pairs: the median of the per-pair ratios (pairs run back to back, so
  a shared machine's load changes less within a pair than across the run);
- inside one run with fsync: how long the syncer thread was busy (it overlaps the computing) and
  how long ``close()`` waited for the last batch (what fsync adds to the sweep's critical path);
- ``lrsweep.verify`` on the finished store, and a rerun of the same sweep (it verifies every chunk
  and computes nothing).

Run it on the filesystem the stores go to (``--dir``; a folder is made inside it and removed).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "big chunks": "'linear', 'log:1e-6:10:4000000', epochs=1000, record='summary'",
    "small chunks": "'linear', 'log:1e-4:1:65536', epochs=200, record='trajectory', memory='16MB'",
}

TIMED = """
import sys, time, lrsweep
t = time.perf_counter()
ds = lrsweep.sweep({case}, out=sys.argv[1])
print(time.perf_counter() - t)
"""

PARTS = """
import sys, time, lrsweep
from lrsweep import store
busy, wait = [0.0], [0.0]
mark, close = store.ZarrSink._mark, store.ZarrSink.close
def timed_mark(self, ready):
    t = time.perf_counter(); mark(self, ready); busy[0] += time.perf_counter() - t
def timed_close(self):
    t = time.perf_counter(); close(self); wait[0] += time.perf_counter() - t
store.ZarrSink._mark, store.ZarrSink.close = timed_mark, timed_close
t = time.perf_counter()
ds = lrsweep.sweep({case}, out=sys.argv[1])
total = time.perf_counter() - t
t = time.perf_counter(); clean = lrsweep.verify(sys.argv[1]).clean; verify = time.perf_counter() - t
t = time.perf_counter(); lrsweep.sweep({case}, out=sys.argv[1]); rerun = time.perf_counter() - t
print(total, busy[0], wait[0], verify, rerun, ds.attrs["chunks_total"], clean)
"""


def _run(code: str, out: Path, fsync: str) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    env = {**os.environ, "LRSWEEP_FSYNC": fsync}
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, check=True)
    return proc.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="pairs of runs per case (default 5)")
    parser.add_argument("--dir", default=".", help="where to write (a temporary folder inside it)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="store_cost_", dir=args.dir))
    try:
        for name, case in CASES.items():
            ratios, plain, synced = [], [], []
            for _ in range(args.repeat):
                a = float(_run(TIMED.format(case=case), root / "s.zarr", "0")[0])
                b = float(_run(TIMED.format(case=case), root / "s.zarr", "1")[0])
                plain.append(a)
                synced.append(b)
                ratios.append(b / a)
            total, busy, wait, verify, rerun, chunks, clean = _run(PARTS.format(case=case), root / "s.zarr", "1")
            size = sum(f.stat().st_size for f in (root / "s.zarr").rglob("*") if f.is_file()) / 1e6
            print(
                f"{name}: {chunks} chunks, {size:.0f} MB on disk\n"
                f"  without fsync {statistics.median(plain):.2f} s, with fsync {statistics.median(synced):.2f} s "
                f"(medians of {args.repeat}); median ratio of pairs {statistics.median(ratios):.3f} "
                f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})\n"
                f"  one run with fsync: {float(total):.2f} s; syncer busy {float(busy):.2f} s beside the computing; "
                f"close() waited {float(wait):.3f} s ({100 * float(wait) / float(total):.1f}% of the sweep)\n"
                f"  verify: {float(verify):.2f} s (clean={clean}); rerun of the finished store: {float(rerun):.2f} s"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
