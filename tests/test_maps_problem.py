"""Maps of any problem (``maps.trainability(problem, x_axis=..., y_axis=...)``, ``lrsweep map --problem``).

References: ``lrsweep.sweep`` of the same problem over the same grid (a map is that sweep, pixel for
pixel), and gradient descent written in numpy on problems whose gradient is closed-form (the
lesson's line fit and the quadratic bowl), run one pixel grid at a time in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrsweep
from lrsweep import maps
from lrsweep.cli import main as cli_main


def numpy_score(losses: np.ndarray, window: int = 20) -> np.ndarray:
    """The paper's score of losses ``(..., steps)`` recorded before each step: non-finite and
    relative losses above 1e6 as 1e6, the mean of the last ``window`` over the first."""
    v = np.where(np.isfinite(losses), losses, 1e6)
    v = np.minimum(v / v[..., :1], 1e6)
    return v[..., -window:].mean(axis=-1)


def logs(lo: float, hi: float, res: int) -> np.ndarray:
    return 10.0 ** np.linspace(lo, hi, res)


def test_a_problems_map_is_its_sweep_verdict_for_verdict(tmp_path, capsys):
    # The paper's network as the built-in mlp, its two parameters W0 and W1 on x and y, from the CLI.
    store = tmp_path / "m.zarr"
    args = ["map", "--problem", "mlp", "--x-range", "1:3", "--y-range", "1:3", "--res", "6", "--steps", "40"]
    assert cli_main([*args, "--precision", "float64", "--out", str(store), "-q"]) == 0
    out = capsys.readouterr().out
    assert "problem mlp" in out and "lr_W0" in out and "trainable" in out
    ds = maps.open(store)
    assert ds.trainable.dims == ("lr_W0", "lr_W1")
    xs = ds.lr_W0.values
    np.testing.assert_allclose(xs, logs(1, 3, 6), rtol=1e-15)
    ref = lrsweep.sweep(
        "mlp", {"W0": xs, "W1": ds.lr_W1.values}, epochs=40, precision="float64", record="summary", progress=False
    ).isel(init=0)
    np.testing.assert_array_equal(ds.score.values, ref.score.transpose("lr_W0", "lr_W1").values)
    np.testing.assert_array_equal(ds.trainable.values, ref.score.values < 1)
    assert 0 < ds.trainable.values.mean() < 1  # both verdicts occur


def test_lr_against_an_initial_value_equals_numpy_gradient_descent():
    # The lesson's line fit y_hat = w x + b on x = 1..4, y = 3x: w's initial value on x, one lr on y.
    res, steps = 8, 60
    ds = maps.trainability(
        "linear", (-1, 1), (-1.5, -0.5), res=res, steps=steps, precision="float64", x_axis="init_w", y_axis="lr"
    )
    assert ds.trainable.dims == ("init_w", "lr") and maps.labels_of(ds) == ("Initial w", "Learning rate")
    x, y = np.arange(1.0, 5.0), 3.0 * np.arange(1.0, 5.0)
    w0, lr = np.meshgrid(logs(-1, 1, res), logs(-1.5, -0.5, res), indexing="ij")
    w, b, losses = w0.copy(), np.zeros_like(w0), []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            r = w[..., None] * x + b[..., None] - y
            losses.append(np.mean(r**2, axis=-1))
            w, b = w - lr * 2 * np.mean(r * x, axis=-1), b - lr * 2 * np.mean(r, axis=-1)
        score = numpy_score(np.stack(losses, axis=-1))
    np.testing.assert_allclose(ds.score.values, score, rtol=1e-9)
    np.testing.assert_array_equal(ds.trainable.values, score < 1)
    assert 0 < ds.trainable.values.mean() < 1


def test_lr_against_momentum_equals_numpy_heavy_ball():
    # The quadratic bowl (1/2) p^T H p; optax's sgd with momentum: m <- g + beta m, p <- p - lr m.
    res, steps = 8, 80
    ds = maps.trainability(
        "quadratic", (-1.5, -0.02), (-1.5, 0.5), res=res, steps=steps, precision="float64",
        x_axis="opt_momentum", y_axis="lr", optimizer="momentum",
    )  # fmt: skip
    assert ds.trainable.dims == ("opt_momentum", "lr")
    q = lrsweep.problems.quadratic()
    h = q.x.T @ q.x  # x_i = sqrt(lambda_i) q_i: H = sum_i x_i x_i^T
    beta, lr = np.meshgrid(logs(-1.5, -0.02, res), logs(-1.5, 0.5, res), indexing="ij")
    p, m, losses = np.ones((res, res, 2)), np.zeros((res, res, 2)), []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            losses.append(0.5 * np.einsum("...i,ij,...j->...", p, h, p))
            m = p @ h + beta[..., None] * m
            p = p - lr[..., None] * m
        score = numpy_score(np.stack(losses, axis=-1))
    np.testing.assert_allclose(ds.score.values, score, rtol=1e-6)
    np.testing.assert_array_equal(ds.trainable.values, score < 1)
    assert 0 < ds.trainable.values.mean() < 1


@pytest.mark.parametrize(
    ("problem", "kwargs", "match"),
    [
        ("nosuch", {}, "problem='nosuch' is not a built-in or registered problem"),
        ("os:getcwd", {}, "is not marked as a problem factory"),
        ("chapter_net", {}, "name its map's x_axis and y_axis, two lr_<group> axes"),
        ("linear", {"x_axis": "lr", "y_axis": "init_w"}, "x_axis='lr' and y_axis='init_w' are invalid: expected two"),
        ("linear", {"x_axis": "opt_momentum", "y_axis": "init_w"}, "are invalid: expected two lr_<group>"),
        ("linear", {"x_axis": "lr_w", "y_axis": "lr_c"}, "y_axis='lr_c' is invalid: expected lr_<group> with a group"),
        ("linear", {"x_axis": "speed", "y_axis": "lr"}, "x_axis='speed' is invalid: expected lr, lr_<group>"),
        ("quadratic", {"x_axis": "init_p", "y_axis": "lr"}, "init_<name> takes a scalar parameter"),
        ("quadratic", {"x_axis": "opt_momentum", "y_axis": "lr"}, "needs an optimizer with the hyperparameter"),
        ("chapter_net", {"x_axis": "lr_W1", "y_axis": "lr_W2"}, "leave ['b1', 'b2'] without a learning rate"),
    ],
)
def test_other_shapes_and_bad_problems_are_one_line_errors(problem, kwargs, match):
    with pytest.raises(ValueError, match=match.replace("[", r"\[").replace("]", r"\]")) as err:
        maps.trainability(problem, (0, 1), (0, 1), res=2, steps=2, **kwargs)
    assert "\n" not in str(err.value)


def test_cli_problem_refusals_are_one_line(capsys):
    base = ["map", "--x-range", "0:1", "--y-range", "0:1", "--res", "2", "--steps", "2"]
    cases = [
        (["--problem", "nosuch"], "problem='nosuch' is not a built-in or registered problem"),
        (["--problem", "mlp", "--setting", "relu"], "--setting are invalid with --problem='mlp'"),
        (["--x-axis", "lr"], "--x-axis is invalid without --problem"),
    ]
    for extra, match in cases:
        assert cli_main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1
    assert cli_main(["map", "--problem", "mlp", "--res", "2"]) == 2
    assert "--x-range is needed with --problem" in capsys.readouterr().err
