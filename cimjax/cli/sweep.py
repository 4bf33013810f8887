"""``cimjax sweep``: the exact latency-energy Pareto front of a whole design space, its alpha optima, and
optionally the paper's GA runs drawn over it; the study itself is :func:`cimjax.report.study.sweep_study`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cimjax.cli.common import (
    Generate,
    Model,
    PrecisionOpt,
    Prefill,
    TechOpt,
    ToleranceOpt,
    load_technology,
    out,
    parse_alphas,
    progress_bar,
    user_errors,
)


@user_errors
def sweep_command(
    model: Model,
    precision: PrecisionOpt = "int8",
    alphas: Annotated[str, typer.Option(help="comma-separated alphas in [0, 1]")] = "0,0.25,0.5,0.75,1",
    out_dir: Annotated[str, typer.Option("--out", help="output directory")] = "results/sweep",
    ga_runs: Annotated[int, typer.Option(help="GA runs (seeds 0..N-1) per alpha, drawn over the front")] = 0,
    space: Annotated[
        Path | None,
        typer.Option(help="JSON or YAML object of field: [allowed values] (others keep the paper's)"),
    ] = None,
    prefill: Prefill = 128,
    generate: Generate = 128,
    tech: TechOpt = None,
    tolerance: ToleranceOpt = 0.0,
    area_max: Annotated[float | None, typer.Option("--area-max", help="chip area limit in mm^2")] = None,
) -> None:
    """Sweep the whole design space exactly; write the Pareto front, alpha optima and a plot."""
    from cimjax.files import output_dir
    from cimjax.hardware.config import PAPER_SPACE
    from cimjax.report.study import load_space, sweep_study
    from cimjax.workload.models import resolve_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import resolve_precision

    spec = resolve_model(model)
    prec = resolve_precision(precision, spec)
    design_space = load_space(space) if space else PAPER_SPACE
    values = parse_alphas(alphas)
    workload = Workload(prefill=prefill, generate=generate)
    technology = load_technology(tech)
    start = time.perf_counter()
    with output_dir(out_dir, "--out") as directory, progress_bar("sweep") as bar:
        tasks = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = sweep_study(
            spec, prec, precision, workload, technology, values, directory, design_space, ga_runs,
            progress=report, tolerance=tolerance, area_max=area_max,
        )  # fmt: skip
    out.print(_optima_table(summary, spec.name))
    out.print(
        f"{summary['designs']:,} designs in {summary['sweep_s']:.2f} s "
        f"({summary['designs_per_s']:,.0f}/s, compile {summary['compile_s']:.1f} s); "
        f"Pareto front {summary['pareto_size']} designs; total {time.perf_counter() - start:.1f} s"
    )
    out.print(f"wrote {', '.join(summary['files'])}")


def _optima_table(summary: dict, title: str):
    """One row per alpha optimum: throughput, efficiency, area and the design's fields."""
    from rich.table import Table

    caption = "mm²: chip area; buses: inter-cluster / inter-tile / intra-tile widths, bits per cycle"
    columns = ("alpha", "tokens/s", "tokens/J", "mm²", "C", "T_act", "M", "P²", "buses")
    table = Table(*columns, title=title, caption=caption)
    for row in summary["alpha_optima"]:
        c = row["config"]
        buses = f"{c['bus_inter_cluster']}/{c['bus_inter_tile']}/{c['bus_intra_tile']}"
        table.add_row(
            f"{row['alpha']:g}",
            f"{row['tokens_per_s']:.4g}",
            f"{row['tokens_per_j']:.4g}",
            f"{row['area_mm2']:.4g}",
            f"{c['c_v']}x{c['c_h']}",
            f"{c['t_v_act']}x{c['t_h_act']}",
            str(c["m"]),
            str(c["pes_per_tile"]),
            buses,
        )
    return table


def register(app: typer.Typer) -> None:
    """Adds ``cimjax sweep`` to the command-line app."""
    app.command("sweep")(sweep_command)
