"""Joint co-optimisation methods by name: each a function ``(problem, seed, progress, **options) ->
JointOutcome``, registered with :func:`joint_method`; ``cimjax optimize --method`` takes any registered name.

A method's hyper-parameters are its keyword options with defaults; :func:`cimjax.joint.runner.run_method`
passes each option only to the methods that take it. Importing this module loads neither JAX nor NumPy
(the CLI lists the names in its help); each method imports its engine when it runs.

Adding a method is one decorated function, here or in any module imported before it is used::

    @joint_method("uniform", "one width everywhere")
    def uniform(problem, seed, progress):
        result = uniform_baseline(problem)
        return JointOutcome(result.report, result.evaluations)
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cimjax.registry import Registry

if TYPE_CHECKING:
    from cimjax.joint.problem import JointProblem
    from cimjax.joint.settings import JointSettings

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``."""

GA_EVALUATIONS = 64_000
"""Default GA evaluations: about what the gradient method spends with its default settings and no area
limit on a 16-layer model (relaxed and exact evaluations; an area limit adds its hardware sweeps)."""
GA_GENERATIONS = 400
"""The GA's population is sized so that its evaluations last this many generations (at least 50 each)."""
CHECKPOINT_OPTIONS = ("checkpoint_dir", "resume")


class JointOutcome(NamedTuple):
    """What every joint method returns: the exact report of its final discrete design
    (:func:`cimjax.joint.problem.design_report`) and the number of designs it evaluated."""

    report: dict
    evaluations: int


@dataclasses.dataclass(frozen=True)
class JointMethod:
    """A registered method: its function, a one-line description and the keyword options it takes."""

    run: Callable[..., JointOutcome]
    description: str

    @property
    def options(self) -> frozenset[str]:
        params = inspect.signature(self.run).parameters.values()
        return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


JOINT_METHODS = Registry("method = {name!r} is not known")
"""Name -> :class:`JointMethod`, in registration order (the order ``--help`` lists them)."""


def joint_method(name: str, description: str):
    """Registers the decorated ``f(problem, seed, progress, *, options...)`` as method ``name``."""
    return JOINT_METHODS.entry(name, lambda run: JointMethod(run, description))


@joint_method("gradient", "ours")
def gradient(
    problem: JointProblem,
    seed: int,
    progress: Progress | None,
    *,
    settings: JointSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> JointOutcome:
    """The augmented-Lagrangian descent plus exact discretisation (:func:`cimjax.joint.optimizer.optimize`);
    ``settings`` default :class:`~cimjax.joint.settings.JointSettings` (its seed is replaced by ``seed``)."""
    from cimjax.joint.optimizer import optimize
    from cimjax.joint.settings import JointSettings

    settings = dataclasses.replace(settings or JointSettings(), seed=seed)
    result = optimize(problem, settings, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
    return JointOutcome(result.report, result.evaluations)


@joint_method("ga", "joint GA")
def ga(
    problem: JointProblem,
    seed: int,
    progress: Progress | None,
    *,
    evaluations: int = GA_EVALUATIONS,
    generations: int = GA_GENERATIONS,
    min_pop_size: int = 50,
) -> JointOutcome:
    """A GA over hardware and every bit entry (:func:`cimjax.joint.baselines.ga_baseline`) with ``evaluations``
    designs; experiments pass what the gradient method spent, to compare at equal evaluation counts."""
    from cimjax.joint.baselines import ga_baseline

    pop_size = max(min_pop_size, evaluations // generations)
    step = (lambda done, total: progress("ga", done, total)) if progress else None
    result = ga_baseline(problem, evaluations=evaluations, seed=seed, pop_size=pop_size, progress=step)
    return JointOutcome(result.report, result.evaluations)


@joint_method("sequential", "HW then MILP")
def sequential(problem: JointProblem, seed: int, progress: Progress | None) -> JointOutcome:
    """Hardware for INT8, then bits by integer program, alternately
    (:func:`cimjax.joint.baselines.sequential_baseline`; deterministic, ``seed`` unused)."""
    from cimjax.joint.baselines import sequential_baseline

    step = (lambda done, total: progress("sequential", done, total)) if progress else None
    result = sequential_baseline(problem, progress=step)
    return JointOutcome(result.report, result.evaluations)
