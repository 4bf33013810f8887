"""Search methods by name: each a function ``(problem, seed, progress, **options) -> SearchOutcome``,
registered with :func:`search_method`; :func:`cimjax.search.runner.search` and ``cimjax search --method``
take any registered name.

A method's hyper-parameters are its keyword options with defaults. Importing this module loads neither JAX
nor NumPy (the CLI lists the names in its help); each method imports its engine when it runs.

Adding a method is one decorated function, here or in any module imported before it is used::

    @search_method("random", "random sampling")
    def random_sampling(problem, seed, progress, *, samples=1000):
        ...  # score designs of problem.space with the cost model
        return SearchOutcome(config, objective, evaluations, {"seed": seed})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from cimjax import validation
from cimjax.registry import Registry

if TYPE_CHECKING:
    from cimjax.hardware.config import DesignSpace
    from cimjax.hardware.technology import Technology
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import Precision
    from cimjax.workload.spec import ModelSpec

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)``."""


@dataclasses.dataclass(frozen=True)
class SearchProblem:
    """What a search method minimises: ``L^alpha E^(1-alpha)`` of decoding ``spec`` at ``prec`` over
    ``space``; ``tolerance`` and ``area_max`` only for methods registered with ``limits=True``."""

    spec: ModelSpec
    prec: Precision
    workload: Workload
    tech: Technology
    space: DesignSpace
    alpha: float
    tolerance: float = 0.0
    area_max: float | None = None


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What every search method returns: the chosen design's field values (``config``), its exact
    objective, the designs evaluated, and the method's own JSON fields (``extra``)."""

    config: dict
    objective: float
    evaluations: int
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SearchMethod:
    """A registered method: its function, a one-line description, and whether it takes the whole-space
    limits (``tolerance``, ``area_max``)."""

    run: Callable[..., SearchOutcome]
    description: str
    limits: bool = False


SEARCH_METHODS = Registry("search method {name!r} is not known")
"""Name -> :class:`SearchMethod`, in registration order (the order errors and ``--help`` list them)."""


def search_method(name: str, description: str, *, limits: bool = False):
    """Registers the decorated ``f(problem, seed, progress, *, options...)`` as method ``name``."""
    return SEARCH_METHODS.entry(name, lambda run: SearchMethod(run, description, limits))


def check_limits_taken(name: str, tolerance: float, area_max: float | None) -> None:
    """A ValueError if whole-space limits are given to method ``name``, which does not take them."""
    if not SEARCH_METHODS[name].limits and (tolerance or area_max is not None):
        takers = " or ".join(repr(n) for n, m in SEARCH_METHODS.items() if m.limits)
        raise ValueError(f"--tolerance and --area-max need method {takers}, not {name!r}")


@search_method("exhaustive", "exact", limits=True)
def exhaustive(problem: SearchProblem, seed: int, progress: Progress | None) -> SearchOutcome:
    """Every design of the space (mirror images folded), the best by the near-tie rule and area limit of
    :meth:`cimjax.search.exhaustive.SweepResult.best`; deterministic, ``seed`` unused."""
    import jax.numpy as jnp

    from cimjax.search.exhaustive import sweep

    p = problem
    result = sweep(p.spec, p.prec, p.workload, p.tech, p.space, progress=progress)
    index, objective = result.best(p.alpha, p.tolerance, p.area_max)
    extra = {
        "designs_per_s": result.designs_per_s,  # distinct designs evaluated per second
        "space_designs": p.space.size,  # of which `evaluations` are distinct (mirror images folded)
        "compile_s": result.compile_s,
        "sweep_s": result.wall_s,
        "tolerance": p.tolerance,
        "area_max": p.area_max,
    }
    return SearchOutcome(p.space.decode(jnp.asarray(index)).to_dict(), objective, result.evaluations, extra)


@search_method("ga", "the paper's GA")
def ga(
    problem: SearchProblem,
    seed: int,
    progress: Progress | None,
    *,
    pop_size: int | None = None,
    n_gen: int | None = None,
) -> SearchOutcome:
    """The paper's GA (:func:`cimjax.search.ga.run_ga`) scored by the cost model; ``pop_size`` and ``n_gen``
    default to the paper's (:data:`cimjax.search.ga.PAPER_POP_SIZE`, ``PAPER_GENERATIONS``)."""
    import jax

    from cimjax.search.ga import PAPER_GENERATIONS, PAPER_POP_SIZE, ga_objective, run_ga  # pymoo: only now

    p = problem
    pop_size = PAPER_POP_SIZE if pop_size is None else validation.count("pop_size", pop_size, 2, validation.MAX_BATCH)
    n_gen = PAPER_GENERATIONS if n_gen is None else validation.count("n_gen", n_gen, 1, validation.MAX_ITERATIONS)
    objective_fn = ga_objective(p.spec, p.prec, p.workload, p.tech, p.space, p.alpha, batch=pop_size)
    step = (lambda g, _best: progress(g, n_gen)) if progress else None
    result = run_ga(objective_fn, p.space, pop_size=pop_size, n_gen=n_gen, seed=seed, progress=step)
    hw = jax.tree.map(lambda x: x[0], p.space.from_choice_indices(result.best_choice[None]))
    extra = {"seed": seed, "history": result.history.tolist()}
    return SearchOutcome(hw.to_dict(), result.best_value, result.evaluations, extra)


@search_method("gradient", "relaxed descent, then exact local search")
def gradient(problem: SearchProblem, seed: int, progress: Progress | None, **settings) -> SearchOutcome:
    """:func:`cimjax.search.gradient.gradient_search`; ``settings`` are its keyword arguments (``starts``,
    ``steps``, ``learning_rate``, ``temperature``, ``beam``), its defaults where not given."""
    from cimjax.hardware.config import HardwareConfig
    from cimjax.search.gradient import gradient_search

    p = problem
    result = gradient_search(
        p.spec, p.prec, p.workload, p.tech, p.alpha, space=p.space, seed=seed, progress=progress, **settings
    )
    extra = {
        "seed": seed,
        "starts": result.starts,
        "gradient_steps": result.gradient_steps,
        "history": result.history.tolist(),
    }
    config = HardwareConfig.from_dict(result.best_config, p.space).to_dict()
    return SearchOutcome(config, result.objective, result.evaluations, extra)
