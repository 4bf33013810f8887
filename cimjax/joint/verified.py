"""Joint optimisation of a real checkpoint in measured units, verified by applying the bits for real.

With weights, a budget means what uniform precision *measures*: ``int8`` is the loss increase (``target``
``loss``) or the mean per-token KL divergence from full precision (``target`` ``kl``) of uniform W=A=KV
INT8 on the check windows (:class:`cimjax.quant.measured.Measured`), and a number is a measured value of
the target in nats/token. The proxy (:func:`cimjax.quant.proxy.optimizer_proxy`, fitted on the target:
``interaction`` or, with measured pairs, ``pairwise``) only steers the search. With ``verify`` the final
assignment is fake-quantised and its target measured on the same windows; if it exceeds the budget the
round is corrected and the problem solved again (at most ``max_rounds`` rounds):

1. the proxy is refitted with every measurement made so far (fitted variants only), and
2. the proxy budget is tightened by the measured excess, or by what the refitted proxy ``proxy'`` still
   under-predicts at the failed assignment if that is more,
   ``B_p <- max(min(B_p B / measured(b), B proxy'(b) / measured(b)), 1.001 proxy'(b_max))``
   (``B`` the measured budget, ``b_max`` every entry at its highest bits: the budget stays reachable).

After a design measured within the budget, the remaining rounds bisect (geometrically) between the largest
passing and the smallest failing proxy budget, until they are within 10 % (:func:`verify_rounds`). A
design measured within the budget before any failure, with more than 2 % of it to spare, loosens the
proxy budget by the measured slack instead, ``B_p <- B_p B / measured(b)`` (the proxy over-predicted).
Then the best design measured within the budget (or a faster one measured at most 5 % over it, once a
measured repair brings it within) is refined by measured single-bit reductions (:mod:`cimjax.joint.refine`).

The design reported is the best (by the objective) among the rounds' designs measured within the budget, or
the uniform baseline (measured within it by construction) when it is better or no round's design was within;
``verified`` is true only for a measured design within the budget. Without ``verify`` nothing is measured and
``verified`` is false. The uniform baseline is the smallest uniform width whose *measured* target meets the
budget, on its best hardware.

*Iso-area search*: without an area limit, when optimize's rule (:func:`cimjax.joint.compare.choose`) moves
the design to a smaller chip than the optimiser's own, its bits were chosen for silicon the rule did not
allow. The whole verified search (rounds, refinement) then runs again with the baseline's area as the limit,
and the same rule (area must pay) chooses among the baseline, the first search's pick and the iso-area
search's pick (each at its best admissible hardware). Its proxy starts refitted with the first search's
failed measurements (:func:`cimjax.joint.iso_area.seeded`). Every design it can return was measured within the
budget, or is the baseline.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple

import numpy as np

import cimjax.joint.evolve as evolution
import cimjax.joint.iso_area as iso_area
import cimjax.validation as validation
from cimjax.hardware.technology import Technology
from cimjax.joint.baselines import uniform_front
from cimjax.joint.compare import TOLERANCE, compare, objective_note
from cimjax.joint.methods import Progress
from cimjax.joint.problem import InfeasibleError, make_problem, parse_budget, proxy_values
from cimjax.joint.refine import MEASUREMENTS as REFINE_MEASUREMENTS
from cimjax.joint.refine import refine_measured, repair_measured
from cimjax.joint.runner import run_method
from cimjax.joint.settings import JointSettings
from cimjax.lm.model import DecoderLM
from cimjax.quant.measured import UNIFORM_WIDTHS, Measured, check_target, loss_and_kl
from cimjax.quant.pairs import Pairs
from cimjax.quant.proxy import OPTIMIZER_PROXY, optimizer_proxy
from cimjax.results import BASELINE_KEYS, Result, make_meta
from cimjax.search.pareto import alpha_objective
from cimjax.workload.precision import table_from_bits

MAX_ROUNDS = 5
BISECT_STOP = 1.1  # stop once the failing and the passing proxy budgets are within 10 %
LOOSEN_MIN = 1.02  # a first passing design measured this far below the budget loosens the proxy budget
REPAIR_MARGIN = 1.05  # a faster design measured at most this far over the budget is repaired by measurement
MEASURED_SEARCH = ("kl",)
"""Targets whose measurement steers the search (loosening, refinement) by default. Not ``loss``: a loss
increase at INT8/INT6 is a difference of two noisy means, and choosing among many measured assignments
picks noise (on the byte LM the loss-target refinement returned designs within the check windows' INT8
budget whose loss increase on held-out windows was 4.6x uniform INT8's and whose KL 5.9x: docs/joint.md)."""


def measured_budget(measured: Measured, budget: str | float, target: str = "loss") -> tuple[float, str]:
    """A budget in measured nats/token of ``target``: ``int8``/``int6``/``int4`` (the measured loss increase or
    KL divergence of that uniform width) or a number."""
    uniform_values = measured.uniform(target)

    def uniform(width: int) -> float:
        value = uniform_values[width]
        if value <= 0:
            raise ValueError(
                f"budget int{width}: uniform INT{width} measured a {target} increase of {value:.3g} <= 0 nats/token "
                "on the check windows (below the measurement noise); use more check windows, --target kl, or give "
                "a positive number"
            )
        return value

    return parse_budget(budget, uniform, f"measured {target}")


def _uniform_width(measured: Measured, budget: float, target: str) -> int | None:
    """The smallest uniform width whose measured ``target`` meets ``budget``."""
    return next((b for b in UNIFORM_WIDTHS if measured.uniform(target)[b] <= budget), None)


def verify_rounds(measure, solve, fit, budget: float, max_rounds: int, say, loosen: bool = False) -> tuple:
    """The verify loop: solve at the current proxy budget, measure the design, correct the budget.

    Args:
      measure: ``table -> {"loss": ..., "kl": ...}`` (measured values of an assignment), or None (no
        verification: one round, nothing measured).
      solve: ``(proxy_budget, proxy) -> (problem, report, evaluations)``.
      fit: ``(tables, values) -> proxy``: the proxy refitted with the assignments measured so far (``fit([],
        [])`` is the starting proxy).
      budget: the measured budget, in the units of the ``"value"`` that ``measure`` reports.
      loosen: whether a first passing design with slack loosens the proxy budget (KL target only).

    Returns the per-round history, the candidates ``(problem, report, measured dict or None)`` and the
    evaluations spent.
    """
    fit_tables, fit_values = [], []
    proxy = fit(fit_tables, fit_values)
    proxy_budget = budget
    failed_at = math.inf  # the smallest proxy budget whose design measured over the budget
    history, candidates, evaluations = [], [], 0
    for round_no in range(1, (max_rounds if measure else 1) + 1):
        try:
            problem, report, n = solve(proxy_budget, proxy)
        except InfeasibleError:
            if not candidates:
                raise
            say(f"round {round_no}: the corrected proxy budget {proxy_budget:.4g} cannot be met; stopping")
            break
        evaluations += n
        table = table_from_bits(report["bits"])
        entry = {"round": round_no, "proxy_budget": proxy_budget, "proxy": report["proxy"],
                 "tokens_per_s": report["tokens_per_s"], "measured_loss": None, "measured_kl": None}  # fmt: skip
        history.append(entry)
        candidates.append((problem, report, None))
        if measure is None:
            break
        values = measure(table)
        entry |= {"measured_loss": values["loss"], "measured_kl": values["kl"]}
        candidates[-1] = (problem, report, values)
        value = values["value"]
        say(f"round {round_no}: proxy {report['proxy']:.4g}, measured {value:.4g}, budget {budget:.4g} nats/token")
        if value <= budget:
            if not math.isfinite(failed_at):  # nothing failed yet: loosen by the measured slack, if worth it
                if not loosen or value <= 0 or budget < LOOSEN_MIN * value:
                    break
                proxy_budget *= budget / value
                continue
            if failed_at / proxy_budget < BISECT_STOP:
                break
            proxy_budget = math.sqrt(proxy_budget * failed_at)  # a passing design: try between it and the failure
            continue
        failed_at = min(failed_at, proxy_budget)
        fit_tables.append(table)
        fit_values.append(value)
        proxy = fit(fit_tables, fit_values)
        predicted, lowest = proxy_values(proxy, np.stack([table, problem.max_table()]))
        # Tighten by the measured excess, or by what the refitted proxy still under-predicts here if that is
        # more, but never below the lowest proxy any assignment reaches (the budget stays reachable).
        proxy_budget = float(max(min(proxy_budget * budget / value, budget * predicted / value), lowest * (1 + 1e-3)))
        passed = [h["proxy_budget"] for h, c in zip(history, candidates, strict=True)
                  if c[2] is not None and c[2]["value"] <= budget]  # fmt: skip
        if passed:  # between the largest passing budget and this failure
            if failed_at / max(passed) < BISECT_STOP:
                break
            proxy_budget = math.sqrt(max(passed) * failed_at)
    return history, candidates, evaluations


def _objective(candidate: tuple) -> float:
    """The alpha objective of a candidate ``(problem, report, measured values)``."""
    problem, report, _ = candidate
    return float(alpha_objective(report["latency_s"], report["energy_j"], problem.alpha))


def _within(candidates: list, budget: float) -> list:
    """The candidates measured within ``budget``."""
    return [c for c in candidates if c[2] is not None and c[2]["value"] <= budget]


def _refine(candidates: list, budget: float, measure_many, limit: int, say) -> dict | None:
    """Refines the fastest design measured within the budget, or, if one measured at most
    :data:`REPAIR_MARGIN` over it is faster, that one once a measured repair brings it within
    (:mod:`cimjax.joint.refine`); appends the result to ``candidates`` and returns the refinement's summary
    (``repaired``: whether it started from a repaired design), or None when no design qualifies."""
    near, within = _within(candidates, REPAIR_MARGIN * budget), _within(candidates, budget)
    if not near:
        return None
    start, spent, repaired = min(within, key=_objective) if within else None, 0, False
    fastest = min(near, key=_objective)
    if fastest[2]["value"] > budget:
        report, values, spent = repair_measured(fastest[0], fastest[1], fastest[2], budget, measure_many, limit // 2,
                                                say)  # fmt: skip
        if report is not None:
            start, repaired = (fastest[0], report, values), True
    if start is None:
        return None
    report, values, info = refine_measured(start[0], start[1], start[2], budget, measure_many, limit - spent, say)
    candidates.append((start[0], report, values))
    return info | {"measured": info["measured"] + spent, "repaired": repaired}


def _against_uniform(measured, budget, target, candidates, verify, tolerance) -> tuple:
    """The best candidate measured within the budget (else the last one), compared with the measured
    uniform baseline: returns its problem, the design reported, its measured values (or None) and the
    comparison's keys."""
    within = _within(candidates, budget)
    problem, report, values = min(within or candidates[-1:], key=_objective)
    width = _uniform_width(measured, budget, target)
    extras: dict = {"baseline": None, "gain": None, "objective_note": objective_note(problem.alpha, problem.area_max)}
    if width is None:
        return problem, report, values, extras
    base = uniform_front(problem, [width])[0].report
    base = base | {"feasible": True}  # measured within the budget (its proxy is not what counts here)
    if verify and not within:  # no optimised design measured within: the uniform one is returned
        report = report | {"feasible": False}
    chosen, comparison = compare(problem, report, base, tolerance)
    uniform = {"loss": measured.uniform_loss[width], "kl": measured.uniform_kl[width]}
    if chosen is base:  # the measured-within-budget uniform design: it is what we return
        values = uniform | {"value": uniform[target]}
    report = chosen  # else the optimised bits (as measured) on the hardware compare() recommends
    baseline = {k: base[k] for k in BASELINE_KEYS}
    extras = comparison | {
        "baseline": baseline | {"width": width, "measured_loss": uniform["loss"], "measured_kl": uniform["kl"]},
        "gain": report["tokens_per_s"] / base["tokens_per_s"],
    }
    return problem, report, values, extras


class _Searched(NamedTuple):
    """One verified search: the rounds' history, candidates and evaluations, and the refinement's summary."""

    history: list
    candidates: list
    evaluations: int
    refined: dict | None


def _search(solve, *, fit, measure_many, budget: float, max_rounds: int, refine: int, say, loosen: bool):
    """The verify rounds (:func:`verify_rounds`) then, when measuring, the refinement (:func:`_refine`)."""
    measure = None if measure_many is None else (lambda table: measure_many(table[None])[0])
    history, candidates, evaluations = verify_rounds(measure, solve, fit, budget, max_rounds, say, loosen=loosen)
    refined = _refine(candidates, budget, measure_many, refine, say) if measure and refine > 0 else None
    return _Searched(history, candidates, evaluations, refined)


def _check_arguments(verify, model, max_rounds, target, refine, evolve, pairs, log, settings) -> None:
    """:func:`optimize_measured`'s checks of its arguments (the command line's limits), before anything is
    measured: a value no run could use is refused by name, not ignored or met deep inside a run."""
    if not isinstance(verify, bool):
        raise validation.fail("verify", verify, "allowed: True or False")
    if verify and model is None:
        raise ValueError("--verify needs the weights: give --checkpoint DIR (a sensitivities file alone has none)")
    validation.count("max_rounds", max_rounds, 1, validation.MAX_VERIFY_ROUNDS)
    if refine is not None:
        validation.count("refine", refine, 0, validation.MAX_REFINE)
    validation.count("evolve", evolve, 0, validation.MAX_EVOLVE)
    validation.instance("pairs", pairs, Pairs)
    validation.instance("settings", settings, JointSettings)
    validation.callback("log", log, "each progress message")
    check_target(target)


def optimize_measured(
    measured: Measured,
    budget: str | float,
    *,
    model: DecoderLM | None = None,
    verify: bool = False,
    max_rounds: int = MAX_ROUNDS,
    alpha: float = 1.0,
    area_max: float | None = None,
    method: str = "gradient",
    seed: int = 0,
    tech: Technology | None = None,
    settings: JointSettings | None = None,
    progress: Progress | None = None,
    tolerance: float = TOLERANCE,
    target: str = "loss",
    refine: int | None = None,
    evolve: int = 0,
    proxy: str = OPTIMIZER_PROXY,
    pairs: Pairs | None = None,
    log=None,
) -> dict:
    """Optimises a checkpoint's bits and hardware against its measured budget; the JSON of ``optimize``.

    Adds to :func:`cimjax.joint.runner.optimize_report`'s keys: ``measured_budget`` (in ``target`` units),
    ``measured_loss`` (null without ``verify``), ``verified``, ``rounds`` and ``verify_history`` (one entry
    per round: proxy budget, proxy, measured loss and KL, tokens/s), ``verify_wall_s``, ``calibration``,
    ``checkpoint_hash``, ``target``, ``measured_kl``, ``refine``, ``scheme`` (the quantiser of every
    measurement), ``iso_area`` (:func:`cimjax.joint.iso_area.summary`), ``evolve`` and ``pairs`` (the measured pairs
    of ``pairwise``: set, width, CPU seconds, 0 when cached), each null unless it ran or was used;
    ``baseline`` gains its ``measured_loss``, ``measured_kl`` and ``width``. ``rounds``, ``verify_history``
    and ``refine`` are the first (unlimited) search's; ``optimiser_design`` is its optimiser's own design.

    Args:
      target: what the budget, the proxy and the verification measure: ``loss`` (loss increase) or ``kl``
        (mean per-token KL divergence from the full-precision model), both nats/token on the check windows.
      refine: with ``verify``, at most this many assignments measured by the refinement of the best design
        measured within the budget (:func:`cimjax.joint.refine.refine_measured`; 0: none). Its summary is
        ``refine`` in the JSON (null when it did not run). Default: :data:`REFINE_MEASUREMENTS` for the
        ``kl`` target, 0 for ``loss`` (see :data:`MEASURED_SEARCH`).
      evolve: with ``verify``, most assignments measured by the evolutionary search from the recommended design
        (:func:`cimjax.joint.evolve.with_evolution`; 0: off); its summary is ``evolve`` (null: it did not run).
      proxy, pairs: the variant that steers the search (:data:`cimjax.quant.proxy.OPTIMIZER_VARIANTS`) and the
        measured pairs ``pairwise`` needs (:func:`cimjax.quant.pairs.of_checkpoint`).

    Raises:
      ValueError: a malformed argument, or ``verify`` without a model.
      InfeasibleError: no design can meet the request.
    """
    _check_arguments(verify, model, max_rounds, target, refine, evolve, pairs, log, settings)
    spec = measured.spec
    limit, label = measured_budget(measured, budget, target)

    def solve(proxy_budget: float, proxy, area: float | None) -> tuple:
        problem = make_problem(spec, proxy_budget, proxy=proxy, alpha=alpha, area_max=area, tech=tech)
        report, n = run_method(problem, method, seed=seed, progress=progress, settings=settings)
        return problem, report, n

    fit = _fitter(measured, target, proxy, pairs)
    measure_many, prepared = _measurer(measured, model, target) if verify else (None, None)
    start, say = time.perf_counter(), log or (lambda msg: None)
    refine = (REFINE_MEASUREMENTS if target in MEASURED_SEARCH else 0) if refine is None else refine
    loosen = target in MEASURED_SEARCH
    search = functools.partial(_search, fit=fit, measure_many=measure_many, budget=limit,
                               max_rounds=max_rounds, refine=refine, say=say, loosen=loosen)  # fmt: skip
    first = search(lambda b, proxy: solve(b, proxy, area_max))
    found, iso = _against_uniform(measured, limit, target, first.candidates, verify, tolerance), None
    if verify and area_max is None and iso_area.moved_down(found):
        seeded = iso_area.seeded(fit, first.candidates, limit)
        found, iso = iso_area.with_iso_area(
            found,
            lambda area: search(lambda b, proxy: solve(b, proxy, area), fit=seeded),
            lambda candidates: _against_uniform(measured, limit, target, candidates, verify, tolerance),
            *(limit, tolerance, say),
        )
    found, evolved = _evolution(found, measured, prepared, measure_many, (limit, target, tolerance), evolve, seed, say)
    problem, report, values, extras = found
    evaluations = first.evaluations + (0 if iso is None else iso["evaluations"])
    verify_wall = time.perf_counter() - start
    calibration = measured.calibration.describe(spec.vocab, measured.scheme.gptq)
    note = f"accuracy measured on {calibration}; weight scales: {measured.scheme.weight.clip} (docs/quantisation.md)"
    return (
        Result(report)
        | extras
        | {
            "meta": make_meta(problem.workload, problem.tech, [note]),
            "method": method,
            "model": spec.id,
            "alpha": problem.alpha,
            "area_max": problem.area_max,
            "budget_label": label,
            "proxy_name": problem.proxy.name,
            "assumption": None,
            "seed": seed,
            "evaluations": evaluations,
            "wall_s": verify_wall,
        }
        | _measured_keys(measured, limit, target, first, values, verify_wall, calibration)
        | {"iso_area": iso, "evolve": evolved, "pairs": _pairs_json(pairs)}
    )


def _fitter(measured: Measured, target: str, variant: str, pairs: Pairs | None):
    """``fit(tables, values)``: the ``variant`` proxy fitted on the checkpoint's fit set and the assignments
    measured since (:func:`cimjax.quant.proxy.optimizer_proxy`)."""
    coefficients = None if pairs is None else pairs.coefficients()

    def fit(tables: list, values: list):
        shape = (-1, *measured.joint_tables.shape[1:])
        all_tables = np.concatenate([measured.joint_tables, np.reshape(np.asarray(tables, float), shape)])
        all_values = np.concatenate([measured.joint(target), np.asarray(values, float)])
        return optimizer_proxy(measured.sens, all_tables, all_values, target, variant, coefficients)

    return fit


def _pairs_json(pairs: Pairs | None) -> dict | None:
    """The JSON ``pairs``: the measured pairs' set, reference width and CPU seconds (0 when read from the cache)."""
    return None if pairs is None else {"pair_set": pairs.pair_set, "width": pairs.width, "cpu_s": pairs.cpu_seconds}


def _evolution(found: tuple, measured: Measured, model, measure_many, budget: tuple, limit: int, seed: int, say):
    """``found`` after the evolutionary search (:func:`cimjax.joint.evolve.with_evolution` on ``model``, prepared
    as the quantiser sees it, at most ``limit`` assignments measured; ``budget``: the measured budget, target and
    tolerance), and its JSON ``evolve``; found unchanged and None when it does not run (``limit`` 0, or nothing
    is measured: ``measure_many`` None)."""
    if measure_many is None or limit == 0:
        return found, None
    limit_value, target, tolerance = budget
    return evolution.with_evolution(
        found, measured=measured, select=evolution.selector(measured, model, target), check=measure_many,
        budget=limit_value, target=target, limit=limit, seed=seed, say=say,
        against_uniform=lambda candidates: _against_uniform(measured, limit_value, target, candidates, True, tolerance),
    )  # fmt: skip


def _measurer(measured: Measured, model: DecoderLM, target: str):
    """``(measure_many, prepared)``: ``measure_many(tables) -> [{"loss", "kl", "value"}]`` fake-quantises and
    measures assignments on the check windows (``value`` in ``target`` units) on ``prepared``, the model as the
    checkpoint's quantiser sees it (:meth:`Measured.model`: smoothed, holding GPTQ's copies, or as loaded),
    prepared once here for every measurement of the run (GPTQ's copies cost ~15 CPU-s on the byte LM)."""
    windows, model = measured.calibration.check_tokens(), measured.model(model)

    def measure_many(tables) -> list[dict]:
        loss, kl, _ = loss_and_kl(model, windows, np.asarray(tables), measured.scheme)
        return [{"loss": float(a), "kl": float(b), "value": float({"loss": a, "kl": b}[target])} for a, b in
                zip(loss, kl, strict=True)]  # fmt: skip

    return measure_many, model


def _measured_keys(measured: Measured, limit: float, target: str, first: _Searched, values, wall: float,
                   calibration: str) -> dict:  # fmt: skip
    """:func:`optimize_measured`'s keys of the measurement, in their declared order: the budget, the reported
    design's measured values (``values``, None when nothing was measured), the first search's rounds and
    refinement, the windows (``calibration``) and the quantiser."""
    return {
        "measured_budget": limit,
        "measured_loss": None if values is None else values["loss"],
        "verified": values is not None and values["value"] <= limit,
        "rounds": len(first.history),
        "verify_history": first.history,
        "verify_wall_s": wall,
        "calibration": calibration,
        "checkpoint_hash": measured.checkpoint_hash,
        "target": target,
        "measured_kl": None if values is None else values["kl"],
        "refine": first.refined,
        "scheme": dataclasses.asdict(measured.scheme),
    }
