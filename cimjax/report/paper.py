"""Reproduction of the EdgeCIM paper's per-model results (its Fig. 9 bar charts and comparison table).

For every model and INT4/INT8: the exhaustive alpha = 1 optimum over the paper's design space, its
tokens/s, tokens/J and area, the DRAM roofline, and ratios against the published device numbers.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN  # noqa: E402
from cimjax.hardware.technology import Technology  # noqa: E402
from cimjax.search.runner import search  # noqa: E402
from cimjax.workload.models import MODELS  # noqa: E402

PRECISIONS = ("int4", "int8")
FIG9_KEYS = ("model", "precision", "tokens_per_s", "tokens_per_j", "area_mm2", "roofline_tokens_per_s", "config")

# Vendor-measured decode throughput quoted by the paper (docs/edgecim.md), INT4.
PUBLISHED_DEVICES = (
    ("llama3.2-1b", "Jetson Orin Nano", 54.8),
    ("llama3.2-1b", "Jetson AGX Orin", 163.9),
    ("smollm2-1.7b", "Jetson Orin Nano", 41.0),
    ("smollm2-1.7b", "Jetson Orin Nano Super", 64.5),
    ("llama3.2-3b", "Jetson Orin Nano", 27.7),
    ("llama3.2-3b", "Jetson Orin Nano Super", 43.07),
    ("llama3.2-3b", "Jetson AGX Orin", 80.4),
    ("llama3.2-3b", "Qualcomm SA8255P", 14.0),
    ("llama3.2-3b", "Snapdragon X Elite", 18.4),
    ("llama3.2-3b", "Snapdragon 8 Elite (mobile)", 23.5),
)


def _record(report: dict) -> dict:
    record = {k: report[k] for k in FIG9_KEYS}
    record["fraction_of_roofline"] = report["tokens_per_s"] / report["roofline_tokens_per_s"]
    record["latency_s"] = report["latency_s"]
    record["energy_j"] = report["energy_j"]
    record["peak_tops_per_w_per_mm2"] = report["figure_of_merit"]["peak_tops_per_w_per_mm2"]
    return record


def markdown_table(records: Sequence[dict]) -> str:
    rows = [
        "| model | precision | tokens/s | roofline tokens/s | % of roofline | tokens/J | area mm^2 | design |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        c = r["config"]
        design = (
            f"C={c['c_v']}x{c['c_h']} T_A={c['t_v_act']}x{c['t_h_act']} M={c['m']} P^2={c['pes_per_tile']} "
            f"bus={c['bus_inter_cluster']}/{c['bus_inter_tile']}/{c['bus_intra_tile']}"
        )
        rows.append(
            f"| {r['model']} | {r['precision']} | {r['tokens_per_s']:.1f} | {r['roofline_tokens_per_s']:.1f} | "
            f"{100 * r['fraction_of_roofline']:.1f} | {r['tokens_per_j']:.1f} | {r['area_mm2']:.2f} | {design} |"
        )
    return "\n".join(rows)


def device_comparison(records: Sequence[dict]) -> list[dict]:
    """Modelled INT4 tokens/s over each published device's measured tokens/s."""
    int4 = {r["model"]: r for r in records if r["precision"] == "int4"}
    return [
        {"model": m, "device": d, "device_tokens_per_s": tps, "model_over_device": int4[m]["tokens_per_s"] / tps}
        for m, d, tps in PUBLISHED_DEVICES
        if m in int4
    ]


def plot_bars(records: Sequence[dict], metric: str, ylabel: str, path: Path, roofline: bool = False) -> None:
    """Per-model bars, INT4 next to INT8, in the style of the paper's Fig. 9."""
    models = list(dict.fromkeys(r["model"] for r in records))
    x = np.arange(len(models))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(models)), 4))
    for k, (precision, color) in enumerate(zip(PRECISIONS, ("#1f77b4", "#ff7f0e"), strict=True)):
        by_model = {r["model"]: r for r in records if r["precision"] == precision}
        values = [by_model[m][metric] if m in by_model else np.nan for m in models]
        offset = (k - 0.5) * width
        ax.bar(x + offset, values, width, label=precision.upper(), color=color)
        if roofline:
            limits = [by_model[m]["roofline_tokens_per_s"] if m in by_model else np.nan for m in models]
            ax.scatter(x + offset, limits, marker="_", s=200, color="black", zorder=3)
    if roofline:
        ax.scatter([], [], marker="_", s=200, color="black", label="DRAM roofline")
    ax.set_xticks(x, models, rotation=35, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} of the alpha = 1 optimum\n(decode, 128 prefill + 128 generated tokens)", fontsize=10)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def reproduce_paper(
    out_dir: Path,
    model_ids: Sequence[str] | None = None,
    tech: Technology | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Runs every model x precision search, writes the files, and returns a summary."""
    from cimjax.api import evaluate_design

    model_ids = list(model_ids or MODELS)
    unknown = [m for m in model_ids if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model id(s) {unknown}; known ids: {', '.join(MODELS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 2 * len(model_ids) + 1
    records = []
    for model_id in model_ids:
        for precision in PRECISIONS:
            records.append(_record(search(model_id, precision, 1.0, "exhaustive", tech=tech)))
            if progress:
                progress(len(records), total)
    alpha05 = search("llama3.2-3b", "int8", 0.5, "exhaustive", tech=tech)
    paper_design = evaluate_design("llama3.2-3b", "int8", EDGECIM_ALPHA05_DESIGN, tech=tech)
    if progress:
        progress(total, total)

    fig9 = [{k: r[k] for k in FIG9_KEYS} | r for r in records]
    (out_dir / "fig9.json").write_text(json.dumps(fig9, indent=2))
    with open(out_dir / "fig9.csv", "w", newline="") as f:
        writer = csv.writer(f)
        columns = [k for k in fig9[0] if k != "config"] + ["config"]
        writer.writerow(columns)
        for r in fig9:
            writer.writerow([json.dumps(r[k]) if k == "config" else r[k] for k in columns])
    table = markdown_table(records)
    (out_dir / "fig9.md").write_text(table + "\n")
    devices = device_comparison(records)
    (out_dir / "devices.json").write_text(json.dumps(devices, indent=2))
    summary_alpha05 = {
        "model_optimum": {k: alpha05[k] for k in ("config", "tokens_per_s", "tokens_per_j", "area_mm2", "objective")},
        "paper_design": {k: paper_design[k] for k in ("config", "tokens_per_s", "tokens_per_j", "area_mm2")},
        "figure_of_merit_of_optimum": alpha05["figure_of_merit"],
    }
    (out_dir / "alpha05_llama3.2-3b_int8.json").write_text(json.dumps(summary_alpha05, indent=2))
    plot_bars(records, "tokens_per_s", "tokens/s", out_dir / "fig9_tokens_per_s.png", roofline=True)
    plot_bars(records, "tokens_per_j", "tokens/J", out_dir / "fig9_tokens_per_j.png")
    plot_bars(records, "area_mm2", "area (mm^2)", out_dir / "fig9_area.png")
    files = sorted(p.name for p in out_dir.iterdir())
    return {"records": records, "devices": devices, "alpha05": summary_alpha05, "markdown": table, "files": files}
