"""Signals around writes: Ctrl-C deferred to safe points while a store is written, and the
deterministic crash points the tests use to kill a run mid-write."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator


def kill_point(stage: str) -> None:
    """Signal this process at ``stage`` when ``LRSWEEP_TEST_KILL_AT`` is ``stage`` (SIGKILL) or
    ``stage:INT`` (SIGINT): deterministic crash and interrupt points for the tests."""
    want, _, sig = os.environ.get("LRSWEEP_TEST_KILL_AT", "").partition(":")
    if want == stage:
        os.kill(os.getpid(), signal.SIGINT if sig == "INT" else signal.SIGKILL)


_DEFERRED = {"depth": 0, "hit": False}


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], None]]:
    """Ctrl-C waits until the block (or its next ``check()``) instead of tearing a Zarr write apart.

    Zarr writes through an event loop in another thread: a KeyboardInterrupt in the middle leaves
    that loop's tasks running and prints pages of asyncio noise. Here SIGINT only sets a flag; the
    block calls ``check()`` at safe points and the interrupt is raised there or when it ends
    (nested blocks share the flag). Only in the main thread with Python's default handler.
    """

    def check() -> None:
        if _DEFERRED["hit"]:
            _DEFERRED["hit"] = False
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield check
        return
    old = None
    if _DEFERRED["depth"] == 0:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield check
            return
        old = signal.signal(signal.SIGINT, lambda *_: _DEFERRED.update(hit=True))
    _DEFERRED["depth"] += 1
    try:
        yield check
    finally:
        _DEFERRED["depth"] -= 1
        if old is not None:
            signal.signal(signal.SIGINT, old)
    check()
