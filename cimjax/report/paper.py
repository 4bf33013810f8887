"""Reproduction of the EdgeCIM paper's per-model results (its Fig. 9 bar charts and comparison table).

For every model and INT4/INT8, over the paper's design space at alpha = 1: the exhaustive optimum,
the paper's GA over several seeds, the knee design and, when it is the selection, the robust design
(:mod:`cimjax.report.selection`), put beside the paper's numbers; tokens/s, tokens/J and area, the DRAM
roofline, and ratios to the published devices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import cimjax.validation as validation
from cimjax.evaluation import design_report
from cimjax.files import atomic_path, atomic_write
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import Technology, default_technology
from cimjax.report.calibration import EFFICIENCY_POINT, THROUGHPUT_POINTS
from cimjax.report.selection import (
    DEFAULT_MARGIN,
    DEFAULT_TOLERANCE,
    SELECTIONS,
    check_selection,
    derated,
    describe,
    describe_robust,
    describe_selection,
    knee_index,
    robust_index,
)
from cimjax.report.study import MAX_GA_RUNS
from cimjax.results import ENERGY_ACCOUNT_KEYS, make_meta, write_csv, write_json
from cimjax.search.exhaustive import sweep
from cimjax.search.ga import PAPER_GENERATIONS, PAPER_POP_SIZE
from cimjax.search.pareto import alpha_objective
from cimjax.search.runner import search
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

PRECISIONS = ("int4", "int8")
ALPHA05_POINT = ("llama3.2-3b", "int8")  # the paper's alpha = 0.5 design is for this model and precision
PAPER_AREA_BAND_MM2 = (18.4, 103.6)  # the paper's alpha = 1 designs occupy this range (its Fig. 9c and text)
BUSES = ("bus_inter_cluster", "bus_inter_tile", "bus_intra_tile")
GA_METRICS = ("tokens_per_s", "tokens_per_j", "area_mm2")
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

# Board power used to turn a device's tokens/s into tokens/J (whole board, so DRAM included). Only the
# Jetsons have a public figure: the paper divides the Orin Nano's tokens/s by 15 W; NVIDIA rates the
# Orin Nano Super mode at 25 W and the AGX Orin at up to 60 W (MAXN). The Qualcomm parts have none.
DEVICE_POWER_W = {"Jetson Orin Nano": 15.0, "Jetson Orin Nano Super": 25.0, "Jetson AGX Orin": 60.0}


def _record(report: dict) -> dict:
    record = {k: report[k] for k in FIG9_KEYS}
    record["fraction_of_roofline"] = report["tokens_per_s"] / report["roofline_tokens_per_s"]
    record["latency_s"] = report["latency_s"]
    record["energy_j"] = report["energy_j"]
    record["peak_tops_per_w_per_mm2"] = report["figure_of_merit"]["peak_tops_per_w_per_mm2"]
    return record | {k: report[k] for k in ENERGY_ACCOUNT_KEYS}


def _brief(report: dict) -> dict:
    """The metrics and design of one evaluated design, as nested under ``exhaustive`` and ``ga``."""
    return {k: report[k] for k in ("tokens_per_s", "tokens_per_j", "area_mm2", "config")}


def ga_summary(reports: Sequence[dict]) -> dict:
    """Median and range over GA runs (one per seed) of tokens/s, tokens/J and area, with every design."""
    runs = [
        {"seed": r["seed"], "generations": len(r["history"]), "evaluations": r["evaluations"]} | _brief(r)
        for r in reports
    ]
    summary = {"runs": runs}
    for stat, fn in (("median", np.median), ("min", np.min), ("max", np.max)):
        summary[stat] = {m: float(fn([r[m] for r in runs])) for m in GA_METRICS} if runs else None
    return summary


def design_label(c: dict) -> str:
    return (
        f"C={c['c_v']}x{c['c_h']} T_A={c['t_v_act']}x{c['t_h_act']} M={c['m']} P^2={c['pes_per_tile']} "
        f"bus={c['bus_inter_cluster']}/{c['bus_inter_tile']}/{c['bus_intra_tile']}"
    )


def paper_values() -> dict:
    """The paper's published numbers we may compare to (its calibration points), by (model, precision)."""
    values: dict = {}
    for model_id, precision, tps in THROUGHPUT_POINTS:
        values.setdefault((model_id, precision), {})["tokens_per_s"] = tps
    model_id, precision, tpj = EFFICIENCY_POINT
    values.setdefault((model_id, precision), {})["tokens_per_j"] = tpj
    return values


def markdown_table(records: Sequence[dict]) -> str:
    """The rows put beside the paper (the selected designs), with the paper's published numbers where
    they are calibration points ("-" where the paper's number is held out) and the energy split."""
    rows = [
        "| model | precision | tokens/s | paper tokens/s | roofline tokens/s | % of roofline | tokens/J | "
        "paper tokens/J | tokens/J (system) | DRAM mJ | on-chip mJ | area mm^2 | design |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    paper = paper_values()

    def published(r, metric):
        value = paper.get((r["model"], r["precision"]), {}).get(metric)
        return "-" if value is None else f"{value:g}"

    for r in records:
        rows.append(
            f"| {r['model']} | {r['precision']} | {r['tokens_per_s']:.1f} | {published(r, 'tokens_per_s')} | "
            f"{r['roofline_tokens_per_s']:.1f} | {100 * r['fraction_of_roofline']:.1f} | {r['tokens_per_j']:.1f} | "
            f"{published(r, 'tokens_per_j')} | {r['system']['tokens_per_j']:.1f} | {1e3 * r['dram_energy_j']:.0f} | "
            f"{1e3 * r['on_chip_energy_j']:.0f} | {r['area_mm2']:.2f} | {design_label(r['config'])} |"
        )
    return "\n".join(rows)


def search_table(records: Sequence[dict]) -> str:
    """The exhaustive alpha = 1 optimum, the knee (and the robust design, when computed), and the paper's GA
    (median [min, max] over seeds)."""
    kinds = [k for k in SELECTIONS if k in records[0]]
    rows = [
        "| model | precision | " + " | ".join(f"{k} tokens/s | tokens/J | area mm^2 | design" for k in kinds)
        + " | GA tokens/s | GA tokens/J | GA area mm^2 |",
        "|---|---|" + "---|---|---|---|" * len(kinds) + "---|---|---|",
    ]

    def spread(ga, metric, fmt):
        if ga["median"] is None:
            return "-"
        return f"{ga['median'][metric]:{fmt}} [{ga['min'][metric]:{fmt}}, {ga['max'][metric]:{fmt}}]"

    def cells(d):
        return f"{d['tokens_per_s']:.1f} | {d['tokens_per_j']:.1f} | {d['area_mm2']:.1f} | {design_label(d['config'])}"

    for r in records:
        ga = r["ga"]
        rows.append(
            f"| {r['model']} | {r['precision']} | {' | '.join(cells(r[k]) for k in kinds)} | "
            f"{spread(ga, 'tokens_per_s', '.1f')} | {spread(ga, 'tokens_per_j', '.1f')} | "
            f"{spread(ga, 'area_mm2', '.1f')} |"
        )
    return "\n".join(rows)


# The paper's groups for its design trends (its text; see docs/model.md, "What the paper says").
SMALL_SLMS = ("tinyllama-1.1b", "qwen2.5-0.5b", "llama3.2-1b", "smollm2-1.7b")
LARGE_SLMS = ("smollm3-3b", "qwen2.5-3b", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b")


def total_tiles(c: dict) -> int:
    return c["m"] * c["t_v_act"] * c["t_h_act"]


def paper_trends(records: Sequence[dict]) -> dict:
    """How many designs follow each of the paper's four stated trends (and which do not)."""
    rows = {(r["model"], r["precision"]): r for r in records}

    def check(keys, ok):
        keys = [k for k in keys if k in rows]
        failing = [f"{m} {p}" for m, p in keys if not ok(rows[(m, p)])]
        return {"designs": len(keys), "following": len(keys) - len(failing), "not_following": failing}

    def group(models):
        return [(m, p) for m in models for p in PRECISIONS]

    small_c = [r["config"]["c_v"] * r["config"]["c_h"] for k, r in rows.items() if k[0] in SMALL_SLMS]
    area = {(m, p): r["area_mm2"] for (m, p), r in rows.items()}
    larger_int4 = sorted({m for m, _ in rows if area.get((m, "int4"), 0) > area.get((m, "int8"), float("inf"))})
    return {
        "area_in_paper_band": check(rows, lambda r: PAPER_AREA_BAND_MM2[0] <= r["area_mm2"] <= PAPER_AREA_BAND_MM2[1]),
        "small_slms_16_32_tiles_p2_4": check(
            group(SMALL_SLMS), lambda r: 16 <= total_tiles(r["config"]) <= 32 and r["config"]["pes_per_tile"] == 4
        ),
        "large_slms_8_16_tiles_p2_16": check(
            group(LARGE_SLMS), lambda r: 8 <= total_tiles(r["config"]) <= 16 and r["config"]["pes_per_tile"] == 16
        ),
        "large_slms_more_clusters_than_small": check(
            group(LARGE_SLMS),
            lambda r: bool(small_c) and r["config"]["c_v"] * r["config"]["c_h"] > float(np.median(small_c)),
        ),
        "a_4096_bit_bus": check(rows, lambda r: max(r["config"][b] for b in BUSES) == 4096),
        "models_with_int4_area_above_int8": larger_int4,
    }


def trends_table(trends: dict) -> str:
    rows = ["| paper's statement | designs following | not following |", "|---|---|---|"]
    for name, t in trends.items():
        if isinstance(t, dict):
            rows.append(f"| {name} | {t['following']} / {t['designs']} | {', '.join(t['not_following']) or '-'} |")
    rows.append(
        f"| INT4 area above INT8 for some model | {', '.join(trends['models_with_int4_area_above_int8']) or 'none'} | |"
    )
    return "\n".join(rows)


def ga_trends(records: Sequence[dict], seeds: int) -> list[dict]:
    """:func:`paper_trends` of the paper's GA designs, one dict per seed (the paper's trends describe its
    GA's picks)."""
    return [
        paper_trends([{k: r[k] for k in ("model", "precision")} | r["ga"]["runs"][i] for r in records])
        for i in range(seeds)
    ]


def ga_trends_table(runs: Sequence[dict]) -> str:
    """Per trend, how many GA designs follow it, seed by seed."""
    rows = ["| paper's statement | " + " | ".join(f"seed {i}" for i in range(len(runs))) + " |",
            "|---" * (len(runs) + 1) + "|"]  # fmt: skip
    for name, t in runs[0].items():
        if isinstance(t, dict):
            rows.append(f"| {name} | " + " | ".join(f"{r[name]['following']} / {t['designs']}" for r in runs) + " |")
    counts = " | ".join(str(len(r["models_with_int4_area_above_int8"])) for r in runs)
    rows.append(f"| models with INT4 area above INT8 | {counts} |")
    return "\n".join(rows)


def device_comparison(records: Sequence[dict]) -> list[dict]:
    """Modelled INT4 tokens/s over each published device's measured tokens/s and, where the device's
    power is public, tokens/J ratios under the paper-calibrated and the system accounting."""
    int4 = {r["model"]: r for r in records if r["precision"] == "int4"}
    rows = []
    for m, d, tps in PUBLISHED_DEVICES:
        if m not in int4:
            continue
        r = int4[m]
        row = {"model": m, "device": d, "device_tokens_per_s": tps, "model_over_device": r["tokens_per_s"] / tps}
        power = DEVICE_POWER_W.get(d)
        row["device_power_w"] = power
        row["device_tokens_per_j"] = tps / power if power else None
        row["model_tokens_per_j"] = r["tokens_per_j"]
        row["model_tokens_per_j_system"] = r["system"]["tokens_per_j"]
        row["tokens_per_j_model_over_device"] = r["tokens_per_j"] * power / tps if power else None
        row["tokens_per_j_system_over_device"] = r["system"]["tokens_per_j"] * power / tps if power else None
        rows.append(row)
    return rows


def plot_bars(
    records: Sequence[dict], metric: str, ylabel: str, path: Path, roofline: bool = False, band: tuple | None = None
) -> None:
    """Per-model bars, INT4 next to INT8, in the style of the paper's Fig. 9, with the paper's published
    value of ``metric`` marked where it is one of its calibration points, and an optional shaded band."""
    models = list(dict.fromkeys(r["model"] for r in records))
    paper = paper_values()
    x = np.arange(len(models))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(models)), 4))
    if band is not None:
        ax.axhspan(*band, color="green", alpha=0.12, label=f"paper's range {band[0]:g}-{band[1]:g}")
    for k, (precision, color) in enumerate(zip(PRECISIONS, ("#1f77b4", "#ff7f0e"), strict=True)):
        by_model = {r["model"]: r for r in records if r["precision"] == precision}
        values = [by_model[m][metric] if m in by_model else np.nan for m in models]
        offset = (k - 0.5) * width
        ax.bar(x + offset, values, width, label=f"cimjax {precision.upper()}", color=color)
        if roofline:
            limits = [by_model[m]["roofline_tokens_per_s"] if m in by_model else np.nan for m in models]
            ax.scatter(x + offset, limits, marker="_", s=200, color="black", zorder=3)
        published = [paper.get((m, precision), {}).get(metric, np.nan) for m in models]
        ax.scatter(x + offset, published, marker="*", s=120, color="red", zorder=4)
    if roofline:
        ax.scatter([], [], marker="_", s=200, color="black", label="DRAM roofline")
    if any(metric in v for v in paper.values()):
        ax.scatter([], [], marker="*", s=120, color="red", label="paper (calibration point)")
    ax.set_xticks(x, models, rotation=35, ha="right")
    ax.set_ylabel(ylabel)
    title = f"{ylabel} of the design put beside the paper\n(decode, 128 prefill + 128 generated tokens)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130)
    plt.close(fig)


def _point(model_id, precision, tech, workload, space, selection, tolerance, knee, margin, ga_seeds, progress):
    """One model and precision: the sweep, its exhaustive optimum and knee (and robust design, when it is the
    selection: a second sweep with the clock derated), and the GA runs."""
    spec = MODELS[model_id]
    prec = preset(precision, spec.n_layers)
    result = sweep(spec, prec, workload, tech, space)
    best, _ = result.best(1.0)

    def report(index):
        return design_report(spec, prec, precision, space.decode(index).to_dict(), workload, tech, space)

    exhaustive = report(best)
    progress()
    runs = []
    for seed in range(ga_seeds):
        runs.append(search(model_id, precision, 1.0, "ga", seed=seed, workload=workload, tech=tech, space=space))
        progress()
    others = {"exhaustive": _record(exhaustive), "knee": _record(report(knee_index(result, tolerance, knee)))}
    others["knee"]["rule"] = describe(knee, tolerance)
    if selection == "robust":
        stressed = sweep(spec, prec, workload, derated(tech, margin), space).latency_s
        others["robust"] = _record(report(robust_index(result, stressed, tolerance, knee)))
        others["robust"]["rule"] = describe_robust(knee, tolerance, margin)
    row = others[selection]
    rule = {"rule": selection, "knee": knee, "tolerance": tolerance}
    rule |= {"margin": margin} if selection == "robust" else {}
    record = {k: v for k, v in row.items() if k != "rule"} | {
        "selection": rule | {"description": describe_selection(selection, knee, tolerance, margin)},
        **others,
        "ga": ga_summary(runs),
    }
    return record, result


def alpha05_comparison(result, tech: Technology, workload: Workload) -> dict:
    """The paper's alpha = 0.5 design for LLaMA3.2-3B INT8 against our alpha = 0.5 optimum (same sweep)."""
    index, objective = result.best(0.5)
    spec = MODELS["llama3.2-3b"]
    prec = preset("int8", spec.n_layers)
    ours = design_report(spec, prec, "int8", result.space.decode(index).to_dict(), workload, tech)
    paper = design_report(spec, prec, "int8", EDGECIM_ALPHA05_DESIGN, workload, tech)
    paper_objective = float(alpha_objective(paper["latency_s"], paper["energy_j"], 0.5))
    keys = ("config", "tokens_per_s", "tokens_per_j", "area_mm2")
    return {
        "model_optimum": {k: ours[k] for k in keys} | {"objective": objective},
        "paper_design": {k: paper[k] for k in keys} | {"objective": paper_objective},
        "paper_objective_over_optimum": paper_objective / objective,
        "figure_of_merit_of_optimum": ours["figure_of_merit"],
    }


def reproduce_paper(
    out_dir: Path,
    model_ids: Sequence[str] | None = None,
    tech: Technology | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    selection: str = "exhaustive",
    tolerance: float = DEFAULT_TOLERANCE,
    knee: str = "energy",
    margin: float = DEFAULT_MARGIN,
    ga_seeds: int = 5,
    workload: Workload | None = None,
    space: DesignSpace = PAPER_SPACE,
) -> dict:
    """Runs every model x precision (exhaustive sweep, knee, GA over ``ga_seeds`` seeds), writes the files,
    and returns a summary. The row put beside the paper is the ``selection`` (the exhaustive alpha = 1
    optimum by default, the knee, or the robust design with the clock derated by ``margin``), recorded under
    ``selection``; each also under its own key (the robust design only when selected: it costs a sweep)."""
    model_ids = list(model_ids or MODELS)
    unknown = [m for m in model_ids if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model id(s) {unknown}; known ids: {', '.join(MODELS)}")
    check_selection(selection, knee, tolerance, margin)
    validation.integer("ga_seeds (--ga-seeds)", ga_seeds, 0, MAX_GA_RUNS)
    tech = tech or default_technology()
    workload = workload or Workload()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(model_ids) * len(PRECISIONS) * (1 + ga_seeds)
    done = 0

    def step():
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    records, alpha05 = [], None
    for model_id in model_ids:
        for precision in PRECISIONS:
            record, result = _point(
                model_id, precision, tech, workload, space, selection, tolerance, knee, margin, ga_seeds, step
            )
            records.append(record)
            if (model_id, precision) == ALPHA05_POINT and space is PAPER_SPACE:
                alpha05 = alpha05_comparison(result, tech, workload)

    fig9 = [{k: r[k] for k in FIG9_KEYS} | r for r in records]
    write_json(out_dir / "fig9.json", fig9, indent=2)
    # fig9.json stays a list (its row keys are a contract): its meta is in the directory's meta.json (CLI)
    write_csv(out_dir / "fig9.csv", fig9, make_meta(workload, tech))
    table = markdown_table(records)
    searches = search_table(records)
    trends = {"selected": paper_trends(records)} | {
        k: paper_trends([r[k] for r in records]) for k in SELECTIONS if k in records[0]
    }
    trends["ga_runs"] = ga_trends(records, ga_seeds)
    write_json(out_dir / "trends.json", trends, indent=2)
    atomic_write(
        out_dir / "fig9.md",
        f"Rows put beside the paper ({describe_selection(selection, knee, tolerance, margin)}); the paper's published "
        f"numbers where they are calibration points, '-' where they are held out:\n\n{table}\n\n"
        f"Exhaustive alpha = 1 optimum, knee ({describe(knee, tolerance)}) and the paper's GA "
        f"(population {PAPER_POP_SIZE}, {PAPER_GENERATIONS} generations, {ga_seeds} seeds; median [min, max]):"
        f"\n\n{searches}\n\n"
        f"The paper's stated trends, for the rows put beside it:\n\n{trends_table(trends['selected'])}\n\n"
        f"for the exhaustive optima:\n\n{trends_table(trends['exhaustive'])}\n\n"
        f"and for the knees ({describe(knee, tolerance)}):\n\n{trends_table(trends['knee'])}\n"
        + (f"\nand for the robust designs ({describe_robust(knee, tolerance, margin)}):\n\n"
           f"{trends_table(trends['robust'])}\n" if "robust" in trends else "")
        + (f"\nand for the paper's GA, designs following per seed:\n\n{ga_trends_table(trends['ga_runs'])}\n"
           if ga_seeds else ""),
    )
    devices = device_comparison(records)
    write_json(out_dir / "devices.json", devices, indent=2)
    if alpha05 is not None:
        write_json(out_dir / "alpha05_llama3.2-3b_int8.json", alpha05, indent=2)
    plot_bars(records, "tokens_per_s", "tokens/s", out_dir / "fig9_tokens_per_s.png", roofline=True)
    plot_bars(records, "tokens_per_j", "tokens/J", out_dir / "fig9_tokens_per_j.png")
    plot_bars(records, "area_mm2", "area (mm^2)", out_dir / "fig9_area.png", band=PAPER_AREA_BAND_MM2)
    files = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))  # not lock or temporary files
    return {
        "records": records,
        "devices": devices,
        "alpha05": alpha05,
        "markdown": table,
        "search_markdown": searches,
        "trends": trends,
        "files": files,
    }


def write_directory_meta(directory: Path, files: Sequence[str], tech: Technology) -> Path:
    """``meta.json``: one side-car for a whole :func:`reproduce_paper` directory, whose files are lists and
    tables with no room for ``meta``; it names the ``files`` it describes."""
    path = Path(directory) / "meta.json"
    write_json(path, {"describes": sorted(files), "meta": make_meta(None, tech)})
    return path
