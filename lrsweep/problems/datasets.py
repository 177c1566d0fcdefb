"""A real data set, built in: handwritten digits and a small MLP with softmax cross-entropy.

The data are scikit-learn's digits (``sklearn.datasets.load_digits``): 1797 images of 8 x 8
pixels with 17 grey levels (0 to 16), 10 classes, about 180 each. Source: the "Optical
Recognition of Handwritten Digits" data set of the UCI Machine Learning Repository (E. Alpaydin
and C. Kaynak, 1998; its test part), as scikit-learn ships it under its BSD licence. They are
stored in lrsweep as package data, ``lrsweep/problems/data/digits.npz`` (``x``: uint8 of shape
``(1797, 64)``, the flattened images; ``y``: uint8 labels), so scikit-learn is not needed;
``tests/test_digits.py`` checks that they equal ``load_digits()``.
"""

from __future__ import annotations

import functools
import importlib.resources
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ._problem import Problem, problem_factory

#: Examples held out for evaluation (a fifth of the data set), chosen once by a fixed permutation.
N_TEST = 360
#: The seed of the permutation that splits the data set (fixed: every sweep sees the same split).
SPLIT_SEED = 0
N_CLASSES = 10


@functools.cache
def load() -> tuple[np.ndarray, np.ndarray]:
    """The stored digits: pixels ``(1797, 64)`` uint8 in 0..16 and labels ``(1797,)`` uint8 in 0..9 (read-only)."""
    with importlib.resources.files("lrsweep.problems").joinpath("data/digits.npz").open("rb") as f, np.load(f) as data:
        x, y = data["x"], data["y"]
    x.flags.writeable = y.flags.writeable = False
    return x, y


def split() -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out examples: a permutation of ``numpy.random.default_rng(0)``,
    its last ``N_TEST`` held out (each sorted)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(load()[0].shape[0])
    return np.sort(order[:-N_TEST]), np.sort(order[-N_TEST:])


def _logits(params, x):
    """``tanh(x W0 + b0) W1 + b1`` for one example ``x (64,)`` or a batch ``(n, 64)``."""
    h = x @ params["W0"]
    h = jnp.tanh(h + jnp.broadcast_to(params["b0"], h.shape))  # the bias, broadcast explicitly over a batch
    out = h @ params["W1"]
    return out + jnp.broadcast_to(params["b1"], out.shape)


def _loss(params, x, y):
    # Cross-entropy of one example against its one-hot label y (10,).
    return -jnp.sum(y * jax.nn.log_softmax(_logits(params, x)))


def _batch_loss(params, x, y):
    # The same, averaged over the data set at once: x W0 is one matrix product per chunk of configs.
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(_logits(params, x)), axis=-1))


def accuracy(params, x, y):
    """1.0 if the largest logit is the label's, else 0.0 (per example; averaged over the held-out set)."""
    return (jnp.argmax(_logits(params, x)) == jnp.argmax(y)).astype(jnp.float32)


@problem_factory
def digits(hidden: int = 32, seed: int = 0) -> Problem:
    """scikit-learn's handwritten digits (module docstring) with a one-hidden-layer tanh MLP.

    Inputs ``x``: the 64 pixels scaled to ``[0, 1]`` (grey level / 16), float32; targets ``y``: the
    one-hot label, float32 ``(10,)``. The network ``logits = tanh(x W0 + b0) W1 + b1``, loss the
    softmax cross-entropy ``-sum_k y_k log softmax(logits)_k`` per example. A fixed split
    (:func:`split`): 1437 training examples, 360 held out (``x_eval``, ``y_eval``), with the
    metric ``accuracy`` (maximised) besides ``eval_loss``.

    Parameters ``W0 (64, hidden)``, ``b0 (hidden,)``, ``W1 (hidden, 10)``, ``b1 (10,)``, float32. The
    sampler draws LeCun-normal weights (``N(0, 1 / fan_in)``) and zero biases, from one key per
    weight; the init is its draw from ``jax.random.key(seed)``. ``sweep(..., init=N)`` draws N.

    >>> p = digits()
    >>> p.x.shape, p.y.shape, p.x_eval.shape, sorted(p.metrics)
    ((1437, 64), (1437, 10), (360, 64), ['accuracy'])
    """
    hidden = _checks.integer("hidden", hidden, 1, 4096)
    seed = _checks.integer("seed", seed, 0, 2**32 - 1)
    pixels, labels = load()
    x = (pixels / np.float32(16.0)).astype(np.float32)
    y = np.eye(N_CLASSES, dtype=np.float32)[labels]
    train, test = split()
    shapes = {"W0": (pixels.shape[1], hidden), "W1": (hidden, N_CLASSES)}

    def sampler(key):
        k0, k1 = jax.random.split(key)
        return {
            "W0": jax.random.normal(k0, shapes["W0"]) / math.sqrt(shapes["W0"][0]),
            "b0": jnp.zeros(hidden),
            "W1": jax.random.normal(k1, shapes["W1"]) / math.sqrt(hidden),
            "b1": jnp.zeros(N_CLASSES),
        }

    return Problem(
        name="digits",
        loss=_loss,
        batch_loss=_batch_loss,
        x=x[train],
        y=y[train],
        init=jax.tree.map(np.asarray, sampler(jax.random.key(seed))),
        sampler=sampler,
        min_loss=None,
        description=f"scikit-learn's digits (UCI), 8x8 images, 10 classes, {len(train)} train / {len(test)} "
        f"held out; MLP 64-{hidden}-10 tanh, softmax cross-entropy",
        x_eval=x[test],
        y_eval=y[test],
        metrics={"accuracy": accuracy},
    )
