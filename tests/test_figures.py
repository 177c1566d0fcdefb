"""The lecture gallery (``lrsweep.gallery``): complete, deterministic, and what the committed ``figures/`` shows.

The gallery is built once into a temporary folder (module fixture), then rebuilt through the command
line entry point to check that a rebuild writes identical bytes. Its PNGs are compared, pixel by
pixel, with the committed baseline in ``figures/``, so a figure that drifts fails here. Its numbers
are checked against references that do not come from lrsweep: the notebook's stored output
(``tests/data/notebook-outputs.txt``) and the lesson's stated end states.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

import lrsweep
from lrsweep.gallery import _style, build_gallery, build_problem_figures, main

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "figures"
NOTEBOOK = Path(__file__).parent / "data" / "notebook-outputs.txt"
LESSON_LRS = ("0.01", "0.1", "1")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("gallery")
    return out, build_gallery(out)


def _notebook_blocks() -> dict[str, list[str]]:
    """The notebook's printed lines per learning rate: ``{"0.01": [10 weight lines, final list], ...}``."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in NOTEBOOK.read_text().splitlines():
        m = re.match(r"# lr = ([0-9.]+),", line)
        if m:
            current = blocks.setdefault(m.group(1), [])
        elif line.strip():
            current.append(line)
    return blocks


def _explorer_json(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="lrsweep-data">(.*?)</script>', html, re.S)
    assert m, "explorer.html has no embedded data"
    return json.loads(m.group(1))


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


@pytest.mark.slow
def test_gallery_is_complete(gallery):
    out, paths = gallery
    assert paths == sorted(paths) and all(p.parent == out and p.stat().st_size > 0 for p in paths)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 11
    for png in pngs:  # every figure also as a vector graphic
        assert png.with_suffix(".svg") in paths
    names = {p.name for p in paths}
    assert {"11-landscape-animation.gif", "explorer.html", "README.md", "lesson-tables.md"} <= names
    readme = (out / "README.md").read_text(encoding="utf-8")
    for p in [*pngs, out / "11-landscape-animation.gif"]:
        assert f"]({p.name})" in readme, f"README.md does not embed {p.name}"
    assert "lrsweep figures --out figures" in readme
    assert sum(p.stat().st_size for p in paths) < 8e6


@pytest.mark.slow
def test_rebuild_writes_identical_bytes(gallery, tmp_path, capsys):
    _out, paths = gallery
    assert main(["--out", str(tmp_path)]) == 0
    assert "lrsweep figures: wrote" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    for p in paths:
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs between two builds"


@pytest.mark.slow
def test_pngs_match_the_committed_baseline(gallery):
    out, _ = gallery
    built = sorted(p.name for p in out.glob("*.png"))
    assert sorted(p.name for p in BASELINE.glob("*.png")) == built, "figures/ is not the gallery: regenerate it"
    for name in built:
        new, old = mpimg.imread(out / name), mpimg.imread(BASELINE / name)
        assert new.shape == old.shape, f"{name}: shape {new.shape} != committed {old.shape}"
        diff = float(np.mean(np.abs(new.astype(np.float64) - old.astype(np.float64))))
        assert diff < 0.01, f"{name}: mean pixel difference {diff:.4f} from the committed figure"


@pytest.mark.slow
def test_figures_folder_is_the_build_byte_for_byte(gallery):
    # The build is what `lrsweep figures --out DIR` writes (test_rebuild_writes_identical_bytes), so
    # this compares a fresh `lrsweep figures` with the committed folder, every file, every byte.
    out, _ = gallery
    built = {p.name: p.read_bytes() for p in out.iterdir()}
    committed = {p.name: p.read_bytes() for p in BASELINE.iterdir()}
    problems = [f"{n}: differs" for n in sorted(built.keys() & committed.keys()) if built[n] != committed[n]]
    problems += [f"{n}: built, not committed" for n in sorted(built.keys() - committed.keys())]
    problems += [f"{n}: committed, not built" for n in sorted(committed.keys() - built.keys())]
    assert not problems, "figures/ is not `lrsweep figures --out figures`; regenerate it:\n" + "\n".join(problems)


@pytest.mark.slow
def test_committed_explorer_matches_the_build(gallery):
    out, _ = gallery
    new, old = _explorer_json(out / "explorer.html"), _explorer_json(BASELINE / "explorer.html")
    strip = lambda p: re.sub(r'(id="lrsweep-data">).*?(</script>)', r"\1\2", p.read_text(encoding="utf-8"), flags=re.S)
    assert strip(out / "explorer.html") == strip(BASELINE / "explorer.html"), "figures/explorer.html is stale"
    for key in ("lr", "outcome", "event_epoch", "epochs", "grad", "precision"):
        assert new[key] == old[key], key
    for i in range(len(new["lr"])):
        np.testing.assert_allclose(_f32(new["w"][i])[-1], _f32(old["w"][i])[-1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_markdown_tables_are_the_notebook_printout(gallery):
    out, _ = gallery
    md = (out / "lesson-tables.md").read_text(encoding="utf-8")
    sections = re.split(r"^## Learning rate ", md, flags=re.M)[1:]
    notebook = _notebook_blocks()
    assert [s.split("\n", 1)[0] for s in sections] == list(notebook) == list(LESSON_LRS)
    for section, (lr, expected) in zip(sections, notebook.items()):
        block = re.search(r"```text\n(.*?)\n```", section, re.S)
        assert block is not None, f"lr {lr}: no printed lines"
        printed = block.group(1).splitlines()
        assert printed == expected, f"lr {lr}: the printed lines differ from the notebook"
        rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
        rebuilt = []
        for k, row in enumerate(rows, start=1):
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert cells[0] == str(k)
            rebuilt.append(
                f"weight value: {cells[1]} original loss: {cells[2]} loss_plus: {cells[3]} "
                f"gradient: {cells[4]} updated_weights: {cells[5]}"
            )
        assert rebuilt == expected[:10], f"lr {lr}: the Markdown table differs from the notebook"


@pytest.mark.slow
def test_explorer_embeds_the_lessons_runs(gallery):
    out, _ = gallery
    html = (out / "explorer.html").read_text(encoding="utf-8")
    # Self-contained: no network, no external scripts or styles.
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<(script|img|iframe)[^>]*\bsrc=|<link\b", html)
    data = _explorer_json(out / "explorer.html")
    lrs = data["lr"]
    assert len(lrs) >= 100 and lrs == sorted(lrs) and {0.01, 0.1, 1.0} <= set(lrs)

    def run(lr):
        i = lrs.index(lr)
        w, b, loss = _f32(data["w"][i]), _f32(data["b"][i]), _f32(data["loss"][i])
        at = lambda a, k: a[min(k, a.size - 1)]
        return w, b, loss, at, data["outcome"][i], data["event_epoch"][i]

    # The notebook's printout: lr 0.01 takes w from 0 to 0.45, then 0.82, 1.14; lr 0.1 to 4.5, 1.5, 3.53.
    w, b, loss, at, outcome, _ = run(0.01)
    assert [round(float(at(w, k)), 2) for k in range(4)] == [0.0, 0.45, 0.82, 1.14]
    assert round(float(at(loss, 0)), 2) == 67.5 and round(float(at(loss, 1)), 2) == 46.88
    # lesson.md's 1000-epoch end states (float32, exact).
    assert at(w, 1000) == np.float32(2.9842885) and at(b, 1000) == np.float32(0.04605509)
    assert outcome == "unfinished"
    w, b, _, at, outcome, _ = run(0.1)
    assert [round(float(at(w, k)), 2) for k in range(4)] == [0.0, 4.5, 1.5, 3.53]
    assert abs(float(at(w, 1000)) - 2.99980) < 5e-6 and abs(float(at(b, 1000)) - 0.00045) < 5e-6
    assert outcome == "converged"
    w, b, _, at, outcome, event = run(1.0)
    assert [round(float(at(w, k)), 2) for k in range(4)] == [0.0, 45.0, -654.22, 12755.16]
    assert at(w, 1000) == np.float32(12755.16) and at(b, 1000) == np.float32(3765.9717)
    assert (outcome, event) == ("stuck", 3)
    # Theory, in closed form: the Hessian [[15, 5], [5, 2]] has eigenvalues (17 -+ sqrt(269)) / 2.
    lam_max, lam_min = (17 + np.sqrt(269)) / 2, (17 - np.sqrt(269)) / 2
    assert data["theory"]["critical"] == pytest.approx(2 / lam_max, rel=1e-9)
    assert data["theory"]["optimal"] == pytest.approx(2 / (lam_max + lam_min), rel=1e-9)
    # Every run above the critical lr fails, every run at or below 0.119 does not.
    for lr, outcome in zip(lrs, data["outcome"]):
        assert (outcome in ("diverged", "stuck")) == (lr > data["theory"]["critical"]), lr


@pytest.mark.slow
def test_gif_is_animated_and_small(gallery):
    from PIL import Image

    out, _ = gallery
    gif = out / "11-landscape-animation.gif"
    assert gif.stat().st_size < 2_000_000
    with Image.open(gif) as im:
        assert getattr(im, "n_frames", 1) >= 20  # a GIF has frames; PIL's base class does not say so


def test_outcome_colours_read_names_and_codes_alike():
    # Results are moving from outcome names to int8 codes (-1 pending, 0 converged, 1 unfinished,
    # 2 diverged, 3 stuck): the figures must colour both the same.
    names = np.array([["converged", "stuck"], ["diverged", "unfinished"]])
    codes = np.array([[0, 3], [2, 1]], dtype=np.int8)
    expected = [[lrsweep.OUTCOMES.index(n) for n in row] for row in names]
    assert _style.outcome_codes(names).tolist() == expected
    assert _style.outcome_codes(codes).tolist() == expected


def test_general_figures_for_another_problem(tmp_path, capsys):
    from PIL import Image

    # quadratic: a vector parameter and an init sampler, so an outcome map but no landscape.
    assert main(["--problem", "quadratic", "--lr", "log:1e-3:1:8", "--epochs", "40", "--out", str(tmp_path)]) == 0
    assert "lrsweep figures: wrote 8 files" in capsys.readouterr().out
    stems = ["quadratic-fan", "quadratic-final-loss-vs-lr", "quadratic-loss-heatmap", "quadratic-outcome-map"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.{ext}" for s in stems for ext in ("png", "svg"))
    for stem in stems:
        with Image.open(tmp_path / f"{stem}.png") as im:
            im.verify()
        with Image.open(tmp_path / f"{stem}.png") as im:
            assert (im.format, im.size) == ("PNG", (1280, 720)), stem
        assert (tmp_path / f"{stem}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_general_figures_draw_a_landscape_for_two_scalar_parameters(tmp_path):
    # linear: exactly two scalar parameters (w, b) and no sampler: landscape, and an outcome map over w0.
    paths = build_problem_figures("linear", "0.01,0.1,1", tmp_path, epochs=20)
    names = {p.name for p in paths}
    assert {"linear-landscape.png", "linear-outcome-map.png"} <= names
    assert len(names) == 10


def test_general_figures_refuse_an_unknown_problem(tmp_path, capsys):
    from lrsweep import cli

    assert cli.main(["figures", "--problem", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--problem='nope' is invalid" in err and "quadratic" in err
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="--epochs=0 is invalid"):
        build_problem_figures("linear", "0.1", tmp_path, epochs=0)
