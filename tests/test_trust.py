"""A problem named by a string runs only code that was marked to be run; everything else is refused
before it is called. And a Problem refuses data, parameters and losses that are not real numbers."""

import importlib.metadata
import sys
import textwrap
import uuid

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lrsweep
from lrsweep import cli, problems
from lrsweep.problems import registry

MARK = "decorate it with @lrsweep.problem_factory"

# A module with one unmarked function that leaves a sentinel file if it is ever called, a marked
# factory that returns the wrong thing, and a marked factory that works.
SOURCE = """
import pathlib

import numpy as np

import lrsweep


def unmarked(**kwargs):
    pathlib.Path({sentinel!r}).write_text("called")
    return lrsweep.problems.linear()


@lrsweep.problems.problem_factory
def forty_two():
    return 42


@lrsweep.problems.problem_factory
def line(slope=2.0, seed=0):
    x = np.arange(1.0, 4.0) + seed
    return lrsweep.Problem("line", lambda p, x, y: (p["a"] * x - y) ** 2, x, slope * x, {{"a": np.float32(0.0)}})


a_problem = lrsweep.problems.linear()
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``(name, path, sentinel)`` of a fresh module in tmp_path, which is the current directory."""
    name = f"userprob_{uuid.uuid4().hex[:8]}"
    sentinel = tmp_path / "called.txt"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(SOURCE.format(sentinel=str(sentinel))))
    monkeypatch.chdir(tmp_path)
    yield name, path, sentinel
    sys.modules.pop(name, None)


HOSTILE = ["os:system", "sys:exit", "builtins:input", "subprocess:run", "os:abort", "shutil:rmtree", "builtins:eval"]


@pytest.mark.parametrize("spec", HOSTILE)
def test_library_functions_are_refused_before_they_are_called(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as err:
        problems.resolve(spec, {"command": "touch pwned"})
    module, _, attr = spec.partition(":")
    assert str(err.value) == (
        f"problem={spec!r} is refused: {module}.{attr} is not marked as a problem factory; {MARK} "
        "(or register it under the 'lrsweep.problems' entry point)"
    )
    with pytest.raises(ValueError, match="is refused"):
        problems.get(spec)
    with pytest.raises(ValueError, match="is refused"):
        problems.factory(spec)
    assert list(tmp_path.iterdir()) == []


def test_a_spec_cannot_run_a_shell_command_through_sweep_or_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"problem='os:system' is refused"):
        lrsweep.sweep("os:system", 0.1, problem_args={"command": "touch pwned"}, out=str(tmp_path / "s.zarr"))
    assert cli.main(["run", "--problem", "sys:exit", "--quiet"]) == 2
    assert "problem='sys:exit' is refused" in capsys.readouterr().err
    (tmp_path / "spec.toml").write_text('problem = "os:system"\nlr = 0.1\n[problem_args]\ncommand = "touch pwned"\n')
    assert cli.main(["run", "spec.toml", "--quiet"]) == 2
    assert "problem='os:system' is refused" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


@pytest.mark.parametrize("form", ["module", "file"])
def test_an_unmarked_user_function_is_refused_and_never_called(user_module, form):
    name, path, sentinel = user_module
    spec = f"{name}:unmarked" if form == "module" else f"{path}:unmarked"
    shown = f"{name}.unmarked" if form == "module" else f"unmarked in {path}"
    with pytest.raises(ValueError) as err:
        problems.resolve(spec, {"slope": 1.0})
    assert str(err.value).startswith(f"problem={spec!r} is refused: {shown} is not marked as a problem factory;")
    assert not sentinel.exists()


def test_a_problem_object_in_a_module_is_not_a_factory(user_module):
    name, _, _ = user_module
    with pytest.raises(ValueError, match=rf"problem='{name}:a_problem' is refused"):
        problems.get(f"{name}:a_problem")


@pytest.mark.parametrize("form", ["module", "file"])
def test_a_marked_factory_must_return_a_problem(user_module, form):
    name, path, _ = user_module
    spec = f"{name}:forty_two" if form == "module" else f"{path}:forty_two"
    with pytest.raises(ValueError) as err:
        problems.resolve(spec)
    assert str(err.value) == f"problem={spec!r} is invalid: its factory returned int, not an lrsweep.Problem"


@pytest.mark.parametrize("form", ["module", "file"])
def test_a_marked_factory_works_with_args_and_seed(user_module, form):
    name, path, _ = user_module
    spec = f"{name}:line" if form == "module" else f"{path}:line"
    p = problems.resolve(spec, {"slope": 3.0}, seed=1)
    assert p.name == "line"
    np.testing.assert_array_equal(p.x, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(p.y, [6.0, 9.0, 12.0])
    assert problems.get(spec).y.tolist() == [2.0, 4.0, 6.0]
    with pytest.raises(ValueError, match=rf"problem={spec!r} does not take the arguments \['width'\]"):
        problems.resolve(spec, {"width": 3})


def test_module_function_finds_a_module_in_the_current_directory_only_for_that_import(user_module):
    name, _, _ = user_module
    path_before = list(sys.path)
    assert problems.get(f"{name}:line").name == "line"
    assert sys.path == path_before


def test_a_file_is_loaded_under_its_own_name_once_per_version(user_module):
    _, path, _ = user_module
    a, b = problems.factory(f"{path}:line"), problems.factory(f"{path}:line")
    assert a is b and a.__module__.startswith("_lrsweep_problem_file_")
    assert a.__module__ in sys.modules


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("path/that/does/not/exist.py:f", "could not be loaded: path/that/does/not/exist.py is not a Python file"),
        ("no_such_module_xyz:f", "could not be loaded: ModuleNotFoundError"),
        ("os:no_such_function", "could not be found: os has no attribute 'no_such_function'"),
        ("os:", "with a function name after the last ':'"),
        (":system", "with a function name after the last ':'"),
        ("os:system()", "with a function name after the last ':'"),
        ("..os:system", "is not a module name"),
        ("nope", "is not a built-in or registered problem"),
    ],
)
def test_names_that_do_not_name_a_factory(spec, fragment):
    with pytest.raises(ValueError) as err:
        problems.resolve(spec)
    assert str(err.value).startswith(f"problem={spec!r}") and fragment in str(err.value)


def test_a_file_that_fails_to_run_is_reported(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import lrsweep\n\n\n@lrsweep.problem_factory\ndef f():\n    pass\n\n\nraise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match=r"could not be loaded: RuntimeError: boom"):
        problems.resolve(f"{bad}:f")


def test_plain_names_import_nothing():
    # "this" is a standard module that prints the Zen of Python when it is imported.
    sys.modules.pop("this", None)
    for name in ("this", "antigravity", "os", "subprocess.run"):
        with pytest.raises(ValueError, match="is not a built-in or registered problem"):
            problems.resolve(name)
    assert "this" not in sys.modules and "antigravity" not in sys.modules


def test_registered_entry_points_are_trusted(user_module, monkeypatch):
    name, _, sentinel = user_module
    group = problems.ENTRY_POINT_GROUP
    eps = [
        importlib.metadata.EntryPoint("myline", f"{name}:line", group),
        importlib.metadata.EntryPoint("broken", "no_such_module_xyz:make", group),
    ]
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)
    monkeypatch.syspath_prepend(str(sentinel.parent))
    assert problems.registered() == ["broken", "myline"]
    assert problems.resolve("myline", {"slope": 5.0}).y.tolist() == [5.0, 10.0, 15.0]
    with pytest.raises(ValueError, match=r"problem='broken' could not be loaded from its entry point"):
        problems.resolve("broken")
    with pytest.raises(ValueError, match=r"a registered name \['broken', 'myline'\]"):
        problems.resolve("nope")


def test_builtins_are_marked_and_importable_by_module_path():
    for name, make in problems.BUILTINS.items():
        assert problems.is_problem_factory(make), name
    q = problems.resolve("lrsweep.problems:quadratic", {"dim": 3, "cond": 100.0})
    np.testing.assert_array_equal(q.x, problems.quadratic(dim=3, cond=100.0).x)


def test_the_mark_is_a_functions_own_attribute():
    class Liar:
        def __getattr__(self, _name):
            return True

        def __call__(self):
            return problems.linear()

    assert not problems.is_problem_factory(Liar())
    with pytest.raises(ValueError, match="problem_factory decorates a function"):
        problems.problem_factory(Liar())

    def f():
        return problems.linear()

    f.__lrsweep_problem_factory__ = 1  # truthy, but not the mark
    assert not problems.is_problem_factory(f)
    assert problems.problem_factory(f) is f and problems.is_problem_factory(f)


def test_a_problem_object_passes_through_but_takes_no_arguments():
    p = problems.linear()
    assert problems.resolve(p) is p
    with pytest.raises(ValueError, match="problem_args and problem_seed need a problem given by name"):
        problems.resolve(p, {"dim": 2})
    with pytest.raises(ValueError, match="problem_args and problem_seed need a problem given by name"):
        problems.resolve(p, seed=0)
    with pytest.raises(ValueError, match=r"problem=42 is invalid"):
        problems.resolve(42)


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"dim": float("nan")}, "problem_args['dim']=nan is invalid: numbers must be finite"),
        ({"dim": float("inf")}, "numbers must be finite"),
        ({"dim": 2**60}, "at most 2**53"),
        ({"dim": np.ones(3)}, "a ndarray is not data a spec can hold"),
        ({"dim": lambda: 3}, "a function is not data a spec can hold"),
        ({"dim": {1, 2}}, "a set is not data a spec can hold"),
        ({"dim": [1, [2, object()]]}, "problem_args['dim[1][1]']"),
        ({"dim": {"a": {1: 2}}}, "dict keys must be strings"),
        ({"not an identifier": 1}, "problem_args key 'not an identifier' is invalid"),
        ([("dim", 2)], "expected a dict of keyword arguments"),
    ],
)
def test_problem_arguments_are_json_like_data(args, fragment):
    with pytest.raises(ValueError) as err:
        problems.resolve("quadratic", args)
    assert fragment in str(err.value)


def test_arguments_a_factory_does_not_take_are_named():
    with pytest.raises(ValueError, match=r"problem='linear' does not take the arguments \['dim'\]"):
        problems.resolve("linear", {"dim": 3})
    with pytest.raises(ValueError, match=r"problem='linear' does not take the arguments \['seed'\]"):
        problems.resolve("linear", seed=0)
    with pytest.raises(ValueError, match=r"problem_seed=-1 is invalid"):
        problems.resolve("quadratic", seed=-1)
    with pytest.raises(ValueError, match=r"problem_args sets seed=1 and problem_seed=2"):
        problems.resolve("quadratic", {"seed": 1}, seed=2)
    # Good arguments reach the factory, ints as ints and numpy scalars as Python numbers.
    q = problems.resolve("quadratic", {"dim": np.int64(4), "cond": 10}, seed=3)
    np.testing.assert_array_equal(q.x, problems.quadratic(dim=4, cond=10.0, seed=3).x)


# -- Problem checks -------------------------------------------------------------------------------


def _base(**kwargs):
    base = dict(
        name="mine",
        loss=lambda p, x, y: (p["a"] * x - y) ** 2,
        x=np.arange(3.0),
        y=np.arange(3.0),
        init={"a": np.float32(0.0)},
    )
    return {**base, **kwargs}


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"loss": lambda p, x, y: (p["a"] * x - y) ** 2 > 1.0}, "returns dtype bool"),
        ({"loss": lambda p, x, y: jnp.int32(1)}, "returns dtype int32"),
        ({"loss": lambda p, x, y: (p["a"] * x - y) ** 2 + 1j}, "returns dtype complex64"),
        ({"init": {"a": np.float32(np.nan)}}, "init parameter 'a' contains NaN or infinite values"),
        ({"init": {"a": np.array([1.0, np.inf])}}, "contains NaN or infinite values"),
        ({"init": {"a": np.True_}}, "init parameter 'a' has dtype bool"),
        ({"init": {"a": np.int32(1)}}, "has dtype int32"),
        (
            {"init": {"a": np.ma.masked_array([1.0, 2.0], mask=[False, True])}},
            "init parameter 'a' is a numpy masked array",
        ),
        ({"x": np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])}, "x is a numpy masked array"),
        ({"y": np.ma.masked_array([1.0, 2.0, 3.0])}, "y is a numpy masked array"),
        ({"x": np.array([True, False, True])}, "x has dtype bool"),
        ({"y": np.array([1, 2, 3]) + 0j}, "y has dtype complex128"),
        ({"x": np.array(["a", "b", "c"])}, "x has dtype <U1"),
        ({"init": None, "sampler": None, "loss": "loss"}, "loss='loss' is invalid"),
        ({"init": lambda k: {"a": jnp.full((), jnp.nan)}}, "init parameter 'a' contains NaN"),
        (
            {"sampler": lambda k: {"a": jax.random.normal(k, ()) * jnp.inf}},
            "the sampler's draw from key(0) parameter 'a' contains NaN",
        ),
    ],
)
def test_problem_refuses_what_is_not_a_real_number(kwargs, fragment):
    with pytest.raises(ValueError, match="problem 'mine'") as err:
        lrsweep.Problem(**_base(**kwargs))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.float32, jnp.float64])
def test_problem_accepts_real_floating_losses(dtype):
    with jax.enable_x64(True):
        p = lrsweep.Problem(**_base(loss=lambda p, x, y: ((p["a"] * x - y) ** 2).astype(dtype)))
    assert p.name == "mine"


def test_problem_accepts_integer_data_and_keeps_it():
    p = lrsweep.Problem(**_base(x=np.arange(3), y=np.arange(3)))
    assert p.x.dtype.kind == "i"


@pytest.mark.parametrize("name", ["", None, 3])
def test_problem_name_is_a_string(name):
    with pytest.raises(ValueError, match="Problem name="):
        lrsweep.Problem(**_base(name=name))
