"""The gallery's ``README.md``: every figure with a caption saying what a student should see.

The text is ``templates/README.md.tmpl`` (``string.Template``, ``${name}`` placeholders); every
number in it is computed here from the runs, so a caption cannot drift from its figure.
"""

from __future__ import annotations

from string import Template

import numpy as np

import lrsweep

from . import _templates, edge, maps, realdata
from ._data import BOWL_COND, BOWL_DIM, Data
from ._style import LESSON_LRS, float32_repr
from .landscape import first_exit


def readme_values(data: Data) -> dict[str, str]:
    """The README's numbers, formatted, keyed by their placeholder names."""
    crit, opt = data.critical, data.optimal
    les = data.lesson
    w_end = {lr: float32_repr(data.run(les, lr)[-1]) for lr in LESSON_LRS}
    ad = data.traj_autodiff.w.sel(lr=1.0, init=0).values
    overflow = int(np.argmin(np.isfinite(ad))) if not np.isfinite(ad).all() else None
    net_lr = data.net.lr.values
    k = int(np.argmin(np.abs(net_lr - 0.01)))
    net_loss = data.net.loss.isel(init=0).values
    fan_outcome = lrsweep.outcome_names(data.traj.sel(lr=data.fan_lrs).outcome.isel(init=0).values)
    heat_loss = data.traj.sel(lr=data.heat_lrs).loss.isel(init=0, epoch=-1).values
    exits = {lr: first_exit(data.run(les, lr), data.run(les, lr, "b"), data) for lr in (0.1198, 0.12)}
    om = data.outcome_map
    om_outcome = lrsweep.outcome_names(om.outcome.transpose("lr", "init_w").values)
    # The smallest |w0| from which every lr is stuck: float32 absorbs the nudge whatever the lr.
    far = np.abs(data.init_w)[(om_outcome == "stuck").all(axis=0)]
    all_stuck = float(f"{far.min():.3g}") if far.size else float("nan")
    # The largest |w0| up to which "fails exactly above the critical lr" holds for every start.
    failed = np.isin(om_outcome, ["diverged", "stuck"])
    holds = (failed == (om.lr.values > crit)[:, None]).all(axis=0)
    mags = np.abs(data.init_w)
    broken = mags[~holds]
    rule_holds = float(f"{mags[mags < broken.min()].max() if broken.size else mags.max():.3g}")
    return {
        "lam_min": f"{float(data.eig[0]):.4f}",
        "lam_max": f"{float(data.eig[-1]):.2f}",
        "critical": f"{crit:.4f}",
        "critical_5": f"{crit:.5f}",
        "optimal": f"{opt:.4f}",
        "w_end_001": w_end[0.01],
        "w_end_01": w_end[0.1],
        "w_end_1": w_end[1.0],
        "b_end_1": float32_repr(data.run(les, 1.0, "b")[-1]),
        "frozen": str(int(les.event_epoch.sel(lr=1.0, init=0))),
        "converged_01": str(int(les.event_epoch.sel(lr=0.1, init=0))),
        "n_fan_below": str(int((data.fan_lrs < crit).sum())),
        "n_fan_above": str(int((data.fan_lrs > crit).sum())),
        "n_fan_stuck": str(int((fan_outcome[data.fan_lrs > crit] == "stuck").sum())),
        "suggested": f"{lrsweep.suggest_lr(data.final['autodiff'], 'largest_stable'):.4f}",
        "heat_floor": f"{float(np.min(heat_loss[np.isfinite(heat_loss) & (heat_loss > 0)])):.0e}",
        "exit_01198": str(exits[0.1198]),
        "exit_012": str(exits[0.12]),
        "n_map_lr": str(om.sizes["lr"]),
        "n_init_w": str(om.sizes["init_w"]),
        "rule_holds": f"{rule_holds:g}",
        "all_stuck": f"{all_stuck:g}",
        "overflow_clause": f" until it overflows float32 at epoch {overflow}." if overflow is not None else ".",
        "spacing_w": f"{float(np.spacing(np.float32(data.run(les, 1.0)[-1]))):.2g}",
        "n_net": str(net_lr.size),
        "net_loss_first": f"{net_loss[k, 0]:.4f}",
        "net_loss_last": f"{net_loss[k, -1]:.3g}",
        "bowl_dim": str(BOWL_DIM),
        "bowl_cond": f"{BOWL_COND:g}",
        "bowl_gd_critical": f"{data.bowl_critical['gd']:.3g}",
        "bowl_momentum_critical": f"{data.bowl_critical['momentum']:.3g}",
        "n_explorer": str(data.explorer_lrs.size),
    }


def readme(data: Data) -> str:
    """The README's text: the template with every placeholder filled (a missing one raises KeyError)."""
    return Template(_templates.read("README.md.tmpl")).substitute(
        readme_values(data) | maps.readme_values(data) | edge.readme_values(data) | realdata.readme_values(data)
    )
