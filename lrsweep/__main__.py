"""``python -m lrsweep``: the same as the ``lrsweep`` command."""

import sys

from .cli import main

sys.exit(main())
