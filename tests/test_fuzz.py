"""A small seeded fuzz of spec files and ``lrsweep run`` flags: every input ends with status 0 or 2
and, for 2, one line on stderr; never a traceback. The sweep is planned (every check runs) and
stopped before anything is compiled or computed, so a case costs milliseconds."""

import random

import pytest

from lrsweep import cli, planner, spec_sources
from lrsweep import spec as spec_mod

KEYS = [name for name, meta in spec_mod.settings().items() if meta.toml] + ["bogus", "lr.x", "out"]
FLAGS = ["--" + name.replace("_", "-") for name, meta in spec_mod.settings().items() if meta.flag]
NASTY_STRINGS = [
    "",
    " ",
    "linear",
    "mlp",
    "os:system",
    "this:x",
    "evil.py:make",
    "log:1e-4:1:8",
    "lin:0:1:3",
    "log:1:0:5",
    "log:1e-4:10:99999999999999999999",
    "\x1b[2J",
    "\u202e",
    "a" * 300,
    "1e-40",
    "nan",
    "inf",
    "-1",
    "0",
    "W0=log:0.1:1:4",
    "a=b=c",
    "dim=3",
    "\x00",
    "64MB",
    "1e400",
    "tcp://127.0.0.1:1",
]
NUMBERS = [0, 1, -1, 3, 8, 2**31, 2**64, 10**30, 1e-40, 1e-320, 1e300, 0.5, -0.0, True, False]


def _value(rng: random.Random, depth: int = 0):
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(NASTY_STRINGS)
    if kind < 0.75:
        return rng.choice(NUMBERS)
    if kind < 0.9 and depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3:
        return {rng.choice(["w", "b", "grid", "dim", "x"]): _value(rng, depth + 1) for _ in range(rng.randint(0, 2))}
    return rng.choice(NASTY_STRINGS)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return {"inf": "inf", "nan": "nan"}.get(text, text)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


def _spec_file(rng: random.Random) -> str:
    lines = ['problem = "linear"', "epochs = 2"] if rng.random() < 0.5 else []
    for key in rng.sample(KEYS, rng.randint(1, 4)):
        lines.append(f"{key} = {_toml(_value(rng))}")
    return "\n".join(lines) + "\n"


def _flags(rng: random.Random) -> list[str]:
    argv = []
    for flag in rng.sample(FLAGS, rng.randint(1, 4)):
        argv += [flag] if rng.random() < 0.2 else [flag, str(rng.choice(NASTY_STRINGS + NUMBERS))]
    return argv


class _Planned(Exception):
    """Raised once every check passed: the fuzz stops before compiling."""


@pytest.fixture
def plan_only(monkeypatch):
    def prepare(settings, verbose):
        rest = {k: v for k, v in settings.items() if k not in ("problem", "lr")}
        planner.plan(*spec_mod.build(settings["problem"], settings["lr"], **rest))
        raise _Planned

    monkeypatch.setattr(cli, "_prepare", prepare)


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_spec_files_and_flags_end_in_status_0_or_one_line(seed, tmp_path, monkeypatch, capsys, plan_only):
    rng = random.Random(seed)
    monkeypatch.chdir(tmp_path)
    for case in range(25):
        argv = ["run"]
        if rng.random() < 0.6:
            (tmp_path / "s.toml").write_text(_spec_file(rng))
            argv.append("s.toml")
        if rng.random() < 0.7:
            argv += _flags(rng)
        argv += ["--quiet"]
        try:
            code = cli.main(argv)
        except _Planned:
            code = 0
        except SystemExit as stop:  # argparse
            code = stop.code
        _, err = capsys.readouterr()
        shown = f"case {seed}/{case}: {argv!r} with {(tmp_path / 's.toml').read_text() if 's.toml' in argv else ''!r}"
        assert "Traceback" not in err, shown + err
        assert code in (0, 2), shown + err
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("lrsweep: error: "), shown + err
            assert "\x1b" not in err, shown


def test_the_fuzz_reaches_every_kind_of_spec_key():
    # The generator covers every TOML key of a spec, so a new setting is fuzzed too.
    assert set(KEYS) >= {n for n, m in spec_mod.settings().items() if m.toml}
    assert set(spec_sources.PLACE_KEYS) - {"client"} <= set(KEYS)
