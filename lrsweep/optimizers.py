"""Optimizers: the lesson's plain gradient descent, and optax transformations.

=============  ===============================================  ==============================
name           update (per parameter, learning rate ``lr``)     implementation
=============  ===============================================  ==============================
``gd``         ``p <- p - lr * g``                              built in (exact, the lesson's)
``momentum``   ``v <- g + beta v;  p <- p - lr * v``            ``optax.sgd(momentum=0.9)``
``nesterov``   ``v <- g + beta v;  p <- p - lr (g + beta v)``   ``optax.sgd(momentum=0.9, nesterov=True)``
``adam``       Adam (Kingma & Ba, 2015)                         ``optax.adam``
``rmsprop``    RMSProp                                          ``optax.rmsprop``
=============  ===============================================  ==============================

Any optax factory that takes ``learning_rate`` works too (``optax.lion``, ``optax.adamw`` ...), with
keyword arguments for its other hyperparameters. The learning rate is a per-config array: the
factory is wrapped in ``optax.inject_hyperparams``, which moves ``learning_rate`` into the optimizer
state, so one compiled program serves every learning rate in a sweep. With per-group learning rates
each group gets its own injected transformation, combined with ``optax.partition``.

Why optax: its transformations are the reference implementations our users already trust, and
"trajectories equal optax run one config at a time" is then a property we can test.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import optax

from .types import PyTree

NAMED: dict[str, tuple[Callable | None, dict]] = {
    "gd": (None, {}),
    "momentum": (optax.sgd, {"momentum": 0.9}),
    "nesterov": (optax.sgd, {"momentum": 0.9, "nesterov": True}),
    "adam": (optax.adam, {}),
    "rmsprop": (optax.rmsprop, {}),
}


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """A hashable optimizer spec: a name, an optax factory (None for ``gd``) and its keyword args."""

    name: str
    factory: Callable[..., optax.GradientTransformation] | None
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def is_gd(self) -> bool:
        return self.factory is None

    def transformation(
        self, lr, labels: PyTree | None, groups: tuple[str, ...], hyper: dict | None = None
    ) -> optax.GradientTransformation:
        """The optax transformation for one config.

        ``lr`` has shape ``(G,)``, one per group; ``hyper`` maps swept hyperparameter names to this
        config's scalar values (injected like the learning rate, so they may be traced arrays).
        """
        if self.factory is None:
            raise ValueError("gradient descent ('gd') is built into the engine; it has no optax transformation")
        make = optax.inject_hyperparams(functools.partial(self.factory, **dict(self.kwargs)))
        hyper = hyper or {}
        if labels is None:
            return make(learning_rate=lr[0], **hyper)
        return optax.partition({g: make(learning_rate=lr[k], **hyper) for k, g in enumerate(groups)}, labels)


def get(optimizer: str | Callable = "gd", kwargs: dict | None = None) -> Optimizer:
    """Resolve ``optimizer`` (a name in ``NAMED`` or an optax factory) and its hyperparameters."""
    kwargs = dict(kwargs or {})
    if isinstance(optimizer, str):
        if optimizer not in NAMED:
            raise ValueError(
                f"optimizer={optimizer!r} is invalid: expected one of {list(NAMED)} or an optax factory "
                "that takes learning_rate"
            )
        factory, defaults = NAMED[optimizer]
        if factory is None and kwargs:
            raise ValueError(f"optimizer_kwargs={kwargs!r} is invalid: 'gd' takes no hyperparameters")
        kwargs = {**defaults, **kwargs}
        name = optimizer
    elif callable(optimizer):
        factory, name = optimizer, getattr(optimizer, "__name__", repr(optimizer))
    else:
        raise ValueError(f"optimizer={optimizer!r} is invalid: expected a name in {list(NAMED)} or an optax factory")
    if "learning_rate" in kwargs:
        raise ValueError("optimizer_kwargs may not set 'learning_rate': the sweep's lr does")
    if factory is not None:
        try:  # fail now, with a clear message, rather than deep inside a trace
            tx = factory(learning_rate=0.1, **kwargs)
            tx.init({"p": jax.numpy.zeros(())})
        except Exception as err:  # noqa: BLE001 - any failure means the factory does not fit
            raise ValueError(
                f"optimizer={name!r} with optimizer_kwargs={kwargs!r} is invalid: calling it as "
                f"factory(learning_rate=0.1, **optimizer_kwargs) failed with {type(err).__name__}: {err}"
            ) from None
    return Optimizer(name, factory, tuple(sorted(kwargs.items())))


#: The lesson's plain gradient descent.
GD = get("gd")
