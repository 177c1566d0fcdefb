"""Learning-rate theory from the loss Hessian.

Near a minimum ``p*`` the mean loss is a quadratic, ``L(p) ~ L(p*) + 1/2 (p - p*)^T H (p - p*)``, with
``H`` the ``(P, P)`` Hessian of ``L`` at ``p*`` in the raveled parameter order
(``jax.flatten_util.ravel_pytree``: the leaves in JAX's flattening order, dict keys sorted, each leaf
raveled in C order; ``lrsweep.problems.param_names`` names the leaves in that order). In the
eigenbasis of ``H`` every optimizer below acts on each mode ``i`` (curvature ``lambda_i``) on its own,
so stability and speed follow from the eigenvalues ``lambda_min <= ... <= lambda_max``:

=============  ============================================  =====================================
optimizer      one step on a mode ``p`` (``a = lr lambda``)   stable iff
=============  ============================================  =====================================
``gd``         ``p <- (1 - a) p``                             ``0 < a < 2``
``momentum``   ``v <- lambda p + beta v;  p <- p - lr v``     ``0 < a < 2 + 2 beta``
``nesterov``   ``v <- lambda p + beta v;``                    ``0 < a < 2 (1 + beta) / (1 + 2 beta)``
               ``p <- p - lr (lambda p + beta v)``
=============  ============================================  =====================================

(``momentum`` and ``nesterov`` are ``optax.sgd(momentum=beta)`` and
``optax.sgd(momentum=beta, nesterov=True)``; ``0 <= beta < 1``.) Derivation for a 1-D mode, writing
``u = lr v`` so that the state ``(p, u)`` evolves by a 2x2 matrix ``M`` whose eigenvalues must lie
inside the unit circle. For a monic quadratic ``z^2 - T z + D`` (``T = trace M``, ``D = det M``)
that holds iff ``|D| < 1``, ``1 - T + D > 0`` and ``1 + T + D > 0`` (the Jury conditions):

- heavy ball: ``M = [[1 - a, -beta], [a, beta]]``, ``T = 1 + beta - a``, ``D = beta``:
  ``1 - T + D = a > 0`` and ``1 + T + D = 2 + 2 beta - a > 0``;
- Nesterov: ``p' = (1 - a (1 + beta)) p - beta^2 u`` and ``u' = a p + beta u``, so
  ``T = 1 + beta - a (1 + beta)``, ``D = beta (1 - a)``: ``1 - T + D = a > 0`` and
  ``1 + T + D = 2 + 2 beta - a (1 + 2 beta) > 0``, i.e. ``a < 2 (1 + beta) / (1 + 2 beta)``;
  ``|D| < 1`` needs ``a < 1 + 1 / beta``, which is larger, so it never binds.

The tests check both bounds against a simulation of the optax update rules.

Everything here is float64 (``lrsweep.precision.get("float64")``, x64 switched on around the
computation only) and uses ``lrsweep.engine.loss_of``, the mean loss exactly as the engine computes
it. No ``jit``: the Hessian and Hessian-vector products run op by op (the engine is the only module
that compiles).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import _checks, engine, precision, problems
from .problems import Problem
from .types import PyTree

#: ``lambda_max(method="auto")`` builds the dense Hessian up to this many parameters
#: (2000 x 2000 float64 is 32 MB), and uses power iteration on Hessian-vector products above it.
DENSE_MAX = 2000
METHODS = ("auto", "dense", "power")
OPTIMIZERS = ("gd", "momentum", "nesterov")

_POLICY = precision.get("float64")


# --- parameters and the flat loss -------------------------------------------------------------


def _resolve_params(problem: Problem, params: PyTree | None) -> PyTree:
    """``params`` validated against ``problem.init``: same structure and leaf shapes, finite, float64.

    Default: ``problem.minimum`` when the problem has one, else ``problem.init``.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem={problem!r} is invalid: expected an lrsweep.Problem")
    arg = "params"
    if params is None:
        if problem.minimum is None:
            params, arg = problem.init, "problem.init"
        else:
            params, arg = problem.minimum, "problem.minimum"
    ref_leaves, ref_def = jax.tree.flatten(problem.init)
    try:
        leaves = ref_def.flatten_up_to(params)
    except (ValueError, TypeError):
        raise ValueError(
            f"{arg}={params!r} is invalid for problem {problem.name!r}: expected a pytree with the "
            f"structure of problem.init, {ref_def} (leaves {problems.param_names(problem.init)})"
        ) from None
    names = problems.param_names(problem.init)
    arrays = []
    for name, ref, leaf in zip(names, ref_leaves, leaves):
        try:
            arr = np.asarray(leaf, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{arg}[{name!r}]={leaf!r} is invalid: expected a float array") from None
        if arr.shape != np.shape(ref):
            raise ValueError(
                f"{arg}[{name!r}] has shape {arr.shape}: expected {np.shape(ref)}, the shape of problem.init[{name!r}]"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{arg}[{name!r}]={arr!r} is invalid: expected finite values")
        arrays.append(arr)
    return ref_def.unflatten(arrays)


def _flat_loss(problem: Problem, params: PyTree) -> tuple[Callable[[jax.Array], jax.Array], jax.Array]:
    """``(L_flat, p)``: ``L_flat(v) = L(unravel(v))`` on ``(P,)`` float64 vectors, and ``p = ravel(params)``.

    Call inside ``_POLICY.context()`` (x64 on).
    """
    flat, unravel = ravel_pytree(jax.tree.map(jnp.asarray, params))
    loss = engine.loss_of(problem, _POLICY)
    return (lambda v: loss(unravel(v))), flat


# --- the Hessian and its spectrum --------------------------------------------------------------


def hessian(problem: Problem, params: PyTree | None = None) -> np.ndarray:
    """The dense Hessian ``H[j, k] = d^2 L / dp_j dp_k`` of the mean loss, shape ``(P, P)`` float64.

    ``L(p) = (1/n) sum_i loss(p, x_i, y_i)`` as the engine computes it, at ``params`` (a pytree like
    ``problem.init``; default ``problem.minimum`` if the problem has one, else ``problem.init``).
    ``P`` is the number of parameter elements; rows and columns follow the raveled parameter order
    (``jax.flatten_util.ravel_pytree``: dict keys sorted, so ``b`` comes before ``w``). Computed with
    ``jax.hessian`` (forward over reverse) and symmetrised, ``(H + H^T) / 2``, which removes
    round-off asymmetry only.

    The lesson (``w x + b``, mean squared error on x = 1..4): ``H = [[2, 5], [5, 15]]`` in the order
    ``(b, w)``, i.e. ``[[15, 5], [5, 2]]`` in the order ``(w, b)``.

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> theory.hessian(lrsweep.problems.linear())
    array([[ 2.,  5.],
           [ 5., 15.]])

    Raises:
      ValueError: ``params`` does not match ``problem.init`` (structure, shapes) or is not finite;
        the Hessian has NaN or infinite entries.
    """
    params = _resolve_params(problem, params)
    with _POLICY.context():
        loss, flat = _flat_loss(problem, params)
        h = np.asarray(jax.hessian(loss)(flat), dtype=np.float64)
    if not np.all(np.isfinite(h)):
        raise ValueError(
            f"the Hessian of problem {problem.name!r} at params has NaN or infinite entries; "
            "pass params at which the loss is finite and twice differentiable"
        )
    return (h + h.T) / 2


def eigenvalues(problem: Problem, params: PyTree | None = None) -> np.ndarray:
    """The Hessian's eigenvalues ``lambda_1 <= ... <= lambda_P``, shape ``(P,)`` float64, ascending.

    Dense: ``np.linalg.eigvalsh(hessian(problem, params))``. For the lesson they are
    ``(17 -+ sqrt(269)) / 2``: trace 17, determinant 5.

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> theory.eigenvalues(lrsweep.problems.linear()).round(4)
    array([ 0.2994, 16.7006])
    """
    return np.linalg.eigvalsh(hessian(problem, params))


def lambda_min(problem: Problem, params: PyTree | None = None) -> float:
    """The Hessian's smallest eigenvalue (dense, ``eigenvalues(problem, params)[0]``).

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> round(theory.lambda_min(lrsweep.problems.linear()), 4)
    0.2994
    """
    return float(eigenvalues(problem, params)[0])


def _check_method(method) -> str:
    _checks.choice("method", method, METHODS)
    return method


def _power_iteration(hvp: Callable[[np.ndarray], np.ndarray], size: int, iters: int, tol: float, seed: int) -> float:
    """The eigenvalue of largest magnitude of the symmetric operator ``hvp`` on ``R^size``.

    ``v_0`` is a seeded standard normal vector, normalised; ``w_k = H v_k``,
    ``mu_k = v_k . w_k`` (the Rayleigh quotient, signed), ``v_{k+1} = w_k / |w_k|``. Stops when
    ``|mu_k - mu_{k-1}| <= tol |mu_k|``. The error in ``mu_k`` shrinks like ``(lambda_2 / lambda_1)^(2k)``.
    """
    v = np.random.default_rng(seed).standard_normal(size)
    v /= np.linalg.norm(v)
    mu, mu_prev = float("nan"), None
    for _ in range(iters):
        w = hvp(v)
        mu = float(v @ w)
        norm = float(np.linalg.norm(w))
        if not (np.isfinite(mu) and np.isfinite(norm)):
            raise ValueError(
                "a Hessian-vector product has NaN or infinite entries; pass params at which the loss is finite"
            )
        if norm == 0.0:  # v is in the null space: with a random start, H = 0
            return 0.0
        if mu_prev is not None and abs(mu - mu_prev) <= tol * abs(mu):
            return mu
        mu_prev, v = mu, w / norm
    warnings.warn(
        f"lambda_max: power iteration did not reach tol={tol} in iters={iters} iterations "
        f"(last estimate {mu!r}); the top eigenvalues are close, raise iters",
        RuntimeWarning,
        stacklevel=3,
    )
    return mu


def lambda_max(
    problem: Problem,
    params: PyTree | None = None,
    *,
    method: str = "auto",
    iters: int = 200,
    tol: float = 1e-10,
    seed: int = 0,
) -> float:
    """The Hessian's largest eigenvalue ``lambda_max`` (the sharpness) at ``params``.

    Methods:

    - ``"dense"``: ``eigenvalues(problem, params)[-1]``; ``O(P^2)`` memory, ``O(P^3)`` time.
    - ``"power"``: power iteration on Hessian-vector products ``H v`` (forward over reverse:
      ``jax.linearize(jax.grad(L), p)`` then the linear map at ``v``; ``H`` is never built), from a
      normal start vector drawn with ``seed``, at most ``iters`` products, stopping when the Rayleigh
      quotient ``v . H v`` changes by at most ``tol`` relative. Power iteration finds the eigenvalue
      of largest *magnitude*: at a minimum (``H`` positive semi-definite) that is ``lambda_max``, but
      away from one a negative eigenvalue larger in magnitude wins, and the result is negative. A
      ``RuntimeWarning`` says when ``iters`` ran out (close top eigenvalues converge slowly).
    - ``"auto"``: dense when ``P <= 2000`` (``DENSE_MAX``), else power.

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> p = lrsweep.problems.linear()
    >>> round(theory.lambda_max(p), 4), round(theory.lambda_max(p, method="power"), 4)
    (16.7006, 16.7006)

    Raises:
      ValueError: a bad ``method``, ``iters``, ``tol``, ``seed`` or ``params``, or a non-finite Hessian.
    """
    method = _check_method(method)
    iters = _checks.integer("iters", iters, 1)
    tol = _checks.real("tol", tol, 0.0, closed_low=False)
    seed = _checks.integer("seed", seed, 0)
    params = _resolve_params(problem, params)
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))
    if method == "dense" or (method == "auto" and size <= DENSE_MAX):
        return float(eigenvalues(problem, params)[-1])
    with _POLICY.context():
        loss, flat = _flat_loss(problem, params)
        # Linearise the gradient once; each product then replays only the tangent computation.
        _, hvp_lin = jax.linearize(jax.grad(loss), flat)

        def hvp(v: np.ndarray) -> np.ndarray:
            return np.asarray(hvp_lin(jnp.asarray(v, dtype=jnp.float64)), dtype=np.float64)

        return _power_iteration(hvp, size, iters, tol, seed)


# --- learning rates ---------------------------------------------------------------------------


def _positive_lambda_max(problem: Problem, params, method: str) -> float:
    lam = lambda_max(problem, params, method=method)
    if not lam > 0:
        raise ValueError(
            f"the Hessian of problem {problem.name!r} at params has lambda_max={lam!r} <= 0: the quadratic "
            "model gives no learning-rate bound; take params at a minimum"
        )
    return lam


def critical_lr(
    problem: Problem,
    optimizer: str = "gd",
    *,
    momentum: float = 0.9,
    params: PyTree | None = None,
    method: str = "auto",
) -> float:
    """The largest stable learning rate of the quadratic model at ``params``: ``c / lambda_max``.

    The run diverges for ``lr > critical_lr`` (every mode with ``lr lambda_i`` past the bound grows)
    and, on a quadratic, converges below it. With ``beta = momentum`` (see the module docstring for
    the derivation):

    - ``"gd"``: ``2 / lambda_max`` (``momentum`` is ignored);
    - ``"momentum"`` (heavy ball, ``optax.sgd(momentum=beta)``): ``(2 + 2 beta) / lambda_max``;
    - ``"nesterov"`` (``optax.sgd(momentum=beta, nesterov=True)``):
      ``2 (1 + beta) / ((1 + 2 beta) lambda_max)``.

    ``lambda_max`` comes from :func:`lambda_max` with ``method``.

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> p = lrsweep.problems.linear()
    >>> [round(theory.critical_lr(p, o), 5) for o in ("gd", "momentum", "nesterov")]
    [0.11976, 0.22754, 0.08126]

    Raises:
      ValueError: an unknown ``optimizer``, ``momentum`` outside ``[0, 1)``, bad ``params``, or
        ``lambda_max <= 0`` (no bound: the Hessian is not positive anywhere).
    """
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    beta = 0.0 if optimizer == "gd" else _checks.real("momentum", momentum, 0.0, 1.0)
    factor = {"gd": 2.0, "momentum": 2.0 + 2.0 * beta, "nesterov": 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)}
    return factor[optimizer] / _positive_lambda_max(problem, params, _check_method(method))


def optimal_lr(problem: Problem, params: PyTree | None = None) -> float:
    """The gradient-descent learning rate with the fastest worst-mode contraction: ``2 / (lambda_max + lambda_min)``.

    It minimises ``max_i |1 - lr lambda_i|`` (:func:`convergence_factor`), where the slowest and the
    stiffest modes contract equally fast, by ``(lambda_max - lambda_min) / (lambda_max + lambda_min)``
    per epoch. Dense eigenvalues; needs a positive definite Hessian (``lambda_min > 0``).

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> round(theory.optimal_lr(lrsweep.problems.linear()), 5)   # 2 / 17
    0.11765

    Raises:
      ValueError: bad ``params``, or ``lambda_min <= 0`` (a flat or downhill direction: no mode
        balance exists, and GD does not contract the error along it).
    """
    lam = eigenvalues(problem, params)
    if not lam[0] > 0:
        raise ValueError(
            f"the Hessian of problem {problem.name!r} at params is not positive definite "
            f"(lambda_min={float(lam[0])!r}); optimal_lr needs lambda_min > 0, take params at a strict minimum"
        )
    return float(2.0 / (lam[-1] + lam[0]))


def convergence_factor(problem: Problem, lr, params: PyTree | None = None) -> np.ndarray:
    """Per learning rate, the predicted per-epoch contraction of the GD parameter error: ``max_i |1 - lr lambda_i|``.

    On the quadratic model, GD maps the error ``e = p - p*`` to ``(I - lr H) e``, so in the
    eigenbasis mode ``i`` is multiplied by ``1 - lr lambda_i`` each epoch and, asymptotically, the
    error norm by ``rho(lr) = max_i |1 - lr lambda_i|``; the loss gap ``L - L*`` (quadratic in
    ``e``) by ``rho^2``. ``rho < 1`` converges, ``rho > 1`` diverges.

    Args:
      lr: learning rates, a number or a 1-D array-like of shape ``(L,)``, finite and > 0.

    Returns:
      ``rho``, shape ``(L,)`` float64 (``(1,)`` for a number).

    >>> import lrsweep
    >>> from lrsweep import theory
    >>> theory.convergence_factor(lrsweep.problems.linear(), [0.01, 2 / 17, 0.13]).round(4)
    array([0.997 , 0.9648, 1.1711])
    """
    try:
        lrs = np.atleast_1d(np.asarray(lr, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"lr={lr!r} is invalid: expected a number or a 1-D array of finite numbers > 0") from None
    if lrs.ndim != 1 or lrs.size == 0 or not np.all(np.isfinite(lrs) & (lrs > 0)):
        raise ValueError(f"lr={lr!r} is invalid: expected a number or a non-empty 1-D array of finite numbers > 0")
    lam = eigenvalues(problem, params)
    # |1 - lr lambda| is convex in lambda, so its maximum over the spectrum is at an end of it.
    ends = lam[[0, -1]]
    return np.max(np.abs(1.0 - lrs[:, None] * ends[None, :]), axis=1)
