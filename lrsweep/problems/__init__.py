"""Problems: a per-example loss, a small data set and an initial parameter pytree.

- :class:`Problem`, checked when it is made (``_problem``);
- the built-ins ``linear()``, ``chapter_net()``, ``quadratic()``, ``logistic()`` and ``mlp()``
  (``builtins``), and ``digits()``, a real data set (``datasets``);
- models from equinox and flax nnx: :func:`from_equinox` and :func:`from_flax` (``models``; each
  imports its library when called);
- problems by name (``registry``): :func:`resolve`, :func:`get` and :func:`factory` accept a
  built-in name, a name registered under the ``lrsweep.problems`` entry point group, or
  ``"module:function"`` / ``"path/to/file.py:function"`` naming a function marked with
  :func:`problem_factory`; anything else is refused before it is called (``docs/trust.md``).
"""

from ._problem import (
    EVAL_LOSS,
    FACTORY_MARK,
    MAXIMIZED_METRICS,
    RESERVED_NAMES,
    Metric,
    Problem,
    check_params,
    is_problem_factory,
    param_names,
    problem_factory,
)
from .builtins import ACTIVATIONS, DEFAULT_GAINS, chapter_net, linear, logistic, mlp, quadratic
from .datasets import digits
from .models import from_equinox, from_flax
from .registry import BUILTINS, ENTRY_POINT_GROUP, check_args, factory, get, registered, resolve

__all__ = [
    "ACTIVATIONS",
    "BUILTINS",
    "DEFAULT_GAINS",
    "ENTRY_POINT_GROUP",
    "EVAL_LOSS",
    "FACTORY_MARK",
    "MAXIMIZED_METRICS",
    "RESERVED_NAMES",
    "Metric",
    "Problem",
    "chapter_net",
    "check_args",
    "check_params",
    "digits",
    "factory",
    "from_equinox",
    "from_flax",
    "get",
    "is_problem_factory",
    "linear",
    "logistic",
    "mlp",
    "param_names",
    "problem_factory",
    "quadratic",
    "registered",
    "resolve",
]
