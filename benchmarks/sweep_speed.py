"""Speed of the exact exhaustive sweep: designs/s over the paper's whole 3,136,000-design space.

Usage: python benchmarks/sweep_speed.py [--model llama3.2-3b] [--precision int8] [--repeats 3]
       [--chunk N] [--reference-sample 200] [--out results/sweep_speed.json]

Reports, for whatever JAX backend is present (CPU, GPU, ...):
* compile time of the chunk evaluator (first call), separately from the sweep itself;
* the median wall time and designs/s of the single-device sweep over ``--repeats`` runs (it evaluates the
  distinct designs, mirror images folded: designs/s counts the space covered, distinct/s those evaluated);
* the plain-Python scalar reference (cimjax.cost.reference) timed on a random sample of designs and
  extrapolated per design to the whole space (it would take hours to run it on all of them), the speed
  ratio, and the largest relative difference between the two on that sample;
* the sharded sweep over all devices (cimjax.search.distributed), which evaluates every design: compile,
  median designs/s, and whether its results equal the single-device sweep bit for bit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from cimjax import validation
from cimjax.cost.reference import reference_costs
from cimjax.files import output_file_argument
from cimjax.hardware.config import PAPER_SPACE
from cimjax.hardware.technology import default_technology
from cimjax.search.distributed import sharded_sweep
from cimjax.search.exhaustive import DEFAULT_CHUNK, sweep
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import resolve_precision

ACCELERATOR_CHUNK = 1 << 19
"""Default chunk on GPUs/TPUs: larger steps keep them busy; about 1 GB of intermediates, checked on none
smaller than 16 GB."""


def device_info() -> dict:
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "jax": jax.__version__,
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
    }


def time_sweeps(run, repeats: int) -> tuple[float, list[float], object]:
    """Calls ``run()`` ``repeats + 1`` times; the first compiles. Returns compile s, sweep walls, last result."""
    first = run()
    walls, result = [first.wall_s], first
    for _ in range(repeats - 1):
        result = run()
        walls.append(result.wall_s)
    return first.compile_s, walls, result


def time_reference(spec, prec, workload, tech, sample: np.ndarray, sweep_result) -> dict:
    """Times the scalar reference on ``sample`` designs and compares it with the sweep's values there."""
    bits = [np.asarray(x) for x in (prec.weight_bits, prec.act_bits, prec.kv_bits)]
    w, a, kv = bits[0].astype(int).tolist(), bits[1].astype(int).tolist(), bits[2].astype(int).tolist()
    tech_dict = tech.to_dict()
    designs = [PAPER_SPACE.decode(np.asarray(i)).to_dict() for i in sample]
    start = time.perf_counter()
    refs = [reference_costs(d, w, a, kv, spec, workload, tech_dict) for d in designs]
    wall = time.perf_counter() - start
    rel = [
        abs(float(getattr(sweep_result, key)[i]) / r[key] - 1.0)
        for i, r in zip(sample, refs, strict=True)
        for key in ("latency_s", "energy_j", "area_mm2")
    ]
    per_design = wall / len(sample)
    return {
        "sample_designs": len(sample),
        "sample_wall_s": wall,
        "seconds_per_design": per_design,
        "designs_per_s": 1.0 / per_design,
        "extrapolated_full_space_s": per_design * PAPER_SPACE.size,
        "max_relative_difference_vs_sweep": max(rel),
        "note": "timed on a random sample of designs, extrapolated per design to the whole space",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama3.2-3b")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--repeats", type=int, default=3, help="timed sweeps per path (median reported)")
    parser.add_argument(
        "--chunk", type=int, default=None, help=f"designs per step and device (default {DEFAULT_CHUNK} on CPU, "
        f"{ACCELERATOR_CHUNK} on accelerators)"
    )  # fmt: skip
    parser.add_argument("--reference-sample", type=int, default=200, help="designs timed with the scalar reference")
    parser.add_argument("--skip-sharded", action="store_true", help="skip the sharded sweep")
    parser.add_argument("--out", type=output_file_argument, default=Path("results/sweep_speed.json"))
    args = parser.parse_args()
    if args.repeats < 1 or args.reference_sample < 1:
        parser.error("--repeats and --reference-sample must be at least 1")
    if args.chunk is not None:
        validation.integer("--chunk", args.chunk, 1)

    spec = resolve_model(args.model)
    prec = resolve_precision(args.precision, spec)
    workload, tech = Workload(), default_technology()
    default_chunk = DEFAULT_CHUNK if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK
    chunk = default_chunk if args.chunk is None else args.chunk
    info = device_info()
    print(f"devices: {info['devices']} ({info['device_kind']}, backend {info['backend']}, jax {info['jax']})")
    print(f"{spec.name} {args.precision}: {PAPER_SPACE.size:,} designs, chunk {chunk:,} per device")

    compile_s, walls, single = time_sweeps(lambda: sweep(spec, prec, workload, tech, PAPER_SPACE, chunk), args.repeats)
    wall = statistics.median(walls)
    report = {
        "model": spec.id,
        "precision": args.precision,
        "designs": PAPER_SPACE.size,
        "chunk_per_device": chunk,
        "device": info,
        "distinct_designs": single.evaluations,
        "single_device": {
            "compile_s": compile_s,
            "sweep_s": walls,
            "median_sweep_s": wall,
            "designs_per_s": PAPER_SPACE.size / wall,
            "distinct_designs_per_s": single.evaluations / wall,
            "note": "designs_per_s counts the whole space covered; distinct designs (mirrors folded) are evaluated",
        },
    }
    print(
        f"single device, {single.evaluations:,} distinct designs evaluated: compile {compile_s:.2f} s; sweep median "
        f"{wall:.3f} s ({PAPER_SPACE.size / wall:,.0f} designs of the space/s, "
        f"{single.evaluations / wall:,.0f} distinct/s)"
    )

    sample = np.random.default_rng(0).choice(PAPER_SPACE.size, size=args.reference_sample, replace=False)
    ref = time_reference(spec, prec, workload, tech, sample, single)
    ref["speedup_of_sweep"] = report["single_device"]["designs_per_s"] / ref["designs_per_s"]
    report["scalar_reference"] = ref
    print(
        f"scalar reference: {ref['seconds_per_design'] * 1e3:.1f} ms/design on {ref['sample_designs']} random designs "
        f"(extrapolated: {ref['extrapolated_full_space_s'] / 3600:.1f} h for the whole space); "
        f"sweep is {ref['speedup_of_sweep']:,.0f}x faster; "
        f"max relative difference {ref['max_relative_difference_vs_sweep']:.1e}"
    )

    if not args.skip_sharded:
        sharded_compile, sharded_walls, sharded = time_sweeps(
            lambda: sharded_sweep(spec, prec, workload, tech, PAPER_SPACE, chunk), args.repeats
        )
        sharded_wall = statistics.median(sharded_walls)
        identical = all(
            np.array_equal(getattr(sharded, k), getattr(single, k)) for k in ("latency_s", "energy_j", "area_mm2")
        )
        report["sharded"] = {
            "devices": info["device_count"],
            "compile_s": sharded_compile,
            "sweep_s": sharded_walls,
            "median_sweep_s": sharded_wall,
            "designs_per_s": PAPER_SPACE.size / sharded_wall,
            "note": "evaluates every design of the space (no mirror folding)",
            "identical_to_single_device": identical,
        }
        print(
            f"sharded over {info['device_count']} device(s): compile {sharded_compile:.2f} s; sweep median "
            f"{sharded_wall:.3f} s ({PAPER_SPACE.size / sharded_wall:,.0f} designs/s); "
            f"identical to one device: {identical}"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    validation.run_script(main)
