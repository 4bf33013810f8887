"""Measured refinement of a verified design: bit reductions the proxy ranks and the measurement decides.

After the verify rounds (:mod:`cimjax.joint.verified`) the best design measured within the budget usually
sits below the budget by some margin. This step walks it down greedily at its hardware, one whole bit of
one entry at a time:

1. every entry above its lowest allowed bits is lowered by one; the exact cost model prices each move
   (``saving`` = fall of the log objective) and the proxy its accuracy cost, scaled by the design's
   measured / predicted ratio (``increase``: the proxy calibrated where the design is);
2. of the moves with a positive saving, those whose ``increase`` fits in what is left of the budget come
   first, largest saving first, then the others by ``saving / increase``; the first :data:`BATCH` are
   *measured* (fake quantisation on the check windows) together;
3. of the moves measured within the budget, all are taken together if that combination also measures
   within it (one more measurement), else the one with the largest saving; a move measured over the
   budget is not tried again (lowering other entries only adds error);
4. until no move is left or :data:`MEASUREMENTS` assignments were measured.

The hardware is then swept again for the final bits (their measurement does not change). Every design
this step returns was measured within the budget; nothing is taken on the proxy's word. The measured
values are those of the check windows, so a design chosen among many measured ones is, by selection, a
little luckier there than on other text: the end-to-end experiment also measures it on held-out windows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cimjax.joint.allocation import best_hardware
from cimjax.joint.problem import ExactEvaluator, JointProblem, design_report
from cimjax.workload.precision import table_from_bits

BATCH = 8  # moves measured together (one forward pass over the check windows each)
MEASUREMENTS = 48  # most assignments one refinement measures


def hardware_and_bits(problem: JointProblem, report: dict) -> tuple[np.ndarray, np.ndarray]:
    """The hardware choice indices ``(9,)`` and the bit table ``(L, 17)`` of a design report."""
    choice = np.array(np.unravel_index(problem.space.encode(report["config"]), problem.space.radices))
    return choice, table_from_bits(report["bits"]).astype(np.float64)


def _scale(values: dict, proxy: float) -> float:
    """Measured over predicted of a design (1 when either is not positive): proxy changes are scaled by it."""
    return values["value"] / proxy if proxy > 0 and values["value"] > 0 else 1.0


def _ranked(saving: np.ndarray, increase: np.ndarray, slack: float, n: int) -> list[int]:
    """The ``n`` moves to measure: those that save, the ones predicted to fit in ``slack`` first."""
    saves = saving > 1e-9
    fits = [k for k in np.argsort(-saving) if saves[k] and increase[k] <= slack]
    rest = [k for k in np.argsort(-saving / np.maximum(increase, 1e-30)) if saves[k] and increase[k] > slack]
    return (fits + rest)[:n]


def _moved(table: np.ndarray, entries: list, delta: int) -> np.ndarray:
    """``table`` with each entry in turn moved by ``delta`` bits: ``(len(entries), L, 17)``."""
    tables = np.repeat(table[None], len(entries), axis=0)
    for k, (layer, point) in enumerate(entries):
        tables[k, layer, point] += delta
    return tables


def repair_measured(
    problem: JointProblem,
    report: dict,
    values: dict,
    budget: float,
    measure: Callable[[np.ndarray], list[dict]],
    limit: int,
    say: Callable[[str], None] | None = None,
) -> tuple[dict | None, dict | None, int]:
    """A design measured a little over the budget, raised by measured one-bit moves until within it.

    Each step prices every +1-bit move at the design's hardware (``cost``: rise of the log objective) and
    predicts its measured fall (the proxy's, scaled by the design's measured / predicted ratio); moves
    predicted to close the gap come first (cheapest first), then the rest by fall per cost. :data:`BATCH`
    are measured; the cheapest measured within the budget is taken and ends the repair, else the one that
    fell most is taken and the next step starts from it.

    Returns the repaired design's report (``feasible`` true) and measured values, or ``(None, None)`` when
    ``limit`` measurements did not bring it within the budget; and the assignments measured.
    """
    say = say or (lambda msg: None)
    evaluator = ExactEvaluator(problem)
    choice, table = hardware_and_bits(problem, report)
    high = problem.bits.bounds()[1]
    measured = 0
    while measured < limit:
        now = evaluator(choice[None], table[None])
        entries = list(zip(*np.nonzero(table < high[None, :]), strict=True))
        if not entries:
            break
        tables = _moved(table, entries, +1)
        scores = evaluator(np.repeat(choice[None], len(entries), axis=0), tables)
        cost = np.maximum(np.log(scores.objective) - np.log(now.objective[0]), 1e-12)
        ratio = _scale(values, now.proxy[0])
        fall = ratio * (now.proxy[0] - scores.proxy)
        closes = [k for k in np.argsort(cost) if fall[k] >= values["value"] - budget]
        rest = [k for k in np.argsort(-fall / cost) if fall[k] < values["value"] - budget]
        order = (closes + rest)[: min(BATCH, limit - measured)]
        got = dict(zip(order, measure(tables[order]), strict=True))
        measured += len(order)
        passing = [k for k in order if got[k]["value"] <= budget]
        k = min(passing, key=lambda k: cost[k]) if passing else min(order, key=lambda k: got[k]["value"])
        table, values = tables[k], got[k]
        say(f"repair: measured {values['value']:.4g}, budget {budget:.4g}")
        if passing:
            return design_report(problem, choice, table, evaluator) | {"feasible": True}, values, measured
    return None, None, measured


def refine_measured(
    problem: JointProblem,
    report: dict,
    values: dict,
    budget: float,
    measure: Callable[[np.ndarray], list[dict]],
    limit: int = MEASUREMENTS,
    say: Callable[[str], None] | None = None,
) -> tuple[dict, dict, dict]:
    """The refined design's report and measured values, and what the refinement did.

    Args:
      problem: the problem ``report`` solved (hardware space, bit bounds, proxy).
      report, values: a design measured within ``budget`` and its measured values (``"value"`` in the
        budget's units).
      measure: ``tables (n, L, 17) -> [values]``, the measured values of each table.
      limit: most assignments measured.

    Returns ``(report, values, info)``; ``info``: ``measured`` (assignments measured), ``moves`` (bits
    lowered), ``tokens_per_s_before``. The report's ``feasible`` is true: measured within the budget.
    """
    say = say or (lambda msg: None)
    evaluator = ExactEvaluator(problem)
    choice, table = hardware_and_bits(problem, report)
    low = problem.bits.bounds()[0]
    current = evaluator(choice[None], table[None])
    objective, proxy = float(current.objective[0]), float(current.proxy[0])
    refused: set[tuple[int, int]] = set()
    measured = moves = 0
    while measured < limit:
        entries = [e for e in zip(*np.nonzero(table > low[None, :]), strict=True) if e not in refused]
        if not entries:
            break
        tables = _moved(table, entries, -1)
        scores = evaluator(np.repeat(choice[None], len(entries), axis=0), tables)
        saving = np.log(objective) - np.log(scores.objective)
        ratio = _scale(values, proxy)
        increase = ratio * (scores.proxy - proxy)
        order = _ranked(saving, increase, budget - values["value"], min(BATCH, limit - measured))
        if not order:
            break
        got = dict(zip(order, measure(tables[order]), strict=True))
        measured += len(order)
        passing = sorted((k for k, r in got.items() if r["value"] <= budget), key=lambda k: -saving[k])
        refused |= {entries[k] for k, r in got.items() if r["value"] > budget}
        if not passing:
            continue
        taken, table, values = [passing[0]], tables[passing[0]], got[passing[0]]
        if len(passing) > 1 and measured < limit:  # all the passing moves at once, if that passes too
            together = table.copy()
            for k in passing[1:]:
                together[entries[k]] -= 1
            result = measure(together[None])[0]
            measured += 1
            if result["value"] <= budget:
                taken, table, values = passing, together, result
        moves += len(taken)
        now = evaluator(choice[None], table[None])
        objective, proxy = float(now.objective[0]), float(now.proxy[0])
        say(f"refine: {moves} bit(s) lowered, measured {values['value']:.4g} <= {budget:.4g}")
    swept, _ = best_hardware(problem, table)
    if float(evaluator(swept[None], table[None]).objective[0]) < objective:
        choice = swept
    refined = design_report(problem, choice, table, evaluator) | {"feasible": True}
    info = {"measured": measured, "moves": moves, "tokens_per_s_before": report["tokens_per_s"]}
    return refined, values, info
