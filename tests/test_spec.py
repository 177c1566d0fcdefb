"""SweepSpec is the one list of settings: the Python API, TOML files, CLI flags, the canonical spec
and the Dataset's attributes all come from it."""

import dataclasses
import json
from typing import Any

import pytest

import lrsweep
from lrsweep import api, cli, identity, spec, spec_sources


@pytest.fixture
def extended(monkeypatch):
    """SweepSpec with one more setting, declared in one place and nowhere else."""
    field = spec.setting("plain", help="a note kept with the sweep", toml=(str,), what="a string")
    extended = dataclasses.make_dataclass("Extended", [("note", Any, field)], bases=(spec.SweepSpec,), frozen=True)
    monkeypatch.setattr(spec, "SweepSpec", extended)
    return extended


def test_a_new_setting_reaches_python_toml_cli_and_attrs(extended, tmp_path, capsys):
    # Python: a keyword of sweep(), in the signature, the attrs and the canonical spec.
    ds = lrsweep.sweep("linear", 0.1, epochs=3, note="from python")
    assert ds.attrs["note"] == "from python"
    assert json.loads(ds.attrs["spec"])["note"] == "from python"
    assert "note" in api._signature().parameters
    # TOML: a key, type-checked.
    path = tmp_path / "s.toml"
    path.write_text('note = "from toml"\nepochs = 3\n')
    assert spec_sources.load_toml(path)["note"] == "from toml"
    path.write_text("note = 3\n")
    with pytest.raises(ValueError, match=r"note = 3 has the wrong type: expected a string"):
        spec_sources.load_toml(path)
    # CLI: a flag, with its help; the value reaches the stored attrs.
    out = tmp_path / "s.zarr"
    assert cli.main(["run", "--lr", "0.1", "--epochs", "3", "--note", "from the cli", "--out", str(out)]) == 0
    assert lrsweep.open(out).attrs["note"] == "from the cli"
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "--note NOTE" in capsys.readouterr().out


def test_the_real_spec_declares_every_keyword_of_sweep():
    names = list(spec.settings())
    assert names[:2] == ["problem", "lr"]
    assert list(api._signature().parameters) == names
    for name, meta in spec.settings().items():
        assert meta.help, name


def test_unknown_settings_and_bad_values_name_themselves():
    with pytest.raises(ValueError, match=r"epoch=\.\.\. is not a setting of a sweep; the settings are problem, lr"):
        lrsweep.sweep("linear", 0.1, epoch=3)
    with pytest.raises(ValueError, match=r"grad='exact' is invalid: expected one of \['autodiff'"):
        lrsweep.sweep("linear", 0.1, grad="exact")
    with pytest.raises(ValueError, match=r"memory='lots' is invalid"):
        lrsweep.sweep("linear", 0.1, memory="lots")


def test_cli_flags_parse_like_python_values():
    parser = cli._parser()
    args = parser.parse_args(
        [
            "run",
            "--lr",
            "W0=log:1e-3:1:4",
            "--lr",
            "W1=0.1,0.2",
            "--optimizer-kwargs",
            "b1=0.8,eps=1e-6",
            "--optimizer-axes",
            "b2=0.9,0.99",
            "--variables",
            "loss, w",
            "--epochs",
            "7",
        ]
    )
    got = spec_sources.from_flags(args)
    assert got == {
        "lr": {"W0": "log:1e-3:1:4", "W1": "0.1,0.2"},
        "epochs": 7,
        "variables": ["loss", "w"],
        "optimizer_kwargs": {"b1": 0.8, "eps": 1e-6},
        "optimizer_axes": {"b2": "0.9,0.99"},
    }
    with pytest.raises(ValueError, match=r"--problem-args='dim' is invalid: expected KEY=VALUE"):
        spec_sources.from_flags(parser.parse_args(["run", "--problem-args", "dim"]))


def test_canonical_spec_normalises_axes():
    a = identity.canonical(spec.build("linear", "0.1,0.2", epochs=5)[0])
    b = identity.canonical(spec.build("linear", [0.1, 0.2], epochs=5)[0])
    assert a == b and a["lr"] == [0.1, 0.2]
    assert "memory" not in a and "out" not in a  # where results go is not what they are
