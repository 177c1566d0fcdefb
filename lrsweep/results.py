"""A sweep's results read back: reopen a store as an ``xarray.Dataset``, verify it, export its summary.

:func:`open` never returns damaged data silently (it verifies every finished chunk against its
checksum first); :func:`export` writes one row per config to CSV or Parquet, block by block, so a
store larger than memory exports too. The store itself is written by ``lrsweep.store``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
import zarr
import zarr.storage

from . import _fs, integrity, outcomes
from .integrity import ENVS, MARKS
from .problems import EVAL_LOSS, RESERVED_NAMES
from .store_format import FORMAT, with_outcome_attrs

#: Stores with at most this many configs get an index on every dim on :func:`open` (like an
#: in-memory sweep, so ``ds.sel(lr=0.1)`` works); larger ones get none (a pandas index of 1e8
#: learning rates would take 800 MB).
INDEX_MAX = 10_000_000


def open(path: str | Path, *, verify: bool = True, index_max: int = INDEX_MAX) -> xr.Dataset:  # noqa: A001 - the natural name, as xarray.open_dataset
    """Reopen a store written by ``sweep(..., out=path)`` as an ``xarray.Dataset``.

    Never returns damaged data silently: the store is verified first (``lrsweep.verify``: every
    finished chunk against its checksum, metadata and coordinates against theirs; it reads the
    store back once, chunk by chunk) and a damaged one is refused with a ValueError naming the
    damaged chunks and the fix (run the same sweep again: it recomputes them). ``verify=False``
    skips that check (the caller takes responsibility, e.g. right after writing the store).

    Arrays stay on disk until used (xarray's lazy indexing). It opens like an in-memory result:
    ``outcome`` as int8 codes (-1 for configs not trained yet; ``lrsweep.outcome_names`` decodes
    them, ``ds.outcome.attrs["flag_meanings"]`` says what they mean). A store of at most
    ``index_max`` configs (default ``INDEX_MAX``) gets an index on every dim, so ``ds.sel(lr=0.1)``
    works; larger ones get none (``ds.set_xindex("lr")`` builds one; or use ``isel``). ``ds.attrs["chunks_done"]`` and
    ``["chunks_total"]`` say how complete it is, ``["environments"]`` (JSON) where it was computed.
    """
    path = _store_path("path", path)
    where = f"path={str(path)!r}"
    if not path.exists():
        raise ValueError(f"{where} does not exist")
    if verify:
        damage = integrity.verify(path)
        if not damage.clean:
            raise ValueError(
                f"{where} is damaged ({'; '.join(damage.lines())}); run the same sweep again with the same out= "
                "to repair it (damaged chunks are recomputed), or open(..., verify=False) to read it anyway"
            )
    attrs, _ = integrity.load_attrs(path)
    if attrs is None or attrs.get("format") != FORMAT:
        raise ValueError(f"{where} is not an lrsweep store ({FORMAT})")
    try:
        # mask_and_scale=False: the fill values are the data's own "not trained yet" (-1 codes,
        # NaN losses), not missing values to turn integer arrays into floats for.
        # No indexes yet: a pandas index of 1e8 learning rates would take 800 MB. Small stores get
        # them below, so that ds.sel(lr=...) works as on an in-memory result.
        ds = xr.open_zarr(path, consolidated=False, mask_and_scale=False, create_default_indexes=False)
    except Exception as err:  # noqa: BLE001 - any failure to read is reported with the path
        raise ValueError(f"{where} is not a readable lrsweep store: {err}") from None
    n_chunks = int(ds.sizes.get("chunk", 0))
    marks, _, _ = integrity.read_marks(
        zarr.open_group(zarr.storage.LocalStore(path, read_only=True), mode="r"), n_chunks
    )
    ds = ds.drop_vars([MARKS, ENVS], errors="ignore").set_coords(attrs.get("extra_coords", []))
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in integrity.BOOKKEEPING}
    ds.attrs["environments"] = json.dumps(ds.attrs.get("environments", []))
    ds.attrs.update(chunks_done=int(np.count_nonzero(marks)), chunks_total=n_chunks)
    ds = with_outcome_attrs(ds)
    if ds["outcome"].size <= index_max:
        for dim in list(ds.dims):
            if dim in ds.coords:
                ds = ds.set_xindex(str(dim))
    return ds


def verify(path: str | Path) -> integrity.Damage:
    """The damaged chunks of the store at ``path`` (``lrsweep.integrity.verify``)."""
    return integrity.verify(_store_path("path", path))


def _store_path(arg: str, value) -> Path:
    """``value`` as a Path if it is a str or path-like, else a ValueError naming ``arg``."""
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise ValueError(f"{arg}={value!r} is invalid: expected a store's path (a string or a pathlib.Path)")


def summary_table(ds: xr.Dataset):
    """One row per config: the sweep's coords, and every variable's final value.

    Array parameters get one column per element, ``W0[0,1]``; trajectories give their last epoch.
    """
    if "epoch" in ds.dims:
        ds = ds.isel(epoch=-1, drop=True)
    dims = ds["outcome"].dims
    columns = {}
    for name in ds.data_vars:
        var = ds[name]
        if var.dims[: len(dims)] != dims:
            continue
        extra = var.dims[len(dims) :]
        if not extra:
            columns[name] = var
            continue
        for idx in np.ndindex(*[var.sizes[d] for d in extra]):
            columns[f"{name}[{','.join(map(str, idx))}]"] = var.isel(dict(zip(extra, idx)), drop=True)
    frame = xr.Dataset(columns, coords={c: ds.coords[c] for c in ds.coords if set(ds.coords[c].dims) <= set(dims)})
    frame = frame.to_dataframe().reset_index()
    frame["outcome"] = outcomes.names(frame["outcome"].to_numpy())
    return frame[_column_order(list(frame.columns), dims, columns)]


#: The verdict columns first, in this order; any other result variable after them, by name.
_VERDICTS = ("outcome", "event_epoch", "score", "loss", "best_loss", "best_epoch")


def _column_order(names: list[str], dims: tuple, columns: dict) -> list[str]:
    """A fixed order, whatever order the store lists its arrays in: the coordinates (the sweep's
    dims, then the others by name), the verdicts and other result variables (:data:`_VERDICTS`,
    then the rest of the names a result reserves, by name) and the parameters (by name, each
    one's elements in C order)."""
    coords = [d for d in dims if d in names] + sorted(n for n in names if n not in columns and n not in dims)
    base = {n: n.partition("[")[0] for n in names if n in columns}
    verdicts = [n for n in _VERDICTS if n in base] + sorted(
        n for n in base if n not in _VERDICTS and (n in RESERVED_NAMES or n == EVAL_LOSS)
    )
    params = sorted((n for n in base if n not in verdicts), key=lambda n: base[n])  # stable: elements keep order
    return coords + verdicts + params


def export(
    source: xr.Dataset | str | Path, path: str | Path, block: int = 1_000_000, *, overwrite: bool = False
) -> Path:
    """Write a sweep's summary, one row per config, to ``path`` (``.csv`` or ``.parquet``).

    ``source`` is a result Dataset or a store path (verified, see :func:`open`). Rows are written
    in blocks of about ``block`` configs along the first sweep dim, so a store larger than memory
    exports too. Array parameters get one column per element (``W0[0,1]``).

    Only what is ours is touched: an existing ``path`` is refused unless ``overwrite=True``
    (``lrsweep export --force``), a directory always; the table is written under a unique
    temporary name beside ``path`` and renamed into place when complete (``_fs.atomic_output``),
    so a failure or Ctrl-C leaves ``path`` as it was and no temporary file behind; a killed
    export's temporary file is removed by the next export to the same path. Columns come in a
    fixed order: the coordinates, the verdicts, the parameters (:func:`summary_table`).
    """
    if not isinstance(source, xr.Dataset):
        source = _store_path("source", source)
    path = _store_path("path", path)
    fmt = path.suffix.lower()
    if fmt not in (".csv", ".parquet"):
        raise ValueError(f"path={str(path)!r} is invalid: expected a .csv or .parquet file name")
    if path.is_dir():
        raise ValueError(f"path={str(path)!r} is a directory; give a file name")
    if not overwrite and os.path.lexists(path):
        raise ValueError(f"path={str(path)!r} exists; pass overwrite=True (--force) to replace it")
    ds = open(source) if isinstance(source, (str, Path)) else source
    _fs.remove_dead_temps(path)  # a killed export's temporary file (its pid is dead)
    first = ds["outcome"].dims[0]
    per_row = max(1, int(np.prod([ds.sizes[d] for d in ds["outcome"].dims[1:]], dtype=np.int64)))
    step = max(1, block // per_row)
    with _fs.atomic_output(path, overwrite=overwrite) as tmp:
        writer = None
        try:
            for start in range(0, ds.sizes[first], step):
                frame = summary_table(ds.isel({first: slice(start, start + step)}).load())
                if fmt == ".csv":
                    frame.to_csv(tmp, mode="w" if start == 0 else "a", header=start == 0, index=False)
                else:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
        except OSError as err:
            raise ValueError(f"path={str(path)!r} cannot be written: {err.strerror or err}") from None
        finally:
            if writer is not None:
                writer.close()
    return path
