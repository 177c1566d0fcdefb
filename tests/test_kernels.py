"""The fused Pallas kernels (interpreted on CPU) against the XLA path.

Every reference is the XLA path's result for the same sweep (``kernel="xla"``), which
tests/test_engine.py and tests/test_lesson.py check against numpy and the lesson's notebook.
"""

from typing import Any

import jax
import numpy as np
import pytest

import lrsweep
from lrsweep import engine, kernel_paths, problems
from lrsweep.problems._problem import WholeBatchLoss
from lrsweep.types import KernelName

LRS = {
    "linear": "log:1e-3:1:256",
    "chapter_net": "log:1e-2:10:256",
    "quadratic": "log:1e-3:1:256",
    "logistic": "log:1e-2:100:256",
}


def _both(name, kernel, **kw):
    """The same summary sweep through the XLA path and through ``kernel``."""
    common: dict[str, Any] = dict(epochs=150, record="summary", chunk_size=256, track_best=True, **kw)
    return lrsweep.sweep(name, LRS[name], kernel="xla", **common), lrsweep.sweep(
        name, LRS[name], kernel=kernel, **common
    )


def _assert_agree(fused, xla, names):
    """Outcomes and epochs equal; losses and parameters within float32 tolerance (1e-5 relative)."""
    np.testing.assert_array_equal(fused.outcome.values, xla.outcome.values)
    np.testing.assert_array_equal(fused.event_epoch.values, xla.event_epoch.values)
    np.testing.assert_array_equal(fused.best_epoch.values, xla.best_epoch.values)
    for var in ("score", "best_loss"):
        np.testing.assert_allclose(fused[var].values, xla[var].values, rtol=1e-5, atol=1e-7)
    finite = np.isfinite(xla.loss.values)
    np.testing.assert_array_equal(np.isfinite(fused.loss.values), finite)
    np.testing.assert_allclose(fused.loss.values[finite], xla.loss.values[finite], rtol=1e-5, atol=1e-7)
    for var in names:
        ok = np.isfinite(xla[var].values)
        np.testing.assert_allclose(fused[var].values[ok], xla[var].values[ok], rtol=1e-5, atol=1e-6)


CASES = {
    "lesson forward mixed": ("linear", dict(grad="forward", precision="mixed")),
    "lesson autodiff float32": ("linear", dict(grad="autodiff", precision="float32")),
    "chapter_net forward": ("chapter_net", dict(grad="forward", precision="float32")),
    "chapter_net autodiff": ("chapter_net", dict(grad="autodiff", precision="float32")),
    "quadratic momentum": ("quadratic", dict(optimizer="momentum", precision="float32")),
    # 20 examples: beyond engine.UNROLL_MAX, summed in tree_sum's halving order (an odd count on the
    # way: 20, 10, 5); the generic kernel does not take it.
    # In float64 arithmetic: a float32 central difference turns any change of rounding (the XLA
    # path takes one dot over all examples) into a gradient error of about eps / h.
    "logistic 20 examples central": ("logistic", dict(grad="central", precision="mixed", problem_args={"n": 20})),
}
#: The cases each kernel is checked on: the per-example kernel takes them all.
KERNEL_CASES = {
    "pallas-interpret": [
        "lesson forward mixed",
        "lesson autodiff float32",
        "chapter_net forward",
        "quadratic momentum",
    ],
    "pallas-examples-interpret": sorted(CASES),
}


@pytest.mark.parametrize(
    ("kernel", "case"), [(kernel, case) for kernel, cases in KERNEL_CASES.items() for case in sorted(cases)]
)
def test_interpreted_kernel_equals_the_xla_path(kernel, case):
    name, kw = CASES[case]
    xla, fused = _both(name, kernel, **kw)
    assert fused.attrs["kernel_path"] == kernel
    _assert_agree(fused, xla, problems.param_names(problems.get(name).init))


@pytest.mark.parametrize("kernel", ["pallas-interpret", "pallas-examples-interpret"])
def test_lesson_is_still_bit_exact_through_the_kernel(kernel):
    # The finite differences are the engine's arithmetic in the engine's order: both kernels keep
    # the lesson bit-exact (hence equal to its notebook, tests/test_lesson.py).
    kw: dict[str, Any] = dict(epochs=1000, grad="forward", precision="mixed", record="summary", track_best=True)
    xla = lrsweep.sweep("linear", [0.01, 0.1, 1.0], kernel="xla", **kw)
    fused = lrsweep.sweep("linear", [0.01, 0.1, 1.0], kernel=kernel, chunk_size=128, **kw)
    for var in ("w", "b", "loss", "score", "best_loss", "best_epoch", "outcome", "event_epoch"):
        np.testing.assert_array_equal(fused[var].values, xla[var].values)


def _static(n_data=4, record="summary", grad="autodiff", loss=None, kernel: KernelName = "auto", **kw):
    loss = problems.linear().loss if loss is None else loss
    policy = lrsweep.precision.get("float32")
    return engine.Static(
        loss=loss, n_data=n_data, grad=grad, policy=policy, epochs=10, record=record, window=1, kernel=kernel, **kw
    )


def test_auto_uses_xla_on_cpu_and_the_kernel_only_where_it_applies():
    st = _static()
    assert kernel_paths.kernel_path(st, 1024) == "xla"  # CPU backend
    assert kernel_paths.fusable(st)
    assert not kernel_paths.fusable(_static(record="trajectory"))
    assert not kernel_paths.fusable(_static(n_data=64))
    with pytest.raises(ValueError, match=r"kernel='pallas'.*summary records"):
        lrsweep.sweep("linear", 0.1, epochs=5, record="trajectory", kernel="pallas")
    with pytest.raises(ValueError, match="kernel='cuda'"):
        lrsweep.sweep("linear", 0.1, epochs=5, kernel="cuda")  # pyright: ignore[reportArgumentType]


def test_the_path_chooser_picks_the_per_example_kernel_where_it_applies(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # the choice as made on a GPU
    assert kernel_paths.kernel_path(_static(), 1024) == "pallas-examples"
    assert (
        kernel_paths.kernel_path(_static(n_data=kernel_paths.EXAMPLES_MAX, grad="forward"), 1024) == "pallas-examples"
    )
    assert kernel_paths.kernel_path(_static(), 8) == "pallas-examples"  # a chunk smaller than a block is one block
    assert kernel_paths.kernel_path(_static(), 1000) == "xla"  # not a whole number of blocks
    assert kernel_paths.kernel_path(_static(record="trajectory"), 1024) == "xla"
    assert kernel_paths.kernel_path(_static(n_data=kernel_paths.EXAMPLES_MAX + 1), 1024) == "xla"
    # A whole-batch loss that the engine would use (autodiff, more than UNROLL_MAX examples): not per example.
    whole = WholeBatchLoss(problems.linear().loss, lambda p, x, y: 0.0)
    assert kernel_paths.kernel_path(_static(n_data=32, loss=whole), 1024) == "xla"
    assert kernel_paths.kernel_path(_static(n_data=32, loss=whole, grad="forward"), 1024) == "pallas-examples"
    # Asked for by name, each kernel is taken where it applies, and refused where it does not.
    assert kernel_paths.kernel_path(_static(kernel="pallas"), 1024) == "pallas"
    assert kernel_paths.kernel_path(_static(kernel="pallas-examples-interpret"), 1024) == "pallas-examples-interpret"
    with pytest.raises(ValueError, match=r"kernel='pallas-examples'.*per-example.*at most 64 examples"):
        kernel_paths.check_kernel(_static(n_data=65, kernel="pallas-examples"))
    with pytest.raises(ValueError, match=r"kernel='pallas-interpret'.*at most 16 examples"):
        kernel_paths.check_kernel(_static(n_data=32, kernel="pallas-interpret"))
    kernel_paths.check_kernel(_static(n_data=32, kernel="pallas-examples-interpret"))  # applies: no error


def test_the_per_example_kernel_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match=r"kernel='pallas-examples-interpret'.*per-example"):
        lrsweep.sweep("linear", 0.1, epochs=5, record="trajectory", kernel="pallas-examples-interpret")
    with pytest.raises(ValueError, match=r"kernel='pallas-examples'.*at most 64 examples"):
        lrsweep.sweep("logistic", 0.1, epochs=5, problem_args={"n": 65}, kernel="pallas-examples")


@pytest.mark.parametrize(("grad", "precision_name"), [("autodiff", "float32"), ("forward", "mixed")])
def test_the_per_example_kernel_lowers_to_triton_for_the_lesson(grad, precision_name):
    # No GPU needed: exporting for CUDA runs Pallas's Triton lowering of the kernel.
    problem, policy = problems.linear(), lrsweep.precision.get(precision_name)
    with policy.context():
        st = engine.Static(
            loss=problem.loss,
            n_data=problem.n_data,
            grad=grad,
            policy=policy,
            epochs=50,
            record="summary",
            window=5,
            kernel="pallas-examples",
        )
        c, dtype = 256, policy.compute_dtype.type
        params0 = {k: np.full(c, v, policy.param_dtype) for k, v in problem.init.items()}
        x, y = engine.to_compute_dtype(st, problem.x, problem.y)
        scalars = dict(h=1e-4, zero=0.0, rtol=1e-6, min_loss=0.0, plateau_rtol=1e-4)
        lr, hyper = np.full((c, 1), 0.01, dtype), np.zeros((c, 0), dtype)
        inputs = engine.ChunkInputs(
            lr=lr, hyper=hyper, params0=params0, x=x, y=y, **{k: dtype(v) for k, v in scalars.items()}
        )
        triton = jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
        run = jax.jit(lambda inputs: engine.run_chunk(inputs, static=st))
        exported = jax.export.export(run, platforms=["cuda"], disabled_checks=[triton])(inputs)
    assert "__gpu$xla.gpu.triton" in exported.mlir_module()
