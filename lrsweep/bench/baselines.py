"""The baselines lrsweep is timed against: numpy over all configs and the notebook loop.

The numpy baselines are independent re-implementations of each problem from its math (they never
call lrsweep or JAX); tests check their final losses against lrsweep's:

>>> import numpy as np
>>> base = BASELINES["linear"]["numpy plain"]()
>>> params, loss = numpy_train(base, np.array([0.01, 0.1], np.float32), base.init(2), 1000, "autodiff")
>>> [round(float(v), 4) for v in params["w"]]
[2.9845, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from copy import deepcopy

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import problems

H = 1e-4  # the lesson's finite-difference step

# ------------------------------------------------------------------------------------------------
# numpy baselines, vectorized over configs
#
# Each baseline holds its problem's data in ``dtype`` and offers ``init(n)`` (the problem's init
# repeated for n configs, leaves ``(n, *shape)``), ``loss(params) -> (n,)`` and
# ``grad(params) -> params-like`` (closed form). ``numpy_train`` runs gradient descent with either
# gradient. They never call lrsweep or JAX: they re-implement each problem from its math.
# ------------------------------------------------------------------------------------------------


class _Baseline:
    name = ""
    chunk: int | None = None  # configs per pass, to bound memory (None: all at once)
    init0: dict[str, ArrayLike]  # one config's initial parameters

    def __init__(self, dtype: DTypeLike = np.float32):
        self.dtype: np.dtype = np.dtype(dtype)

    def _cast(self, a):
        return np.asarray(a, dtype=self.dtype)

    def init(self, n: int) -> dict:
        return {k: np.repeat(self._cast(v)[None], n, axis=0) for k, v in self.init0.items()}

    def loss(self, p: dict) -> np.ndarray:
        """The loss of each config ``(N,)`` at parameters ``p`` (leaves ``(N, ...)``)."""
        raise NotImplementedError

    def grad(self, p: dict) -> dict:
        """The gradient of each config's loss, like ``p``."""
        raise NotImplementedError


class LinearPlain(_Baseline):
    """The lesson's ``mean((w x + b - y)^2)`` as an ``(N, 4)`` broadcast and a ``mean``."""

    name = "numpy plain"

    def __init__(self, dtype: DTypeLike = np.float32):
        super().__init__(dtype)
        self.x = self._cast([1.0, 2.0, 3.0, 4.0])
        self.y = 3 * self.x
        self.init0 = {"w": 0.0, "b": 0.0}

    def loss(self, p):
        return np.mean((p["w"][:, None] * self.x + p["b"][:, None] - self.y) ** 2, axis=1)

    def grad(self, p):
        err = p["w"][:, None] * self.x + p["b"][:, None] - self.y
        two = self.dtype.type(2)
        return {"w": np.mean(two * err * self.x, axis=1), "b": np.mean(two * err, axis=1)}


class LinearTuned(LinearPlain):
    """The same with the 4-point sum unrolled into ``(N,)`` operations: no ``(N, 4)`` temporaries."""

    name = "numpy tuned"

    def loss(self, p):
        w, b = p["w"], p["b"]
        total = np.zeros_like(w)
        for x, y in zip(self.x, self.y):
            r = w * x + b - y
            total += r * r
        return total * self.dtype.type(1 / len(self.x))

    def grad(self, p):
        w, b = p["w"], p["b"]
        gw, gb = np.zeros_like(w), np.zeros_like(w)
        for x, y in zip(self.x, self.y):
            r = w * x + b - y
            gw += r * x
            gb += r
        scale = self.dtype.type(2 / len(self.x))
        return {"w": gw * scale, "b": gb * scale}


class ChapterNet(_Baseline):
    """The chapter's 2-3-1 sigmoid network, ``mean((sigmoid(x W1 + b1) W2 + b2 - y)^2)``.

    Written with broadcasting and sums over the tiny axes (faster in numpy than ``matmul`` on a
    million stacked 1x2 @ 2x3 matrices).
    """

    name = "numpy plain"

    def __init__(self, dtype: DTypeLike = np.float32):
        super().__init__(dtype)
        p = problems.chapter_net()
        self.x, self.y = self._cast(p.x), self._cast(p.y)  # (e, 2), (e, 1)
        self.init0 = {k: np.asarray(v) for k, v in p.init.items()}

    def _forward(self, p):
        # pre[n, e, j] = sum_i x[e, i] W1[n, i, j] + b1[n, j]
        pre = (self.x[None, :, :, None] * p["W1"][:, None, :, :]).sum(axis=2) + p["b1"][:, None, :]
        hidden = 1 / (1 + np.exp(-pre))
        out = (hidden[:, :, :, None] * p["W2"][:, None, :, :]).sum(axis=2) + p["b2"][:, None, :]  # (n, e, o)
        return hidden, out

    def loss(self, p):
        _, out = self._forward(p)
        return np.mean((out - self.y) ** 2, axis=(1, 2))

    def grad(self, p):
        hidden, out = self._forward(p)
        e, o = self.y.shape
        dout = (out - self.y) * self.dtype.type(2 / (e * o))  # (n, e, o)
        g_w2 = (hidden[:, :, :, None] * dout[:, :, None, :]).sum(axis=1)  # (n, 3, o)
        dh = (dout[:, :, None, :] * p["W2"][:, None, :, :]).sum(axis=3)  # (n, e, 3)
        dpre = dh * hidden * (1 - hidden)
        g_w1 = (self.x[None, :, :, None] * dpre[:, :, None, :]).sum(axis=1)  # (n, 2, 3)
        return {"W1": g_w1, "b1": dpre.sum(axis=1), "W2": g_w2, "b2": dout.sum(axis=1)}


class MLP(_Baseline):
    """``mlp(width, depth=1, "tanh")``: ``mean_i (tanh(sqrt(2) x_i W0 / sqrt(width)) W1 / width - y_i)^2``.

    The hidden layer of all configs is one matrix product, ``x (n, width) @ W0 (width, N * width)``
    (BLAS); configs run in chunks of ``chunk`` to bound memory.
    """

    name = "numpy plain"
    chunk = 1024

    def __init__(self, dtype: DTypeLike = np.float32, width: int = 16):
        super().__init__(dtype)
        p = problems.mlp(width=width)
        self.width = width
        self.x, self.y = self._cast(p.x), self._cast(p.y)[:, 0]  # (e, width), (e,)
        self.init0 = {k: np.asarray(v) for k, v in p.init.items()}

    def _forward(self, p):
        w0, wout = p["W0"], p["W1"][:, :, 0]  # (N, d, k), (N, k)
        n, d = w0.shape[0], self.width
        stacked = w0.transpose(1, 0, 2).reshape(d, n * d)
        scale = self.dtype.type(math.sqrt(2) / math.sqrt(d))  # the gain sqrt(2) and the mean-field 1/sqrt(fan_in)
        hidden = np.tanh((self.x @ stacked).reshape(-1, n, d) * scale)  # (e, N, k)
        out = (hidden * wout).sum(axis=2) / self.dtype.type(d)  # (e, N)
        return hidden, out

    def loss(self, p):
        _, out = self._forward(p)
        return np.mean((out - self.y[:, None]) ** 2, axis=0)

    def grad(self, p):
        hidden, out = self._forward(p)
        e, n, d = hidden.shape
        dout = (out - self.y[:, None]) * self.dtype.type(2 / e)  # (e, N)
        g_out = (hidden * dout[:, :, None]).sum(axis=0) / self.dtype.type(d)  # (N, k)
        dpre = dout[:, :, None] * (p["W1"][:, :, 0] / self.dtype.type(d)) * (1 - hidden * hidden)
        dpre *= self.dtype.type(math.sqrt(2) / math.sqrt(d))
        g_w0 = (self.x.T @ dpre.reshape(e, n * d)).reshape(d, n, d).transpose(1, 0, 2)
        return {"W0": g_w0, "W1": g_out[:, :, None]}


def _forward_difference(loss, params: dict, h) -> dict:
    """``(L(p + h e_j) - L(p)) / h`` for every element ``j``: each nudged in place, then restored."""
    base = loss(params)
    grads = {}
    for key, leaf in params.items():
        g = np.empty_like(leaf)
        for idx in np.ndindex(leaf.shape[1:]):
            at = (slice(None), *idx)
            saved = leaf[at].copy()
            leaf[at] = saved + h  # in the parameter dtype, as the notebook's += on a float32 array
            g[at] = (loss(params) - base) / h
            leaf[at] = saved
        grads[key] = g
    return grads


def numpy_train(baseline: _Baseline, lr, params: dict, epochs: int, grad: str):
    """Gradient descent over all configs; returns the final ``(params, loss)``; ``lr`` is ``(N,)``."""
    lr = np.asarray(lr, baseline.dtype)
    n = lr.shape[0]
    step = baseline.chunk or n
    h = baseline.dtype.type(H)
    out_params, out_loss = {k: np.empty_like(v) for k, v in params.items()}, np.empty(n, baseline.dtype)
    with np.errstate(all="ignore"):  # diverging configs overflow, as they should
        for start in range(0, n, step):
            part = slice(start, start + step)
            p = {k: v[part].copy() for k, v in params.items()}
            rate = lr[part]
            for _ in range(epochs):
                g = baseline.grad(p) if grad == "autodiff" else _forward_difference(baseline.loss, p, h)
                p = {k: v - rate.reshape(-1, *(1,) * (v.ndim - 1)) * g[k] for k, v in p.items()}
            for k in p:
                out_params[k][part] = p[k]
            out_loss[part] = baseline.loss(p)
    return out_params, out_loss


BASELINES: dict[str, dict[str, Callable[..., _Baseline]]] = {
    "linear": {"numpy plain": LinearPlain, "numpy tuned": LinearTuned},
    "chapter_net": {"numpy plain": ChapterNet},
    "mlp": {"numpy plain": MLP},
}


# ------------------------------------------------------------------------------------------------
# The notebook loops: one config at a time, as the chapter's notebooks write it
# ------------------------------------------------------------------------------------------------


def notebook_update_weights(inputs, outputs, weights, lr, feed_forward):
    """One epoch of the notebook's forward-difference update (deepcopy, in-place ``+= 0.0001``)."""
    original_weights = deepcopy(weights)
    org_loss = feed_forward(inputs, outputs, original_weights)
    updated_weights = deepcopy(weights)
    for i, layer in enumerate(original_weights):
        for index, _weight in np.ndenumerate(layer):
            temp_weights = deepcopy(weights)
            temp_weights[i][index] += 0.0001
            _loss_plus = feed_forward(inputs, outputs, temp_weights)
            grad = (_loss_plus - org_loss) / (0.0001)
            updated_weights[i][index] -= grad * lr
    return updated_weights, org_loss


def _lesson_feed_forward(inputs, outputs, weights):
    out = np.dot(inputs, weights[0]) + weights[1]
    return np.mean(np.square(out - outputs))


def _chapter_feed_forward(inputs, outputs, weights):
    pre_hidden = np.dot(inputs, weights[0]) + weights[1]
    hidden = 1 / (1 + np.exp(-pre_hidden))
    pred_out = np.dot(hidden, weights[2]) + weights[3]
    return np.mean(np.square(pred_out - outputs))


def _mlp_feed_forward(inputs, outputs, weights):
    width = inputs.shape[1]
    hidden = np.tanh(np.sqrt(2) * np.dot(inputs, weights[0]) / np.sqrt(width))
    return np.mean(np.square(np.dot(hidden, weights[1]) / width - outputs))


def _notebook_setup(problem: str):
    """``(inputs, outputs, initial weights list, feed_forward)`` of the notebook for ``problem``."""
    if problem == "linear":  # the lesson: Python int data, float32 weights
        return (
            [[1], [2], [3], [4]],
            [[3], [6], [9], [12]],
            [np.array([[0.0]], np.float32), np.array([[0.0]], np.float32)],
            _lesson_feed_forward,
        )
    if problem == "chapter_net":  # the back-propagation notebook
        p = problems.chapter_net()
        weights = [p.init["W1"], p.init["b1"], p.init["W2"], p.init["b2"]]
        return np.array([[1, 1]]), np.array([[0]]), [w.copy() for w in weights], _chapter_feed_forward
    p = problems.mlp(width=16)
    return p.x, p.y, [p.init["W0"].copy(), p.init["W1"].copy()], _mlp_feed_forward


def notebook_train(problem: str, lr: float, epochs: int):
    """Train one config with the notebook's loop; returns ``(weights list, per-epoch losses)``."""
    inputs, outputs, weights, feed_forward = _notebook_setup(problem)
    losses = []
    for _ in range(epochs):
        weights, loss = notebook_update_weights(inputs, outputs, weights, lr, feed_forward)
        losses.append(loss)
    return weights, losses
