"""One writer per store: a lock file beside it, naming the process that holds it.

``acquire("sweep.zarr")`` creates ``sweep.zarr.lock`` with ``O_CREAT | O_EXCL`` (the kernel lets
exactly one process create a name) holding JSON: host, pid, the process's start time (from
``/proc/<pid>/stat``, so that a pid reused by a later process is not mistaken for the holder), boot
id, creation time, command line and a random token. A second writer is refused with
:class:`StoreLocked`, whose one-line message names the holder.

Why a sibling ``<store>.lock`` rather than a file inside the store: it exists before the store does
(the store can then be created atomically, by renaming a complete temporary directory into place,
see ``lrsweep._fs.atomic_dir``, under the lock); deleting a store to start over does not delete a
live writer's lock; and the store's directory holds only Zarr's own files. The cost: the parent
directory must be writable (creating the store needs that anyway), and a store moved elsewhere
leaves its lock behind (stale, so harmless). The store path is resolved (symlinks, ``..``) first,
so two spellings of one store share one lock.

Stale locks, removed without asking (the crashed run's user just runs again):

- same host and the pid is dead, a zombie, or alive with another start time (pid reused);
- same host and another boot id (the machine rebooted since);
- unreadable content (a writer killed between creating the file and writing it, or a power loss
  before the data reached the disk) once the file is more than ``CORRUPT_GRACE_S`` seconds old.

A lock held on another host is never judged stale: its pids cannot be checked from here.
``acquire(..., break_lock=True)`` (the CLI's ``--break-lock``) removes whatever lock is there
first; it is for the user who knows that process is gone.

Races. Removing a stale lock and creating ours are two steps, and a lock is removed by *name*
while it was judged by *content*: between the two, another process could have removed the stale
lock and created a live one, which a plain ``unlink`` (or ``rename``) would then destroy. So the
remover holds an exclusive ``flock`` on the lock file it judged, checks that the name still
refers to that very file (inode), re-reads it, and only then unlinks. Removers and releasers
serialise on the file, a file is removed at most once, and then ``O_EXCL`` lets exactly one of
the racers create the next lock: of N processes breaking one stale lock at once, exactly one
wins. The creator holds the same ``flock`` while writing its content, so nobody judges its
still-empty file. (Where ``flock`` is unsupported, some network filesystems, the remover renames
the file aside and puts it back if it turns out to be another than the one judged: a much smaller
window, not none.) ``break_lock`` breaks only the lock that was there when it looked first, and
only one made before this process started (``created_unix``): of N ``--break-lock`` runs started
together, one breaks the old lock and takes it, and the others find a lock made after they started,
a racer's, which they do not break: exactly one owner.

What survives what: the lock is a claim for the lifetime of a process. SIGKILL leaves the file,
which the next run on this host judges stale (pid dead) and removes. A power loss leaves a lock
of an earlier boot (stale by boot id) or an empty file (stale by age). The file is not fsync-ed:
a lock that vanishes in a power loss had no live holder anyway.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._fs import pid_alive, process_start_time, temp_name

try:
    import fcntl
except ImportError:  # Windows: no flock; see the module docstring
    fcntl = None  # type: ignore[assignment]

__all__ = ["CORRUPT_GRACE_S", "Lock", "LockError", "StoreLocked", "acquire", "holder", "lock_path"]

#: An unreadable lock file younger than this may be one being written: wait; older ones are stale.
CORRUPT_GRACE_S = 5.0
#: How long to wait for another process judging or removing the same lock file (a few syscalls).
_GUARD_TIMEOUT_S = 10.0
_POLL_S = 0.02
#: When this process started (near enough: lrsweep imports this module at once). ``break_lock``
#: breaks only locks made before it: a lock made later is another racer's, not the one the user
#: saw and asked to break.
_STARTED = time.time()


class LockError(ValueError):
    """The lock file cannot be created or read (permissions, a directory in the way, ...)."""


class StoreLocked(ValueError):
    """The store is being written by another live process; ``holder`` is its lock's content."""

    def __init__(self, store: str, holder: dict[str, Any]):
        self.store, self.holder = store, holder
        super().__init__(
            f"store {store!r} is in use by pid {holder.get('pid')} on host {holder.get('host')} "
            f"(started {holder.get('created')}); wait for it to finish, or if that process is gone "
            "run again with --break-lock"
        )


def lock_path(store_path: str | os.PathLike) -> Path:
    """The lock file of the store at ``store_path``: ``<store>.lock`` beside it (symlinks resolved)."""
    p = Path(store_path).resolve()
    if not p.name:
        raise LockError(f"store {os.fspath(store_path)!r} cannot be locked: give a store name, not a root")
    return p.with_name(p.name + ".lock")


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _our_info(store: Path) -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start_time": process_start_time(pid),
        "boot_id": _boot_id(),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "created_unix": time.time(),
        "command": [sys.executable, *sys.argv],
        "store": str(store),
        "token": secrets.token_hex(8),
    }


def _parse(data: bytes) -> dict[str, Any] | None:
    """The lock's content, or None when it is not a lock of ours (empty, truncated, garbage)."""
    try:
        info = json.loads(data)
    except ValueError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int) or not isinstance(info.get("host"), str):
        return None
    return info


def _is_stale(info: dict[str, Any]) -> bool:
    """Whether a lock's holder is certainly gone (only ever judged for this host)."""
    if info["host"] != socket.gethostname():
        return False
    boot = _boot_id()
    if boot and info.get("boot_id") and info["boot_id"] != boot:
        return True
    start = info.get("start_time")
    return not pid_alive(info["pid"], start if isinstance(start, int) else None)


def _made_since_we_started(info: dict[str, Any] | None) -> bool:
    """Whether the lock was made after this process started (by a racer; never broken)."""
    made = info.get("created_unix") if info is not None else None
    return isinstance(made, (int, float)) and not isinstance(made, bool) and made >= _STARTED


# -- the file-level guard ----------------------------------------------------------------------


class _GuardBusy(Exception):
    pass


@contextlib.contextmanager
def _guard(fd: int) -> Iterator[bool]:
    """Hold an exclusive flock on ``fd``'s file; yields whether it is held (False: unsupported)."""
    held = False
    if fcntl is not None:
        deadline = time.monotonic() + _GUARD_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _GuardBusy from None
                time.sleep(0.002)
            except OSError:  # ENOLCK, EBADF, EOPNOTSUPP: flock unsupported on this filesystem
                break
    try:
        yield held
    finally:
        if held and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _open_existing(path: Path) -> int | None:
    # Read-write where allowed: NFS emulates flock with POSIX locks, which need a writable fd.
    for flags in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            return None
        except PermissionError:
            continue
    raise PermissionError(f"cannot open {path}")


def _remove(path: Path, fd: int, guarded: bool) -> None:
    """Remove the lock file ``fd`` is open on, by ``path`` (which the caller checked names it)."""
    if guarded:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    aside = temp_name(path)  # a name sweep_stale_temps recognises, should we die right here
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if not _same_file(fd, aside):  # someone else's newer lock: put it back if the name is free
        with contextlib.suppress(OSError):
            os.link(aside, path)
    os.unlink(aside)


# -- the lock ----------------------------------------------------------------------------------


class Lock:
    """A held store lock. ``release()`` (or leaving a ``with`` block) removes it if still ours.

    Attributes:
      store: the store path as given; path: the lock file; info: what the lock file says.
    """

    def __init__(self, store: str, path: Path, content: bytes, info: dict[str, Any]):
        self.store, self.path, self.info = store, path, info
        self._content, self._pid, self._held = content, os.getpid(), True

    @property
    def held(self) -> bool:
        """Whether this process still holds it (released locks, and forked children, do not)."""
        return self._held and os.getpid() == self._pid

    def release(self) -> bool:
        """Remove the lock file if it still holds our content; returns whether it was removed.

        A lock that another process broke (``--break-lock``) and maybe re-created is left alone.
        Idempotent; a no-op in a forked child (the parent holds the lock).
        """
        if not self.held:
            return False
        self._held = False
        try:
            fd = _open_existing(self.path)
        except OSError:
            return False
        if fd is None:
            return False
        try:
            with _guard(fd) as guarded:
                if not _same_file(fd, self.path) or _read_fd(fd) != self._content:
                    return False
                _remove(self.path, fd, guarded)
                return True
        except (_GuardBusy, OSError):
            return False  # left in place: stale once this process exits
        finally:
            os.close(fd)

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lock({self.store!r}, pid={self.info['pid']}, held={self.held})"


def holder(store_path: str | os.PathLike) -> dict[str, Any] | None:
    """What the store's lock file says (host, pid, created, command, ...), or None if unlocked.

    An unreadable lock file reads as ``{}``. Says nothing about whether the holder is alive.
    """
    try:
        data = lock_path(store_path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LockError(f"store {os.fspath(store_path)!r}: its lock file cannot be read: {err.strerror}") from None
    return _parse(data) or {}


def acquire(store_path: str | os.PathLike, *, break_lock: bool = False) -> Lock:
    """Take the store's lock, removing a stale one; raises :class:`StoreLocked` if it is held.

    Works before the store exists (the lock is a sibling, ``<store>.lock``; a missing parent
    directory is created, as writing the store would). ``break_lock`` removes the lock that is
    there first, whoever holds it. Use the result as a context manager, or call ``release()``.
    See the module docstring for what is judged stale and why races have exactly one winner.
    """
    store = os.fspath(store_path)
    path = lock_path(store_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LockError(f"store {store!r} cannot be locked: {err.strerror or err}") from None
    info = _our_info(Path(store_path).resolve())
    content = (json.dumps(info) + "\n").encode()
    first_seen: bytes | None = None  # the lock break_lock may break: the one there when we looked
    corrupt_since: float | None = None  # when we first saw an unreadable lock (file clocks may lie)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        except OSError as err:
            raise LockError(f"store {store!r} cannot be locked: {path.name}: {err.strerror or err}") from None
        else:
            try:
                with _guard(fd):  # nobody judges our file while it is still empty
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view) :]
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
            finally:
                os.close(fd)
            return Lock(store, path, content, info)

        try:
            fd = _open_existing(path)
        except OSError as err:
            raise LockError(f"store {store!r} cannot be locked: {path.name}: {err.strerror or err}") from None
        if fd is None:
            continue  # released or removed meanwhile: try to create it again
        wait = False
        try:
            with _guard(fd) as guarded:
                if not _same_file(fd, path):
                    continue  # removed (maybe re-created) meanwhile: look again
                data = _read_fd(fd)
                if first_seen is None:
                    first_seen = data
                found = _parse(data)
                # An unreadable lock may be a racer's still being written: judged by age below.
                if break_lock and data == first_seen and found is not None and not _made_since_we_started(found):
                    _remove(path, fd, guarded)
                elif found is None:
                    corrupt_since = time.monotonic() if corrupt_since is None else corrupt_since
                    age = max(time.time() - os.fstat(fd).st_mtime, time.monotonic() - corrupt_since)
                    if age >= CORRUPT_GRACE_S:
                        _remove(path, fd, guarded)
                    else:
                        wait = True  # maybe a writer between creating and writing it
                elif _is_stale(found):
                    _remove(path, fd, guarded)
                else:
                    raise StoreLocked(store, found)
        except _GuardBusy:
            raise LockError(
                f"store {store!r} cannot be locked: {path.name} is held by a process stuck judging it; try again"
            ) from None
        except OSError as err:
            raise LockError(f"store {store!r} cannot be locked: {path.name}: {err.strerror or err}") from None
        finally:
            os.close(fd)
        if wait:
            time.sleep(_POLL_S)
