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
  :func:`suggest_point`: the best point of a sweep's joint grid (lr and hyperparameters).
- :mod:`lrsweep.sharpness`: the top Hessian eigenvalue along each run's path (``track_sharpness``).
- :mod:`lrsweep.maps`: trainability maps over two layers' learning rates, their fractal dimension.
- :mod:`lrsweep.theory`: Hessian, critical and optimal learning rates, convergence factors.
- The three floors under :func:`sweep`, for callers that need the plan or the sink:
  ``spec, options = lrsweep.spec.build(problem, lr, **settings)`` splits the keywords into a
  :class:`SweepSpec` (what is computed) and :class:`RunOptions` (where and how);
  :func:`plan_sweep` turns them into a frozen :class:`Plan` (the problem built once, axes, chunks,
  the result's layout); :func:`open_sink` opens where the result goes (memory or a Zarr store,
  resumed); :func:`run_plan` trains the chunks the sink lacks and returns the Dataset with timings.
  (``lrsweep.plan`` is the module of chunk and layout arithmetic, hence ``plan_sweep``.)
- :data:`OUTCOMES`: the outcome names (``lrsweep.outcomes`` defines them); :func:`outcome_names`
  decodes a result's int8 outcome codes.

Every name loads on first use (PEP 562): ``import lrsweep`` itself imports neither JAX nor matplotlib,
pyarrow or zarr, so the ``lrsweep`` command answers ``--help`` at once; ``lrsweep.sweep`` loads JAX and
the engine, ``lrsweep.plot`` matplotlib, ``lrsweep.open`` zarr and pyarrow. ``from lrsweep import plot``
and ``lrsweep.engine`` (any submodule) work as with eager imports.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType as _ModuleType  # not `import types`: lrsweep.types is a submodule
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads them
    from . import maps, optimizers, problems, sharpness, theory
    from .answer import suggest as suggest_point
    from .api import SweepInterrupted, SweepSettings, sweep, trace
    from .executor import run as run_plan
    from .explore import explore
    from .grid import init_grid, parse_lr
    from .outcomes import NAMES as OUTCOMES
    from .outcomes import names as outcome_names
    from .planner import Plan
    from .planner import plan as plan_sweep
    from .plot import plot
    from .problems import Problem, problem_factory
    from .results import export, open, verify  # noqa: A004 - lrsweep.open, as xarray.open_dataset
    from .sinks import open_sink
    from .spec import RunOptions, SweepSpec
    from .suggest import suggest_lr

from ._version import __version__

#: Public name -> (module, attribute in it; None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "OUTCOMES": ("outcomes", "NAMES"),
    "Plan": ("planner", "Plan"),
    "Problem": ("problems", "Problem"),
    "RunOptions": ("spec", "RunOptions"),
    "SweepInterrupted": ("api", "SweepInterrupted"),
    "SweepSettings": ("api", "SweepSettings"),
    "SweepSpec": ("spec", "SweepSpec"),
    "explore": ("explore", "explore"),
    "export": ("results", "export"),
    "init_grid": ("grid", "init_grid"),
    "maps": ("maps", None),
    "open": ("results", "open"),
    "open_sink": ("sinks", "open_sink"),
    "optimizers": ("optimizers", None),
    "outcome_names": ("outcomes", "names"),
    "parse_lr": ("grid", "parse_lr"),
    "plan_sweep": ("planner", "plan"),
    "plot": ("plot", "plot"),
    "problem_factory": ("problems", "problem_factory"),
    "problems": ("problems", None),
    "run_plan": ("executor", "run"),
    "sharpness": ("sharpness", None),
    "suggest_lr": ("suggest", "suggest_lr"),
    "suggest_point": ("answer", "suggest"),
    "sweep": ("api", "sweep"),
    "theory": ("theory", None),
    "trace": ("api", "trace"),
    "verify": ("results", "verify"),
}

__all__ = [
    "OUTCOMES",
    "Plan",
    "Problem",
    "RunOptions",
    "SweepInterrupted",
    "SweepSettings",
    "SweepSpec",
    "__version__",
    "explore",
    "export",
    "init_grid",
    "maps",
    "open",
    "open_sink",
    "optimizers",
    "outcome_names",
    "parse_lr",
    "plan_sweep",
    "plot",
    "problem_factory",
    "problems",
    "run_plan",
    "sharpness",
    "suggest_lr",
    "suggest_point",
    "sweep",
    "theory",
    "trace",
    "verify",
]


def __getattr__(name: str) -> Any:
    """A public name, or any submodule (``lrsweep.engine``), imported on first use and then cached."""
    module_name, attr = _LAZY.get(name, (name, None))
    if name.startswith("_") and name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{module_name}":
            raise  # a dependency is missing: say which, not that lrsweep lacks the name
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Facade(_ModuleType):
    """The package module. Importing a submodule sets it as an attribute of its package, so a first
    ``import lrsweep.plot`` (from anywhere) would replace the function ``lrsweep.plot`` with the module of
    that name; here the function is kept, as ``from .plot import plot`` at import time used to do."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SAME_NAME and isinstance(value, _ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


#: Public functions named like the submodule that defines them.
_SAME_NAME = frozenset(name for name, (module, attr) in _LAZY.items() if name == module == attr)

sys.modules[__name__].__class__ = _Facade
