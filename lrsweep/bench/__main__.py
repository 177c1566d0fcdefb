"""``python -m lrsweep.bench``: the same as ``lrsweep bench``."""

import sys

from . import main


def _main() -> int:
    try:
        return main()
    except ValueError as err:
        print(f"lrsweep: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
