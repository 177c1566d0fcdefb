"""Schedules (the swept lr is the peak) and optax optimizers by name: every config equals plain optax."""

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep
from lrsweep import cli, engine, identity, optimizers, precision, problems, schedules, spec, spec_sources

PROBLEM = problems.quadratic(dim=3, cond=10.0, seed=1)
LRS = [0.01, 0.05, 0.2]
EPOCHS = 40


def optax_one_config(tx, epochs, policy_name="float32"):
    """Plain optax on one config, op by op, in the policy's dtype: the reference trajectory of p."""
    policy = precision.get(policy_name)
    with policy.context():
        loss = engine.loss_of(PROBLEM, policy)
        params = {"p": jnp.asarray(PROBLEM.init["p"], policy.compute_dtype)}
        state = tx.init(params)
        out = [params["p"]]
        for _ in range(epochs):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = cast(dict, optax.apply_updates(params, updates))
            out.append(params["p"])
        return np.asarray(jnp.stack(out))


# Tolerances: p is of order 1. In float32 the op-by-op reference and the compiled sweep round
# differently (a few float32 ulps per step: the same gap as without a schedule). optax computes its
# schedules in float32 even in x64 mode, where the sweep multiplies a float32 unit(t) by a float64 lr
# and the reference rounds lr * unit(t) to float32: 1e-8 relative in lr_t, amplified by Adam.
ATOL = {"float32": 1e-5, "float64": 1e-7}


@pytest.mark.parametrize("policy", ["float32", "float64"])
def test_adam_warmup_cosine_sweep_equals_optax_one_config_at_a_time(policy):
    ds = lrsweep.sweep(
        PROBLEM, LRS, epochs=EPOCHS, optimizer="adam", schedule="warmup_cosine", schedule_kwargs={"warmup": 8},
        precision=policy,
    )  # fmt: skip
    assert ds.attrs["schedule"] == "warmup_cosine"
    for k, lr in enumerate(LRS):
        ref = optax_one_config(optax.adam(optax.warmup_cosine_decay_schedule(0.0, lr, 8, EPOCHS)), EPOCHS, policy)
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=0, atol=ATOL[policy])


def test_the_default_warmup_is_a_tenth_of_the_run_and_gd_takes_a_schedule():
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer="gd", schedule="warmup_cosine", precision="float64")
    for k, lr in enumerate(LRS):
        schedule = optax.warmup_cosine_decay_schedule(0.0, lr, EPOCHS // 10, EPOCHS)
        ref = optax_one_config(optax.sgd(schedule), EPOCHS, "float64")
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=0, atol=ATOL["float64"])


def numpy_unit(name, t, total, **kw):
    """The documented unit schedules, written out in numpy (module docstring of lrsweep.schedules)."""
    if name == "warmup_linear":
        w, end = kw.get("warmup", total // 10), kw.get("end", 0.0)
        return np.where(t < w, t / max(w, 1), 1 + (end - 1) * (t - w) / (total - w))
    if name == "exponential":
        return kw.get("end", 0.01) ** (t / total)
    if name == "step":
        return kw.get("factor", 0.1) ** np.floor(t / kw.get("every", max(1, total // 3)))
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name,kwargs",
    [("warmup_linear", {}), ("warmup_linear", {"warmup": 5, "end": 0.5}), ("exponential", {}), ("step", {"every": 7})],
)
def test_unit_schedules_peak_at_one_and_follow_their_formulas(name, kwargs):
    unit = schedules.resolve(name, kwargs, EPOCHS).unit()
    assert unit is not None
    t = np.arange(EPOCHS)
    values = np.asarray(unit(t), np.float64)
    np.testing.assert_allclose(values, numpy_unit(name, t, EPOCHS, **kwargs), rtol=1e-6, atol=1e-7)
    assert values.max() == pytest.approx(1.0)


def builtin_edges():
    """Every built-in schedule at the edges of its keyword arguments, over runs of 1 to 101 updates."""
    for total in (1, 2, 10, 101):
        warmups = sorted({0, 1, total // 10, total - 1} & set(range(total)))
        for end in (0.0, 0.3, 1.0):
            yield from (
                (name, {"warmup": w, "end": end}, total) for name in ("warmup_cosine", "warmup_linear") for w in warmups
            )
        yield from (("exponential", {"end": end}, total) for end in (0.0, 1e-30, 0.01, 1.0))
        yield from (
            ("step", {"every": e, "factor": f}, total)
            for e in sorted({1, max(1, total // 3), total})
            for f in (0.0, 0.1, 1.0)
        )


def test_a_builtin_schedule_needs_no_evaluation_its_kwargs_bound_its_values():
    # resolve() builds a built-in without evaluating it (each eager operation would compile on its
    # first use): its checked kwargs must guarantee what the evaluation checks for optax:NAME schedules.
    cases = list(builtin_edges())
    assert len(cases) > 100
    for name, kwargs, total in cases:
        unit = schedules.resolve(name, kwargs, total).unit()
        assert unit is not None
        t = np.minimum(np.arange(128), total - 1)  # every update of the run; one shape for every case
        values = np.asarray(unit(t), np.float64)
        assert np.all(np.isfinite(values)) and values.min() >= 0, (name, kwargs, total)
        assert abs(values.max() - 1.0) <= schedules.PEAK_RTOL, (name, kwargs, total, values.max())


def test_an_optax_schedule_by_name_is_filled_and_scaled_by_the_lr():
    kw = {"end_value": 0.0, "power": 2.0}
    opt = optimizers.get("sgd", schedule="optax:polynomial_schedule", schedule_kwargs=kw, steps=EPOCHS)
    assert dict(opt.schedule.kwargs) == {**kw, "init_value": 1.0, "transition_steps": EPOCHS}
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer="sgd", schedule="optax:polynomial_schedule",
                       schedule_kwargs=kw, precision="float64")  # fmt: skip
    for k, lr in enumerate(LRS):
        ref = optax_one_config(optax.sgd(optax.polynomial_schedule(lr, 0.0, 2.0, EPOCHS)), EPOCHS, "float64")
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=0, atol=ATOL["float64"])


@pytest.mark.parametrize("name,factory", [("adamw", optax.adamw), ("optax:lion", optax.lion)])
def test_any_optax_optimizer_by_name(name, factory):
    ds = lrsweep.sweep(PROBLEM, LRS, epochs=EPOCHS, optimizer=name, optimizer_kwargs={"b1": 0.8})
    assert ds.attrs["optimizer"] == name
    for k, lr in enumerate(LRS):
        ref = optax_one_config(factory(learning_rate=lr, b1=0.8), EPOCHS)
        np.testing.assert_allclose(ds.p.isel(lr=k, init=0).values, ref, rtol=0, atol=ATOL["float32"])


def test_constant_gd_stays_on_the_built_in_path():
    assert optimizers.get("gd").is_gd and optimizers.get("gd", schedule="constant", steps=10).is_gd
    assert not optimizers.get("gd", schedule="step", steps=10).is_gd


def test_one_compile_for_every_peak_lr():
    kw: dict[str, Any] = dict(epochs=7, optimizer="adam", schedule="warmup_cosine", record="summary")
    lrsweep.sweep(PROBLEM, np.geomspace(1e-2, 1, 50), **kw)
    before = engine.run_chunk._cache_size()  # pyright: ignore[reportAttributeAccessIssue] - jit's private cache counter, not in the stubs
    lrsweep.sweep(PROBLEM, np.geomspace(1e-3, 1, 50), **kw)
    assert engine.run_chunk._cache_size() == before  # pyright: ignore[reportAttributeAccessIssue] - as above


def branching_factory(learning_rate):
    # optax's warmup_cosine_decay_schedule tests `peak_value == 0` in Python: a traced lr cannot pass.
    return optax.adam(optax.warmup_cosine_decay_schedule(0.0, learning_rate, 2, 10))


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"optimizer": branching_factory}, "optimizer='branching_factory' cannot be swept"),
        ({"optimizer": "nesterov", "optimizer_axes": {"nesterov": [0, 1]}}, "the swept ['nesterov']"),
        ({"optimizer": "adamq"}, "optimizer='adamq' is invalid: expected one of"),
        ({"optimizer": "optax:nope"}, "optimizer='optax:nope'"),
        ({"schedule": "cosine"}, "schedule='cosine' is invalid: expected one of ['constant'"),
        ({"schedule": "optax:nope"}, "schedule='optax:nope'"),
        ({"schedule": "warmup_cosine", "schedule_kwargs": {"warmpu": 3}}, "it takes ['end', 'warmup']"),
        ({"schedule": "warmup_cosine", "schedule_kwargs": {"warmup": 50}}, "schedule_kwargs['warmup']=50"),
        ({"schedule": "step", "schedule_kwargs": {"factor": 2.0}}, "schedule_kwargs['factor']=2.0"),
        ({"schedule": "constant", "schedule_kwargs": {"warmup": 3}}, "takes none"),
        (
            {"schedule": "optax:linear_schedule", "schedule_kwargs": {"init_value": 0.5, "end_value": 0.1}},
            "peaks at 0.5",
        ),
        ({"schedule": "optax:linear_schedule", "schedule_kwargs": {"bogus": 1}}, "building it failed"),
    ],
)
def test_bad_optimizers_and_schedules_are_one_line_before_the_sweep(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        lrsweep.sweep(PROBLEM, 0.1, epochs=20, **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_the_command_line_takes_optax_names_and_schedules(capsys):
    argv = ["run", "--lr", "log:1e-3:1:8", "--epochs", "50", "--quiet", "--problem", "quadratic"]
    for extra in (["--optimizer", "adamw"], ["--optimizer", "optax:lion"]):
        assert cli.main(argv + extra) == 0
    assert (
        cli.main(argv + ["--optimizer", "adam", "--schedule", "warmup_cosine", "--schedule-kwargs", "warmup=10"]) == 0
    )
    assert "optimizer adam" in capsys.readouterr().out
    assert cli.main(argv + ["--schedule", "warmup_cosine", "--schedule-kwargs", "warmup=100"]) == 2
    assert "schedule_kwargs['warmup']=100" in capsys.readouterr().err


def test_a_toml_spec_takes_a_schedule_and_old_stores_resume(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('optimizer = "adamw"\nschedule = "warmup_cosine"\n[schedule_kwargs]\nwarmup = 5\n')
    values = spec_sources.load_toml(path)
    assert values["schedule"] == "warmup_cosine" and values["schedule_kwargs"] == {"warmup": 5}
    # A store made before these settings existed lacks them; it resumes unless the sweep sets them.
    current = identity.canonical(spec.build("linear", 0.1)[0])
    stored = {k: v for k, v in current.items() if k not in ("schedule", "schedule_kwargs")}
    assert identity.stored_differences(stored, current) == []
    changed = identity.canonical(spec.build("linear", 0.1, schedule="step")[0])
    assert identity.stored_differences(stored, changed) == ['schedule: "constant" vs "step"']
