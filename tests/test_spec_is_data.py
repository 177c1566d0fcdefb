"""A spec file is data: it says what to compute, never where to run it, and nothing a spec names runs
before it is known to be a marked factory. Each hostile case leaves a marker file if anything ran."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_run import run_cli

from lrsweep import _text, problems, spec_sources
from lrsweep.problems import registry

ROOT = Path(__file__).resolve().parents[1]


PLACES = {
    "scheduler": '"tcp://127.0.0.1:1"',
    "workers": "2",
    "out": '"elsewhere.zarr"',
    "memory": '"64MB"',
    "devices": "1",
}


@pytest.mark.parametrize("key", sorted(PLACES))
def test_a_spec_file_cannot_say_where_to_run(key, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f'problem = "linear"\nlr = 0.1\nepochs = 3\n{key} = {PLACES[key]}\n')
    code, out, err = run_cli(capsys, "run", "s.toml", "--quiet")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"s.toml: {key} is where to run" in err and "--trust-spec" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # no store, no lock


def test_trust_spec_takes_where_to_run_from_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('problem = "linear"\nlr = [0.1, 0.2]\nepochs = 3\nout = "s.zarr"\n')
    code, _, err = run_cli(capsys, "run", "s.toml", "--quiet", "--trust-spec")
    assert code == 0, err
    assert (tmp_path / "s.zarr" / "zarr.json").is_file()
    # Flags are the user's own: no --trust-spec needed for them.
    (tmp_path / "t.toml").write_text('problem = "linear"\nlr = [0.1, 0.2]\nepochs = 3\n')
    assert run_cli(capsys, "run", "t.toml", "--quiet", "--out", "t.zarr")[0] == 0
    assert (tmp_path / "t.zarr" / "zarr.json").is_file()


def test_spec_files_are_read_with_a_bound_from_devices_and_pipes(tmp_path):
    with pytest.raises(ValueError, match=r"'/dev/zero' is longer than 1,000,000 bytes"):
        spec_sources.load_toml("/dev/zero")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 2_000_000 + "\n")
    with pytest.raises(ValueError, match="is longer than"):
        spec_sources.load_toml(big)


@pytest.mark.slow
def test_a_spec_through_a_pipe_is_bounded_too():
    # `lrsweep run /dev/stdin < endless`: the reader stops after the bound, one line, status 2.
    proc = subprocess.run(
        [sys.executable, "-c", "from lrsweep import cli; raise SystemExit(cli.main(['run', '/dev/stdin']))"],
        input=b"# " + b"x" * 3_000_000,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert "is longer than 1,000,000 bytes" in err


# -- names of code: checked in the file's text, before any of it runs --------------------------------
EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("the module ran")


def make(**kwargs):
    pathlib.Path({marker!r}).write_text("make was called")


not_a_function = make
"""


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module ``evil_<n>`` in the current directory whose top level leaves a marker file."""
    marker = tmp_path / "ran.txt"
    name = f"evil_{tmp_path.name[-12:].replace('-', '_')}"
    name = re.sub(r"\W", "_", name)
    (tmp_path / f"{name}.py").write_text(EVIL.format(marker=str(marker)))
    pkg = tmp_path / f"{name}_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(EVIL.format(marker=str(marker)))
    (pkg / "sub.py").write_text("def make():\n    pass\n")
    monkeypatch.chdir(tmp_path)
    yield name, marker
    for key in [k for k in sys.modules if k.startswith(name)]:
        sys.modules.pop(key)


@pytest.mark.parametrize("form", ["{name}:make", "{name}.py:make", "./{name}.py:make", "{name}:not_a_function"])
def test_an_unmarked_function_s_module_never_runs(evil, form, capsys):
    name, marker = evil
    spec = form.format(name=name)
    code, out, err = run_cli(capsys, "run", "--problem", spec, "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "is not marked as a problem factory" in err and "was read, not run" in err
    assert not marker.exists()
    assert name not in sys.modules


def test_a_package_s_init_does_not_run_for_an_unmarked_submodule_function(evil):
    name, marker = evil
    with pytest.raises(ValueError, match="is not marked as a problem factory"):
        problems.factory(f"{name}_pkg.sub:make")
    assert not marker.exists() and f"{name}_pkg" not in sys.modules


def test_this_module_is_not_imported(capsys):
    # `import this` prints the Zen of Python: the name is refused from the module's text.
    sys.modules.pop("this", None)
    code, out, err = run_cli(capsys, "run", "--problem", "this:x", "--quiet")
    assert code == 2 and out == "" and "this.x is not marked" in err
    assert "this" not in sys.modules


@pytest.mark.parametrize(
    "source,marked",
    [
        ("@problem_factory\ndef f(): pass\n", True),
        ("import lrsweep\n@lrsweep.problems.problem_factory\ndef f(): pass\n", True),
        ("def f(): pass\n", False),
        ("@problem_factory\ndef f(): pass\nf = 3\n", False),  # rebound after the marked def
        ("@problem_factory\ndef g(): pass\nf = g\n", False),
        ("@problem_factory\nclass f: pass\n", False),
        ("if True:\n    @problem_factory\n    def f(): pass\n", False),  # only the top level counts
        ("@other\ndef f(): pass\n", False),
    ],
)
def test_the_mark_is_read_from_the_text(source, marked, tmp_path):
    from lrsweep.problems import _source

    path = tmp_path / "m.py"
    path.write_text(source)
    assert _source.marked_in_source(path, "f") is marked


def test_a_dist_info_in_the_current_directory_registers_nothing(tmp_path, monkeypatch):
    # `python -m lrsweep` puts the current directory first on sys.path.
    marker = tmp_path / "ran.txt"
    (tmp_path / "pwnmod_xyz.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    info = tmp_path / "pwn-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pwn\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lrsweep.problems]\npwnproblem = pwnmod_xyz:make\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "path", [str(tmp_path), "", *sys.path])
    assert "pwnproblem" not in problems.registered()
    with pytest.raises(ValueError, match="is not a built-in or registered problem"):
        problems.resolve("pwnproblem")
    assert not marker.exists()
    # The same folder elsewhere on sys.path is an installed distribution.
    monkeypatch.chdir(ROOT)
    assert "pwnproblem" in [ep.name for ep in registry._entry_points()]


# -- what reaches a terminal ------------------------------------------------------------------------
def test_printable_escapes_control_characters_but_not_lines():
    assert _text.printable("a\x1b[31mb\x07c\r\u202ed\te\n") == "a\\x1b[31mb\\x07c\\x0d\\u202ed\te\n"
    assert _text.printable("lr 1e-3 \u00e9\u4e2d") == "lr 1e-3 \u00e9\u4e2d"


def test_names_from_a_spec_reach_the_terminal_escaped(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import lrsweep

            @lrsweep.problem_factory
            def make():
                return lrsweep.Problem("x\\x1b]0;pwned\\x07\\x1b[2J", lambda p, x, y: (p["w"] * x - y) ** 2,
                                       np.arange(1.0, 4.0), np.arange(1.0, 4.0), {"w": np.float32(0.0)})
            """
        )
    )
    code, out, err = run_cli(capsys, "run", "--problem", "p.py:make", "--lr", "0.1,0.2", "--epochs", "3")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "x\\x1b]0;pwned\\x07" in out
    code, out, err = run_cli(capsys, "run", "--problem", "\x1b[2Jnope\x07", "--quiet")
    assert code == 2 and "\x1b" not in err and "\x07" not in err


@pytest.mark.slow
@pytest.mark.parametrize("target", ["full", "closed", "pipe"])
def test_a_closed_or_full_stdout_ends_quietly(target):
    code = "from lrsweep import cli; raise SystemExit(cli.main(['run', '--lr', '0.1,0.2', '--epochs', '3']))"
    if target == "pipe":
        with subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # the reader is gone before anything is written
            err = proc.stderr.read().decode()
            assert proc.wait(timeout=120) == 0 and err == "", err
        return
    if target == "full":
        with open("/dev/full", "w") as full:
            proc = subprocess.run(
                [sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, cwd=ROOT, timeout=120
            )
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err == "lrsweep: cannot write to stdout: No space left on device\n", err
        return
    proc = subprocess.run(
        [sys.executable, "-c", "import os; os.close(1); " + code], stderr=subprocess.PIPE, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0 and proc.stderr.decode() == ""


# -- what reaches a page ----------------------------------------------------------------------------
def test_every_name_that_reaches_the_explorer_s_markup_is_escaped():
    template = (ROOT / "lrsweep" / "explore" / "templates" / "explore.html").read_text()
    names = ["D.runs[r]", "AX.name", "AY.name", "KEY === ", "m[0]", "esc(k", "esc(n)"]
    markup = [line for line in template.splitlines() if "innerHTML" in line or "<t" in line or "<b>" in line]
    joined = "\n".join(markup)
    for name in names[:3]:
        for hit in re.finditer(re.escape(name), joined):
            before = joined[max(0, hit.start() - 4) : hit.start()]
            line = joined[joined.rfind("\n", 0, hit.start()) + 1 : joined.find("\n", hit.start())]
            assert before.endswith("esc(") or "encodeURIComponent" in line or "textContent" in line, line
    assert "const esc = " in template
