"""The command line, used as a user would: through main() and as a subprocess."""

import re
import subprocess
import sys

import numpy as np
import pytest

from lrsweep import cli


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_default_is_the_lesson_with_256_log_spaced_lrs(capsys):
    code, out, _ = run_cli(capsys, "run", "--quiet")
    assert code == 0
    assert "problem linear, 256 lr x 1 init, 1000 epochs" in out
    counts = dict(re.findall(r"^(converged|unfinished|diverged|stuck)\s+(\d+)", out, re.M))
    assert sum(map(int, counts.values())) == 256
    # The largest lr that converged lies just below theory's critical lr 2 / 16.70 = 0.1198,
    # within one grid step (ratio 10 ** (5 / 255)).
    largest = float(re.search(r"largest lr that converged: (\S+)", out).group(1))
    grid = np.geomspace(1e-4, 10, 256)
    assert largest == pytest.approx(grid[grid < 0.11976].max(), rel=1e-5)
    assert re.search(r"lr with the lowest final loss: \S+ \(loss \S+\)", out)


def test_run_with_list_and_space(capsys):
    code, out, _ = run_cli(capsys, "run", "--lr", "0.01,0.1,1", "--grad", "forward", "--precision", "mixed", "--quiet")
    assert code == 0 and "3 lr x 1 init" in out
    assert re.search(r"^stuck\s+1\s+1\s+1$", out, re.M)
    code, out, _ = run_cli(
        capsys, "run", "--lr", "lin:0.01:0.2:20", "--epochs", "50", "--record", "trajectory", "--quiet"
    )
    assert code == 0 and "20 lr x 1 init" in out and "50 epochs" in out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["run", "--lr", "-1"], "lr='-1'"),
        (["run", "--lr", "log:1:0.1:5"], "lr='log:1:0.1:5'"),
        (["run", "--epochs", "0"], "epochs=0"),
        (["run", "--grad", "magic"], "grad='magic'"),
        (["run", "--precision", "half"], "precision='half'"),
        (["run", "--record", "all"], "record='all'"),
        (["run", "--problem", "nope"], "problem='nope'"),
        (["trace", "--lr", "0.1", "--param", "z"], "--param='z'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("lrsweep: error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_info(capsys):
    code, out, _ = run_cli(capsys, "info")
    assert code == 0
    for word in ("lrsweep", "jax", "jaxlib", "numpy", "backend cpu", "device 0"):
        assert word in out


def test_python_dash_m_and_console_script_agree():
    argv = ["trace", "--lr", "0.1", "--epochs", "3"]
    out = subprocess.run([sys.executable, "-m", "lrsweep", *argv], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].startswith("weight value: 0.0 original loss: 67.5")
    assert len(out.splitlines()) == 4
    bad = subprocess.run([sys.executable, "-m", "lrsweep", "run", "--lr", "nan"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_run_with_optimizer_inits_and_advice(capsys):
    code, out, _ = run_cli(
        capsys,
        "run",
        "--problem",
        "quadratic",
        "--lr",
        "log:0.01:1:30",
        "--epochs",
        "300",
        "--optimizer",
        "momentum",
        "--init",
        "3",
        "--seed",
        "1",
        "--quiet",
    )
    assert code == 0
    assert "30 lr x 3 init" in out and "optimizer momentum" in out
    # quadratic(): lambda_max = cond = 10, heavy ball with beta = 0.9: critical lr (2 + 1.8) / 10.
    assert "theory: critical lr 0.38 " in out
    suggested = float(re.search(r"suggested lr \(largest stable\): (\S+)", out).group(1))
    assert suggested <= 0.38
    code, out, err = run_cli(capsys, "run", "--optimizer", "adamx")
    assert code == 2 and "optimizer='adamx'" in err
