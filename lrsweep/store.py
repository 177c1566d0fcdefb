"""Where a sweep's results go: memory, or a resumable Zarr store on disk.

A sweep is cut into *chunks*: rectangular blocks of its grid of configs, each trained by one
compiled program (``lrsweep.plan``). Both sinks take a chunk's results as arrays shaped like its
region and write them there, NaNs made canonical (``integrity.canonical_nans``) so that the store
and the in-memory result are equal byte for byte.

The Zarr store (``sweep(..., out="sweep.zarr")``, ``lrsweep run ... --out sweep.zarr``), format
:data:`FORMAT` (docs/store.md has the whole story):

- **Created atomically**: its metadata and coordinates are built in a temporary sibling directory
  and renamed into place (``_fs.atomic_dir``; into an existing empty directory, its ``zarr.json``
  moves in last). A store without its ``zarr.json`` is an unfinished creation: remade when it
  holds no finished chunk, refused otherwise.
- **One array per variable**, with xarray's conventions, whose Zarr chunks are exactly our
  chunks: each chunk writes whole Zarr chunks, so rewriting one never touches another.
- **A done-mark per chunk that is a checksum**: after a chunk's data, ``chunk_done[k]`` gets a
  64-bit checksum of them (0: unfinished), and ``chunk_env[k]`` the index of the environment that
  computed it (``attrs["environments"]``). A crash loses at most the chunks in flight and the
  done-marks not yet synced (at most ``SYNC_INTERVAL_S`` of work).
- **Durable**: a chunk's data files are fsync-ed before its done-mark is written, and the
  done-mark after (batched: every ``SYNC_INTERVAL_S`` seconds and at the end), so that after a
  power loss no done-mark exists without its data. ``LRSWEEP_FSYNC=0`` turns syncing off.
- **Self-checking**: running the same sweep again verifies every finished chunk against its
  checksum, and metadata and coordinates against theirs, rebuilds damaged metadata from the spec
  and recomputes damaged chunks. ``lrsweep.open`` refuses a damaged store; ``lrsweep verify``
  lists the damage (``lrsweep.integrity``).
- **Identified**: a run whose canonical spec differs is refused, naming the differences; a run on
  other versions, backend or kernel path is refused unless ``allow_mixed``.

The arrays and their documents are defined in ``lrsweep.store_format``; ``lrsweep.results``
reopens a store as an ``xarray.Dataset`` (``lrsweep.open``) and exports its summary.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
import zarr.storage

from . import _fs, identity, integrity, results
from ._signals import deferred_interrupt, kill_point
from .integrity import BACKUP, ENVS, MARKS
from .plan import COORD_COPIES, Layout, coord_attrs, human_size
from .store_format import (
    FORMAT,
    check_space,
    consolidate,
    coordinates,
    create_arrays,
    expected_docs,
    jsonable_attrs,
    remove_stale,
    root_doc,
    with_outcome_attrs,
    write_coordinate,
)

#: Done-marks are written (and data and marks synced) in batches at most this many seconds apart:
#: a crash loses at most this much finished work, and syncing costs one pass per batch.
SYNC_INTERVAL_S = 1.0
#: Whether chunks are fsync-ed before their done-marks (``LRSWEEP_FSYNC=0`` in the environment: no).
FSYNC = os.environ.get("LRSWEEP_FSYNC", "1") != "0"


class DamageWarning(UserWarning):
    """A resumed store had damage that this run repairs (chunks recomputed, metadata rebuilt)."""


class MemorySink:
    """Results in numpy arrays; :meth:`dataset` builds the ``xarray.Dataset``."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.arrays = {name: np.full(v.shape, v.fill, v.dtype) for name, v in layout.variables.items()}

    def is_done(self, k: int) -> bool:
        return False

    def write(self, k: int, values: dict[str, np.ndarray]) -> None:
        region = self.layout.chunk_region(k)
        for name, value in integrity.canonical_nans(values).items():
            self.arrays[name][region] = value

    def mark_done(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass

    def dataset(self) -> xr.Dataset:
        lay = self.layout
        coords = {d: (d, lay.coord_values(d), coord_attrs(d)) for d in lay.dims}
        coords.update({name: (d, values, coord_attrs(name)) for name, (d, values) in lay.extra_coords.items()})
        if lay.epochs is not None:
            coords["epoch"] = ("epoch", lay.epochs, coord_attrs("epoch"))
        coords.update({d: (d, values, coord_attrs(d)) for d, values in lay.step_coords.items()})
        data = {name: (v.dims, self.arrays[name], dict(v.attrs)) for name, v in lay.variables.items()}
        return with_outcome_attrs(xr.Dataset(data, coords=coords, attrs=dict(lay.attrs)))


# -- the Zarr sink ---------------------------------------------------------------------------------


class ZarrSink:
    """Results in a Zarr store at ``path``: created on the first run, verified and resumed on the next ones.

    Call with the store's lock held (``lrsweep.lock``; ``sweep`` does). ``memory`` and
    ``per_config`` (bytes of one config of a chunk, all chunks in flight) check that a resumed
    store's chunks fit the budget; ``allow_mixed`` lets a run on other versions, backend or
    kernel path add chunks (each chunk records its environment).
    """

    def __init__(
        self,
        layout: Layout,
        path: str | Path,
        *,
        memory: int | None = None,
        per_config: int = 0,
        allow_mixed: bool = False,
    ):
        self.layout, self.path = layout, Path(path)
        self.where = f"--out={str(self.path)!r}"
        self.memory, self.per_config, self.allow_mixed = memory, per_config, allow_mixed
        self.healed: list[str] = []
        self._ready: list[tuple[int, int]] = []
        self._last_sync = time.monotonic()
        self._meta_changed = False
        self._arrays: dict[str, zarr.Array] = {}  # opened once per group (see _array)
        self._syncer: concurrent.futures.ThreadPoolExecutor | None = None  # made by the first flush
        self._syncing: concurrent.futures.Future | None = None
        try:
            with deferred_interrupt():  # Ctrl-C while creating or checking: one clean KeyboardInterrupt
                remove_stale(self.path, inside=False)  # inside only once the store is known to be ours
                if self.path.is_file() or (self.path.exists() and not self.path.is_dir()):
                    raise ValueError(f"{self.where} exists and is not an lrsweep store; choose another path")
                if not self.path.exists() or not any(self.path.iterdir()):
                    self._create()
                else:
                    self._reopen()
        except OSError as err:
            raise ValueError(f"{self.where} cannot be written: {err.strerror or err}") from None
        if self.healed:
            warnings.warn(
                f"lrsweep: {self.where} was damaged ({'; '.join(self.healed)}); this run repairs it",
                DamageWarning,
                stacklevel=3,
            )

    # -- creation -------------------------------------------------------------------------------
    def _create(self) -> None:
        lay = self.layout
        check_space(lay, self.path)
        env = integrity.environment(lay.attrs["kernel_path"])
        with (
            deferred_interrupt() as check,
            _fs.atomic_dir(self.path, marker="zarr.json", sync=FSYNC, first=BACKUP) as tmp,
        ):
            group = zarr.open_group(zarr.storage.LocalStore(tmp), mode="w", zarr_format=3)
            arrays = create_arrays(group, lay)
            kill_point("arrays")
            coords = {
                name: write_coordinate(arrays[name], n, t, values, check)
                for name, _, n, t, _, values in coordinates(lay)
            }
            kill_point("coordinates")
            attrs = {
                **jsonable_attrs(lay.attrs),
                "format": FORMAT,
                "shape": list(lay.shape),
                "chunk_shape": list(lay.chunk_shape),
                "extra_coords": list(lay.extra_coords),
                "variables": list(lay.variables),
                "coordinates": coords,
                "arrays": {
                    name: integrity.json_digest(integrity.read_json(tmp / name / "zarr.json")) for name in arrays
                },
                "environments": [env],
            }
            attrs["checksum"] = integrity.attrs_checksum(attrs)
            (tmp / BACKUP).mkdir()
            (tmp / BACKUP / "zarr.json").write_bytes(root_doc(attrs))
            (tmp / "zarr.json").write_bytes(root_doc(attrs))
            consolidate(tmp)
            check()
            kill_point("created")
        self.attrs = attrs
        self._open_group()
        self.marks = np.zeros(lay.n_chunks, np.uint64)

    # -- reopening ------------------------------------------------------------------------------
    def _reopen(self) -> None:
        attrs, problems = integrity.load_attrs(self.path)
        if attrs is None:
            self._unreadable()
            return
        remove_stale(self.path)  # its attributes say it is ours: Zarr's and our temp files inside go
        if attrs.get("format") != FORMAT:
            raise ValueError(
                f"{self.where} is a store of format {attrs.get('format')!r}, not {FORMAT!r}; give a new path"
            )
        spec_json = self.layout.attrs["spec"]
        diff = identity.stored_differences(json.loads(attrs["spec"]), json.loads(spec_json))
        if diff:
            raise ValueError(
                f"{self.where} holds a sweep of another spec ({'; '.join(diff[:3])}{' ...' if len(diff) > 3 else ''}); "
                "give a new path, or delete the store to start over"
            )
        if tuple(attrs["chunk_shape"]) != tuple(self.layout.chunk_shape):
            # Same spec, another memory budget: keep the store's chunks so that regions stay
            # aligned (results do not depend on the chunk size, see lrsweep.plan).
            chunk = int(np.prod(attrs["chunk_shape"]))
            self.layout = dataclasses.replace(
                self.layout,
                chunk_shape=tuple(attrs["chunk_shape"]),
                attrs={**self.layout.attrs, "chunk_size": attrs["chunk_size"]},
            )
            need = chunk * self.per_config
            if self.memory is not None and need > self.memory:
                raise ValueError(
                    f"{self.where} has chunks of {chunk} configs, which need about {human_size(need)} in flight, "
                    f"more than memory={human_size(self.memory)}; resume with --memory {human_size(need).replace(' ', '')} "
                    "or more (a store keeps its chunk size)"
                )
        expected = expected_docs(self.layout)
        recorded = attrs.get("arrays", {})
        if {n: integrity.json_digest(json.loads(doc)) for n, doc in expected.items()} != recorded:
            raise ValueError(
                f"{self.where} was written with another layout of its arrays (another lrsweep version?); "
                "give a new path, or delete the store to start over"
            )
        self.attrs = attrs
        env = integrity.environment(self.layout.attrs["kernel_path"])
        marks_on_disk = self._any_marks()
        if env not in attrs["environments"] and marks_on_disk and not self.allow_mixed:
            old = attrs["environments"][-1]
            raise ValueError(
                f"{self.where} was computed with {', '.join(integrity.env_differences(old, env))} (store vs this run); "
                "pass allow_mixed=True (--allow-mixed) to add chunks computed here (each chunk records its "
                "environment), or give a new path"
            )
        # Repairs, from here on: the metadata first, from the spec; then the coordinates; then chunks.
        for name, doc in expected.items():
            if integrity.read_json(self.path / name / "zarr.json") != json.loads(doc):
                (self.path / name).mkdir(exist_ok=True)
                _fs.atomic_write(self.path / name / "zarr.json", doc, overwrite=True)
                self.healed.append(f"{name}/zarr.json rebuilt")
                self._meta_changed = True
        if problems:
            self.healed += [p + ", rewritten" for p in problems]
            self._save_attrs()
        self._open_group()
        for name, _, n, t, _, values in coordinates(self.layout):
            try:
                ok = integrity.coord_checksum(self._array(name)) == attrs["coordinates"][name]
            except Exception:  # noqa: BLE001 - unreadable coordinate files
                ok = False
            if not ok:
                with deferred_interrupt() as check:
                    write_coordinate(self._array(name), n, t, values, check)
                if integrity.coord_checksum(self._array(name)) != attrs["coordinates"][name]:
                    raise ValueError(f"{self.where}: coordinate {name!r} differs from this sweep's; give a new path")
                self.healed.append(f"coordinate {name!r} rewritten")
        if env not in attrs["environments"]:
            attrs["environments"] = attrs["environments"] + [env] if marks_on_disk else [env]
            self._save_attrs()
        self._verify_chunks()

    def _any_marks(self) -> bool:
        folder = self.path / MARKS / "c"
        return folder.is_dir() and any(folder.iterdir())

    def _unreadable(self) -> None:
        """A directory without intact attributes: an unfinished creation (remade), or refused.

        Ours only if it says so: the copy of the attributes (``_lrsweep_attrs``, moved in first
        when a store is created) is there, and nothing else than Zarr arrays and groups. A Zarr
        store written by someone else (xarray's, say), a folder of them, or anything else is
        refused untouched.
        """
        entries = list(self.path.iterdir())
        zarr_like = all(
            e.name == "zarr.json" or (e.is_dir() and ((e / "zarr.json").exists() or e.name in (MARKS, BACKUP)))
            for e in entries
        )
        root = integrity.read_json(self.path / "zarr.json")
        if isinstance(root, dict) and isinstance(root.get("attributes"), dict) and "format" in root["attributes"]:
            if root["attributes"].get("format") != FORMAT:
                raise ValueError(
                    f"{self.where} is a store of format {root['attributes'].get('format')!r}, not {FORMAT!r}; "
                    "give a new path"
                )
        if not zarr_like:
            raise ValueError(f"{self.where} exists and is not an lrsweep store; choose another path")
        if self._any_marks():  # refused, never removed: finished chunks nobody can match to a sweep
            raise ValueError(
                f"{self.where} has lost its attributes (zarr.json and {BACKUP}/zarr.json) but holds finished chunks, "
                "which cannot be matched to a sweep; delete it to start over, or give a new path"
            )
        if not (self.path / BACKUP).is_dir():  # nothing says it is ours (an xarray store, say)
            raise ValueError(f"{self.where} exists and is not an lrsweep store; choose another path")
        for e in entries:  # an unfinished creation of ours: remade in place (the directory itself is kept)
            _fs._remove_tree(e)
        self._create()

    def _open_group(self) -> None:
        self.group = zarr.open_group(zarr.storage.LocalStore(self.path), mode="r+", use_consolidated=False)
        self._arrays = {}
        self.names = list(self.attrs["variables"])
        self.done = self._array(MARKS)
        self.envs = self._array(ENVS)

    def _verify_chunks(self) -> None:
        """Every finished chunk's data against its checksum; damaged ones are redone."""
        marks, envs, bad = integrity.read_marks(self.group, self.layout.n_chunks)
        damaged = set(bad)
        with deferred_interrupt() as check:
            for k in np.flatnonzero(marks):
                check()
                if not integrity.chunk_ok(self.group, self.attrs, int(k), int(marks[k]), int(envs[k])):
                    damaged.add(int(k))
        marks[list(damaged)] = 0
        self.marks = marks
        if damaged:
            self.healed.append(
                f"chunks {integrity.describe_chunks(sorted(damaged))} failed their checksums and are recomputed"
            )

    def _save_attrs(self) -> None:
        """The attributes, with a new checksum, into ``zarr.json`` and its copy (each replaced atomically)."""
        attrs = self.attrs
        attrs["checksum"] = integrity.attrs_checksum(attrs)
        (self.path / BACKUP).mkdir(exist_ok=True)
        _fs.atomic_write(self.path / BACKUP / "zarr.json", root_doc(attrs), overwrite=True)
        _fs.atomic_write(self.path / "zarr.json", root_doc(attrs), overwrite=True)
        self._meta_changed = True

    # -- chunks -------------------------------------------------------------------------------
    def is_done(self, k: int) -> bool:
        return bool(self.marks[k])

    def _array(self, name: str) -> zarr.Array:
        # Opened once per group: opening reads metadata from disk (0.6 ms, more than a small write).
        if name not in self._arrays:
            array = self.group[name]
            assert isinstance(array, zarr.Array), name  # a store of ours holds arrays only
            self._arrays[name] = array
        return self._arrays[name]

    def _env_index(self) -> int:
        env = integrity.environment(self.layout.attrs["kernel_path"])
        envs = self.attrs["environments"]
        if env not in envs:  # the run changed path (the GPU kernel fell back to XLA): record it
            envs.append(env)
            self._save_attrs()
        return envs.index(env)

    def _chunk_files(self, k: int, names: list[str]) -> list[Path]:
        pos = np.unravel_index(k, self.layout.chunk_grid)
        files = []
        for name in names:
            array = self._array(name)
            coords = tuple(int(p) for p in pos) + (0,) * (array.ndim - len(pos)) if name not in (MARKS, ENVS) else (k,)
            files.append(self.path / name / array.metadata.encode_chunk_key(coords))
        return files

    def write(self, k: int, values: dict[str, np.ndarray]) -> None:
        region = self.layout.chunk_region(k)
        values = integrity.canonical_nans(values)
        try:
            env = self._env_index()
            checksum = integrity.chunk_checksum(values, self.names, env)
            with deferred_interrupt():
                for name in self.names:
                    self._array(name)[region] = values[name]
                self.envs[k] = env
                self._ready.append((k, checksum))  # written: its done-mark follows even after a Ctrl-C
        except OSError as err:
            raise ValueError(
                f"{self.where}: writing chunk {k} failed: {err.strerror or err}; "
                "the finished chunks are kept, run the same command again to resume"
            ) from None

    def mark_done(self, k: int) -> None:
        """Chunk ``k``'s done-mark is due; it is written with the next batch (see :meth:`flush`)."""
        if not FSYNC or time.monotonic() - self._last_sync >= SYNC_INTERVAL_S:
            self.flush()

    def flush(self, wait: bool = False) -> None:
        """Hand the written chunks to the syncer: it syncs their data, then writes and syncs their
        done-marks (checksums). ``wait``: until every batch handed over is marked.

        With ``FSYNC`` the syncer is a thread of its own: waiting for the disk overlaps with the
        chunks being computed, so durability costs the sweep little more than the last batch.
        """
        if self._syncing is not None and (wait or self._syncing.done()):
            future, self._syncing = self._syncing, None
            future.result()  # a failure of the previous batch surfaces here
        if self._ready:
            ready, self._ready = self._ready, []
            if not FSYNC:
                self._mark(ready)
            else:
                self._syncer = self._syncer or concurrent.futures.ThreadPoolExecutor(1, "lrsweep-sync")
                self._syncing = self._syncer.submit(self._mark, ready)
                if wait:
                    self.flush(wait=True)
        self._last_sync = time.monotonic()

    def _mark(self, ready: list[tuple[int, int]]) -> None:
        """Data synced, then done-marks written and synced: no done-mark outlives its data."""
        try:
            with deferred_interrupt():
                if FSYNC:
                    _sync([f for k, _ in ready for f in self._chunk_files(k, [*self.names, ENVS])], self.path)
                kill_point("before-marks")
                for k, checksum in ready:
                    self.done[k] = checksum
                if FSYNC:
                    _sync([f for k, _ in ready for f in self._chunk_files(k, [MARKS])], self.path)
        except OSError as err:
            raise ValueError(f"{self.where}: marking chunks done failed: {err.strerror or err}") from None
        for k, checksum in ready:
            self.marks[k] = checksum

    def close(self) -> None:
        """Write the pending done-marks; consolidate the metadata if it changed (repairs, environments)."""
        try:
            self.flush(wait=True)
        finally:
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)
                self._syncer = None
        if self._meta_changed:
            with deferred_interrupt():
                consolidate(self.path)
                if FSYNC:
                    _fs.fsync_tree([self.path / "zarr.json"])
            self._meta_changed = False

    def dataset(self) -> xr.Dataset:
        """The store, opened lazily; with an index on every dim where those fit the memory budget."""
        self.close()
        fits = self.memory is None or COORD_COPIES * self.layout.coords_nbytes() <= self.memory
        # verify=False: this run verified what was there and wrote the rest.
        return results.open(self.path, verify=False, index_max=results.INDEX_MAX if fits else 0)


def _sync(files: list[Path], root: Path) -> None:
    """fsync the files that exist, and every directory from theirs up to ``root`` (new names, deletions)."""
    present = [f for f in files if f.exists()]
    _fs.fsync_tree(present)
    dirs = set()
    for f in files:
        for parent in f.parents:
            if parent == root.parent or len(parent.parts) < len(root.parts):
                break
            dirs.add(parent)
    for d in sorted(dirs, key=lambda p: -len(p.parts)):
        if d.exists():
            _fs.fsync_dir(d)
