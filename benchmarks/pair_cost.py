"""What the measured pairs of ``pairwise`` cost ``cimjax optimize --checkpoint --proxy pairwise`` (docs/joint.md,
"Choosing the proxy"; docs/proxy.md, "Pairwise driving the optimiser").

The trained LM is exported and measured as the frontier protocol does (sensitivities and GPTQ copies from the
cache when measured; ``interaction`` needs them too), then its pairs are measured twice: cold, with the cache
bypassed (:func:`cimjax.quant.pairs.measure`, what a first run on a checkpoint pays), and as ``optimize`` gets
them (:func:`cimjax.quant.pairs.of_checkpoint`: from the cache, or measured again if they were not cached).
Prints the wall and CPU seconds of each and whether the two are bit-identical.

    python benchmarks/pair_cost.py [--size benchmark|subword] [--pairs block|layer|all] [--seed S] [--out FILE]

``--out``: also write the figures as JSON (default ``results/pair_cost_<size>.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.files import output_file_argument
from cimjax.quant import pairs as P
from cimjax.quant.train import train
from cimjax.report.proxy_frontier import FRONTIER_SIZES, measured_checkpoint
from cimjax.report.proxy_validation import SIZES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("benchmark", "subword"), default="benchmark")
    parser.add_argument("--pairs", choices=P.PAIR_SETS, default=P.CHECKPOINT_PAIR_SET)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=output_file_argument, default=None)
    args = parser.parse_args()
    validation.seed("--seed", args.seed)
    config, sizes = SIZES[args.size]
    trained = train(config)
    check_windows = FRONTIER_SIZES[args.size]["check_windows"]
    m = measured_checkpoint(trained, sizes["n_calib"], sizes["n_samples"], args.seed, check_windows, "train", print)
    model = m.model(trained.model)
    wall, cpu = time.perf_counter(), time.process_time()
    cold = P.measure(model, m.calibration.sensitivity_tokens(), m.scheme, P.REFERENCE_BITS, args.pairs)
    cold_wall, cold_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    read = P.of_checkpoint(model, m, args.pairs)
    read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
    same = np.array_equal(cold.single, read.single) and np.array_equal(cold.joint, read.joint)
    print(f"{args.size}: {len(cold.index)} {args.pairs} pairs + {cold.single.size} singles; cold: wall "
          f"{cold_wall:.1f} s, CPU {cold_cpu:.1f} s; as optimize reads them: wall {read_wall:.2f} s, CPU "
          f"{read_cpu:.2f} s; bit-identical: {same}")  # fmt: skip
    out = args.out or Path("results") / f"pair_cost_{args.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {"size": args.size, "pair_set": args.pairs, "seed": args.seed, "pairs": len(cold.index),
               "singles": int(cold.single.size), "cold_wall_s": cold_wall, "cold_cpu_s": cold_cpu,
               "read_wall_s": read_wall, "read_cpu_s": read_cpu, "bit_identical": bool(same)}  # fmt: skip
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    validation.run_script(main)
