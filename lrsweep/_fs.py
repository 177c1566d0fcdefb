"""Files we own, written durably: fsync helpers, atomic files and directories, stale temp sweeping.

Two kinds of failure, two kinds of guarantee:

- **The process dies** (SIGKILL, OOM killer, Ctrl-C): the kernel keeps every completed ``write``
  and ``rename`` in its page cache and the files stay consistent for every other process. So the
  atomicity of ``rename(2)`` is enough: :func:`atomic_output` and :func:`atomic_dir` build the
  result under a temporary name and rename it into place, and a reader sees the old target (or
  none) or the complete new one, never a half-written file. What is left behind is a temporary
  file named ``.{name}.{pid}.{token}.tmp`` beside the target; :func:`sweep_stale_temps` removes
  it once its process is gone.
- **The machine loses power** (or the kernel panics): only what was ``fsync``-ed survives, and a
  rename is durable only once its directory is ``fsync``-ed. So the file is synced *before* the
  rename (else a journaling filesystem may replay the rename onto an empty file) and the directory
  *after* it. With that order the target after a power loss is the old one or the complete new one.

``fsync`` is slow (it waits for the disk); :func:`fsync_tree` batches many files into one pass
and syncs each directory once. ``benchmarks/fsync_cost.py`` measures what it costs.

Temporary names: ``.{name}.{pid}.{token}.tmp``, hidden, beside the target (a rename is only atomic
within one filesystem), where ``token`` is 6 hex digits identifying the host (so that a sweep on a
shared filesystem never judges another machine's pids) and 8 random ones (so that names never
collide). Nothing here ever removes a file that does not match this pattern exactly, so a user's
``x.tmp`` or ``x.partial`` is never touched.

All errors are :class:`FsError` (a ``ValueError``) with a one-line message naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "FsError",
    "TargetExists",
    "TargetIsDirectory",
    "WriteError",
    "atomic_dir",
    "atomic_output",
    "atomic_write",
    "free_bytes",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "pid_alive",
    "process_start_time",
    "sweep_stale_temps",
    "temp_name",
]

#: ``.{name}.{pid}.{host tag: 6 hex}{random: 8 hex}.tmp``; nothing else is ever swept.
TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]{1,10})\.(?P<host>[0-9a-f]{6})[0-9a-f]{8}\.tmp")
_NAME_KEEP = 200  # of the target's name in a temp name: NAME_MAX is 255 on common filesystems


class FsError(ValueError):
    """A file or directory could not be written as asked; the message names the path."""


class TargetIsDirectory(FsError):
    """A file was to be written where a directory is."""


class TargetExists(FsError):
    """The target exists and replacing it was not asked for."""


class WriteError(FsError):
    """The operating system refused (no space, no permission, I/O error, ...)."""


def _where(path: str | os.PathLike) -> str:
    return f"path={os.fspath(path)!r}"


def _write_error(path: str | os.PathLike, err: OSError, doing: str = "cannot be written") -> WriteError:
    return WriteError(f"{_where(path)} {doing}: {err.strerror or err}")


# -- processes ---------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from ``/proc/<pid>/stat``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # "pid (comm) state ppid ... starttime(22nd) ...": comm may hold spaces and parentheses.
    fields = raw[raw.rfind(")") + 1 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``), or None if unknown.

    Together with the pid it names one process: a pid reused by a later process has another
    start time.
    """
    found = _proc_stat(pid)
    return None if found is None else found[1]


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether process ``pid`` (on this host) is alive, and is the one that started at ``start_time``.

    Conservative: True whenever it cannot tell (no ``/proc``, another user's process, Windows), so
    that nothing of a live process is ever judged stale. A zombie (killed, not yet reaped) is dead.
    """
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill there terminates the process; no stdlib liveness probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        pass
    found = _proc_stat(pid)
    if found is None:
        # With a /proc (Linux) a missing entry means it exited between the two calls.
        return not os.path.isdir("/proc/self")
    state, started = found
    if state in ("Z", "X"):
        return False
    return start_time is None or started == start_time


# -- temporary names ---------------------------------------------------------------------------


def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=3).hexdigest()


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.{name}.{pid}.{host tag}{random}.tmp``."""
    p = Path(path)
    return p.with_name(f".{p.name[:_NAME_KEEP]}.{os.getpid()}.{_host_tag()}{secrets.token_hex(4)}.tmp")


def _remove_tree(path: Path) -> None:
    """Remove a file, a symlink or a directory tree (never following symlinks); quiet if absent."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                (os.unlink if os.path.islink(full) else os.rmdir)(full)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def remove_dead_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` (:func:`temp_name`: ``.{name}.{pid}.{token}.tmp``
    beside it) whose writer is dead: made on this host by a pid that is no longer alive. For a
    target that the caller is about to write itself (an export, a store under its lock); nothing
    else, and no other target's temporary files, is touched. Returns what was removed."""
    p = Path(path)
    here, removed = _host_tag(), []
    try:
        entries = list(os.scandir(p.parent))
    except OSError:
        return []
    for entry in entries:
        m = TEMP_PATTERN.fullmatch(entry.name)
        if m is None or m["name"] != p.name[:_NAME_KEEP] or m["host"] != here or pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            _remove_tree(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def sweep_stale_temps(directory: str | os.PathLike, older_than_s: float = 3600.0) -> list[Path]:
    """Remove the temporary files and directories in ``directory`` left by processes that died.

    Only entries named exactly like ours (``.{name}.{pid}.{token}.tmp``) are candidates, and of
    those only the ones made on this host (by the token's host tag) whose pid is no longer alive
    and that were last modified more than ``older_than_s`` seconds ago (a guard against pid
    namespaces: another container with our host name). A live process's temps, another host's,
    and every other file (``x.tmp``, ``x.partial``, ...) are left alone. Returns what was removed.
    """
    here, now, removed = _host_tag(), time.time(), []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise _write_error(directory, err, "cannot be listed") from None
    for entry in entries:
        m = TEMP_PATTERN.fullmatch(entry.name)
        if m is None or m["host"] != here or pid_alive(int(m["pid"])):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            _remove_tree(Path(entry.path))
        except OSError:
            continue  # gone meanwhile, or not ours to remove (permissions): leave it
        removed.append(Path(entry.path))
    return removed


# -- fsync -------------------------------------------------------------------------------------


def _fsync_path(path: str | os.PathLike, directory: bool) -> None:
    if directory and os.name == "nt":  # directories cannot be opened there; NTFS journals renames
        return
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise _write_error(path, err, "cannot be synced") from None
    try:
        os.fsync(fd)
    except OSError as err:
        # EINVAL: a filesystem (or special file) that does not support fsync; nothing to wait for.
        if err.errno != errno.EINVAL:
            raise _write_error(path, err, "cannot be synced") from None
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    """Wait until ``path``'s data and metadata are on the disk (survive a power loss).

    Its *name* is durable only once its directory is synced too (:func:`fsync_dir`).
    """
    _fsync_path(path, directory=False)


def fsync_dir(path: str | os.PathLike) -> None:
    """Wait until directory ``path``'s entries (creations, renames, deletions) are on the disk.

    A filesystem that refuses to sync directories (EINVAL) is accepted silently.
    """
    _fsync_path(path, directory=True)


def fsync_tree(paths: Iterable[str | os.PathLike]) -> int:
    """Make files and directory trees durable in one pass; returns the number of fsync calls.

    Each file in ``paths`` is synced, each directory in ``paths`` with everything under it, and
    then every directory involved (those and the parents of all of them, so that new names are
    durable too) once each, deepest first. Symlinks are not followed. One open per file, one per
    directory: ``fsync_tree(written)`` after a batch of files costs far less than a
    :func:`fsync_file` plus :func:`fsync_dir` per file.
    """
    files: list[str] = []
    dirs: set[str] = set()
    for path in paths:
        path = os.path.abspath(path)
        try:
            mode = os.lstat(path).st_mode
        except OSError as err:
            raise _write_error(path, err, "cannot be synced") from None
        dirs.add(os.path.dirname(path))
        if stat.S_ISDIR(mode):
            for root, subdirs, names in os.walk(path):
                dirs.add(root)
                dirs.update(os.path.join(root, d) for d in subdirs)
                files.extend(os.path.join(root, n) for n in names if not os.path.islink(os.path.join(root, n)))
        elif stat.S_ISREG(mode):
            files.append(path)
    for f in files:
        fsync_file(f)
    for d in sorted(dirs, key=lambda d: (-d.count(os.sep), d)):
        fsync_dir(d)
    return len(files) + len(dirs)


# -- atomic files ------------------------------------------------------------------------------


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise TargetIsDirectory(f"{_where(path)} is a directory; give a file name")
    if not overwrite and os.path.lexists(path):
        raise TargetExists(f"{_where(path)} exists; pass overwrite=True (--force) to replace it")


def _no_clobber_rename(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists, atomically where hard links are supported."""
    try:
        os.link(src, dst, follow_symlinks=False)  # fails with EEXIST rather than replacing
    except FileExistsError:
        raise TargetExists(f"{_where(dst)} exists; pass overwrite=True (--force) to replace it") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EACCES):
            raise
        # No hard links here (FAT, some FUSE and network filesystems): check, then rename.
        if os.path.lexists(dst):
            raise TargetExists(f"{_where(dst)} exists; pass overwrite=True (--force) to replace it") from None
        os.rename(src, dst)
        return
    os.unlink(src)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Write a file under a temporary name; on success it replaces ``path`` in one rename.

    Yields the temporary path (an empty file, ``.{name}.{pid}.{token}.tmp`` beside ``path``):
    write it by name (``frame.to_csv(tmp)``, ``open(tmp, "wb")``, ...). When the block ends
    normally the file is synced, renamed to ``path`` and the directory synced; when it raises
    (anything, ``KeyboardInterrupt`` included) the temporary file is removed and ``path`` is
    untouched.

    Guarantees: other processes see the old ``path`` (or none) until the rename and the complete
    new file after it. SIGKILL at any point leaves the old target (or none) and at most the
    temporary file, which :func:`sweep_stale_temps` removes. After a power loss the target is the
    old or the complete new file. Without ``overwrite`` an existing target (a directory always) is
    refused up front and again at the rename, which is a no-clobber hard link where the filesystem
    supports one, so a file created meanwhile is not replaced either. With ``overwrite`` the new
    file takes the old one's permission bits (not its owner); a symlink at ``path`` is replaced,
    not written through.
    """
    path = Path(path)
    _check_target(path, overwrite)
    tmp = temp_name(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise WriteError(f"{_where(path)} cannot be written: its temporary file {tmp.name!r} was removed")
        try:
            if overwrite:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            fsync_file(tmp)
            if overwrite:
                os.replace(tmp, path)
            else:
                _no_clobber_rename(tmp, path)
            fsync_dir(path.parent)
        except IsADirectoryError:
            raise TargetIsDirectory(f"{_where(path)} is a directory; give a file name") from None
        except OSError as err:
            raise _write_error(path, err) from None
    except BaseException:
        _remove_tree(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_output`); returns ``path``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as err:
            raise _write_error(path, err) from None
    return Path(path)


# -- atomic directories ------------------------------------------------------------------------


def _empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike, marker: str | None = None, sync: bool = True, first: str | None = None
) -> Iterator[Path]:
    """Build a directory under a temporary name; on success it becomes ``path``.

    Yields the temporary directory (``.{name}.{pid}.{token}.tmp`` beside ``path``) to fill. On an
    exception (``KeyboardInterrupt`` included) it is removed and ``path`` is untouched. ``path``
    must be absent or an empty directory; anything else is refused before the block runs.

    - ``path`` absent: the directory is renamed to ``path``: **atomic**. Other processes, and
      ``path`` after a SIGKILL at any point, show no directory or the complete one (plus, after a
      kill, a temporary directory for :func:`sweep_stale_temps`).
    - ``path`` an empty directory (made by the user, maybe with chosen permissions or owner, or a
      mount point): renaming over it would replace it, losing its mode and owner, so the
      *children* are renamed into it one by one and the emptied temporary directory is removed.
      Each child appears atomically but the whole is **not atomic**: a SIGKILL midway leaves
      ``path`` holding some of the children. ``marker`` (e.g. ``"zarr.json"``, the file that
      makes a directory a Zarr store) is moved in last, so whoever sees the marker sees all of it;
      a directory without its marker is an unfinished creation. ``first`` is moved in first: a
      child that says whose the directory is, so that a partial one is recognisably ours.

    With ``sync`` (default) every file and directory of the tree is synced before it is moved in
    and the directories after, so that after a power loss the result is there complete (or, in
    the absent case, not at all).
    """
    path = Path(path)
    if os.path.lexists(path) and not (path.is_dir() and _empty_dir(path)):
        raise TargetExists(f"{_where(path)} exists and is not an empty directory; give a new path")
    tmp = temp_name(path)
    try:
        os.mkdir(tmp)
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        yield tmp
        try:
            if sync:
                fsync_tree([tmp])
            if not os.path.lexists(path):
                os.rename(tmp, path)  # replaces an empty directory made meanwhile (POSIX rename)
            elif path.is_dir() and _empty_dir(path):
                names = sorted(os.listdir(tmp), key=lambda n: (n == marker, n != first, n))
                for name in names:
                    if os.path.lexists(path / name):  # something appeared meanwhile: keep it, stop
                        raise TargetExists(f"{_where(path)} is no longer empty ({name!r} appeared); give a new path")
                    if sync and name == marker:
                        fsync_dir(path)  # the others' entries durable before the marker's
                    os.rename(tmp / name, path / name)
                if sync:
                    fsync_dir(path)
                os.rmdir(tmp)
            else:
                raise TargetExists(f"{_where(path)} exists and is not an empty directory; give a new path")
            if sync:
                fsync_dir(path.parent)
        except OSError as err:
            raise _write_error(path, err) from None
    except BaseException:
        _remove_tree(tmp)
        raise


# -- space -------------------------------------------------------------------------------------


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes available to this user on the filesystem that holds (or will hold) ``path``.

    Measured at the nearest existing parent, so a path not created yet can be checked before a
    run writes it.
    """
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        if hasattr(os, "statvfs"):
            st = os.statvfs(p)
            return st.f_bavail * st.f_frsize
        import shutil  # Windows

        return shutil.disk_usage(p).free
    except OSError as err:
        raise _write_error(p, err, "cannot be measured") from None
