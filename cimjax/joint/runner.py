"""One entry point for joint co-optimisation by any method, returning the JSON object of ``cimjax optimize``.

Keys (a contract for users' scripts): ``bits`` (per layer and tensor kind), ``config`` (hardware), the exact
metrics of the discrete design (``tokens_per_s``, ``tokens_per_j``, ``latency_s``, ``energy_j``,
``area_mm2``), ``proxy`` and ``budget`` (nats/token), ``baseline`` (the same metric keys for the best
uniform-precision design meeting the same budget and area limit) and ``gain`` (tokens/s over the
baseline's; kept for old scripts), ``gains`` (``tokens_per_s``, ``tokens_per_j`` and ``objective``
ratios, each above 1 when ours is better), ``ratios_to_baseline``, ``objective``, ``baseline_objective``,
``chosen``, ``objective_note`` and ``tolerance`` (see :func:`cimjax.report.baseline.compare`), ``meta``.
Also: ``method``, ``model``, ``alpha``, ``area_max``, ``budget_label``, ``proxy_name``,
``assumption`` (the proxy's caveat, or null), ``gain_cap`` (under the weight-less default proxy: the
most any assignment can gain, and why; else null), ``evaluations``, ``wall_s`` and ``mean_bits``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from cimjax.api import resolve_model
from cimjax.hardware.technology import Technology
from cimjax.joint.baselines import ga_baseline, sequential_baseline, uniform_baseline
from cimjax.joint.optimizer import optimize
from cimjax.joint.problem import JointProblem, make_problem
from cimjax.joint.settings import JointSettings
from cimjax.quant.proxy import Proxy, gain_cap_note
from cimjax.report.baseline import compare
from cimjax.results import Result, make_meta
from cimjax.workload.models import ModelSpec
from cimjax.workload.operators import Workload

METHODS = ("gradient", "ga", "sequential")
GA_EVALUATIONS = 64_000
"""Default GA evaluations: about what the gradient method spends with its default settings and no area
limit on a 16-layer model (relaxed and exact evaluations; an area limit adds its hardware sweeps)."""
GA_GENERATIONS = 400
"""The GA's population is sized so that its evaluations last this many generations (at least 50 each)."""
METRICS = ("tokens_per_s", "tokens_per_j", "latency_s", "energy_j", "area_mm2", "proxy")

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``."""


def run_method(
    problem: JointProblem,
    method: str,
    *,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    settings: JointSettings | None = None,
    ga_evaluations: int = GA_EVALUATIONS,
):
    """Runs one method on ``problem``; returns ``(report, evaluations)`` of its final discrete design.

    ``settings``: :class:`cimjax.joint.settings.JointSettings` of the gradient method (its seed is
    replaced by ``seed``). ``ga_evaluations``: the GA's evaluation budget; experiments pass what the
    gradient method spent on the same problem, so the two are compared at equal evaluation counts.
    """
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is not known; allowed: {list(METHODS)}")
    if method != "gradient" and (checkpoint_dir is not None or resume):
        raise ValueError(f"--checkpoint-dir/--resume apply to method 'gradient' only, not {method!r}")
    settings = dataclasses.replace(settings or JointSettings(), seed=seed)
    if method == "gradient":
        result = optimize(problem, settings, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
        return result.report, result.evaluations
    step = (lambda done, total: progress(method, done, total)) if progress else None
    if method == "ga":
        pop_size = max(50, ga_evaluations // GA_GENERATIONS)
        result = ga_baseline(problem, evaluations=ga_evaluations, seed=seed, pop_size=pop_size, progress=step)
    else:
        result = sequential_baseline(problem, progress=step)
    return result.report, result.evaluations


def optimize_report(
    model: str | ModelSpec,
    budget: str | float,
    *,
    alpha: float = 1.0,
    area_max: float | None = None,
    method: str = "gradient",
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    proxy: Proxy | None = None,
    workload: Workload | None = None,
    tech: Technology | None = None,
    settings: JointSettings | None = None,
    progress: Progress | None = None,
    tolerance: float = 0.0,
) -> dict:
    """Validates the request, optimises, and compares with the best uniform-precision design (JSON-ready).

    The design returned is never worse than that baseline at the objective; ``tolerance`` is the near-tie
    rule of :func:`cimjax.report.baseline.compare`.

    Raises:
      ValueError: a malformed argument, naming it and what is allowed.
      cimjax.joint.problem.InfeasibleError: a budget or area limit that no design can meet.
    """
    spec = resolve_model(model)
    problem = make_problem(spec, budget, proxy=proxy, alpha=alpha, area_max=area_max, workload=workload, tech=tech)
    start = time.perf_counter()
    report, evaluations = run_method(
        problem, method, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress, settings=settings
    )
    wall_s = time.perf_counter() - start
    step = (lambda done, total: progress("baseline", done, total)) if progress else None
    baseline = uniform_baseline(problem, progress=step).report
    report, comparison = compare(report, baseline, problem.alpha, problem.area_max, tolerance)
    assumptions = [problem.proxy.assumption] if problem.proxy.assumption else []
    return (
        Result(report)
        | comparison
        | {
            "baseline": {k: baseline[k] for k in (*METRICS, "config", "mean_bits")},
            "gain": report["tokens_per_s"] / baseline["tokens_per_s"],
            "meta": make_meta(problem.workload, problem.tech, assumptions),
            "method": method,
            "model": spec.id,
            "alpha": problem.alpha,
            "area_max": problem.area_max,
            "budget_label": problem.budget_label,
            "proxy_name": problem.proxy.name,
            "assumption": problem.proxy.assumption,
            "gain_cap": gain_cap_note(problem.proxy.name),
            "seed": seed,
            "evaluations": evaluations,
            "wall_s": wall_s,
        }
    )
