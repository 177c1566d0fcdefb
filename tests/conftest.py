"""Test configuration that catches silent bugs (after equinox's tests/conftest.py)."""

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
