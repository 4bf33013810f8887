"""The EdgeCIM paper's genetic algorithm, through pymoo.

The paper searches its design space with a GA of population 20 over 50 generations: random initial
sampling, simulated binary crossover (probability 1, distribution index 3), polynomial mutation
(distribution index 3) and integer rounding. Here the decision variables are integer choice indices
(one per field, in ``[0, radix - 1]``), so the same GA runs over any :class:`DesignSpace` or, through
:func:`run_integer_ga`, over any integer vector (e.g. hardware fields plus per-layer bit widths).
Each generation is evaluated as one batch, so a vectorised JAX cost model sees one call per generation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from cimjax.cost.batched import compress_uniform, in_batches, make_evaluator
from cimjax.hardware.config import DesignSpace
from cimjax.hardware.technology import Technology
from cimjax.search.pareto import alpha_objective
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec

Objective = Callable[[np.ndarray], np.ndarray]
"""Maps integer choices of shape (n, n_var) to objective values of shape (n,); lower is better."""

Progress = Callable[[int, float], None]
"""Called after each generation with the 1-based generation number and the best value so far."""

PAPER_POP_SIZE, PAPER_GENERATIONS = 20, 50
"""The paper's GA settings: population 20 over 50 generations (the defaults of every GA run here)."""


@dataclasses.dataclass(frozen=True)
class GAResult:
    """Outcome of one GA run.

    Attributes:
        best_choice: Integer choice indices of the best design found, shape (n_var,).
        best_value: Objective value of ``best_choice``.
        evaluations: Number of designs passed to the objective over the whole run.
        history: Best objective value after each generation, shape (n_gen,).
        wall_s: Wall-clock seconds of the run, objective calls included.
    """

    best_choice: np.ndarray
    best_value: float
    evaluations: int
    history: np.ndarray
    wall_s: float


class _BatchedIntegerProblem(Problem):
    """A vectorised pymoo problem over integer vectors with per-variable radices."""

    def __init__(self, objective: Objective, radices: np.ndarray):
        super().__init__(n_var=len(radices), n_obj=1, xl=np.zeros(len(radices)), xu=radices - 1, vtype=int)
        self._objective = objective
        self.evaluations = 0

    def _evaluate(self, x, out, *args, **kwargs):
        choice = np.rint(x).astype(np.int64)
        values = np.asarray(self._objective(choice), dtype=np.float64)
        if values.shape != (len(choice),):
            raise ValueError(
                f"objective must return shape ({len(choice)},) for a batch of {len(choice)} designs, "
                f"got shape {values.shape}"
            )
        if not np.isfinite(values).all():  # a non-finite design is never ranked
            bad = choice[~np.isfinite(values)].tolist()
            raise ValueError(f"objective returned a non-finite value (NaN or infinity) for choices {bad}")
        self.evaluations += len(choice)
        out["F"] = values[:, None]


def run_integer_ga(
    objective: Objective,
    radices: Sequence[int],
    *,
    pop_size: int = PAPER_POP_SIZE,
    n_gen: int = PAPER_GENERATIONS,
    seed: int = 0,
    progress: Progress | None = None,
    initial: np.ndarray | None = None,
) -> GAResult:
    """Minimises ``objective`` over integer vectors ``x`` with ``0 <= x[i] < radices[i]``.

    Args:
        objective: Batched objective; called once per generation with all new designs, shape (n, n_var).
            Finite values only (a NaN or infinity is refused as a cost-model failure): score an infeasible
            design above every feasible one instead.
        radices: Number of allowed values of each variable (each at least 1).
        pop_size: Population size (the paper: 20).
        n_gen: Number of generations, the initial random population included (the paper: 50).
        seed: Seed of pymoo's random generator; equal seeds give identical runs.
        progress: Optional callback(generation, best_value), e.g. to drive a progress bar.
        initial: Optional initial population, integers of shape (pop_size, n_var) within the radices
            (e.g. seeded with known-good designs); None draws it uniformly at random. Duplicate rows
            are evaluated once.

    Returns:
        The best design found, its value, the evaluation count, the per-generation history and wall time.

    Raises:
        ValueError: On an empty radix list, a radix below 1, non-positive ``pop_size``/``n_gen``, or an
            ``initial`` population of the wrong shape or outside the radices.
    """
    radices_arr = np.asarray(radices, dtype=np.int64)
    if radices_arr.ndim != 1 or radices_arr.size == 0:
        raise ValueError(f"radices must be a non-empty 1-D sequence, got {radices!r}")
    if np.any(radices_arr < 1):
        raise ValueError(f"every radix must be at least 1, got {radices_arr.tolist()}")
    if pop_size < 2:
        raise ValueError(f"pop_size must be at least 2 (crossover needs two parents), got {pop_size}")
    if n_gen < 1:
        raise ValueError(f"n_gen must be at least 1, got {n_gen}")
    sampling = IntegerRandomSampling()
    if initial is not None:
        sampling = np.asarray(initial)
        if sampling.shape != (pop_size, radices_arr.size):
            raise ValueError(f"initial must have shape ({pop_size}, {radices_arr.size}), got {sampling.shape}")
        if not (np.all(sampling == np.rint(sampling)) and np.all(sampling >= 0) and np.all(sampling < radices_arr)):
            raise ValueError(
                f"initial must hold whole numbers in [0, radix - 1] per column; radices are {radices_arr.tolist()}"
            )

    problem = _BatchedIntegerProblem(objective, radices_arr)
    algorithm = GA(
        pop_size=pop_size,
        sampling=sampling,
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    start = time.perf_counter()
    algorithm.setup(problem, termination=("n_gen", n_gen), seed=seed, verbose=False)
    history = []
    while algorithm.has_next():
        algorithm.next()
        history.append(float(algorithm.opt.get("F").min()))
        if progress is not None:
            progress(len(history), history[-1])
    wall_s = time.perf_counter() - start

    best = algorithm.opt[0]
    return GAResult(
        best_choice=np.rint(best.X).astype(np.int64),
        best_value=float(best.F[0]),
        evaluations=problem.evaluations,
        history=np.asarray(history),
        wall_s=wall_s,
    )


def run_ga(
    objective: Objective,
    space: DesignSpace,
    *,
    pop_size: int = PAPER_POP_SIZE,
    n_gen: int = PAPER_GENERATIONS,
    seed: int = 0,
    progress: Progress | None = None,
) -> GAResult:
    """The paper's GA over a design space; choices index ``space.values`` field by field.

    Args:
        objective: Batched objective over choice indices of shape (n, len(FIELDS)); turn them into
            designs with ``space.from_choice_indices``.
        space: The design space searched.
        pop_size: Population size (the paper: 20).
        n_gen: Number of generations (the paper: 50).
        seed: Seed; equal seeds give identical runs.
        progress: Optional callback(generation, best_value).

    Returns:
        A :class:`GAResult`; ``space.from_choice_indices(result.best_choice[None])`` is the best design.
    """
    return run_integer_ga(objective, space.radices, pop_size=pop_size, n_gen=n_gen, seed=seed, progress=progress)


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
