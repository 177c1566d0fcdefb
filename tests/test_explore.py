"""``lrsweep explore``: a user's own sweep becomes one offline page, checked in headless Chromium.

The browser tests need selenium, chromium and chromedriver (as tests/test_explorer.py) and are
skipped without them; the page's data and size are checked without a browser.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

import lrsweep
from lrsweep import cli
from lrsweep.explore import PAGE_MAX_BYTES

CHROME = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the browser tests skip
    webdriver = None
needs_browser = pytest.mark.skipif(
    webdriver is None or not (CHROME and DRIVER),
    reason="needs selenium, chromium and chromedriver (pip install selenium; apt-get install chromium chromium-driver)",
)


def bowl() -> lrsweep.Problem:
    """A user's own problem: fit y = 2x + x^2 with y = a x + c x^2 (two scalar parameters)."""
    x = np.linspace(-1.0, 1.0, 8)
    return lrsweep.Problem(
        name="bowl",
        loss=lambda p, x, y: (p["a"] * x + p["c"] * x**2 - y) ** 2,
        x=x,
        y=2 * x + x**2,
        init={"a": np.float32(0.0), "c": np.float32(0.0)},
    )


@pytest.fixture(scope="module")
def big_page(tmp_path_factory) -> Path:
    """256 lrs x 3 inits x 1000 epochs of trajectories, stored, then one command: the page."""
    tmp = tmp_path_factory.mktemp("explore")
    init = {"a": np.array([0.0, 4.0, -4.0]), "c": np.zeros(3)}
    lrsweep.sweep(bowl(), "log:1e-3:10:256", init=init, epochs=1000, out=tmp / "bowl.zarr", progress=False)
    page = tmp / "bowl.html"
    assert cli.main(["explore", str(tmp / "bowl.zarr"), "--out", str(page), "--quiet"]) == 0
    return page


@pytest.fixture(scope="module")
def map_page(tmp_path_factory) -> Path:
    net = lrsweep.problems.mlp(width=4)
    ds = lrsweep.sweep(net, {"W0": "log:0.1:100:8", "W1": "log:0.1:100:8"}, init=2, epochs=50, progress=False)
    return lrsweep.explore(ds, tmp_path_factory.mktemp("map") / "map.html")


def _data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    found = re.search(r'id="lrsweep-data">(.*?)</script>', text, re.S)
    assert found is not None, "the page carries no data"
    return json.loads(found.group(1))


def test_the_page_is_self_contained_and_within_budget(big_page):
    text = big_page.read_text(encoding="utf-8")
    assert big_page.stat().st_size <= PAGE_MAX_BYTES
    assert "http://" not in text and "https://" not in text  # offline: nothing to fetch
    data = _data(big_page)
    assert data["kind"] == "1d" and len(data["axes"][0]["values"]) == 256 and data["n_runs"] == 3
    assert sorted(data["params"]) == ["a", "c"]  # two scalar parameters: their trajectories
    assert "epochs per curve" in " ".join(data["notes"])  # downsampled, and the page says so
    assert data["critical"] is None  # a user's problem: no theory on the page
    assert data["suggested"]["largest_stable"] > 0


def test_a_builtin_problem_gets_theory_and_a_spec_file_runs(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text('problem = "linear"\nlr = "log:1e-3:1:32"\nepochs = 200\n', encoding="utf-8")
    page = lrsweep.explore(spec, tmp_path / "lin.html")
    data = _data(page)
    assert data["critical"] == pytest.approx(lrsweep.theory.critical_lr(lrsweep.problems.linear()))
    assert "epochs" not in data  # a summary sweep: final losses only


def test_bad_arguments_are_one_line_errors(tmp_path):
    ds = lrsweep.sweep("linear", [0.01, 0.1], epochs=10, record="summary")
    with pytest.raises(ValueError, match=r"path='.*page\.png' is invalid: expected an \.html"):
        lrsweep.explore(ds, tmp_path / "page.png")
    with pytest.raises(ValueError, match="source=int is invalid"):
        lrsweep.explore(cast(Any, 3), tmp_path / "page.html")  # a wrong type on purpose
    with pytest.raises(ValueError, match="does not exist"):
        lrsweep.explore(tmp_path / "missing.zarr", tmp_path / "page.html")


def test_xarray_conventions(tmp_path):
    init = {"w": np.array([0.0, 1.0]), "b": np.zeros(2)}
    ds = lrsweep.sweep("linear", [0.01, 0.1], init=init, epochs=5, out=tmp_path / "s.zarr")
    for result in (ds, lrsweep.open(tmp_path / "s.zarr")):
        assert result.lr.attrs["long_name"] == "learning rate" and result.lr.attrs["units"] == "1"
        assert result.epoch.attrs["long_name"] == "epoch"
        assert result.loss.attrs["long_name"] == "training loss"
        assert result.init_w.attrs["long_name"] == "initial value of parameter w"
        assert result.outcome.attrs["flag_meanings"].startswith("pending")
    # The problem's one default init is no axis of values: no init_<name> coordinates.
    plain = lrsweep.sweep("linear", [0.01], optimizer="adam", optimizer_axes={"b2": [0.9, 0.99]}, epochs=5)
    assert sorted(map(str, plain.coords)) == ["epoch", "init", "lr", "opt_b2"]


# -- in the browser ------------------------------------------------------------------------------
def _open(driver, url: str):
    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    return driver


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _pixels(driver, *canvases: str) -> dict[str, str]:
    return {c: driver.execute_script(f"return document.getElementById('{c}').toDataURL()") for c in canvases}


def _severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@needs_browser
def test_the_page_loads_offline_and_the_slider_moves_it(browser, big_page):
    page = _open(browser, big_page.as_uri())
    assert _severe(page) == [] and _text(page, "errors") == ""
    assert "lrsweep explorer: bowl" in _text(page, "title")
    before = _pixels(page, "final", "curves", "params", "strip")
    lr_before = _text(page, "lr-value")
    page.find_element(By.ID, "lr-slider").send_keys(Keys.ARROW_LEFT)
    after = _pixels(page, "final", "curves", "params", "strip")
    assert _text(page, "lr-value") != lr_before
    for name in ("final", "curves", "params", "strip"):
        assert after[name] != before[name], f"canvas {name} did not change with the slider"
    assert re.fullmatch(r"#lr=[0-9.e-]+", page.execute_script("return location.hash"))  # the address follows
    assert _severe(page) == []


@needs_browser
def test_a_hash_opens_on_the_nearest_lr(browser, big_page):
    page = _open(browser, big_page.as_uri() + "#lr=0.1")
    lrs = np.geomspace(1e-3, 10, 256)
    nearest = lrs[np.argmin(np.abs(np.log(lrs / 0.1)))]
    assert _text(page, "lr-value") == f"lr = {float(f'{nearest:.6g}'):g}"
    assert page.execute_script("return explorerState.index") == int(np.argmin(np.abs(np.log(lrs / 0.1))))


@needs_browser
def test_a_two_group_sweep_is_a_map_with_hover_and_click(browser, map_page):
    page = _open(browser, map_page.as_uri())
    assert _severe(page) == [] and _text(page, "errors") == ""
    canvas = page.find_element(By.ID, "map")
    ActionChains(page).move_to_element(canvas).perform()  # the middle of the map
    tip = _text(page, "tip")
    assert "lr_W0 = " in tip and "lr_W1 = " in tip and "final loss" in tip
    ActionChains(page).move_to_element(canvas).click().perform()
    assert "lr_W0 = " in _text(page, "info")
    assert page.execute_script("return location.hash").startswith("#lr_W0=")
    page.find_element(By.CSS_SELECTOR, "#mode option[value='loss']").click()
    assert _severe(page) == []
