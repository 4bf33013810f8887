"""Which constants the conclusions rest on: a tornado table of every technology constant moved x0.5 and x2.

Usage: python benchmarks/tornado.py [--out results/tornado] [--models llama3.2-1b,llama3.2-3b,qwen2.5-0.5b]
       [--precision int4]
For each model: its reported design (the row `cimjax reproduce` puts beside the paper, found with the shipped
constants) is held fixed, and each constant of the technology table is halved and doubled in turn
(``dram_efficiency`` is capped at 1, its physical limit); the change of tokens/s and tokens/J is
recorded. Writes tornado.json, tornado.md and tornado.png (one panel per model and metric).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from cimjax import validation
from cimjax.api import evaluate_design
from cimjax.files import output_dir_argument
from cimjax.hardware.config import PAPER_SPACE
from cimjax.hardware.technology import PARAMETERS, default_technology
from cimjax.report.calibration import selected_design
from cimjax.results import write_json
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import parse_precision

FACTORS = (0.5, 2.0)
METRICS = ("tokens_per_s", "tokens_per_j")


def moved(name: str, value: float, factor: float) -> float:
    return min(value * factor, 1.0) if name == "dram_efficiency" else value * factor


def tornado(model_id: str, precision: str) -> dict:
    """Relative change of each metric at the model's reported design, per constant and factor."""
    tech = default_technology()
    index, _ = selected_design(model_id, precision, tech, Workload())
    config = PAPER_SPACE.decode(index).to_dict()
    base = evaluate_design(model_id, precision, config, tech=tech)
    rows = []
    for name, param in PARAMETERS.items():
        row = {"constant": name, "value": param.value}
        for factor in FACTORS:
            report = evaluate_design(
                model_id, precision, config, tech=tech.replace(**{name: moved(name, param.value, factor)})
            )
            for metric in METRICS:
                row[f"{metric}_x{factor:g}"] = report[metric] / base[metric] - 1.0
        rows.append(row)
    rows.sort(key=lambda r: -max(abs(r[f"{m}_x{f:g}"]) for m in METRICS for f in FACTORS))
    return {"model": model_id, "precision": precision, "config": config,
            "base": {m: base[m] for m in METRICS}, "rows": rows}  # fmt: skip


def markdown(results: list[dict], top: int) -> str:
    lines = []
    for r in results:
        lines += [
            f"**{r['model']} {r['precision']}** (base {r['base']['tokens_per_s']:.1f} tokens/s, "
            f"{r['base']['tokens_per_j']:.1f} tokens/J):",
            "",
            "| constant | tokens/s x0.5 | tokens/s x2 | tokens/J x0.5 | tokens/J x2 |",
            "|---|---|---|---|---|",
        ]
        for row in r["rows"][:top]:
            cells = [f"{100 * row[f'{m}_x{f:g}']:+.1f} %" for m in METRICS for f in FACTORS]
            lines.append(f"| `{row['constant']}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(results: list[dict], path: Path, top: int) -> None:
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 3.2 * len(results)), squeeze=False)
    for row_axes, r in zip(axes, results, strict=True):
        rows = r["rows"][:top][::-1]
        y = np.arange(len(rows))
        for ax, metric in zip(row_axes, METRICS, strict=True):
            for factor, color in zip(FACTORS, ("#1f77b4", "#d62728"), strict=True):
                ax.barh(y, [100 * row[f"{metric}_x{factor:g}"] for row in rows], color=color, alpha=0.8,
                        label=f"constant x{factor:g}")  # fmt: skip
            ax.set_yticks(y, [row["constant"] for row in rows], fontsize=7)
            ax.axvline(0, color="black", lw=0.8)
            ax.set_xlabel(f"change of {metric.replace('_per_', '/')} (%)")
            ax.set_title(f"{r['model']} {r['precision']}", fontsize=9)
            ax.grid(axis="x", alpha=0.3)
        row_axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/tornado"))
    parser.add_argument("--models", default="llama3.2-1b,llama3.2-3b,qwen2.5-0.5b")
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--top", type=int, default=10, help="constants shown in the table and chart")
    args = parser.parse_args()
    models = validation.names("--models", args.models, MODELS)
    parse_precision(args.precision)
    validation.integer("--top", args.top, 1)
    start = time.perf_counter()
    results = [tornado(m, args.precision) for m in models]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "tornado.json", results, indent=1)
    table = markdown(results, args.top)
    (args.out / "tornado.md").write_text(table)
    plot(results, args.out / "tornado.png", args.top)
    print(table)
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    validation.run_script(main)
