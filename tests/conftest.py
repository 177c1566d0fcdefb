"""Test configuration that catches silent bugs (after equinox's tests/conftest.py)."""

import gc
import os
import shutil
import sys
from pathlib import Path

import jax
import pytest

# Implicit rank promotion hides shape bugs; make it an error everywhere in the tests.
jax.config.update("jax_numpy_rank_promotion", "raise")

# tests/reference.py is imported as a plain module by the tests beside it.
sys.path.insert(0, str(Path(__file__).parent))


def pytest_sessionfinish(session, exitstatus):
    """A run that collects no test fails loudly (pytest's own exit code 5 is easy to mistake)."""
    if session.testscollected == 0 and exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        print("\nlrsweep: no test was collected; failing the run", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Each test module's compiled programs are released after it. XLA:CPU maps memory for every
    program it compiles, and the whole suite in one process reached the kernel's limit on memory
    maps (``vm.max_map_count``, 65530 by default): a compile then crashed with a segmentation fault."""
    yield
    jax.clear_caches()
    gc.collect()


# -- a headless browser, shared by the explorer pages' tests ---------------------------------------

#: Set in CI (.ci/run): a browser test skipped for want of selenium, chromium or chromedriver fails
#: instead, so that a green run has really driven the pages.
REQUIRE_BROWSER = os.environ.get("LRSWEEP_REQUIRE_BROWSER") == "1"
_BROWSER_WORDS = ("selenium", "chromium", "chromedriver")


def _fail_browser_skip(report) -> None:
    if REQUIRE_BROWSER and report.skipped and any(word in str(report.longrepr) for word in _BROWSER_WORDS):
        report.outcome = "failed"
        report.longrepr = f"a browser test was skipped with LRSWEEP_REQUIRE_BROWSER=1: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test's skip (skipif mark or the fixture's skip) is a failure under LRSWEEP_REQUIRE_BROWSER."""
    outcome = yield
    _fail_browser_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A browser test module skipped whole (``importorskip("selenium...")``) likewise."""
    outcome = yield
    _fail_browser_skip(outcome.get_result())


CHROME = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium through Selenium and chromedriver; the tests that take it skip without them
    (CI installs them: ``apt-get install chromium chromium-driver``)."""
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("needs selenium (pip install selenium)")
    if not (CHROME and DRIVER):
        pytest.skip("needs chromium and chromedriver on PATH (apt-get install -y chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
