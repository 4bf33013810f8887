"""Fit the three free constants to EdgeCIM's calibration points and report the residuals.

Usage: python benchmarks/calibrate.py [--out results/calibration.json]
Starts from the shipped technology values (the fitted ones are refitted), prints the fitted values
and the model-vs-target table, the alpha = 0.5 comparison, and the sensitivity of the fitted DRAM
energy to the assumed leakage density.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cimjax.files import output_file_argument
from cimjax.hardware.technology import default_technology
from cimjax.report.calibration import calibrate, fit_dram_energy
from cimjax.validation import run_script
from cimjax.workload.operators import Workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=output_file_argument, default=Path("results/calibration.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    tech, report = calibrate(default_technology())
    report["leakage_sensitivity"] = [
        {
            "leakage_w_per_mm2": leak,
            "fitted_dram_energy_per_bit": fit_dram_energy(tech.replace(leakage_w_per_mm2=leak), Workload()),
        }
        for leak in (0.0005, 0.001, 0.002, 0.005, 0.01)
    ]
    report["wall_s"] = time.perf_counter() - start
    print("fitted:", json.dumps(report["fitted"], indent=1))
    print(f"{'calibration point':45s} {'target':>10s} {'model':>10s} {'residual':>9s}")
    for p in report["points"]:
        print(f"{p['point']:45s} {p['target']:10.4g} {p['model']:10.4g} {100 * p['residual']:8.3f}%")
    print("alpha=0.5 LLaMA3.2-3B INT8:", json.dumps(report["alpha05_llama3.2-3b_int8"], indent=1))
    print("fitted DRAM energy vs assumed leakage:", json.dumps(report["leakage_sensitivity"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} ({report['wall_s']:.1f} s)")


if __name__ == "__main__":
    run_script(main)
