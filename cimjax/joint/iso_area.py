"""The iso-area search of a verified run (docs/joint.md, "Iso-area search").

optimize's rule (:func:`cimjax.joint.compare.choose`) moves the hardware, not the bits: when it recommends
a smaller chip than the optimiser's own, the bits were chosen for silicon the rule did not allow.
:func:`with_iso_area` runs the verified search (:mod:`cimjax.joint.verified`) again with the uniform
baseline's area as the limit, its proxy refitted from the start with the first search's failed measurements
(:func:`seeded`), and lets the same rule (area must pay) choose among the baseline, the first search's pick
and the iso-area search's pick (:func:`pick`). Why the baseline's area: every chip up to it is admissible
under the rule without paying for anything, and it is the silicon an architect compares with.
"""

from __future__ import annotations

import dataclasses
import time

from cimjax.joint.compare import choose
from cimjax.joint.problem import InfeasibleError
from cimjax.workload.precision import table_from_bits


def seeded(fit, candidates: list, budget: float):
    """``fit`` with the candidates measured over ``budget`` prepended to its data: the iso-area search starts
    from the proxy the first search's failed rounds refitted, not from the one that missed there."""
    failed = [c for c in candidates if c[2] is not None and c[2]["value"] > budget]
    tables, values = [table_from_bits(c[1]["bits"]) for c in failed], [c[2]["value"] for c in failed]
    return lambda more_tables, more_values: fit([*tables, *more_tables], [*values, *more_values])


def pick(first: tuple, iso: tuple, tolerance: float) -> bool:
    """Whether :func:`~cimjax.joint.compare.choose` (area must pay) recommends the iso-area search's design
    over the first search's; each is ``(problem, report, values, extras)``, compared with the same baseline."""
    base = first[3]["baseline"]
    objectives = [first[3]["baseline_objective"], first[3]["objective"], iso[3]["objective"]]
    areas = [base["area_mm2"], first[1]["area_mm2"], iso[1]["area_mm2"]]
    return choose(objectives, areas, 0, tolerance, True) == 2


def summary(found: tuple, searched, first: tuple, budget: float, picked: bool, wall: float) -> dict:
    """The JSON ``iso_area``: ``area_max`` (the baseline's area, the search's limit), ``recommended`` (whether
    the rule chose its design over the first search's), ``chosen`` ("optimised", or "baseline" when its best
    design did not beat the baseline), the design's ``gain`` (tokens/s over the baseline's), ``tokens_per_s``,
    ``tokens_per_j``, ``area_mm2``, ``mean_bits``, ``bits``, ``config``, ``measured_loss``, ``measured_kl``,
    ``verified``, ``optimiser_design`` (the search's own design before the rule, within ``area_max``),
    ``first_pick`` (the first search's recommended design it competed with: ``gain``, ``tokens_per_s``,
    ``tokens_per_j``, ``area_mm2``), and the search's ``rounds``, ``verify_history``, ``refine``,
    ``evaluations`` and ``wall_s``."""
    _, report, values, extras = found
    first_pick = {k: first[1][k] for k in ("tokens_per_s", "tokens_per_j", "area_mm2")}
    return {
        "area_max": first[3]["baseline"]["area_mm2"],
        "recommended": picked,
        "chosen": extras["chosen"],
        "gain": extras["gain"],
        "tokens_per_s": report["tokens_per_s"],
        "tokens_per_j": report["tokens_per_j"],
        "area_mm2": report["area_mm2"],
        "mean_bits": report["mean_bits"],
        "bits": report["bits"],
        "config": report["config"],
        "measured_loss": None if values is None else values["loss"],
        "measured_kl": None if values is None else values["kl"],
        "verified": values is not None and values["value"] <= budget,
        "optimiser_design": extras.get("optimiser_design"),
        "first_pick": {"gain": first[3]["gain"]} | first_pick,
        "rounds": len(searched.history),
        "verify_history": searched.history,
        "refine": searched.refined,
        "evaluations": searched.evaluations,
        "wall_s": wall,
    }


def moved_down(found: tuple) -> bool:
    """Whether optimize's rule recommended a smaller chip than the optimiser's own (whose bits were chosen for
    silicon the rule did not allow); ``found``: ``(problem, report, values, extras)`` against a baseline."""
    own = found[3].get("optimiser_design")
    return found[3]["baseline"] is not None and own is not None and found[1]["area_mm2"] < own["area_mm2"]


def with_iso_area(found: tuple, search, against_uniform, budget: float, tolerance: float, say) -> tuple:
    """The verified search again within the baseline's area (``search(area_max)``), compared with the same
    baseline by the same rule (area must pay: ``against_uniform(candidates)``), and the recommendation of
    :func:`pick` between it and ``found`` (the first search's ``(problem, report, values, extras)``).

    Returns the recommended ``(problem, report, values, extras)`` (``optimiser_design`` stays the first,
    unlimited search's) and the JSON ``iso_area``."""
    area, start = found[3]["baseline"]["area_mm2"], time.perf_counter()
    say(f"iso-area: optimising the bits again within the baseline's {area:.4g} mm^2")
    try:
        searched = search(area)
    except InfeasibleError as error:  # the first search's design stands
        say(f"iso-area: {error}")
        return found, None
    unlimited = [(dataclasses.replace(c[0], area_max=None), *c[1:]) for c in searched.candidates]
    iso = against_uniform(unlimited)
    picked = pick(found, iso, tolerance)
    described = summary(iso, searched, found, budget, picked, time.perf_counter() - start)
    if not picked:
        return found, described
    return (*iso[:3], iso[3] | {"optimiser_design": found[3]["optimiser_design"]}), described
