"""The suggestion on held-out accuracy, on real data sets lrsweep does not ship: scikit-learn's wine,
breast cancer and iris, each standardised, split once, with a small tanh MLP and softmax cross-entropy.

The check, for each: ``suggest_lr(ds, metric="accuracy")`` of an Adam sweep, trained alone with plain
optax (one config, full batch, the same steps and init), reaches within half a point of the test
accuracy of the grid's best lr trained the same way.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep
from lrsweep import engine

# The digits problem's MLP (tanh hidden layer, softmax cross-entropy) serves any input and class count.
from lrsweep.problems.datasets import _batch_loss, _loss, accuracy

sklearn_datasets = pytest.importorskip("sklearn.datasets")

pytestmark = pytest.mark.slow

STEPS, HIDDEN, HELD_OUT = 200, 16, 0.3


def make(name: str) -> lrsweep.Problem:
    """The data set ``load_<name>()``: a fixed permutation (seed 0) holds out 30%; the features
    standardised by the training part's mean and deviation; one-hot targets."""
    data = getattr(sklearn_datasets, f"load_{name}")()
    x, labels = np.asarray(data.data, np.float64), np.asarray(data.target)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = round(HELD_OUT * len(labels))
    train, test = order[n_test:], order[:n_test]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-12
    x = ((x - mean) / std).astype(np.float32)
    classes = int(labels.max()) + 1
    y = np.eye(classes, dtype=np.float32)[labels]
    n_in = x.shape[1]

    def sampler(key):
        k0, k1 = jax.random.split(key)
        return {
            "W0": jax.random.normal(k0, (n_in, HIDDEN)) / np.sqrt(n_in),
            "b0": jnp.zeros(HIDDEN),
            "W1": jax.random.normal(k1, (HIDDEN, classes)) / np.sqrt(HIDDEN),
            "b1": jnp.zeros(classes),
        }

    return lrsweep.Problem(
        name, _loss, x[train], y[train], jax.tree.map(np.asarray, sampler(jax.random.key(0))), sampler=sampler,
        batch_loss=_batch_loss, x_eval=x[test], y_eval=y[test], metrics={"accuracy": accuracy},
    )  # fmt: skip


def alone(problem, params, lr: float) -> float:
    """Plain optax Adam, one config, full batch, ``STEPS`` steps: its held-out accuracy."""
    tx = optax.adam(lr)

    @jax.jit
    def step(p, s):
        g = jax.grad(_batch_loss)(p, problem.x, problem.y)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = tx.init(params)
    for _ in range(STEPS):
        params, state = step(params, state)
    return float(jnp.mean(jax.vmap(accuracy, in_axes=(None, 0, 0))(params, problem.x_eval, problem.y_eval)))


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "iris"])
def test_the_suggestion_on_accuracy_trains_alone_within_half_a_point_of_the_best_grid_lr(name):
    p = make(name)
    lrs = np.geomspace(1e-4, 3.0, 16)
    ds = lrsweep.sweep(p, lrs, optimizer="adam", epochs=STEPS, init=2, record="summary", progress=False)
    suggested = lrsweep.suggest_lr(ds, metric="accuracy")
    worst = ds["accuracy"].min("init")  # the suggestion's aggregation: worst over inits
    best_grid = float(worst["lr"][int(worst.argmax("lr"))])
    assert p.sampler is not None
    params0 = jax.tree.map(lambda a: a[0], engine.sample_inits(p.sampler, 0, 2))
    at_best = alone(p, params0, best_grid)
    assert at_best == pytest.approx(float(ds["accuracy"].sel(lr=best_grid).isel(init=0)), abs=0.02)
    gap = at_best - alone(p, params0, suggested)
    assert gap <= 0.005, (name, suggested, best_grid, gap, worst.values.round(3).tolist())
