"""The discretisation of the joint gradient method: continuous starts to the final whole-bit design.

Phases (reasoning: docs/joint.md): :func:`discrete_starts` snaps every start (nearest allowed hardware,
nearest whole bits) and repairs it to meet the budget, keeping the ``beam`` best plus the best start's
hardware with the uniform bits that meet the budget; :func:`refine` re-allocates each one's bits by MILP
(:func:`allocate`) and polishes it by exact steepest descent (:func:`polish`); :func:`sweep_hardware` gives
the winner's bits (and the uniform ones) the best hardware of the whole space and refines them there.
Every score is the exact model's (:class:`cimjax.joint.problem.ExactEvaluator`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from cimjax.joint.allocation import allocate_within_budget, best_hardware, linearise
from cimjax.joint.problem import ExactEvaluator, JointProblem, Scores
from cimjax.joint.settings import JointSettings
from cimjax.search.gradient import nearest_choices, neighbours, space_coordinates

Design = tuple[np.ndarray, np.ndarray]
"""Hardware choice indices ``(9,)`` and a whole-bit table ``(L, 17)``."""


def discrete_starts(
    problem: JointProblem, evaluator: ExactEvaluator, z: np.ndarray, bits: np.ndarray, beam: int
) -> tuple[list[Design], np.ndarray | None]:
    """The ``beam`` best snapped and repaired starts, plus (when some uniform width meets the budget) the best
    start hardware with those uniform bits, never worse than uniform there; and that uniform table (or None)."""
    choices, tables = snap(problem, z, bits)
    tables = np.stack([repair(problem, evaluator, c, t) for c, t in zip(choices, tables, strict=True)])
    starts = list(np.argsort(problem.rank(evaluator(choices, tables)), kind="stable")[:beam])
    candidates = [(choices[i], tables[i]) for i in starts]
    width = problem.smallest_uniform_width()
    fallback = None if width is None else problem.uniform_table(width)
    if fallback is not None:
        k = int(np.argmin(problem.rank(evaluator(choices, np.broadcast_to(fallback, tables.shape)))))
        candidates.append((choices[k], fallback))
    return candidates, fallback


def refine(
    problem: JointProblem,
    evaluator: ExactEvaluator,
    candidates: list[Design],
    settings: JointSettings,
    progress: Callable[[int, int], None] | None = None,
) -> Design:
    """The best of the candidates after re-allocating and polishing each one (concurrently: see
    :func:`_concurrently`)."""
    scored = _one_at_a_time(evaluator)

    def refined(design: Design) -> Design:
        table = allocate(problem, scored, *design, settings.allocation_rounds)
        return polish(problem, scored, design[0], table, settings)

    finalists = _concurrently(refined, candidates, progress)
    s = evaluator(np.stack([c for c, _ in finalists]), np.stack([t for _, t in finalists]))
    return finalists[int(np.argmin(problem.rank(s)))]


def sweep_hardware(
    problem: JointProblem,
    evaluator: ExactEvaluator,
    design: Design,
    fallback: np.ndarray | None,
    settings: JointSettings,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Design, int]:
    """The design's bits and the uniform ones each at the best hardware of the whole space (area limit
    applied), re-allocated and polished there (concurrently: see :func:`_concurrently`), kept where better,
    in that order; returns the design and the designs swept."""
    choice, table = design
    tables = [table] + ([fallback] if fallback is not None and not np.array_equal(fallback, table) else [])
    scored = _one_at_a_time(evaluator)

    def moved(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        new_choice, n = best_hardware(problem, bits)
        new_table = allocate(problem, scored, new_choice, bits, settings.allocation_rounds)
        return *polish(problem, scored, new_choice, new_table, settings), n

    swept = 0
    for new_choice, new_table, n in _concurrently(moved, tables, progress):
        s = evaluator(np.stack([choice, new_choice]), np.stack([table, new_table]))
        if problem.rank(s)[1] < problem.rank(s)[0]:
            choice, table = new_choice, new_table
        swept += n
    return (choice, table), swept


def _one_at_a_time(evaluator: ExactEvaluator) -> Callable[[np.ndarray, np.ndarray], Scores]:
    """``evaluator``, called by one thread at a time (its count is shared)."""
    lock = threading.Lock()

    def scored(choices: np.ndarray, tables: np.ndarray) -> Scores:
        with lock:
            return evaluator(choices, tables)

    return scored


def _concurrently(work: Callable, items: list, progress: Callable[[int, int], None] | None) -> list:
    """``[work(item) for item in items]``, in threads: HiGHS releases the GIL while it solves, so the
    allocations of several designs share the cores. Each result is computed exactly as it would be alone
    (the evaluator's scores do not depend on the order of its calls) and an error is the first item's.
    ``progress`` counts the items done."""
    pool = ThreadPoolExecutor(max(1, min(len(items), os.cpu_count() or 1)))
    try:
        futures = [pool.submit(work, item) for item in items]
        for done, _ in enumerate(as_completed(futures)):
            if progress:
                progress(done + 1, len(items))
        return [future.result() for future in futures]
    finally:  # on Ctrl-C the items not started are dropped (a solve that has started runs to its end)
        pool.shutdown(cancel_futures=True)


def snap(problem: JointProblem, z: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest allowed hardware (in search coordinates) and nearest whole bits, per start."""
    lo, hi = problem.bits.bounds()
    return nearest_choices(z, space_coordinates(problem.space)), np.clip(np.rint(bits), lo, hi)


def _bit_moves(problem: JointProblem, table: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables with one entry moved by ``step`` bits (within bounds) and the flat index of each entry moved."""
    lo, hi = problem.bits.bounds()
    lo, hi = np.broadcast_to(lo, table.shape).ravel(), np.broadcast_to(hi, table.shape).ravel()
    flat = table.ravel()
    moved = np.flatnonzero((flat + step >= lo) & (flat + step <= hi))
    tables = np.repeat(flat[None], len(moved), axis=0)
    tables[np.arange(len(moved)), moved] += step
    return tables.reshape(-1, *table.shape), moved


def repair(problem: JointProblem, evaluator: ExactEvaluator, choice: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Raises bits until the proxy meets the budget, cheapest proxy reduction per exact objective first.

    The proxy is a sum over entries, so the reductions of distinct entries add up exactly; entries are
    raised one bit at a time (re-measured each pass) until the budget holds or nothing can rise.
    """
    table = table.copy()
    while True:
        base = evaluator(choice[None], table[None])
        if problem.within_budget(base.proxy[0]):
            return table
        tables, moved = _bit_moves(problem, table, +1)
        if not len(moved):
            return table
        s = evaluator(np.repeat(choice[None], len(moved), axis=0), tables)
        gain = base.proxy[0] - s.proxy
        cost = np.maximum(np.log(s.objective) - np.log(base.objective[0]), 1e-9)
        order = np.argsort(-gain / cost, kind="stable")
        needed = base.proxy[0] - problem.budget
        taken = np.searchsorted(np.cumsum(gain[order]), needed) + 1
        flat = table.ravel()
        flat[moved[order[:taken]]] += 1
        table = flat.reshape(table.shape)


def allocate(
    problem: JointProblem, evaluator: ExactEvaluator, choice: np.ndarray, table: np.ndarray, rounds: int
) -> np.ndarray:
    """Re-allocates the bits at fixed hardware by MILP on exact single-entry costs, while that improves.

    Each round linearises around the current (feasible) table (:mod:`cimjax.joint.allocation`), so the
    allocation follows the optimiser's hardware and starting bits rather than INT8's.
    """
    for _ in range(rounds):
        new = allocate_within_budget(problem, linearise(problem, choice, table, evaluator), choice, evaluator)
        s = evaluator(np.stack([choice, choice]), np.stack([table, new]))
        if problem.rank(s)[1] >= problem.rank(s)[0]:
            break
        table = new
    return table


def _hardware_moves(problem: JointProblem, choice: np.ndarray) -> np.ndarray:
    """Designs one or two single-value steps away: two-field moves let a design on the area limit grow one
    field while shrinking another."""
    radices = np.asarray(problem.space.radices)
    near = neighbours(choice, radices)
    moved = np.unique(np.concatenate([near, *(neighbours(c, radices) for c in near)]), axis=0)
    return moved[np.any(moved != choice, axis=1)]


def polish(
    problem: JointProblem,
    evaluator: ExactEvaluator,
    choice: np.ndarray,
    table: np.ndarray,
    settings: JointSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact steepest descent from a discrete design over hardware, single-bit and exchange moves.

    Exchanges pair the ``exchange`` -1-bit moves that save most objective with the ``exchange`` +1-bit moves
    that remove most proxy per unit of objective, so a design on the budget can still trade bits.
    """
    for _ in range(settings.polish_rounds):
        current = evaluator(choice[None], table[None])
        hw = _hardware_moves(problem, choice)
        up, up_idx = _bit_moves(problem, table, +1)
        down, down_idx = _bit_moves(problem, table, -1)
        choices = np.concatenate([hw, np.repeat(choice[None], len(up) + len(down), axis=0)])
        tables = np.concatenate([np.repeat(table[None], len(hw), axis=0), up, down])
        s = evaluator(choices, tables)
        k = settings.exchange
        s_up, s_down = _slice(s, len(hw), len(hw) + len(up)), _slice(s, len(hw) + len(up), len(s.objective))
        base = float(np.log(current.objective[0]))
        best_down = np.argsort(np.log(s_down.objective) - base, kind="stable")[:k]
        up_ratio = (current.proxy[0] - s_up.proxy) / np.maximum(np.log(s_up.objective) - base, 1e-9)
        best_up = np.argsort(-up_ratio, kind="stable")[:k]
        pairs = [(i, j) for i in best_down for j in best_up if down_idx[i] != up_idx[j]]
        if pairs:
            ex = np.repeat(table.ravel()[None], len(pairs), axis=0)
            rows = np.arange(len(pairs))
            ex[rows, [down_idx[i] for i, _ in pairs]] -= 1
            ex[rows, [up_idx[j] for _, j in pairs]] += 1
            choices = np.concatenate([choices, np.repeat(choice[None], len(pairs), axis=0)])
            tables = np.concatenate([tables, ex.reshape(-1, *table.shape)])
            s = _concat(s, evaluator(choices[-len(pairs) :], tables[-len(pairs) :]))
        rank = problem.rank(s)
        j = int(np.argmin(rank))
        if rank[j] >= problem.rank(current)[0] - 1e-12:
            break
        choice, table = choices[j], tables[j]
    return choice, table


def _slice(s: Scores, start: int, stop: int) -> Scores:
    return Scores(*(getattr(s, f.name)[start:stop] for f in dataclasses.fields(s)))


def _concat(a: Scores, b: Scores) -> Scores:
    return Scores(*(np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in dataclasses.fields(a)))
