"""The engine's boundary: ``Static`` by keyword, ``ChunkInputs`` matched by field name, and the shape
annotations of ``ChunkInputs`` and ``ChunkResult`` checked by ``engine.run_chunk`` while it traces."""

import re

import numpy as np
import pytest

import lrsweep
from lrsweep import engine
from lrsweep.types import ChunkInputs, ChunkResult, boundary_errors

F32 = np.float32
C, N = 8, 4


def _written(cls) -> dict[str, str]:
    """Each field's annotation as written in lrsweep/types.py (Python keeps it with single quotes)."""
    return {name: getattr(a, "__forward_arg__", a) for name, a in cls.__annotations__.items()}


def _static(**kw):
    problem = lrsweep.problems.linear()
    policy = lrsweep.precision.get("float32")
    base = dict(loss=problem.loss, n_data=problem.n_data, grad="autodiff", policy=policy, epochs=5)
    return engine.Static(**base, record="summary", window=1, **kw)


def _inputs(c: int = C) -> ChunkInputs:
    """A lesson chunk of ``c`` configs, built by hand in float32."""
    problem = lrsweep.problems.linear()
    return ChunkInputs(
        lr=np.full((c, 1), 0.05, F32),
        hyper=np.zeros((c, 0), F32),
        params0={"w": np.linspace(-1, 1, c, dtype=F32), "b": np.zeros(c, F32)},
        x=np.asarray(problem.x, F32),
        y=np.asarray(problem.y, F32),
        h=F32(1e-3),
        zero=F32(0.0),
        rtol=F32(1e-6),
        min_loss=F32(np.nan),
        plateau_rtol=F32(1e-4),
    )


def _result(c: int = C) -> ChunkResult:
    i8, i32 = np.zeros(c, np.int8), np.zeros(c, np.int32)
    return ChunkResult(
        loss=np.ones(c, F32),
        params=[np.zeros(c, F32), np.zeros(c, F32)],
        outcome=i8,
        event_epoch=i32,
        score=np.ones(c, F32),
        best_loss=np.ones(c, F32),
        best_epoch=i32,
    )


def test_static_is_built_by_keyword_only():
    problem, policy = lrsweep.problems.linear(), lrsweep.precision.get("float32")
    with pytest.raises(TypeError):
        engine.Static(problem.loss, problem.n_data, "autodiff", policy, 5, "summary", 1)  # pyright: ignore[reportCallIssue]
    assert _static().epochs == 5


def test_the_per_config_fields_are_the_ones_annotated_with_a_leading_config_axis():
    # PER_CONFIG is declared once; vmap's axes and the shardings derive from it. The annotations
    # state the same thing independently (a leading C), so the two cannot drift apart.
    written = _written(ChunkInputs)
    leading_c = {name for name, a in written.items() if re.search(r"'\s*C\b", a)}
    assert leading_c == set(ChunkInputs.PER_CONFIG)
    assert {name for name, a in written.items() if a == "Float[Scalar, '']"} == set(ChunkInputs.SCALARS)
    axes = engine.CONFIG_AXES
    assert [getattr(axes, f) for f in ChunkInputs._fields] == [
        0 if f in leading_c else None for f in ChunkInputs._fields
    ]


def test_a_chunk_and_its_result_match_the_annotations():
    inputs = _inputs()
    with lrsweep.precision.get("float32").context():
        out = engine.run_chunk(inputs, static=_static())
    assert boundary_errors(inputs, out) == []
    assert boundary_errors(inputs, _result()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", np.full(C, 0.05, F32)),  # no group axis
        ("hyper", np.zeros((C, 0), np.int32)),  # not floating
        ("params0", {"w": np.zeros(C + 1, F32), "b": np.zeros(C, F32)}),  # a leaf of another C
        ("h", np.full(2, 1e-3, F32)),  # not a scalar
        ("data_seed", F32(3.0)),  # not uint32
        ("x_eval", np.zeros((3, 2), np.int64)),
    ],
)
def test_each_field_that_breaks_its_annotation_is_named(field, value):
    errors = boundary_errors(_inputs()._replace(**{field: value}))
    assert len(errors) == 1 and errors[0].startswith(f"ChunkInputs.{field} is "), errors
    assert _written(ChunkInputs)[field] in errors[0]


def test_a_result_whose_config_axis_differs_from_its_inputs_is_refused():
    errors = boundary_errors(_inputs(), _result(C // 2))
    named = {e.split(" is ")[0] for e in errors}
    assert {"ChunkResult.loss", "ChunkResult.outcome", "ChunkResult.best_epoch"} <= named
    assert not any(e.startswith("ChunkInputs.") for e in errors)
    assert boundary_errors(_inputs(C // 2), _result(C // 2)) == []


def test_run_chunk_refuses_inputs_that_break_the_annotations():
    bad = _inputs()._replace(params0={"w": np.zeros(C + 1, F32), "b": np.zeros(C, F32)})
    with pytest.raises(AssertionError, match=r"^engine boundary: ChunkInputs\.params0 is "):
        engine.run_chunk(bad, static=_static())
