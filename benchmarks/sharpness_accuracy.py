"""How many Hessian-vector products an estimate of ``track_sharpness`` needs (docs/sharpness.md).

The gallery's 64-32-10 tanh network on 256 digits (``lrsweep.gallery.edge``; needs scikit-learn),
full-batch gradient descent at lr 0.35 and 0.5 for 1000 steps, float32. At steps 0, 100, 300, 500,
700 and 990 the dense Hessian's eigenvalues (``lrsweep.theory.eigenvalues``, float64) at the
recorded parameters are the reference; each ``sharpness_iters`` is one sweep with
``sharpness_every=10``. Prints the table that docs/sharpness.md quotes:

    python benchmarks/sharpness_accuracy.py > benchmarks/results/sharpness-accuracy.txt
"""

import time

import numpy as np

import lrsweep
from lrsweep.gallery import edge

LRS, EPOCHS, CHECKS = [0.35, 0.5], 1000, [0, 100, 300, 500, 700, 990]


def main() -> None:
    p = edge.digits_problem()
    names = lrsweep.problems.param_names(p.init)
    base = lrsweep.sweep(p, LRS, epochs=EPOCHS, every=10, progress=False)
    ref = {}
    for i, lr in enumerate(LRS):
        for s in CHECKS:
            ev = lrsweep.theory.eigenvalues(p, {k: base[k].isel(lr=i, init=0).sel(epoch=s).values for k in names})
            ref[lr, s] = ev
            print(f"lr {lr} step {s}: dense lambda_1 {ev[-1]:.4f}, lambda_2 {ev[-2]:.4f}, lambda_min {ev[0]:.4f}")
    print("\n| sharpness_iters | largest relative error | median | sweep time (s) |\n|---|---|---|---|")
    for iters in (3, 5, 10, 20):
        t = time.perf_counter()
        ds = lrsweep.sweep(
            p,
            LRS,
            epochs=EPOCHS,
            every=10,
            variables=["loss"],
            track_sharpness=True,
            sharpness_iters=iters,
            progress=False,
        )
        dt = time.perf_counter() - t
        errs = [
            abs(float(ds.sharpness.isel(lr=i, init=0).sel(sharpness_step=s)) - ref[lr, s][-1]) / ref[lr, s][-1]
            for i, lr in enumerate(LRS)
            for s in CHECKS
        ]
        print(f"| {iters} | {max(errs):.1e} | {np.median(errs):.1e} | {dt:.1f} |")


if __name__ == "__main__":
    main()
