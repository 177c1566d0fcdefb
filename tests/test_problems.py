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
from lrsweep.problems import Metric, Problem

# Small versions, so the table runs fast; the defaults are exercised below and by the CLI tests.
BUILTINS = {
    "linear": problems.linear,
    "chapter_net": problems.chapter_net,
    "quadratic": lambda: problems.quadratic(dim=3, cond=10.0),
    "logistic": lambda: problems.logistic(n=24, dim=2),
    "mlp": lambda: problems.mlp(width=3, depth=2),
    "digits": lambda: problems.digits(hidden=2),
}
LR = {"linear": 0.02, "chapter_net": 0.5, "quadratic": 0.05, "logistic": 0.5, "mlp": 0.3, "digits": 0.5}


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
    for pname, leaf in zip(problems.param_names(problem.init), jax.tree.leaves(problem.init)):
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
    static = engine.Static(
        loss=problem.loss,
        n_data=problem.n_data,
        grad="autodiff",
        policy=policy,
        epochs=epochs,
        record="trace",
        window=1,
    )
    with policy.context():
        x, y = (np.asarray(a, policy.compute_dtype) for a in (problem.x, problem.y))
        init, epoch, _ = engine._epoch_fn(static, jnp.array([LR[name]]), x, y, 1e-4, jnp.float64(0.0))
        params = jax.tree.map(jnp.asarray, problem.init)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        state = init(params)
        for _ in range(epochs):  # op by op, no jit, no scan
            _, _, _, params, state = epoch(params, state)
        for pname, leaf in zip(problems.param_names(problem.init), jax.tree.leaves(params)):
            np.testing.assert_allclose(ds[pname].isel(lr=0, init=0, epoch=-1).values, leaf, rtol=1e-12, atol=1e-14)


def test_autodiff_and_central_difference_agree(builtin):
    _name, problem = builtin
    policy = precision.get("float64")
    with policy.context():
        loss = engine.loss_of(problem, policy)
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), problem.init)
        _, exact, _ = lrsweep.gradients.estimate("autodiff", loss, params, 1e-5)
        _, central, _ = lrsweep.gradients.estimate("central", loss, params, 1e-5)
    for a, c in zip(jax.tree.leaves(exact), jax.tree.leaves(central)):
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
    assert lrsweep.outcome_names(ds.outcome).ravel().tolist() == ["converged", "diverged"]


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
    n_params = 5 * 5 * 2 + 5  # W0 (5, 5), W1 (5, 5), W2 (5, 1): as many points as parameters
    assert p.n_data == n_params and p.x.shape == (n_params, 5) and p.y.shape == (n_params, 1)
    assert list(p.init) == ["W0", "W1", "W2"] and p.init["W2"].shape == (5, 1)
    w = {k: np.asarray(v, np.float64) for k, v in p.init.items()}
    g, s = np.sqrt(2.0), np.sqrt(5.0)
    h = np.tanh(g * (p.x @ w["W0"] / s))
    h = np.tanh(g * (h @ w["W1"] / s))
    expected = np.mean((h @ w["W2"] / 5 - p.y) ** 2)
    policy = precision.get("float64")
    with policy.context():
        assert float(engine.loss_of(p, policy)(w)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="activation='swish'"):
        problems.mlp(activation="swish")


@pytest.mark.parametrize(
    "kwargs,shapes,n_data",
    [
        ({}, {"W0": (16, 16), "W1": (16, 1)}, 272),  # the paper's tanh full batch
        ({"activation": "identity"}, {"W0": (16, 16), "W1": (16, 1)}, 16),  # its linear network: width points
        ({"n_data": 1}, {"W0": (16, 16), "W1": (16, 1)}, 1),  # its "batch size 1"
        ({"width": 4, "depth": 2, "input_dim": 3, "target_dim": 2}, {"W0": (3, 4), "W1": (4, 4), "W2": (4, 2)}, 18),
    ],
)
def test_mlp_shapes_and_data_sizes(kwargs, shapes, n_data):
    p = problems.mlp(**kwargs)
    assert {k: v.shape for k, v in p.init.items()} == shapes
    assert p.n_data == n_data and p.x.shape[1] == shapes["W0"][0] and p.y.shape[1] == shapes[f"W{len(shapes) - 1}"][1]
    assert all(v.dtype == np.float64 for v in p.init.values()) and p.x.dtype == p.y.dtype == np.float64


@pytest.mark.parametrize("activation,gain", [("relu", np.sqrt(2.0)), ("identity", 1.0), ("tanh", 0.5)])
def test_mlp_activations_and_gains(activation, gain):
    kwargs = {"gain": gain} if activation == "tanh" else {}
    p = problems.mlp(width=4, activation=activation, **kwargs)
    w0, w1 = p.init["W0"], p.init["W1"]
    z = p.x @ w0 / 2.0
    h = {"relu": np.maximum(z, 0) * gain, "identity": z * gain, "tanh": np.tanh(z * gain)}[activation]
    expected = np.mean((h @ w1 / 4.0 - p.y) ** 2)
    policy = precision.get("float64")
    with policy.context():
        assert float(engine.loss_of(p, policy)(p.init)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"gain": 0.0}, "gain=0.0"),
        ({"gain": float("nan")}, "gain=nan"),
        ({"n_data": 0}, "n_data=0"),
        ({"seed": -1}, "seed=-1"),
        ({"input_dim": 0}, "input_dim=0"),
        ({"target_dim": True}, "target_dim=True"),
    ],
)
def test_mlp_arguments_are_checked(kwargs, fragment):
    with pytest.raises(ValueError, match="is invalid") as err:
        problems.mlp(**kwargs)
    assert fragment in str(err.value)


# The notebook of "The boundary of neural network trainability is fractal" (Sohl-Dickstein 2024,
# github.com/Sohl-Dickstein/fractal), its "tanh full batch" cell: width 16, depth 2 (weight layers),
# dataset_param_multiple 1, full batch, target_dim 1, tanh, lr_vs_lr, readout loss. Its net, init,
# loss, gen_img draws and train_step, transcribed with the settings filled in.
def _paper_net(theta, X):
    for W in theta:
        Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
        X = jax.nn.tanh(Z * jnp.sqrt(2))
    return Z / jnp.sqrt(W.shape[0])


def _paper_init(rng, width, depth, target_dim=1):
    rng = jax.random.split(rng, depth)
    theta = []
    out_width = width
    for i in range(depth):
        if i == depth - 1:
            out_width = target_dim
        theta.append(jax.random.normal(rng[i], (width, out_width)))
    return theta


def _paper_loss(theta, X, Y):
    return jnp.mean((_paper_net(theta, X) - Y) ** 2)


def _paper_run(hparams, num_steps, width=16, depth=2, target_dim=1):
    """gen_img's draws, then train()'s loop for one (lr0, lr1): the loss before each step, and after the last."""
    with jax.enable_x64(True):
        rng = jax.random.PRNGKey(0)
        rng, srng = jax.random.split(rng)
        theta = _paper_init(srng, width, depth)
        n_params = int(jnp.sum(jnp.array(jax.tree.map(lambda u: u.size, theta))))
        rng, srng = jax.random.split(rng)
        batch_size = int(n_params * 1.0 / target_dim)
        X = jax.random.normal(srng, (batch_size, width))
        rng, srng = jax.random.split(rng)
        Y = jax.random.normal(srng, (batch_size, target_dim))
        data = [np.asarray(t) for t in theta], np.asarray(X), np.asarray(Y)
        losses = []
        for _ in range(num_steps):
            learning_rates = [hparams[i % len(hparams)] for i in range(len(theta))]
            _loss, _grad = jax.value_and_grad(_paper_loss)(theta, X, Y)
            theta = jax.tree.map(lambda t, g, lr: t - lr * g, theta, _grad, learning_rates)
            losses.append(float(_loss))
        losses.append(float(_paper_loss(theta, X, Y)))
        return data, np.array(losses), [np.asarray(t) for t in theta]


def test_mlp_draws_the_papers_data_and_init_bit_for_bit():
    (theta, X, Y), losses, _ = _paper_run([1.0, 1.0], 0)
    p = problems.mlp()
    np.testing.assert_array_equal(p.x, X)
    np.testing.assert_array_equal(p.y, Y)
    np.testing.assert_array_equal(p.init["W0"], theta[0])
    np.testing.assert_array_equal(p.init["W1"], theta[1])
    # The sampler is the notebook's init(): from the same key, under x64, the same weights.
    with jax.enable_x64(True):
        key = jax.random.split(jax.random.PRNGKey(0))[1]
        assert p.sampler is not None
        drawn = p.sampler(key)
    np.testing.assert_array_equal(drawn["W0"], theta[0])
    # lrsweep's mean of the per-example loss over the 272 points is the notebook's loss.
    policy = precision.get("float64")
    with policy.context():
        assert float(engine.loss_of(p, policy)(p.init)) == pytest.approx(losses[0], rel=1e-14)


# A slow descent, and a fast one (loss 0.91 -> 0.23 in 50 steps) where rounding grows fastest.
@pytest.mark.parametrize("lr0,lr1", [(10**0.3, 10**-0.2), (50.0, 50.0)])
def test_mlp_trains_as_the_papers_notebook(lr0, lr1):
    _, losses, theta = _paper_run([lr0, lr1], 50)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    ds = lrsweep.sweep(problems.mlp(), {"W0": lr0, "W1": lr1}, epochs=50, precision="float64", record="trajectory")
    run = ds.isel(lr_W0=0, lr_W1=0, init=0)
    np.testing.assert_allclose(run.loss.values, losses, rtol=1e-10)
    np.testing.assert_allclose(run.W0.isel(epoch=-1).values, theta[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.W1.isel(epoch=-1).values, theta[1], rtol=1e-10, atol=1e-12)


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

        @lrsweep.problems.problem_factory
        def line():
            return lrsweep.Problem("line", lambda p, x, y: (p["a"] * x - y) ** 2,
                                   np.arange(1.0, 4.0), 2 * np.arange(1.0, 4.0), {"a": np.float32(0.0)})

        not_a_problem = 42

        @lrsweep.problems.problem_factory
        def forty_two():
            return 42

        def unmarked():
            return line()
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["run", "--problem", "myproblems:line", "--lr", "0.01,0.1,0.3", "--epochs", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "problem line, 3 lr x 1 init" in out
    # L = (a - 2)^2 * mean(x^2) = (14/3)(a - 2)^2: GD is stable for lr < 2 / (28/3) = 0.214.
    assert "largest lr that converged: 0.1" in out
    assert cli.main(["run", "--problem", "myproblems:not_a_problem"]) == 2
    assert "is refused: myproblems.not_a_problem is not marked as a problem factory" in capsys.readouterr().err
    assert cli.main(["run", "--problem", "myproblems:unmarked"]) == 2
    assert "is refused: myproblems.unmarked is not marked" in capsys.readouterr().err
    assert cli.main(["run", "--problem", "myproblems:forty_two"]) == 2
    assert "not an lrsweep.Problem" in capsys.readouterr().err
    assert cli.main(["run", "--problem", "nosuchmodule_xyz:f"]) == 2
    assert "could not be loaded" in capsys.readouterr().err
    sys.modules.pop("myproblems", None)


def _eval_problem(**kw):
    loss = lambda p, x, y: (p["w"] * x[0] - y[0]) ** 2
    x, y = np.ones((4, 1)), np.ones((4, 1))
    return Problem("t", loss, x, y, {"w": np.float32(0.0)}, **kw)


def test_eval_metrics_are_named_and_directed():
    hit = lambda p, x, y: (jnp.abs(p["w"] * x[0] - y[0]) < 0.5).astype(jnp.float32)
    gap = lambda p, x, y: jnp.abs(p["w"] * x[0] - y[0])
    p = _eval_problem(
        x_eval=np.ones((2, 1)), y_eval=np.ones((2, 1)), metrics={"accuracy": hit, "gap": gap, "hits": Metric(hit, True)}
    )
    fns = p.metric_fns()
    assert list(fns) == ["eval_loss", "accuracy", "gap", "hits"]
    assert [m.maximize for m in fns.values()] == [False, True, False, True]
    assert _eval_problem().metric_fns() == {}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"x_eval": np.ones((2, 1))}, "x_eval and y_eval together"),
        ({"x_eval": np.ones((2, 2)), "y_eval": np.ones((2, 1))}, r"x_eval.shape=\(2, 2\) is invalid"),
        ({"x_eval": np.ones((2, 1)), "y_eval": np.ones((3, 1))}, "share a non-empty leading example axis"),
        ({"metrics": {"gap": lambda p, x, y: p["w"]}}, "need held-out data"),
        (
            {"x_eval": np.ones((2, 1)), "y_eval": np.ones((2, 1)), "metrics": {"m": lambda p, x, y: jnp.ones(2)}},
            "scalar",
        ),
        (
            {"x_eval": np.ones((2, 1)), "y_eval": np.ones((2, 1)), "metrics": {"best_m": lambda p, x, y: p["w"]}},
            "reserved",
        ),
        ({"x_eval": np.ones((2, 1)), "y_eval": np.ones((2, 1)), "metrics": {"m": 3}}, r"metrics\['m'\]=3 is invalid"),
    ],
)
def test_eval_data_and_metrics_are_checked(kw, message):
    with pytest.raises(ValueError, match=message):
        _eval_problem(**kw)
