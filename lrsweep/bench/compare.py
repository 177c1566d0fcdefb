"""``lrsweep bench compare A.json B.json ...``: the same cases across machines and backends.

Each input is ``FILE`` or ``FILE:BACKEND``. A case is matched by its ``id`` (problem, implementation,
gradient, record, configs and, for lrsweep, epochs: see ``suite.case_id``), which leaves out the
backend, so that a GPU's lrsweep rows line up with a CPU's. From each file, lrsweep's rows of one
backend are taken: ``BACKEND`` when given, else the file's accelerator if it has one, else ``cpu``.
The baselines (numpy, the notebook loop) run on the machine's CPU whatever the backend.

Writes one Markdown table (config-steps/s per file and the ratio to the first file) and one PNG
(those ratios, log scale, one bar per file and case present in every file). Refuses files of
different schema versions and files that share no case; cases present in only some files are
listed as missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SCHEMA_VERSION = 2  # the same as lrsweep.bench.SCHEMA_VERSION (no import: no cycle)


def load(spec: str) -> dict:
    """``FILE[:BACKEND]`` -> ``{"label", "path", "backend", "result", "cases": {id: case}}``."""
    path, _, backend = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"file={path!r} is invalid: expected a readable lrsweep bench JSON result ({err})") from None
    if not isinstance(result, dict):
        raise ValueError(f"file={path!r} is invalid: expected a JSON object, an lrsweep bench result")
    version = result.get("schema_version", 1)
    backends = result.get("machine", {}).get("backends", [])
    if not backend:
        backend = next((b for b in backends if b != "cpu"), "cpu")
    elif version == SCHEMA_VERSION and backend not in backends:
        raise ValueError(f"backend={backend!r} is invalid for {path}: expected one of {backends}")
    cases = {}
    for case in result.get("cases", []):
        if case.get("impl") == "lrsweep" and case.get("backend") != backend:
            continue
        cases[case["id"]] = case
    label = Path(path).stem + (f" ({backend})" if len(backends) > 1 else "")
    return {"label": label, "path": path, "backend": backend, "result": result, "cases": cases, "version": version}


def compare(specs: list[str]) -> dict:
    """The comparison of the result files ``specs`` (``FILE[:BACKEND]``): ``{"files", "rows", "missing"}``.

    ``rows``: per case present in every file, ``{"id", "rates": [...], "ratios": [...]}`` (ratio to
    the first file); ``missing``: ``{"id", "in": [labels]}`` for cases in only some files."""
    if len(specs) < 2:
        raise ValueError(f"files={specs!r} is invalid: expected two or more result files to compare")
    files = [load(s) for s in specs]
    versions = {f["path"]: f["version"] for f in files}
    if len(set(versions.values())) > 1 or files[0]["version"] != SCHEMA_VERSION:
        raise ValueError(
            f"files={list(versions)} are invalid: schema versions differ or are old ({versions}); "
            f"expected schema_version {SCHEMA_VERSION} in every file (rerun lrsweep bench to regenerate)"
        )
    order = list(dict.fromkeys(i for f in files for i in f["cases"]))
    shared = [i for i in order if all(i in f["cases"] for f in files)]
    if not shared:
        raise ValueError(f"files={[f['path'] for f in files]} are invalid: they share no case; expected common cases")
    rows = []
    for i in shared:
        rates = [f["cases"][i]["config_steps_per_s"] for f in files]
        rows.append({"id": i, "rates": rates, "ratios": [r / rates[0] for r in rates]})
    missing = [{"id": i, "in": [f["label"] for f in files if i in f["cases"]]} for i in order if i not in shared]
    return {"files": files, "rows": rows, "missing": missing}


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"


def markdown(cmp: dict) -> str:
    files = cmp["files"]
    lines = ["# lrsweep benchmark comparison", ""]
    for f in files:
        m = f["result"]["machine"]
        dev = m["devices"].get(f["backend"], {})
        lines.append(
            f"- **{f['label']}**: `{f['path']}`; {m['cpu']}, {m['cores']} cores; lrsweep on {f['backend']} "
            f"({dev.get('count', '?')} x {dev.get('kind', '?')}); jax {m['jax']}, lrsweep {m['lrsweep']}, "
            f"{f['result']['date']}"
        )
    lines += [
        "",
        "Config-steps/s (median of each file's timed calls) and the ratio to the first file. Baselines run on "
        "each machine's CPU; lrsweep on the backend named.",
        "",
        "| case | "
        + " | ".join(f["label"] for f in files)
        + " | "
        + " | ".join(f"{f['label']} / {files[0]['label']}" for f in files[1:])
        + " |",
        "|---|" + "---:|" * (2 * len(files) - 1),
    ]
    for r in cmp["rows"]:
        lines.append(
            f"| {r['id']} | "
            + " | ".join(_rate(v) for v in r["rates"])
            + " | "
            + " | ".join(f"{v:.2f}x" for v in r["ratios"][1:])
            + " |"
        )
    if cmp["missing"]:
        lines += ["", "## Missing", "", "Cases not in every file (only in the files named):", ""]
        lines += [f"- {m['id']}: only in {', '.join(m['in'])}" for m in cmp["missing"]]
    return "\n".join(lines) + "\n"


def plot(cmp: dict, path: Path) -> None:
    """Ratios to the first file, log scale: one group of bars per case, one bar per later file."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    files, rows = cmp["files"], cmp["rows"]
    height = max(3.0, 0.28 * len(rows) * max(1, len(files) - 1) + 1.5)
    fig, ax = plt.subplots(figsize=(10, height))
    k = len(files) - 1
    bar = 0.8 / k
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for j, f in enumerate(files[1:]):
        ys = [i + (j - (k - 1) / 2) * bar for i in range(len(rows))]
        ax.barh(ys, [r["ratios"][j + 1] for r in rows], height=bar, color=colors[j % 6], label=f["label"])
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["id"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"config-steps/s relative to {files[0]['label']} (log scale; > 1: faster)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"lrsweep benchmark: {len(rows)} shared cases relative to {files[0]['label']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lrsweep bench compare", description=(__doc__ or "").splitlines()[0])
    p.add_argument("files", nargs="+", help="result files, FILE or FILE:BACKEND (the first is the reference)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the first file's folder)")
    p.add_argument("--name", default=None, help="file stem (default: compare-<first>-vs-<second>...)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    cmp = compare(args.files)
    out = args.out or Path(cmp["files"][0]["path"]).parent
    name = args.name or "compare-" + "-vs-".join(Path(f["path"]).stem for f in cmp["files"])
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(cmp)
    (out / f"{name}.md").write_text(text)
    if not args.no_plot:
        plot(cmp, out / f"{name}.png")
    print(text)
    return 0
