"""Baselines for the joint co-design problem, scored by the same exact evaluator as the optimiser.

* :func:`uniform_baseline`: the paper's approach -- one bit width everywhere, hardware by exhaustive sweep.
* :func:`sequential_baseline`: HAWQ-V3 style -- hardware for INT8, then alternately an integer program for
  the bits at fixed hardware and an exhaustive sweep for the hardware at fixed bits.
* :func:`ga_baseline`: a genetic algorithm over hardware choices and every bit-table entry at once.

Each returns a :class:`BaselineResult` whose ``report`` is :func:`cimjax.joint.problem.design_report` of
its design, so every method's numbers come from the same model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from cimjax.hardware.config import FIELDS
from cimjax.joint.allocation import allocate_within_budget, best_hardware, linearise
from cimjax.joint.problem import INFEASIBLE_RANK, ExactEvaluator, InfeasibleError, JointProblem, design_report
from cimjax.search.ga import run_integer_ga
from cimjax.search.pareto import alpha_objective

Progress = Callable[[int, int], None]
"""``progress(done, total)``, e.g. to drive a progress bar."""


@dataclasses.dataclass
class BaselineResult:
    """One baseline's design, its exact report and what finding it cost.

    Attributes:
      name: the method (and width, for uniform results).
      choice: hardware choice indices, shape (9,), into ``problem.space.values`` in ``FIELDS`` order.
      table: bits, shape (L, 17).
      report: :func:`design_report` of the design.
      evaluations: designs evaluated by the method (see each function).
      wall_s: wall-clock seconds, report included.
      history: the method's objective ``L^alpha E^(1-alpha)`` along its run (see each function); inf marks
        a step without a feasible design.
    """

    name: str
    choice: np.ndarray
    table: np.ndarray
    report: dict
    evaluations: int
    wall_s: float
    history: list[float]


def _result(
    problem: JointProblem, name: str, choice, table, evaluations: int, start: float, history: list[float] | None = None
) -> BaselineResult:
    """Reports a design with a fresh evaluator; ``history`` defaults to the design's own objective."""
    report = design_report(problem, choice, table, ExactEvaluator(problem))
    if history is None:
        history = [float(alpha_objective(report["latency_s"], report["energy_j"], problem.alpha))]
    return BaselineResult(
        name, np.asarray(choice), np.asarray(table), report, evaluations, time.perf_counter() - start, history
    )


def _uniform_result(problem: JointProblem, bits: int, progress: Progress | None) -> BaselineResult:
    start = time.perf_counter()
    choice, swept = best_hardware(problem, problem.uniform_table(bits), progress)
    return _result(problem, f"uniform-int{bits}", choice, problem.uniform_table(bits), swept, start)


def uniform_baseline(problem: JointProblem, progress: Progress | None = None) -> BaselineResult:
    """The paper's approach: the same width ``b`` for all weights, activations and KV, hardware by sweep.

    ``b`` is :meth:`JointProblem.smallest_uniform_width`, the smallest allowed width meeting the budget. That is optimal
    among uniform widths: the proxy falls as bits grow, so every width above ``b`` meets the budget too,
    but latency and energy never fall with more bits (more bit-serial cycles, more bytes stored and
    moved) for any hardware, so no design at a wider ``b`` beats the best one at ``b``. One exhaustive sweep
    at ``b`` (area-feasible designs only, best by :func:`alpha_objective`) then gives the answer.
    ``evaluations`` is the number of designs swept; ``progress`` follows the sweep.

    Raises:
      InfeasibleError: no uniform width meets the budget (or the bit ranges share no width).
    """
    widths = problem.uniform_widths()
    if not widths:
        raise InfeasibleError(f"no uniform width: the bit ranges of {problem.bits} share no width")
    width = problem.smallest_uniform_width()
    if width is None:
        widest = problem.proxy_of_tables(problem.uniform_table(widths[-1])[None])[0]
        raise InfeasibleError(
            f"no uniform width meets the budget {problem.budget:.4g} nats/token: the widest allowed, "
            f"{widths[-1]} bits, predicts {widest:.4g}"
        )
    return _uniform_result(problem, width, progress)


def uniform_front(problem: JointProblem, widths, progress: Progress | None = None) -> list[BaselineResult]:
    """One uniform result per width (budget ignored; ``report["feasible"]`` says whether it meets it), for
    Pareto-front plots. ``progress`` counts designs over all sweeps.

    Raises:
      ValueError: a width outside :meth:`JointProblem.uniform_widths`.
    """
    allowed = problem.uniform_widths()
    widths = list(widths)
    bad = [b for b in widths if b not in allowed]
    if bad:
        raise ValueError(f"widths {bad} are not allowed; allowed uniform widths: {list(allowed)}")
    size = problem.space.size

    def sweep_progress(k):
        return progress and (lambda done, _: progress(k * size + done, len(widths) * size))

    return [_uniform_result(problem, int(b), sweep_progress(k)) for k, b in enumerate(widths)]


def sequential_baseline(problem: JointProblem, max_rounds: int = 6, progress: Progress | None = None) -> BaselineResult:
    """HAWQ-V3 style: hardware for uniform INT8, then alternate bits (MILP) and hardware (sweep).

    Starts from INT8 everywhere (clipped into the allowed bits) and its best area-feasible hardware. Each
    round linearises the log objective at the current design (:func:`linearise`), allocates bits by
    :func:`allocate_bits` at that hardware, and re-sweeps the hardware for the new bits; it stops when
    the design repeats one seen before (neither bits nor hardware changed, or a cycle), or after
    ``max_rounds``. As the MILP cost is a linearisation, the design returned is the best feasible one
    seen by the exact objective. ``evaluations`` counts the designs given to the exact evaluator (each
    round's design and its single-entry variants) plus the designs swept; ``history`` holds the exact
    objective of the start design and of each new design (a round that repeats a design adds none);
    ``progress`` counts sweeps.

    Raises:
      ValueError: ``max_rounds`` is not a positive integer.
      InfeasibleError: the MILP cannot meet the budget, or no design seen meets it.
    """
    if not (isinstance(max_rounds, int) and max_rounds >= 1):
        raise ValueError(f"max_rounds = {max_rounds!r} is not allowed; give a whole number >= 1")
    start = time.perf_counter()
    evaluator = ExactEvaluator(problem)
    low, high = problem.bits.bounds()
    table = np.clip(problem.uniform_table(8), low, high)
    choice, swept = best_hardware(problem, table)
    best, history, seen = None, [], set()

    def keep(choice: np.ndarray, table: np.ndarray) -> None:
        nonlocal best
        seen.add((choice.tobytes(), table.tobytes()))
        scores = evaluator(choice[None], table[None])
        value = float(scores.objective[0]) if scores.feasible[0] else np.inf
        history.append(value)
        if value < (best[0] if best else np.inf):
            best = (value, choice, table)

    keep(choice, table)
    for done in range(1, max_rounds + 1):
        if progress:
            progress(done, max_rounds + 1)
        new_table = allocate_within_budget(problem, linearise(problem, choice, table, evaluator), choice, evaluator)
        new_choice, n = best_hardware(problem, new_table)
        swept += n
        table, choice = new_table, new_choice
        if (choice.tobytes(), table.tobytes()) in seen:
            break
        keep(choice, table)
    if progress:
        progress(max_rounds + 1, max_rounds + 1)
    if best is None:
        raise InfeasibleError(f"no design seen by the sequential baseline meets the budget {problem.budget:.4g}")
    _, choice, table = best
    return _result(problem, "sequential", choice, table, evaluator.evaluations + swept, start, history)


def ga_baseline(
    problem: JointProblem, evaluations: int, seed: int = 0, pop_size: int = 50, progress: Progress | None = None
) -> BaselineResult:
    """A joint GA (:func:`run_integer_ga`) over the hardware choices and every bit-table entry.

    The genome is the 9 choice indices then the ``L * 17`` entries as offsets from their lowest allowed
    bits; the GA minimises :meth:`JointProblem.rank`. The initial population holds every uniform width (with
    random hardware) and random individuals; it runs ``evaluations // pop_size`` generations, so at most
    ``evaluations`` designs are evaluated (``evaluations`` reports how many were). ``history`` is the best
    objective after each generation; ``progress`` counts generations.

    Raises:
      ValueError: ``pop_size`` below 2 or below the number of uniform widths, or ``evaluations`` below
        ``pop_size``.
      InfeasibleError: no feasible design was found.
    """
    widths = np.asarray(problem.uniform_widths())
    least = max(2, len(widths))
    if not (isinstance(pop_size, int) and pop_size >= least):
        raise ValueError(f"pop_size = {pop_size!r} is not allowed; give a whole number >= {least}")
    if not (isinstance(evaluations, int) and evaluations >= pop_size):
        raise ValueError(f"evaluations = {evaluations!r} is not allowed; give a whole number >= pop_size ({pop_size})")
    start = time.perf_counter()
    n_gen = evaluations // pop_size
    low = problem.bits.bounds()[0]
    n_hw = len(FIELDS)
    radices = np.concatenate([problem.space.radices, problem.bits.radices(problem.n_layers)])
    evaluator = ExactEvaluator(problem)

    def design(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[..., :n_hw], x[..., n_hw:].reshape(*x.shape[:-1], problem.n_layers, len(low)) + low

    initial = np.random.default_rng(seed).integers(0, radices, size=(pop_size, radices.size))
    initial[: len(widths), n_hw:] = np.tile(widths[:, None] - low, problem.n_layers)
    ga = run_integer_ga(
        lambda x: problem.rank(evaluator(*design(x))),
        radices,
        pop_size=pop_size,
        n_gen=n_gen,
        seed=seed,
        initial=initial,
        progress=progress and (lambda generation, _: progress(generation, n_gen)),
    )
    if ga.best_value >= INFEASIBLE_RANK:
        raise InfeasibleError(f"the GA found no design meeting the budget in {ga.evaluations} evaluations")
    history = [float(np.exp(v)) if v < INFEASIBLE_RANK else np.inf for v in ga.history]
    return _result(problem, "ga", *design(ga.best_choice), ga.evaluations, start, history)


__all__ = [
    "BaselineResult",
    "ga_baseline",
    "sequential_baseline",
    "uniform_baseline",
    "uniform_front",
]
