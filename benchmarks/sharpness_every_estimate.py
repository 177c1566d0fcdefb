"""How close every estimate of ``track_sharpness`` is, not only a few (docs/sharpness.md).

The gallery's 64-32-10 tanh network on 256 digits (``lrsweep.gallery.edge``), full-batch gradient
descent at lr 0.3, 0.4 and 0.5 (2 / lr = 6.7, 5 and 4: all three reach the edge of stability) for
800 steps, float32, ``sharpness_every=10`` and the default ``sharpness_iters``. Reference at every
estimated step: ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos, ``which="LA"``, tol
1e-10) on float64 Hessian-vector products at the parameters the sweep recorded (a trajectory with
``every=10`` keeps exactly the estimated steps). Prints the error distribution and the worst steps:

    python benchmarks/sharpness_every_estimate.py > benchmarks/results/sharpness-every-estimate.txt
"""

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.sparse.linalg import LinearOperator, eigsh

import lrsweep
from lrsweep import engine, precision, sharpness
from lrsweep.gallery import edge

LRS, STEPS, EVERY = [0.3, 0.4, 0.5], 800, 10


def main() -> None:
    p = edge.digits_problem()
    names = lrsweep.problems.param_names(p.init)
    ds = lrsweep.sweep(p, LRS, epochs=STEPS, every=EVERY, track_sharpness=True, sharpness_every=EVERY, progress=False)
    f64 = precision.get("float64")
    with f64.context():
        loss = engine.loss_of(p, f64)
        unravel = ravel_pytree({k: jnp.asarray(ds[k].values[0, 0, 0], jnp.float64) for k in names})[1]
        grad = jax.grad(lambda v: loss(unravel(v)))
        hvp = jax.jit(lambda flat, v: jax.jvp(grad, (flat,), (v,))[1])

    def reference(params) -> float:
        with f64.context():
            flat = ravel_pytree({k: jnp.asarray(v, jnp.float64) for k, v in params.items()})[0]
            op = cast(Any, LinearOperator)(  # scipy's stubs do not know these keywords
                (flat.size, flat.size),
                matvec=lambda v: np.asarray(hvp(flat, jnp.asarray(v, jnp.float64))),
                dtype=np.float64,
            )
            return float(cast(Any, eigsh)(op, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0])

    print(f"# {(__doc__ or '').splitlines()[0]}")
    print(
        f"# lrs {LRS}, {STEPS} steps, sharpness_every {EVERY}, sharpness_iters {ds.attrs['sharpness_iters']} (at most),"
    )
    print(f"# stopping at relative residual {sharpness.RTOL:g}; reference: eigsh (Lanczos), float64")
    errs, rows = [], []
    for i, lr in enumerate(LRS):
        for s in ds.sharpness_step.values:
            ref = reference({k: ds[k].isel(lr=i, init=0).sel(epoch=s).values for k in names})
            est = float(ds.sharpness.isel(lr=i, init=0).sel(sharpness_step=s))
            errs.append(abs(est - ref) / ref)
            rows.append((errs[-1], lr, int(s), est, ref))
    errs = np.array(errs)
    print(f"estimates: {errs.size}")
    for q in (50, 90, 99, 100):
        print(f"relative error, {q}th percentile: {np.percentile(errs, q):.1e}")
    for tol in (1e-4, 1e-3, 1e-2):
        print(f"estimates off by more than {tol:g}: {int((errs > tol).sum())}")
    print("worst five (error, lr, step, estimate, reference):")
    for r in sorted(rows, reverse=True)[:5]:
        print(f"  {r[0]:.1e}  lr {r[1]}  step {r[2]}  {r[3]:.4f}  {r[4]:.4f}")


if __name__ == "__main__":
    main()
