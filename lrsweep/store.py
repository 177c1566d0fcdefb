"""Where a sweep's results go: memory, or a resumable Zarr store on disk.

A sweep is cut into *chunks*: rectangular blocks of its grid of configs, each trained by one
compiled program (``lrsweep.plan``). Both sinks take a chunk's results as arrays shaped like its
region and write them there.

The Zarr store (``sweep(..., out="sweep.zarr")``, ``lrsweep run ... --out sweep.zarr``):

- one Zarr array per variable, with xarray's conventions (``dimension_names``), whose Zarr chunks
  are exactly our chunks: each chunk writes whole Zarr chunks, so rewriting one never touches another;
- after a chunk's data, its *done-mark* (``chunk_done[k] = 1``, a chunk of its own) is written, so
  a crash (SIGKILL, Ctrl-C, power loss) at any point loses at most the chunks in flight: running the
  same command again skips every done chunk and redoes the rest, and ends with the same bytes as
  an uninterrupted run;
- the sweep's spec (``attrs["spec"]``, JSON) is written first; a run whose spec differs is refused.

:func:`open` reopens a store as an ``xarray.Dataset``; :func:`export` writes its summary (one
row per config) to CSV or Parquet, block by block.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr
import zarr

from . import identity, outcomes
from .plan import Layout, coord_attrs

FORMAT = "lrsweep-store/2"
#: Stores with at most this many configs get an index on every dim on :func:`open` (like an
#: in-memory sweep, so ``ds.sel(lr=0.1)`` works); larger ones get none (a pandas index of 1e8
#: learning rates would take 800 MB).
INDEX_MAX = 10_000_000


def _with_outcome_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``outcome`` keeps its int8 codes; CF flag attributes say what they mean (``lrsweep.outcome_names``)."""
    ds["outcome"].attrs.update(outcomes.FLAG_ATTRS)
    return ds


class MemorySink:
    """Results in numpy arrays; :meth:`dataset` builds the ``xarray.Dataset``."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.arrays = {name: np.full(v.shape, v.fill, v.dtype) for name, v in layout.variables.items()}

    def is_done(self, k: int) -> bool:
        return False

    def write(self, k: int, values: dict[str, np.ndarray]) -> None:
        region = self.layout.chunk_region(k)
        for name, value in values.items():
            self.arrays[name][region] = value

    def mark_done(self, k: int) -> None:
        pass

    def dataset(self) -> xr.Dataset:
        lay = self.layout
        coords = {d: (d, lay.coord_values(d), coord_attrs(d)) for d in lay.dims}
        coords.update({name: (d, values, coord_attrs(name)) for name, (d, values) in lay.extra_coords.items()})
        if lay.epochs is not None:
            coords["epoch"] = ("epoch", lay.epochs, coord_attrs("epoch"))
        data = {name: (v.dims, self.arrays[name], dict(v.attrs)) for name, v in lay.variables.items()}
        return _with_outcome_attrs(xr.Dataset(data, coords=coords, attrs=dict(lay.attrs)))


class ZarrSink:
    """Results in a Zarr store at ``path``: created on the first run, resumed on the next ones."""

    def __init__(self, layout: Layout, path: str | Path):
        self.layout, self.path = layout, Path(path)
        spec_json = layout.attrs["spec"]
        existing = (self.path.is_dir() and any(self.path.iterdir())) or self.path.is_file()
        if existing:
            self.group = self._reopen(spec_json)
        else:
            self.group = self._create()
        self.done = self._array("chunk_done")
        self._done_now = np.asarray(self.done[:], dtype=bool)

    # -- creation and reopening ---------------------------------------------------------------
    def _reopen(self, spec_json: str) -> zarr.Group:
        where = f"--out={str(self.path)!r}"
        try:
            group = zarr.open_group(self.path, mode="r+")
            attrs: dict[str, Any] = dict(group.attrs)
        except Exception:  # noqa: BLE001 - anything unreadable is "not a store of ours"
            raise ValueError(f"{where} exists and is not an lrsweep store; choose another path") from None
        if attrs.get("format") != FORMAT:
            raise ValueError(f"{where} exists and is not an lrsweep store ({FORMAT}); choose another path")
        if attrs.get("spec") != spec_json:
            diff = identity.differences(json.loads(attrs["spec"]), json.loads(spec_json))
            raise ValueError(
                f"{where} holds a sweep of another spec ({'; '.join(diff[:3])}{' ...' if len(diff) > 3 else ''}); "
                "give a new path, or delete the store to start over"
            )
        if tuple(attrs.get("chunk_shape", ())) != tuple(self.layout.chunk_shape):
            # Same spec, another memory budget: keep the store's chunks so that regions stay
            # aligned (results do not depend on the chunk size, see lrsweep.plan).
            self.layout = dataclasses.replace(
                self.layout,
                chunk_shape=tuple(attrs["chunk_shape"]),
                attrs={**self.layout.attrs, "chunk_size": attrs["chunk_size"]},
            )
        return group

    def _create(self) -> zarr.Group:
        lay = self.layout
        try:
            group = zarr.open_group(self.path, mode="w")
            group.attrs.update(
                {
                    **_jsonable_attrs(lay.attrs),
                    "format": FORMAT,
                    "chunk_shape": list(lay.chunk_shape),
                    "extra_coords": list(lay.extra_coords),
                }
            )
            for d, t, s in zip(lay.dims, lay.chunk_shape, lay.shape):
                values0 = lay.coord_values(d, slice(0, 1))
                arr = group.create_array(
                    d, shape=(s,), chunks=(t,), dtype=values0.dtype, dimension_names=[d], attributes=coord_attrs(d)
                )
                block = max(t, 2**20 // t * t)
                for start in range(0, s, block):  # huge axes are written block by block
                    arr[start : start + block] = lay.coord_values(d, slice(start, start + block))
            for name, (d, values) in lay.extra_coords.items():
                t = lay.chunk_shape[lay.dims.index(d)]
                group.create_array(
                    name,
                    shape=values.shape,
                    chunks=(t,),
                    dtype=values.dtype,
                    dimension_names=[d],
                    attributes=coord_attrs(name),
                )[:] = values
            if lay.epochs is not None:
                group.create_array(
                    "epoch",
                    shape=lay.epochs.shape,
                    dtype=lay.epochs.dtype,
                    dimension_names=["epoch"],
                    attributes=coord_attrs("epoch"),
                )[:] = lay.epochs
            for name, v in lay.variables.items():
                chunks = tuple(lay.chunk_shape) + tuple(v.shape[len(lay.dims) :])
                attrs = dict(v.attrs)
                if name == "outcome":
                    attrs.update(outcomes.FLAG_ATTRS)
                group.create_array(
                    name,
                    shape=v.shape,
                    chunks=chunks,
                    dtype=v.dtype,
                    fill_value=v.fill,
                    dimension_names=list(v.dims),
                    attributes=attrs,
                )
            group.create_array(
                "chunk_done", shape=(lay.n_chunks,), chunks=(1,), dtype="uint8", fill_value=0, dimension_names=["chunk"]
            )
        except OSError as err:
            raise ValueError(f"--out={str(self.path)!r} cannot be written: {err.strerror or err}") from None
        return group

    # -- chunks -------------------------------------------------------------------------------
    def is_done(self, k: int) -> bool:
        return bool(self._done_now[k])

    def write(self, k: int, values: dict[str, np.ndarray]) -> None:
        region = self.layout.chunk_region(k)
        try:
            for name, value in values.items():
                self._array(name)[region] = value
        except OSError as err:
            raise ValueError(
                f"--out={str(self.path)!r}: writing chunk {k} failed: {err.strerror or err}; "
                "the finished chunks are kept, run the same command again to resume"
            ) from None

    def _array(self, name: str) -> zarr.Array:
        array = self.group[name]
        assert isinstance(array, zarr.Array), name  # a store of ours holds arrays only
        return array

    def mark_done(self, k: int) -> None:
        try:
            self.done[k] = 1  # written after the chunk's data: a crash before it redoes the chunk
        except OSError as err:
            raise ValueError(
                f"--out={str(self.path)!r}: marking chunk {k} done failed: {err.strerror or err}"
            ) from None
        self._done_now[k] = True

    def dataset(self) -> xr.Dataset:
        return open(self.path)


def _jsonable_attrs(attrs: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}


def open(path: str | Path) -> xr.Dataset:  # noqa: A001 - the natural name, as xarray.open_dataset
    """Reopen a store written by ``sweep(..., out=path)`` as an ``xarray.Dataset``.

    Arrays stay on disk until used (xarray's lazy indexing). It opens like an in-memory result:
    ``outcome`` as int8 codes (-1 for configs not trained yet; ``lrsweep.outcome_names`` decodes
    them, ``ds.outcome.attrs["flag_meanings"]`` says what they mean). A store of at most
    ``INDEX_MAX`` configs gets an index on every dim, so ``ds.sel(lr=0.1)`` works; larger ones get
    none (``ds.set_xindex("lr")`` builds one; or use ``isel``). ``ds.attrs["chunks_done"]`` and
    ``["chunks_total"]`` say how complete it is.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path={str(path)!r} does not exist")
    try:
        # A store has a handful of arrays, so reading their metadata one by one is cheap, and
        # consolidated metadata is not part of the Zarr 3 format.
        # mask_and_scale=False: the fill values are the data's own "not trained yet" (-1 codes,
        # NaN losses), not missing values to turn integer arrays into floats for.
        # No indexes yet: a pandas index of 1e8 learning rates would take 800 MB. Small stores get
        # them below, so that ds.sel(lr=...) works as on an in-memory result.
        ds = xr.open_zarr(path, consolidated=False, mask_and_scale=False, create_default_indexes=False)
    except Exception as err:  # noqa: BLE001 - any failure to read is reported with the path
        raise ValueError(f"path={str(path)!r} is not a readable lrsweep store: {err}") from None
    if ds.attrs.get("format") != FORMAT:
        raise ValueError(f"path={str(path)!r} is not an lrsweep store")
    done = np.asarray(ds["chunk_done"].values)
    ds = ds.drop_vars("chunk_done").set_coords(ds.attrs.pop("extra_coords", []))
    ds.attrs.update(chunks_done=int(done.sum()), chunks_total=int(done.size))
    ds = _with_outcome_attrs(ds)
    if ds["outcome"].size <= INDEX_MAX:
        for dim in list(ds.dims):
            if dim in ds.coords:
                ds = ds.set_xindex(str(dim))
    return ds


def summary_table(ds: xr.Dataset):
    """One row per config: the sweep's coords, final loss, scalar parameters, outcome, event epoch."""
    if "epoch" in ds.dims:
        ds = ds.isel(epoch=-1, drop=True)
    keep = [v for v in ds.data_vars if ds[v].ndim == ds["outcome"].ndim]
    frame = ds[keep].to_dataframe().reset_index()
    frame["outcome"] = outcomes.names(frame["outcome"].to_numpy())
    return frame


def export(source: xr.Dataset | str | Path, path: str | Path, block: int = 1_000_000) -> Path:
    """Write a sweep's summary, one row per config, to ``path`` (``.csv`` or ``.parquet``).

    ``source`` is a result Dataset or a store path. Rows are written in blocks of about ``block``
    configs along the first sweep dim, so a store larger than memory exports too.
    """
    ds = open(source) if isinstance(source, (str, Path)) else source
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".csv", ".parquet"):
        raise ValueError(f"path={str(path)!r} is invalid: expected a .csv or .parquet file name")
    first = ds["outcome"].dims[0]
    per_row = max(1, int(np.prod([ds.sizes[d] for d in ds["outcome"].dims[1:]], dtype=np.int64)))
    step = max(1, block // per_row)
    tmp = path.with_name(path.name + ".partial")
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
        if writer is not None:
            writer.close()
        shutil.move(tmp, path)
    except OSError as err:
        raise ValueError(f"path={str(path)!r} cannot be written: {err.strerror or err}") from None
    return path
