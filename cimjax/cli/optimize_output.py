"""What ``cimjax optimize`` prints and writes: the comparison with the best uniform design, the bit heat-map,
the verification sentence and the ``--out`` files."""

from __future__ import annotations

from pathlib import Path

from cimjax.cli.common import emit, err, out


def print_report(report, as_json: bool, directory: Path | None, method: str, alpha: float) -> None:
    """The report (JSON or table), the bit heat-map and its note, and the ``--out`` files."""
    from cimjax.cli.bits import heatmap_table
    from cimjax.report.optimize import write_outputs

    emit(report, as_json, f"{report['model']}: {method} at budget {report['budget_label']}, alpha={alpha}")
    if not as_json:
        if report.get("baseline"):
            out.print(comparison_table(report))
        out.print(heatmap_table(report))
        out.print(report["objective_note"], highlight=False)
        if "verified" in report:  # --checkpoint/--sensitivities: whether the accuracy was measured, last
            out.print(verification_line(report), highlight=False)
    if directory is not None:
        title = f"{report['model']}: bits at budget {report['budget_label']}, alpha = {alpha:g} ({method})"
        files = write_outputs(directory, report, title)
        (err if as_json else out).print(f"wrote {', '.join(map(str, files))}", highlight=False)


def verification_line(report: dict) -> str:
    """One sentence at the end of a measured run's output: was the budget met when measured, or only predicted
    (the fact a long table must not bury)."""
    target = report["target"]
    unit = "KL divergence" if target == "kl" else "loss increase"
    measured = report[f"measured_{target}"]
    budget = f"the budget {report['measured_budget']:.4g} nats/token"
    if measured is None:
        return (
            f"not verified: the {unit} of these bits within {budget} is the proxy's prediction, not a measurement "
            "(--checkpoint DIR --verify measures it)"
        )
    within = "within" if report["verified"] else "OVER"
    rounds = f"{report['rounds']} round{'s' if report['rounds'] != 1 else ''}"
    return (
        f"{'verified' if report['verified'] else 'NOT verified'}: measured {unit} {measured:.4g} {within} {budget} "
        f"on the check windows ({rounds}, {report['verify_wall_s']:.0f} s)"
    )


def comparison_table(report):
    """The recommended design, the optimiser's own, the iso-area search's (when it ran) and the baseline:
    tokens/s, tokens/J and area, each also as a ratio to the baseline's."""
    from rich.table import Table

    table = Table(title="against the best uniform design (ratio to it in brackets)")
    for column in ("design", "tokens/s", "tokens/J", "area mm^2"):
        table.add_column(column, justify="left" if column == "design" else "right")
    base = report["baseline"]
    rows = {f"recommended ({report['chosen']})": report, "optimiser's own": report["optimiser_design"]}
    if report.get("iso_area"):  # verified runs: the search again within the baseline's area (docs/joint.md)
        rows["iso-area search"] = report["iso_area"]
    for name, design in (rows | {"uniform baseline": base}).items():
        cells = [f"{design[k]:.4g} ({design[k] / base[k]:.3f}x)" for k in ("tokens_per_s", "tokens_per_j", "area_mm2")]
        table.add_row(name, *cells)
    return table
