"""The exhaustive sweep sharded over every device of a host, and split over hosts with ``jax.distributed``.

One host: :func:`sharded_sweep` lays a 1-D :class:`~jax.sharding.Mesh` over the devices and evaluates
``n_devices x chunk_per_device`` consecutive designs per step; inside ``jax.shard_map`` each device decodes
its own slice of flat indices, so nothing but a start index goes to the devices and only three float
arrays come back. Each device runs exactly the computation :func:`cimjax.search.exhaustive.sweep` runs
on one device (same chunk shape), so the results are identical to it, bit for bit.

Several hosts (no cross-host communication is needed, the designs are independent)::

    jax.distributed.initialize()              # coordinator, process count and id from the cluster env
    part = host_sweep(spec, prec, workload, tech)   # this process's share, on its local devices
    part.save(f"sweep-{jax.process_index()}.npz")   # a shared filesystem, or gather them any other way
    # then, on any one machine:
    result = merge_partials(space, [load_partial(p) for p in paths])

Memory per step is bounded by the chunk: about ``chunk_per_device`` designs' intermediates per device,
plus three ``float64`` arrays of the range's size on the host (75 MB for the paper's 3,136,000 designs).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cimjax.cost.batched import AXIS, compress_uniform, make_evaluator
from cimjax.files import NPZ_UNREADABLE, atomic_savez
from cimjax.hardware.config import PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import Technology
from cimjax.search.exhaustive import DEFAULT_CHUNK, SweepResult, run_chunks
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class PartialSweep:
    """Costs of the designs with flat indices in ``[start, stop)`` (one process's share of a sweep)."""

    start: int
    stop: int
    latency_s: np.ndarray
    energy_j: np.ndarray
    area_mm2: np.ndarray
    compile_s: float
    wall_s: float

    def save(self, path: str | Path) -> None:
        """Writes the share to an ``.npz`` file (to be merged elsewhere with :func:`merge_partials`); ``.npz`` is
        added to a name without it, as ``np.savez`` does. The file appears whole or not at all, so a process
        stopped while saving never leaves a truncated share to be merged."""
        path = Path(path)
        atomic_savez(
            path if path.name.endswith(".npz") else path.with_name(path.name + ".npz"),
            range=np.asarray([self.start, self.stop]),
            times=np.asarray([self.compile_s, self.wall_s]),
            latency_s=self.latency_s,
            energy_j=self.energy_j,
            area_mm2=self.area_mm2,
        )


def load_partial(path: str | Path) -> PartialSweep:
    """Reads a share written by :meth:`PartialSweep.save`."""
    try:
        with np.load(path) as data:
            (start, stop), (compile_s, wall_s) = data["range"].tolist(), data["times"].tolist()
            arrays = (data["latency_s"], data["energy_j"], data["area_mm2"])
    except NPZ_UNREADABLE as error:
        raise ValueError(f"cannot read partial sweep {path}: {error}") from error
    return PartialSweep(int(start), int(stop), *arrays, compile_s=compile_s, wall_s=wall_s)


def sweep_range(
    spec: ModelSpec,
    prec: Precision,
    workload: Workload,
    tech: Technology,
    space: DesignSpace = PAPER_SPACE,
    start: int = 0,
    stop: int | None = None,
    chunk_per_device: int = DEFAULT_CHUNK,
    devices: Sequence[jax.Device] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PartialSweep:
    """Evaluates the designs with flat indices in ``[start, stop)`` over ``devices`` (default: all local ones).

    ``progress(done, total)`` is called after each step, counting designs of this range.
    """
    stop = space.size if stop is None else stop
    if not 0 <= start <= stop <= space.size:
        raise ValueError(f"index range [{start}, {stop}) is not inside the design space [0, {space.size})")
    if chunk_per_device < 1:
        raise ValueError(f"chunk_per_device must be at least 1, got {chunk_per_device}")
    devices = tuple(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("no devices to sweep on")
    run = make_evaluator(spec, workload, space, "range", size=chunk_per_device, devices=devices)
    # Precision and technology are copied to every device once, not on every step.
    inputs = jax.device_put(
        (compress_uniform(prec), tech), NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec())
    )

    start_compile = time.perf_counter()
    jax.block_until_ready(run(jnp.asarray(start), *inputs))
    compile_s = time.perf_counter() - start_compile

    begin = time.perf_counter()
    outputs = run_chunks(run, inputs, start, stop, len(devices) * chunk_per_device, progress)
    wall_s = time.perf_counter() - begin
    return PartialSweep(start, stop, *outputs, compile_s=compile_s, wall_s=wall_s)


def sharded_sweep(
    spec: ModelSpec,
    prec: Precision,
    workload: Workload,
    tech: Technology,
    space: DesignSpace = PAPER_SPACE,
    chunk_per_device: int = DEFAULT_CHUNK,
    devices: Sequence[jax.Device] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Like :func:`cimjax.search.exhaustive.sweep`, with each step split over ``devices`` (default: all local)."""
    part = sweep_range(spec, prec, workload, tech, space, 0, space.size, chunk_per_device, devices, progress)
    return merge_partials(space, [part])


def process_index_range(size: int, process_index: int | None = None, process_count: int | None = None) -> tuple:
    """``(start, stop)`` of this process's share of ``size`` designs: contiguous, sizes differing by at most 1.

    Defaults to ``jax.process_index()`` and ``jax.process_count()`` (call ``jax.distributed.initialize()``
    first on a multi-host run).
    """
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process index {index} is not in [0, {count})")
    base, extra = divmod(size, count)
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def host_sweep(
    spec: ModelSpec,
    prec: Precision,
    workload: Workload,
    tech: Technology,
    space: DesignSpace = PAPER_SPACE,
    chunk_per_device: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> PartialSweep:
    """This process's share of a multi-host sweep, on its local devices (after ``jax.distributed.initialize()``)."""
    start, stop = process_index_range(space.size)
    return sweep_range(spec, prec, workload, tech, space, start, stop, chunk_per_device, jax.local_devices(), progress)


def merge_partials(space: DesignSpace, parts: Sequence[PartialSweep]) -> SweepResult:
    """Joins shares covering ``[0, space.size)`` exactly once into one :class:`SweepResult`.

    The shares ran in parallel, so compile and wall time are those of the slowest share.
    """
    parts = sorted(parts, key=lambda p: p.start)
    covered = 0
    for part in parts:
        if part.start != covered:
            raise ValueError(
                f"partial sweeps leave a gap or overlap at design index {covered} (next share starts at {part.start})"
            )
        if part.latency_s.shape != (part.stop - part.start,):
            raise ValueError(f"partial sweep [{part.start}, {part.stop}) holds {part.latency_s.size} designs")
        covered = part.stop
    if covered != space.size:
        raise ValueError(f"partial sweeps cover designs [0, {covered}) of a space of {space.size}")
    arrays = [np.concatenate([getattr(p, name) for p in parts]) for name in ("latency_s", "energy_j", "area_mm2")]
    return SweepResult(
        space,
        *arrays,
        compile_s=max(p.compile_s for p in parts),
        wall_s=max(p.wall_s for p in parts),
    )
