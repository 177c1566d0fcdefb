"""The default suggestion on real sweeps whose losses span decades, checked by training alone.

For each problem: a sweep over lrs x 3 inits (drawn here with numpy), ``suggest_lr`` (method "best",
worst over the inits); then the suggested lr and the grid's best lr (lowest worst-over-inits final
loss) are each trained alone with plain optax, one init at a time, outside lrsweep. The suggestion
must reach a final loss (worst over the inits) within 2x of the best grid lr's, and must not sit on
the rising side past the minimum (no grid lr between the two ends more than 2x above the lowest).
Slow: a few sweeps of a few thousand config-epochs each on CPU.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep

INITS = 3


def _inits(problem, scale, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=(INITS, *np.shape(v))) * scale for k, v in problem.init.items()}


def _train_alone(problem, tx_factory, lr, init, epochs):
    """Plain optax, full batch, one config: the loss after ``epochs`` updates (float64)."""
    x, y = jnp.asarray(problem.x, jnp.float64), jnp.asarray(problem.y, jnp.float64)

    def loss(params):
        return jnp.mean(jax.vmap(problem.loss, in_axes=(None, 0, 0))(params, x, y))

    tx = tx_factory(lr)
    params = {k: jnp.asarray(v, jnp.float64) for k, v in init.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(epochs):
        params, state = step(params, state)
    return float(loss(params))


CASES = {
    # name: (problem, optimizer name, optax factory, lrs, epochs, init scale)
    "mlp_adam": (lambda: lrsweep.problems.mlp(n_data=16), "adam", optax.adam, np.geomspace(1e-3, 3, 12), 300, 1.0),
    "quadratic_gd": (
        lambda: lrsweep.problems.quadratic(cond=100.0),
        "gd",
        optax.sgd,
        np.geomspace(1e-3, 0.1, 16),
        300,
        1.0,
    ),
    "logistic_gd": (lambda: lrsweep.problems.logistic(), "gd", optax.sgd, np.geomspace(1e-2, 300, 16), 300, 1.0),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_default_suggestion_trained_alone_is_within_2x_of_the_best_grid_lr(name):
    make, optimizer, factory, lrs, epochs, scale = CASES[name]
    problem = make()
    inits = _inits(problem, scale)
    with jax.enable_x64(True):
        ds = lrsweep.sweep(
            problem, lrs, init=inits, optimizer=optimizer, epochs=epochs, precision="float64", record="summary",
            progress=False,
        )  # fmt: skip
    worst = ds.loss.max("init").values
    worst = np.where(np.isfinite(worst), worst, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the edge of the grid (logistic's loss falls with lr)
        lr = lrsweep.suggest_lr(ds)
    k, best_k = int(np.flatnonzero(lrs == lr)[0]), int(np.argmin(worst))
    with jax.enable_x64(True):
        alone = max(
            _train_alone(problem, factory, lr, {n: v[i] for n, v in inits.items()}, epochs) for i in range(INITS)
        )
        best = max(
            _train_alone(problem, factory, lrs[best_k], {n: v[i] for n, v in inits.items()}, epochs)
            for i in range(INITS)
        )
    finite = worst[np.isfinite(worst)]
    print(f"{name}: losses span {finite.max() / finite.min():.3g}x; suggested lr {lr:.4g} -> {alone:.4g} alone, "
          f"best grid lr {lrs[best_k]:.4g} -> {best:.4g} alone")  # fmt: skip
    assert alone <= 2 * best
    # Not past the minimum on the rising side: every lr from the lowest to the suggestion ends within 2x of it.
    lo, hi = sorted((k, best_k))
    assert np.all(worst[lo : hi + 1] <= 2 * worst[best_k])
