"""Exhaustive, batched exact evaluation of a whole design space, in bounded memory.

Designs are decoded from their index inside the jitted chunk function, so no table of designs is
ever materialised; only three float arrays (latency, energy, area) of the space's size are kept.
Mirror images (a 2 x 3 cluster grid and a 3 x 2 one, see :mod:`cimjax.search.symmetry`) cost the same,
so only the distinct designs are evaluated, and counted; their costs are copied to the mirrors.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from cimjax.cost.batched import compress_uniform, make_evaluator
from cimjax.cost.distinct import distinct_rows
from cimjax.hardware.config import PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import Technology
from cimjax.search.pareto import alpha_objective, alpha_sweep, pareto_front_2d
from cimjax.search.symmetry import MirrorFolding
from cimjax.validation import check_limits
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec

DEFAULT_CHUNK = 1 << 14
"""Designs per jitted step. On CPUs 16,384 designs' intermediates stay in cache: a sweep of the paper's space
took 0.63 CPU s at uniform INT8 and 2.9 at a 16-layer per-layer table, against 1.07 and 3.9 in steps of
65,536 (LLaMA3.2-1B, docs/benchmarks.md); each design's numbers do not depend on the step."""


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Decode latency (s), energy (J) and area (mm^2) of every design, indexed by flat design index.

    ``evaluations`` counts the designs the cost model evaluated (the distinct ones, after mirror folding,
    unless the sweep evaluated them all); the optimum and the Pareto front are taken over distinct
    designs, so a design and its mirror image are reported once (the canonical one).
    """

    space: DesignSpace
    latency_s: np.ndarray
    energy_j: np.ndarray
    area_mm2: np.ndarray
    compile_s: float
    wall_s: float
    evaluated: int | None = None
    """Designs evaluated by the cost model; None: every design of the space."""

    @property
    def evaluations(self) -> int:
        return int(self.latency_s.size) if self.evaluated is None else self.evaluated

    @property
    def distinct_designs(self) -> int:
        return MirrorFolding(self.space).size

    @property
    def designs_per_s(self) -> float:
        """Designs evaluated per second (distinct designs when the sweep folded mirrors)."""
        return self.evaluations / self.wall_s

    @property
    def space_designs_per_s(self) -> float:
        """Designs of the whole space covered per second (mirror images included)."""
        return int(self.latency_s.size) / self.wall_s

    @property
    def distinct_indices(self) -> np.ndarray:
        """Flat indices of the distinct designs (one of each mirror pair), increasing."""
        return MirrorFolding(self.space).flat_indices

    def best(self, alpha: float, tolerance: float = 0.0, area_max: float | None = None) -> tuple[int, float]:
        """Flat index and value of the distinct design minimising L^alpha E^(1-alpha).

        Ties (e.g. buses wider than needed at alpha = 1) go to the Pareto-optimal design, then to the lower
        index (so a canonical design before its mirror image). ``area_max`` (mm^2) leaves out larger designs.
        ``tolerance`` > 0 is the near-tie rule: of the designs within ``(1 + tolerance)`` of the best
        objective, the smallest chip (then the lower objective).
        """
        distinct = self.distinct_indices
        latency, energy, area = self.latency_s[distinct], self.energy_j[distinct], self.area_mm2[distinct]
        tolerance, area_max = check_limits(tolerance, area_max)
        if area_max is not None:
            fits = area <= area_max
            if not fits.any():
                raise ValueError(
                    f"--area-max {area_max:g} mm^2 is below every design of the space "
                    f"(the smallest is {float(np.min(area)):.4g} mm^2)"
                )
            latency, energy = np.where(fits, latency, np.inf), np.where(fits, energy, np.inf)
        index = int(alpha_sweep(latency, energy, [alpha])[0])
        value = float(alpha_objective(latency[index], energy[index], alpha))
        if tolerance > 0:
            objective = np.asarray(alpha_objective(latency, energy, alpha))
            near = np.flatnonzero(objective <= value * (1.0 + tolerance))
            index = int(near[np.lexsort((objective[near], area[near]))[0]])
            value = float(objective[index])
        return int(distinct[index]), value

    def pareto_indices(self) -> np.ndarray:
        """Latency-energy Pareto front of the distinct designs (flat indices), sorted by latency."""
        distinct = self.distinct_indices
        return distinct[pareto_front_2d(self.latency_s[distinct], self.energy_j[distinct])]


def sweep(
    spec: ModelSpec,
    prec: Precision,
    workload: Workload,
    tech: Technology,
    space: DesignSpace = PAPER_SPACE,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
    distinct_layers: bool = False,
) -> SweepResult:
    """Costs every design of ``space`` exactly, evaluating each distinct design once, ``chunk`` at a time.

    Mirror images get their canonical design's costs (:mod:`cimjax.search.symmetry`). Uniform precisions
    are evaluated as one layer repeated (identical results, fewer operations). ``distinct_layers``: a per-layer
    precision is priced per operator on its distinct layer rows (:mod:`cimjax.cost.distinct`: fewer
    operations, equal to float32 rounding, not bit for bit). ``progress(done, total)`` is called after each
    chunk (distinct designs). Compile time is measured separately.
    """
    prec = compress_uniform(prec)
    prec = distinct_rows(prec) if distinct_layers else prec
    designs = MirrorFolding(space)
    run = make_evaluator(spec, workload, designs, "range", size=chunk)
    start_compile = time.perf_counter()
    run.compiled(jnp.asarray(0), prec, tech)  # loaded or compiled, not run: every chunk runs once, timed below
    compile_s = time.perf_counter() - start_compile

    start = time.perf_counter()
    outputs = [designs.expand(o) for o in run_chunks(run, (prec, tech), 0, designs.size, chunk, progress)]
    wall_s = time.perf_counter() - start
    return SweepResult(space, *outputs, compile_s=compile_s, wall_s=wall_s, evaluated=designs.size)


def run_chunks(run: Callable, args: tuple, start: int, stop: int, step: int, progress=None) -> list[np.ndarray]:
    """Calls ``run(first, *args)`` for ``first`` in ``range(start, stop, step)``; returns its three outputs,
    concatenated and cut to ``stop - start`` designs (float64).

    Each call is dispatched asynchronously and the previous call's output copied meanwhile, so the host
    copy overlaps the device work. ``progress(done, total)`` counts designs of the range.
    """
    n = stop - start
    outputs = [np.empty(n, np.float64) for _ in range(3)]
    pending = None
    for first in range(start, stop, step):
        result = run(jnp.asarray(first), *args)
        if pending is not None:
            _store(outputs, *pending)
        pending = (first - start, min(step, stop - first), result)
        if progress:
            progress(min(first + step, stop) - start, n)
    if pending is not None:
        _store(outputs, *pending)
    return outputs


def _store(outputs, first, count, result):
    """Copies the first ``count`` values of each result array into ``outputs`` at ``first``."""
    for out, values in zip(outputs, result, strict=True):
        out[first : first + count] = np.asarray(values)[:count]
