"""Bad input raises a ValueError that names the argument and the value."""

from typing import Any, cast

import numpy as np
import pytest

import lrsweep


@pytest.mark.parametrize(
    "lr,fragment",
    [
        (0.0, "lr="),
        (-0.1, "lr="),
        (float("nan"), "lr="),
        (float("inf"), "lr="),
        ([0.1, -1.0], "-1.0"),
        ([], "at least one"),
        ("", "at least one"),
        ("0.1,abc", "lr='0.1,abc'"),
        ("log:1:0.1:5", "lr='log:1:0.1:5'"),
        ("log:0:1:5", "START"),
        ("lin:0.1:0.2:0", "NUM"),
        ("exp:0.1:1:5", "log:START"),
        (np.ones((2, 2)), "1-D"),
    ],
)
def test_bad_lr(lr, fragment):
    with pytest.raises(ValueError, match="lr") as err:
        lrsweep.sweep("linear", lr, epochs=2)
    assert fragment in str(err.value)


@pytest.mark.parametrize("epochs", [0, -3, 2.5, "10", True])
def test_bad_epochs(epochs):
    with pytest.raises(ValueError, match=r"epochs=.*integer >= 1"):
        lrsweep.sweep("linear", 0.1, epochs=epochs)


@pytest.mark.parametrize(
    "kwarg,value,accepted",
    [
        ("grad", "backprop", "autodiff"),
        ("precision", "float16", "mixed"),
        ("record", "everything", "trajectory"),
        ("h", 0.0, "> 0"),
        ("rtol", -1.0, ">= 0"),
        ("stuck_window", 0, ">= 1"),
        ("chunk_size", 0, ">= 8"),
        ("chunk_size", 3, ">= 8"),
    ],
)
def test_bad_names_and_settings(kwarg, value, accepted):
    with pytest.raises(ValueError) as err:
        lrsweep.sweep("linear", 0.1, epochs=2, **{kwarg: value})
    assert f"{kwarg}={value!r}" in str(err.value) and accepted in str(err.value)


@pytest.mark.parametrize(
    "init,fragment",
    [
        ({"w": [0.0, 1.0]}, "structure"),
        ({"w": [0.0], "b": [0.0], "c": [1.0]}, "structure"),
        ({"weight": [0.0], "bias": [0.0]}, "structure"),
        ({"w": 0.0, "b": 0.0}, "init['b'] has shape ()"),
        ({"w": [[0.0]], "b": [[0.0]]}, "has shape (1, 1)"),
        ({"w": [0.0, 1.0], "b": [0.0]}, "one batch size"),
        ({"w": [], "b": []}, "n >= 1"),
        ({"w": [np.nan], "b": [0.0]}, "init['w'] contains NaN"),
        ([0.0, 0.0], "structure"),
    ],
)
def test_bad_init(init, fragment):
    with pytest.raises(ValueError, match="init") as err:
        lrsweep.sweep("linear", 0.1, init=init, epochs=2)
    assert fragment in str(err.value)


def test_bad_problem():
    with pytest.raises(ValueError, match=r"problem='quartic'.*linear"):
        lrsweep.sweep("quartic", 0.1)
    with pytest.raises(ValueError, match="problem=42"):
        lrsweep.sweep(cast(Any, 42), 0.1)  # a wrong type on purpose


def test_trace_takes_one_lr():
    with pytest.raises(ValueError, match="one learning rate"):
        lrsweep.trace("linear", cast(Any, [0.1, 0.2]), 5)  # a wrong type on purpose
    with pytest.raises(ValueError, match="lr="):
        lrsweep.trace("linear", -0.1, 5)
    with pytest.raises(ValueError, match="epochs="):
        lrsweep.trace("linear", 0.1, 0)


def test_problem_checks_its_own_data():
    with pytest.raises(ValueError, match="leading example axis"):
        lrsweep.Problem("p", lambda p, x, y: (p["w"] * x - y) ** 2, np.ones(3), np.ones(4), {"w": np.float32(0)})
    with pytest.raises(ValueError, match="'w' has dtype int64"):
        lrsweep.Problem("p", lambda p, x, y: (p["w"] * x - y) ** 2, np.ones(3), np.ones(3), {"w": np.int64(0)})
    with pytest.raises(ValueError, match="'loss' is reserved"):
        lrsweep.Problem("p", lambda p, x, y: (p["loss"] * x - y) ** 2, np.ones(3), np.ones(3), {"loss": np.float32(0)})


def test_good_inputs_pass_the_same_checks():
    # The checks are not so strict that ordinary input fails.
    ds = lrsweep.sweep("linear", "0.01, 0.1", init={"w": [0, 1], "b": np.zeros(2)}, epochs=np.int64(3), h=1e-3)
    assert dict(ds.sizes) == {"lr": 2, "init": 2, "epoch": 4}
    assert lrsweep.parse_lr("lin:0.1:0.1:1").tolist() == [0.1]
