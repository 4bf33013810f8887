"""What ``cimjax optimize`` recommends against the best uniform design, and what the optimiser found.

Usage: python benchmarks/optimize_recommendation.py [--models tinyllama-1.1b,qwen2.5-0.5b,...]
       [--budgets int8,int4] [--tolerance 0.01] [--out results/optimize_recommendation]

Runs ``optimize`` at its default settings (alpha = 1, method ``gradient``, no ``--area-max``) for every
model x budget and prints, for the recommended design (docs/results.md, "Which design optimize
recommends"), the optimiser's own design before that rule (``optimiser_design``) and the baseline: tokens/s,
tokens/J and area, with the ratios to the baseline. Writes ``optimize_recommendation.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cimjax import validation
from cimjax.files import output_dir_argument
from cimjax.joint.compare import TOLERANCE
from cimjax.joint.problem import parse_budget
from cimjax.joint.runner import optimize_report
from cimjax.workload.models import resolve_model

MODELS = "tinyllama-1.1b,qwen2.5-0.5b,llama3.2-1b,qwen3-0.6b,qwen2.5-1.5b"
KEYS = ("tokens_per_s", "tokens_per_j", "area_mm2")


def row(model: str, budget: str, tolerance: float) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    report = optimize_report(model, budget, tolerance=tolerance)
    designs = {"ours": report, "optimiser": report["optimiser_design"], "uniform": report["baseline"]}
    return {"model": model, "budget": budget, "chosen": report["chosen"]} | {
        f"{name}_{key}": design[key] for name, design in designs.items() for key in KEYS
    } | {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}  # fmt: skip


def table(rows: list[dict]) -> str:
    def cell(r: dict, name: str) -> str:
        ratios = [r[f"{name}_{k}"] / r[f"uniform_{k}"] for k in KEYS]
        return " | ".join(f"{r[f'{name}_{k}']:.4g} ({x:.3f}x)" for k, x in zip(KEYS, ratios, strict=True))

    head = "| model | budget | chosen | " + " | ".join(
        f"{who} {what}" for who in ("ours", "optimiser's own") for what in ("tok/s", "tok/J", "mm^2")
    ) + " | uniform tok/s | uniform tok/J | uniform mm^2 |"  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        uniform = " | ".join(f"{r[f'uniform_{k}']:.4g}" for k in KEYS)
        lines.append(f"| {r['model']} | {r['budget']} | {r['chosen']} | {cell(r, 'ours')} | {cell(r, 'optimiser')} "
                     f"| {uniform} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--budgets", default="int8,int4")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/optimize_recommendation"))
    args = parser.parse_args()
    models, budgets = args.models.split(","), args.budgets.split(",")
    for model in models:  # every value checked before the first optimisation
        resolve_model(model)
    for budget in budgets:
        parse_budget(budget, lambda width: 1.0, "predicted")  # the label or number; its value comes later
    validation.check_limits(args.tolerance, None)
    rows = []
    for model in models:
        for budget in budgets:
            rows.append(row(model, budget, args.tolerance))
            print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "optimize_recommendation.json").write_text(json.dumps({"tolerance": args.tolerance, "rows": rows},
                                                                      indent=2) + "\n")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    validation.run_script(main)
