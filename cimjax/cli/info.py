"""``cimjax tech`` (every technology constant with its unit and source), ``cimjax schema NAME`` (the JSON
Schema of a config, space or tech file) and ``cimjax report --html DIR STUDY...`` (self-contained pages)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cimjax.cli.common import JsonOpt, out, user_errors


@user_errors
def tech_command(as_json: JsonOpt = False) -> None:
    """List every technology constant: value, unit and source (override any with --tech FILE)."""
    from cimjax.hardware.technology import constants_table

    rows = constants_table()
    if as_json:
        sys.stdout.write(json.dumps({"technology": rows}) + "\n")
        return
    from rich.table import Table

    def allowed(r):
        if "allowed" in r:
            return " or ".join(map(str, r["allowed"]))
        return f"{r['minimum']:.3g} to {r['maximum']:.3g}" if "minimum" in r else "-"

    table = Table(title="technology constants (65 nm CIM, LPDDR5X)")
    table.add_column("name", no_wrap=True)
    for column in ("value", "unit", "allowed", "source"):
        table.add_column(column, ratio=2 if column == "source" else 1)
    for r in rows:
        name = r["name"] if r["overridable"] else f"[dim]{r['name']}[/dim]"
        table.add_row(name, f"{r['value']:.6g}", r["unit"], allowed(r), r["source"])
    out.print(table)
    out.print(
        "Dimmed names are structural; the others can be overridden with --tech FILE (JSON or YAML), "
        "within 'allowed' (switches: 0 off, 1 on)."
    )


@user_errors
def schema_command(
    name: Annotated[str, typer.Argument(help="config, space or tech", metavar="[config|space|tech]")],
) -> None:
    """Print the JSON Schema of a --config, --space or --tech file (JSON or YAML)."""
    from cimjax.schema import schema

    sys.stdout.write(json.dumps(schema(name), indent=1) + "\n")


@user_errors
def report_command(
    studies: Annotated[
        list[Path], typer.Argument(help="output directories of `cimjax sweep --out` or `cimjax reproduce --out`")
    ],
    html_dir: Annotated[str, typer.Option("--html", help="write the HTML pages (and index.html) here")],
) -> None:
    """Write one self-contained HTML page per study: interactive Pareto fronts, the reproduction table."""
    from cimjax.files import output_dir
    from cimjax.report.html import write_report

    with output_dir(html_dir, "--html") as directory:
        files = write_report(directory, studies)
    out.print(f"wrote {', '.join(map(str, files))}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds ``tech``, ``schema`` and ``report`` to the command-line app."""
    app.command("tech")(tech_command)
    app.command("schema")(schema_command)
    app.command("report")(report_command)
