"""``cimjax tech`` (every technology constant with its unit and source), ``cimjax schema NAME`` (the JSON
Schema of a config, space or tech file) and ``cimjax report --html DIR STUDY...`` (self-contained pages)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cimjax.cli.common import JsonOpt, out, user_errors

WIDE_TABLE_COLUMNS = 120
"""Below this terminal width ``cimjax tech`` prints one block per constant: a five-column table would squeeze
the sources into a narrow column and cut their long words."""


def _allowed(r: dict) -> str:
    if "allowed" in r:
        return " or ".join(map(str, r["allowed"]))
    return f"{r['minimum']:.3g} to {r['maximum']:.3g}" if "minimum" in r else "-"


def technology_view(rows: list[dict], width: int):
    """The constants as a table (``width`` >= :data:`WIDE_TABLE_COLUMNS`) or as blocks: name, value, unit and
    allowed range on one line, the source below it, indented."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    title = "technology constants (65 nm CIM, LPDDR5X)"
    if width >= WIDE_TABLE_COLUMNS:
        table = Table(title=title)
        table.add_column("name", no_wrap=True)
        for column in ("value", "unit", "allowed", "source"):
            table.add_column(column, ratio=2 if column == "source" else 1)
        for r in rows:
            name = r["name"] if r["overridable"] else f"[dim]{r['name']}[/dim]"
            table.add_row(name, f"{r['value']:.6g}", r["unit"], _allowed(r), r["source"])
        return table
    blocks = [Text(title, style="bold")]
    for r in rows:
        head = Text(r["name"], style="bold" if r["overridable"] else "dim")
        head.append(f" = {r['value']:.6g} {r['unit']}   allowed: {_allowed(r)}")
        blocks += [head, Padding(Text(r["source"]), (0, 0, 0, 4))]
    return Group(*blocks)


@user_errors
def tech_command(as_json: JsonOpt = False) -> None:
    """List every technology constant: value, unit and source (override any with --tech FILE)."""
    from cimjax.hardware.technology import constants_table

    rows = constants_table()
    if as_json:
        sys.stdout.write(json.dumps({"technology": rows}) + "\n")
        return
    out.print(technology_view(rows, out.width))
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
