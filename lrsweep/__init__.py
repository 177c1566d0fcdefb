"""lrsweep: train many learning rates and initialisations at once, in JAX.

The public API:

- :func:`sweep`: every (learning rate, init) pair trained at once; an ``xarray.Dataset``.
- :func:`trace`: the lesson's per-epoch table for one run; a ``pandas.DataFrame``.
- :class:`Problem` and :mod:`lrsweep.problems`: what is trained (``linear()``, ``chapter_net()``,
  ``quadratic()``, ``logistic()``, ``mlp()``, or your own).
- :func:`init_grid`: a grid of initialisations over chosen parameters.
- :func:`open`, :func:`export` and :func:`verify`: reopen a sweep's Zarr store (``sweep(..., out=path)``),
  write its summary to CSV or Parquet, list its damaged chunks.
- :func:`plot`: a matplotlib Figure of a sweep: final loss against lr with the spread over runs, outcomes,
  the suggested and critical lr (fastai ``lr_find`` style), or a 2-D score map.
- :func:`explore`: one self-contained, offline HTML page to explore a sweep (or a store).
- :func:`suggest_lr`: one learning rate from a sweep (best, largest stable, fastest, lowest loss, valley);
  :func:`suggest_point`: the best point of the joint grid of lr and hyperparameters.
- :mod:`lrsweep.maps`: trainability maps over two layers' learning rates, their fractal dimension.
- :mod:`lrsweep.theory`: Hessian, critical and optimal learning rates, convergence factors.
- :data:`OUTCOMES`: the outcome names (``lrsweep.outcomes`` defines them); :func:`outcome_names`
  decodes a result's int8 outcome codes.
"""

from . import maps, optimizers, problems, sharpness, theory
from .answer import suggest as suggest_point
from .api import SweepInterrupted, sweep, trace
from .explore import explore
from .grid import init_grid, parse_lr
from .outcomes import NAMES as OUTCOMES
from .outcomes import names as outcome_names
from .plot import plot
from .problems import Problem, problem_factory
from .results import export, open, verify  # noqa: A004 - lrsweep.open, as xarray.open_dataset
from .suggest import suggest_lr

__version__ = "0.1.0"

__all__ = [
    "OUTCOMES",
    "Problem",
    "SweepInterrupted",
    "__version__",
    "explore",
    "export",
    "init_grid",
    "maps",
    "open",
    "optimizers",
    "outcome_names",
    "parse_lr",
    "plot",
    "problem_factory",
    "problems",
    "sharpness",
    "suggest_lr",
    "suggest_point",
    "sweep",
    "theory",
    "trace",
    "verify",
]
