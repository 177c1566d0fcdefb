"""``python benchmarks/fsync_cost.py [--n 64] [--mb 4] [--dir .]``: what durability costs.

Writes ``n`` chunk-sized files (``mb`` MB each, like a store's tiles) three ways and prints the
times: plain writes (left in the page cache), writes then one ``fsync_tree`` over all of them
(each file synced, each directory once), and writes with a ``fsync_file`` + ``fsync_dir`` per file
(the unbatched way). Everything is flushed (``os.sync``) before each timing so that one way does
not pay for the previous one's dirty pages. Run it on the filesystem the stores go to: ``--dir``
(a temporary folder is made inside it and removed). ``/tmp`` on tmpfs makes fsync free.
"""

import argparse
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# lrsweep._fs alone (stdlib only), without importing the package and JAX.
_spec = importlib.util.spec_from_file_location("_lrsweep_fs", Path(__file__).resolve().parent.parent / "lrsweep/_fs.py")
assert _spec is not None and _spec.loader is not None
fs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fs)


def _write(folder: Path, n: int, data: bytes, per_file_sync: bool) -> list[Path]:
    paths = []
    for i in range(n):
        p = folder / f"c/{i}"
        p.parent.mkdir(exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        if per_file_sync:
            fs.fsync_file(p)
            fs.fsync_dir(p.parent)
        paths.append(p)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="files per run (default 64)")
    parser.add_argument("--mb", type=float, default=4.0, help="MB per file (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way; the median is shown (default 3)")
    parser.add_argument("--dir", default=".", help="where to write (a temporary folder inside it)")
    args = parser.parse_args()
    data = os.urandom(int(args.mb * 2**20))
    ways = {
        "no fsync": lambda d: _write(d, args.n, data, False),
        "fsync_tree (batched)": lambda d: fs.fsync_tree(_write(d, args.n, data, False)),
        "fsync per file": lambda d: _write(d, args.n, data, True),
    }
    times = {name: [] for name in ways}
    root = Path(tempfile.mkdtemp(prefix="fsync_cost_", dir=args.dir))
    try:
        for r in range(args.repeat):
            for name, way in ways.items():
                folder = root / f"{r}-{len(times[name])}-{name.split()[0]}"
                folder.mkdir()
                os.sync()
                t0 = time.perf_counter()
                way(folder)
                times[name].append(time.perf_counter() - t0)
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total_mb = args.n * args.mb
    print(f"{args.n} files x {args.mb:g} MB = {total_mb:g} MB in {os.path.abspath(args.dir)}, median of {args.repeat}")
    base = statistics.median(times["no fsync"])
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:22s} {t:8.3f} s  {total_mb / t:8.0f} MB/s  x{t / base:6.1f}")
    print(f"fsync_tree / no fsync = {statistics.median(times['fsync_tree (batched)']) / base:.1f}")


if __name__ == "__main__":
    main()
