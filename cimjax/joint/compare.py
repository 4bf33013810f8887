"""An optimised design against its baseline, stated honestly: which objective was optimised, the gain at
that objective and at tokens/s and tokens/J, and the area and energy paid for it.

:func:`compare` also enforces that ``cimjax optimize`` never returns a design worse than the baseline at
its own objective (if the optimiser's design loses, the baseline's is returned and the report says so)
and applies the near-tie rule (``tolerance``): of the candidates within ``1 + tolerance`` of the best
objective, the smaller chip.
"""

from __future__ import annotations

from collections.abc import Mapping

from cimjax.search.pareto import alpha_objective
from cimjax.validation import check_limits


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
    area = "area was not limited" if area_max is None else f"area was limited to {area_max:g} mm^2"
    return f"{weighs}; {area}."


def compare(ours: Mapping, baseline: Mapping, alpha: float, area_max: float | None, tolerance: float = 0.0):
    """``(chosen, extras)``: the design to report (``ours`` unless the baseline is better at the objective,
    or within ``tolerance`` of it on a smaller chip) and the keys that describe the comparison:

    ``gains``: ``tokens_per_s``, ``tokens_per_j`` and ``objective`` ratios, each above 1 when the chosen
    design is better than the baseline; ``ratios_to_baseline``: ``area_mm2``, ``energy_j`` and
    ``latency_s`` of the chosen design over the baseline's; ``objective`` (chosen) and
    ``baseline_objective``; ``chosen`` ("optimised" or "baseline") and ``objective_note``.
    """
    check_limits(tolerance, None)
    ours_value, base_value = objective_of(ours, alpha), objective_of(baseline, alpha)
    ours_ok = bool(ours.get("feasible", True))
    best = min(ours_value if ours_ok else float("inf"), base_value)
    candidates = (("optimised", ours, ours_value, ours_ok), ("baseline", baseline, base_value, True))
    near = [
        (report["area_mm2"], value, name, report)
        for name, report, value, ok in candidates
        if ok and value <= best * (1.0 + tolerance)
    ]
    _, value, name, chosen = min(near, key=lambda c: (c[0], c[1], c[2] != "optimised"))
    extras = {
        "gains": {
            "tokens_per_s": chosen["tokens_per_s"] / baseline["tokens_per_s"],
            "tokens_per_j": chosen["tokens_per_j"] / baseline["tokens_per_j"],
            "objective": base_value / value,
        },
        "ratios_to_baseline": {k: chosen[k] / baseline[k] for k in ("area_mm2", "energy_j", "latency_s")},
        "objective": value,
        "baseline_objective": base_value,
        "chosen": name,
        "objective_note": objective_note(alpha, area_max),
        "tolerance": tolerance,
    }
    if name == "baseline":
        extras["objective_note"] += (
            " The optimiser's own design scored worse than the baseline (or only tied it on a larger chip), so the"
            " baseline's design is returned."
        )
    return chosen, extras
