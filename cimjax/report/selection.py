"""How a design is picked from a swept design space to stand beside the paper's (docs/model.md, section 9).

By default the row put beside the paper is the exact alpha = 1 optimum, the paper's own objective
(``selection = "exhaustive"``); the alternative (``"knee"``) is the rule below.

At alpha = 1 (latency only) the objective is indifferent to area and energy, so its exact optimum is
whichever design is fastest by a hair, however large. An architect instead takes the *knee*: among
the designs whose latency is within ``(1 + tolerance)`` of the best (the near-tie set of
:meth:`SweepResult.best <cimjax.search.exhaustive.SweepResult.best>`), the cheapest by a second
criterion: ``energy`` (lowest decode energy, then smallest area) or ``area`` (smallest chip, then the
lower latency: exactly ``SweepResult.best(1.0, tolerance)``).
"""

from __future__ import annotations

import numpy as np

from cimjax.search.exhaustive import SweepResult
from cimjax.validation import check_limits

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


SELECTIONS = ("exhaustive", "knee")


def check_selection(selection: str, knee: str, tolerance: float) -> None:
    if selection not in SELECTIONS:
        raise ValueError(f"selection {selection!r} is not known; allowed: {list(SELECTIONS)}")
    check_knee(knee, tolerance)


def selected_index(
    result: SweepResult, selection: str = "exhaustive", tolerance: float = DEFAULT_TOLERANCE, knee: str = "energy"
) -> int:
    """The design put beside the paper: the exact alpha = 1 optimum (the paper's own objective; ties to
    the lower energy) or the knee."""
    check_selection(selection, knee, tolerance)
    return result.best(1.0)[0] if selection == "exhaustive" else knee_index(result, tolerance, knee)


def describe_selection(selection: str, knee: str, tolerance: float) -> str:
    if selection == "exhaustive":
        return "exhaustive: the exact alpha = 1 (latency-only) optimum, the paper's objective; ties to lower energy"
    return describe(knee, tolerance)
