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
    ds = lrsweep.sweep("linear", 0.1, epochs=3, note="from python")  # pyright: ignore[reportCallIssue]
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


def test_the_typed_keywords_of_sweep_are_the_settings():
    # What a type checker reads (api.SweepSettings, for sweep's **settings) names every setting but
    # problem and lr, in declaration order: a setting declared in spec.py without its type here fails.
    typed = list(lrsweep.SweepSettings.__annotations__)
    assert typed == [name for name in spec.settings() if name not in ("problem", "lr")]
    assert lrsweep.SweepSettings.__total__ is False


def test_unknown_settings_and_bad_values_name_themselves():
    with pytest.raises(ValueError, match=r"epoch=\.\.\. is not a setting of a sweep; the settings are problem, lr"):
        lrsweep.sweep("linear", 0.1, epoch=3)  # pyright: ignore[reportCallIssue]
    with pytest.raises(ValueError, match=r"grad='exact' is invalid: expected one of \['autodiff'"):
        lrsweep.sweep("linear", 0.1, grad="exact")  # pyright: ignore[reportArgumentType]
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


@pytest.mark.parametrize(
    ("lr", "message"),
    [
        (-0.1, r"lr=-0\.1 is invalid: learning rates must be finite and > 0, got -0\.1"),
        (0.0, r"lr=0\.0 is invalid: learning rates must be finite and > 0, got 0\.0"),
        (float("nan"), r"lr=nan is invalid: learning rates must be finite and > 0, got nan"),
        (float("inf"), r"lr=inf is invalid: learning rates must be finite and > 0, got inf"),
        ([0.1, -1.0], r"lr=\[0\.1, -1\.0\] is invalid: learning rates must be finite and > 0, got -1\.0"),
        ([], r"lr=\[\] is invalid: expected at least one learning rate"),
        ("abc", r"lr='abc' is invalid: expected comma-separated numbers \('0\.01,0\.1,1'\) or a space"),
        ("log:0:1:3", r"lr='log:0:1:3' is invalid: expected 'log:START:STOP:NUM' or 'lin:START:STOP:NUM'"),
        ({}, r"lr=\{\} is invalid: expected at least one group"),
        ({"w": 0.1, "b": "lin:1:0:3"}, r"lr\['b'\]='lin:1:0:3' is invalid: expected 'log:START:STOP:NUM'"),
    ],
)
def test_a_bad_lr_is_refused_when_the_spec_is_built(lr, message, monkeypatch):
    # Refused by spec.build itself, before any problem is built or planned: a problem that cannot
    # be resolved would fail later with another message.
    with pytest.raises(ValueError, match="^" + message) as raised:
        spec.build("no.such.module:factory", lr, epochs=3)
    assert "\n" not in str(raised.value)
    # The same message as the planner gives (one check, read in both places).
    with pytest.raises(ValueError, match="^" + message):
        lrsweep.sweep("linear", lr, epochs=3)


def test_good_lrs_are_kept_as_given():
    # The canonical spec is written from the value itself, so the check must not rewrite it.
    for lr in (0.1, [0.1, 1.0], "log:1e-3:1:4", "0.01,0.1", {"w": 0.1, "b": [0.2]}):
        assert spec.build("linear", lr)[0].lr == lr


def test_the_literal_types_of_settings_name_what_their_checks_accept():
    # The annotations pyright reads and the runtime checks must not drift apart.
    from typing import get_args

    from lrsweep import gradients, precision, types

    assert set(get_args(types.GradName)) == set(gradients.NAMES)
    assert set(get_args(types.PrecisionName)) == set(precision.POLICIES)
    hints = {f.name: f.type for f in dataclasses.fields(spec.SweepSpec)}
    assert (hints["grad"], hints["precision"], hints["record"], hints["kernel"]) == (
        "GradName",
        "PrecisionName",
        "RecordName",
        "KernelName",
    )
    assert not [name for name, hint in hints.items() if hint == "Any"]


def test_a_spec_is_hashable_and_equal_to_a_spec_with_equal_values():
    import jax.numpy as jnp
    import numpy as np

    a = spec.build("linear", [0.1, 1.0], variables=["loss"], optimizer_axes={"momentum": [0.0, 0.9]}, problem_seed=2)
    b = spec.build("linear", (0.1, 1.0), variables="loss", optimizer_axes={"momentum": (0.0, 0.9)}, problem_seed=[0, 1])
    assert a[0] == b[0] and hash(a[0]) == hash(b[0]) and len({a[0], b[0]}) == 1
    assert a[0].lr == [0.1, 1.0] and b[0].lr == (0.1, 1.0)  # kept as given: the canonical spec reads them
    assert a[0] != spec.build("linear", [0.1, 2.0], variables=["loss"])[0]
    # Arrays (numpy or JAX) by their values, dtype included; group order matters (it orders the dims).
    init = {"w": jnp.zeros(3), "b": jnp.ones(3)}
    c = spec.build("linear", np.array([0.1, 1.0]), init=init)[0]
    assert (
        c
        == spec.build("linear", np.array([0.1, 1.0]), init={"w": np.zeros(3, np.float32), "b": np.ones(3, np.float32)})[
            0
        ]
    )
    assert c != spec.build("linear", np.array([0.1, 1.0], np.float32), init=init)[0]
    assert {c: 1}[spec.build("linear", np.array([0.1, 1.0]), init=dict(init))[0]] == 1
    assert spec.build("linear", {"w": 0.1, "b": 1.0})[0] != spec.build("linear", {"b": 1.0, "w": 0.1})[0]
    # A problem object by identity, as Problem itself compares.
    problem = lrsweep.problems.linear()
    assert spec.build(problem, 0.1)[0] == spec.build(problem, 0.1)[0] != spec.build(lrsweep.problems.linear(), 0.1)[0]
