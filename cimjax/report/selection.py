"""How a design is picked from a swept design space to stand beside the paper's (docs/model.md, section 9).

By default the row put beside the paper is the exact alpha = 1 optimum, the paper's own objective
(``selection = "exhaustive"``); the alternatives are the knee and the robust rule below.

At alpha = 1 (latency only) the objective is indifferent to area and energy, so its exact optimum is
whichever design is fastest by a hair, however large. An architect instead takes the *knee*: among
the designs whose latency is within ``(1 + tolerance)`` of the best (the near-tie set of
:meth:`SweepResult.best <cimjax.search.exhaustive.SweepResult.best>`), the cheapest by a second
criterion: ``energy`` (lowest decode energy, then smallest area) or ``area`` (smallest chip, then the
lower latency: exactly ``SweepResult.best(1.0, tolerance)``).

The *robust* rule does not trust a tie that rests on uncertain constants: of the knee's near-tie set,
it keeps the designs whose latency is still within ``(1 + tolerance)`` of that set's best when the
on-chip clock is derated by ``margin`` (a second sweep with :func:`derated` technology, on the same
designs), and takes the cheapest of those by the same second criterion. With ``margin = 0`` it is the
knee.
"""

from __future__ import annotations

import numpy as np

from cimjax.hardware.technology import Technology
from cimjax.search.exhaustive import SweepResult
from cimjax.validation import check_limits

KNEE_RULES = ("energy", "area")
DEFAULT_TOLERANCE = 0.01
# The robust rule's clock derating: 1 - 6400/8533, the on-chip-to-DRAM rate ratio of the same chip
# with the fastest JEDEC LPDDR5X grade (8533 MT/s) instead of the paper's 6400 MT/s (docs/model.md, 9).
DEFAULT_MARGIN = 0.25


def check_knee(rule: str, tolerance: float) -> None:
    """Raises ValueError naming the bad value and what is allowed."""
    if rule not in KNEE_RULES:
        raise ValueError(f"knee rule {rule!r} is not known; allowed: {list(KNEE_RULES)}")
    check_limits(tolerance, None)


def check_margin(margin: float) -> None:
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"--margin = {margin:g} must be a fraction in [0, 1) (the robust rule's clock derating)")


def near_set(latency: np.ndarray, tolerance: float) -> np.ndarray:
    """Flat indices of the designs within ``(1 + tolerance)`` of the best latency."""
    return np.flatnonzero(latency <= latency.min() * (1.0 + tolerance))


def _cheapest(result: SweepResult, candidates: np.ndarray, rule: str) -> int:
    """Of ``candidates``, the lowest energy then smallest area, or the smallest area then lowest latency."""
    first, second = (result.energy_j, result.area_mm2) if rule == "energy" else (result.area_mm2, result.latency_s)
    order = np.lexsort((second[candidates], first[candidates]))  # the last key is the primary one
    return int(candidates[order[0]])


def knee_index(result: SweepResult, tolerance: float = DEFAULT_TOLERANCE, rule: str = "energy") -> int:
    """Flat index of the knee design of a sweep (see the module docstring)."""
    check_knee(rule, tolerance)
    if rule == "area":
        return result.best(1.0, tolerance)[0]
    return _cheapest(result, near_set(np.asarray(result.latency_s, np.float64), tolerance), rule)


def derated(tech: Technology, margin: float = DEFAULT_MARGIN) -> Technology:
    """The technology with the on-chip clock slowed by ``margin`` (DRAM unchanged)."""
    check_margin(margin)
    return tech.replace(clock_hz=float(tech.clock_hz) * (1.0 - margin))


def robust_set(latency_s: np.ndarray, stressed_latency_s: np.ndarray, tolerance: float) -> np.ndarray:
    """Flat indices of the near-tie set's designs still within ``(1 + tolerance)`` of its best derated latency."""
    latency = np.asarray(latency_s, np.float64)
    stressed = np.asarray(stressed_latency_s, np.float64)
    if stressed.shape != latency.shape:
        raise ValueError(f"stressed latencies have shape {stressed.shape}; the sweep's is {latency.shape}")
    near = near_set(latency, tolerance)
    return near[stressed[near] <= stressed[near].min() * (1.0 + tolerance)]


def robust_index(
    result: SweepResult, stressed_latency_s: np.ndarray, tolerance: float = DEFAULT_TOLERANCE, rule: str = "energy"
) -> int:
    """Flat index of the robust design (module docstring); ``stressed_latency_s`` are the same designs'
    latencies under :func:`derated` technology."""
    check_knee(rule, tolerance)
    return _cheapest(result, robust_set(result.latency_s, stressed_latency_s, tolerance), rule)


def describe(rule: str, tolerance: float) -> str:
    """One line saying how the knee was chosen (for reports)."""
    second = "lowest energy, then smallest area" if rule == "energy" else "smallest area, then lowest latency"
    return f"knee: {second} among designs within {100 * tolerance:g} % of the best alpha = 1 latency"


def describe_robust(rule: str, tolerance: float, margin: float) -> str:
    second = "lowest energy, then smallest area" if rule == "energy" else "smallest area, then lowest latency"
    return (
        f"robust: {second} among designs within {100 * tolerance:g} % of the best alpha = 1 latency, both "
        f"nominally and with the clock derated by {100 * margin:g} %"
    )


SELECTIONS = ("exhaustive", "knee", "robust")


def check_selection(selection: str, knee: str, tolerance: float, margin: float = DEFAULT_MARGIN) -> None:
    if selection not in SELECTIONS:
        raise ValueError(f"selection {selection!r} is not known; allowed: {list(SELECTIONS)}")
    check_knee(knee, tolerance)
    check_margin(margin)


def selected_index(
    result: SweepResult, selection: str = "exhaustive", tolerance: float = DEFAULT_TOLERANCE, knee: str = "energy"
) -> int:
    """The design put beside the paper from one sweep: the exact alpha = 1 optimum (the paper's own
    objective; ties to the lower energy) or the knee. The robust design needs a second, derated sweep:
    :func:`robust_index`."""
    check_selection(selection, knee, tolerance)
    if selection == "robust":
        raise ValueError("selection 'robust' needs a second sweep with derated technology: use robust_index")
    return result.best(1.0)[0] if selection == "exhaustive" else knee_index(result, tolerance, knee)


def describe_selection(selection: str, knee: str, tolerance: float, margin: float = DEFAULT_MARGIN) -> str:
    if selection == "exhaustive":
        return "exhaustive: the exact alpha = 1 (latency-only) optimum, the paper's objective; ties to lower energy"
    return describe(knee, tolerance) if selection == "knee" else describe_robust(knee, tolerance, margin)
