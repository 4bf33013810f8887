"""Where gradient search wins over enumeration: both on the paper's space, and gradient search on a space
too large to enumerate in reasonable time.

Usage: python benchmarks/gradient_vs_exhaustive.py [--model llama3.2-1b] [--precision int4] [--alpha 0.5]
       [--out results/gradient_vs_exhaustive.json]

In one process, without the on-disk caches: each method's first call (tracing and compilation included)
and second call (compiled), wall and CPU seconds, and the exact objective found. The large space widens
every field (up to 16 x 16 clusters, 16 x 16 active tiles, M up to 16, P^2 up to 100, buses 128 to
16,384 bits): about 1.2e9 distinct designs, so its exhaustive time is extrapolated from the measured
designs/s of the paper's space (not run). Gradient search's result there is compared with the paper
space's exact optimum (the large space contains the paper's, so it should be no worse).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ["CIMJAX_NO_CACHE"] = "1"  # first calls compile, as in a cold start

from cimjax.files import output_file_argument
from cimjax.hardware.config import PAPER_SPACE, DesignSpace  # noqa: E402
from cimjax.hardware.technology import default_technology  # noqa: E402
from cimjax.search.exhaustive import sweep  # noqa: E402
from cimjax.search.gradient import gradient_search  # noqa: E402
from cimjax.search.symmetry import MirrorFolding  # noqa: E402
from cimjax.validation import run_script
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload  # noqa: E402
from cimjax.workload.precision import resolve_precision  # noqa: E402

LARGE_SPACE = DesignSpace(
    {
        "c_v": tuple(range(1, 17)),
        "c_h": tuple(range(1, 17)),
        "t_v_act": tuple(range(2, 17)),
        "t_h_act": tuple(range(2, 17)),
        "m": tuple(range(1, 17)),
        "pes_per_tile": tuple(p * p for p in range(2, 11)),
        "bus_inter_cluster": tuple(2**k for k in range(7, 15)),
        "bus_inter_tile": tuple(2**k for k in range(7, 15)),
        "bus_intra_tile": tuple(2**k for k in range(7, 15)),
    }
)


def timed(fn) -> tuple[object, dict]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3.2-1b")
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--out", type=output_file_argument, default=Path("results/gradient_vs_exhaustive.json"))
    args = parser.parse_args()
    spec = resolve_model(args.model)
    prec = resolve_precision(args.precision, spec)
    workload, tech = Workload(), default_technology()
    report = {"model": spec.id, "precision": args.precision, "alpha": args.alpha}

    def exhaustive():
        return sweep(spec, prec, workload, tech, PAPER_SPACE)

    def gradient(space):
        return lambda: gradient_search(spec, prec, workload, tech, args.alpha, space=space)

    paper = {}
    for name, call in (("exhaustive", exhaustive), ("gradient", gradient(PAPER_SPACE))):
        first, t1 = timed(call)
        second, t2 = timed(call)
        objective = second.best(args.alpha)[1] if name == "exhaustive" else second.objective
        paper[name] = {"first_call": t1, "second_call": t2, "objective": objective}
        if name == "exhaustive":
            paper[name]["distinct_designs_per_s"] = second.designs_per_s
        first_s = f"{t1['wall_s']:.1f} s (cpu {t1['cpu_s']:.1f})"
        second_s = f"{t2['wall_s']:.2f} s (cpu {t2['cpu_s']:.2f})"
        print(f"paper space, {name}: first {first_s}, second {second_s}, objective {objective:.6g}", flush=True)
    report["paper_space"] = paper

    distinct = MirrorFolding(LARGE_SPACE).size
    first, t1 = timed(gradient(LARGE_SPACE))
    second, t2 = timed(gradient(LARGE_SPACE))
    rate = paper["exhaustive"]["distinct_designs_per_s"]
    report["large_space"] = {
        "designs": LARGE_SPACE.size,
        "distinct_designs": distinct,
        "gradient": {"first_call": t1, "second_call": t2, "objective": second.objective, "config": second.best_config},
        "exhaustive_extrapolated_s": distinct / rate,
        "gain_over_paper_space_optimum": paper["exhaustive"]["objective"] / second.objective,
    }
    print(
        f"large space ({LARGE_SPACE.size:.3g} designs, {distinct:.3g} distinct): gradient first {t1['wall_s']:.1f} s, "
        f"second {t2['wall_s']:.2f} s, objective {second.objective:.6g} "
        f"({paper['exhaustive']['objective'] / second.objective:.4f}x better than the paper space's optimum); "
        f"exhaustive would take ~{distinct / rate:,.0f} s at {rate:,.0f} distinct designs/s",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_script(main)
