"""``--memory`` with ``--out``: the run's summary and the store's indexes stay within the budget,
and the peak resident memory grows by at most 1.25 times the budget (benchmarks/memory_budget.py)."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli

import lrsweep

LR = "log:1e-4:10:3000"


def test_a_store_too_large_to_suggest_from_within_the_budget_is_summarised_in_blocks(tmp_path, capsys):
    args = ["run", "--problem", "linear", "--lr", LR, "--epochs", "300", "--out", str(tmp_path / "s.zarr")]
    code, small, err = run_cli(capsys, *args, "--memory", "300KB")
    assert code == 0, err
    assert (
        "suggested lr: skipped (3,000 configs need about 0.4 MB to suggest from, more than memory=0.3 MB; "
        "run the same command with --memory 1MB or more: the finished chunks are not recomputed)"
    ) in small
    code, big, err = run_cli(capsys, *args, "--memory", "1MB")  # a resume: every chunk is done
    assert code == 0, err
    assert "nothing to compute" in big
    # The same sweep in memory, read independently: the counts, the largest converged lr, the suggestion.
    ds = lrsweep.sweep("linear", LR, epochs=300)
    names = np.asarray(lrsweep.outcome_names(ds.outcome.isel(init=0)))  # one init
    assert (names == "converged").any() and (names == "diverged").any()
    for name in np.unique(names):
        line = f"{name:<11} {int((names == name).sum()):>9,}"
        assert line in small and line in big
    largest = f"largest lr that converged: {ds.lr.values[names == 'converged'].max():.6g}"
    assert largest + "\n" in small and largest + " (worst over 1 init)" in big
    assert f"{lrsweep.suggest_lr(ds):.6g}" in big.split("suggested lr")[1]


def test_a_stores_indexes_are_built_only_where_they_fit_the_budget(tmp_path):
    tight = lrsweep.sweep("linear", "log:1e-4:10:1000", epochs=5, out=tmp_path / "a.zarr", memory="30KB")
    roomy = lrsweep.sweep("linear", "log:1e-4:10:1000", epochs=5, out=tmp_path / "b.zarr", memory="1MB")
    assert "lr" not in tight.indexes and "lr" in roomy.indexes  # 4 copies of 8 kB of lrs: 32 kB
    for name in roomy.data_vars:
        np.testing.assert_array_equal(tight[name].values.view(np.uint8), roomy[name].values.view(np.uint8))


def _benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "memory_budget.py"
    spec = importlib.util.spec_from_file_location("memory_budget", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="reads and resets the peak RSS in Linux's /proc"
)
@pytest.mark.slow
@pytest.mark.parametrize("lrs, inits", [(1_000_000, 1), (3000, 100)])  # suggested from: too large, and in budget
def test_peak_memory_growth_with_out_stays_within_the_budget(lrs, inits):
    row = _benchmark().measure(lrs, inits, 5, "64MB")
    assert row["growth"] <= 1.25 * 64e6, row
