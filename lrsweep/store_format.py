"""The on-disk format of a store: its arrays, their metadata documents and coordinates.

What a Zarr store of a sweep holds (format :data:`FORMAT`, docs/store.md): one array per
coordinate, written block by block so that huge axes are never materialised; one array per
variable whose Zarr chunks are exactly the sweep's chunks; the done-marks (``chunk_done``, a
checksum per chunk) and ``chunk_env`` (the environment that computed each chunk). The writer
(``lrsweep.store``) and the reader (``lrsweep.results``) both build on these definitions, so the
layout has one home.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
import zarr.storage
from zarr.core.buffer import default_buffer_prototype

from . import _fs, integrity, outcomes
from .integrity import ENVS, MARKS
from .integrity import FORMAT as FORMAT  # the format this module writes (defined where verify checks it)
from .plan import Layout, coord_attrs, human_size

#: Zarr's own temporary files (``<name>.<32 hex>.partial``), left inside a store by a killed writer.
_ZARR_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")


def with_outcome_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``outcome`` keeps its int8 codes; CF flag attributes say what they mean (``lrsweep.outcome_names``)."""
    ds["outcome"].attrs.update(outcomes.FLAG_ATTRS)
    return ds


def coordinates(lay: Layout) -> list[tuple[str, str, int, int, np.dtype, Callable[[slice], np.ndarray]]]:
    """(name, dim, length, chunk, dtype, values of a slice) of each coordinate array."""
    out = []
    for d, t, s in zip(lay.dims, lay.chunk_shape, lay.shape):
        dtype = lay.coord_values(d, slice(0, 1)).dtype
        out.append((d, d, s, t, dtype, lambda sl, d=d: lay.coord_values(d, sl)))
    for name, (d, values) in lay.extra_coords.items():
        t = lay.chunk_shape[lay.dims.index(d)]
        out.append((name, d, len(values), t, values.dtype, lambda sl, v=values: np.asarray(v[sl])))
    if lay.epochs is not None:
        ep = lay.epochs
        out.append(("epoch", "epoch", len(ep), len(ep), ep.dtype, lambda sl, v=ep: np.asarray(v[sl])))
    for d, v in lay.step_coords.items():
        out.append((d, d, len(v), len(v), v.dtype, lambda sl, v=v: np.asarray(v[sl])))
    return out


def coordinate_bytes(lay: Layout) -> int:
    """Bytes of the store's coordinate arrays and bookkeeping (before compression)."""
    coords = sum(n * np.dtype(dtype).itemsize for _, _, n, _, dtype, _ in coordinates(lay))
    return int(coords + lay.n_chunks * 10)


def create_arrays(group: zarr.Group, lay: Layout) -> dict[str, zarr.Array]:
    """Every array of a store, empty: coordinates, one per variable, done-marks and environments."""
    arrays = {}
    for name, dim, n, t, dtype, _ in coordinates(lay):
        arrays[name] = group.create_array(
            name,
            shape=(n,),
            chunks=(max(t, 1),),
            dtype=dtype,
            dimension_names=[dim],
            attributes=jsonable_attrs(coord_attrs(name)),
        )
    for name, v in lay.variables.items():
        chunks = tuple(lay.chunk_shape) + tuple(v.shape[len(lay.dims) :])
        attrs = dict(getattr(v, "attrs", None) or {})
        if name == "outcome":
            attrs.update(outcomes.FLAG_ATTRS)
        arrays[name] = group.create_array(
            name,
            shape=v.shape,
            chunks=tuple(max(c, 1) for c in chunks),
            dtype=v.dtype,
            fill_value=v.fill,
            dimension_names=list(v.dims),
            attributes=jsonable_attrs(attrs),
        )
    for name, dtype in ((MARKS, "uint64"), (ENVS, "uint16")):
        arrays[name] = group.create_array(
            name, shape=(lay.n_chunks,), chunks=(1,), dtype=dtype, fill_value=0, dimension_names=["chunk"]
        )
    return arrays


def expected_docs(lay: Layout) -> dict[str, bytes]:
    """Each array's ``zarr.json`` as this layout makes it (built in memory; nothing is written)."""
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    proto = default_buffer_prototype()
    return {
        name: array.metadata.to_buffer_dict(proto)["zarr.json"].to_bytes()
        for name, array in create_arrays(group, lay).items()
    }


#: A coordinate is written in blocks of about this many values (whole Zarr chunks): a block's
#: values, their computation and Zarr's encoding of them are in memory at once, outside the
#: budget's chunks, so a block is kept small against the smallest budgets.
COORD_BLOCK = 2**16


def write_coordinate(array: zarr.Array, n: int, t: int, values: Callable[[slice], np.ndarray], check) -> str:
    """Write a coordinate block by block (huge axes never materialised); returns its checksum."""
    block = max(t, COORD_BLOCK // max(t, 1) * t)

    def blocks():
        for start in range(0, max(n, 1), block):
            part = values(slice(start, start + block))
            array[start : start + len(part)] = part
            check()
            yield part

    return integrity.coord_digest(array.dtype, n, blocks())


def jsonable_attrs(attrs: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}


def root_doc(attrs: dict) -> bytes:
    return json.dumps({"attributes": attrs, "zarr_format": 3, "node_type": "group"}, indent=2).encode()


def consolidate(path: Path) -> None:
    """Consolidated metadata in ``zarr.json``, so that ``xr.open_zarr(path)`` reads it without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not part of the Zarr format 3 specification": we know
        zarr.consolidate_metadata(zarr.storage.LocalStore(path))


def check_space(lay: Layout, path: str | Path) -> None:
    """Refuse, before anything is written, a store whose coordinates do not fit the free space at ``path``."""
    path = Path(path)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        return  # a store being resumed has its coordinates already
    need, free = coordinate_bytes(lay), _fs.free_bytes(path)
    if need > free:
        raise ValueError(
            f"--out={str(path)!r} cannot hold this sweep: its coordinates alone need {human_size(need)} "
            f"and {human_size(free)} are free there; sweep fewer configs, or write to another disk"
        )


def remove_stale(path: Path, inside: bool = True) -> list[Path]:
    """Temporary files of dead writers of this store: creation directories beside it and, with
    ``inside`` (only for a store whose attributes say it is ours), Zarr's ``*.partial`` and our
    temp files inside it. Call with the store's lock held."""
    removed = []
    host = _fs._host_tag()
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            m = _fs.TEMP_PATTERN.fullmatch(entry.name)
            if (
                m
                and m["name"] == path.name[: _fs._NAME_KEEP]
                and m["host"] == host
                and not _fs.pid_alive(int(m["pid"]))
            ):
                _fs._remove_tree(Path(entry.path))
                removed.append(Path(entry.path))
    if inside and path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in files + dirs:
                m = _fs.TEMP_PATTERN.fullmatch(name)
                ours = m is not None and m["host"] == host and not _fs.pid_alive(int(m["pid"]))
                if _ZARR_PARTIAL.fullmatch(name) or ours:
                    _fs._remove_tree(Path(root) / name)
                    removed.append(Path(root) / name)
    return removed
