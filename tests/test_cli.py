"""The command line, used as a user would: through main() and as a subprocess."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from lrsweep import cli


def _search(pattern: str, text: str, flags: int = 0) -> re.Match:
    """``re.search`` that must match."""
    match = re.search(pattern, text, flags)
    assert match is not None, (pattern, text[-500:])
    return match


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
    largest = float(_search(r"largest lr that converged: (\S+)", out).group(1))
    grid = np.geomspace(1e-4, 10, 256)
    assert largest == pytest.approx(grid[grid < 0.11976].max(), rel=1e-5)
    assert _search(r"lr with the lowest final loss: \S+ \(loss \S+\)", out)


def test_run_with_list_and_space(capsys):
    code, out, _ = run_cli(capsys, "run", "--lr", "0.01,0.1,1", "--grad", "forward", "--precision", "mixed", "--quiet")
    assert code == 0 and "3 lr x 1 init" in out
    assert _search(r"^stuck\s+1\s+1\s+1$", out, re.M)
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
    suggested = float(_search(r"suggested lr \(best on loss, [^)]*\): (\S+)", out).group(1))
    assert suggested <= 0.38
    code, out, err = run_cli(capsys, "run", "--optimizer", "adamx")
    assert code == 2 and "optimizer='adamx'" in err


def test_version_help_and_epilogs(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and re.fullmatch(r"lrsweep \d+\.\d+\.\d+\n", capsys.readouterr().out)
    for command in ("run", "show", "explore", "export", "trace", "info"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text, command
        # Every option says what it does and its default (or that it is required).
        options = re.findall(r"^  (-\S+)(?:[^\n]*)\n((?:\s{10,}[^\n]*\n)*)", text, re.M)
        assert options, command
    with pytest.raises(SystemExit):
        cli.main(["trace", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: forward" in text and "run's default is autodiff" in text


def test_run_json_and_timing(capsys):
    code, out, _ = run_cli(capsys, "run", "--lr", "0.01,0.1,1", "--epochs", "100", "--json")
    assert code == 0
    facts = json.loads(out)
    assert facts["sizes"] == {"lr": 3, "init": 1} and facts["settings"]["epochs"] == 100
    assert sum(facts["outcomes"].values()) == 3 and facts["critical_lr"] == pytest.approx(0.119756, rel=1e-5)
    assert facts["suggested_lr"]["lr"] == 0.1
    assert facts["timing"]["configs_computed"] == 3 and facts["timing"]["config_steps_computed"] == 300
    code, out, _ = run_cli(capsys, "run", "--lr", "0.01,0.1", "--epochs", "100", "--quiet")
    assert _search(
        r"^time: compile \d+\.\d\d s, sweep \d+\.\d\d s \(2 configs x 100 epochs = 200 config-steps", out, re.M
    )


def test_info_json(capsys):
    code, out, _ = run_cli(capsys, "info", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["backend"] == "cpu" and facts["devices"][0]["id"] == 0 and "jax" in facts


def test_verbose_prints_the_plan_and_trajectory_without_out_warns(capsys):
    code, out, err = run_cli(capsys, "run", "--lr", "0.01,0.1", "--epochs", "20", "--record", "trajectory", "-v")
    assert code == 0 and "2 lr x 1 init" in out
    assert "lrsweep: settings " in err and "lrsweep: plan: 2 configs in 1 chunks" in err
    assert "--record trajectory without --out: only the summary is printed" in err
    code, out, err = run_cli(capsys, "run", "--lr", "0.01", "--epochs", "20", "--record", "trajectory", "-q")
    assert code == 0 and err == ""


def test_show_a_store_without_rerunning(capsys, tmp_path):
    store = str(tmp_path / "s.zarr")
    code, out, _ = run_cli(capsys, "run", "--lr", "log:1e-3:1:16", "--epochs", "100", "--out", store, "-q")
    assert code == 0
    table = out.split("\n", 1)[1].split("largest")[0]
    code, out, _ = run_cli(capsys, "show", store)
    assert code == 0 and "16 lr x 1 init, 100 epochs" in out and table in out
    # A resumed run that finds every chunk done computes nothing, and says so.
    code, out, _ = run_cli(capsys, "run", "--lr", "log:1e-3:1:16", "--epochs", "100", "--out", store, "-q")
    assert "nothing to compute" in out and "compile" not in out.splitlines()[-1]


def test_ctrl_c_says_interrupted(capsys, monkeypatch):
    def stop(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_info", stop)
    code, _out, err = run_cli(capsys, "info")
    assert code == 130 and err == "lrsweep: interrupted\n"
