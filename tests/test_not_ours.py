"""Never delete what is not ours: a store is ours only if its lrsweep attributes say so (or it is an
unfinished creation of ours, which carries the copy of the attributes' folder); anything else at
``--out`` is refused and left byte for byte as it was, temp-looking files included."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import lrsweep
from lrsweep import cli

PARTIAL = "notes." + "ab" * 16 + ".partial"


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def xarray_store(path: Path) -> None:
    ds = xr.Dataset({"temperature": (("x",), np.arange(5.0))}, coords={"x": np.arange(5)}, attrs={"owner": "someone"})
    ds.to_zarr(path, zarr_format=3, consolidated=False)


def sweep(out):
    return lrsweep.sweep("linear", [0.1, 0.2], epochs=3, out=str(out), progress=False)


@pytest.mark.parametrize("kind", ["xarray store", "folder of xarray stores", "store with a partial-looking file"])
def test_a_zarr_store_or_folder_that_is_not_ours_is_refused_untouched(tmp_path, kind, capsys):
    out = tmp_path / "data"
    if kind == "xarray store":
        xarray_store(out)
    elif kind == "folder of xarray stores":
        out.mkdir()
        xarray_store(out / "a.zarr")
        xarray_store(out / "b.zarr")
    else:
        xarray_store(out)
        (out / "temperature" / PARTIAL).write_text("my notes")
    before = tree(out)
    with pytest.raises(ValueError, match="is not an lrsweep store"):
        sweep(out)
    assert cli.main(["run", "--lr", "0.1,0.2", "--epochs", "3", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an lrsweep store" in err
    assert tree(out) == before


def test_temp_looking_user_files_in_a_folder_that_is_not_a_store_are_kept(tmp_path):
    out = tmp_path / "folder"
    out.mkdir()
    (out / PARTIAL).write_text("mine")
    (out / "x.tmp").write_text("mine too")
    before = tree(out)
    with pytest.raises(ValueError, match="is not an lrsweep store"):
        sweep(out)
    assert tree(out) == before


def test_our_store_s_stale_zarr_partials_are_removed_and_an_unfinished_creation_is_remade(tmp_path):
    out = tmp_path / "s.zarr"
    first = sweep(out)
    stale = out / "loss" / ("c." + "cd" * 16 + ".partial")
    stale.write_text("a dead writer's")
    again = sweep(out)
    assert not stale.exists()
    np.testing.assert_array_equal(
        first["loss"].values if "loss" in first else first["outcome"].values,
        again["loss"].values if "loss" in again else again["outcome"].values,
    )
    # Both copies of the attributes lost, no finished chunk: what is left is recognisably ours
    # (its attributes' folder is there) and is remade.
    (out / "zarr.json").unlink()
    (out / "_lrsweep_attrs" / "zarr.json").unlink()
    for marks in (out / "chunk_done" / "c").iterdir():
        marks.unlink() if marks.is_file() else None
    remade = sweep(out)
    assert (out / "zarr.json").is_file()
    np.testing.assert_array_equal(remade["outcome"].values, first["outcome"].values)


def test_export_columns_come_in_a_fixed_order_and_a_killed_export_s_temp_is_removed(tmp_path):
    import subprocess
    import sys

    from lrsweep import _fs, results

    ds = lrsweep.sweep("linear", [0.1, 0.2], epochs=3, progress=False)
    shuffled = ds[["w", "score", "b", "loss", "event_epoch", "outcome"]]
    expected = ["lr", "init", "outcome", "event_epoch", "score", "loss", "b", "w"]
    assert list(results.summary_table(ds).columns) == expected
    assert list(results.summary_table(shuffled).columns) == expected
    target = tmp_path / "t.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = _fs.temp_name(target)
    stale = stale.with_name(stale.name.replace(f".{__import__('os').getpid()}.", f".{pid}.", 1))
    stale.write_text("half an export")
    other = tmp_path / ".x.tmp"  # a user's file that merely looks like a temp
    other.write_text("mine")
    results.export(shuffled, target)
    assert not stale.exists() and other.read_text() == "mine"
    assert target.read_text().splitlines()[0] == ",".join(expected)
