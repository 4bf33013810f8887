"""One entry point for design-space search by any method, returning a JSON-ready result.

Every method scores designs with the same exact cost model; the result always carries the exact
metrics of the final design, the number of designs evaluated and the wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.cost.batched import compress_uniform, in_batches, make_evaluator
from cimjax.evaluation import design_report
from cimjax.hardware.config import PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import Technology, default_technology
from cimjax.search.exhaustive import sweep
from cimjax.search.gradient import gradient_search
from cimjax.search.pareto import alpha_objective, check_alphas
from cimjax.validation import check_limits
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision, resolve_precision
from cimjax.workload.spec import ModelSpec

METHODS = ("exhaustive", "ga", "gradient")


def ga_objective(
    spec: ModelSpec, prec: Precision, workload: Workload, tech: Technology, space: DesignSpace, alpha: float, batch: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The GA's batched objective over choice indices; batches are padded to one size (one compile)."""
    run = make_evaluator(spec, workload, space, "choice")
    prec = compress_uniform(prec)

    def objective(choice: np.ndarray) -> np.ndarray:
        latency, energy, _ = in_batches(run, batch, (np.asarray(choice, np.int32),), prec, tech)
        return np.asarray(alpha_objective(latency, energy, alpha))

    return objective


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
    progress: Callable[[int, int], None] | None = None,
    tolerance: float = 0.0,
    area_max: float | None = None,
) -> dict:
    """Finds the design minimising L^alpha E^(1-alpha); returns its exact report plus search statistics
    (a :class:`cimjax.results.Result` with ``meta``).

    ``area_max`` (mm^2) and the near-tie rule ``tolerance`` (the smallest chip within ``1 + tolerance`` of
    the best objective, see :meth:`SweepResult.best`) need the whole space, so only method ``exhaustive``
    takes them.
    """
    if method not in METHODS:
        raise ValueError(f"search method {method!r} is not known; allowed: {list(METHODS)}")
    check_alphas(alpha)
    check_limits(tolerance, area_max)
    if method != "exhaustive" and (tolerance or area_max is not None):
        raise ValueError(f"--tolerance and --area-max need method 'exhaustive', not {method!r}")
    spec = resolve_model(model)
    prec = resolve_precision(precision, spec)
    workload = workload or Workload()
    tech = tech or default_technology()
    name = precision if isinstance(precision, str) else "mixed"
    start = time.perf_counter()
    extra = {}
    if method == "exhaustive":
        result = sweep(spec, prec, workload, tech, space, progress=progress)
        index, objective = result.best(alpha, tolerance, area_max)
        hw = space.decode(jnp.asarray(index))
        evaluations = result.evaluations
        extra = {
            "designs_per_s": result.designs_per_s,  # distinct designs evaluated per second
            "space_designs": space.size,  # of which `evaluations` are distinct (mirror images folded)
            "compile_s": result.compile_s,
            "sweep_s": result.wall_s,
            "tolerance": tolerance,
            "area_max": area_max,
        }
    elif method == "gradient":
        result = gradient_search(spec, prec, workload, tech, alpha, space=space, seed=seed, progress=progress)
        hw = HardwareConfig.from_dict(result.best_config, space)
        objective, evaluations = result.objective, result.evaluations
        extra = {
            "seed": seed,
            "starts": result.starts,
            "gradient_steps": result.gradient_steps,
            "history": result.history.tolist(),
        }
    else:
        from cimjax.search.ga import PAPER_GENERATIONS, PAPER_POP_SIZE, run_ga  # pymoo: only when the GA runs

        pop_size, n_gen = PAPER_POP_SIZE, PAPER_GENERATIONS

        objective_fn = ga_objective(spec, prec, workload, tech, space, alpha, batch=pop_size)
        ga = run_ga(
            objective_fn,
            space,
            pop_size=pop_size,
            n_gen=n_gen,
            seed=seed,
            progress=(lambda g, _best: progress(g, n_gen)) if progress else None,
        )
        hw = space.from_choice_indices(ga.best_choice[None])
        hw = jax.tree.map(lambda x: x[0], hw)
        objective, evaluations = ga.best_value, ga.evaluations
        extra = {"seed": seed, "history": ga.history.tolist()}
    wall_s = time.perf_counter() - start
    report = design_report(spec, prec, name, hw.to_dict(), workload, tech, space)
    return (
        report
        | {
            "method": method,
            "alpha": alpha,
            "objective": objective,
            "evaluations": evaluations,
            "wall_s": wall_s,
        }
        | extra
    )
