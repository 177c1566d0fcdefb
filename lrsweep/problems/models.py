"""Problems from equinox and flax models: :func:`from_equinox` and :func:`from_flax` (nnx).

A model object holds its parameters; lrsweep trains a pytree of parameters. Each adapter splits
the model once into its trainable arrays (the problem's ``init``) and everything else (the
structure, activation functions, non-trainable state: fixed), and the problem's loss puts them
back together before it calls the user's per-example loss::

    equinox:  params, static = eqx.partition(model, eqx.is_inexact_array)
              loss(params, x_i, y_i) = user_loss(eqx.combine(params, static), x_i, y_i)
    flax nnx: graphdef, state, rest = nnx.split(model, nnx.Param, ...)
              params = nnx.to_pure_dict(state)   (nested dicts of arrays)
              loss(params, x_i, y_i) = user_loss(nnx.merge(graphdef, state_of(params), rest), x_i, y_i)

Parameter names are the dotted pytree paths (``layers.0.weight`` for ``eqx.nn.MLP``,
``linear1.kernel`` for an nnx module with an attribute ``linear1``): the result's variables.

``model`` may be a model, or a function ``make_model(key) -> model`` that builds a fresh one from
a ``jax.random`` key: that is the problem's sampler, so ``sweep(..., init=N, seed=S)`` trains N
models drawn from N keys, and the default init is the model built from ``jax.random.key(0)``.
Every model it builds must have the same structure.

equinox and flax are imported here only, when an adapter is called: ``import lrsweep`` never
needs them (``pip install 'lrsweep[models]'`` installs both).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax

from ._problem import Metric, Problem, param_names

PyTree = Any


def _wrap(fn: Callable, to_model: Callable[[PyTree], Any]) -> Callable:
    """``fn(model, ...)`` as ``fn(params, ...)``. It wraps ``fn`` (name and module), so that a sweep's
    identity follows the user's code (``lrsweep.identity.code_fingerprint``)."""

    @functools.wraps(fn)
    def on_params(params, *args):
        return fn(to_model(params), *args)

    return on_params


def _adapt(
    name: str,
    model: Any,
    split: Callable[[Any], tuple[PyTree, Callable[[PyTree], Any]]],
    loss: Callable,
    x,
    y,
    kind: str,
    kwargs: dict,
) -> Problem:
    """The :class:`Problem` of ``model`` (or of ``make_model(key)``), split by ``split(model) ->
    (params, to_model)``. ``kwargs`` are further :class:`Problem` fields; ``batch_loss`` and the
    ``metrics`` take the model, like ``loss``."""
    where = f"{kind}: problem {name!r}"
    if not callable(loss):
        raise ValueError(f"{where}: loss={loss!r} is invalid: expected a function loss(model, x_i, y_i)")
    make = model if _is_factory(model, kind) else None
    try:
        first = make(jax.random.key(0)) if make is not None else model
        params, to_model = split(first)
    except Exception as err:  # noqa: BLE001 - report any failure of user code with the problem's name
        raise ValueError(
            f"{where}: the model could not be split into parameters: {type(err).__name__}: {err}"
        ) from None
    if make is not None:
        draw = lambda key: split(make(key))[0]
        kwargs = {**kwargs, "sampler": draw}
    metrics = kwargs.pop("metrics", None) or {}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"{where}: metrics={metrics!r} is invalid: expected a dict {{name: fn(model, x_i, y_i)}}")
    metrics = {
        k: Metric(_wrap(m.fn, to_model), m.maximize)
        if isinstance(m, Metric)
        else _wrap(m, to_model)
        if callable(m)
        else m
        for k, m in metrics.items()
    }
    if kwargs.get("batch_loss") is not None:
        kwargs["batch_loss"] = _wrap(kwargs["batch_loss"], to_model)
    return Problem(name=name, loss=_wrap(loss, to_model), x=x, y=y, init=params, metrics=metrics, **kwargs)


def _is_factory(model: Any, kind: str) -> bool:
    """A function that builds a model (not a model: equinox and nnx models may be callable too)."""
    if kind == "equinox":
        import equinox as eqx

        return not isinstance(model, eqx.Module) and callable(model)
    from flax import nnx

    return not isinstance(model, nnx.Module) and callable(model)


def from_equinox(model: Any, loss: Callable, x, y, *, name: str = "equinox", **problem: Any) -> Problem:
    """A :class:`Problem` that trains an equinox model's inexact arrays (module docstring).

    Args:
      model: an ``equinox.Module``, or ``make_model(key) -> Module`` (the sampler of inits).
      loss: the per-example loss ``loss(model, x_i, y_i) -> scalar``.
      x, y: the training data, ``(n, ...)`` each.
      name: the problem's name.
      problem: other :class:`Problem` fields: ``x_eval``, ``y_eval``, ``metrics`` (each
        ``fn(model, x_i, y_i)``), ``batch_loss`` (``fn(model, x, y)``), ``min_loss``, ``description``.

    Returns:
      A Problem whose parameters are ``eqx.partition(model, eqx.is_inexact_array)[0]`` (an equinox
      module with its non-array fields None), named by path (``layers.0.weight``).
    """
    import equinox as eqx

    def split(m):
        if not isinstance(m, eqx.Module):
            raise TypeError(f"expected an equinox.Module, got {type(m).__name__}")
        params, static = eqx.partition(m, eqx.is_inexact_array)
        return params, functools.partial(eqx.combine, static)

    return _adapt(name, model, split, loss, x, y, "equinox", problem)


def from_flax(model: Any, loss: Callable, x, y, *, name: str = "flax", **problem: Any) -> Problem:
    """A :class:`Problem` that trains a flax nnx model's ``nnx.Param`` variables (module docstring).

    Args:
      model: an ``flax.nnx.Module``, or ``make_model(key) -> Module`` (the sampler of inits; e.g.
        ``lambda key: Net(nnx.Rngs(params=key))``).
      loss: the per-example loss ``loss(model, x_i, y_i) -> scalar``.
      x, y, name, problem: as :func:`from_equinox`.

    Returns:
      A Problem whose parameters are the nested dict of the model's ``nnx.Param`` arrays
      (``nnx.to_pure_dict(state)``), named by path (``linear1.kernel``). Other variables (batch
      statistics, RNG state) stay as the model built them. Linen modules are not supported: their
      parameters are already a dict, so a linen model is a plain Problem with
      ``loss = lambda params, x, y: f(module.apply({"params": params}, x), y)``.
    """
    from flax import nnx

    def split(m):
        if not isinstance(m, nnx.Module):
            raise TypeError(f"expected a flax.nnx.Module, got {type(m).__name__}")
        graphdef, state, rest = nnx.split(m, nnx.Param, ...)
        pure = nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict()
        treedef = jax.tree.structure(state)
        # The State's leaves and the pure dict's come in the same order (keys sorted at each
        # level); checked by name, so that rebuilding the State from pure leaves is safe.
        state_names = [n.removesuffix(".value") for n in param_names(state)]
        if state_names != param_names(pure):
            raise ValueError(f"the parameter paths {state_names} and {param_names(pure)} differ")

        def to_model(params):
            return nnx.merge(graphdef, jax.tree.unflatten(treedef, jax.tree.leaves(params)), rest)

        return pure, to_model

    return _adapt(name, model, split, loss, x, y, "flax", problem)
