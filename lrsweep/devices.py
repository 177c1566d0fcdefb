"""One host, many devices: a chunk's configs sharded over the local devices.

A chunk of ``C`` configs runs on ``n`` devices as ``n`` blocks of ``C / n`` configs, one per device
(``jax.shard_map`` over a one-dimensional :class:`jax.sharding.Mesh` whose axis is
:data:`AXIS`): the per-config inputs (learning rates, hyperparameters, initial parameters) are
placed block by block with a :class:`jax.sharding.NamedSharding`, the data and scalars are
replicated, and each device runs exactly the program a one-device run compiles for a chunk of
``C / n`` configs (``engine.run_chunk``, the fused kernel included). Configs never interact, so
nothing is communicated until the results are gathered.

Results do not depend on the number of devices, bit for bit: :func:`lrsweep.planner.plan`
plans the per-device block as it plans a one-device chunk (a power of two of at least
``plan.MIN_CHUNK`` configs, the shapes for which every config's result is the same whatever the
chunk, ``plan.chunk_invariant``) and makes the chunk ``n`` such blocks. A store resumed with
another device count keeps its chunks, which then run on the most devices that split them into
equal blocks of at least ``plan.MIN_CHUNK`` (:func:`usable`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import engine, plan
from .types import ChunkInputs, ChunkResult

#: The mesh axis that a chunk's configs are split along.
AXIS = "configs"


def available() -> int:
    """The devices of this process's default backend (``jax.local_device_count()``)."""
    return jax.local_device_count()


def resolve(requested: int | None) -> int:
    """How many devices a sweep asks for: all of them (None) or ``requested``, checked."""
    have = available()
    if requested is None:
        return have
    if requested > have:
        raise ValueError(
            f"devices={requested} is invalid: this process sees {have} {jax.default_backend()} device(s); "
            f"expected 1 to {have}"
        )
    return int(requested)


def usable(n: int, chunk: int) -> int:
    """The most devices, at most ``n``, that split a chunk of ``chunk`` configs into equal blocks of
    at least ``plan.MIN_CHUNK`` configs (1 if none does)."""
    for d in range(min(n, chunk // plan.MIN_CHUNK), 1, -1):
        if chunk % d == 0:
            return d
    return 1


def check_chunk(chunk: int, n: int, requested_devices: int | None) -> int:
    """The devices a requested ``chunk_size`` runs on: ``n``, or fewer where ``devices`` was left to
    the default; an explicit ``devices`` that does not divide the chunk is refused."""
    d = usable(n, chunk)
    if d != n and requested_devices is not None:
        raise ValueError(
            f"chunk_size={chunk} is invalid with devices={n}: expected a multiple of {n} of at least "
            f"{n * plan.MIN_CHUNK} (each device trains an equal block of at least {plan.MIN_CHUNK} configs)"
        )
    return d


@functools.cache
def mesh(n: int) -> Mesh:
    """A mesh of the first ``n`` local devices along :data:`AXIS`."""
    return Mesh(np.array(jax.local_devices()[:n]), (AXIS,))


def _specs() -> ChunkInputs:
    """Partition specs of a chunk's inputs, a pytree prefix of them (a ``ChunkInputs`` of
    ``PartitionSpec``): per-config values split along :data:`AXIS` (every parameter leaf alike),
    data and scalars replicated."""
    return ChunkInputs.axes(P(AXIS), P())


def place(inputs: ChunkInputs, n: int) -> ChunkInputs:
    """``inputs`` on ``n`` devices: each device holds its block of configs and a copy of the data."""
    m = mesh(n)
    shardings = jax.tree.map(lambda spec: NamedSharding(m, spec), _specs())
    return jax.device_put(inputs, shardings)


@functools.cache
def _sharded(static: engine.Static, n: int) -> Callable[[ChunkInputs], ChunkResult]:
    one = functools.partial(engine.run_chunk, static=static)

    def run(inputs: ChunkInputs) -> ChunkResult:
        return jax.shard_map(one, mesh=mesh(n), in_specs=(_specs(),), out_specs=P(AXIS), check_vma=False)(inputs)

    return jax.jit(run)


def run_chunk(inputs: ChunkInputs, static: engine.Static, n: int) -> ChunkResult:
    """``engine.run_chunk`` on ``n`` devices (``n`` must divide the chunk); on one device, that call itself."""
    if n == 1:
        return engine.run_chunk(inputs, static=static)
    c = int(np.shape(inputs.lr)[0])
    if c % n:
        raise ValueError(f"a chunk of {c} configs cannot be split over {n} devices")
    fn = _sharded(static, n)
    return fn(place(inputs, n))
