"""Bounded everything, and representable on the device: counts that could hang are refused up
front, deep input is refused without recursion, and values the backend flushes to zero are refused
instead of training a run nobody asked for. A helper module the loss reaches is part of its identity."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_run import run_cli

import lrsweep
from lrsweep import _checks


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--problem", "quadratic", "--problem-seed", "1048576"], "problem_seed=1048576 is invalid"),
        (["--chunk-size", "3"], "chunk_size=3 is invalid: expected an integer >= 8"),
        (["--out", "a" * 300], "expected a path of at most 4,000 bytes whose names have at most 250 bytes"),
        (["--out", "/tmp/" + "abcdefghij/" * 500 + "x"], "expected a path of at most 4,000 bytes"),
    ],
)
def test_counts_and_paths_are_refused_up_front(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "run", "--lr", "0.1,0.2", "--epochs", "3", "--quiet", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


def test_problem_seed_lists_are_bounded_too():
    with pytest.raises(ValueError, match=r"at most 1,024 seeds"):
        lrsweep.sweep("quadratic", 0.1, problem_seed=list(range(5000)), epochs=3)


def test_deep_problem_args_are_refused_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for args in ({"dim": deep}, {"dim": {"a": deep}}):
        with pytest.raises(ValueError, match="nested more than 8 levels deep"):
            lrsweep.sweep("quadratic", 0.1, problem_args=args, epochs=3)


def _flushes(dtype) -> bool:
    """Whether this backend flushes a subnormal to 0 in an elementwise product (measured here)."""
    sub = np.asarray(np.finfo(dtype).tiny / 4, dtype)
    return float(jnp.asarray(sub) * jnp.asarray(np.ones((), dtype))) == 0.0


def test_the_subnormal_probe_agrees_with_a_plain_jax_computation():
    assert _checks.backend_keeps_subnormals("float32", jax.default_backend()) is not _flushes(np.float32)


@pytest.mark.parametrize(
    "kwargs,arg",
    [({"h": 1e-40, "grad": "forward"}, "h=1e-40"), ({"lr": [1e-40, 0.1]}, "lr=1e-40"), ({"lr": [1e-45]}, "lr=1e-45")],
)
def test_values_the_backend_flushes_to_zero_are_refused(kwargs, arg):
    if not _flushes(np.float32):
        pytest.skip("this backend keeps float32 subnormals")
    lr = kwargs.pop("lr", 0.01)
    with pytest.raises(ValueError) as err:
        lrsweep.sweep("linear", lr, epochs=3, progress=False, **kwargs)
    message = str(err.value)
    assert message.startswith(arg) and "smallest normal number" in message and "flushes to 0" in message


def test_the_smallest_normal_number_is_accepted():
    tiny = float(np.finfo(np.float32).tiny)
    ds = lrsweep.sweep("linear", [tiny, 0.1], epochs=3, progress=False)
    assert ds.sizes["lr"] == 2


HELPER = "def scale(x):\n    return {factor} * x\n"
FACTORY = """
import numpy as np
import lrsweep
import {helper}


@lrsweep.problem_factory
def make():
    return lrsweep.Problem(
        "helped", lambda p, x, y: ({helper}.scale(p["w"] * x) - y) ** 2,
        np.arange(1.0, 4.0), np.arange(1.0, 4.0), {{"w": np.float32(0.0)}},
    )
"""


def test_editing_a_helper_module_the_loss_calls_is_refused_on_resume(tmp_path, monkeypatch):
    helper = f"helper_{tmp_path.name[-8:].replace('-', '_')}"
    (tmp_path / f"{helper}.py").write_text(HELPER.format(factor=2.0))
    (tmp_path / "factory.py").write_text(textwrap.dedent(FACTORY.format(helper=helper)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "s.zarr"
    lrsweep.sweep("factory.py:make", [0.1, 0.2], epochs=3, out=str(out), progress=False)
    lrsweep.sweep("factory.py:make", [0.1, 0.2], epochs=3, out=str(out), progress=False)  # unchanged: resumes
    (tmp_path / f"{helper}.py").write_text(HELPER.format(factor=3.0))
    with pytest.raises(ValueError, match=r"holds a sweep of another spec \(problem"):
        lrsweep.sweep("factory.py:make", [0.1, 0.2], epochs=3, out=str(out), progress=False)
