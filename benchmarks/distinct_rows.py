"""Pricing each operator on its distinct layer rows (``cimjax.cost.distinct``): how far from the plain
per-layer sweep, and how much cheaper, over the whole paper space.

Usage: python benchmarks/distinct_rows.py [--models llama3.2-1b,qwen2.5-0.5b] [--tables 3]
       [--optimize-json OPT.json ...] [--out results/distinct_rows.json]

Tables: ``--tables`` random ones per model shaped like the joint optimiser's (each column one or two
adjacent widths, a random one per layer), and the bits of ``cimjax optimize --json`` outputs given with
``--optimize-json`` (for their own model). For each table, the plain sweep and the sweep on distinct rows
(``sweep(..., distinct_layers=True)``), each run twice (the second is timed: warm, program compiled);
reported are the largest relative differences of latency, energy and area over every design, against
:data:`cimjax.joint.allocation.NEAR_FRONT`, the designs :func:`cimjax.joint.allocation.sweep_at` evaluates
again (alpha 1, 0.5, 0), and the process CPU seconds of each sweep. Wall times on a shared machine are
upper bounds; CPU seconds are the fairer comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from cimjax import validation
from cimjax.cost.distinct import OPERATOR_POINTS, distinct_rows
from cimjax.files import output_file_argument
from cimjax.joint import allocation
from cimjax.joint.problem import make_problem
from cimjax.search.exhaustive import sweep
from cimjax.workload.models import resolve_model
from cimjax.workload.precision import N_POINTS, Precision, table_from_bits


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _timed_sweep(problem, prec, distinct_layers: bool):
    for _ in range(2):
        wall, cpu = time.perf_counter(), _cpu()
        result = sweep(
            problem.spec, prec, problem.workload, problem.tech, problem.space, distinct_layers=distinct_layers
        )
    return result, time.perf_counter() - wall, _cpu() - cpu


def _random_table(rng, n_layers: int) -> np.ndarray:
    low = rng.integers(4, 13, N_POINTS)
    spread = rng.integers(0, 2, N_POINTS)  # a column of one width or of two adjacent ones
    return (low + spread * rng.integers(0, 2, (n_layers, N_POINTS))).astype(np.float64)


def measure(model: str, table: np.ndarray, label: str) -> dict:
    problem = make_problem(resolve_model(model), "int8")
    prec = Precision.from_table(jnp.asarray(table, jnp.float32))
    rows = distinct_rows(prec)
    plain, plain_wall, plain_cpu = _timed_sweep(problem, prec, False)
    fast, fast_wall, fast_cpu = _timed_sweep(problem, prec, True)
    allowed = plain.distinct_indices
    differences = {
        name: float(np.max(np.abs(getattr(fast, name) / getattr(plain, name) - 1.0)))
        for name in ("latency_s", "energy_j", "area_mm2")
    }
    near = {}
    for alpha in (1.0, 0.5, 0.0):
        at_alpha = make_problem(problem.spec, "int8", alpha=alpha)
        near[str(alpha)] = int(len(allocation._near_front(at_alpha, fast, allowed)))
    return {
        "model": model,
        "table": label,
        "rows_per_operator": {op: int(rows.rows[op].n_layers) for op in OPERATOR_POINTS}
        if rows is not prec
        else "every operator's rows distinct (plain sweep)",
        "layers": int(problem.n_layers),
        "largest_relative_difference": differences,
        "near_front_margin": allocation.NEAR_FRONT,
        "designs_evaluated_again": near,
        "plain": {"wall_s": plain_wall, "cpu_s": plain_cpu},
        "distinct_rows": {"wall_s": fast_wall, "cpu_s": fast_cpu},
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="llama3.2-1b,qwen2.5-0.5b")
    parser.add_argument("--tables", type=int, default=3, help="random tables per model")
    parser.add_argument("--optimize-json", nargs="*", type=Path, default=[], help="cimjax optimize --json outputs")
    parser.add_argument("--out", type=output_file_argument, default=Path("results/distinct_rows.json"))
    args = parser.parse_args()
    validation.integer("--tables", args.tables, 0 if args.optimize_json else 1)
    cases = []
    for path in args.optimize_json:
        report = validation.read_json(path, "--optimize-json file")
        cases.append((report["model"], table_from_bits(report["bits"]), f"optimize: {path.name}"))
    rng = np.random.default_rng(0)
    for model in args.models.split(","):
        n_layers = resolve_model(model).n_layers
        cases += [(model, _random_table(rng, n_layers), f"random {i}") for i in range(args.tables)]
    rows = []
    for model, table, label in cases:
        rows.append(measure(model, table, label))
        r = rows[-1]
        print(
            f"{model:14s} {label:24s} largest difference latency {r['largest_relative_difference']['latency_s']:.2e}"
            f" energy {r['largest_relative_difference']['energy_j']:.2e}"
            f" area {r['largest_relative_difference']['area_mm2']:.2e};"
            f" evaluated again {r['designs_evaluated_again']}; CPU s plain {r['plain']['cpu_s']:.2f}"
            f" -> distinct rows {r['distinct_rows']['cpu_s']:.2f} (load {r['load_average']:.1f})",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    validation.run_script(main)
