"""Where a planned sweep's results go: :func:`open_sink` opens a :class:`Sink` for a :class:`~lrsweep.planner.Plan`.

Without ``out`` the sink is memory (``store.MemorySink``), refused when the whole result and the
chunks in flight would not fit the memory budget. With ``out`` it is a Zarr store
(``store.ZarrSink``): free space is checked before anything is written, the store's lock is held
for as long as the sink is open (creation included), and a store that exists is verified and
resumed. A resumed store keeps its own chunk shape and size (``sink.layout``) and knows its
finished chunks (``sink.is_done``), so the caller learns both without opening the store itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr

from . import lock, plan, store
from .plan import Layout
from .planner import Plan
from .spec import RunOptions


@runtime_checkable
class Sink(Protocol):
    """What an executor writes a sweep's chunks into (``store.MemorySink`` and ``store.ZarrSink``).

    ``layout`` is the result's layout as the sink holds it (a resumed store's chunk shape and
    ``attrs["chunk_size"]``); ``write(k, values)`` takes chunk ``k``'s variables shaped like its
    region; ``mark_done(k)`` follows each write; ``dataset()`` is the result (after ``close()``).
    """

    layout: Layout

    def is_done(self, k: int) -> bool: ...

    def write(self, k: int, values: dict[str, np.ndarray]) -> None: ...

    def mark_done(self, k: int) -> None: ...

    def close(self) -> None: ...

    def dataset(self) -> xr.Dataset: ...


def todo(sink: Sink) -> list[int]:
    """The chunks ``sink`` does not hold yet, in order."""
    return [k for k in range(sink.layout.n_chunks) if not sink.is_done(k)]


@contextlib.contextmanager
def open_sink(planned: Plan, options: RunOptions | None = None) -> Iterator[Sink]:
    """The sink of ``planned``'s results under ``options`` (default: the plan's own), open for the
    ``with`` block: the store's lock is held and pending done-marks are written on the way out,
    whatever happens. Public as ``lrsweep.open_sink``.

    Without ``options.out``: memory, refused (ValueError) when the result and the chunks in flight
    exceed the memory budget. With it: a Zarr store, created, or verified and resumed when it exists
    (``sink.is_done(k)`` for its finished chunks; ``sink.layout`` its own chunk shape).

    The sink gets its own copy of the layout's attrs: a run that changes its kernel path on the way
    (``runner.Job``) records that in the sink's result, not in the plan.
    """
    options = planned.options if options is None else options
    job = planned.job()
    layout = dataclasses.replace(job.layout, attrs=dict(job.layout.attrs))
    per_config = plan.inflight_bytes(job.statics[0], job.instances[0], 1)  # one config, every chunk in flight
    memory = planned.memory
    with contextlib.ExitStack() as held:
        if options.out is not None:
            store.check_space(layout, options.out)  # before anything is written, the lock included
            # One writer per store, for the whole run, creation included.
            held.enter_context(lock.acquire(options.out, break_lock=bool(options.break_lock)))
            sink = store.ZarrSink(
                layout, options.out, memory=memory, per_config=per_config, allow_mixed=bool(options.allow_mixed)
            )
            held.callback(sink.close)  # finished chunks' done-marks are written whatever happens
        else:
            need = plan.in_memory_bytes(layout) + per_config * job.chunk
            if need > memory:
                raise ValueError(
                    f"the results need about {plan.human_size(need)} (results, coordinates and chunks in flight), "
                    f"more than memory={plan.human_size(memory)}; stream them to disk with out='sweep.zarr' (--out), "
                    "or record less"
                )
            sink = store.MemorySink(layout)
        yield sink
