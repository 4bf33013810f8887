"""``cimjax tech`` (every technology constant with its unit and source), ``cimjax schema NAME`` (the JSON
Schema of a config, space or tech file) and ``cimjax report --html DIR STUDY...`` (self-contained pages)."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Adds ``tech``, ``schema`` and ``report`` to the command-line app (annotations evaluated here, see
    cli/sweep.py)."""
    from cimjax.cli.main import JsonOpt, out, user_errors

    @app.command("tech")
    @user_errors
    def tech_command(as_json: JsonOpt = False) -> None:
        """List every technology constant: value, unit and source (override any with --tech FILE)."""
        from cimjax.hardware.technology import FU_OPS_PER_ELEMENT, MACRO_COLS, MACRO_ROWS, PARAMETERS

        rows = [{"name": n, "value": p.value, "unit": p.unit, "source": p.source, "overridable": True}
                for n, p in PARAMETERS.items()]  # fmt: skip
        rows += [
            {"name": "MACRO_ROWS", "value": MACRO_ROWS, "unit": "inputs", "overridable": False,
             "source": "EdgeCIM PE: a 16x16 SRAM macro sums 16 inputs per column per cycle"},
            {"name": "MACRO_COLS", "value": MACRO_COLS, "unit": "bit columns", "overridable": False,
             "source": "EdgeCIM PE: a b-bit weight occupies b adjacent bit columns of the 16"},
        ]  # fmt: skip
        rows += [
            {"name": f"fu_ops.{k}", "value": v, "unit": "16-bit ops/element", "overridable": False,
             "source": "functional-unit work per element (reasoning in docs/model.md)"}
            for k, v in FU_OPS_PER_ELEMENT.items()
        ]  # fmt: skip
        if as_json:
            sys.stdout.write(json.dumps({"technology": rows}) + "\n")
            return
        from rich.table import Table

        table = Table("name", "value", "unit", "source", title="technology constants (65 nm CIM, LPDDR5X)")
        for r in rows:
            name = r["name"] if r["overridable"] else f"[dim]{r['name']}[/dim]"
            table.add_row(name, f"{r['value']:.6g}", r["unit"], r["source"])
        out.print(table)
        out.print("Dimmed names are structural; the others can be overridden with --tech FILE (JSON or YAML).")

    @app.command("schema")
    @user_errors
    def schema_command(
        name: Annotated[str, typer.Argument(help="config, space or tech", metavar="[config|space|tech]")],
    ) -> None:
        """Print the JSON Schema of a --config, --space or --tech file (JSON or YAML)."""
        from cimjax.schema import schema

        sys.stdout.write(json.dumps(schema(name), indent=1) + "\n")

    @app.command("report")
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
