"""The fused Pallas kernel (interpreted on CPU) against the XLA path."""

import numpy as np
import pytest

import lrsweep
from lrsweep import engine, problems

CASES = {
    "lesson forward mixed": ("linear", dict(grad="forward", precision="mixed")),
    "lesson autodiff float32": ("linear", dict(grad="autodiff", precision="float32")),
    "chapter_net forward": ("chapter_net", dict(grad="forward", precision="float32")),
    "quadratic momentum": ("quadratic", dict(optimizer="momentum", precision="float32")),
}
LRS = {"linear": "log:1e-3:1:256", "chapter_net": "log:1e-2:10:256", "quadratic": "log:1e-3:1:256"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_interpreted_kernel_equals_the_xla_path(case):
    name, kw = CASES[case]
    xla = lrsweep.sweep(
        name, LRS[name], epochs=150, record="summary", kernel="xla", chunk_size=256, track_best=True, **kw
    )
    fused = lrsweep.sweep(
        name, LRS[name], epochs=150, record="summary", kernel="pallas-interpret", chunk_size=256, track_best=True, **kw
    )
    np.testing.assert_array_equal(fused.outcome.values, xla.outcome.values)
    np.testing.assert_array_equal(fused.event_epoch.values, xla.event_epoch.values)
    np.testing.assert_array_equal(fused.best_epoch.values, xla.best_epoch.values)
    for var in ("score", "best_loss"):
        np.testing.assert_allclose(fused[var].values, xla[var].values, rtol=1e-5, atol=1e-7)
    finite = np.isfinite(xla.loss.values)
    np.testing.assert_array_equal(np.isfinite(fused.loss.values), finite)
    np.testing.assert_allclose(fused.loss.values[finite], xla.loss.values[finite], rtol=1e-5, atol=1e-7)
    for var in problems.param_names(problems.get(name).init):
        ok = np.isfinite(xla[var].values)
        np.testing.assert_allclose(fused[var].values[ok], xla[var].values[ok], rtol=1e-5, atol=1e-6)


def test_lesson_is_still_bit_exact_through_the_kernel():
    xla = lrsweep.sweep(
        "linear",
        [0.01, 0.1, 1.0],
        epochs=1000,
        grad="forward",
        precision="mixed",
        record="summary",
        kernel="xla",
        track_best=True,
    )
    fused = lrsweep.sweep(
        "linear",
        [0.01, 0.1, 1.0],
        epochs=1000,
        grad="forward",
        precision="mixed",
        record="summary",
        kernel="pallas-interpret",
        chunk_size=128,
        track_best=True,
    )
    for var in ("w", "b", "loss", "score", "best_loss", "best_epoch", "outcome", "event_epoch"):
        np.testing.assert_array_equal(fused[var].values, xla[var].values)


def test_auto_uses_xla_on_cpu_and_the_kernel_only_where_it_applies():
    st = engine.Static(problems.linear().loss, 4, "autodiff", lrsweep.precision.get("float32"), 10, "summary", 1)
    assert engine.kernel_path(st, 1024) == "xla"  # CPU backend
    assert engine.fusable(st)
    assert not engine.fusable(engine.Static(st.loss, 4, "autodiff", st.policy, 10, "trajectory", 1))
    assert not engine.fusable(engine.Static(st.loss, 64, "autodiff", st.policy, 10, "summary", 1))
    with pytest.raises(ValueError, match=r"kernel='pallas'.*summary records"):
        lrsweep.sweep("linear", 0.1, epochs=5, record="trajectory", kernel="pallas")
    with pytest.raises(ValueError, match="kernel='cuda'"):
        lrsweep.sweep("linear", 0.1, epochs=5, kernel="cuda")
