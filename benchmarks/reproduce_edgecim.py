"""Reproduce the EdgeCIM paper's per-model results (same as `cimjax reproduce --out DIR`).

Usage: python benchmarks/reproduce_edgecim.py [--out results/reproduce] [--models id,id,...]
Prints the table, the ratios to the published devices and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cimjax.report.paper import reproduce_paper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/reproduce"))
    parser.add_argument("--models", default=None, help="comma-separated model ids (default: all twelve)")
    args = parser.parse_args()
    start = time.perf_counter()
    summary = reproduce_paper(
        args.out,
        args.models.split(",") if args.models else None,
        progress=lambda done, total: print(f"[{done}/{total}] searches done", flush=True),
    )
    wall = time.perf_counter() - start
    print(summary["markdown"])
    print(json.dumps(summary["devices"], indent=1))
    print(json.dumps(summary["alpha05"], indent=1))
    print(f"wrote {len(summary['files'])} files to {args.out} in {wall:.1f} s")


if __name__ == "__main__":
    main()
