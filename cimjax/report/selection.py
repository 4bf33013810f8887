"""How a design is picked from a swept design space to stand beside the paper's (docs/model.md, section 9).

At alpha = 1 (latency only) the objective is indifferent to area and energy, so its exact optimum is
whichever design is fastest by a hair, however large. An architect instead takes the *knee*: among
the designs whose latency is within ``(1 + tolerance)`` of the best (the near-tie set of
:meth:`SweepResult.best <cimjax.search.exhaustive.SweepResult.best>`), the cheapest by a second
criterion: ``energy`` (lowest decode energy, then smallest area) or ``area`` (smallest chip, then the
lower latency: exactly ``SweepResult.best(1.0, tolerance)``).
"""

from __future__ import annotations

import numpy as np

from cimjax.search.exhaustive import SweepResult, check_limits

KNEE_RULES = ("energy", "area")
DEFAULT_TOLERANCE = 0.01


def check_knee(rule: str, tolerance: float) -> None:
    """Raises ValueError naming the bad value and what is allowed."""
    if rule not in KNEE_RULES:
        raise ValueError(f"knee rule {rule!r} is not known; allowed: {list(KNEE_RULES)}")
    check_limits(tolerance, None)


def knee_index(result: SweepResult, tolerance: float = DEFAULT_TOLERANCE, rule: str = "energy") -> int:
    """Flat index of the knee design of a sweep (see the module docstring)."""
    check_knee(rule, tolerance)
    if rule == "area":
        return result.best(1.0, tolerance)[0]
    latency = np.asarray(result.latency_s, np.float64)
    near = np.flatnonzero(latency <= latency.min() * (1.0 + tolerance))
    order = np.lexsort((result.area_mm2[near], result.energy_j[near]))  # the last key is the primary one
    return int(near[order[0]])


def describe(rule: str, tolerance: float) -> str:
    """One line saying how the knee was chosen (for reports)."""
    second = "lowest energy, then smallest area" if rule == "energy" else "smallest area, then lowest latency"
    return f"knee: {second} among designs within {100 * tolerance:g} % of the best alpha = 1 latency"
