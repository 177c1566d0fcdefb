"""The built-in digits problem: its stored data, split, loss, accuracy, and a sweep that trains."""

import numpy as np
import pytest

import lrsweep
from lrsweep import problems
from lrsweep.problems import datasets


def test_the_stored_data_equal_scikit_learns_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    ref = sklearn_datasets.load_digits()
    x, y = datasets.load()
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(x, ref.data)
    np.testing.assert_array_equal(y, ref.target)


def test_the_split_is_fixed_disjoint_and_complete():
    train, test = datasets.split()
    again = datasets.split()
    np.testing.assert_array_equal(train, again[0])
    assert len(train) == 1437 and len(test) == 360
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    p = problems.digits()
    x, y = datasets.load()
    assert p.y_eval is not None
    np.testing.assert_array_equal(p.x * 16, x[train])  # pixels / 16, exact in float32
    np.testing.assert_array_equal(p.y_eval.argmax(1), y[test])
    assert np.all(p.y.sum(1) == 1)
    # every class is in both parts (about 180 each in all)
    assert set(y[test]) == set(range(10)) and np.bincount(y[train]).min() > 100


def numpy_logits(params, x):
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    return np.tanh(x @ p["W0"] + p["b0"]) @ p["W1"] + p["b1"]


def test_loss_and_accuracy_equal_a_numpy_reimplementation():
    p = problems.digits(hidden=8, seed=3)
    assert p.batch_loss is not None and p.x_eval is not None and p.y_eval is not None
    assert {k: v.shape for k, v in p.init.items()} == {"W0": (64, 8), "b0": (8,), "W1": (8, 10), "b1": (10,)}
    logits = numpy_logits(p.init, p.x.astype(np.float64))
    shifted = logits - logits.max(1, keepdims=True)
    ce = -(shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))[np.arange(len(p.y)), p.y.argmax(1)]
    for i in (0, 1, 500):
        assert float(p.loss(p.init, p.x[i], p.y[i])) == pytest.approx(ce[i], rel=1e-5)
    assert float(p.batch_loss(p.init, p.x, p.y)) == pytest.approx(ce.mean(), rel=1e-5)
    assert np.log(10) / 2 < ce.mean() < 2 * np.log(10)  # LeCun init: near chance
    # accuracy per example: 1 where the largest logit is the label's (a trained-looking W1 to get both values)
    params = dict(p.init, W1=np.asarray(p.init["W1"]) * 0)
    params["b1"] = np.eye(10, dtype=np.float32)[3]
    hits = [float(datasets.accuracy(params, p.x_eval[i], p.y_eval[i])) for i in range(40)]
    np.testing.assert_array_equal(hits, (p.y_eval[:40].argmax(1) == 3).astype(float))
    assert list(p.metric_fns()) == ["eval_loss", "accuracy"] and p.metric_fns()["accuracy"].maximize


def test_the_sampler_draws_lecun_normal_weights_and_zero_biases():
    p = problems.digits()
    assert p.sampler is not None
    w0 = np.asarray(p.sampler(__import__("jax").random.key(7))["W0"])
    assert w0.std() == pytest.approx(1 / 8, rel=0.05)  # N(0, 1 / 64)
    assert not np.any(p.init["b0"]) and not np.any(p.init["b1"])


def test_it_is_a_built_in_name_and_a_small_sweep_trains():
    assert "digits" in problems.BUILTINS
    ds = lrsweep.sweep(
        "digits", [1e-3, 3e-2], problem_args={"hidden": 4}, optimizer="adam", epochs=30, every=30, init=2
    )
    first, last = ds.loss.isel(epoch=0), ds.loss.isel(epoch=-1)
    assert bool((last < first).all())  # Adam lowers the training loss for both lrs and inits
    assert float(last.sel(lr=3e-2).max()) < 0.8 * float(first.sel(lr=3e-2).min())
