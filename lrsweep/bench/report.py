"""Ratios, targets and the reports of a suite's result: Markdown and a PNG plot."""

from __future__ import annotations

from pathlib import Path

from .suite import GRADS, RECORDS, SPECS

# ------------------------------------------------------------------------------------------------
# Ratios, targets and reports
# ------------------------------------------------------------------------------------------------

BASELINE_ORDER = ("notebook loop", "numpy plain", "numpy tuned")
#: The issue's targets (lesson problem, float32, summary record, CPU).
TARGETS = {
    "throughput": 1e9,
    "vs numpy plain": 60.0,
    "vs notebook loop": 40_000.0,
    "others vs numpy plain": 10.0,
    "compile_s": 5.0,
    "memory_growth": 0.25,
}


def _lrsweep_best(rows, problem, grad, backend, n=None, record="summary"):
    """The lrsweep row at ``n`` configs (default: the largest) with the most epochs."""
    cands = [
        r
        for r in rows
        if r["impl"] == "lrsweep"
        and r["problem"] == problem
        and r["grad"] == grad
        and r["backend"] == backend
        and r["record"] == record
        and (n is None or r["configs"] == n)
    ]
    if not cands:
        return None
    return max(cands, key=lambda r: (r["epochs"], r["configs"]))


def _baseline_rate(rows, problem, impl, grad, n):
    """A baseline's rate at ``n`` configs; the notebook loop's (one config, forward) at any ``n``."""
    for r in rows:
        if r["problem"] == problem and r["impl"] == impl:
            if impl == "notebook loop" and r["grad"] == "forward":
                return r["config_steps_per_s"]
            if r["grad"] == grad and r["configs"] == n:
                return r["config_steps_per_s"]
    return None


def ratios(rows: list[dict]) -> list[dict]:
    """lrsweep (summary, most epochs at each size) over every baseline at the same problem, gradient and size."""
    out = []
    keys = sorted(
        {
            (r["problem"], r["grad"], r["backend"], r["configs"])
            for r in rows
            if r["impl"] == "lrsweep" and r["record"] == "summary"
        },
        key=lambda k: (list(SPECS).index(k[0]) if k[0] in SPECS else 99, k[1], k[2], k[3]),
    )
    for problem, grad, backend, n in keys:
        ref = _lrsweep_best(rows, problem, grad, backend, n)
        assert ref is not None  # the keys are those of lrsweep's rows
        entry = {
            "problem": problem,
            "grad": grad,
            "backend": backend,
            "configs": n,
            "epochs": ref["epochs"],
            "lrsweep": ref["config_steps_per_s"],
            "vs": {},
        }
        for impl in BASELINE_ORDER:
            rate = _baseline_rate(rows, problem, impl, grad, n)
            if rate:
                entry["vs"][impl] = ref["config_steps_per_s"] / rate
        out.append(entry)
    return out


def headline(rows: list[dict], problem: str, grad: str, backend: str):
    """The size a problem is judged at: the largest size run with the most epochs (the lesson: 1e6 x 1000)."""
    cands = [
        r
        for r in rows
        if r["impl"] == "lrsweep"
        and r["problem"] == problem
        and r["grad"] == grad
        and r["backend"] == backend
        and r["record"] == "summary"
    ]
    if not cands:
        return None
    top = max(r["epochs"] for r in cands)
    return max((r for r in cands if r["epochs"] == top), key=lambda r: r["configs"])


def _mem_check(rows, backend="cpu"):
    """Peak memory of the lesson's sweeps at one size, fewest vs most epochs: summary (the largest
    size run with two epoch counts) and, for contrast, trajectory."""
    out = []
    for grad in GRADS:
        for record in RECORDS:
            by_n = {}
            for r in rows:
                if (r["impl"], r["problem"], r["grad"], r["backend"], r["record"]) == (
                    "lrsweep",
                    "linear",
                    grad,
                    backend,
                    record,
                ):
                    by_n.setdefault(r["configs"], []).append(r)
            both = [n for n, rs in by_n.items() if len({r["epochs"] for r in rs}) >= 2]
            if both:
                rs = sorted(by_n[max(both)], key=lambda r: r["epochs"])
                out.append(
                    {
                        "grad": grad,
                        "record": record,
                        "configs": max(both),
                        "epochs": [rs[0]["epochs"], rs[-1]["epochs"]],
                        "peak_mb": [rs[0]["peak_mb"], rs[-1]["peak_mb"]],
                    }
                )
    return out


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets on the CPU backend: measured value, goal and whether it is met.

    ``kind`` says how to read ``value``: ``rate`` (config-steps/s), ``ratio``, ``seconds`` or
    ``memory`` (``[fewer epochs, more epochs]`` in MB).
    """
    out = []

    def add(what, kind, value, goal, met, note=""):
        out.append({"target": what, "kind": kind, "value": value, "goal": goal, "met": bool(met), "note": note})

    for grad in GRADS:
        ref = _lrsweep_best(rows, "linear", grad, "cpu", 1_000_000)
        if ref is None or ref["epochs"] < 1000:
            continue
        rate = ref["config_steps_per_s"]
        add(
            f"lesson {grad}: config-steps/s at 1e6 x {ref['epochs']:,}",
            "rate",
            rate,
            TARGETS["throughput"],
            rate >= TARGETS["throughput"],
        )
        for impl, key in (("numpy plain", "vs numpy plain"), ("notebook loop", "vs notebook loop")):
            base = _baseline_rate(rows, "linear", impl, grad, 1_000_000)
            if base:
                add(f"lesson {grad}: lrsweep / {impl}", "ratio", rate / base, TARGETS[key], rate / base >= TARGETS[key])
        base = _baseline_rate(rows, "linear", "numpy tuned", grad, 1_000_000)
        if base:
            add(f"lesson {grad}: lrsweep / numpy tuned", "ratio", rate / base, None, True, "no target; for reference")
    for problem in ("chapter_net", "mlp"):
        for grad in GRADS:
            ref = headline(rows, problem, grad, "cpu")
            if ref is None:
                continue
            base = _baseline_rate(rows, problem, "numpy plain", grad, ref["configs"])
            if base:
                ratio = ref["config_steps_per_s"] / base
                goal = TARGETS["others vs numpy plain"]
                add(
                    f"{problem} {grad}: lrsweep / numpy plain at {ref['configs']:,} x {ref['epochs']:,}",
                    "ratio",
                    ratio,
                    goal,
                    ratio >= goal,
                )
    comp = [r for r in rows if r["impl"] == "lrsweep" and r["problem"] == "linear" and r["backend"] == "cpu"]
    if comp:
        worst = max(comp, key=lambda r: r["compile_s"])
        add(
            "lesson: compile time, worst static setting",
            "seconds",
            worst["compile_s"],
            TARGETS["compile_s"],
            worst["compile_s"] < TARGETS["compile_s"],
            f"{worst['grad']}, {worst['record']}, {worst['epochs']:,} epochs",
        )
    for m in _mem_check(rows):
        a, b = m["peak_mb"]
        what = (
            f"lesson {m['grad']}: {m['record']} memory at {m['configs']:,} configs, "
            f"{m['epochs'][0]:,} vs {m['epochs'][1]:,} epochs"
        )
        if m["record"] == "summary":
            add(
                what,
                "memory",
                [a, b],
                "independent of epochs",
                abs(b - a) <= max(TARGETS["memory_growth"] * a, 16.0),
                "peak RSS growth during the sweep",
            )
        else:
            add(what, "memory", [a, b], None, True, "no target; grows with epochs, for contrast")
    return out


def _fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _fmt_ratio(v: float) -> str:
    return f"{v:,.1f}x" if v < 1000 else f"{v:,.0f}x"


def _opt(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _fraction(value) -> str:
    """A fraction of a measured peak; above 100% it is flagged (†): the work model, not the machine, is off."""
    if value is None:
        return ""
    return f"{value:.2%}" if value <= 1 else f"{value:.0%} †"


def _peaks_line(m: dict) -> list[str]:
    if not m.get("peaks"):
        return []
    parts = [
        f"{b}: {p['matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s (float32 {p['matmul_n']}^3 matmul), "
        f"{p['copy_bytes_per_s'] / 1e9:,.1f} GB/s (copy)"
        for b, p in m["peaks"].items()
    ]
    return [f"Measured peaks, median of 3 in this run: {'; '.join(parts)}.", ""]


def markdown(result: dict) -> str:
    m = result["machine"]
    a = result["settings"]
    devices = "; ".join(f"{b}: {d['count']} x {d['kind']}" for b, d in m["devices"].items())
    lines = [
        f"# lrsweep benchmark: {result['name']} ({m['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB; {m['platform']}; JAX backends "
        f"{', '.join(m['backends'])} ({devices}).",
        f"Versions: python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, numpy {m['numpy']}, "
        f"lrsweep {m['lrsweep']}.",
        f"Command: `{' '.join(['lrsweep bench', *result['argv']])}`; total {result['total_s']:.0f} s; "
        f"result schema version {result['schema_version']}.",
        "",
        "Unit: config-steps/s (one config trained for one epoch), float32. All numbers come from one process; "
        "compare ratios, not absolute numbers, across machines. numpy and the notebook loop cost the same "
        "per config-step whatever the number of epochs, so they run as many epochs as fit in "
        f"{a['target_s']} s. Every figure is the median of `median of` timed calls, each case warmed up first "
        "with the very arguments it is timed with; `compile` is that warm-up call's time minus the median "
        "(lrsweep's compile and first-call costs); `chunk` is the sweep's real configs per compiled chunk and "
        "`kernel` the path that ran. `FLOPs/cs` and `bytes/cs` are per config-step from XLA's cost analysis of "
        "one epoch over the chunk; `% peak` divides the achieved FLOP/s and bytes/s by this run's measured "
        "peaks. A `% peak` above 100% is flagged † and is no fraction of the peak: the model counts the bytes "
        "of one pass over the chunk's state per epoch, while the engine keeps that state in cache or registers "
        "across the epochs it fuses, so such a case is not bound by memory bandwidth. `peak MB` the growth of the process's resident memory during the call; `CPU use` the process's CPU "
        "seconds per wall second in it (about 1 for one busy core; lower when the shared machine is loaded).",
        "",
        *_peaks_line(m),
    ]
    targets_ = result["targets"]
    if targets_:
        lines += [
            "## Targets (lesson problem, float32, summary, CPU)",
            "",
            "| target | measured | goal | met |",
            "|---|---:|---:|:---:|",
        ]
        for t in targets_:
            v, g, kind = t["value"], t["goal"], t["kind"]
            if kind == "rate":
                vs, gs = _fmt_rate(v), f">= {g:,.0f}"
            elif kind == "ratio":
                vs, gs = _fmt_ratio(v), "-" if g is None else f">= {_fmt_ratio(g)}"
            elif kind == "seconds":
                vs, gs = f"{v:.2f} s", f"< {g:g} s"
            else:
                vs, gs = f"{v[0]:.1f} vs {v[1]:.1f} MB", g or "-"
            note = f" ({t['note']})" if t["note"] else ""
            met = "-" if g is None else "yes" if t["met"] else "**no**"
            lines.append(f"| {t['target']}{note} | {vs} | {gs} | {met} |")
        lines.append("")
    lines += [
        "## Ratios: lrsweep (summary, most epochs run at that size) / baseline, same problem, gradient and size",
        "",
        "| problem | gradient | backend | configs | epochs | lrsweep config-steps/s | "
        + " | ".join(f"/ {b}" for b in BASELINE_ORDER)
        + " |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(BASELINE_ORDER),
    ]
    for r in result["ratios"]:
        cells = " | ".join(_fmt_ratio(r["vs"][b]) if b in r["vs"] else "" for b in BASELINE_ORDER)
        lines.append(
            f"| {r['problem']} | {r['grad']} | {r['backend']} | {r['configs']:,} | {r['epochs']:,} | "
            f"{_fmt_rate(r['lrsweep'])} | {cells} |"
        )
    lines.append("")
    for problem in dict.fromkeys(r["problem"] for r in result["cases"]):
        lines += [
            f"## {problem}",
            "",
            "| implementation | backend | gradient | record | configs | epochs | config-steps/s | median of | "
            "compile (s) | chunk | kernel | devices | FLOPs/cs | bytes/cs | % peak FLOP/s | % peak bytes/s | "
            "peak MB | CPU use |",
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["cases"]:
            if r["problem"] != problem:
                continue
            lines.append(
                f"| {r['impl']} | {r['backend']} | {r['grad']} | {r['record'] or ''} | {r['configs']:,} | "
                f"{r['epochs']:,} | {_fmt_rate(r['config_steps_per_s'])} | {len(r['times_s'])} | "
                f"{_opt(r['compile_s'], '{:.2f}')} | {_opt(r['chunk'], '{:,}')} | {r['kernel'] or ''} | "
                f"{_opt(r['devices'], '{}')} | {_opt(r['flops_per_config_step'], '{:,.0f}')} | "
                f"{_opt(r['bytes_per_config_step'], '{:,.0f}')} | {_fraction(r['flops_fraction'])} | "
                f"{_fraction(r['bytes_fraction'])} | {r['peak_mb']:.1f} | "
                f"{_opt(r['cpu_s'] and r['cpu_s'] / r['seconds'], '{:.2f}')} |"
            )
        lines.append("")
    if result["skipped"]:
        lines += ["## Skipped", ""] + [f"- {s}" for s in result["skipped"]] + [""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Throughput against configs, log-log: one panel per (problem, gradient), one line per implementation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = result["cases"]
    probs = list(dict.fromkeys(r["problem"] for r in rows))
    grads = [g for g in GRADS if any(r["grad"] == g for r in rows)]
    fig, axes = plt.subplots(len(probs), len(grads), figsize=(6.2 * len(grads), 4.3 * len(probs)), squeeze=False)
    styles = {
        "notebook loop": ("tab:gray", "s"),
        "numpy plain": ("tab:blue", "o"),
        "numpy tuned": ("tab:cyan", "D"),
    }
    lr_colors = iter(["tab:red", "tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive"] * 4)
    lr_color = {}
    for i, problem in enumerate(probs):
        for j, grad in enumerate(grads):
            ax = axes[i][j]
            sel = [r for r in rows if r["problem"] == problem and (r["grad"] == grad or r["impl"] == "notebook loop")]
            ns = [r["configs"] for r in sel] or [1]
            lo, hi = min(ns), max(ns)
            for impl, (color, marker) in styles.items():
                rs = sorted((r for r in sel if r["impl"] == impl), key=lambda r: r["configs"])
                if not rs:
                    continue
                if impl == "notebook loop":  # one config; a loop over N configs runs at the same rate
                    ax.plot([lo, max(hi, 2 * lo)], [rs[0]["config_steps_per_s"]] * 2, ls=":", color=color)
                    ax.plot(
                        [1],
                        [rs[0]["config_steps_per_s"]],
                        marker=marker,
                        color=color,
                        ls="",
                        label="notebook loop, forward (one config; dotted: looped)",
                    )
                    continue
                ax.plot(
                    [r["configs"] for r in rs],
                    [r["config_steps_per_s"] for r in rs],
                    marker=marker,
                    color=color,
                    label=impl,
                )
            series = sorted(
                {(r["backend"], r["record"], r["epochs"]) for r in sel if r["impl"] == "lrsweep"},
                key=lambda k: (k[0], k[1], -k[2]),
            )
            for backend, record, epochs in series:
                rs = sorted(
                    (
                        r
                        for r in sel
                        if r["impl"] == "lrsweep"
                        and r["backend"] == backend
                        and r["record"] == record
                        and r["epochs"] == epochs
                    ),
                    key=lambda r: r["configs"],
                )
                key = (backend, epochs)
                if key not in lr_color:
                    lr_color[key] = next(lr_colors)
                ax.plot(
                    [r["configs"] for r in rs],
                    [r["config_steps_per_s"] for r in rs],
                    marker="*" if record == "summary" else "x",
                    ms=8 if record == "summary" else 6,
                    ls="-" if record == "summary" else "--",
                    lw=2 if record == "summary" else 1.2,
                    color=lr_color[key],
                    label=f"lrsweep {backend} {record}, {epochs:,} epochs",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{problem}, {grad} gradient")
            ax.set_xlabel("configs trained at once (N)")
            ax.set_ylabel("config-steps / s")
            ax.grid(True, which="major", alpha=0.4)
            ax.grid(True, which="minor", alpha=0.1)
            ax.legend(fontsize=7, loc="best")
    m = result["machine"]
    fig.suptitle(
        f"lrsweep benchmark: throughput vs configs, float32 ({m['cpu']}, {m['cores']} cores; "
        f"jax {m['jax']}, {m['date'][:10]})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
