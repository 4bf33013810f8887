"""What each mechanism switch changes: area band, the paper's trends, the alpha = 0.5 design, residuals.

Usage: python benchmarks/mechanisms.py [--out results/mechanisms.json] [--models id,id,...]
                                      [--switches name,name,...]
For every combination of the technology switches (docs/model.md, section 13), or of those named by
``--switches`` (the others at their shipped values), with every other constant at its shipped value
(no refit): all models x INT4/INT8 swept exhaustively at alpha = 1, the
exhaustive optimum (the row put beside the paper) and the knee taken from each sweep; then the area
band and the paper's four trends for both, the lowest fraction of the DRAM roofline, the calibration
residuals (at the exhaustive optimum), and the paper's alpha = 0.5 design's objective over our
alpha = 0.5 optimum (LLaMA3.2-3B INT8).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.api import evaluate_design
from cimjax.files import output_file_argument
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE
from cimjax.hardware.technology import SWITCHES, default_technology
from cimjax.report.calibration import EFFICIENCY_POINT, PAPER_ALPHA05_AREA_MM2, THROUGHPUT_POINTS
from cimjax.report.paper import ALPHA05_POINT, PRECISIONS, paper_trends
from cimjax.report.selection import knee_index
from cimjax.search.exhaustive import sweep
from cimjax.search.pareto import alpha_objective
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset


def variants(varied: list[str]) -> list[dict]:
    """Every combination of the ``varied`` switches, the others at their shipped values."""
    shipped = {k: int(p.value) for k, p in SWITCHES.items()}
    combinations = itertools.product((0, 1), repeat=len(varied))
    return [shipped | dict(zip(varied, values, strict=True)) for values in combinations]


def name(variant: dict) -> str:
    on = [k for k, v in variant.items() if v]
    return "+".join(on) or "none"


def summarise(points: dict, alpha05: float) -> dict:
    """Figures of one variant from its per-point knee and exhaustive designs."""
    knees = [p["knee"] for p in points.values()]
    best = [p["exhaustive"] for p in points.values()]
    targets = [(m, p, "tokens_per_s", t) for m, p, t in THROUGHPUT_POINTS] + [(*EFFICIENCY_POINT[:2], "tokens_per_j",
                                                                              EFFICIENCY_POINT[2])]  # fmt: skip
    residuals = {
        f"{m} {p} {metric}": points[(m, p)]["exhaustive"][metric] / target - 1
        for m, p, metric, target in targets
        if (m, p) in points
    }
    return {
        "knee_area_mm2": [min(k["area_mm2"] for k in knees), max(k["area_mm2"] for k in knees)],
        "exhaustive_area_mm2": [min(k["area_mm2"] for k in best), max(k["area_mm2"] for k in best)],
        "min_fraction_of_roofline": min(k["fraction_of_roofline"] for k in best),
        "knee_min_fraction_of_roofline": min(k["fraction_of_roofline"] for k in knees),
        "trends": paper_trends(knees),
        "exhaustive_trends": paper_trends(best),
        "calibration_residuals": residuals,
        "alpha05_paper_over_optimum": alpha05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=output_file_argument, default=Path("results/mechanisms.json"))
    parser.add_argument("--models", default=None, help="comma-separated model ids (default: all twelve)")
    parser.add_argument("--switches", default=None, help="comma-separated switches to vary (default: all)")
    args = parser.parse_args()
    varied = list(SWITCHES) if args.switches is None else validation.names("--switches", args.switches, SWITCHES)
    model_ids = list(MODELS) if args.models is None else validation.names("--models", args.models, MODELS)
    start = time.perf_counter()
    workload = Workload()
    base = default_technology()
    techs = {name(v): base.replace(**v) for v in variants(varied)}
    points = {n: {} for n in techs}
    alpha05 = {}
    paper_index = PAPER_SPACE.encode(EDGECIM_ALPHA05_DESIGN)
    for model_id in model_ids:
        spec = MODELS[model_id]
        for precision in PRECISIONS:
            prec = preset(precision, spec.n_layers)
            roofline = evaluate_design(model_id, precision, EDGECIM_ALPHA05_DESIGN)["roofline_tokens_per_s"]
            for variant, tech in techs.items():
                result = sweep(spec, prec, workload, tech)
                designs = {"knee": knee_index(result), "exhaustive": result.best(1.0)[0]}
                points[variant][(model_id, precision)] = {
                    kind: {
                        "model": model_id,
                        "precision": precision,
                        "config": PAPER_SPACE.decode(i).to_dict(),
                        "area_mm2": float(result.area_mm2[i]),
                        "tokens_per_s": workload.generate / float(result.latency_s[i]),
                        "tokens_per_j": workload.generate / float(result.energy_j[i]),
                        "fraction_of_roofline": workload.generate / float(result.latency_s[i]) / roofline,
                    }
                    for kind, i in designs.items()
                }
                if (model_id, precision) == ALPHA05_POINT:
                    objective = np.asarray(alpha_objective(result.latency_s, result.energy_j, 0.5))
                    alpha05[variant] = float(objective[paper_index] / objective.min())
                print(f"{model_id} {precision} {variant}: knee {points[variant][(model_id, precision)]['knee']}",
                      flush=True)  # fmt: skip
    report = {
        "switches": list(SWITCHES),
        "paper_alpha05_area_mm2": PAPER_ALPHA05_AREA_MM2,
        "variants": {v: summarise(points[v], alpha05.get(v)) for v in techs},
        "designs": {v: [p["knee"] for p in points[v].values()] for v in techs},
        "wall_s": time.perf_counter() - start,
    }
    print(json.dumps(report["variants"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    validation.run_script(main)
