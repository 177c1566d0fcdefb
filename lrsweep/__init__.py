"""lrsweep: train many learning rates and initialisations at once, in JAX.

The public API:

- :func:`sweep`: every (learning rate, init) pair trained at once; an ``xarray.Dataset``.
- :func:`trace`: the lesson's per-epoch table for one run; a ``pandas.DataFrame``.
- :class:`Problem` and :mod:`lrsweep.problems` (``linear()``): what is trained.
- :data:`OUTCOMES`: the outcome names (``lrsweep.outcomes`` defines them).
"""

from . import problems
from .api import SweepInterrupted, sweep, trace
from .grid import parse_lr
from .outcomes import NAMES as OUTCOMES
from .problems import Problem

__version__ = "0.1.0"

__all__ = ["OUTCOMES", "Problem", "SweepInterrupted", "__version__", "parse_lr", "problems", "sweep", "trace"]
