"""``python benchmarks/run.py [flags]``: the benchmark suite, the same as ``lrsweep bench``.

See ``lrsweep/bench/`` (``python benchmarks/run.py --help``) and ``benchmarks/README.md``.
"""

import sys
from pathlib import Path

# Run from a source checkout without installing: the package is the folder next to this one.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lrsweep.bench.__main__ import _main

if __name__ == "__main__":
    sys.exit(_main())
