"""The lecture figure gallery, regenerated from real sweeps by one command.

    lrsweep figures --out figures        # or: python -m lrsweep.gallery --out figures

:func:`build_gallery` runs every sweep the figures need through the public API (``lrsweep.sweep``,
``lrsweep.trace``, ``lrsweep.theory``, ``lrsweep.suggest_lr``, ``lrsweep.problems``,
``lrsweep.init_grid``, ``lrsweep.notebook``; nothing here trains anything itself) and writes, into
one folder:

- ``01-lesson-weight-lr*.png`` / ``.svg`` and ``01-lesson-weight-panel``: the lesson's three
  weight-vs-epoch plots (its titles and axis labels), one each and side by side;
- ``02-lesson-table-lr*``: the lesson's 10-epoch printouts as tables, and ``lesson-tables.md``;
- ``03`` to ``10``: the figures that show why (a fan of 64 learning rates, final loss against lr, a
  loss heatmap over lr x epoch, the loss landscape with trajectories, an outcome map over lr x
  initial weight, float32 absorption at lr = 1, the chapter's 2-3-1 network, optimizers on a bowl);
- ``11-landscape-animation.gif``: trajectories on the landscape as the epochs advance;
- ``explorer.html``: one self-contained page (data embedded as JSON, inline JavaScript on
  ``<canvas>``, no network) with a learning-rate slider;
- ``13-trainability-map``: the fractal paper's network over its two layers' learning rates and a
  zoom into the boundary (``maps``, from :mod:`lrsweep.maps`);
- ``14-six-settings``: the paper's six settings, one small map each (``maps``);
- ``15-edge-of-stability`` and ``16-sharpness-vs-lr``: a tanh network on scikit-learn's digits,
  its sharpness rising to 2 / lr and staying there (``edge``; needs scikit-learn);
- ``17-digits-lr``: held-out accuracy and training loss against lr for SGD and Adam on
  ``problems.digits()``, minibatches, the suggested lr marked (``realdata``);
- ``18-lesson-to-edge``: the lesson's 2 / 16.70 beside that network's edge of stability (``lesson``);
- ``README.md``: every figure, a caption saying what a student should see, and this command.

Every file is deterministic: a rerun on the same machine writes the same bytes (fixed rcParams,
``svg.hashsalt``, no dates or software versions in PNG/SVG metadata, fixed sizes and dpi, no
timestamps in the HTML). Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg
renderer, never through pyplot, so building the gallery leaves matplotlib's global state alone.

The modules, one job each: ``_style`` (colours, rcParams, saving), ``_data`` (the sweeps),
``lesson``, ``sweeps``, ``landscape`` (the figures), ``explorer`` and ``readme`` (the page and the
README, whose text lives in ``templates/``), ``general`` (the general figures for any built-in
problem: ``lrsweep figures --problem NAME --lr SPEC --out DIR``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

from ._data import GIF_MAX_BYTES, Data
from ._style import RC
from .edge import fig_edge_of_stability, fig_sharpness_vs_lr
from .explorer import fig_explorer
from .general import DEFAULT_LR, build_problem_figures
from .landscape import fig_animation, fig_landscape
from .lesson import fig_lesson, fig_lesson_edge, fig_tables, fig_why_stuck
from .maps import fig_six_settings, fig_trainability_map
from .readme import readme
from .realdata import fig_digits_lr
from .sweeps import fig_chapter_net, fig_fan, fig_final_loss, fig_heatmap, fig_optimizers, fig_outcome_map

__all__ = ["FIGURES", "build_gallery", "build_problem_figures", "main"]

#: Every figure of the lesson gallery, in the README's order; each takes (data, out) and returns its files.
FIGURES = (
    fig_lesson,
    fig_tables,
    fig_fan,
    fig_final_loss,
    fig_heatmap,
    fig_landscape,
    fig_outcome_map,
    fig_why_stuck,
    fig_chapter_net,
    fig_optimizers,
    fig_animation,
    fig_explorer,
    fig_trainability_map,
    fig_six_settings,
    fig_edge_of_stability,
    fig_sharpness_vs_lr,
    fig_digits_lr,
    fig_lesson_edge,
)


def build_gallery(out_dir) -> list[Path]:
    """Run the sweeps and write the whole gallery into ``out_dir``; return the files written, sorted.

    Deterministic: building twice on one machine writes identical bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with matplotlib.rc_context(RC):
        data = Data()
        for make in FIGURES:
            paths += make(data, out)
    path = out / "README.md"
    path.write_text(readme(data), encoding="utf-8")
    paths.append(path)
    gif = out / "11-landscape-animation.gif"
    if gif.stat().st_size > GIF_MAX_BYTES:  # pragma: no cover - a guard for future edits
        raise RuntimeError(f"{gif} is {gif.stat().st_size} bytes; keep it under {GIF_MAX_BYTES}")
    return sorted(paths)


def main(argv: list[str] | None = None) -> int:
    """``lrsweep figures [--problem NAME] [--lr SPEC] [--epochs N] --out DIR``; return 0.

    With no ``--problem`` or ``--lr``: the lesson gallery into DIR (default ``figures``). With
    either: the general figures (:mod:`lrsweep.gallery.general`) for that built-in problem (default
    ``linear``) and lr list or space (default ``log:1e-4:10:64``). Bad values raise ValueError.
    """
    parser = argparse.ArgumentParser(prog="lrsweep figures", description="Regenerate the lecture figure gallery.")
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--problem", help="a built-in problem: its general figures instead of the lesson gallery")
    parser.add_argument("--lr", help=f"with --problem: '0.01,0.1,1' or 'log:1e-4:10:64' (default {DEFAULT_LR})")
    parser.add_argument("--epochs", type=int, default=1000, help="with --problem: epochs per run (default 1000)")
    args = parser.parse_args(argv)
    matplotlib.use("Agg")
    t0 = time.perf_counter()
    if args.problem is None and args.lr is None:
        paths = build_gallery(args.out)
    else:
        problem = "linear" if args.problem is None else args.problem
        paths = build_problem_figures(problem, DEFAULT_LR if args.lr is None else args.lr, args.out, args.epochs)
    size = sum(p.stat().st_size for p in paths)
    print(
        f"lrsweep figures: wrote {len(paths)} files ({size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - t0:.1f} s"
    )
    return 0
