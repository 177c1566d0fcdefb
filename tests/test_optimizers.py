"""Optimizers: every config of a sweep equals optax run one config at a time."""

import functools
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep
from lrsweep import engine, precision, problems, theory

PROBLEM = problems.quadratic(dim=3, cond=10.0, seed=1)
LRS = [0.01, 0.05, 0.15]
EPOCHS = 40

FACTORIES = {
    "gd": optax.sgd,
    "momentum": functools.partial(optax.sgd, momentum=0.9),
    "nesterov": functools.partial(optax.sgd, momentum=0.9, nesterov=True),
    "adam": optax.adam,
    "rmsprop": optax.rmsprop,
}


def _compiles(fn) -> int:
    """How many programs a jitted function has compiled (JAX's private count, absent from its type stubs)."""
    return fn._cache_size()  # pyright: ignore[reportAttributeAccessIssue]


def optax_one_config(factory, lr, epochs, init=None):
    """Plain optax on one config, op by op in float64: the reference trajectory of p."""
    policy = precision.get("float64")
    with policy.context():
        loss = engine.loss_of(PROBLEM, policy)
        params = {"p": jnp.asarray(PROBLEM.init["p"] if init is None else init, jnp.float64)}
        tx = factory(learning_rate=lr)
        state = tx.init(params)
        out = [params["p"]]
        for _ in range(epochs):
            grads = jax.grad(loss)(params)
            updates, state = tx.update(grads, state, params)
            params = cast(dict, optax.apply_updates(params, updates))
            out.append(params["p"])
        return np.asarray(jnp.stack(out))


# Compiled and op-by-op float64 programs round differently in the last bits, and adaptive
# optimizers amplify that a little over the epochs: equal to 1e-8, not to the bit.
RTOL = 1e-8


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sweep_equals_optax_one_config_at_a_time(name):
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer=name, precision="float64")
    assert ds.attrs["optimizer"] == name
    for k, lr in enumerate(LRS):
        ref = optax_one_config(FACTORIES[name], lr, EPOCHS)
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=RTOL, atol=RTOL / 100)


def test_any_optax_factory_with_its_hyperparameters():
    kwargs = {"weight_decay": 0.1, "b1": 0.8}
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer=optax.adamw, optimizer_kwargs=kwargs, precision="float64")
    for k, lr in enumerate(LRS):
        ref = optax_one_config(functools.partial(optax.adamw, **kwargs), lr, EPOCHS)
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=RTOL, atol=RTOL / 100)


def test_named_optimizer_hyperparameters_override_the_defaults():
    ds = lrsweep.sweep(
        PROBLEM, 0.05, epochs=EPOCHS, optimizer="momentum", optimizer_kwargs={"momentum": 0.5}, precision="float64"
    )
    ref = optax_one_config(functools.partial(optax.sgd, momentum=0.5), 0.05, EPOCHS)
    np.testing.assert_allclose(ds.p.isel(lr=0, init=0).values, ref, rtol=RTOL)


@pytest.mark.parametrize("precision_name", ["float32", "mixed"])
def test_optimizer_state_follows_the_precision_policy(precision_name):
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer="adam", precision=precision_name)
    ref = np.stack([optax_one_config(optax.adam, lr, EPOCHS) for lr in LRS])
    assert ds.p.dtype == np.float32
    np.testing.assert_allclose(ds.p.isel(init=0).values, ref, rtol=1e-4, atol=1e-5)


def test_one_compile_for_every_learning_rate():
    kw: dict[str, Any] = dict(epochs=7, optimizer="adam", record="summary")
    lrsweep.sweep(PROBLEM, np.geomspace(1e-2, 1, 50), **kw)
    before = _compiles(engine.run_chunk)
    lrsweep.sweep(PROBLEM, np.geomspace(1e-3, 1, 50), **kw)
    lrsweep.sweep(PROBLEM, np.geomspace(1e-3, 1, 40), **kw)  # the same chunk of 64
    assert _compiles(engine.run_chunk) == before


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_heavy_ball_first_divergence_is_at_the_critical_lr(beta):
    q = problems.quadratic(dim=2, cond=10.0)
    critical = (2 + 2 * beta) / 10.0  # lambda_max = cond = 10, closed form
    assert theory.critical_lr(q, "momentum", momentum=beta) == pytest.approx(critical, rel=1e-9)
    lr = np.linspace(0.9 * critical, 1.1 * critical, 201)
    ds = lrsweep.sweep(
        q,
        lr,
        epochs=4000,
        optimizer="momentum",
        optimizer_kwargs={"momentum": beta},
        precision="float64",
        record="summary",
    )
    diverged = lrsweep.outcome_names(ds.outcome.sel(init=0)) == "diverged"
    first = lr[np.argmax(diverged)]
    assert diverged.any() and not diverged[lr < critical - (lr[1] - lr[0])].any()
    assert abs(first - critical) <= lr[1] - lr[0]


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"optimizer": "sgdx"}, "optimizer='sgdx'"),
        ({"optimizer": 3}, "optimizer=3"),
        ({"optimizer": "gd", "optimizer_kwargs": {"momentum": 0.9}}, "'gd' takes no hyperparameters"),
        ({"optimizer": "adam", "optimizer_kwargs": {"learning_rate": 0.1}}, "may not set 'learning_rate'"),
        ({"optimizer": "adam", "optimizer_kwargs": {"bogus": 1}}, "bogus"),
        ({"optimizer": lambda: None}, "factory(learning_rate=0.1"),
    ],
)
def test_bad_optimizers(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        lrsweep.sweep(PROBLEM, 0.1, epochs=2, **kwargs)
    assert fragment in str(err.value)
