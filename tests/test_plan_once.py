"""A sweep is planned once: spec and run options -> ``planner.plan`` -> ``sinks.open_sink`` -> ``executor.run``.

A user's problem factory that counts its calls runs exactly once per ``sweep()`` and per ``lrsweep run``
(a resumed store included); a store resumed through ``open_sink`` keeps its chunks and gives the
same bits as an uninterrupted run; the plan is a frozen value; run options never enter the
canonical spec, so a store resumes under other options.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from typing import Any

import numpy as np
import pytest
from cli_run import run_cli

import lrsweep
from lrsweep import executor, identity, planner, sinks, spec

FACTORY = """
from pathlib import Path

import numpy as np
import lrsweep

CALLS = Path({calls!r})


def loss(p, x, y):
    return (p["a"] * x - y) ** 2


@lrsweep.problem_factory
def line(seed=0):
    with CALLS.open("a") as f:
        f.write("call\\n")
    x = np.arange(1.0, 4.0) + seed
    return lrsweep.Problem("line", loss, x, 2 * x, {{"a": np.float32(0.0)}})
"""


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """``(problem, calls)``: a factory in a .py file, and a function giving how often it ran so far."""
    calls = tmp_path / "calls.txt"
    (tmp_path / "factory.py").write_text(textwrap.dedent(FACTORY.format(calls=str(calls))))
    monkeypatch.chdir(tmp_path)

    def count() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    return "factory.py:line", count


def _same_bits(a, b) -> None:
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in a.data_vars:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name


def test_sweep_calls_the_factory_once(counted):
    problem, calls = counted
    lrsweep.sweep(problem, [0.01, 0.1], epochs=5, progress=False)
    assert calls() == 1
    lrsweep.sweep(problem, [0.01, 0.1], epochs=5, problem_seed=[0, 3], progress=False)
    assert calls() == 1 + 2  # once per problem instance


def test_lrsweep_run_calls_the_factory_once_fresh_and_resumed(counted, capsys, tmp_path):
    problem, calls = counted
    argv = ["run", "--problem", problem, "--lr", "0.01,0.1,0.3", "--epochs", "50"]
    code, out, err = run_cli(capsys, *argv, "--quiet")
    assert code == 0, err
    assert "problem line, 3 lr x 1 init" in out and calls() == 1
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    assert json.loads(out)["timing"]["configs_computed"] == 3 and calls() == 2
    store = str(tmp_path / "s.zarr")
    code, _, err = run_cli(capsys, *argv, "--out", store, "-q", "-v")
    assert code == 0 and "lrsweep: plan: 3 configs in 1 chunks" in err and calls() == 3
    code, out, _ = run_cli(capsys, *argv, "--out", store, "-q")  # resumed: every chunk is done
    assert code == 0 and "nothing to compute" in out and calls() == 4


def test_plan_calls_the_factory_once_per_instance(counted):
    problem, calls = counted
    planned = planner.plan(*spec.build(problem, [0.1, 0.2], epochs=3, problem_seed=2))
    assert calls() == 2 and len(planned.instances) == 2 and len(planned.statics) == 2


def test_the_plan_is_a_frozen_value():
    planned = planner.plan(*spec.build("linear", "log:1e-3:1:16", epochs=5, chunk_size=8))
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.chunk = 16  # type: ignore[misc]
    assert isinstance(planned.statics, tuple) and isinstance(planned.instances, tuple)
    assert {planned: 1}[planned] == 1  # hashable (by identity: it holds problems and arrays)
    assert planned.chunk == 8 and planned.layout.n_chunks == 2 and planned.axes.size == 16
    job = planned.job()
    assert job.chunk == 8 and job.layout is planned.layout and job.statics == list(planned.statics)


def test_run_options_never_enter_the_canonical_spec():
    options = spec.run_options()
    assert {"out", "memory", "chunk_size", "devices", "scheduler", "workers", "client", "progress"} <= set(options)
    assert {"break_lock", "allow_mixed"} <= set(options)
    assert not any(spec.settings()[name].identity for name in options)
    assert not set(options) & {f.name for f in dataclasses.fields(spec.SweepSpec)}
    what, where = spec.build("linear", [0.1, 0.2], epochs=5, memory="64MB", chunk_size=8, devices=1, progress=False)
    assert where == spec.RunOptions(memory=64_000_000, chunk_size=8, devices=1, progress=False)
    assert what == spec.build("linear", [0.1, 0.2], epochs=5)[0]
    canon = identity.canonical(what)
    assert not set(options) & set(canon)
    # The planned spec (what a store is identified by) is the same under any run options.
    a = planner.plan(what, where).layout.attrs["spec"]
    b = planner.plan(what).layout.attrs["spec"]
    assert a == b and json.loads(a)["epochs"] == 5


def test_run_options_are_checked_when_built():
    with pytest.raises(ValueError, match=r"^workers=2 needs out=: the workers write their chunks"):
        spec.build("linear", 0.1, workers=2)
    with pytest.raises(ValueError, match=r"^scheduler= and workers= are both given"):
        spec.RunOptions(scheduler="tcp://127.0.0.1:1", workers=2, out="s.zarr")
    with pytest.raises(ValueError, match=r"^memory='lots' is invalid"):
        spec.RunOptions(memory="lots")  # pyright: ignore[reportArgumentType]  # refused at run time


def test_a_store_resumed_through_open_sink_keeps_its_chunks_and_bits(tmp_path):
    lr = "log:1e-3:1:32"
    settings: dict[str, Any] = dict(epochs=40, record="trajectory", every=5)
    reference = lrsweep.sweep("linear", lr, progress=False, chunk_size=8, **settings)
    out = str(tmp_path / "s.zarr")
    first = planner.plan(*spec.build("linear", lr, out=out, chunk_size=8, progress=False, **settings))
    with sinks.open_sink(first) as sink:
        assert isinstance(sink, sinks.Sink) and sinks.todo(sink) == [0, 1, 2, 3]
        job = executor.job_for(first, sink)
        for k in (0, 2):  # an interrupted run: two of four chunks finished
            sink.write(k, job.train(k))
            sink.mark_done(k)
    # Resumed under another chunk size: the store keeps its own chunks and knows which are done.
    second = planner.plan(*spec.build("linear", lr, out=out, chunk_size=16, progress=False, **settings))
    assert second.layout.chunk_shape == (16, 1)
    with sinks.open_sink(second) as sink:
        assert sink.layout.chunk_shape == (8, 1) and sinks.todo(sink) == [1, 3]
        ran = executor.run(second, sink)
    assert ran.configs_computed == 16 and ran.plan is second and ran.compile_s is None
    _same_bits(ran.dataset, reference)
    _same_bits(lrsweep.open(out), reference)


def test_memory_sink_refuses_a_result_larger_than_the_budget():
    planned = planner.plan(*spec.build("linear", "log:1e-3:1:4096", epochs=2000, memory="16MB"))
    with pytest.raises(ValueError, match=r"^the results need about .* more than memory=16\.0 MB; stream them"):
        with sinks.open_sink(planned):
            pass


@pytest.fixture
def parses(monkeypatch):
    """How often ``lrsweep.grid`` parsed a learning-rate axis so far (its one entry, ``parse_axis``)."""
    from lrsweep import grid

    seen: list[str] = []
    real = grid.parse_axis

    def counted(value, arg="axis", *args, **kwargs):
        seen.append(arg)
        return real(value, arg, *args, **kwargs)

    monkeypatch.setattr(grid, "parse_axis", counted)
    return lambda: sum(arg.startswith("lr") for arg in seen)


@pytest.mark.parametrize("lr", ["log:1e-3:1:8", {"w": "0.01,0.1", "b": 0.1}])
def test_learning_rates_are_parsed_once_per_sweep(parses, tmp_path, lr):
    # The spec parses lr when it is built (SweepSpec.lr_axes); the planner, the axes and the canonical
    # spec read that parse, so lr passes through lrsweep.grid once on its way to the store.
    lrsweep.sweep("linear", lr, epochs=3, out=str(tmp_path / "s.zarr"), progress=False)
    assert parses() == (1 if isinstance(lr, str) else 2)  # one axis per group


def test_lrsweep_run_parses_the_learning_rates_once(parses, capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "run", "--lr", "log:1e-3:1:8", "--epochs", "3", "--out", str(tmp_path / "s"), "--quiet"
    )
    assert code == 0, err
    assert parses() == 1
