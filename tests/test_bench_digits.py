"""``lrsweep bench --digits``: its baselines train what lrsweep trains, its summary memory, a tiny run."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrsweep
from lrsweep import engine
from lrsweep.bench import digits as bench_digits


def test_the_order_is_lrsweeps_documented_minibatch_order():
    n, b = 1437, bench_digits.BATCH
    order = bench_digits._order(25, n)
    per_epoch = n // b  # 11 steps; step t takes slot t mod 11 of epoch t // 11's permutation
    for t in (0, 10, 11, 24):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(0), t // per_epoch), n))
        slot = t % per_epoch
        np.testing.assert_array_equal(order[t], perm[slot * b : (slot + 1) * b])


@pytest.mark.slow
def test_the_train_function_is_plain_optax_step_by_step():
    p = lrsweep.problems.digits()
    assert p.batch_loss is not None and p.x_eval is not None and p.y_eval is not None
    steps, lr = 7, 0.01
    order = bench_digits._order(steps, p.x.shape[0])
    params = jax.tree.map(jnp.asarray, p.init)
    loss, acc = bench_digits.train_fn(p, steps)(params, jnp.float32(lr), jnp.asarray(order))
    # optax's own warmup-cosine schedule with peak lr (default warmup: a tenth of the run)
    tx = optax.adam(optax.warmup_cosine_decay_schedule(0.0, lr, steps // 10, steps))
    state = tx.init(params)
    for t in range(steps):
        g = jax.grad(p.batch_loss)(params, p.x[order[t]], p.y[order[t]])
        u, state = tx.update(g, state, params)
        params = optax.apply_updates(params, u)
    np.testing.assert_allclose(float(loss), float(p.batch_loss(params, p.x, p.y)), rtol=1e-5)
    hits = np.argmax(np.asarray(jax.vmap(lambda xi: datasets_logits(params, xi))(p.x_eval)), 1) == p.y_eval.argmax(1)
    assert float(acc) == pytest.approx(hits.mean(), abs=1e-6)


def datasets_logits(params, x):
    return jnp.tanh(x @ params["W0"] + params["b0"]) @ params["W1"] + params["b1"]


@pytest.mark.slow
def test_summary_memory_of_the_digits_case_does_not_depend_on_steps():
    p = lrsweep.problems.digits()
    mem = bench_digits._summary_bytes(p, np.geomspace(1e-3, 1, 4), 2, 30)
    assert mem["steps"] == [30, 300] and mem["independent_of_steps"]
    assert mem["bytes"][0] == mem["bytes"][1] > 0


@pytest.mark.slow
def test_a_sampler_compiles_once_across_sweeps():
    p = lrsweep.problems.digits()
    assert p.sampler is not None
    first = engine.sample_inits(p.sampler, 3, 2)
    before = engine._batched_sampler.cache_info()
    again = engine.sample_inits(p.sampler, 3, 2)
    assert engine._batched_sampler.cache_info().hits == before.hits + 1
    keys = jax.random.split(jax.random.key(3), 2)
    for k in range(2):  # each draw is the sampler's own on its key
        one = p.sampler(keys[k])
        for name in one:
            np.testing.assert_array_equal(again[name][k], first[name][k])
            np.testing.assert_allclose(again[name][k], one[name], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_a_tiny_digits_bench_agrees_and_writes_its_files(tmp_path, capsys):
    from lrsweep import bench

    code = bench.main(["--digits", "--size", "8,2,12", "--repeat", "1", "--out", str(tmp_path), "--name", "t"])
    assert code == 0
    result = json.loads((tmp_path / "digits-t.json").read_text())
    assert [r["impl"] for r in result["rows"]] == ["lrsweep", "lrsweep, default eval_every", "loop", "vmap"]
    assert result["agree"] and result["summary_memory"]["independent_of_steps"]
    assert set(result["ratios"]) == {f"lrsweep/{b} {w}" for b in ("loop", "vmap") for w in ("warm", "best", "cold")}
    assert "PyTorch" in (tmp_path / "digits-t.md").read_text()


def test_the_docs_quote_the_committed_digits_results():
    # docs/training.md reads the committed run; rerunning the bench without updating the docs fails here.
    root = Path(__file__).parent.parent
    result = json.loads((root / "benchmarks" / "results" / "digits-cpu.json").read_text())
    text = (root / "docs" / "training.md").read_text()
    rows = {r["impl"]: r for r in result["rows"]}
    quoted = [f"{rows[k]['warm_config_steps_per_s']:,.0f}" for k in ("lrsweep", "loop", "vmap")]
    quoted += [f"{100 * rows[k]['flops_fraction']:.1f}%" for k in ("lrsweep", "loop", "vmap")]
    quoted += [f"{result['ratios'][k]:.2f}x" for k in ("lrsweep/vmap warm", "lrsweep/loop warm", "lrsweep/vmap cold")]
    quoted.append(f"{result['machine']['peak']['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s")
    quoted.append(f"{1000 * rows['loop']['flops_fraction']:.0f}% of the peak")  # ten times the loop
    quoted.append(f"{result['flops_per_config_step'] / 1e6:.2f} million")
    missing = [q for q in quoted if q not in text]
    assert not missing, f"docs/training.md does not quote {missing} of benchmarks/results/digits-cpu.json"
