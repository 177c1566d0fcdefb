"""The built-in problems: the lesson's, a bowl, logistic regression and the fractal paper's network.

Each is a function marked with :func:`~lrsweep.problems.problem_factory` that returns a
:class:`~lrsweep.problems.Problem`, so ``"lrsweep.problems:quadratic"`` names it too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ._problem import Problem, problem_factory

#: Bounds on the built-ins' sizes, checked before anything is allocated: a typo such as
#: ``dim=100000000`` asks for a 1e8 x 1e8 matrix. They are far above what a sweep of many
#: configs can train (every config holds its own parameters).
MAX_DIM = 4096
MAX_DATA = 10_000_000
#: Values a built-in's data set may hold (float64: 800 MB).
MAX_DATA_VALUES = 100_000_000


def _check_data_size(values: int) -> None:
    if values > MAX_DATA_VALUES:
        raise ValueError(
            f"the data set would hold {values:,} values, more than {MAX_DATA_VALUES:,}; choose fewer points or dimensions"
        )


def _linear_loss(params, x, y):
    # One example of the lesson's model y_hat = w * x + b, squared error.
    return (params["w"] * x + params["b"] - y) ** 2


@problem_factory
def linear() -> Problem:
    """The lesson's problem: fit ``y = 3x`` with ``y_hat = w * x + b``.

    Data ``x = [1, 2, 3, 4]``, ``y = [3, 6, 9, 12]``; loss ``(1/4) sum_i (w x_i + b - y_i)^2``;
    ``w`` and ``b`` are float32 scalars starting at 0. The Hessian is ``[[15, 5], [5, 2]]``
    (eigenvalues 16.70 and 0.2994), so gradient descent converges for ``lr < 2 / 16.70 = 0.1198``.
    Source: "Modern Computer Vision with PyTorch", chapter 1, "Understanding the impact of learning rate".

    >>> p = linear()
    >>> p.n_data, sorted(p.init)
    (4, ['b', 'w'])
    """
    x = np.array([1.0, 2.0, 3.0, 4.0])
    return Problem(
        name="linear",
        loss=_linear_loss,
        x=x,
        y=3.0 * x,
        init={"w": np.float32(0.0), "b": np.float32(0.0)},
        min_loss=0.0,
        description="the lesson: y_hat = w*x + b fit to y = 3x on x = 1..4, mean squared error",
        minimum={"w": np.float32(3.0), "b": np.float32(0.0)},
    )


def _chapter_net_loss(params, x, y):
    # The notebook's feed_forward for one example: sigmoid hidden layer, linear output, squared
    # error averaged over the output; the sigmoid written as the notebook writes it. The two tiny
    # matrix products are written out as sums of products: under the engine's vmap they fuse into
    # the epoch instead of a dot and a reduction per epoch (3-5x faster on CPU, benchmarks/README.md).
    w1, w2 = params["W1"], params["W2"]
    pre = x[0] * w1[0] + x[1] * w1[1] + params["b1"]  # (3,) = x @ W1 + b1
    hidden = 1 / (1 + jnp.exp(-pre))
    out = hidden[0] * w2[0, 0] + hidden[1] * w2[1, 0] + hidden[2] * w2[2, 0] + params["b2"][0]  # hidden @ W2 + b2
    return (out - y[0]) ** 2  # the mean over the single output


@problem_factory
def chapter_net() -> Problem:
    """The chapter's 2-3-1 network: one example ``x = [1, 1]``, target ``y = [0]``.

    ``h = sigmoid(x W1 + b1)`` (3 hidden units), ``y_hat = h W2 + b2``, loss ``(y_hat - y)^2``.
    Parameters ``W1 (2, 3)``, ``b1 (3,)``, ``W2 (3, 1)``, ``b2 (1,)``, float32, initialised with the
    notebook's values (it lists ``W1`` and ``W2`` transposed). Source: "Modern Computer Vision with
    PyTorch", chapter 1, the back-propagation notebook; trained there with the forward-difference
    update at lr 0.01 for 100 epochs.

    >>> p = chapter_net()
    >>> {k: v.shape for k, v in p.init.items()}
    {'W1': (2, 3), 'b1': (3,), 'W2': (3, 1), 'b2': (1,)}
    """
    f32 = lambda a: np.array(a, dtype=np.float32)
    return Problem(
        name="chapter_net",
        loss=_chapter_net_loss,
        x=np.array([[1.0, 1.0]]),
        y=np.array([[0.0]]),
        init={
            "W1": f32([[-0.0053, 0.3793], [-0.5820, -0.5204], [-0.2723, 0.1896]]).T.copy(),
            "b1": f32([-0.0140, 0.5607, -0.0628]),
            "W2": f32([[0.1528, -0.1745, -0.1135]]).T.copy(),
            "b2": f32([-0.5516]),
        },
        min_loss=0.0,
        description="the chapter's 2-3-1 sigmoid network on x = [1, 1], y = 0, squared error",
    )


def _quadratic_loss(params, x, y):
    # x = sqrt(lambda_i) q_i, so mean_i (n / 2) (x_i . p)^2 = (1/2) p^T Q diag(lambda) Q^T p.
    n = x.shape[0]
    return 0.5 * n * jnp.dot(x, params["p"]) ** 2


@problem_factory
def quadratic(dim: int = 2, cond: float = 10.0, seed: int = 0) -> Problem:
    """A quadratic bowl ``L(p) = (1/2) p^T H p`` with known eigenvalues.

    ``H = Q diag(lambda) Q^T``: ``lambda`` log-spaced from 1 to ``cond`` (``dim`` of them; a single
    eigenvalue 1 when ``dim == 1``), ``Q`` a random rotation drawn from ``seed``. Gradient descent
    converges for ``lr < 2 / cond``, fastest at ``lr = 2 / (1 + cond)``. The minimum is ``p = 0``;
    the init is ``p = (1, ..., 1)``; the sampler draws ``N(0, 1)``. Written as ``dim`` examples
    ``x_i = sqrt(lambda_i) q_i`` with per-example loss ``(dim / 2) (x_i . p)^2``.

    >>> q = quadratic(dim=3, cond=100.0)
    >>> q.n_data, q.init["p"].shape
    (3, (3,))
    """
    dim, cond = _checks.integer("dim", dim, 1, MAX_DIM), _checks.real("cond", cond, 1.0)
    lam = np.geomspace(1.0, cond, dim) if dim > 1 else np.array([1.0])
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    x = np.sqrt(lam)[:, None] * q.T  # row i: sqrt(lambda_i) q_i
    return Problem(
        name="quadratic",
        loss=_quadratic_loss,
        x=x,
        y=np.zeros(dim),
        init={"p": np.ones(dim, np.float32)},
        min_loss=0.0,
        description=f"quadratic bowl, dim {dim}, eigenvalues log-spaced from 1 to {cond:g}",
        minimum={"p": np.zeros(dim, np.float32)},
        sampler=lambda key: {"p": jax.random.normal(key, (dim,), jnp.float32)},
    )


def _logistic_loss(params, x, y):
    # Cross-entropy of sigmoid(z) against y in {0, 1}, as softplus(-(2y - 1) z), stable for large |z|.
    z = jnp.dot(x, params["w"]) + params["b"]
    return jnp.logaddexp(0.0, -(2 * y - 1) * z)


@problem_factory
def logistic(n: int = 64, dim: int = 2, seed: int = 0) -> Problem:
    """Logistic regression on a small separable synthetic data set.

    ``x ~ N(0, I)`` (``n`` points in ``dim`` dimensions, from ``seed``), labels ``y = [x . u > 0]``
    for a random unit vector ``u``, so the classes are linearly separable: the loss
    ``mean_i log(1 + exp(-(2 y_i - 1)(w . x_i + b)))`` has infimum 0 and no finite minimiser.
    Init ``w = 0, b = 0`` (loss ``log 2``); the sampler draws ``N(0, 1)``.

    >>> p = logistic()
    >>> p.x.shape, sorted(p.init)
    ((64, 2), ['b', 'w'])
    """
    n, dim = _checks.integer("n", n, 1, MAX_DATA), _checks.integer("dim", dim, 1, MAX_DIM)
    _check_data_size(n * dim)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    y = (x @ u > 0).astype(np.float64)
    return Problem(
        name="logistic",
        loss=_logistic_loss,
        x=x,
        y=y,
        init={"w": np.zeros(dim, np.float32), "b": np.float32(0.0)},
        min_loss=0.0,
        description=f"logistic regression, {n} separable points in {dim} dimensions (seed {seed})",
        sampler=lambda key: {
            "w": jax.random.normal(key, (dim,), jnp.float32),
            "b": jax.random.normal(jax.random.fold_in(key, 1), (), jnp.float32),
        },
    )


#: Hidden-layer activations of :func:`mlp`, ``act(z, gain)``, applied as the paper's notebook does:
#: ``tanh(gain * z)``, ``gain * relu(z)``, ``gain * z``; ``sigmoid(gain * z)`` is not in the paper.
ACTIVATIONS: dict[str, Callable] = {
    "tanh": lambda z, gain: jnp.tanh(z * gain),
    "relu": lambda z, gain: jax.nn.relu(z) * gain,
    "identity": lambda z, gain: z * gain,
    "sigmoid": lambda z, gain: jax.nn.sigmoid(z * gain),
}
#: The default gain per activation: the notebook's ``sqrt(2)`` for tanh and relu, none (1) for identity.
DEFAULT_GAINS: dict[str, float] = {"tanh": math.sqrt(2.0), "relu": math.sqrt(2.0), "identity": 1.0, "sigmoid": 1.0}


@functools.cache
def _mlp_loss(activation: str, gain: float) -> Callable:
    """The per-example loss of :func:`mlp`; one function object per (activation, gain), so that
    instances with other data (``problem_seed``) share one compiled program."""
    act = ACTIVATIONS[activation]

    def loss(params, x, y):
        # The notebook's net() for one example: Z = X W / sqrt(fan_in) per layer, X = act(Z) between
        # layers, the output the last Z / sqrt(fan_in); then its loss, the mean of (Z - Y)^2 over outputs.
        n_layers = len(params)
        h = x
        for k in range(n_layers):
            w = params[f"W{k}"]
            z = h @ w / math.sqrt(w.shape[0])
            if k < n_layers - 1:
                h = act(z, gain)
        out = z / math.sqrt(w.shape[0])
        return jnp.mean((out - y) ** 2)

    return loss


#: The derivative of each activation of :func:`mlp` from its input ``z`` and output ``h = act(z, gain)``.
DERIVATIVES: dict[str, Callable] = {
    "tanh": lambda z, h, gain: gain * (1 - h * h),
    "relu": lambda z, h, gain: jnp.where(z > 0, gain, 0.0).astype(h.dtype),
    "identity": lambda z, h, gain: jnp.full_like(h, gain),
    "sigmoid": lambda z, h, gain: gain * h * (1 - h),
}


@functools.cache
def mlp_batch_loss(activation: str = "tanh", gain: float = math.sqrt(2.0)) -> Callable:
    """:func:`mlp`'s loss over the whole data set, ``L(params) = mean((net(params, X) - Y)^2)``,
    with its gradient written out by hand (a ``jax.custom_vjp``): ``Problem.batch_loss``.

    The forward pass is the notebook's ``net`` and ``loss`` on all points at once. The backward
    pass is backpropagation with the constants folded (``d`` the fan-in of ``W{l}``, ``L`` layers)::

        g_out = 2 (out - Y) / size(Y)
        grad W{L-1} = h_{L-1}^T g_out / d_{L-1}         g_h = g_out W{L-1}^T / d_{L-1}
        g_z = g_h * act'(z)                          (tanh: gain (1 - h^2), from h alone)
        grad W{l} = h_l^T g_z / sqrt(d_l)            g_h = g_z W{l}^T / sqrt(d_l)

    Under ``vmap`` over a chunk of configs the first layer's ``X W0`` and ``X^T g_z`` are each one
    matrix product over the chunk, and nothing is computed that the gradient does not need
    (autodiff of the same function keeps the tanh's input, the divisions and the mean's
    broadcasts as separate steps). Same math; it rounds differently from autodiff (float64: a few
    units in the last place).
    """
    act, deriv = ACTIVATIONS[activation], DERIVATIVES[activation]

    def forward(params, x, y):
        n_layers = len(params)
        ws = [params[f"W{k}"] for k in range(n_layers)]
        hs, zs, h = [], [], x
        for w in ws[:-1]:
            z = jnp.dot(h, w) / math.sqrt(w.shape[0])
            hs.append(h)
            zs.append(z)
            h = act(z, gain)
        w = ws[-1]
        out = jnp.dot(h, w) / math.sqrt(w.shape[0]) / math.sqrt(w.shape[0])
        r = out - y
        return jnp.mean(r * r), (ws, hs + [h], zs, r)

    @jax.custom_vjp
    def loss(params, x, y):
        return forward(params, x, y)[0]

    def loss_fwd(params, x, y):
        value, saved = forward(params, x, y)
        return value, (saved, x, y)

    def loss_bwd(res, ct):
        (ws, hs, zs, r), x, y = res
        g = r * (2 * ct / r.size)  # d L / d out
        d = ws[-1].shape[0]
        grads = [jnp.dot(hs[-1].T, g) / d]
        g = jnp.dot(g, ws[-1].T) / d  # d L / d h
        for k in range(len(ws) - 2, -1, -1):
            d = math.sqrt(ws[k].shape[0])
            g = g * deriv(zs[k], hs[k + 1], gain) / d  # d L / d (h_k W_k), over sqrt(d_k)
            grads.append(jnp.dot(hs[k].T, g))
            if k:
                g = jnp.dot(g, ws[k].T)
        grads = {f"W{k}": gk for k, gk in zip(range(len(ws) - 1, -1, -1), grads)}
        return grads, jnp.zeros_like(x), jnp.zeros_like(y)

    loss.defvjp(loss_fwd, loss_bwd)
    return loss


@problem_factory
def mlp(
    width: int = 16,
    depth: int = 1,
    activation: str = "tanh",
    seed: int = 0,
    *,
    gain: float | None = None,
    n_data: int | None = None,
    input_dim: int | None = None,
    target_dim: int = 1,
) -> Problem:
    """The network of "The boundary of neural network trainability is fractal" (Sohl-Dickstein 2024).

    By default exactly the "tanh full batch" setting of the paper's public notebook
    (github.com/Sohl-Dickstein/fractal): one hidden layer of 16 tanh units, no biases, mean-field
    parametrisation, 272 points, full-batch gradient descent with one learning rate per layer.

    The network, for an input row ``x`` of ``input_dim`` numbers (``d_l`` the fan-in of ``W{l}``)::

        z_0 = x W0 / sqrt(d_0),  h_1 = act(z_0)
        z_l = h_l Wl / sqrt(d_l),  h_{l+1} = act(z_l)                  (l < depth)
        out = z_depth / sqrt(d_depth) = h_depth W{depth} / d_depth     (the readout, ``target_dim`` wide)

    with ``act(z) = tanh(gain z)`` (``gain`` = sqrt(2) by default), ``gain relu(z)`` (sqrt(2)) or
    ``gain z`` (1; the paper's linear network), as the notebook writes them. The default network is
    ``out = tanh(sqrt(2) x W0 / 4) W1 / 16``. Loss ``L = mean over points i and outputs j of
    (out_ij - y_ij)^2`` (the notebook's ``jnp.mean((Z - Y)**2)``, no 1/2); the per-example loss
    is the mean over outputs, and lrsweep's mean over the ``n_data`` examples gives ``L`` exactly.

    Parameters ``{"W0": (input_dim, width), "W1": (width, width), ..., "W{depth}": (width, target_dim)}``,
    float64; ``W0`` is the input layer and ``W{depth}`` the readout. The per-layer learning rates of
    the paper's 2-D maps are ``lr={"W0": lr0, "W1": lr1}`` (one sweep dim per layer). For deeper
    networks the notebook alternates its two rates over layers (layer ``l`` gets ``lr[l % 2]``):
    ``groups={"even": ["W0", "W2"], "odd": ["W1", "W3"]}`` does that.

    Draws, exactly the notebook's (``gen_img`` and ``init``), all float64 under a scoped
    ``jax.enable_x64(True)``: ``key = PRNGKey(seed)``; ``key, k = split(key)``, ``k`` split into one
    key per layer, ``W{l} ~ N(0, 1)``; ``key, k = split(key)``, ``x ~ N(0, I)`` of shape
    ``(n_data, input_dim)``; ``key, k = split(key)``, ``y ~ N(0, 1)`` of shape ``(n_data, target_dim)``.

    Args:
      width: hidden units per layer (the paper: 16).
      depth: hidden layers (the paper: 1; its notebook's ``depth`` counts weight layers, ``depth + 1``).
      activation: ``"tanh"`` (the paper's main setting), ``"relu"``, ``"identity"`` (both in the
        paper), or ``"sigmoid"`` (not in the paper).
      seed: the data and init key, ``jax.random.PRNGKey(seed)`` (the paper: 0).
      gain: the activation's gain; default sqrt(2) for tanh and relu, 1 for identity and sigmoid.
      n_data: the number of points; default the notebook's: as many as parameters per output
        (``n_params / target_dim``, 272 for the default), or ``width`` for identity. ``n_data=1``
        is the paper's "batch size 1" setting.
      input_dim: the input dimension; default ``width``, as in the notebook.
      target_dim: outputs per point (the paper: 1).

    The sampler draws ``W{l} ~ N(0, 1)`` from one key per layer, as the notebook's ``init`` does
    (float64 when JAX's x64 mode is on, else float32): ``sweep(..., init=N)`` draws N inits.

    >>> p = mlp()
    >>> {k: v.shape for k, v in p.init.items()}, p.x.shape, p.y.shape
    ({'W0': (16, 16), 'W1': (16, 1)}, (272, 16), (272, 1))
    """
    width, depth = _checks.integer("width", width, 1, MAX_DIM), _checks.integer("depth", depth, 1, 64)
    activation = _checks.choice("activation", activation, ACTIVATIONS)
    seed = _checks.integer("seed", seed, 0, 2**32 - 1)
    if seed >= 2**63:
        raise ValueError(f"seed={seed!r} is invalid: expected an integer in [0, 2**63)")
    gain = DEFAULT_GAINS[activation] if gain is None else _checks.real("gain", gain, 0.0, closed_low=False)
    input_dim = width if input_dim is None else _checks.integer("input_dim", input_dim, 1, MAX_DIM)
    target_dim = _checks.integer("target_dim", target_dim, 1, MAX_DIM)
    shapes = {"W0": (input_dim, width)}
    shapes.update({f"W{k}": (width, width) for k in range(1, depth)})
    shapes[f"W{depth}"] = (width, target_dim)
    n_params = sum(a * b for a, b in shapes.values())
    if n_data is None:
        n_data = width if activation == "identity" else max(1, n_params // target_dim)
    n_data = _checks.integer("n_data", n_data, 1, MAX_DATA)
    _check_data_size(n_data * (input_dim + target_dim))

    def sampler(key):
        # The notebook's init(rng, width, depth): one key per layer, W ~ N(0, 1) in JAX's default float.
        keys = jax.random.split(key, len(shapes))
        return {name: jax.random.normal(k, shape) for k, (name, shape) in zip(keys, shapes.items())}

    with jax.enable_x64(True):  # the notebook's float64 draws, without touching the global setting
        key = jax.random.PRNGKey(seed)
        key, sub = jax.random.split(key)
        init = {name: np.asarray(w) for name, w in sampler(sub).items()}
        key, sub = jax.random.split(key)
        x = np.asarray(jax.random.normal(sub, (n_data, input_dim), jnp.float64))
        key, sub = jax.random.split(key)
        y = np.asarray(jax.random.normal(sub, (n_data, target_dim), jnp.float64))

    return Problem(
        name="mlp",
        loss=_mlp_loss(activation, gain),
        x=x,
        y=y,
        init=init,
        min_loss=None,  # unknown: as many parameters as points, but no fit is guaranteed
        description=f"{depth}-hidden-layer {activation} network of width {width} (gain {gain:.6g}), mean-field, "
        f"no biases, {n_data} points, mean squared error (Sohl-Dickstein 2024, seed {seed})",
        sampler=sampler,
    )
