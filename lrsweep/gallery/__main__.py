"""``python -m lrsweep.gallery --out DIR``: the same as ``lrsweep figures --out DIR``."""

import sys

from . import main

if __name__ == "__main__":  # guarded: pytest's doctest collection imports this module
    sys.exit(main())
