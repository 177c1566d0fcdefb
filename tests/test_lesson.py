"""The lesson reproduced exactly: forward difference + mixed precision against the notebook.

References: the notebook's stored output (tests/data/notebook-outputs.txt), the notebook's
algorithm re-run in numpy (tests/reference.py) and closed-form theory (lesson.md).
"""

from pathlib import Path

import numpy as np
import pytest
import reference as R

import lrsweep
from lrsweep import cli, notebook

NOTEBOOK = Path(__file__).parent / "data" / "notebook-outputs.txt"


def notebook_sections() -> dict[float, list[str]]:
    """The stored output, split by its '# lr = X, ...' headers into {lr: lines}."""
    sections, lr = {}, None
    for line in NOTEBOOK.read_text().splitlines():
        if line.startswith("# lr = "):
            lr = float(line.split("=")[1].split(",")[0])
            sections[lr] = []
        elif line.strip():
            sections[lr].append(line)
    return sections


SECTIONS = notebook_sections()


def test_notebook_file_has_the_three_runs():
    assert sorted(SECTIONS) == [0.01, 0.1, 1.0]
    assert all(len(lines) == 11 for lines in SECTIONS.values())


@pytest.mark.parametrize("lr", [0.01, 0.1, 1.0])
def test_cli_trace_prints_the_notebook_lines(lr, capsys):
    assert cli.main(["trace", "--lr", str(lr), "--epochs", "10"]) == 0
    assert capsys.readouterr().out.splitlines() == SECTIONS[lr]


@pytest.mark.parametrize("lr", [0.01, 0.1, 1.0])
def test_trace_final_params_equal_the_stored_float32_values(lr):
    table = lrsweep.trace("linear", lr, 10)
    last = table[table.epoch == 9].set_index("parameter").updated
    assert last.dtype == np.float32
    # The stored line reads "[array([[W]], dtype=float32), array([[B]], dtype=float32)]".
    stored = SECTIONS[lr][-1].replace("array([[", "").replace("]], dtype=float32)", "").strip("[]")
    w, b = (np.float32(v) for v in stored.split(", "))
    assert last["w"] == w and last["b"] == b


@pytest.mark.parametrize("lr", [0.01, 0.1, 1.0, 0.5])
def test_trace_table_equals_the_notebook_algorithm(lr):
    table = lrsweep.trace("linear", lr, 10)
    log = []
    R.notebook_train(lr, 10, log=log)
    assert notebook.trace_lines(table, "w") == log


LRS_1000 = [0.01, 0.1, 1.0, 1e-4, 0.003, 0.05, 0.119, 0.12, 0.3]


@pytest.fixture(scope="module")
def lesson_1000():
    return lrsweep.sweep("linear", LRS_1000, epochs=1000, grad="forward", precision="mixed")


@pytest.mark.parametrize("k", range(len(LRS_1000)))
def test_1000_epochs_equal_the_notebook_algorithm_bit_for_bit(lesson_1000, k):
    lr = LRS_1000[k]
    (w_ref, b_ref), losses = R.notebook_train(lr, 1000)
    run = lesson_1000.isel(lr=k, init=0)
    assert run.w.dtype == np.float32 and run.loss.dtype == np.float64
    np.testing.assert_array_equal(run.w.values[-1], w_ref[0, 0])
    np.testing.assert_array_equal(run.b.values[-1], b_ref[0, 0])
    # Every epoch's loss, in float64, equals the notebook's "original loss" to the last bit.
    np.testing.assert_array_equal(run.loss.values[:-1], np.array(losses))


def test_lesson_facts_from_lesson_md(lesson_1000):
    end = lesson_1000.isel(epoch=-1, init=0)
    assert end.w.sel(lr=0.01) == np.float32(2.9842885) and end.b.sel(lr=0.01) == np.float32(0.04605509)
    assert end.w.sel(lr=1.0) == np.float32(12755.16) and end.b.sel(lr=1.0) == np.float32(3765.9717)
    np.testing.assert_allclose([end.w.sel(lr=0.1), end.b.sel(lr=0.1)], [2.99980, 0.00045], atol=5e-6)


def test_lesson_outcomes_after_1000_epochs(lesson_1000):
    codes = lesson_1000.outcome.sel(init=0)
    out = codes.copy(data=lrsweep.outcome_names(codes))
    assert out.sel(lr=1.0) == "stuck"
    assert out.sel(lr=0.1) == "converged"
    assert out.sel(lr=0.119) == "converged"
    assert out.sel(lr=0.12) == "diverged"
    # Frozen from epoch 3 on: the weight printed at epoch 3 already equals the final one.
    assert lesson_1000.event_epoch.sel(lr=1.0, init=0) == 3
    w = lesson_1000.w.sel(lr=1.0, init=0).values
    assert w[2] != w[3] and np.all(w[3:] == w[-1])


def test_why_lr_1_freezes_float32_absorbs_the_nudge(lesson_1000):
    w = np.float32(lesson_1000.w.sel(lr=1.0, init=0, epoch=1000))
    assert np.spacing(w) > 2 * 1e-4
    assert w + np.float32(1e-4) == w


def test_lr_1_with_autodiff_float32_diverges():
    ds = lrsweep.sweep("linear", 1.0, epochs=1000, grad="autodiff", precision="float32", record="summary")
    assert lrsweep.outcome_names(ds.outcome).item() == "diverged"
    assert not np.isfinite(ds.loss.item())
    # The first step overshoots (w = 45): the loss is above its start from epoch 1 on, and grows
    # about (1 - 16.70)^2 = 246x per epoch until float32 overflows.
    assert ds.event_epoch.item() == 1


def test_lr_001_after_10_epochs_is_unfinished():
    ds = lrsweep.sweep("linear", 0.01, epochs=10, grad="forward", precision="mixed")
    assert lrsweep.outcome_names(ds.outcome).item() == "unfinished"
    assert ds.event_epoch.item() == -1


def test_critical_lr_from_theory_separates_converged_from_diverged():
    # Hessian [[15, 5], [5, 2]]: GD is stable for lr < 2 / lambda_max.
    lam_max = np.linalg.eigvalsh(np.array([[15.0, 5.0], [5.0, 2.0]])).max()
    critical = 2 / lam_max
    lr = np.array([critical * 0.99, critical * 1.01])
    ds = lrsweep.sweep("linear", lr, epochs=3000, grad="autodiff", precision="float64", record="summary")
    assert list(lrsweep.outcome_names(ds.outcome.sel(init=0))) == ["converged", "diverged"]
