"""lrsweep.theory against closed forms, numpy linear algebra and the behaviour of real sweeps.

Every reference value here is computed independently of the code under test: the lesson's Hessian
by hand, quadratics built with a known Hessian ``X^T X`` and known eigenvalues, numpy eigen-
decompositions, float64 sweeps of the engine, and numpy simulations of optax's momentum updates.
"""

from typing import Any, cast

import jax.numpy as jnp
import numpy as np
import pytest

import lrsweep
from lrsweep import problems, theory

# The lesson, by hand: L(w, b) = (1/4) sum_i (w x_i + b - y_i)^2 with x = 1..4, so
# d2L/dw2 = (2/4) sum x^2 = 15, d2L/dw db = (2/4) sum x = 5, d2L/db2 = (2/4) 4 = 2.
LESSON_X = np.array([1.0, 2.0, 3.0, 4.0])
H_WB = np.array([[0.5 * np.sum(LESSON_X**2), 0.5 * np.sum(LESSON_X)], [0.5 * np.sum(LESSON_X), 2.0]])
# Eigenvalues of [[15, 5], [5, 2]]: (trace -+ sqrt(trace^2 - 4 det)) / 2 = (17 -+ sqrt(269)) / 2.
LESSON_LAMBDA = ((17 - np.sqrt(269)) / 2, (17 + np.sqrt(269)) / 2)


def _make_loss(n):
    """Per-example ``0.5 * n * y_i * (x_i . p)^2`` for ``n`` examples.

    The mean over ``i`` is ``0.5 p^T X^T diag(y) X p``: the Hessian is ``X^T diag(y) X`` (``X^T X``
    for ``y = 1``).
    """

    def loss(params, x, y):
        return 0.5 * n * y * (x @ params["p"]) ** 2

    return loss


N_QUAD = 3
# One loss function for every 3-parameter quadratic, so the engine compiles it once for all of them.
_quad_loss = _make_loss(N_QUAD)


def quadratic(eigs, seed=0, signs=None) -> lrsweep.Problem:
    """A problem whose Hessian is ``Q diag(signs * eigs) Q^T`` with ``Q`` a random rotation; init all ones.

    ``X = diag(sqrt(eigs)) Q^T`` (n = P examples), so ``X^T diag(signs) X = Q diag(signs eigs) Q^T``.
    """
    eigs = np.asarray(eigs, dtype=np.float64)
    p = eigs.size
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    x = np.sqrt(eigs)[:, None] * q.T
    y = np.ones(p) if signs is None else np.asarray(signs, dtype=np.float64)
    return lrsweep.Problem(
        name="quad",
        loss=_quad_loss if p == N_QUAD else _make_loss(p),
        x=x,
        y=y,
        init={"p": np.ones(p)},
        minimum={"p": np.zeros(p)},
    )


# --- the Hessian and its eigenvalues ----------------------------------------------------------


def test_lesson_hessian_by_hand():
    # ravel_pytree sorts dict keys: the order is (b, w); the lesson writes (w, b).
    assert problems.param_names(problems.linear().init) == ["b", "w"]
    h = theory.hessian(problems.linear())
    np.testing.assert_allclose(h, H_WB[::-1, ::-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(theory.eigenvalues(problems.linear()), LESSON_LAMBDA, rtol=1e-12)
    assert theory.lambda_min(problems.linear()) == pytest.approx(LESSON_LAMBDA[0], rel=1e-12)
    assert theory.lambda_max(problems.linear()) == pytest.approx(LESSON_LAMBDA[1], rel=1e-12)


def test_lesson_hessian_is_constant():
    # The loss is quadratic in (w, b): the Hessian at init equals the one at the minimum.
    p = problems.linear()
    np.testing.assert_allclose(theory.hessian(p, {"w": -7.0, "b": 2.5}), theory.hessian(p), atol=1e-12)


def test_quadratic_hessian_matches_numpy():
    prob = quadratic([0.5, 2.0, 9.0], seed=3)
    h_ref = prob.x.T @ prob.x
    np.testing.assert_allclose(theory.hessian(prob), h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(theory.hessian(prob, {"p": np.array([1.0, -2.0, 3.0])}), h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(theory.eigenvalues(prob), np.linalg.eigvalsh(h_ref), rtol=1e-10)
    np.testing.assert_allclose(theory.eigenvalues(prob), [0.5, 2.0, 9.0], rtol=1e-10)


def test_hessian_of_a_nonquadratic_loss_matches_a_closed_form():
    # L(a) = mean_i (a x_i^2 - y_i)^4 has L'' = 12 mean_i x_i^4 (a x_i^2 - y_i)^2.
    x = np.linspace(-1.0, 1.0, 5)
    y = 2.0 * x**2
    prob = lrsweep.Problem(name="quartic", loss=lambda p, xi, yi: (p["a"] * xi**2 - yi) ** 4, x=x, y=y, init={"a": 0.0})
    expected = 12.0 * np.mean(x**4 * (0.5 * x**2 - y) ** 2)
    np.testing.assert_allclose(theory.hessian(prob, {"a": 0.5}), [[expected]], rtol=1e-12)
    np.testing.assert_allclose(theory.hessian(prob), [[12.0 * np.mean(x**4 * y**2)]], rtol=1e-12)  # at init


# --- power iteration --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_quadratic():
    # 50 parameters; top eigenvalue 5 over a spectrum up to 4 (ratio 0.8: about 50 iterations).
    eigs = np.concatenate([np.geomspace(1e-2, 4.0, 49), [5.0]])
    return quadratic(eigs, seed=1)


def test_power_iteration_agrees_with_dense(big_quadratic):
    dense = np.linalg.eigvalsh(big_quadratic.x.T @ big_quadratic.x)[-1]
    assert dense == pytest.approx(5.0, rel=1e-12)
    assert theory.lambda_max(big_quadratic, method="dense") == pytest.approx(dense, rel=1e-12)
    assert theory.lambda_max(big_quadratic, method="power") == pytest.approx(dense, rel=1e-8)
    assert theory.lambda_max(big_quadratic, method="power", seed=7) == pytest.approx(dense, rel=1e-8)


def test_auto_uses_power_iteration_above_dense_max(big_quadratic, monkeypatch):
    power = theory.lambda_max(big_quadratic, method="power")
    monkeypatch.setattr(theory, "DENSE_MAX", 10)

    def no_dense(*args, **kwargs):
        raise AssertionError("the dense path was taken")

    monkeypatch.setattr(theory, "eigenvalues", no_dense)
    assert theory.lambda_max(big_quadratic) == power


def test_power_iteration_finds_the_largest_magnitude():
    # Hessian eigenvalues +1, +2 and -6: power iteration returns -6 (documented), dense +2.
    prob = quadratic([1.0, 2.0, 6.0], seed=2, signs=[1.0, 1.0, -1.0])
    assert theory.lambda_max(prob, method="dense") == pytest.approx(2.0, rel=1e-10)
    assert theory.lambda_max(prob, method="power") == pytest.approx(-6.0, rel=1e-8)
    with pytest.raises(ValueError, match="lambda_min"):
        theory.optimal_lr(prob)


def test_power_iteration_on_a_zero_hessian_and_its_warning():
    zero = lrsweep.Problem(name="flat", loss=_quad_loss, x=np.zeros((3, 3)), y=np.ones(3), init={"p": np.ones(3)})
    assert theory.lambda_max(zero, method="power") == 0.0
    with pytest.raises(ValueError, match=r"lambda_max=0\.0"):
        theory.critical_lr(zero)
    close = quadratic([1.0, 1.9, 2.0], seed=4)  # ratio 0.95: 3 iterations are not enough
    with pytest.warns(RuntimeWarning, match="iters=3"):
        theory.lambda_max(close, method="power", iters=3)


# --- learning rates from theory vs real sweeps ---------------------------------------------------


def _first_diverged(ds):
    outcome = lrsweep.outcome_names(ds.outcome)[:, 0]
    diverged = outcome == "diverged"
    assert diverged.any() and not diverged.all()
    k = int(np.argmax(diverged))
    # Divergence is a clean edge: nothing below it diverges, everything above it does.
    assert diverged[k:].all()
    return k


def _assert_within_one_step(lrs, k, critical):
    """The first diverged lr ``lrs[k]`` is within one grid step of ``critical`` (geometric grid)."""
    step = lrs[1] / lrs[0]
    assert lrs[k] / step <= critical <= lrs[k] * step, (lrs[k - 1], lrs[k], critical)


def test_critical_lr_gd_lesson_closed_form_and_sweep():
    crit = theory.critical_lr(problems.linear())
    assert crit == pytest.approx(2 / LESSON_LAMBDA[1], rel=1e-12)
    lrs = np.geomspace(0.05, 0.2, 400)
    ds = lrsweep.sweep(
        "linear", lrs, epochs=3000, grad="autodiff", precision="float64", record="summary", chunk_size=512
    )
    k = _first_diverged(ds)
    _assert_within_one_step(lrs, k, crit)


@pytest.mark.parametrize("kappa", [1.0, 30.0, 1000.0])
def test_critical_lr_gd_quadratic_sweep(kappa):
    lam_max = 4.0
    eigs = [lam_max / kappa, lam_max / np.sqrt(kappa), lam_max]
    prob = quadratic(eigs, seed=int(kappa))
    crit = theory.critical_lr(prob)
    assert crit == pytest.approx(2 / lam_max, rel=1e-10)
    lrs = np.geomspace(0.25, 1.0, 400)
    ds = lrsweep.sweep(prob, lrs, epochs=3000, precision="float64", record="summary", chunk_size=512)
    k = _first_diverged(ds)
    _assert_within_one_step(lrs, k, crit)


def test_optimal_lr_and_convergence_factor_lesson():
    assert theory.optimal_lr(problems.linear()) == pytest.approx(2 / 17, rel=1e-12)  # 2 / trace
    lo, hi = LESSON_LAMBDA
    lrs = np.array([0.01, 0.05, 0.1, 2 / 17, 0.115, 0.125])
    expected = np.maximum(np.abs(1 - lrs * lo), np.abs(1 - lrs * hi))
    np.testing.assert_allclose(theory.convergence_factor(problems.linear(), lrs), expected, rtol=1e-12)
    assert theory.convergence_factor(problems.linear(), 0.05).shape == (1,)


def test_convergence_factor_matches_the_loss_decay_of_a_sweep():
    # Asymptotically the loss gap shrinks by rho^2 per epoch; the engine's float64 trajectory agrees.
    lrs = np.array([0.01, 0.05, 0.1, 2 / 17, 0.115])
    ds = lrsweep.sweep("linear", lrs, epochs=200, precision="float64", record="trajectory")
    loss = ds.loss.values[:, 0, :]
    ratio = loss[:, 151] / loss[:, 150]
    rho = theory.convergence_factor(problems.linear(), lrs)
    np.testing.assert_allclose(ratio, rho**2, rtol=1e-3)


def test_optimal_lr_is_the_fastest_gd_in_numpy():
    # GD on the built quadratic (numpy, float64): the error after 60 steps is smallest at optimal_lr.
    eigs = np.array([0.3, 1.0, 5.0])
    prob = quadratic(eigs, seed=5)
    best = theory.optimal_lr(prob)
    assert best == pytest.approx(2 / (5.0 + 0.3), rel=1e-10)
    h = prob.x.T @ prob.x
    lrs = best * np.array([0.8, 0.9, 0.97, 1.0, 1.03, 1.1])
    err = []
    for lr in lrs:
        p = np.ones(3)
        for _ in range(60):
            p = p - lr * (h @ p)
        err.append(np.linalg.norm(p))
    assert int(np.argmin(err)) == 3


# --- momentum and Nesterov: the bounds against the optax update rules --------------------------


def simulate(lr, lam, beta, nesterov, steps):
    """optax.sgd(learning_rate=lr, momentum=beta, nesterov=nesterov) on f(p) = lam p^2 / 2, p0 = 1.

    optax.trace: v <- g + beta v; the update is v (heavy ball) or g + beta v (Nesterov), times -lr.
    ``lr`` is an array: one run per element. Returns |p| after ``steps`` steps.
    """
    p = np.ones_like(lr)
    v = np.zeros_like(lr)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            g = lam * p
            v = g + beta * v
            p = p - lr * (g + beta * v if nesterov else v)
    return np.abs(p)


def test_simulation_follows_optax():
    optax = pytest.importorskip("optax")
    for nesterov in (False, True):
        tx = optax.sgd(learning_rate=0.3, momentum=0.7, nesterov=nesterov)
        p = jnp.asarray(1.0)
        state = tx.init(p)
        for _ in range(5):
            updates, state = tx.update(2.0 * p, state, p)
            p = p + updates
        ref = simulate(np.array([0.3]), 2.0, 0.7, nesterov, 5)
        np.testing.assert_allclose(abs(float(p)), ref[0], rtol=1e-5)


@pytest.mark.parametrize(
    "optimizer,beta",
    [("gd", 0.0)] + [(o, b) for o in ("momentum", "nesterov") for b in (0.0, 0.5, 0.9, 0.99)],
)
def test_critical_lr_momentum_matches_simulation(optimizer, beta):
    prob = problems.linear()
    lam = LESSON_LAMBDA[1]
    crit = theory.critical_lr(prob, optimizer, momentum=beta)
    # A 1-D mode with the lesson's top curvature: its first divergent lr on a fine grid.
    lrs = crit * np.geomspace(0.8, 1.25, 300)
    p = simulate(lrs, lam, 0.0 if optimizer == "gd" else beta, optimizer == "nesterov", steps=3000)
    diverged = ~(p <= 1.0)  # above the start, or NaN / inf
    k = int(np.argmax(diverged))
    assert 0 < k and diverged[k:].all()
    _assert_within_one_step(lrs, k, crit)
    # Well inside the bound the mode dies out (slowest at beta = 0.99: |z| >= sqrt(beta)); well
    # outside it explodes.
    assert p[lrs < 0.95 * crit].max() < 1e-3
    assert np.all(~(p[lrs > 1.05 * crit] < 1e6))


def test_nesterov_bound_closed_form():
    # lr lambda < 2 (1 + beta) / (1 + 2 beta): 2 at beta = 0 (plain GD), 19/14 at beta = 0.9.
    lam = LESSON_LAMBDA[1]
    assert theory.critical_lr(problems.linear(), "nesterov", momentum=0.9) * lam == pytest.approx(3.8 / 2.8, rel=1e-12)
    assert theory.critical_lr(problems.linear(), "nesterov", momentum=0.0) * lam == pytest.approx(2.0, rel=1e-12)
    assert theory.critical_lr(problems.linear(), "momentum", momentum=0.9) * lam == pytest.approx(3.8, rel=1e-12)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"w": 1.0}, "params="),
        ({"w": 1.0, "b": 0.0, "c": 2.0}, "params="),
        ([1.0, 2.0], "params="),
        ({"w": np.ones(2), "b": 0.0}, "shape (2,)"),
        ({"w": np.nan, "b": 0.0}, "finite"),
        ({"w": "x", "b": 0.0}, "float"),
    ],
)
def test_bad_params(params, fragment):
    with pytest.raises(ValueError, match="params") as err:
        theory.hessian(problems.linear(), params)
    assert fragment in str(err.value)


def test_bad_arguments():
    p = problems.linear()
    accepted = r"expected one of \['gd', 'momentum', 'nesterov'\]"
    with pytest.raises(ValueError, match=r"optimizer='adam' is invalid: " + accepted):
        theory.critical_lr(p, "adam")
    with pytest.raises(ValueError, match=r"momentum=1.0 is invalid"):
        theory.critical_lr(p, "momentum", momentum=1.0)
    with pytest.raises(ValueError, match=r"momentum=-0.1 is invalid"):
        theory.critical_lr(p, "nesterov", momentum=-0.1)
    with pytest.raises(ValueError, match=r"method='lanczos' is invalid: expected one of \['auto', 'dense', 'power'\]"):
        theory.lambda_max(p, method="lanczos")
    with pytest.raises(ValueError, match="iters=0"):
        theory.lambda_max(p, method="power", iters=0)
    with pytest.raises(ValueError, match="tol=-1"):
        theory.lambda_max(p, method="power", tol=-1)
    with pytest.raises(ValueError, match="problem="):
        theory.hessian(cast(Any, "linear"))  # a name, not a Problem: refused
    for lr in ([0.1, -0.1], [[0.1]], [], float("nan"), "x"):
        with pytest.raises(ValueError, match="lr="):
            theory.convergence_factor(p, lr)


def test_non_finite_hessian():
    # |a| = sqrt(a^2) has the derivative a / |a| = 0 / 0 at a = 0.
    prob = lrsweep.Problem(
        name="abs", loss=lambda p, x, y: jnp.sqrt((p["a"] * x) ** 2), x=np.ones(2), y=np.ones(2), init={"a": 0.0}
    )
    with pytest.raises(ValueError, match="NaN or infinite"):
        theory.hessian(prob)
    with pytest.raises(ValueError, match="NaN or infinite"):
        theory.lambda_max(prob, method="power")
