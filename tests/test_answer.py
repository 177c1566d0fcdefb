"""One answer everywhere: ``lrsweep run``, ``run --json``, ``show``, ``show --json``, ``lrsweep.plot``
and the explorer report the same suggestion (``lrsweep.answer.suggestion``) for the same sweep,
including a store reopened by ``show``; and the README's TOML grid (a start at the minimum) no longer
makes "best" fail."""

import json
import re

import numpy as np
import pytest

import lrsweep
from lrsweep import answer, cli
from lrsweep.explore import page

SPECS = {
    "inits": 'problem = "logistic"\nlr = "log:1e-2:100:12"\nepochs = 100\ninit = 3\n',
    "momentum": 'problem = "quadratic"\nlr = "log:1e-3:1:10"\nepochs = 60\noptimizer = "momentum"\n'
    "init = 2\n[optimizer_axes]\nmomentum = [0.0, 0.5, 0.9]\n",
    # The README's TOML grid, smaller: w from -5 to 5 holds 3.0, the minimum; forward differences.
    "grid_at_minimum": 'problem = "linear"\nlr = "log:1e-4:1:9"\nepochs = 300\ngrad = "forward"\n'
    'precision = "mixed"\n[init]\ngrid = { w = "lin:-5:5:11" }\n',
}


def _suggested(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("suggested lr ("))


def _page_suggestion(ds) -> dict | None:
    text = page(ds)
    payload = re.search(r'<script type="application/json" id="lrsweep-data">(.*?)</script>', text, re.S)
    assert payload is not None
    return json.loads(payload.group(1).replace("<\\/", "</")).get("suggestion")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPECS))
def test_run_show_json_plot_and_explorer_agree(name, tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPECS[name])
    store = str(tmp_path / "s.zarr")
    assert cli.main(["run", str(spec), "--out", store, "-q"]) == 0
    run_line = _suggested(capsys.readouterr().out)
    ds = lrsweep.open(store)
    found = answer.suggestion(ds)
    assert found.lr is not None and found.method == "best"
    assert run_line == found.text()
    assert cli.main(["run", str(spec), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["suggested_lr"] == found.facts()
    assert cli.main(["show", store]) == 0
    assert _suggested(capsys.readouterr().out) == found.text()
    assert cli.main(["show", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["suggested_lr"] == found.facts()
    fig = lrsweep.plot(ds)
    labels = [t.get_text() for ax in fig.axes if (legend := ax.get_legend()) for t in legend.get_texts()]
    if found.point is None:
        mark = f"suggested lr {found.lr:.3g} (best on loss, {found.how})"
        assert any(t == mark or t == mark + ": at the grid's edge" for t in labels), labels
    else:
        assert found.text() in labels  # the lr x hyperparameter map marks the joint point
    shown = _page_suggestion(ds)
    if "lr" == ds["outcome"].dims[0] and shown is not None:
        assert shown["lr"] == found.lr and shown["across"] == found.across and shown["method"] == found.method
    if name == "grid_at_minimum":
        # The run started at w = 3.0 (the minimum) stays there: converged at every lr it did not leave.
        at_min = lrsweep.outcome_names(ds.outcome.sel(init_w=3.0).values)
        assert "diverged" not in at_min[: int(np.argmax(ds.lr.values > 0.01))]
        assert found.why_not is None  # "best" answered, no fallback


def test_the_explorer_opens_on_the_suggestion():
    ds = lrsweep.sweep("logistic", "log:1e-2:100:12", epochs=100, init=2, progress=False)
    shown = _page_suggestion(ds)
    found = answer.suggestion(ds)
    assert shown is not None and shown["lr"] == found.lr and shown["text"] == found.text()
