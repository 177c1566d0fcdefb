"""One self-contained, offline HTML page to explore any sweep: :func:`explore`.

    lrsweep explore sweep.zarr --out page.html      # a store
    lrsweep explore sweep.toml --out page.html      # a spec file: the sweep runs first

    >>> import lrsweep
    >>> ds = lrsweep.sweep("linear", "log:1e-3:1:64", epochs=200)
    >>> lrsweep.explore(ds, "page.html")             # doctest: +SKIP

The page (``templates/explore.html``, package data: HTML, CSS and JavaScript drawing on
``<canvas>``, no network, no libraries) gets the sweep's data embedded as JSON:

- a sweep over one learning-rate axis: an lr slider, the loss curve of every run at that lr
  (trajectories), final loss against lr with the spread across runs, the outcome strip, the
  suggested lr (``lrsweep.suggest_lr``) and theory's critical lr (gradient descent on a built-in
  problem), and the parameters over the epochs for problems of at most 4 scalar parameters;
- two swept axes (per-group learning rates, lr x hyperparameter, lr x init grid): a map of the
  worst outcome or the final loss; hovering shows a config's numbers, clicking selects it.

Pages stay under ``PAGE_MAX_BYTES`` (5 MB): larger sweeps are thinned by even strides and the page
says so. ``page.html#lr=0.1`` opens on the nearest config (``#lr_W0=1&lr_W1=3`` on a map), and the
address follows the selection, for slides.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import xarray as xr

from .. import outcomes, spec_sources
from ._data import PAGE_MAX_BYTES, VALUES_MAX, build, critical_lr, outcome_colors, suggested, suggestion

__all__ = ["PAGE_MAX_BYTES", "explore", "load", "page"]


def _template() -> str:
    return resources.files(__name__).joinpath("templates", "explore.html").read_text(encoding="utf-8")


def load(source: xr.Dataset | str | Path, *, progress: bool | None = None) -> xr.Dataset:
    """The sweep behind ``source``: a result Dataset, a store path, or a spec TOML file (run here,
    with ``lrsweep run``'s defaults; its ``out`` is honoured, so a stored sweep resumes)."""
    from .. import api, results

    if isinstance(source, xr.Dataset):
        return source
    if not isinstance(source, (str, Path)):
        raise ValueError(
            f"source={type(source).__name__} is invalid: expected an xarray.Dataset, a store path or a .toml spec file"
        )
    path = Path(source)
    if path.suffix.lower() == ".toml":
        if not path.is_file():
            raise ValueError(f"source={str(path)!r} does not exist: expected a spec file")
        settings = spec_sources.cli_defaults()
        settings.update(spec_sources.load_toml(path))
        problem = settings.pop("problem")
        return api.sweep(problem, settings.pop("lr"), progress=progress, **settings)
    return results.open(path)


def _title(ds: xr.Dataset) -> tuple[str, str]:
    a = ds.attrs
    sizes = " x ".join(f"{ds.sizes[d]:,} {d}" for d in ds["outcome"].dims)
    problem = a.get("problem", "a sweep")
    settings = ", ".join(
        f"{k} {a[k]}" for k in ("optimizer", "grad", "precision", "record") if isinstance(a.get(k), (str, int, float))
    )
    epochs = f"{int(a['epochs']):,} epochs" if "epochs" in a else ""
    return f"lrsweep explorer: {problem}", "; ".join(x for x in (sizes, epochs, settings) if x)


def page(ds: xr.Dataset) -> str:
    """The explorer page for ``ds``, as text (under ``PAGE_MAX_BYTES`` bytes)."""
    template = _template()
    values_max = VALUES_MAX
    title, subtitle = _title(ds)
    while True:
        data = build(ds, values_max)
        lr_dim = data["axes"][0]["name"]
        if data["kind"] == "1d":
            data["suggested"] = suggested(ds, lr_dim)
            data["suggestion"] = suggestion(ds, lr_dim)
            data["critical"] = critical_lr(ds, lr_dim)
        data.update(
            title=title,
            subtitle=subtitle,
            outcome_names=list(outcomes.NAMES),
            outcome_colors=outcome_colors(),
            chunks=[ds.attrs.get("chunks_done"), ds.attrs.get("chunks_total")],
            page_max=PAGE_MAX_BYTES,
        )
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        text = template.replace("__TITLE__", _escape(title)).replace("__DATA__", payload.replace("</", "<\\/"))
        if len(text.encode("utf-8")) <= PAGE_MAX_BYTES or values_max < 1000:
            return text
        values_max //= 2  # pragma: no cover - the budget's estimate leaves room; a guard for odd sweeps


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def explore(source: xr.Dataset | str | Path, path: str | Path, *, progress: bool | None = None) -> Path:
    """Write the explorer page of ``source`` (a Dataset, a store path or a spec .toml file) to ``path``.

    Returns the path written. The page is one offline HTML file under 5 MB; open it in a browser
    (``path#lr=0.1`` opens on the nearest learning rate).
    """
    ds = load(source, progress=progress)
    if "outcome" not in ds:
        raise ValueError(f"source is invalid: it has no 'outcome' variable (has {list(ds.data_vars)})")
    out = Path(path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"path={str(out)!r} is invalid: expected an .html file name")
    text = page(ds)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ValueError(f"path={str(out)!r} cannot be written: {err.strerror or err}") from None
    return out
