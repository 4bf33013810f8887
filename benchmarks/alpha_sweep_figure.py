"""The paper's alpha-sweep figure: GA runs per alpha on LLaMA3.2-3B INT8, with the exact Pareto front over them.

Usage: python benchmarks/alpha_sweep_figure.py [--model llama3.2-3b] [--precision int8] [--runs 5]
       [--alphas 0,0.1,...,1] [--out results/alpha_sweep]

EdgeCIM ran its GA (population 20, 50 generations) five times per alpha and drew the designs found in
the latency-energy plane. Here the whole space is also swept exactly, so the figure shows where the GA
lands relative to the true front, and the summary gives each run's gap to the exact optimum of its alpha.
The GA scores designs with the cost model itself, one batch per generation (as ``cimjax search
--method ga`` does), so its wall times are those of a real GA search.

Writes ``pareto.png`` (the figure), ``ga_gap.png`` (gap per alpha and seed), ``summary.json``,
``pareto.csv``/``pareto.json`` and ``alpha_optima.csv`` to the output directory.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from cimjax.cli.common import parse_alphas
from cimjax.files import output_dir_argument
from cimjax.hardware.technology import default_technology
from cimjax.report.study import sweep_study
from cimjax.validation import run_script
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import resolve_precision

PAPER_ALPHAS = ",".join(f"{a:g}" for a in np.round(np.linspace(0.0, 1.0, 11), 2))
WITHIN = 0.01  # a run "finds the optimum" if within 1% of it


def plot_gaps(path: Path, ga: list[dict], title: str) -> None:
    """Each run's relative gap to the exact optimum, per alpha (a symlog axis keeps exact hits visible)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    seeds = sorted({g["seed"] for g in ga})
    for k, seed in enumerate(seeds):
        runs = [g for g in ga if g["seed"] == seed]
        offset = (k - (len(seeds) - 1) / 2) * 0.008  # side by side, so equal gaps stay distinguishable
        ax.scatter(
            [g["alpha"] + offset for g in runs], [100 * g["gap_to_optimum"] for g in runs], s=14, label=f"seed {seed}"
        )
    ax.axhline(100 * WITHIN, color="grey", lw=0.8, ls="--", label=f"{100 * WITHIN:g}%")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("alpha")
    ax.set_ylabel("GA gap to the exact optimum (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, ncols=3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3.2-3b")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--alphas", default=PAPER_ALPHAS, help="comma-separated alphas in [0, 1]")
    parser.add_argument("--runs", type=int, default=5, help="GA runs (seeds 0..N-1) per alpha")
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/alpha_sweep"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    spec = resolve_model(args.model)
    prec = resolve_precision(args.precision, spec)
    alphas = parse_alphas(args.alphas)
    start = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "ga" and (done % args.runs == 0 or done == total):
            print(f"  GA runs {done}/{total} ({time.perf_counter() - start:.0f} s)", flush=True)

    summary = sweep_study(
        spec, prec, args.precision, Workload(), default_technology(), alphas, args.out,
        ga_runs=args.runs, ga_scoring="model", progress=progress,
    )  # fmt: skip
    ga = summary["ga"]["results"]
    plot_gaps(args.out / "ga_gap.png", ga, f"{spec.name} {args.precision}: {args.runs} GA runs per alpha")

    print(
        f"{spec.name} {args.precision}: {summary['designs']:,} designs swept in {summary['sweep_s']:.1f} s "
        f"(compile {summary['compile_s']:.1f} s), Pareto front {summary['pareto_size']} designs, "
        f"normalised hypervolume {summary['hypervolume']['normalised']:.4f}"
    )
    print(
        f"{'alpha':>5} {'exact tok/s':>11} {'exact tok/J':>11} {'GA gap min':>10} {'median':>8} {'max':>8} {'<1%':>5}"
    )
    for optimum in summary["alpha_optima"]:
        gaps = [g["gap_to_optimum"] for g in ga if g["alpha"] == optimum["alpha"]]
        hits = sum(gap <= WITHIN for gap in gaps)
        print(
            f"{optimum['alpha']:5.2g} {optimum['tokens_per_s']:11.4g} {optimum['tokens_per_j']:11.4g} "
            f"{100 * min(gaps):9.3f}% {100 * statistics.median(gaps):7.3f}% {100 * max(gaps):7.3f}% "
            f"{hits:>2}/{len(gaps)}"
        )
    within = sum(g["gap_to_optimum"] <= WITHIN for g in ga)
    walls = [g["wall_s"] for g in ga]
    print(
        f"GA within {100 * WITHIN:g}% of the exact optimum in {within}/{len(ga)} runs; exact hits "
        f"{sum(g['gap_to_optimum'] <= 1e-12 for g in ga)}/{len(ga)}; median GA run {statistics.median(walls):.2f} s, "
        f"{statistics.median(g['evaluations'] for g in ga):.0f} evaluations (the first run includes compilation)"
    )
    print(f"wrote {', '.join(summary['files'] + [str(args.out / 'ga_gap.png')])}")


if __name__ == "__main__":
    run_script(main)
