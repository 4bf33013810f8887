"""Reproduce the EdgeCIM paper's per-model results (same as `cimjax reproduce --out DIR`).

Usage: python benchmarks/reproduce_edgecim.py [--out results/reproduce] [--models id,id,...]
       [--selection exhaustive|knee] [--tolerance 0.01] [--knee energy|area] [--ga-seeds 5]
Prints the tables (knee rows, exhaustive optimum and GA), the ratios to the published devices, the
alpha = 0.5 comparison and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cimjax.files import output_dir_argument
from cimjax.report.paper import reproduce_paper
from cimjax.validation import run_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/reproduce"))
    parser.add_argument("--models", default=None, help="comma-separated model ids (default: all twelve)")
    parser.add_argument("--selection", default="exhaustive", help="row beside the paper: exhaustive or knee")
    parser.add_argument("--tolerance", type=float, default=0.01, help="knee: fraction of the best throughput")
    parser.add_argument("--knee", default="energy", help="knee: lowest 'energy' or 'area' within the tolerance")
    parser.add_argument("--ga-seeds", type=int, default=5, help="runs of the paper's GA")
    args = parser.parse_args()
    start = time.perf_counter()
    summary = reproduce_paper(
        args.out,
        None if args.models is None else args.models.split(","),
        progress=lambda done, total: print(f"[{done}/{total}] searches done", flush=True),
        selection=args.selection,
        tolerance=args.tolerance,
        knee=args.knee,
        ga_seeds=args.ga_seeds,
    )
    wall = time.perf_counter() - start
    print(summary["markdown"])
    print(summary["search_markdown"])
    print(json.dumps(summary["devices"], indent=1))
    print(json.dumps(summary["alpha05"], indent=1))
    print(f"wrote {len(summary['files'])} files to {args.out} in {wall:.1f} s")


if __name__ == "__main__":
    run_script(main)
