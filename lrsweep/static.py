"""What the engine's compiled program depends on (:class:`Static`), and one config's optimizer step
built from it (:func:`optimizer_fns`): the pieces that ``engine.train_one`` (one config, vmapped over a
chunk) and ``engine_block.train_block`` (a block of configs on per-example terms) share. ``lrsweep.engine``
re-exports both; shapes and dtypes are the engine's (its module docstring).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from . import optimizers, outcomes
from .optimizers import Optimizer
from .precision import Policy
from .types import KernelName, PyTree


@dataclasses.dataclass(frozen=True, kw_only=True)
class Static:
    """What the compiled program depends on. Hashable; equal ``Static`` never retrace. Built by keyword only.

    Attributes:
      loss: the problem's per-example loss (hashed by identity).
      n_data: number of examples.
      grad: gradient estimator name (``lrsweep.gradients``).
      policy: precision policy (``lrsweep.precision``).
      epochs: number of epochs ``E >= 1``.
      record: ``"summary"``, ``"trajectory"`` (or ``"trace"`` for ``trace_run``).
      window: epochs without a parameter change that make a run "stuck" (``lrsweep.outcomes``).
      optimizer: ``lrsweep.optimizers.Optimizer`` (default: the lesson's gradient descent).
      groups: names of the learning-rate groups, ``G`` of them.
      leaf_group: for each parameter leaf (JAX flattening order), the index of its group.
      hyper_names: optimizer hyperparameters swept per config (``H`` of them), injected into optax.
      every: a trajectory keeps every ``every``-th epoch (and the last).
      keep_loss, keep_leaves: what a trajectory keeps: the loss, and which parameter leaves.
      kernel: ``"xla"`` (``vmap`` of ``train_one``), ``"pallas"`` (the generic fused kernel of
        ``lrsweep.kernels``: ``vmap`` of ``train_one`` inside), ``"pallas-examples"`` (the fused
        kernel written on per-example terms, ``train_block``), either with ``"-interpret"`` (the
        same kernel interpreted, for tests on CPU), or ``"auto"``: on GPU the per-example kernel
        where it applies, else the generic one where it applies, else XLA (``kernel_path``).
      score_window: losses in the score's window, ``K`` (``lrsweep.outcomes``); the window holds
        ``min(K, epochs)`` of them.
      track_best: also keep ``best_loss`` and ``best_epoch`` up to date every epoch.
      track_sums: also carry ``sum_v`` and ``sum_inv_v``, the sums over steps of the relative
        loss and of its inverse (``lrsweep.outcomes``; the fractal paper's colour).
      block: configs trained together on the XLA path (0: the whole chunk). A chunk of ``k *
        block`` configs trains its ``k`` blocks one after another in one call (``lax.map``), each
        for all its epochs: a costly problem's activations stay in cache, while the call and the
        store's write are paid once per chunk (``lrsweep.plan.chunks``).
      batch_size: examples per step (0: the whole data set); ``epochs`` then counts steps
        (``engine_data.minibatch``). metrics: held-out ``(name, per-example fn, maximize)``
        (``Problem.metric_fns``) on ``n_eval`` examples at ``engine_data.eval_steps``.
      track_sharpness, sharpness_every, sharpness_iters: also estimate the top Hessian eigenvalue
        of the mean loss every ``sharpness_every`` steps with ``sharpness_iters`` Hessian-vector
        products, warm-started (``lrsweep.sharpness``).
    """

    loss: Callable
    n_data: int
    grad: str
    policy: Policy
    epochs: int
    record: str
    window: int
    optimizer: Optimizer = optimizers.GD
    groups: tuple[str, ...] = ("lr",)
    leaf_group: tuple[int, ...] | None = None  # None: every leaf in group 0
    hyper_names: tuple[str, ...] = ()
    every: int = 1
    keep_loss: bool = True
    keep_leaves: tuple[int, ...] | None = None  # None: every leaf
    kernel: KernelName = "auto"
    score_window: int = outcomes.DEFAULT_SCORE_WINDOW
    track_best: bool = False
    track_sums: bool = False
    block: int = 0
    batch_size: int = 0  # 0: full batch
    metrics: tuple[tuple[str, Callable, bool], ...] = ()
    n_eval: int = 0
    eval_every: int = 1
    track_sharpness: bool = False
    sharpness_every: int = 10
    sharpness_iters: int = 10

    def recorded_epochs(self) -> np.ndarray:
        """Epochs a trajectory keeps: the multiples of ``every`` below ``epochs``, and ``epochs``."""
        return np.append(np.arange(0, self.epochs, self.every), self.epochs)


def _leaf_lrs(static: Static, lr, params: PyTree) -> PyTree:
    """The learning rate of each parameter leaf: a pytree like ``params`` of scalars from ``lr (G,)``."""
    leaves, treedef = jax.tree.flatten(params)
    groups = static.leaf_group or (0,) * len(leaves)
    return treedef.unflatten([lr[g] for g in groups])


def _labels(static: Static, params: PyTree) -> PyTree | None:
    """Group names per leaf, for ``optax.partition``; None with a single group."""
    if len(static.groups) == 1:
        return None
    treedef = jax.tree.structure(params)
    return treedef.unflatten([static.groups[g] for g in static.leaf_group or ()])


def optimizer_fns(static: Static, lr, zero, hyper=None):
    """One config's optimizer (``lr (G,)``, ``hyper (H,)`` or None): ``(init, update)``.

    ``init(params) -> state`` and ``update(params, grad, state) -> (new_params, new_state)``,
    ``params`` in the parameter dtype and ``grad`` in the compute dtype (module docstring).
    """
    policy = static.policy
    separate = (lambda v: v + zero) if policy.exact else (lambda v: v)
    in_compute = lambda tree: jax.tree.map(lambda p: p.astype(policy.compute_dtype), tree)
    in_param = lambda tree: jax.tree.map(lambda p: p.astype(policy.param_dtype), tree)

    if static.optimizer.is_gd:

        def gd_init(params):
            return ()

        def gd_update(params, grad, state):
            lrs = _leaf_lrs(static, lr, params)
            step = lambda p, g, r: p.astype(policy.compute_dtype) - separate(g * r)
            return in_param(jax.tree.map(step, params, grad, lrs)), state

        return gd_init, gd_update

    # Building the optax transformation is plain Python (it closes over this config's traced
    # lr), so init and update each build their own identical copy.
    named = {} if hyper is None else dict(zip(static.hyper_names, [hyper[k] for k in range(len(static.hyper_names))]))

    def transformation(params):
        return static.optimizer.transformation(lr, _labels(static, params), static.groups, named)

    def optax_init(params):
        return transformation(params).init(in_compute(params))

    def optax_update(params, grad, state):
        p = in_compute(params)
        updates, state = transformation(params).update(grad, state, p)
        return in_param(jax.tree.map(lambda a, u: a + u.astype(a.dtype), p, updates)), state

    return optax_init, optax_update
