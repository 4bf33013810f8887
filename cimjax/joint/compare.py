"""An optimised design against its baseline, stated honestly: which objective was optimised, the gain at
that objective and at tokens/s and tokens/J, and the area and energy paid for it.

:func:`compare` picks the design ``cimjax optimize`` recommends by the rule of docs/results.md
("Which design optimize recommends"), :func:`choose`: the candidates are the baseline and every hardware
design of the space at the optimiser's bits (one exact sweep; the bits, so the accuracy, stay as they
are). A candidate must be at least as good as the baseline at the objective and, without ``--area-max``,
pay for any area beyond the baseline's (objective gain >= area ratio); of those within ``1 + tolerance``
of the best, the smallest chip is returned. So the design is never worse than the baseline, and the
baseline's design is returned (saying so) when nothing beats it on these terms.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cimjax.joint.allocation import sweep_at
from cimjax.joint.problem import ExactEvaluator, JointProblem, design_report
from cimjax.search.pareto import alpha_objective
from cimjax.validation import check_limits
from cimjax.workload.precision import table_from_bits

TOLERANCE = 0.01
"""The default near-tie: give up at most 1 % of the objective for the smallest chip (the knee of ``cimjax
reproduce --selection knee``, whose tolerance is also 1 %)."""


def objective_of(report: Mapping, alpha: float) -> float:
    """``L^alpha E^(1-alpha)`` of a design report (lower is better)."""
    return float(alpha_objective(report["latency_s"], report["energy_j"], alpha))


def objective_note(alpha: float, area_max: float | None) -> str:
    """One sentence saying what the objective weighs, and what it ignores."""
    if alpha == 1.0:
        weighs = "alpha = 1: the objective is decode latency only (tokens/s); energy was not optimised"
    elif alpha == 0.0:
        weighs = "alpha = 0: the objective is decode energy only (tokens/J); latency was not optimised"
    else:
        weighs = f"alpha = {alpha:g}: the objective is latency^{alpha:g} x energy^{1 - alpha:g}"
    area = (
        "area was not limited, but a chip larger than the baseline's had to gain at least its area ratio"
        if area_max is None
        else f"area was limited to {area_max:g} mm^2"
    )
    return f"{weighs}; {area}."


def choose(objective, area, baseline: int, tolerance: float, area_must_pay: bool) -> int:
    """Index of the design to recommend among candidates (``objective`` lower is better, inf for an
    infeasible one; ``area`` in mm^2; ``baseline`` the baseline's index).

    Admissible: the baseline, and every candidate at least as good as it at the objective that, with
    ``area_must_pay``, is no larger than it or gains at least its area ratio (``baseline objective /
    objective >= area / baseline area``). Of the admissible candidates within ``1 + tolerance`` of the
    best admissible objective: the smallest area, then the lower objective, then not the baseline.
    """
    check_limits(tolerance, None)
    objective, area = np.asarray(objective, np.float64), np.asarray(area, np.float64)
    base_value, base_area = objective[baseline], area[baseline]
    with np.errstate(divide="ignore"):
        admissible = objective <= base_value
        if area_must_pay:
            admissible &= (area <= base_area) | (base_value / objective >= area / base_area)
    admissible[baseline] = True
    near = np.flatnonzero(admissible & (objective <= objective[admissible].min() * (1.0 + tolerance)))
    return int(near[np.lexsort((near == baseline, objective[near], area[near]))[0]])


def compare(problem: JointProblem, ours: Mapping, baseline: Mapping, tolerance: float = TOLERANCE):
    """``(chosen, extras)``: the design to report by :func:`choose` (``baseline`` itself when it is chosen)
    and the keys that describe the comparison:

    ``gains``: ``tokens_per_s``, ``tokens_per_j`` and ``objective`` ratios, each above 1 when the chosen
    design is better than the baseline; ``ratios_to_baseline``: ``area_mm2``, ``energy_j``, ``latency_s``,
    ``tokens_per_s`` and ``tokens_per_j`` of the chosen design over the baseline's; ``objective`` (chosen)
    and ``baseline_objective``; ``chosen`` ("optimised" or "baseline"), ``objective_note``, ``tolerance``,
    ``area_rule`` ("pays": a larger chip must gain its area ratio; "area_max": the limit alone) and
    ``optimiser_design`` (the optimiser's own design before the rule: its tokens/s, tokens/J, area and
    hardware).
    """
    tolerance, _ = check_limits(tolerance, None)
    alpha, area_must_pay = problem.alpha, problem.area_max is None
    chosen = baseline
    if ours.get("feasible", True):
        pick = _pick_hardware(problem, ours, baseline, tolerance, area_must_pay)
        pair = [baseline, pick]  # the pick again by the exact evaluator's numbers, so the invariants hold on them
        objectives, areas = [objective_of(r, alpha) for r in pair], [r["area_mm2"] for r in pair]
        chosen = pair[choose(objectives, areas, 0, tolerance, area_must_pay)]
    value, base_value = objective_of(chosen, alpha), objective_of(baseline, alpha)
    name = "baseline" if chosen is baseline else "optimised"
    extras = {
        "gains": {
            "tokens_per_s": chosen["tokens_per_s"] / baseline["tokens_per_s"],
            "tokens_per_j": chosen["tokens_per_j"] / baseline["tokens_per_j"],
            "objective": base_value / value,
        },
        "ratios_to_baseline": {
            k: chosen[k] / baseline[k] for k in ("area_mm2", "energy_j", "latency_s", "tokens_per_s", "tokens_per_j")
        },
        "objective": value,
        "baseline_objective": base_value,
        "chosen": name,
        "objective_note": objective_note(alpha, problem.area_max),
        "tolerance": tolerance,
        "area_rule": "pays" if area_must_pay else "area_max",
        "optimiser_design": {k: ours[k] for k in ("tokens_per_s", "tokens_per_j", "area_mm2", "config")},
    }
    if name == "baseline":
        extras["objective_note"] += (
            " No design at the optimiser's bits beat the baseline on these terms (or only tied it on a larger chip),"
            " so the baseline's design is returned."
        )
    return chosen, extras


def _pick_hardware(problem: JointProblem, ours: Mapping, baseline: Mapping, tolerance: float, area_must_pay: bool):
    """The exact report of :func:`choose`'s pick among the baseline and every design of the space at the
    optimiser's bits (the baseline's own report when it is the pick)."""
    table = table_from_bits(ours["bits"])
    result, allowed = sweep_at(problem, table)
    objective = alpha_objective(result.latency_s[allowed], result.energy_j[allowed], problem.alpha)
    objectives = np.append(np.asarray(objective, np.float64), objective_of(baseline, problem.alpha))
    areas = np.append(result.area_mm2[allowed], baseline["area_mm2"])
    index = choose(objectives, areas, len(allowed), tolerance, area_must_pay)
    if index == len(allowed):
        return baseline
    choice = np.array(np.unravel_index(allowed[index], problem.space.radices))
    # feasible: the bits are the optimiser's (within the budget, by the proxy or measured), the chip within the limit
    return design_report(problem, choice, table, ExactEvaluator(problem)) | {"feasible": True}
