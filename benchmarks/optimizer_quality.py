"""Optimiser quality: the GA (the paper's) and gradient search against the exhaustive optimum.

Usage: python benchmarks/optimizer_quality.py [--models all|id,id] [--precisions int4,int8]
       [--alphas 0,0.25,0.5,0.75,1] [--seeds 5] [--out results/optimizer_quality]

For every model x precision the whole space is swept once exactly (the ground truth for every alpha);
then each method runs once per alpha and seed. The gap is objective / exact optimum - 1 (both exact).
Writes cases.csv/json (one row per run), summary.json and gap.png, and prints the summary: the share of
runs within 1% of the optimum and the median wall time and evaluation count per method.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cimjax import validation  # noqa: E402
from cimjax.cli.common import parse_alphas  # noqa: E402
from cimjax.files import output_dir_argument
from cimjax.hardware.config import PAPER_SPACE  # noqa: E402
from cimjax.hardware.technology import default_technology  # noqa: E402
from cimjax.search.exhaustive import sweep  # noqa: E402
from cimjax.search.gradient import gradient_search  # noqa: E402
from cimjax.search.pareto import alpha_objective  # noqa: E402
from cimjax.workload.models import MODELS  # noqa: E402
from cimjax.workload.operators import Workload  # noqa: E402
from cimjax.workload.precision import parse_precision, preset  # noqa: E402


def ga_row(spec, prec, workload, tech, alpha, seed) -> dict:
    from cimjax.search.ga import ga_objective, run_ga  # pymoo only when the GA runs (absent on some GPU images)

    start = time.perf_counter()
    ga = run_ga(ga_objective(spec, prec, workload, tech, PAPER_SPACE, alpha, batch=20), PAPER_SPACE, seed=seed)
    wall = time.perf_counter() - start
    index = int(np.ravel_multi_index(ga.best_choice, PAPER_SPACE.radices))  # flat index, last field fastest
    return {"method": "ga", "index": index, "wall_s": wall, "evaluations": ga.evaluations}


def gradient_row(spec, prec, workload, tech, alpha, seed) -> dict:
    grad = gradient_search(spec, prec, workload, tech, alpha, seed=seed)
    return {
        "method": "gradient",
        "index": PAPER_SPACE.encode(grad.best_config),
        "wall_s": grad.wall_s,
        "evaluations": grad.evaluations,
        "gradient_steps": grad.gradient_steps * grad.starts,
    }


METHODS = {"ga": ga_row, "gradient": gradient_row}


def run_case(spec, precision, alphas, seeds, tech, workload, methods) -> list[dict]:
    """One exhaustive sweep (the truth for every alpha), then every method x alpha x seed."""
    prec = preset(precision, spec.n_layers)
    truth = sweep(spec, prec, workload, tech)
    rows = []
    for alpha in alphas:
        _, optimum = truth.best(alpha)
        for method in methods:
            for seed in range(seeds):
                row = METHODS[method](spec, prec, workload, tech, alpha, seed)
                found = float(alpha_objective(truth.latency_s[row["index"]], truth.energy_j[row["index"]], alpha))
                rows.append(
                    {"model": spec.id, "precision": precision, "alpha": alpha, "seed": seed}
                    | row
                    | {"gap": found / optimum - 1.0}
                )
    return rows


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for method in sorted({r["method"] for r in rows}):
        mine = [r for r in rows if r["method"] == method]
        gaps = np.array([r["gap"] for r in mine])
        summary[method] = {
            "runs": len(mine),
            "share_within_1pct": float(np.mean(gaps <= 0.01)),
            "share_exact": float(np.mean(gaps <= 1e-9)),
            "median_gap": float(np.median(gaps)),
            "max_gap": float(gaps.max()),
            "median_wall_s": statistics.median(r["wall_s"] for r in mine),
            "median_exact_evaluations": statistics.median(r["evaluations"] for r in mine),
        }
    return summary


def plot(rows: list[dict], path: Path) -> None:
    methods = sorted({r["method"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, method in enumerate(methods):
        gaps = np.array([r["gap"] for r in rows if r["method"] == method]) * 100
        x = np.full(len(gaps), k) + np.random.default_rng(0).uniform(-0.2, 0.2, len(gaps))
        ax.scatter(x, np.maximum(gaps, 1e-4), s=8, alpha=0.5, label=method)
    ax.axhline(1.0, color="red", linestyle="--", label="1% gap")
    ax.set_yscale("log")
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("gap to the exhaustive optimum (%) (0 drawn at 1e-4)")
    ax.set_title("Optimiser quality over models x precisions x alphas x seeds", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all")
    parser.add_argument("--precisions", default="int4,int8")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default="ga,gradient", help="comma-separated: ga, gradient")
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/optimizer_quality"))
    args = parser.parse_args()
    model_ids = list(MODELS) if args.models == "all" else validation.names("--models", args.models, MODELS)
    precisions = args.precisions.split(",")
    for precision in precisions:
        parse_precision(precision)
    alphas = parse_alphas(args.alphas)
    validation.integer("--seeds", args.seeds, 1)
    methods = validation.names("--methods", args.methods, METHODS)
    tech, workload = default_technology(), Workload()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    start = time.perf_counter()
    for model_id in model_ids:
        for precision in precisions:
            rows += run_case(MODELS[model_id], precision, alphas, args.seeds, tech, workload, methods)
            shares = {m: round(s["share_within_1pct"], 3) for m, s in summarise(rows).items()}
            print(f"{model_id} {precision}: share within 1% so far {shares}", flush=True)
    summary = {"device": str(jax.devices()[0]), "wall_s": time.perf_counter() - start, "methods": summarise(rows)}
    (args.out / "cases.json").write_text(json.dumps(rows, indent=1))
    with open(args.out / "cases.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(rows, args.out / "gap.png")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    validation.run_script(main)
