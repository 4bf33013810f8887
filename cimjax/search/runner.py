"""One entry point for design-space search by any method, returning a JSON-ready result.

Every method scores designs with the same exact cost model; the result always carries the exact
metrics of the final design, the number of designs evaluated and the wall time.
"""

from __future__ import annotations

import time

from cimjax import validation
from cimjax.evaluation import design_report
from cimjax.hardware.config import PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import Technology, technology_argument
from cimjax.search.methods import SEARCH_METHODS, Progress, SearchProblem, check_limits_taken
from cimjax.search.pareto import check_alphas
from cimjax.validation import check_limits
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision, resolve_precision
from cimjax.workload.spec import ModelSpec


def search(
    model: str | ModelSpec,
    precision: str | Precision,
    alpha: float,
    method: str = "exhaustive",
    *,
    seed: int = 0,
    workload: Workload | None = None,
    tech: Technology | None = None,
    space: DesignSpace = PAPER_SPACE,
    progress: Progress | None = None,
    tolerance: float = 0.0,
    area_max: float | None = None,
    **options,
) -> dict:
    """Finds the design minimising L^alpha E^(1-alpha); returns its exact report plus search statistics
    (a :class:`cimjax.results.Result` with ``meta``).

    ``area_max`` (mm^2) and the near-tie rule ``tolerance`` (the smallest chip within ``1 + tolerance`` of
    the best objective, see :meth:`SweepResult.best`) need the whole space, so only method ``exhaustive``
    takes them. ``method`` is any name registered in :mod:`cimjax.search.methods`; ``options`` go to it
    (its hyper-parameters, e.g. ``pop_size`` of ``ga``).
    """
    run = SEARCH_METHODS.lookup(method).run
    check_alphas(alpha)
    tolerance, area_max = check_limits(tolerance, area_max)
    check_limits_taken(method, tolerance, area_max)
    spec = resolve_model(model)
    prec = resolve_precision(precision, spec)
    seed = validation.seed("seed", seed)
    workload = validation.instance("workload", workload, Workload, Workload)
    tech = technology_argument(tech)
    space = validation.instance("space", space, DesignSpace, lambda: PAPER_SPACE)
    validation.callback("progress", progress)
    name = precision if isinstance(precision, str) else "mixed"
    start = time.perf_counter()
    problem = SearchProblem(spec, prec, workload, tech, space, alpha, tolerance, area_max)
    outcome = run(problem, seed, progress, **options)
    wall_s = time.perf_counter() - start
    report = design_report(spec, prec, name, outcome.config, workload, tech, space)
    return (
        report
        | {
            "method": method,
            "alpha": alpha,
            "objective": outcome.objective,
            "evaluations": outcome.evaluations,
            "wall_s": wall_s,
        }
        | outcome.extra
    )
