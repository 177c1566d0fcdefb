"""What importing lrsweep costs: the package loads its names on first use, so ``import lrsweep`` and
``lrsweep --help`` stay light; every public name still resolves to the object its module defines."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import lrsweep
from lrsweep import cli
from lrsweep.__main__ import main as command_main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "matplotlib", "pyarrow", "zarr", "xarray", "pandas")


def _loaded_after(code: str) -> tuple[set[str], str]:
    """The top-level modules that ``python -X importtime -c code`` imported, and the code's stdout."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    # importtime's lines: "import time: self [us] | cumulative | imported package", nested ones indented.
    names = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:[^|]*\|[^|]*\|\s*(\S+)", proc.stderr, re.M)}
    return names, proc.stdout


def test_import_lrsweep_loads_neither_jax_nor_the_io_and_plotting_libraries():
    loaded, _ = _loaded_after("import lrsweep")
    assert "lrsweep" in loaded  # the parse of importtime's report sees the import itself
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_sweep_function_loads_jax_but_not_matplotlib():
    loaded, _ = _loaded_after("from lrsweep import sweep")
    assert "jax" in loaded and "matplotlib" not in loaded


def test_help_and_version_answer_without_jax():
    code = (
        "import sys\n"
        "from lrsweep.__main__ import main\n"
        "for argv in (['--help'], ['--version'], ['-h']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, stop.code\n"
    )
    loaded, out = _loaded_after(code)
    assert "jax" not in loaded and "numpy" not in loaded
    assert out.count("usage: lrsweep") == 2 and re.search(r"^lrsweep \d+\.\d+\.\d+$", out, re.M)


def test_the_light_help_is_the_full_parsers_help(capsys):
    # lrsweep --help answers from the top-level parser alone; it must say what the full parser says.
    with pytest.raises(SystemExit):
        command_main(["--help"])
    light = capsys.readouterr().out
    assert light == cli._parser().format_help()
    assert command_main(["trace", "--lr", "0.01", "--epochs", "1"]) == 0  # a command goes on to lrsweep.cli
    assert "weight value: 0.0 original loss: 67.5" in capsys.readouterr().out


def test_all_lists_the_lazy_names():
    assert sorted(lrsweep.__all__) == sorted([*lrsweep._LAZY, "__version__"])


@pytest.mark.parametrize("name", sorted(lrsweep.__all__))
def test_every_public_name_is_its_modules_object(name):
    value = getattr(lrsweep, name)
    if name == "__version__":
        assert isinstance(value, str)
        return
    module, attr = lrsweep._LAZY[name]
    defined = importlib.import_module(f"lrsweep.{module}")
    assert value is (defined if attr is None else getattr(defined, attr))


def test_a_submodule_import_keeps_the_function_of_the_same_name():
    # Importing lrsweep.plot sets the module as the package's attribute; the facade keeps the function.
    import lrsweep.explore
    import lrsweep.plot

    assert isinstance(lrsweep.plot, types.FunctionType) and lrsweep.plot.__module__ == "lrsweep.plot"
    assert isinstance(lrsweep.explore, types.FunctionType)
    assert isinstance(lrsweep.engine, types.ModuleType)  # any submodule by attribute, as before
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = lrsweep.no_such_name


def test_ci_fails_a_skipped_browser_test():
    # Without chromium on PATH the explorer's browser tests skip; CI's LRSWEEP_REQUIRE_BROWSER=1 makes that
    # a failure (tests/conftest.py), so CI cannot stay green without having driven the pages.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "LRSWEEP_REQUIRE_BROWSER": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_explorer.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 1 and "skipped with LRSWEEP_REQUIRE_BROWSER=1" in proc.stdout, proc.stdout[-2000:]
