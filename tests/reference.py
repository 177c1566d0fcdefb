"""Independent numpy references. Nothing here imports lrsweep.

- ``notebook_*``: the lesson notebook's algorithm as the notebook writes it (Python int data,
  float32 parameter arrays, deepcopy, an in-place ``+= 0.0001`` nudge per element), so numpy's own
  type promotion decides every dtype and every rounding.
- ``gd_linear_f64``: plain float64 gradient descent on the lesson's problem with the closed-form
  gradient, vectorised over configs.
"""

from copy import deepcopy

import numpy as np

LESSON_X = [[1], [2], [3], [4]]
LESSON_Y = [[3], [6], [9], [12]]


def notebook_feed_forward(inputs, outputs, weights):
    out = np.dot(inputs, weights[0]) + weights[1]
    return np.mean(np.square(out - outputs))


def notebook_update_weights(inputs, outputs, weights, lr, log=None, feed_forward=notebook_feed_forward):
    """One epoch of the notebook's forward-difference update; appends the printed line to ``log``.

    Both of the chapter's notebooks use this update; only ``feed_forward`` differs.
    """
    original_weights = deepcopy(weights)
    org_loss = feed_forward(inputs, outputs, original_weights)
    updated_weights = deepcopy(weights)
    for i, layer in enumerate(original_weights):
        for index, weight in np.ndenumerate(layer):
            temp_weights = deepcopy(weights)
            temp_weights[i][index] += 0.0001
            _loss_plus = feed_forward(inputs, outputs, temp_weights)
            grad = (_loss_plus - org_loss) / (0.0001)
            updated_weights[i][index] -= grad * lr
            if log is not None and i == 0:
                log.append(
                    " ".join(
                        str(v)
                        for v in (
                            "weight value:",
                            np.round(original_weights[i][index], 2),
                            "original loss:",
                            np.round(org_loss, 2),
                            "loss_plus:",
                            np.round(_loss_plus, 2),
                            "gradient:",
                            np.round(grad, 2),
                            "updated_weights:",
                            np.round(updated_weights[i][index], 2),
                        )
                    )
                )
    return updated_weights, org_loss


def notebook_lesson_init():
    return [np.array([[0.0]], dtype=np.float32), np.array([[0.0]], dtype=np.float32)]


def notebook_train(lr, epochs, weights=None, log=None):
    """Train the lesson's line with the notebook's loop; return (weights list, per-epoch losses)."""
    weights = notebook_lesson_init() if weights is None else weights
    losses = []
    for _ in range(epochs):
        weights, loss = notebook_update_weights(LESSON_X, LESSON_Y, weights, lr, log)
        losses.append(loss)
    return weights, losses


def gd_linear_f64(lr, w0, b0, epochs):
    """Float64 GD with the exact gradient of ``mean((w x + b - y)^2)``; arrays broadcast over configs.

    Returns ``(w, b, loss)`` trajectories with a leading epoch axis of length ``epochs + 1``.
    """
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = 3.0 * x
    lr, w, b = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(lr, w0, b0))
    ws, bs, ls = [w], [b], []
    with np.errstate(over="ignore", invalid="ignore"):  # divergent configs overflow, as they should
        return _gd_linear_f64_loop(x, y, lr, w, b, ws, bs, ls, epochs)


def _gd_linear_f64_loop(x, y, lr, w, b, ws, bs, ls, epochs):
    for _ in range(epochs):
        r = w[..., None] * x + b[..., None] - y
        ls.append(np.mean(r**2, axis=-1))
        gw = np.mean(2 * r * x, axis=-1)
        gb = np.mean(2 * r, axis=-1)
        w, b = w - lr * gw, b - lr * gb
        ws.append(w)
        bs.append(b)
    r = w[..., None] * x + b[..., None] - y
    ls.append(np.mean(r**2, axis=-1))
    return np.stack(ws), np.stack(bs), np.stack(ls)


# The chapter's back-propagation notebook, as it writes it (int data, float32 weights).
CHAPTER_X = np.array([[1, 1]])
CHAPTER_Y = np.array([[0]])


def chapter_init():
    return [
        np.array([[-0.0053, 0.3793], [-0.5820, -0.5204], [-0.2723, 0.1896]], dtype=np.float32).T,
        np.array([-0.0140, 0.5607, -0.0628], dtype=np.float32),
        np.array([[0.1528, -0.1745, -0.1135]], dtype=np.float32).T,
        np.array([-0.5516], dtype=np.float32),
    ]


def chapter_feed_forward(inputs, outputs, weights):
    pre_hidden = np.dot(inputs, weights[0]) + weights[1]
    hidden = 1 / (1 + np.exp(-pre_hidden))
    pred_out = np.dot(hidden, weights[2]) + weights[3]
    return np.mean(np.square(pred_out - outputs))


def chapter_train(lr=0.01, epochs=100):
    """The notebook's forward-difference training; returns (weights, per-epoch losses)."""
    weights, losses = chapter_init(), []
    for _ in range(epochs):
        weights, loss = notebook_update_weights(CHAPTER_X, CHAPTER_Y, weights, lr, feed_forward=chapter_feed_forward)
        losses.append(loss)
    return weights, losses
