"""Why the alpha = 1 optimum is the design it is: the optimum beside the fastest design of each paper trend.

Usage: python benchmarks/decompose.py [--points model:precision,...] [--tech FILE] [--out results/decompose.json]
For each point (default: the three of docs/model.md section 13: qwen3-4b INT8, smollm3-3b INT4 as larger
SLMs, qwen2.5-0.5b INT4 as a small one; ``--points all`` for the 24 of the reproduction) the exhaustive
sweep at alpha = 1 gives the exact optimum (ties to the lower energy, the row put beside the paper) and the
fastest design of each class the paper's text describes: P^2 = 16 with 8-16 tiles (its larger SLMs),
P^2 = 4 with 16-32 tiles (its small ones), an area inside its 18.4-103.6 mm^2 band. Each is decomposed
into decode latency per operator, energy per component and area per part, with its latency over the
optimum's; the *plateau* is the set of designs within 1e-6 of the best latency (exact ties but for float
rounding): its size, and how many of its designs fall into each class. ``--padding`` prints instead, per
model, precision and P^2, the macro slots a layer's weights would leave empty if matrices were mapped in
whole P x P tiles (P row groups x P column groups): the padding a tile-granular mapping would cost.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from cimjax.cost import operators
from cimjax.cost.model import evaluate
from cimjax.files import output_file_argument
from cimjax.hardware.config import PAPER_SPACE
from cimjax.hardware.macro import EDGECIM_MACRO
from cimjax.hardware.technology import Technology, allowed_range, default_technology
from cimjax.mapping.partition import pe_loads, row_groups
from cimjax.mapping.pipeline import dram_bits_per_s, stage_timing
from cimjax.ops import EXACT
from cimjax.report.paper import PAPER_AREA_BAND_MM2, PRECISIONS
from cimjax.search.exhaustive import sweep
from cimjax.validation import run_script
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload, linear_shapes
from cimjax.workload.precision import preset

DEFAULT_POINTS = "qwen3-4b:int8,smollm3-3b:int4,qwen2.5-0.5b:int4"
PLATEAU = 1e-6  # relative latency within which designs count as tied with the optimum


def classes(area: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over the paper's space of the design classes its text names."""
    every = PAPER_SPACE.decode(np.arange(PAPER_SPACE.size))
    p2 = np.asarray(every.pes_per_tile)
    tiles = np.asarray(every.m * every.active_tiles)
    return {
        "p2_16_tiles_8_16": (p2 == 16) & (tiles >= 8) & (tiles <= 16),
        "p2_4_tiles_16_32": (p2 == 4) & (tiles >= 16) & (tiles <= 32),
        "in_area_band": (area >= PAPER_AREA_BAND_MM2[0]) & (area <= PAPER_AREA_BAND_MM2[1]),
    }


PHASES = (
    "qkv_full_round",
    "qkv_last_round",
    "attention_full_round",
    "attention_last_round",
    "o_proj",
    "gate_up",
    "down",
)
"""The pipeline phases of a layer pass, in the order :func:`cimjax.cost.operators.phase_operators` times them."""


def stage_terms(hw, spec, prec, workload: Workload, tech: Technology) -> tuple[object, dict]:
    """Costs of one design, evaluated eagerly while recording each phase's stage timing (in cycles, of the
    first layer: the precisions here are uniform): its
    first stage (load + compute + drain), its steady period, the DRAM time of one stage, and the period
    the chip alone would allow (the same stage with the fastest DRAM the technology table allows, 1000x the
    shipped one): the design's headroom over DRAM is their ratio."""
    fast = tech.replace(dram_peak_bytes_per_s=allowed_range("dram_peak_bytes_per_s")[1])
    recorded = []

    def record(hw, tech, ops, **stage):
        timing = stage_timing(hw, tech, ops, **stage)
        f = float(tech.clock_hz)

        def cycles(seconds):
            return float(np.ravel(np.asarray(seconds))[0]) * f

        recorded.append({
            "stage_bits": cycles(stage["stage_bits"]) / f,
            "first_cycles": cycles(timing.first),
            "period_cycles": cycles(timing.period),
            "dram_cycles": cycles(stage["streaming_clusters"] * stage["stage_bits"] / dram_bits_per_s(tech)),
            "chip_period_cycles": cycles(stage_timing(hw, fast, ops, **stage).period),
        })  # fmt: skip
        return timing

    operators.stage_timing = record
    try:
        costs = evaluate(hw, prec, spec, workload, tech, with_prefill=False)
    finally:
        operators.stage_timing = stage_timing
    return costs, dict(zip(PHASES, recorded, strict=True))


def breakdown(index: int, spec, prec, workload: Workload, tech: Technology, best_latency: float) -> dict:
    """One design's latency per operator (ms) and per phase's stage (cycles), energy per component (mJ) and
    area per part (mm^2)."""
    hw = PAPER_SPACE.decode(index)
    costs, stages = stage_terms(hw, spec, prec, workload, tech)
    decode, area = costs.decode, costs.area
    return {
        "config": hw.to_dict(),
        "latency_over_optimum": float(costs.latency_s) / best_latency,
        "tokens_per_s": float(costs.tokens_per_s),
        "tokens_per_j": float(costs.tokens_per_j),
        "area_mm2": float(costs.area_mm2),
        "latency_ms": {k: 1e3 * float(v) for k, v in decode.latency_by_operator.items()},
        "stages": stages,
        "energy_mj": {k: 1e3 * float(v) for k, v in decode.energy_by_component.items()},
        "area_parts_mm2": {k: float(getattr(area, k)) for k in ("pes", "buffers", "functional_units", "buses")},
    }


def decompose(model_id: str, precision: str, workload: Workload, tech: Technology) -> dict:
    spec = MODELS[model_id]
    prec = preset(precision, spec.n_layers)
    result = sweep(spec, prec, workload, tech)
    latency, area = np.asarray(result.latency_s, np.float64), np.asarray(result.area_mm2, np.float64)
    best = int(result.best(1.0)[0])
    plateau = latency <= latency[best] * (1.0 + PLATEAU)
    picks = {"optimum": best}
    counts = {"plateau": int(plateau.sum())}
    for name, mask in classes(area).items():
        members = np.flatnonzero(mask)
        picks[name] = int(members[np.argmin(latency[members])])
        counts[f"plateau_{name}"] = int((plateau & mask).sum())
    return {
        "model": model_id,
        "precision": precision,
        "plateau": counts,
        "designs": {k: breakdown(i, spec, prec, workload, tech, float(latency[best])) for k, i in picks.items()},
    }


def tile_padding(model_id: str, bits: int, pes_per_tile: int) -> float:
    """Fraction of the macro slots of whole P x P tiles that a layer's weights leave empty (Q, K, V per KV
    group, as they are mapped; the others whole)."""
    spec, side = MODELS[model_id], math.isqrt(pes_per_tile)
    shapes = linear_shapes(spec) | {
        "q": (spec.hidden, spec.group_size * spec.head_dim),
        "k": (spec.hidden, spec.head_dim),
        "v": (spec.hidden, spec.head_dim),
    }
    used = slots = 0
    for name, (d_in, d_out) in shapes.items():
        copies = spec.n_kv_heads if name in ("q", "k", "v") else 1
        loads = int(pe_loads(EDGECIM_MACRO, d_in, d_out, float(bits), EXACT))
        rows = row_groups(EDGECIM_MACRO, d_in)
        cols = loads // rows
        used += copies * loads
        slots += copies * math.ceil(rows / side) * math.ceil(cols / side) * pes_per_tile
    return 1.0 - used / slots


def show(point: dict) -> None:
    print(f"== {point['model']} {point['precision']}: plateau {point['plateau']}")
    for name, d in point["designs"].items():
        c = d["config"]
        print(f"{name:18s} C={c['c_v']}x{c['c_h']} T_A={c['t_v_act']}x{c['t_h_act']} m={c['m']} "
              f"P2={c['pes_per_tile']} buses={c['bus_inter_cluster']}/{c['bus_inter_tile']}/{c['bus_intra_tile']}"
              f" area {d['area_mm2']:.1f} latency/opt {d['latency_over_optimum']:.6f} "
              f"tok/J {d['tokens_per_j']:.1f}")  # fmt: skip
        print("   latency ms", {k: round(v, 3) for k, v in d["latency_ms"].items()})
        print("   stages (cycles: first, period, DRAM, chip alone)",
              {k: tuple(round(v[x], 1) for x in ("first_cycles", "period_cycles", "dram_cycles", "chip_period_cycles"))
               for k, v in d["stages"].items()})  # fmt: skip
        print("   energy mJ ", {k: round(v, 1) for k, v in d["energy_mj"].items()})
        print("   area mm^2 ", {k: round(v, 2) for k, v in d["area_parts_mm2"].items()})


def _point(parser: argparse.ArgumentParser, text: str) -> tuple[str, str]:
    """One ``model:precision`` of ``--points``, both checked before any sweep runs."""
    model_id, colon, precision = text.partition(":")
    if not colon:
        parser.error(f"--points: {text!r} is not model:precision (e.g. llama3.2-1b:int4); or give 'all'")
    if model_id not in MODELS:
        parser.error(f"--points: model {model_id!r} is not known; allowed: {', '.join(MODELS)}")
    preset(precision, MODELS[model_id].n_layers)  # a ValueError names an unknown precision
    return model_id, precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default=DEFAULT_POINTS, help="model:precision,... or 'all'")
    parser.add_argument("--tech", type=Path, default=None, help="technology overrides (JSON), as the CLI's --tech")
    parser.add_argument("--out", type=output_file_argument, default=Path("results/decompose.json"))
    parser.add_argument("--padding", action="store_true", help="print the tile-granular padding table only")
    args = parser.parse_args()
    if args.padding:
        sizes = PAPER_SPACE.values["pes_per_tile"]
        print("| model | " + " | ".join(f"INT{b} P^2={p}" for b in (4, 8) for p in sizes) + " |")
        for model_id in MODELS:
            cells = [f"{100 * tile_padding(model_id, b, p):.1f} %" for b in (4, 8) for p in sizes]
            print(f"| {model_id} | " + " | ".join(cells) + " |")
        return
    if args.points == "all":
        points = [(m, p) for m in MODELS for p in PRECISIONS]
    else:
        points = [_point(parser, point) for point in args.points.split(",")]
    tech = Technology.from_json(args.tech) if args.tech else default_technology()
    start = time.perf_counter()
    report = []
    for model_id, precision in points:
        report.append(decompose(model_id, precision, Workload(), tech))
        show(report[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"points": report, "wall_s": time.perf_counter() - start}, indent=1))
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    run_script(main)
