"""Joint gradient co-optimisation of per-layer bits and hardware: augmented Lagrangian on the relaxed model.

Method (equations and reasoning: docs/joint.md):

1. **Relaxation.** Hardware fields live in the search coordinates of :mod:`cimjax.search.gradient`
   (boxed by a sigmoid); every entry of the ``(L, 17)`` bit table is ``low + (high - low) sigmoid(theta)``.
   The cost model runs with :func:`cimjax.cost.relaxed.relaxed_ops` (temperature annealed geometrically)
   and the proxy takes continuous bits, so ``f = alpha log L + (1 - alpha) log E`` and the constraints
   ``c_acc = log(proxy / budget) <= 0`` and ``c_area = log(area / area_max) <= 0`` are smooth.
2. **Augmented Lagrangian** (Powell-Hestenes-Rockafellar form for inequalities):
   ``Phi = f + sum_i (max(0, lambda_i + rho c_i)^2 - lambda_i^2) / (2 rho)``, minimised by Adam for
   ``steps_per_round`` steps, then ``lambda_i <- max(0, lambda_i + rho c_i)`` and ``rho <- growth rho``.
   Many starts run in parallel (``jax.vmap``), each with its own multipliers.
3. **Discretisation.** Each start is snapped (nearest allowed hardware, nearest whole bits) and repaired
   to meet the budget (the +1-bit moves with most proxy reduction per unit of exact objective). The
   ``beam`` best, and the best start's hardware with the uniform bits that meet the budget, get their
   bits re-allocated at that hardware by MILP on exact single-entry costs (:mod:`cimjax.joint.allocation`),
   then are polished by exact steepest descent over one- and two-field hardware moves, +-1-bit moves
   and paired (+1, -1)-bit exchanges. With ``hardware_sweep`` (by default: when there is an area limit),
   the best one's bits and the uniform bits then get the best hardware of the whole space by exact sweep
   (area limit applied), are re-allocated and polished there, and kept if better (so the result is never
   worse than the uniform baseline). The reported design and metrics are the exact model's.

Modules: :mod:`cimjax.joint.descent` (steps 1-2, pure ``init``/``update`` over an explicit
:class:`~cimjax.joint.descent.JointState`), :mod:`cimjax.joint.discrete` (step 3) and
:mod:`cimjax.joint.checkpoints` (with a checkpoint directory the state is saved with orbax after every
round, and a stopped run resumes to the same result); :func:`optimize` runs them as four phases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cimjax.joint.descent import JointState, continuous_designs, make_descent, round_summary
from cimjax.joint.discrete import discrete_starts, refine, sweep_hardware
from cimjax.joint.problem import ExactEvaluator, JointProblem, design_report
from cimjax.joint.settings import JointSettings

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``."""


@dataclasses.dataclass(frozen=True)
class JointResult:
    """Outcome of :func:`optimize`: the exact report of the final discrete design plus search statistics."""

    choice: np.ndarray
    table: np.ndarray
    report: dict
    evaluations: int
    relaxed_evaluations: int
    exact_evaluations: int
    wall_s: float
    history: list[dict]


def optimize(
    problem: JointProblem,
    settings: JointSettings | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> JointResult:
    """Jointly optimises per-layer bits and hardware for ``problem`` (see the module docstring).

    Args:
      problem: from :func:`cimjax.joint.problem.make_problem`.
      settings: sizes and schedule (default :class:`JointSettings`).
      checkpoint_dir: where the state is saved after every round (orbax); None for no checkpoints.
      resume: continue from the checkpoint in ``checkpoint_dir`` (it must be this problem's); without it
        an existing checkpoint is an error rather than being overwritten.
      progress: called as ``progress(phase, done, total)`` with phase ``descent``, ``polish`` or ``hardware``;
        with ``checkpoint_dir``, first as ``progress("descent", r, rounds)`` with ``r`` the rounds restored.

    Returns:
      A :class:`JointResult`; ``report`` holds the exact metrics of the discrete design.
    """
    settings = settings or JointSettings()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    start_time = time.perf_counter()
    # 1. Descent on the relaxed model (resumed from the checkpoint when there is one).
    state, history = _descend(problem, settings, checkpoint_dir, resume, _phase(progress, "descent"))
    # 2. Discrete starts: snapped, repaired to the budget, the beam best plus uniform bits.
    evaluator = ExactEvaluator(problem)
    candidates, fallback = discrete_starts(problem, evaluator, *continuous_designs(problem, state), settings.beam)
    # 3. Each re-allocated (MILP) and polished (exact steepest descent); the best kept.
    design = refine(problem, evaluator, candidates, settings, _phase(progress, "polish"))
    # 4. With an area limit (or when asked): the best hardware of the whole space for its bits.
    swept = 0
    if settings.hardware_sweep or (settings.hardware_sweep is None and problem.area_max is not None):
        design, swept = sweep_hardware(problem, evaluator, design, fallback, settings, _phase(progress, "hardware"))
    choice, table = design
    exact = evaluator.evaluations + swept
    relaxed = settings.starts * settings.total_steps
    return JointResult(
        choice=choice,
        table=table,
        report=design_report(problem, choice, table, evaluator),
        evaluations=relaxed + exact,
        relaxed_evaluations=relaxed,
        exact_evaluations=exact,
        wall_s=time.perf_counter() - start_time,
        history=history,
    )


def _phase(progress: Progress | None, phase: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(phase, done, total)) if progress else None


def _descend(
    problem: JointProblem,
    settings: JointSettings,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: Callable[[int, int], None] | None,
) -> tuple[JointState, list[dict]]:
    """Runs the remaining rounds of the descent from its seeded start or the checkpoint, saving after each."""
    descent = make_descent(problem, settings)
    state = descent.init(settings.seed)
    checkpoints = None
    if checkpoint_dir is not None:
        from cimjax.joint.checkpoints import Checkpoints, fingerprint  # orbax: half a second of imports

        checkpoints = Checkpoints(Path(checkpoint_dir), fingerprint(problem, settings), resume)
        state = checkpoints.restore(state) or state
        if progress:  # where this run starts: the round restored (0 when nothing was saved or readable)
            progress(int(state.round), settings.rounds)
    history = []
    try:
        for r in range(int(state.round), settings.rounds):
            state, c, objective = descent.update(state)
            history.append(round_summary(r + 1, np.asarray(c, np.float64), np.asarray(objective, np.float64)))
            if checkpoints is not None:
                checkpoints.save(state)
            if progress:
                progress(r + 1, settings.rounds)
    finally:
        if checkpoints is not None:
            checkpoints.close()
    return state, history


__all__ = ["JointResult", "JointSettings", "optimize"]
