"""lrsweep.plot: what the figure shows, read back from its artists; the CLI's --plot and --init-grid."""

import warnings

import matplotlib
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.legend import Legend

import lrsweep
from lrsweep import cli


@pytest.fixture(scope="module")
def lesson():
    init = lrsweep.init_grid(w=[0.0, 5.0, -5.0])
    return lrsweep.sweep("linear", "log:1e-3:1:48", init=init, epochs=300, record="summary")


def _legend(ax) -> Legend:
    legend = ax.get_legend()
    assert legend is not None, "the axes have no legend"
    return legend


def test_1d_figure_shows_the_worst_loss_the_band_the_marks_and_the_strip(lesson):
    critical = lrsweep.theory.critical_lr(lrsweep.problems.linear())
    fig = lrsweep.plot(lesson, critical_lr=critical)
    assert isinstance(fig, Figure)
    ax, strip = fig.axes[:2]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    line = next(li for li in ax.get_lines() if str(li.get_label()).startswith("final loss"))
    # The line is the worst final loss over the 3 inits (a zero loss drawn on the floor).
    worst = lesson.loss.max("init_w").values
    ok = np.isfinite(worst) & (worst > 0)
    np.testing.assert_allclose(np.asarray(line.get_ydata())[ok], worst[ok], rtol=1e-6)
    labels = [t.get_text() for t in _legend(ax).get_texts()]
    assert "final loss, worst over 3 inits (init_w)" in labels
    assert any(t.startswith("spread over 3 runs") for t in labels)
    suggested = lrsweep.suggest_lr(lesson)
    assert any(t.startswith(f"suggested lr {suggested:.3g}") for t in labels)
    assert any(t.startswith(f"critical lr {critical:.3g}") for t in labels)
    xs = [np.asarray(li.get_xdata()) for li in ax.get_lines()]
    vertical = sorted(float(x[0]) for x in xs if len(x) == 2 and len(set(x.tolist())) == 1)
    assert vertical == pytest.approx(sorted([suggested, critical]))
    strip_labels = [t.get_text() for t in _legend(strip).get_texts()]
    assert set(strip_labels) == set(lrsweep.outcome_names(lesson.outcome).ravel().tolist())


def test_2d_figure_is_the_score_map_first_group_on_x():
    net = lrsweep.problems.mlp(width=2)
    ds = lrsweep.sweep(net, {"W0": "log:0.1:100:6", "W1": "log:1:1000:5"}, init=1, epochs=20, record="summary")
    fig = lrsweep.plot(ds)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "log10 learning rate of W0" and ax.get_ylabel() == "log10 learning rate of W1"
    mesh = ax.collections[0]
    image = np.asarray(mesh.get_array()).reshape(5, 6)  # rows: W1, columns: W0
    expected = np.log10(np.clip(ds.score.isel(init=0).transpose("lr_W1", "lr_W0").values, 1e-6, 1e6))
    np.testing.assert_allclose(image, expected, rtol=1e-6)
    np.testing.assert_allclose(ax.get_xlim(), np.log10([0.1, 100]) + [-0.3, 0.3], atol=1e-9)


def test_outcome_map_without_scores_and_bad_input():
    ds = xr.Dataset(
        {"outcome": (("lr_a", "lr_b"), np.array([[0, 2], [1, 3]], np.int8))},
        coords={"lr_a": [0.1, 1.0], "lr_b": [0.1, 1.0]},
    )
    assert isinstance(lrsweep.plot(ds), Figure)
    with pytest.raises(ValueError, match=r"expected an 'lr' dim or two 'lr_<group>' dims"):
        lrsweep.plot(ds.rename({"lr_a": "x"}))
    with pytest.raises(ValueError, match="critical_lr=-1"):
        lrsweep.plot(ds, critical_lr=-1)
    with pytest.raises(ValueError, match="across='all'"):
        lrsweep.plot(ds, across="all")


def test_no_pyplot_state(lesson):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    lrsweep.plot(lesson)
    assert plt.get_fignums() == before


def test_cli_plot_and_init_grid(tmp_path, capsys):
    png = tmp_path / "sweep.png"
    code = cli.main(
        ["run", "--lr", "log:1e-3:1:24", "--init-grid", "w=0,5,-5", "--init-grid", "b=lin:-1:1:2",
         "--epochs", "200", "--plot", str(png), "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "24 lr x 3 init_w x 2 init_b" in out
    assert "suggested lr (best on loss, worst over 6 inits (init_w x init_b)): " in out
    assert f"plot: {png}" in out
    code = cli.main(["run", "--init-grid", "w", "--quiet"])
    assert code == 2 and "--init-grid='w' is invalid: expected NAME=SPEC" in capsys.readouterr().err


def test_cli_warns_at_the_edge_of_the_grid(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["run", "--lr", "log:1e-3:0.05:8", "--epochs", "50", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "warning: lr 0.05 is at the edge of the grid: extend lr above 0.05" in out
