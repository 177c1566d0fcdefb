"""``figures/explorer.html`` in a real browser: it loads without errors and the slider drives the plots.

Headless Chromium through Selenium and chromedriver, as a user would: press keys on the slider,
click the buttons, and watch the text and the canvases change. Skipped only when selenium,
chromium or chromedriver is missing (CI installs them: ``pip install selenium`` and
``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROME = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROME and DRIVER),
    reason="needs chromium and chromedriver on PATH (apt-get install -y chromium chromium-driver)",
)

EXPLORER = Path(__file__).resolve().parents[1] / "figures" / "explorer.html"
CANVASES = ("weight", "loss", "landscape", "strip")


@pytest.fixture()
def page(browser):
    assert EXPLORER.is_file(), "figures/explorer.html is missing: run `lrsweep figures --out figures`"
    browser.get(EXPLORER.as_uri())
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    return browser


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _pixels(driver) -> dict[str, str]:
    return {c: driver.execute_script(f"return document.getElementById('{c}').toDataURL()") for c in CANVASES}


def _severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_loads_without_errors_and_draws(page):
    assert _severe(page) == []
    assert _text(page, "errors") == ""
    assert _text(page, "lr-value") == "lr = 0.01"  # the lesson's first learning rate
    assert _text(page, "outcome") == "unfinished"
    assert "w = 2.9842885" in _text(page, "info")  # the lesson's end state, exactly
    blank = page.execute_script(
        "const c = document.createElement('canvas'); const s = document.getElementById('weight');"
        "c.width = s.width; c.height = s.height; const x = c.getContext('2d');"
        "x.fillStyle = '#fff'; x.fillRect(0, 0, c.width, c.height); return c.toDataURL();"
    )
    for name, url in _pixels(page).items():
        assert url != blank, f"canvas {name} is blank"


def test_the_slider_moves_the_plots(page):
    slider = page.find_element(By.ID, "lr-slider")
    before, lr_before = _pixels(page), _text(page, "lr-value")
    slider.send_keys(Keys.ARROW_RIGHT)
    assert _text(page, "lr-value") == "lr = 0.01072"  # the next grid point
    after = _pixels(page)
    for name in CANVASES:
        assert after[name] != before[name], f"canvas {name} did not change with the slider"
    slider.send_keys(Keys.END)
    assert _text(page, "lr-value") == "lr = 1" != lr_before
    assert _text(page, "outcome") == "stuck (epoch 3)"
    assert "leaves the frame at epoch 1" in _text(page, "land-note")
    assert "w = 12755.16" in _text(page, "info")
    slider.send_keys(Keys.HOME)
    assert _text(page, "lr-value") == "lr = 0.001"
    assert _severe(page) == []


def test_buttons_and_epoch_slider(page):
    page.find_element(By.CSS_SELECTOR, "button[data-lr='0.1']").click()
    assert _text(page, "lr-value") == "lr = 0.1"
    assert _text(page, "outcome").startswith("converged")
    before = _pixels(page)["landscape"]
    # Show epoch 1 only: the notebook's first update at lr 0.1 takes w from 0 to 4.5.
    page.execute_script(
        "const s = document.getElementById('epoch-slider'); s.value = '1';"
        "s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    assert _text(page, "weight-note").startswith("epoch 1: w = 4.49992")
    assert _pixels(page)["landscape"] != before
    page.find_element(By.ID, "logx").click()
    assert "epoch 1: w = 4.49992" in _text(page, "weight-note")
    assert _severe(page) == []
