"""Built-in and user problems: one table of checks for every built-in, then each one's own facts."""

import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as R

import lrsweep
from lrsweep import cli, engine, precision, problems

# Small versions, so the table runs fast; the defaults are exercised below and by the CLI tests.
BUILTINS = {
    "linear": problems.linear,
    "chapter_net": problems.chapter_net,
    "quadratic": lambda: problems.quadratic(dim=3, cond=10.0),
    "logistic": lambda: problems.logistic(n=24, dim=2),
    "mlp": lambda: problems.mlp(width=3, depth=2),
}
LR = {"linear": 0.02, "chapter_net": 0.5, "quadratic": 0.05, "logistic": 0.5, "mlp": 0.3}


def test_the_table_covers_every_builtin():
    assert set(BUILTINS) == set(problems.BUILTINS)


@pytest.fixture(params=sorted(BUILTINS), scope="module")
def builtin(request):
    return request.param, BUILTINS[request.param]()


@pytest.mark.parametrize("grad", ["autodiff", "forward"])
def test_sweep_of_one_config_equals_a_single_run(builtin, grad):
    name, problem = builtin
    epochs = 20
    ds = lrsweep.sweep(problem, LR[name], epochs=epochs, grad=grad, precision="float64")
    table = lrsweep.trace(problem, LR[name], epochs, grad=grad, precision="float64")
    # Batched and unbatched programs may round differently in the last bit; a forward difference
    # divides that by h = 1e-4, so it is compared 1e4 times more loosely.
    rtol = 1e-12 if grad == "autodiff" else 1e-8
    for pname, leaf in zip(problems.param_names(problem.init), jax.tree_util.tree_leaves(problem.init)):
        traj = ds[pname].isel(lr=0, init=0).values  # (epochs + 1, *shape)
        for idx in np.ndindex(np.shape(leaf)):
            label = pname if not np.shape(leaf) else f"{pname}[{','.join(map(str, idx))}]"
            rows = table[table.parameter == label]
            np.testing.assert_allclose(traj[(slice(None, -1), *idx)], rows.value, rtol=rtol, atol=rtol / 100)
            np.testing.assert_allclose(traj[(-1, *idx)], rows.updated.iloc[-1], rtol=rtol, atol=rtol / 100)


def test_scan_equals_a_python_loop(builtin):
    name, problem = builtin
    epochs, policy = 10, precision.get("float64")
    ds = lrsweep.sweep(problem, LR[name], epochs=epochs, grad="autodiff", precision="float64")
    static = engine.Static(problem.loss, problem.n_data, "autodiff", policy, epochs, "trace", 1)
    with policy.context():
        x, y = engine.as_compute(static, problem.x, problem.y)
        init, epoch, _ = engine._epoch_fn(static, jnp.array([LR[name]]), x, y, 1e-4, jnp.float64(0.0))
        params = jax.tree_util.tree_map(jnp.asarray, problem.init)
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
        state = init(params)
        for _ in range(epochs):  # op by op, no jit, no scan
            _, _, _, params, state = epoch(params, state)
        for pname, leaf in zip(problems.param_names(problem.init), jax.tree_util.tree_leaves(params)):
            np.testing.assert_allclose(ds[pname].isel(lr=0, init=0, epoch=-1).values, leaf, rtol=1e-12, atol=1e-14)


def test_autodiff_and_central_difference_agree(builtin):
    _name, problem = builtin
    policy = precision.get("float64")
    with policy.context():
        loss = engine.loss_of(problem, policy)
        params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64), problem.init)
        _, exact, _ = lrsweep.gradients.estimate("autodiff", loss, params, 1e-5)
        _, central, _ = lrsweep.gradients.estimate("central", loss, params, 1e-5)
    for a, c in zip(jax.tree_util.tree_leaves(exact), jax.tree_util.tree_leaves(central)):
        np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-9)


def test_chapter_net_matches_the_notebook_algorithm():
    weights, losses = R.chapter_train(lr=0.01, epochs=100)
    ds = lrsweep.sweep("chapter_net", 0.01, epochs=100, grad="forward", precision="mixed")
    run = ds.isel(lr=0, init=0)
    # numpy's exp and XLA's differ in the last bit now and then: equal to float64 rounding.
    np.testing.assert_allclose(run.loss.values[:-1], losses, rtol=1e-14)
    for name, ref in zip(["W1", "b1", "W2", "b2"], weights):
        np.testing.assert_allclose(run[name].isel(epoch=-1).values, ref, rtol=0, atol=1e-7)
    assert losses[-1] < losses[0] / 2  # it learns, as the notebook's plot shows


def test_quadratic_has_the_eigenvalues_it_promises():
    q = problems.quadratic(dim=5, cond=100.0, seed=3)
    # L = (1/n) sum_i (n/2)(x_i . p)^2 = (1/2) p^T X^T X p, so the Hessian is X^T X.
    h = q.x.T @ q.x
    np.testing.assert_allclose(np.linalg.eigvalsh(h), np.geomspace(1, 100, 5), rtol=1e-10)
    assert not np.allclose(h, np.diag(np.diag(h)))  # rotated, not axis-aligned
    ds = lrsweep.sweep(q, [0.99 * 2 / 100, 1.01 * 2 / 100], epochs=3000, precision="float64", record="summary")
    assert ds.outcome.values.ravel().tolist() == ["converged", "diverged"]


def test_logistic_data_are_separable_and_the_loss_falls():
    p = problems.logistic(n=40, dim=3, seed=1)
    # A perceptron finds a separating hyperplane in finitely many passes on separable data.
    s = 2 * p.y - 1
    w = np.zeros(3)
    for _ in range(1000):
        wrong = s * (p.x @ w) <= 0
        if not wrong.any():
            break
        w += (s[wrong][:, None] * p.x[wrong]).sum(0)
    assert not wrong.any()
    ds = lrsweep.sweep(p, 1.0, epochs=500, record="summary", precision="float64")
    assert ds.loss.item() < 0.1 * np.log(2)


def test_mlp_loss_matches_numpy_and_counts_its_points():
    p = problems.mlp(width=5, depth=2, activation="tanh", seed=2)
    n_params = 5 * 5 * 2 + 5
    assert p.n_data == n_params and p.x.shape == (n_params, 5)
    w = {k: np.asarray(v, np.float64) for k, v in p.init.items()}
    h = np.tanh(p.x @ w["W0"] / np.sqrt(5))
    h = np.tanh(h @ w["W1"] / np.sqrt(5))
    expected = np.mean(np.sum((h @ w["Wout"] / 5 - p.y) ** 2, axis=1))
    policy = precision.get("float64")
    with policy.context():
        assert float(engine.loss_of(p, policy)(w)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="activation='swish'"):
        problems.mlp(activation="swish")


@pytest.mark.parametrize("arg", [{"dim": 0}, {"cond": 0.5}, {"dim": 2.5}])
def test_builtin_arguments_are_checked(arg):
    with pytest.raises(ValueError, match=next(iter(arg))):
        problems.quadratic(**arg)


def quad_loss(p, x, y):
    return (p["a"] * x - y) ** 2


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"loss": lambda p, x, y: (p["a"] * x - y) ** 2 * jnp.ones(3)}, "must return a scalar"),
        ({"loss": lambda p, x, y: (p["missing"] * x - y) ** 2}, "its loss failed"),
        ({"x": np.array([1.0, np.nan, 3.0])}, "x must be finite"),
        ({"y": np.array([1.0, np.inf, 3.0])}, "y must be finite"),
        ({"init": {"a": np.float32(0.0)}, "sampler": lambda k: {"a": jnp.zeros(2)}}, "sampler draws"),
        ({"init": lambda key: 1 / 0}, "sampler failed"),
        ({"init": {}}, "no parameters"),
    ],
)
def test_bad_user_problems_name_the_problem(kwargs, fragment):
    base = dict(name="mine", loss=quad_loss, x=np.arange(3.0), y=np.arange(3.0), init={"a": np.float32(0.0)})
    with pytest.raises(ValueError, match="problem 'mine'") as err:
        lrsweep.Problem(**{**base, **kwargs})
    assert fragment in str(err.value)


def test_problem_from_a_sampler():
    p = lrsweep.Problem("s", quad_loss, np.arange(3.0), np.arange(3.0), init=lambda k: {"a": jax.random.normal(k, ())})
    assert p.sampler is not None and np.shape(p.init["a"]) == ()
    ds = lrsweep.sweep(p, 0.1, init=4, seed=1, epochs=3, record="summary")
    assert ds.sizes["init"] == 4 and len(set(ds.init_a.values.tolist())) == 4


def test_user_problem_from_the_command_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "myproblems.py").write_text(
        textwrap.dedent("""
        import numpy as np
        import lrsweep

        def line():
            return lrsweep.Problem("line", lambda p, x, y: (p["a"] * x - y) ** 2,
                                   np.arange(1.0, 4.0), 2 * np.arange(1.0, 4.0), {"a": np.float32(0.0)})

        not_a_problem = 42
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["run", "--problem", "myproblems:line", "--lr", "0.01,0.1,0.3", "--epochs", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "problem line, 3 lr x 1 init" in out
    # L = (a - 2)^2 * mean(x^2) = (14/3)(a - 2)^2: GD is stable for lr < 2 / (28/3) = 0.214.
    assert "largest lr that converged: 0.1" in out
    assert cli.main(["run", "--problem", "myproblems:not_a_problem"]) == 2
    assert "not an lrsweep.Problem" in capsys.readouterr().err
    assert cli.main(["run", "--problem", "nosuchmodule_xyz:f"]) == 2
    assert "could not be loaded" in capsys.readouterr().err
    sys.modules.pop("myproblems", None)
