"""How a design is picked from a swept design space to stand beside the paper's (docs/model.md, "Selection").

At alpha = 1 (latency only) the objective is indifferent to area and energy, so its exact optimum is
whichever design is fastest by a hair, however large. An architect instead takes the *knee*: among
the designs within ``tolerance`` of the best throughput, the one that is cheapest by a second
criterion (``energy``: lowest decode energy, then smallest area; ``area``: smallest area, then lowest
energy).
"""

from __future__ import annotations

import numpy as np

KNEE_RULES = ("energy", "area")
DEFAULT_TOLERANCE = 0.01


def check_knee(rule: str, tolerance: float) -> None:
    """Raises ValueError naming the bad value and what is allowed."""
    if rule not in KNEE_RULES:
        raise ValueError(f"knee rule {rule!r} is not known; allowed: {list(KNEE_RULES)}")
    if not 0.0 <= tolerance < 0.5:
        raise ValueError(f"tolerance = {tolerance!r} must be in [0, 0.5) (a fraction of the best throughput)")


def knee_index(latency_s, energy_j, area_mm2, tolerance: float = DEFAULT_TOLERANCE, rule: str = "energy") -> int:
    """Flat index of the knee design: throughput >= (1 - tolerance) x the best, then cheapest by ``rule``."""
    check_knee(rule, tolerance)
    latency_s, energy_j, area_mm2 = (np.asarray(x, np.float64) for x in (latency_s, energy_j, area_mm2))
    candidates = np.flatnonzero(latency_s * (1.0 - tolerance) <= latency_s.min())
    keys = (area_mm2[candidates], energy_j[candidates])  # lexsort: the last key is the primary one
    order = np.lexsort(keys if rule == "energy" else keys[::-1])
    return int(candidates[order[0]])


def describe(rule: str, tolerance: float) -> str:
    """One line saying how the knee was chosen (for reports)."""
    second = "lowest energy, then smallest area" if rule == "energy" else "smallest area, then lowest energy"
    return f"knee: {second} among designs within {100 * tolerance:g} % of the best alpha = 1 throughput"
