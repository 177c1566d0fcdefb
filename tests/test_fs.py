"""lrsweep._fs: atomic files and directories, fsync, stale temps, free space.

Loaded on its own (a stand-in parent package, not ``lrsweep/__init__``, which imports JAX), so
that the helper process killed mid-write starts in milliseconds.
"""

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO

import pytest

from lrsweep import _fs as fs

PKG_DIR = Path(__file__).resolve().parent.parent / "lrsweep"


def _out(proc: subprocess.Popen) -> IO:
    """A child's stdout pipe (opened with ``stdout=PIPE``)."""
    assert proc.stdout is not None
    return proc.stdout


def _names(d):
    return sorted(p.name for p in Path(d).iterdir())


# A user's files that look temporary but are not ours: nothing may ever touch them.
USER_FILES = ["x.csv.partial", "x.csv.tmp", "x.tmp", ".x.csv.tmp", ".x.csv.123.tmp", ".x.csv.1.zzzzzz00000000.tmp"]


@pytest.fixture
def user_files(tmp_path):
    for name in USER_FILES:
        (tmp_path / name).write_text("mine")
    yield tmp_path
    for name in USER_FILES:
        assert (tmp_path / name).read_text() == "mine", name


def test_atomic_write_writes_and_leaves_no_temp(tmp_path, user_files):
    target = tmp_path / "x.csv"
    assert fs.atomic_write(target, b"a,b\n1,2\n") == target
    assert target.read_bytes() == b"a,b\n1,2\n"
    assert _names(tmp_path) == sorted(USER_FILES + ["x.csv"])


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("old", [None, b"old"])
def test_a_failure_mid_write_leaves_the_old_target_and_no_temp(tmp_path, error, old):
    target = tmp_path / "x.csv"
    if old is not None:
        target.write_bytes(old)
    with pytest.raises(error):
        with fs.atomic_output(target, overwrite=True) as tmp:
            assert tmp.parent == tmp_path and fs.TEMP_PATTERN.fullmatch(tmp.name)
            tmp.write_bytes(b"half")
            raise error()
    assert _names(tmp_path) == ([] if old is None else ["x.csv"])
    if old is not None:
        assert target.read_bytes() == old


def test_an_existing_target_needs_overwrite_which_keeps_its_mode(tmp_path):
    target = tmp_path / "x.csv"
    target.write_bytes(b"old")
    with pytest.raises(fs.TargetExists) as err:
        fs.atomic_write(target, b"new")
    assert str(err.value) == f"path={str(target)!r} exists; pass overwrite=True (--force) to replace it"
    assert isinstance(err.value, ValueError) and target.read_bytes() == b"old"
    target.chmod(0o640)
    fs.atomic_write(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["x.csv"]


def test_a_target_created_during_the_write_is_not_replaced(tmp_path):
    target = tmp_path / "x.csv"
    with pytest.raises(fs.TargetExists):
        with fs.atomic_output(target) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"theirs")  # another writer got there first
    assert target.read_bytes() == b"theirs" and _names(tmp_path) == ["x.csv"]


def test_a_directory_target_is_refused(tmp_path):
    (tmp_path / "x.csv").mkdir()
    for overwrite in (False, True):
        with pytest.raises(fs.TargetIsDirectory) as err:
            fs.atomic_write(tmp_path / "x.csv", b"", overwrite=overwrite)
        assert str(err.value) == f"path={str(tmp_path / 'x.csv')!r} is a directory; give a file name"
    assert _names(tmp_path) == ["x.csv"]


def test_a_missing_directory_is_a_one_line_error_naming_the_path(tmp_path):
    with pytest.raises(fs.WriteError, match=r"^path='.*/nowhere/x.csv' cannot be written: No such file"):
        fs.atomic_write(tmp_path / "nowhere" / "x.csv", b"")


def test_atomic_dir_creates_or_fills_an_empty_directory_keeping_its_mode(tmp_path, monkeypatch):
    with fs.atomic_dir(tmp_path / "new.zarr") as tmp:
        assert fs.TEMP_PATTERN.fullmatch(tmp.name) and not (tmp_path / "new.zarr").exists()
        (tmp / "a").mkdir()
        (tmp / "a" / "c").write_text("chunk")
        (tmp / "zarr.json").write_text("{}")
    assert (tmp_path / "new.zarr" / "a" / "c").read_text() == "chunk"
    assert _names(tmp_path) == ["new.zarr"]

    made = tmp_path / "made.zarr"
    made.mkdir()
    made.chmod(0o750)
    inode = made.stat().st_ino
    moved = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (moved.append(Path(b).name), real_rename(a, b)))
    with fs.atomic_dir(made, marker="zarr.json") as tmp:
        (tmp / "zarr.json").write_text("{}")  # the marker, first made and last moved in
        for name in ("b", "a", "z"):
            (tmp / name).mkdir()
            (tmp / name / "0").write_text(name)
    assert moved == ["a", "b", "z", "zarr.json"]
    assert stat.S_IMODE(made.stat().st_mode) == 0o750 and made.stat().st_ino == inode
    assert _names(made) == ["a", "b", "z", "zarr.json"] and (made / "z" / "0").read_text() == "z"
    assert _names(tmp_path) == ["made.zarr", "new.zarr"]


def test_atomic_dir_refuses_a_non_empty_target_and_cleans_up_on_failure(tmp_path):
    (tmp_path / "full.zarr").mkdir()
    (tmp_path / "full.zarr" / "keep").write_text("mine")
    with pytest.raises(fs.TargetExists, match="exists and is not an empty directory"):
        with fs.atomic_dir(tmp_path / "full.zarr"):
            pass
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error):
            with fs.atomic_dir(tmp_path / "s.zarr") as tmp:
                (tmp / "sub").mkdir()
                (tmp / "sub" / "f").write_text("x")
                raise error()
    assert _names(tmp_path) == ["full.zarr"] and _names(tmp_path / "full.zarr") == ["keep"]


def test_fsync_functions_run_on_files_and_directories(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for rel in ("f", "d/g", "d/e/h"):
        (tmp_path / rel).write_bytes(b"x")
    fs.fsync_file(tmp_path / "f")
    fs.fsync_dir(tmp_path)
    # 3 files; directories tmp_path/d/e, d, tmp_path, and tmp_path's parent (d's entry): each once.
    assert fs.fsync_tree([tmp_path / "d", tmp_path / "f", tmp_path / "d" / "g"]) == 3 + 4
    with pytest.raises(fs.WriteError, match=r"^path='.*/missing' cannot be synced: No such file"):
        fs.fsync_file(tmp_path / "missing")
    with pytest.raises(fs.WriteError, match="cannot be synced: Not a directory"):
        fs.fsync_dir(tmp_path / "f")


KILLED_WRITER = textwrap.dedent(
    """
    import importlib, sys, time, types
    pkg = types.ModuleType("_lrsweep_alone")
    pkg.__path__ = [sys.argv[1]]
    sys.modules["_lrsweep_alone"] = pkg
    fs = importlib.import_module("_lrsweep_alone._fs")
    with fs.atomic_output(sys.argv[2], overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half of it")
        print(tmp, flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("old", [None, b"old"])
def test_sigkill_mid_write_leaves_the_old_target_and_a_temp_that_is_swept(tmp_path, user_files, old):
    target = tmp_path / "x.csv"
    if old is not None:
        target.write_bytes(old)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(PKG_DIR), str(target)], stdout=subprocess.PIPE, text=True
    )
    tmp = Path(_out(proc).readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _out(proc).close()
    assert tmp.read_bytes() == b"half of it"
    assert target.exists() == (old is not None) and (old is None or target.read_bytes() == old)
    # Ours, but not older than the default hour: kept (a guard against pid namespaces).
    assert fs.sweep_stale_temps(tmp_path) == [] and tmp.exists()
    # Live writers' temps (this process's), and another host's, are kept too.
    live = fs.temp_name(target)
    live.write_bytes(b"")
    other_host = tmp_path / f".x.csv.{proc.pid}.{'0' * 6 if fs._host_tag() != '0' * 6 else '1' * 6}00000000.tmp"
    other_host.write_bytes(b"")
    assert fs.sweep_stale_temps(tmp_path, older_than_s=0) == [tmp]
    assert not tmp.exists() and live.exists() and other_host.exists()
    assert target.exists() == (old is not None)


def test_a_stale_temp_directory_is_swept_without_following_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".s.zarr.{dead.pid}.{fs._host_tag()}0123abcd.tmp"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "f").write_text("x")
    (stale / "link").symlink_to(outside)
    assert fs.sweep_stale_temps(tmp_path, older_than_s=0) == [stale]
    assert _names(tmp_path) == ["outside"] and (outside / "keep").read_text() == "mine"


def test_free_bytes_looks_at_the_nearest_existing_parent(tmp_path):
    free = fs.free_bytes(tmp_path / "not" / "yet" / "s.zarr")
    st = os.statvfs(tmp_path)
    assert free > 0 and abs(free - st.f_bavail * st.f_frsize) < 2**30


def test_temp_names_are_unique_and_hidden_beside_the_target(tmp_path):
    names = {fs.temp_name(tmp_path / "x.csv") for _ in range(100)}
    assert len(names) == 100
    for n in names:
        m = fs.TEMP_PATTERN.fullmatch(n.name)
        assert m is not None
        assert n.parent == tmp_path and m["name"] == "x.csv" and int(m["pid"]) == os.getpid()
        assert m["host"] == fs._host_tag()
    assert socket.gethostname()  # the tag is derived from it
