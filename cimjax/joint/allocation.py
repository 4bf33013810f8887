"""The two half-steps of co-design: hardware for fixed bits (exhaustive sweep) and bits for fixed hardware.

:func:`best_hardware` sweeps every (distinct) design of the space exactly at a fixed bit table (area limit applied).
Bit allocation at fixed hardware is by integer programming (HAWQ-V3 style) on exact single-entry costs.

At fixed hardware, every entry of the ``(L, 17)`` bit table is set alone to every allowed width and
evaluated exactly (:func:`linearise`); the proxy is a sum over entries, so summed proxy changes are exact,
and the summed changes of the log objective are a linearisation around the current table.
:func:`allocate_bits` then picks one width per entry by ``scipy.optimize.milp`` (a multiple-choice
knapsack). Both are used by the sequential baseline and by the joint optimiser's discretisation.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from cimjax.cost.batched import compress_uniform, in_batches, make_evaluator
from cimjax.cost.distinct import DistinctRows, distinct_rows
from cimjax.joint.problem import ExactEvaluator, InfeasibleError, JointProblem
from cimjax.search.exhaustive import SweepResult, sweep
from cimjax.search.pareto import alpha_objective, alpha_sweep
from cimjax.search.symmetry import MirrorFolding
from cimjax.workload.precision import Precision

_SWEPT: dict[tuple, tuple[weakref.ref, np.ndarray, int]] = {}
"""The last few answers of :func:`best_hardware`, by problem identity and table."""
_SWEPT_KEPT = 4
_SWEEPING = threading.Lock()
"""One sweep at a time: the uniform baseline runs beside the optimiser (:mod:`cimjax.joint.runner`), and a
caller waiting for the same problem and table then takes the first one's answer instead of sweeping again."""


def best_hardware(
    problem: JointProblem, table: np.ndarray, progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, int]:
    """The area-feasible design of ``problem.space`` minimising the objective at bit table ``table``
    ``(L, 17)``, by exhaustive sweep (uniform tables take the sweep's one-layer fast path).

    Returns its choice indices ``(9,)`` and the number of designs swept. Ties go to the Pareto-optimal design.
    The last few answers are kept for the same problem object: with an area limit the optimiser and the
    uniform baseline both ask for the uniform bits' hardware.
    """
    with _SWEEPING:
        return _best_hardware(problem, np.asarray(table, np.float64), progress)


def _best_hardware(
    problem: JointProblem, table: np.ndarray, progress: Callable[[int, int], None] | None
) -> tuple[np.ndarray, int]:
    key = (id(problem), table.shape, table.tobytes())
    kept = _SWEPT.get(key)
    if kept is not None and kept[0]() is problem:
        if progress:
            progress(kept[2], kept[2])
        return kept[1].copy(), kept[2]
    result, allowed = sweep_at(problem, table, progress)
    index = allowed[alpha_sweep(result.latency_s[allowed], result.energy_j[allowed], [problem.alpha])[0]]
    choice = np.array(np.unravel_index(index, problem.space.radices))
    _SWEPT[key] = (weakref.ref(problem), choice.copy(), result.evaluations)
    while len(_SWEPT) > _SWEPT_KEPT:
        del _SWEPT[next(iter(_SWEPT))]
    return choice, result.evaluations


NEAR_FRONT = 1e-5
"""Relative margin of the designs :func:`sweep_at` evaluates again with every layer priced: pricing each
operator on its distinct layer rows moved latencies and energies by at most 3.3e-7 relative over the
paper's space (five tables of LLaMA3.2-1B and Qwen2.5-0.5B, benchmarks/distinct_rows.py; XLA fuses the two
programs differently), 30x less, so any design that could win a comparison lies within this margin of the
front."""

EXACT_BATCH = 1024
"""Designs per call of the re-evaluation (one compiled shape)."""


def sweep_at(
    problem: JointProblem, table: np.ndarray, progress: Callable[[int, int], None] | None = None
) -> tuple[SweepResult, np.ndarray]:
    """Every design of ``problem.space`` at bit table ``table`` ``(L, 17)``, by exact sweep: the
    :class:`SweepResult` and the flat indices of its distinct designs within the area limit.

    The sweep prices each operator on its distinct layer rows (:mod:`cimjax.cost.distinct`), equal to
    pricing every layer up to float32 rounding; then every design within :data:`NEAR_FRONT` of the least
    objective (at ``problem.alpha``) of the allowed designs no larger than it is evaluated again by the
    plain sweep's program, so those numbers are the plain sweep's bit for bit. Any pick made from them --
    the least objective and its ties, the smallest chip near the best (:func:`cimjax.joint.compare.choose`)
    -- is such a design, so the picks are the plain sweep's.
    """
    prec = Precision.from_table(jnp.asarray(table, jnp.float32))
    result = sweep(
        problem.spec, prec, problem.workload, problem.tech, problem.space, progress=progress, distinct_layers=True
    )
    distinct = result.distinct_indices  # one design of each mirror pair (cimjax.search.symmetry)
    allowed = distinct if problem.area_max is None else distinct[result.area_mm2[distinct] <= problem.area_max]
    if isinstance(distinct_rows(compress_uniform(prec)), DistinctRows):
        result = _priced_per_layer(problem, prec, result, _near_front(problem, result, allowed))
    return result, allowed


def _near_front(problem: JointProblem, result: SweepResult, allowed: np.ndarray) -> np.ndarray:
    """The designs of ``allowed`` (flat indices) within :data:`NEAR_FRONT` twice over of the least objective
    of the allowed designs of at most their area: a pick by objective and area is one of them."""
    objective = np.asarray(alpha_objective(result.latency_s[allowed], result.energy_j[allowed], problem.alpha))
    levels, level = np.unique(result.area_mm2[allowed], return_inverse=True)
    least = np.full(len(levels), np.inf)
    np.minimum.at(least, level, objective)
    return allowed[objective <= np.minimum.accumulate(least)[level] * (1.0 + 2.0 * NEAR_FRONT)]


def _priced_per_layer(problem: JointProblem, prec: Precision, result: SweepResult, designs: np.ndarray) -> SweepResult:
    """``result`` with ``designs`` (flat indices of distinct designs) and their mirror images evaluated by the
    plain per-layer program (:func:`cimjax.cost.batched.make_evaluator`, ``ranks``)."""
    folding = MirrorFolding(problem.space)
    ranks = folding.ranks[designs]
    run = make_evaluator(problem.spec, problem.workload, folding, "ranks")
    values = in_batches(run, EXACT_BATCH, (ranks,), prec, problem.tech)
    order = np.argsort(ranks)
    where = np.flatnonzero(np.isin(folding.ranks, ranks))  # the designs and their mirrors
    take = order[np.searchsorted(ranks[order], folding.ranks[where])]
    arrays = [getattr(result, name).copy() for name in ("latency_s", "energy_j", "area_mm2")]
    for array, new in zip(arrays, values, strict=True):
        array[where] = new[take]
    return dataclasses.replace(result, latency_s=arrays[0], energy_j=arrays[1], area_mm2=arrays[2])


MILP_GAP = 1e-5
"""The bit allocation stops within this much of the least summed log-objective change (0.001 %). At a
tight budget a 1e-6 gap took HiGHS over 8 minutes on a 16-layer model, 1e-5 under a second."""

MILP_FEASIBILITY = 1e-6
"""How far (in budgets) an allocation HiGHS returns may exceed the slack and still be taken: HiGHS's own
primal feasibility tolerance is 1e-7 per constraint; callers re-check the exact proxy against the budget."""

MILP_NODES = 2500
"""Branch-and-bound nodes of one allocation before HiGHS returns the best allocation found: a limit on
work, not time, so the answer does not depend on the machine or its load. 22-layer TinyLLaMA at the INT4
budget needs up to 21,000 nodes (17 s CPU) to prove the 1e-5 gap; 2,500 nodes are about 2-4.5 s CPU here,
and every allocation of LLaMA3.2-1B's defaults (up to 2,166 nodes) and of the golden outputs finishes
within it. Callers re-evaluate the result exactly."""

MILP_SECONDS = 60.0
"""Wall-clock safety limit of one allocation, far above :data:`MILP_NODES`' work on a loaded machine. It
was 5 s and the only limit: under load (a third of a core) HiGHS stopped at a different allocation, so
``optimize``'s answer changed with the load."""


@dataclasses.dataclass(frozen=True)
class LinearModel:
    """Single-entry changes of a bit table at fixed hardware, the linear model of one allocation step.

    Option ``i`` sets the entry ``entry[i]`` (flat index into the ``(L, 17)`` table) to ``bits[i]``; taken
    alone it changes the log objective by ``cost[i]`` and the proxy by ``proxy[i]`` budgets (0 and 0 for
    the entry's current bits). The proxy is separable, so summed proxy changes are exact; the summed
    cost changes are a linearisation. ``slack`` is ``(budget - proxy(table)) / budget``.
    """

    table: np.ndarray
    entry: np.ndarray
    bits: np.ndarray
    cost: np.ndarray
    proxy: np.ndarray
    slack: float

    def apply(self, chosen: np.ndarray) -> np.ndarray:
        """The table with the options ``chosen`` (a boolean mask, one per entry) applied."""
        table = self.table.copy().reshape(-1)
        table[self.entry[chosen]] = self.bits[chosen]
        return table.reshape(self.table.shape)


def linearise(problem: JointProblem, choice: np.ndarray, table: np.ndarray, evaluator: ExactEvaluator) -> LinearModel:
    """Evaluates the table and every single-entry variant of it (all allowed bits) at hardware ``choice``."""
    low, high = problem.bits.bounds()
    table = np.asarray(table, np.float64)
    flat_low = np.tile(low, problem.n_layers)
    counts = np.tile(high - low + 1, problem.n_layers).astype(np.int64)
    entry = np.repeat(np.arange(table.size), counts)
    bits = flat_low[entry] + np.arange(entry.size) - np.repeat(np.cumsum(counts) - counts, counts)
    changed = bits != table.reshape(-1)[entry]
    variants = np.repeat(table.reshape(1, -1), changed.sum() + 1, axis=0)
    variants[np.arange(1, len(variants)), entry[changed]] = bits[changed]
    s = evaluator(np.repeat(np.asarray(choice)[None], len(variants), axis=0), variants)
    log_objective = np.log(s.objective)
    cost, proxy = np.zeros(entry.size), np.zeros(entry.size)
    cost[changed] = log_objective[1:] - log_objective[0]
    proxy[changed] = (s.proxy[1:] - s.proxy[0]) / problem.budget
    return LinearModel(table, entry, bits, cost, proxy, 1 - s.proxy[0] / problem.budget)


HIGHS_TRACE = b"HighsMipSolverData::transformNewIntegerFeasibleSolution"
"""A debug line HiGHS prints whatever its output options (its issue #2783: "The log displays a meaningless
string"); it says nothing to a user, so it is dropped rather than shown among the optimiser's messages."""


class _StdoutToStderr:
    """Captures file descriptor 1 while any solve runs and passes it on to stderr, less the
    :data:`HIGHS_TRACE` lines, when the last solve ends: HiGHS (C++) prints there, which would break the
    one-JSON-object stdout of ``--json`` commands. File descriptors belong to the process, so with solves in
    several threads stdout goes back when the last one ends, and what any thread wrote meanwhile goes to
    stderr (nothing is lost)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._solves = 0
        self._saved = -1
        self._captured = None

    def __enter__(self):
        with self._lock:
            if self._solves == 0:
                sys.stdout.flush()
                self._saved = os.dup(1)
                self._captured = tempfile.TemporaryFile()
                os.dup2(self._captured.fileno(), 1)
            self._solves += 1

    def __exit__(self, *_):
        with self._lock:
            self._solves -= 1
            if self._solves == 0:
                sys.stdout.flush()
                os.dup2(self._saved, 1)
                os.close(self._saved)
                self._captured.seek(0)
                kept = [line for line in self._captured.read().splitlines(True) if HIGHS_TRACE not in line]
                self._captured.close()
                if kept:
                    sys.stderr.flush()
                    os.write(2, b"".join(kept))


_stdout_to_stderr = _StdoutToStderr()


def allocate_bits(model: LinearModel) -> np.ndarray:
    """The table of least summed cost change whose summed proxy change fits the slack, by ``scipy`` MILP.

    One binary per option; each entry takes exactly one. Solved to within :data:`MILP_GAP`: HiGHS's gap is
    relative to the objective, so a continuous variable fixed at 1 with cost 1 makes it absolute. After
    :data:`MILP_NODES` nodes (or :data:`MILP_SECONDS`) the best allocation found so far is returned.

    Raises:
      InfeasibleError: no choice of options fits the slack.
    """
    n = model.entry.size
    shape = (model.table.size, n + 1)
    one_each = LinearConstraint(csr_array((np.ones(n), (model.entry, np.arange(n))), shape=shape), 1, 1)
    budget = LinearConstraint(np.append(model.proxy, 0.0)[None], -np.inf, model.slack)
    with _stdout_to_stderr:
        solved = milp(
            np.append(model.cost, 1.0),
            constraints=[one_each, budget],
            integrality=np.append(np.ones(n), 0),
            bounds=Bounds(np.append(np.zeros(n), 1.0), 1.0),
            options={"mip_rel_gap": MILP_GAP, "node_limit": MILP_NODES, "time_limit": MILP_SECONDS},
        )
    if solved.status == 2:
        raise InfeasibleError(f"the bit allocation cannot meet the budget: {solved.message}")
    # Stopped at MILP_NODES, HiGHS reports "solution limit", which scipy passes on as status 4 (not 1, as
    # for the time limit): the best allocation found is kept whatever the status, once checked feasible.
    chosen = None if solved.x is None else solved.x[:n] > 0.5
    if chosen is None or not _feasible(model, chosen):
        raise RuntimeError(f"bit allocation MILP failed: {solved.message}")
    return model.apply(chosen)


def _feasible(model: LinearModel, chosen: np.ndarray) -> bool:
    """Whether ``chosen`` takes exactly one option per entry and fits the slack (to HiGHS's tolerance)."""
    one_each = np.array_equal(np.bincount(model.entry[chosen], minlength=model.table.size), np.ones(model.table.size))
    return one_each and float(model.proxy[chosen].sum()) <= model.slack + MILP_FEASIBILITY


def allocate_within_budget(
    problem: JointProblem, model: LinearModel, choice: np.ndarray, evaluator: ExactEvaluator, tries: int = 3
) -> np.ndarray:
    """:func:`allocate_bits`, re-solved with less slack while the new table's exact proxy exceeds the budget.

    The summed proxy changes are exact but for float32 rounding (up to a few 1e-6 of the proxy at 16
    layers, measured). The MILP aims at the budget itself, leaving the evaluator's tolerance
    (:data:`cimjax.joint.problem.BUDGET_RTOL`) as margin; each retry removes twice the excess over the
    budget. If every try fails, the table stays as it is.
    """
    for _ in range(tries):
        table = allocate_bits(model)
        proxy = evaluator(choice[None], table[None]).proxy[0]
        if problem.within_budget(proxy):
            return table
        model = dataclasses.replace(model, slack=model.slack - 2 * (proxy / problem.budget - 1))
    return model.table
