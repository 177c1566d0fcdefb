"""Models from equinox and flax nnx: the adapters, against plain training loops, and docs/models.md as written."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep
from lrsweep import problems

eqx = pytest.importorskip("equinox")
nnx = pytest.importorskip("flax.nnx")

DOCS = pathlib.Path(__file__).parent.parent / "docs" / "models.md"
RNG = np.random.default_rng(1)
X = RNG.normal(size=(24, 3)).astype(np.float32)
Y = np.tanh(X @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
LRS = [0.003, 0.03]
EPOCHS = 15


def squared_error(model, x_i, y_i):
    return jnp.mean((model(x_i) - y_i) ** 2)


def make_eqx(key):
    return eqx.nn.MLP(3, 1, 5, 1, activation=jnp.tanh, key=key)


class Net(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 5, rngs=rngs)
        self.out = nnx.Linear(5, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def make_nnx(key):
    return Net(nnx.Rngs(params=key))


@pytest.mark.slow  # three sweeps with their compiles: about 15 s on an idle 2-core machine
def test_docs_models_run_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)
    out = capsys.readouterr().out
    shown = re.findall(r"# prints (\[.*\])\nprint\(lrsweep\.problems\.param_names\(problem\.init\)\)", DOCS.read_text())
    assert len(shown) == 3
    for names in shown:
        assert names in out  # the names the page shows are the names printed


def test_equinox_sweep_equals_a_plain_equinox_optax_loop():
    p = problems.from_equinox(make_eqx, squared_error, X, Y)
    assert problems.param_names(p.init) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    ds = lrsweep.sweep(p, LRS, optimizer="adam", epochs=EPOCHS, every=EPOCHS)
    for k, lr in enumerate(LRS):
        model = make_eqx(jax.random.key(0))  # the default init: the model built from key(0)
        tx = optax.adam(lr)
        state = tx.init(eqx.filter(model, eqx.is_inexact_array))
        mean_loss = lambda m: jnp.mean(jax.vmap(squared_error, in_axes=(None, 0, 0))(m, X, Y))
        for _ in range(EPOCHS):
            grads = eqx.filter_grad(mean_loss)(model)
            updates, state = tx.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
            model = eqx.apply_updates(model, updates)
        run = ds.isel(lr=k, init=0, epoch=-1)
        np.testing.assert_allclose(run["layers.0.weight"].values, model.layers[0].weight, rtol=0, atol=1e-5)
        np.testing.assert_allclose(run["layers.1.bias"].values, model.layers[1].bias, rtol=0, atol=1e-5)


def test_flax_sweep_equals_a_plain_nnx_optimizer_loop():
    p = problems.from_flax(make_nnx, squared_error, X, Y)
    assert problems.param_names(p.init) == ["hidden.bias", "hidden.kernel", "out.bias", "out.kernel"]
    ds = lrsweep.sweep(p, LRS, optimizer="adam", epochs=EPOCHS, every=EPOCHS)
    for k, lr in enumerate(LRS):
        model = make_nnx(jax.random.key(0))
        opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
        mean_loss = lambda m: jnp.mean(jax.vmap(squared_error, in_axes=(None, 0, 0))(m, X, Y))
        for _ in range(EPOCHS):
            opt.update(model, nnx.grad(mean_loss)(model))
        run = ds.isel(lr=k, init=0, epoch=-1)
        np.testing.assert_allclose(run["hidden.kernel"].values, model.hidden.kernel[...], rtol=0, atol=1e-5)
        np.testing.assert_allclose(run["out.bias"].values, model.out.bias[...], rtol=0, atol=1e-5)


@pytest.mark.parametrize("adapter,make", [(problems.from_equinox, make_eqx), (problems.from_flax, make_nnx)])
def test_a_sampler_draws_a_fresh_model_per_key(adapter, make):
    p = adapter(make, squared_error, X, Y)
    first = jax.tree.leaves(p.init)
    built = [np.asarray(a) for a in jax.tree.leaves(adapter(make(jax.random.key(0)), squared_error, X, Y).init)]
    for a, b in zip(first, built):
        np.testing.assert_array_equal(a, b)  # the default init is the model of key(0)
    draws = [jax.tree.leaves(p.sampler(jax.random.key(s))) for s in (1, 2)]
    assert not np.array_equal(draws[0][-1], draws[1][-1]) or not np.array_equal(draws[0][0], draws[1][0])
    ds = lrsweep.sweep(p, 0.01, init=3, epochs=2, every=2)
    name = problems.param_names(p.init)[-1]
    w0 = ds[name].isel(lr=0, epoch=0).values
    assert len({w.tobytes() for w in w0}) == 3  # three different models


def test_a_model_object_is_parameters_and_metrics_take_the_model():
    model = make_eqx(jax.random.key(3))
    accuracy = lambda m, x_i, y_i: (jnp.sign(m(x_i)[0]) == jnp.sign(y_i[0])).astype(jnp.float32)
    p = problems.from_equinox(model, squared_error, X, Y, x_eval=X[:4], y_eval=Y[:4], metrics={"accuracy": accuracy})
    assert p.sampler is None and list(p.metric_fns()) == ["eval_loss", "accuracy"]
    ref = float(accuracy(model, X[0], Y[0]))
    assert float(p.metrics["accuracy"].fn(p.init, X[0], Y[0])) == ref
    # a plain Problem given an equinox module as init takes it for parameters, not for a sampler
    params = eqx.filter(model, eqx.is_inexact_array)
    assert problems.Problem("m", lambda p, x, y: jnp.sum(p.layers[0].bias) * 0.0, X, Y, init=params).sampler is None


@pytest.mark.parametrize(
    "model,fragment",
    [(3, "could not be split into parameters"), (lambda key: "no model", "expected an equinox.Module")],
)
def test_bad_models_are_one_line(model, fragment):
    with pytest.raises(ValueError) as err:
        problems.from_equinox(model, squared_error, X, Y)
    assert fragment in str(err.value) and "\n" not in str(err.value)
