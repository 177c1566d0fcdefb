"""lrsweep.lock: one writer per store, stale locks removed, races with exactly one winner.

The helper processes that hold and race for locks load the module on its own (a stand-in parent
package, not ``lrsweep/__init__``, which imports JAX), so that they start in milliseconds.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO

import pytest

from lrsweep import _fs, lock

PKG_DIR = Path(__file__).resolve().parent.parent / "lrsweep"
_LOAD = textwrap.dedent(
    """
    import importlib, sys, types
    def load(pkg_dir, name):
        if "_lrsweep_alone" not in sys.modules:
            pkg = types.ModuleType("_lrsweep_alone")
            pkg.__path__ = [pkg_dir]
            sys.modules["_lrsweep_alone"] = pkg
        return importlib.import_module("_lrsweep_alone." + name)
    """
)


# A helper process: `hold STORE` takes the lock and sleeps; `race STORE GO DONE` waits for GO,
# tries once, says "won" or "locked", and keeps what it got until DONE exists; `break STORE GO
# DONE` does the same with break_lock=True.
HELPER = _LOAD + textwrap.dedent(
    """
    import os, time
    lock = load(sys.argv[1], "lock")
    mode, store = sys.argv[2], sys.argv[3]
    if mode == "hold":
        held = lock.acquire(store)
        print("held", flush=True)
        time.sleep(60)
    else:
        go, done = sys.argv[4], sys.argv[5]
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.0002)
        try:
            held = lock.acquire(store, break_lock=mode == "break")
            print("won", flush=True)
        except lock.StoreLocked:
            print("locked", flush=True)
        while not os.path.exists(done):
            time.sleep(0.005)
    """
)


def _out(proc: subprocess.Popen) -> IO:
    """A child's stdout pipe (opened with ``stdout=PIPE``)."""
    assert proc.stdout is not None
    return proc.stdout


def _holder(store) -> dict:
    """The lock file's record of the process holding ``store``'s lock (there must be one)."""
    info = lock.holder(store)
    assert info is not None
    return info


def _helper(*args):
    return subprocess.Popen(
        [sys.executable, "-c", HELPER, str(PKG_DIR), *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def _stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    _out(proc).close()


@pytest.fixture
def holder_proc(tmp_path):
    proc = _helper("hold", tmp_path / "s.zarr")
    assert _out(proc).readline().strip() == "held"
    yield proc
    _stop(proc)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(store, **fields):
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start_time": _fs.process_start_time(os.getpid()),
        "created": "2026-01-01T00:00:00+00:00",
        "token": "x",
    }
    info.update(fields)
    path = lock.lock_path(store)
    path.write_text(json.dumps(info))
    return path


def test_lock_is_a_sibling_with_its_holder_and_release_removes_it(tmp_path):
    store = tmp_path / "new" / "s.zarr"  # neither the store nor its parent exist yet
    with lock.acquire(store) as held:
        path = tmp_path / "new" / "s.zarr.lock"
        assert held.path == path and held.held and not store.exists()
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert set(info) >= {"start_time", "created", "command", "boot_id"}
        assert lock.holder(store) == info
    assert not path.exists() and not held.held and lock.holder(store) is None
    assert held.release() is False  # idempotent


def test_second_writer_is_refused_naming_the_holder(tmp_path, holder_proc):
    with pytest.raises(lock.StoreLocked) as err:
        lock.acquire(tmp_path / "s.zarr")
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in msg
    started = json.loads((tmp_path / "s.zarr.lock").read_text())["created"]
    assert msg == (
        f"store {str(tmp_path / 's.zarr')!r} is in use by pid {holder_proc.pid} on host {socket.gethostname()} "
        f"(started {started}); wait for it to finish, or if that process is gone run again with --break-lock"
    )
    assert err.value.holder["pid"] == holder_proc.pid


def test_a_lock_of_a_killed_holder_is_taken_over(tmp_path, holder_proc):
    holder_proc.send_signal(signal.SIGKILL)
    # Not reaped yet: a zombie, which is dead too.
    deadline = time.monotonic() + 5
    while (_fs._proc_stat(holder_proc.pid) or ("gone", 0))[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    with lock.acquire(tmp_path / "s.zarr") as held:
        assert _holder(tmp_path / "s.zarr")["pid"] == os.getpid() == held.info["pid"]
    holder_proc.wait()
    with lock.acquire(tmp_path / "s.zarr"):  # and once reaped, of course
        pass


def test_a_dead_pid_is_stale_a_reused_pid_is_stale_a_live_one_is_not(tmp_path):
    store = tmp_path / "s.zarr"
    _write_lock(store, pid=_dead_pid())
    lock.acquire(store).release()
    # Our own pid but another start time: the pid was reused since the lock was written.
    start = _fs.process_start_time(os.getpid())
    assert start is not None  # Linux /proc
    _write_lock(store, start_time=start - 1)
    lock.acquire(store).release()
    # Our own pid and start time: that is a live holder (this very process), so refused.
    _write_lock(store)
    with pytest.raises(lock.StoreLocked, match=f"in use by pid {os.getpid()} "):
        lock.acquire(store)


@pytest.mark.skipif(not Path("/proc/sys/kernel/random/boot_id").exists(), reason="needs Linux boot_id")
def test_a_lock_from_an_earlier_boot_is_stale(tmp_path):
    _write_lock(tmp_path / "s.zarr", boot_id="00000000-0000-0000-0000-000000000000")
    lock.acquire(tmp_path / "s.zarr").release()


def test_another_hosts_lock_is_never_stale_but_break_lock_removes_it(tmp_path):
    store = tmp_path / "s.zarr"
    _write_lock(store, host="elsewhere.example", pid=_dead_pid())
    with pytest.raises(lock.StoreLocked, match=r"on host elsewhere\.example"):
        lock.acquire(store)
    with lock.acquire(store, break_lock=True) as held:
        assert _holder(store)["token"] == held.info["token"]


def test_break_lock_takes_a_live_holders_lock_and_its_release_leaves_ours(tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"
    first = lock.acquire(store)
    with pytest.raises(lock.StoreLocked):  # made since this process started: a racer's, kept
        lock.acquire(store, break_lock=True)
    monkeypatch.setattr(lock, "_STARTED", time.time() + 1)  # as a process started after it
    second = lock.acquire(store, break_lock=True)
    assert first.release() is False  # not ours any more: left alone
    assert _holder(store)["token"] == second.info["token"]
    assert second.release() is True and lock.holder(store) is None


def test_release_leaves_a_lock_that_is_not_ours(tmp_path):
    store = tmp_path / "s.zarr"
    held = lock.acquire(store)
    path = _write_lock(store, token="someone else")  # broken and re-created by another
    assert held.release() is False and json.loads(path.read_text())["token"] == "someone else"
    other = lock.acquire(store, break_lock=True)
    other._pid = -1  # as in a forked child: the parent's lock is not the child's to release
    assert not other.held and other.release() is False and path.exists()


def test_a_corrupt_lock_is_stale_once_old_and_waited_for_while_young(tmp_path, monkeypatch):
    store = tmp_path / "s.zarr"
    path = lock.lock_path(store)
    for junk in (b"", b'{"host": "h", "pi'):
        path.write_bytes(junk)
        old = time.time() - 2 * lock.CORRUPT_GRACE_S
        os.utime(path, (old, old))
        lock.acquire(store).release()
    # Young: maybe a writer between creating and writing it; wait up to the grace, then take it.
    # The lock's clock is a fake whose sleep advances it: the test counts the waiting, not the seconds.
    clock = _FakeClock(time.time())
    monkeypatch.setattr(lock, "CORRUPT_GRACE_S", 0.3)
    monkeypatch.setattr(lock, "time", clock)
    path.write_bytes(b"")
    lock.acquire(store).release()
    assert clock.slept >= 0.3


class _FakeClock:
    """``time.time``, ``monotonic`` and ``sleep`` for lrsweep.lock: sleeping advances both clocks at once."""

    def __init__(self, now: float):
        self.now, self.slept = now, 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@pytest.mark.parametrize("stale", ["dead pid", "reused pid", "corrupt"])
def test_racers_for_one_stale_lock_have_exactly_one_winner(tmp_path, stale):
    store = tmp_path / "s.zarr"
    for attempt in range(2):
        if stale == "dead pid":
            path = _write_lock(store, pid=_dead_pid())
        elif stale == "reused pid":
            path = _write_lock(store, start_time=-1)
        else:
            path = lock.lock_path(store)
            path.write_bytes(b"")
            os.utime(path, (0, 0))
        go, done = tmp_path / f"go{attempt}", tmp_path / f"done{attempt}"
        procs = [_helper("race", store, go, done) for _ in range(8)]
        try:
            assert [_out(p).readline().strip() for p in procs] == ["ready"] * 8
            go.touch()
            said = [_out(p).readline().strip() for p in procs]
            assert sorted(said) == ["locked"] * 7 + ["won"], said
            winner = procs[said.index("won")].pid
            assert json.loads(path.read_text())["pid"] == winner
        finally:
            done.touch()
            for p in procs:
                p.wait(timeout=10)
                _out(p).close()
        path.unlink()  # the winner exited without releasing: stale, but start afresh anyway


@pytest.mark.parametrize("held_by", ["another host", "a live process"])
def test_break_lock_racers_break_the_lock_once_and_have_exactly_one_owner(tmp_path, held_by):
    store = tmp_path / "s.zarr"
    holder = None
    if held_by == "another host":
        path = _write_lock(store, host="elsewhere.example", pid=_dead_pid())
    else:
        holder = _helper("hold", store)
        assert _out(holder).readline().strip() == "held"
        path = lock.lock_path(store)
    go, done = tmp_path / "go", tmp_path / "done"
    procs = [_helper("break", store, go, done) for _ in range(8)]
    try:
        assert [_out(p).readline().strip() for p in procs] == ["ready"] * 8
        go.touch()
        said = [_out(p).readline().strip() for p in procs]
        assert sorted(said) == ["locked"] * 7 + ["won"], said
        assert json.loads(path.read_text())["pid"] == procs[said.index("won")].pid
    finally:
        done.touch()
        for p in procs:
            p.wait(timeout=10)
            _out(p).close()
        if holder is not None:
            _stop(holder)
