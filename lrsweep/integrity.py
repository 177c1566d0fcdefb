"""What makes a store trustworthy: checksums, its metadata read robustly, and :func:`verify`.

Every finished chunk of a store carries a checksum of its data (``chunk_done[k]``, a 64-bit
digest, 0 while unfinished): SHA-256 over, for each variable in the store's recorded order, the
variable's name, dtype, the chunk region's shape and its bytes, then the chunk's environment index.
It is computed from the values the runner hands to the sink (NaNs made canonical first, see
:func:`canonical_nans`) and, to verify, from what reads back, so it covers every way the data can
be lost between the two: a deleted Zarr chunk file (reads back as the fill value), a truncated,
zero-filled or bit-flipped one (a decoding error or other bytes), a damaged done-mark (unreadable,
or a checksum that no data match), an array's metadata edited so that its bytes decode otherwise.

The store's attributes (``zarr.json``) carry a checksum of themselves (``attrs["checksum"]``), a
digest of every array's metadata (``attrs["arrays"]``) and of every coordinate's values
(``attrs["coordinates"]``); a copy of the attributes is kept as the attributes of an empty group
``_lrsweep_attrs`` inside the store, so that losing or editing one of the two is repaired from
the other.

Nothing here needs the sweep's spec: :func:`verify` checks a store on its own. Rebuilding what is
damaged needs the spec, and is done by running the same sweep again (``lrsweep.store``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: The store format this version writes and reads (docs/store.md); a store of another format is refused.
FORMAT = "lrsweep-store/3"
#: The copy of the store's attributes: the attributes of this (empty) Zarr group inside the store.
BACKUP = "_lrsweep_attrs"
#: Arrays that are bookkeeping, not results: per-chunk checksums and environment indices.
MARKS, ENVS = "chunk_done", "chunk_env"
#: Attributes that are bookkeeping, not the sweep's settings (dropped from an opened Dataset).
BOOKKEEPING = ("arrays", "coordinates", "checksum", "variables", "shape", "chunk_shape", "extra_coords", "format")


def digest(parts: Iterable[bytes | memoryview]) -> int:
    """A 64-bit digest (the first 8 bytes of SHA-256) of ``parts`` in order; never 0."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest()[:8], "little") or 1


def _array_parts(name: str, value: np.ndarray) -> Iterable[bytes | memoryview]:
    value = np.ascontiguousarray(value)
    yield json.dumps([name, value.dtype.str, list(value.shape)]).encode()
    yield value.reshape(-1).view(np.uint8).data


def chunk_checksum(values: Mapping[str, np.ndarray], names: list[str], env: int) -> int:
    """The checksum of one chunk: ``values[name]`` for each of ``names`` in order, then ``env``."""

    def parts():
        for name in names:
            yield from _array_parts(name, values[name])
        yield f"env={int(env)}".encode()

    return digest(parts())


def json_digest(doc: Any) -> str:
    """A digest of a JSON document, independent of key order and formatting (hex)."""
    return f"{digest([json.dumps(doc, sort_keys=True, separators=(',', ':')).encode()]):016x}"


def attrs_checksum(attrs: Mapping[str, Any]) -> str:
    """The checksum of a store's attributes: every one but ``checksum`` itself."""
    return json_digest({k: v for k, v in attrs.items() if k != "checksum"})


def canonical_nans(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``values`` with every NaN of a float array made the one canonical quiet NaN (a copy where needed).

    Why: a computation's NaNs carry a sign bit and a payload that mean nothing but that a codec,
    or Zarr's "a chunk equal to the fill value is not stored" (a NaN-filled chunk then reads back
    as the fill's NaN), does not keep. With one NaN everywhere, the store and the in-memory result
    are equal byte for byte, NaNs included, and so is the checksum of what reads back.
    """
    out = {}
    for name, value in values.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            nan = np.isnan(value)
            if nan.any():
                value = value.copy()
                value[nan] = np.nan
        out[name] = value
    return out


def environment(kernel_path: str) -> dict[str, str]:
    """Where chunks are computed: versions of lrsweep, Python, JAX and jaxlib, backend, device, kernel path."""
    import platform

    import jax
    import jaxlib

    from ._version import __version__

    return {
        "lrsweep": __version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": str(getattr(jaxlib, "__version__", "unknown")),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "kernel_path": str(kernel_path),
    }


def env_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``["jax 0.4.30 vs 0.10.2", ...]`` for the keys where two environments differ."""
    return [f"{k} {old.get(k)} vs {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


# -- metadata, read robustly ---------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The JSON document in ``path``, or None when it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _valid(attrs: Any) -> bool:
    return isinstance(attrs, dict) and attrs.get("checksum") == attrs_checksum(attrs)


def load_attrs(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The store's attributes, from ``zarr.json`` or else from its copy, and what is wrong with either.

    Returns ``(attrs, problems)``: ``attrs`` is None when neither copy is intact (not a store of
    ours, a store of an older format, or both copies damaged); ``problems`` names each copy that is
    missing, unreadable or fails its checksum.
    """
    root = read_json(path / "zarr.json")
    root_attrs = root.get("attributes") if isinstance(root, dict) else None
    backup = read_json(path / BACKUP / "zarr.json")
    backup = backup.get("attributes") if isinstance(backup, dict) else None
    problems = []
    if not _valid(root_attrs):
        what = "is missing" if not (path / "zarr.json").exists() else "fails its checksum (edited or damaged)"
        problems.append(f"zarr.json (the store's attributes) {what}")
    if not _valid(backup):
        what = "is missing" if not (path / BACKUP / "zarr.json").exists() else "fails its checksum (edited or damaged)"
        problems.append(f"{BACKUP}/zarr.json (the copy of the attributes) {what}")
    if _valid(root_attrs):
        assert isinstance(root_attrs, dict)
        if _valid(backup) and backup != root_attrs:
            problems.append(f"{BACKUP}/zarr.json differs from zarr.json")
        return root_attrs, problems
    if _valid(backup):
        return backup, problems
    return None, problems


# -- chunks ----------------------------------------------------------------------------------------


def chunk_grid(shape: list[int], chunk_shape: list[int]) -> tuple[int, ...]:
    return tuple(-(-s // t) for s, t in zip(shape, chunk_shape))


def chunk_region(shape: list[int], chunk_shape: list[int], k: int) -> tuple[slice, ...]:
    """The region of chunk ``k`` (C order over the grid of chunks), as ``lrsweep.plan.Layout`` cuts it."""
    pos = np.unravel_index(k, chunk_grid(shape, chunk_shape))
    return tuple(slice(p * t, min((p + 1) * t, s)) for p, t, s in zip(pos, chunk_shape, shape))


def read_marks(group, n_chunks: int) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Every chunk's checksum (0: unfinished) and environment index, and the chunks whose marks are unreadable.

    One read of each array; if that fails (a damaged file), chunk by chunk, so that one damaged
    done-mark costs its own chunk only.
    """
    bad: set[int] = set()
    out = []
    for name, dtype in ((MARKS, np.uint64), (ENVS, np.uint16)):
        try:
            array = group[name]
        except Exception:  # noqa: BLE001 - a missing or unreadable array
            out.append(np.zeros(n_chunks, dtype))
            if name == MARKS:  # every chunk's mark is lost
                bad.update(range(n_chunks))
            continue
        try:
            values = np.asarray(array[:], dtype=dtype)
        except Exception:  # noqa: BLE001 - some chunk file is damaged: find which
            values = np.zeros(n_chunks, dtype)
            for k in range(n_chunks):
                try:
                    values[k] = array[k]
                except Exception:  # noqa: BLE001
                    bad.add(k)
        out.append(values)
    marks, envs = out
    marks[list(bad)] = 0
    return marks, envs, bad


def read_chunk(group, names: list[str], region: tuple[slice, ...]) -> dict[str, np.ndarray] | None:
    """The chunk's values of each variable as they read back, or None if any cannot be read."""
    try:
        return {name: np.asarray(group[name][region]) for name in names}
    except Exception:  # noqa: BLE001 - missing arrays, undecodable files, metadata edited out of shape
        return None


def chunk_ok(group, attrs: Mapping[str, Any], k: int, mark: int, env: int) -> bool:
    """Whether chunk ``k``'s data read back and match its checksum ``mark``."""
    shape = [int(n) for n in attrs["shape"]]
    values = read_chunk(group, list(attrs["variables"]), chunk_region(shape, list(attrs["chunk_shape"]), k))
    return values is not None and chunk_checksum(values, list(attrs["variables"]), env) == int(mark)


def coord_digest(dtype: Any, n: int, blocks: Iterable[np.ndarray]) -> str:
    """A checksum of a 1-D coordinate of ``n`` values given block by block (any block boundaries)."""

    def parts():
        yield json.dumps([np.dtype(dtype).str, int(n)]).encode()
        for block in blocks:
            yield np.ascontiguousarray(block).reshape(-1).view(np.uint8).data

    return f"{digest(parts()):016x}"


def coord_checksum(array, block: int = 2**20) -> str:
    """The checksum of a 1-D coordinate array's values, read back block by block."""
    n = int(array.shape[0])
    return coord_digest(array.dtype, n, (np.asarray(array[s : s + block]) for s in range(0, n, block)))


# -- verify ----------------------------------------------------------------------------------------


class Damage(list):
    """The damaged chunks of a store (a list of chunk indices), and more about its state.

    Attributes:
      problems: damage that is not a chunk's: metadata (``zarr.json``, an array's metadata, a
        coordinate) missing, edited or unreadable.
      finished, total: chunks whose done-mark verified, and chunks in the store.
    """

    def __init__(self, damaged: Iterable[int] = (), problems: Iterable[str] = (), finished: int = 0, total: int = 0):
        super().__init__(sorted(damaged))
        self.problems, self.finished, self.total = list(problems), finished, total

    @property
    def clean(self) -> bool:
        return not self and not self.problems

    def lines(self) -> list[str]:
        """What a person reads: one line per problem and one for the chunks."""
        out = list(self.problems)
        if self:
            out.append(f"{len(self)} damaged chunk{'s' if len(self) > 1 else ''}: {describe_chunks(self)}")
        return out


def describe_chunks(chunks: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, chunks[:limit]))
    return f"[{shown}{', ...' if len(chunks) > limit else ''}]"


def check_arrays(path: Path, attrs: Mapping[str, Any]) -> list[str]:
    """Problems with the arrays' metadata: each array's ``zarr.json`` against its recorded digest."""
    problems = []
    for name, recorded in attrs.get("arrays", {}).items():
        doc = read_json(path / name / "zarr.json")
        if doc is None:
            state = "is missing" if not (path / name).exists() else "has unreadable metadata"
            problems.append(f"array {name!r} {state}")
        elif json_digest(doc) != recorded:
            problems.append(f"array {name!r} has edited or damaged metadata ({name}/zarr.json)")
    return problems


def verify(path: str | os.PathLike) -> Damage:
    """Check every finished chunk of the store at ``path`` against its checksum, and its metadata.

    Returns the damaged chunks (a list of chunk indices, empty when clean) with ``.problems``:
    metadata and coordinates found missing, edited or unreadable. A chunk is damaged when its
    done-mark cannot be read or its data do not read back to its checksum. Unfinished chunks
    are not damage (``.finished`` and ``.total`` count them). Reads the whole store back, chunk
    by chunk (memory: one chunk). Raises ValueError (one line) when ``path`` is not an lrsweep
    store, or its attributes and their copy are both lost.

    Running the same sweep again (same spec, same ``out``) repairs everything reported here: it
    rebuilds metadata from the spec and recomputes damaged chunks.
    """
    import zarr
    import zarr.storage

    path = Path(path)
    if not path.is_dir():
        raise ValueError(
            f"path={str(path)!r} is not an lrsweep store: {'no such directory' if not path.exists() else 'not a directory'}"
        )
    attrs, problems = load_attrs(path)
    if attrs is None:
        raise ValueError(
            f"path={str(path)!r} is not an lrsweep store, or its attributes (zarr.json and {BACKUP}/zarr.json) are both lost; "
            "if it is one, delete it and run the sweep again"
        )
    if attrs.get("format") != FORMAT:
        raise ValueError(f"path={str(path)!r} is a store of format {attrs.get('format')!r}, not {FORMAT!r}")
    problems += check_arrays(path, attrs)
    try:
        group = zarr.open_group(zarr.storage.LocalStore(path, read_only=True), mode="r", use_consolidated=False)
    except Exception:  # noqa: BLE001 - the group's zarr.json is lost: its arrays open one by one below
        group = _ArraysOnly(path)
    for name, recorded in attrs.get("coordinates", {}).items():
        try:
            ok = coord_checksum(group[name]) == recorded
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            problems.append(f"coordinate {name!r} is damaged (its values fail their checksum)")
    n_chunks = math.prod(chunk_grid([int(n) for n in attrs["shape"]], list(attrs["chunk_shape"])))
    marks, envs, bad = read_marks(group, n_chunks)
    damaged, finished = set(bad), 0
    for k in np.flatnonzero(marks):
        if chunk_ok(group, attrs, int(k), int(marks[k]), int(envs[k])):
            finished += 1
        else:
            damaged.add(int(k))
    return Damage(damaged, problems, finished, n_chunks)


class _ArraysOnly:
    """``group[name]`` for a store whose group metadata is lost: each array opened on its own."""

    def __init__(self, path: Path):
        self.path = path

    def __getitem__(self, name: str):
        import zarr
        import zarr.storage

        return zarr.open_array(zarr.storage.LocalStore(self.path / name, read_only=True), mode="r")
