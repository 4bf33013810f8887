"""Fitting the three free constants to EdgeCIM's calibration points, and only to those.

The calibration points (docs/edgecim.md) and the constant each one fixes, in this order:

1. the area of the paper's alpha = 0.5 design for LLaMA3.2-3B INT8 (about 11.83 mm^2)
   -> ``pe_area_mm2`` (area is linear in it: closed form);
2. the alpha = 1 throughputs of LLaMA3.2-1B INT4 (400 tokens/s) and LLaMA3.2-3B INT4 (139.3 tokens/s)
   -> ``dram_efficiency`` (least squares on log throughput; latency does not depend on 1 or 3);
3. LLaMA3.2-1B INT4 alpha = 1 efficiency (181 tokens/J) -> ``dram_energy_per_bit`` (energy is affine
   in it: closed form).

The alpha = 1 points are compared at the design put beside the paper
(:func:`cimjax.report.selection.selected_index`, default selection). Every design streams the same DRAM
bits, so the DRAM energy adds the same amount to every design and the selection does not depend on
``dram_energy_per_bit``: fitting it last, in closed form, leaves the selected design unchanged.

The alpha = 0.5 design itself is not fitted: the report says how far our optimum is from it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from cimjax.cost.model import evaluate
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE, HardwareConfig
from cimjax.hardware.technology import Technology
from cimjax.report.selection import selected_index
from cimjax.search.exhaustive import sweep
from cimjax.search.pareto import alpha_objective
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

PAPER_ALPHA05_AREA_MM2 = 11.83
THROUGHPUT_POINTS = (("llama3.2-1b", "int4", 400.0), ("llama3.2-3b", "int4", 139.3))
EFFICIENCY_POINT = ("llama3.2-1b", "int4", 181.0)


def _sweep(model_id: str, precision: str, tech: Technology, workload: Workload):
    spec = MODELS[model_id]
    return sweep(spec, preset(precision, spec.n_layers), workload, tech)


def selected_design(model_id: str, precision: str, tech: Technology, workload: Workload) -> tuple[int, object]:
    """Flat index of the alpha = 1 design put beside the paper (the default selection), and the sweep."""
    result = _sweep(model_id, precision, tech, workload)
    return selected_index(result), result


def fit_pe_area(tech: Technology) -> float:
    """pe_area_mm2 giving the paper's alpha = 0.5 design its reported area."""
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    spec = MODELS["llama3.2-3b"]
    prec = preset("int8", spec.n_layers)

    def area(a_pe):
        return float(evaluate(hw, prec, spec, Workload(), tech.replace(pe_area_mm2=a_pe)).area_mm2)

    slope = area(2.0) - area(1.0)  # area is affine in the PE area
    return 1.0 + (PAPER_ALPHA05_AREA_MM2 - area(1.0)) / slope


def fit_dram_efficiency(tech: Technology, workload: Workload) -> float:
    """dram_efficiency minimising the squared log error of the two alpha = 1 throughputs."""

    def loss(eta):
        t = tech.replace(dram_efficiency=eta)
        err = 0.0
        for model_id, precision, target in THROUGHPUT_POINTS:
            best, result = selected_design(model_id, precision, t, workload)
            err += math.log(workload.generate / result.latency_s[best] / target) ** 2
        return err

    return float(minimize_scalar(loss, bounds=(0.5, 1.0), method="bounded", options={"xatol": 1e-5}).x)


def fit_dram_energy(tech: Technology, workload: Workload) -> float:
    """dram_energy_per_bit giving the selected alpha = 1 LLaMA3.2-1B INT4 design the reported tokens/J."""
    model_id, precision, target = EFFICIENCY_POINT
    best, _ = selected_design(model_id, precision, tech, workload)
    hw = PAPER_SPACE.decode(best)
    spec = MODELS[model_id]
    costs = evaluate(hw, preset(precision, spec.n_layers), spec, workload, tech.replace(dram_energy_per_bit=1e-12))
    other = float(costs.energy_j) - float(costs.decode.energy_by_component["dram"])
    dram_bits = float(costs.decode.dram_bits)
    return (workload.generate / target - other) / dram_bits


def calibrate(tech: Technology, workload: Workload | None = None) -> tuple[Technology, dict]:
    """Fits the three constants in order; returns the fitted technology and a residual report."""
    workload = workload or Workload()
    tech = tech.replace(pe_area_mm2=fit_pe_area(tech))
    tech = tech.replace(dram_efficiency=fit_dram_efficiency(tech, workload))
    energy = fit_dram_energy(tech, workload)
    if energy <= 0:
        raise ValueError(
            "calibration failed: the on-chip energy alone exceeds the 181 tokens/J point "
            f"(fitted DRAM energy {energy:.3g} J/bit); revisit the on-chip energy assumptions"
        )
    tech = tech.replace(dram_energy_per_bit=energy)
    return tech, calibration_report(tech, workload)


def calibration_report(tech: Technology, workload: Workload | None = None) -> dict:
    """Model vs every calibration point for a technology (fitted or not)."""
    workload = workload or Workload()
    fitted = {k: tech.to_dict()[k] for k in ("pe_area_mm2", "dram_efficiency", "dram_energy_per_bit")}
    points = []
    for model_id, precision, target in THROUGHPUT_POINTS:
        best, result = selected_design(model_id, precision, tech, workload)
        tps = workload.generate / result.latency_s[best]
        record = {"point": f"{model_id} {precision} alpha=1 tokens/s", "target": target, "model": tps}
        points.append(record)
        if (model_id, precision) == EFFICIENCY_POINT[:2]:
            tpj = workload.generate / result.energy_j[best]
            points.append(
                {
                    "point": f"{model_id} {precision} alpha=1 tokens/J",
                    "target": EFFICIENCY_POINT[2],
                    "model": tpj,
                }
            )
    spec = MODELS["llama3.2-3b"]
    prec = preset("int8", spec.n_layers)
    paper_hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    paper = evaluate(paper_hw, prec, spec, workload, tech)
    points.append(
        {
            "point": "paper alpha=0.5 design area mm^2",
            "target": PAPER_ALPHA05_AREA_MM2,
            "model": float(paper.area_mm2),
        }
    )
    for p in points:
        p["residual"] = p["model"] / p["target"] - 1.0

    result = sweep(spec, prec, workload, tech)
    best, objective = result.best(0.5)
    objectives = np.asarray(alpha_objective(result.latency_s, result.energy_j, 0.5))
    paper_objective = objectives[PAPER_SPACE.encode(EDGECIM_ALPHA05_DESIGN)]
    ours = PAPER_SPACE.decode(best).to_dict()
    return {
        "fitted": fitted,
        "points": points,
        "alpha05_llama3.2-3b_int8": {
            "paper_design": EDGECIM_ALPHA05_DESIGN,
            "model_optimum": ours,
            "fields_matching": [k for k in ours if ours[k] == EDGECIM_ALPHA05_DESIGN[k]],
            "objective_of_paper_design_over_optimum": float(paper_objective / objective),
            "rank_of_paper_design": int(np.sum(objectives < paper_objective)),
        },
    }
