"""One entry point for joint co-optimisation by any method, returning the JSON object of ``cimjax optimize``.

Keys (a contract for users' scripts): ``bits`` (per layer and tensor kind), ``config`` (hardware), the exact
metrics of the discrete design (``tokens_per_s``, ``tokens_per_j``, ``latency_s``, ``energy_j``,
``area_mm2``), ``proxy`` and ``budget`` (nats/token), ``baseline`` (the same metric keys for the best
uniform-precision design meeting the same budget and area limit) and ``gain`` (tokens/s over the
baseline's; kept for old scripts), ``gains`` (``tokens_per_s``, ``tokens_per_j`` and ``objective``
ratios, each above 1 when ours is better), ``ratios_to_baseline``, ``objective``, ``baseline_objective``,
``chosen``, ``objective_note``, ``tolerance``, ``area_rule`` and ``optimiser_design`` (see
:func:`cimjax.joint.compare.compare`), ``meta``.
Also: ``method``, ``model``, ``alpha``, ``area_max``, ``budget_label``, ``proxy_name``,
``assumption`` (the proxy's caveat, or null), ``gain_cap`` (under the weight-less default proxy: the
most any assignment can gain, and why; else null), ``evaluations``, ``wall_s`` and ``mean_bits``.
They are declared in :data:`cimjax.results.OPTIMIZE_KEYS` (the design's own: the ``joint`` form of
:class:`cimjax.results.DesignReport`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cimjax import validation
from cimjax.hardware.technology import Technology
from cimjax.joint.baselines import uniform_baseline
from cimjax.joint.compare import TOLERANCE, compare
from cimjax.joint.methods import CHECKPOINT_OPTIONS, JOINT_METHODS, JointOutcome, Progress
from cimjax.joint.problem import JointProblem, make_problem
from cimjax.joint.settings import JointSettings
from cimjax.quant.proxy import AccuracyProxy
from cimjax.results import BASELINE_KEYS, Result, make_meta
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.spec import ModelSpec


def run_method(
    problem: JointProblem, method: str, *, seed: int = 0, progress: Progress | None = None, **options
) -> JointOutcome:
    """Runs the registered joint method ``method`` (:mod:`cimjax.joint.methods`) on ``problem``; returns its
    :class:`~cimjax.joint.methods.JointOutcome` ``(report, evaluations)`` of the final discrete design.

    ``options`` (e.g. ``settings``, ``checkpoint_dir``, ``resume`` of ``gradient``; ``evaluations`` of
    ``ga``) go to the methods that take them, so one call can be made for every method; an option that no
    method takes is an error, and so are checkpoint options for a method that cannot resume.
    """
    entry = JOINT_METHODS.lookup(method)
    known = frozenset().union(*(m.options for m in JOINT_METHODS.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"run_method: no joint method takes {unknown}; options: {sorted(known)}")
    resumable = set(CHECKPOINT_OPTIONS) <= entry.options
    if not resumable and (options.get("checkpoint_dir") is not None or options.get("resume")):
        takers = " or ".join(repr(n) for n, m in JOINT_METHODS.items() if set(CHECKPOINT_OPTIONS) <= m.options)
        raise ValueError(f"--checkpoint-dir/--resume apply to method {takers} only, not {method!r}")
    return entry.run(problem, seed, progress, **{k: v for k, v in options.items() if k in entry.options})


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
    proxy: AccuracyProxy | None = None,
    workload: Workload | None = None,
    tech: Technology | None = None,
    settings: JointSettings | None = None,
    progress: Progress | None = None,
    tolerance: float = TOLERANCE,
) -> dict:
    """Validates the request, optimises, and compares with the best uniform-precision design (JSON-ready).

    The design returned is the one :func:`cimjax.joint.compare.compare` recommends (never worse than that
    baseline at the objective; without ``area_max`` a larger chip must pay for its area; ``tolerance`` is
    its near-tie).

    Raises:
      ValueError: a malformed argument, naming it and what is allowed.
      cimjax.joint.problem.InfeasibleError: a budget or area limit that no design can meet.
    """
    spec = resolve_model(model)
    seed = validation.seed("seed", seed)
    validation.instance("settings", settings, JointSettings)
    validation.callback("progress", progress)
    if not isinstance(checkpoint_dir, str | Path | None):
        raise validation.fail("checkpoint_dir", checkpoint_dir, "allowed: a directory (str or pathlib.Path) or None")
    if not isinstance(resume, bool):
        raise validation.fail("resume", resume, "allowed: True or False")
    problem = make_problem(spec, budget, proxy=proxy, alpha=alpha, area_max=area_max, workload=workload, tech=tech)
    step = (lambda done, total: progress("baseline", done, total)) if progress else None
    with ThreadPoolExecutor(1) as pool:  # the baseline needs only the problem: it runs beside the method
        uniform = pool.submit(uniform_baseline, problem, progress=step)
        start = time.perf_counter()
        report, evaluations = run_method(
            problem, method, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress,
            settings=settings,
        )  # fmt: skip
        wall_s = time.perf_counter() - start
        baseline = uniform.result().report
    report, comparison = compare(problem, report, baseline, tolerance)
    assumptions = [problem.proxy.assumption] if problem.proxy.assumption else []
    return (
        Result(report)
        | comparison
        | {
            "baseline": {k: baseline[k] for k in BASELINE_KEYS},
            "gain": report["tokens_per_s"] / baseline["tokens_per_s"],
            "meta": make_meta(problem.workload, problem.tech, assumptions),
            "method": method,
            "model": spec.id,
            "alpha": problem.alpha,
            "area_max": problem.area_max,
            "budget_label": problem.budget_label,
            "proxy_name": problem.proxy.name,
            "assumption": problem.proxy.assumption,
            "gain_cap": problem.proxy.gain_cap,
            "seed": seed,
            "evaluations": evaluations,
            "wall_s": wall_s,
        }
    )
