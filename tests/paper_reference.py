"""The fractal paper's notebook code, the reference every map test compares with.

Transcribed from github.com/Sohl-Dickstein/fractal (``the_boundary_of_neural_network_trainability_is_fractal.ipynb``,
cells "Network and training" and "Train networks over grid of hyperparameter values"), with the
notebook's hyperparameter cell as arguments, and run as the notebook runs: float64 (its
``jax_enable_x64``), a Python loop over a jitted, vmapped ``train_step`` on chunks of at most
``outer_batch_size`` configs, the minibatch keys ``split(PRNGKey(42), steps)``, the offset of
``paraminit_vs_lr`` added to the stored weights inside each step. Nothing of lrsweep is used.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

#: The notebook's hyperparameters of each of the paper's six settings (its cells 40 to 50).
NOTEBOOK = {
    "tanh": {},
    "relu": {"nonlinearity": "relu"},
    "identity": {"nonlinearity": "identity"},
    "minibatch": {"minibatch_size": 16},
    "single": {"dataset": "single"},
    "paraminit": {"phase_space": "paraminit_vs_lr"},
}
#: The notebook's interactive cell starts from this window, ``mnmx = [-3, 6, -3, 6]`` (log10: y, then x).
FULL_VIEW = ((-3.0, 6.0), (-3.0, 6.0))


def paper_map(
    mnmx, res, steps, *, nonlinearity="tanh", minibatch_size=None, dataset="full", phase_space="lr_vs_lr",
    width=16, depth=2, target_dim=1, partitionable=True, init_shift=0.0, as_written=True, outer_batch_size=50000,
):  # fmt: skip
    """The notebook's map of the window ``mnmx = [y_lo, y_hi, x_lo, x_hi]`` (log10, its order):
    ``(ratio, value)`` images, rows the y axis (low first), columns x. ``ratio = mean(v[-20:])``
    (trainable iff < 1); ``value`` is the notebook's ``convergence_measure``.

    ``partitionable``: the ``jax_threefry_partitionable`` flag the draws are made under (False: the
    paper's 2024 draws; True: today's JAX default). ``init_shift`` nudges ``W0`` by that much (a
    chaos probe). ``as_written``: the notebook's ``v * fin + max_val * (1 - fin)``, which leaves a
    non-finite loss NaN (``inf * 0``); False: what it means to do, a non-finite loss as ``max_val``."""
    with jax.enable_x64(True), jax.threefry_partitionable(partitionable):

        def net(theta, X):
            for W in theta:
                Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
                if nonlinearity == "tanh":
                    X = jax.nn.tanh(Z * jnp.sqrt(2))
                elif nonlinearity == "relu":
                    X = jax.nn.relu(Z) * jnp.sqrt(2)
                else:
                    X = Z
            return Z / jnp.sqrt(W.shape[0])

        def init(rng):
            rng = jax.random.split(rng, depth)
            theta, out_width = [], width
            for i in range(depth):
                if i == depth - 1:
                    out_width = target_dim
                theta.append(jax.random.normal(rng[i], (width, out_width)))
            return theta

        def loss(theta, X, Y):
            return jnp.mean((net(theta, X) - Y) ** 2)

        def train_step(rng, theta, hparams, X, Y):
            if phase_space == "lr_vs_lr":
                learning_rates = [hparams[i % len(hparams)] for i in range(len(theta))]
            else:
                theta = [t + hparams[0] if i == 0 else t for i, t in enumerate(theta)]
                learning_rates = [hparams[1] for _ in theta]
            if minibatch_size is None:
                _loss, _grad = jax.value_and_grad(loss)(theta, X, Y)
            else:
                idx = jax.random.randint(rng, (minibatch_size,), 0, X.shape[0])
                _loss = loss(theta, X, Y)
                _grad = jax.grad(loss)(theta, X[idx], Y[idx])
            return jax.tree.map(lambda t, g, lr: t - lr * g, theta, _grad, learning_rates), _loss

        step = jax.jit(jax.vmap(train_step, in_axes=(None, 0, 0, None, None)))

        def measure(v, max_val=1e6):
            fin = jnp.isfinite(v)
            v = v * fin + max_val * (1 - fin) if as_written else jnp.where(fin, v, max_val)
            v = v / v[0]
            exceeds = v > max_val
            v = v * (1 - exceeds) + max_val * exceeds
            ratio = jnp.mean(v[-20:])
            return ratio, jnp.where(ratio < 1, -jnp.sum(v), jnp.sum(1 / v))

        measure_all = jax.jit(jax.vmap(measure))

        def train(theta, hp, X, Y):
            bs = hp.shape[0]
            if bs > outer_batch_size:
                a, b = train(theta, hp[: bs // 2], X, Y), train(theta, hp[bs // 2 :], X, Y)
                return tuple(jnp.concatenate([u, w]) for u, w in zip(a, b))
            th = [jnp.tile(t, (bs, 1, 1)) for t in theta]
            losses = []
            for k in jax.random.split(jax.random.PRNGKey(42), steps):
                th, lv = step(k, th, hp, X, Y)
                losses.append(lv)
            return measure_all(jnp.stack(losses, axis=-1))

        rng = jax.random.PRNGKey(0)
        rng, srng = jax.random.split(rng)
        theta = init(srng)
        theta[0] = theta[0] + init_shift
        n_params = sum(int(t.size) for t in theta)
        rng, srng = jax.random.split(rng)
        if dataset == "single":
            n = 1
        elif nonlinearity == "identity":
            n = width
        else:
            n = n_params // target_dim
        X = jax.random.normal(srng, (n, width))
        rng, srng = jax.random.split(rng)
        Y = jax.random.normal(srng, (n, target_dim))
        mn1, mx1, mn2, mx2 = mnmx
        lr0, lr1 = jnp.meshgrid(jnp.logspace(mn2, mx2, res), jnp.logspace(mn1, mx1, res))
        hp = jnp.stack([lr0.ravel(), lr1.ravel()], axis=-1)
        ratio, value = train(theta, hp, X, Y)
        return np.asarray(ratio).reshape(res, res), np.asarray(value).reshape(res, res)


def paper_setting_map(setting: str, x_range, y_range, res: int, steps: int, **kwargs):
    """:func:`paper_map` of one of the six settings (``NOTEBOOK``) over ``x_range x y_range`` (log10)."""
    mnmx = [y_range[0], y_range[1], x_range[0], x_range[1]]
    return paper_map(mnmx, res, steps, **{**NOTEBOOK[setting], **kwargs})
