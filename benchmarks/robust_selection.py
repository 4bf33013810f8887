"""What the robust selection gives on the reproduction's points, beside the exhaustive optimum and the knee.

Usage: python benchmarks/robust_selection.py [--tolerance 0.01] [--margin 0.25] [--models a,b]
       [--out results/robust_selection]
Per model and INT4/INT8 (default: all 24 points) the paper's space is swept nominally and with the clock
derated by ``--margin`` (docs/model.md, section 9); recorded: the near-tie set (designs within
``--tolerance`` of the best alpha = 1 latency), how many of them stay within it derated and how many
have the widest inter-cluster bus; the exhaustive optimum, knee and robust design (tokens/s, tokens/J,
area, % of the DRAM roofline, design), with the robust design's tokens/s and tokens/J over the
exhaustive optimum's; then the paper's trends (docs/model.md, section 13) for each selection. Writes
robust_selection.json and robust_selection.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.evaluation import design_report
from cimjax.files import atomic_write, output_dir_argument
from cimjax.hardware.config import PAPER_SPACE
from cimjax.hardware.technology import default_technology
from cimjax.report.paper import PRECISIONS, design_label, paper_trends, trends_table
from cimjax.report.selection import (
    DEFAULT_MARGIN,
    DEFAULT_TOLERANCE,
    check_selection,
    derated,
    knee_index,
    near_set,
    robust_index,
    robust_set,
)
from cimjax.results import write_json
from cimjax.search.exhaustive import sweep
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

SELECTED = ("exhaustive", "knee", "robust")


def point(model_id: str, precision: str, tolerance: float, margin: float) -> dict:
    spec, tech, workload = MODELS[model_id], default_technology(), Workload()
    prec = preset(precision, spec.n_layers)
    result = sweep(spec, prec, workload, tech, PAPER_SPACE)
    stressed = sweep(spec, prec, workload, derated(tech, margin), PAPER_SPACE).latency_s
    indices = {
        "exhaustive": result.best(1.0)[0],
        "knee": knee_index(result, tolerance, "energy"),
        "robust": robust_index(result, stressed, tolerance, "energy"),
    }
    row = {"model": model_id, "precision": precision}
    near = near_set(result.latency_s, tolerance)
    row["near_tie_designs"] = int(near.size)
    widest = max(PAPER_SPACE.values["bus_inter_cluster"])  # every stage enters through this one bus
    row["near_tie_widest_inter_cluster_bus"] = int(np.sum(PAPER_SPACE.decode(near).bus_inter_cluster == widest))
    row["robust_designs"] = int(robust_set(result.latency_s, stressed, tolerance).size)
    for name, index in indices.items():
        r = design_report(spec, prec, precision, PAPER_SPACE.decode(index).to_dict(), workload, tech)
        row[name] = {k: r[k] for k in ("tokens_per_s", "tokens_per_j", "area_mm2", "config")}
        row[name]["fraction_of_roofline"] = r["tokens_per_s"] / r["roofline_tokens_per_s"]
        row[name]["derated_latency_over_best"] = float(stressed[index] / stressed[near].min())
    for metric in ("tokens_per_s", "tokens_per_j"):
        row[f"robust_over_exhaustive_{metric}"] = row["robust"][metric] / row["exhaustive"][metric]
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| point | near-tie designs | kept derated | exhaustive tok/s, tok/J, mm^2 | robust tok/s, tok/J, mm^2 | "
        "robust / exhaustive tok/s | tok/J | robust % roofline | robust design | robust = knee |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e, b = r["exhaustive"], r["robust"]
        lines.append(
            f"| {r['model']} {r['precision'].upper()} | {r['near_tie_designs']} | {r['robust_designs']} | "
            f"{e['tokens_per_s']:.1f}, {e['tokens_per_j']:.1f}, {e['area_mm2']:.1f} | "
            f"{b['tokens_per_s']:.1f}, {b['tokens_per_j']:.1f}, {b['area_mm2']:.1f} | "
            f"{r['robust_over_exhaustive_tokens_per_s']:.4f} | {r['robust_over_exhaustive_tokens_per_j']:.4f} | "
            f"{100 * b['fraction_of_roofline']:.1f} | {design_label(b['config'])} | "
            f"{'yes' if b['config'] == r['knee']['config'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/robust_selection"))
    args = parser.parse_args()
    check_selection("robust", "energy", args.tolerance, args.margin)
    models = validation.names("--models", args.models, MODELS)
    start, cpu = time.perf_counter(), time.process_time()
    rows = [point(m, p, args.tolerance, args.margin) for m in models for p in PRECISIONS]
    trends = {name: paper_trends([{"model": r["model"], "precision": r["precision"]} | r[name] for r in rows])
              for name in SELECTED}  # fmt: skip
    timing = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "robust_selection.json", {"tolerance": args.tolerance, "margin": args.margin,
                                                    "rows": rows, "trends": trends, "timing": timing})  # fmt: skip
    text = f"tolerance {args.tolerance:g}, margin {args.margin:g}\n\n{table(rows)}\n"
    for name in SELECTED:
        text += f"\nThe paper's trends, {name}:\n\n{trends_table(trends[name])}\n"
    text += f"\n{timing['wall_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU\n"
    atomic_write(args.out / "robust_selection.md", text)
    print(text)


if __name__ == "__main__":
    validation.run_script(main)
