"""Hostile and absurd input: one clear line naming the cause, exit status 2, no traceback, nothing
run that was not meant, nothing allocated that a check could have refused."""

from typing import Any, cast

import numpy as np
import pytest
from cli_run import run_cli

import lrsweep
from lrsweep import engine

DEEP = "a = " + "[" * 1000 + "]" * 1000 + "\n"

CLI_CASES = [
    # sizes nobody can run: refused before anything is allocated
    (["run", "--lr", "log:1e-4:1:99999999999999999999999"], "lr="),
    (["run", "--every", str(10**12), "--record", "trajectory"], "every="),
    (["run", "--record", "trajectory", "--epochs", "10", "--every", "11"], "every=11"),
    (["run", "--memory", "inf"], "memory="),
    (["run", "--memory", "1e400"], "memory="),
    (["run", "--memory=-5MB"], "memory="),
    (["run", "--seed", str(2**64), "--problem", "mlp", "--init", "2"], "seed="),
    (["run", "--problem", "mlp", "--init", "100000000"], "init=100,000,000"),
    (["trace", "--epochs", "100000000", "--lr", "0.1"], "epochs=100,000,000"),
    (["run", "--chunk-size", str(10**9)], "chunk_size="),
    (["run", "--epochs", str(10**12)], "epochs="),
    (["run", "--problem", "quadratic", "--problem-args", "dim=100000000"], "dim="),
    (["run", "--problem", "logistic", "--problem-args", "n=10000000,dim=4000"], "data set"),
    # values the compute dtype turns into 0 or inf: no verdict on a run nobody asked for
    (["run", "--lr", "1e-320"], "becomes 0 in float32"),
    (["run", "--lr", "1e-46"], "becomes 0 in float32"),
    (["run", "--lr", "1e39"], "becomes inf in float32"),
    (["run", "--lr", "1e308", "--precision", "mixed", "--epochs", "3"], None),  # fits float64: runs
    (["run", "--grad", "forward", "--h", "1e-50"], "h=1e-50 becomes 0 in float32"),
    (["run", "--grad", "forward", "--precision", "mixed", "--h", "1e-50"], "h=1e-50 becomes 0 in float32"),
    (["run", "--lr", "nan"], "lr="),
    (["run", "--lr", "0"], "lr="),
    (["run", "--lr=-1"], "lr="),
    (["run", "--lr", ""], "lr="),
    # bad values that must name their cause
    (["run", "--epochs", "abc"], "--epochs"),
    (["run", "--optimizer", "adam", "--optimizer-kwargs", "b1=x"], "optimizer_kwargs['b1']"),
    (["run", "--optimizer", "adam", "--optimizer-kwargs", "b1"], "--optimizer-kwargs"),
    (["run", "--init", "-3"], "init=-3"),
    (["run", "--variables", "loss,nope", "--record", "trajectory"], "variables="),
    (["run", "--kernel", "cuda"], "kernel="),
    (["nonsense"], "invalid choice"),
    (["export", "does-not-exist.zarr", "out.csv"], "does-not-exist.zarr"),
]


@pytest.mark.parametrize(("argv", "fragment"), CLI_CASES, ids=lambda v: " ".join(v)[:50] if isinstance(v, list) else "")
def test_cli_refuses_in_one_line(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    if fragment is not None:  # refused up front: nothing is compiled or trained
        monkeypatch.setattr(engine, "run_chunk", _never_called)
        monkeypatch.setattr(engine, "trace_run", _never_called)
    code, _, err = run_cli(capsys, *argv)
    if fragment is None:
        assert code == 0, err
        return
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("lrsweep: error: ") and fragment in lines[0], lines[0]


class _NeverCalled(AssertionError):
    pass


def _never_called(*args, **kwargs):
    raise _NeverCalled("the engine ran before the input was refused")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe\x00binary\x00", "is not UTF-8 text"),
        (DEEP.encode(), "nests"),
        (b"epochs = 'ten'\n", "epochs = 'ten' has the wrong type"),
        (b"epoch = 10\n", "unknown key 'epoch'"),
        (b"epochs = \n", "is not valid TOML"),
        (b"x = '" + b"a" * 2_000_000 + b"'\n", "at most 1,000,000"),
        (b'problem = "os:system"\n[problem_args]\ncommand = "touch PWNED"\n', "not marked as a problem factory"),
    ],
    ids=["binary", "deep", "type", "unknown", "syntax", "huge", "os.system"],
)
def test_spec_files_name_themselves(capsys, tmp_path, monkeypatch, content, fragment):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.toml"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "run", str(path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0] and ("spec.toml" in lines[0] or "problem=" in lines[0]), lines[0]
    assert not (tmp_path / "PWNED").exists()


def _nan_init_problem():
    return lrsweep.Problem("p", lambda p, x, y: (p["w"] * x - y) ** 2, np.ones(3), np.ones(3), {"w": np.float32(1.0)})


API_CASES = [
    ({"lr": True}, "lr="),
    ({"lr": [0.1, True]}, "lr="),
    ({"lr": np.ma.masked_array([0.1, 0.2], mask=[False, True])}, "lr="),
    ({"lr": 1e-46}, "lr=1e-46 becomes 0 in float32"),
    ({"lr": 0.1, "init": {"w": ["a"], "b": [0.0]}}, "init['w']"),
    ({"lr": 0.1, "init": {"w": np.array([1e39]), "b": np.array([0.0])}}, "init['w']=1e+39 becomes inf in float32"),
    ({"lr": 0.1, "init": True}, "init=True"),
    ({"lr": 0.1, "out": 123}, "out=123"),
    ({"lr": 0.1, "optimizer": "adam", "optimizer_kwargs": {"b1": "x"}}, "optimizer_kwargs['b1']"),
    ({"lr": 0.1, "optimizer": "adam", "optimizer_kwargs": {"b1": float("nan")}}, "optimizer_kwargs['b1']"),
    ({"lr": 0.1, "h": 1e-50, "grad": "forward"}, "h=1e-50"),
    ({"lr": 0.1, "chunk_size": 10**9}, "chunk_size="),
    ({"lr": 0.1, "epochs": True}, "epochs=True"),
    ({"lr": 0.1, "seed": -1, "init": 2}, "seed=-1"),
    ({"lr": 0.1, "memory": float("inf")}, "memory="),
    ({"lr": 0.1, "problem_args": {"dim": 10**8}}, "problem_args and problem_seed need"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), API_CASES, ids=lambda v: str(v)[:40] if isinstance(v, dict) else "")
def test_api_refuses_with_a_named_value_error(kwargs, fragment):
    kwargs = dict(kwargs)
    problem = kwargs.pop("problem", "linear")
    if "problem_args" in kwargs:
        problem = lrsweep.problems.linear()
    with pytest.raises(ValueError) as err:
        lrsweep.sweep(problem, kwargs.pop("lr"), epochs=kwargs.pop("epochs", 5), record="summary", **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_problem_must_be_representable_in_the_policy():
    big = lrsweep.Problem("big", lambda p, x, y: (p["w"] * x - y) ** 2, np.full(3, 1e39), np.ones(3), {"w": 0.0})
    with pytest.raises(ValueError, match=r"problem 'big': x=1e\+39 becomes inf in float32"):
        lrsweep.sweep(big, 0.1, epochs=2, record="summary")
    assert lrsweep.sweep(big, 1e-80, epochs=2, record="summary", precision="float64").sizes["lr"] == 1


def test_a_parameter_may_not_shadow_a_store_variable():
    with pytest.raises(ValueError, match="parameter name 'chunk_done' is reserved"):
        lrsweep.Problem(
            "p", lambda p, x, y: (p["chunk_done"] * x - y) ** 2, np.ones(3), np.ones(3), {"chunk_done": 0.0}
        )


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        # Wrong types on purpose (cast: the checks under test are for callers without a type checker).
        (lambda: lrsweep.open(cast(Any, None)), "path=None"),
        (lambda: lrsweep.verify(cast(Any, 123)), "path=123"),
        (lambda: lrsweep.export(cast(Any, 123), "x.csv"), "source=123"),
        (lambda: lrsweep.export(lrsweep.sweep("linear", 0.1, epochs=2), cast(Any, 5)), "path=5"),
    ],
    ids=["open", "verify", "export source", "export path"],
)
def test_store_functions_name_a_bad_path(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
