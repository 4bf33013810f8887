"""The ``cimjax`` command line: models, evaluate, search, reproduce, sweep, optimize, proxy, tech, schema, cache.

User errors (unknown model, value outside its allowed set, unreadable file) print one line to stderr
and exit with status 2; with ``--json`` stdout holds exactly one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from cimjax.cli import info, optimize, sweep
from cimjax.cli.cache import cache_app
from cimjax.cli.common import (
    Generate,
    JsonOpt,
    Model,
    PrecisionOpt,
    Prefill,
    TechOpt,
    ToleranceOpt,
    emit,
    err,
    load_technology,
    methods_help,
    out,
    progress_bar,
    user_errors,
)
from cimjax.cli.proxy import proxy_app
from cimjax.interrupts import INTERRUPTED, exit_interrupted, noting_interrupts
from cimjax.search.methods import SEARCH_METHODS

# JAX, NumPy and the cost model are imported inside the commands that use them, so `--help` and
# `models` start in a fraction of a second. Compiled programs are kept on disk by the library itself
# (cimjax.cache), for the CLI and for library users alike.


class _OneLineErrors(TyperGroup):
    """Usage errors typer finds itself (an option that is not an integer, an unknown option) are printed
    as one line too, ``error: <what> (see '<command> --help')``, with their exit status (2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        kwargs = dict(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        if not standalone_mode:
            return super().main(**kwargs)
        try:
            with noting_interrupts() as interrupts:
                code = super().main(**kwargs)
        except typer.TyperException as error:
            if type(error).__name__ != "NoArgsIsHelpError":  # help was printed: nothing to add
                ctx = getattr(error, "ctx", None)
                command = ctx.command_path if ctx is not None else "cimjax"
                message = escape(" ".join(error.format_message().split()))
                err.print(f"[red]error:[/red] {message} (see '{command} --help')", highlight=False)
            sys.exit(getattr(error, "exit_code", 2))
        except typer.Abort:
            err.print("[red]error:[/red] aborted", highlight=False)
            sys.exit(1)
        if interrupts and code != INTERRUPTED:  # Ctrl-C came, but its KeyboardInterrupt was swallowed
            err.print("[red]error:[/red] interrupted (Ctrl-C)", highlight=False)
            code = INTERRUPTED
        if code == INTERRUPTED:
            exit_interrupted()
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True, help=__doc__)


def _print_version(value: bool) -> None:
    if value:
        from cimjax.results import git_commit, version

        commit = git_commit()
        out.print(f"cimjax {version()}" + (f" (git {commit[:12]})" if commit else ""), highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    pass


@app.command()
@user_errors
def models(as_json: JsonOpt = False) -> None:
    """List the built-in models."""
    from dataclasses import asdict

    from cimjax.workload.models import MODELS

    if as_json:
        sys.stdout.write(json.dumps({"models": [asdict(m) for m in MODELS.values()]}) + "\n")
        return
    from rich.box import SIMPLE_HEAD
    from rich.table import Table

    # the id (what --model takes) never wraps; names fold and numbers stay whole on an 80-column terminal
    table = Table(box=SIMPLE_HEAD, pad_edge=False, caption="kv: key/value heads; hd: head_dim; tied: embeddings")
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("name", overflow="fold", max_width=22)
    for header in ("layers", "hidden", "heads", "kv", "hd", "FFN", "vocab", "tied"):
        table.add_column(header, justify="right", no_wrap=True)
    for m in MODELS.values():
        table.add_row(
            m.id,
            m.name,
            *map(str, (m.n_layers, m.hidden, m.n_heads, m.n_kv_heads, m.head_dim, m.ffn, m.vocab)),
            "yes" if m.tied_embeddings else "no",
        )
    out.print(table)


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    model: Model,
    precision: PrecisionOpt = "int8",
    config: Annotated[
        Path | None, typer.Option(help="hardware config, JSON or YAML (e.g. `search --json` output; `schema config`)")
    ] = None,
    c_v: Annotated[int | None, typer.Option(help="clusters, vertical (1-5)")] = None,
    c_h: Annotated[int | None, typer.Option(help="clusters, horizontal (1-5)")] = None,
    t_v_act: Annotated[int | None, typer.Option(help="active tiles per cluster, vertical (2-8)")] = None,
    t_h_act: Annotated[int | None, typer.Option(help="active tiles per cluster, horizontal (2-8)")] = None,
    m: Annotated[int | None, typer.Option(help="tile sets per cluster, T_total = m * T_A (1-8)")] = None,
    pes_per_tile: Annotated[int | None, typer.Option(help="P^2: 4, 9, 16, 25 or 36")] = None,
    bus_inter_cluster: Annotated[int | None, typer.Option(help="bits: 512, 1024, 2048, 4096")] = None,
    bus_inter_tile: Annotated[int | None, typer.Option(help="bits: 512, 1024, 2048, 4096")] = None,
    bus_intra_tile: Annotated[int | None, typer.Option(help="bits: 512, 1024, 2048, 4096")] = None,
    prefill: Prefill = 128,
    generate: Generate = 128,
    tech: TechOpt = None,
    plot: Annotated[
        str | None, typer.Option("--plot", help="write the stacked latency/energy breakdown chart (.png, .svg, .pdf)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate one design exactly. Fields not given come from --config, else the paper's alpha=0.5 design."""
    from cimjax.api import evaluate_design, load_config
    from cimjax.workload.operators import Workload

    if plot is not None:  # before any work: a chart path that cannot be written is refused by name
        from cimjax.files import check_output_file
        from cimjax.report.plots import formats

        check_output_file(plot, "--plot", formats())
    values = {} if config is None else load_config(config)
    flags = {
        "c_v": c_v, "c_h": c_h, "t_v_act": t_v_act, "t_h_act": t_h_act, "m": m, "pes_per_tile": pes_per_tile,
        "bus_inter_cluster": bus_inter_cluster, "bus_inter_tile": bus_inter_tile, "bus_intra_tile": bus_intra_tile,
    }  # fmt: skip
    values |= {k: v for k, v in flags.items() if v is not None}
    workload = Workload(prefill=prefill, generate=generate)
    report = evaluate_design(model, precision, values, workload, load_technology(tech))
    emit(report, as_json, f"{report['model']} {precision}")
    if plot is not None:
        from cimjax.report.plots import breakdown_plot, save

        save(breakdown_plot(report, [f"{report['model']} {precision}"]), plot, flag="--plot")
        (err if as_json else out).print(f"wrote {plot}", highlight=False)


@app.command("search")
@user_errors
def search_cmd(
    model: Model,
    precision: PrecisionOpt = "int8",
    alpha: Annotated[float, typer.Option(help="objective L^alpha * E^(1-alpha), alpha in [0, 1]")] = 1.0,
    method: Annotated[
        str, typer.Option(metavar=f"[{'|'.join(SEARCH_METHODS)}]", help=methods_help(SEARCH_METHODS))
    ] = "exhaustive",
    seed: Annotated[int, typer.Option(help="random seed (ga, gradient)")] = 0,
    tolerance: ToleranceOpt = 0.0,
    area_max: Annotated[
        float | None, typer.Option("--area-max", help="chip area limit in mm^2 (exhaustive only)")
    ] = None,
    prefill: Prefill = 128,
    generate: Generate = 128,
    tech: TechOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the paper's design space for the design minimising L^alpha E^(1-alpha)."""
    from cimjax.search.runner import search
    from cimjax.workload.operators import Workload

    workload = Workload(prefill=prefill, generate=generate)
    with progress_bar(f"{method} search") as bar:
        task = bar.add_task(method, total=None)
        report = search(
            model, precision, alpha, method, seed=seed, workload=workload, tech=load_technology(tech),
            progress=lambda done, total: bar.update(task, completed=done, total=total), tolerance=tolerance,
            area_max=area_max,
        )  # fmt: skip
    emit(report, as_json, f"best design: {report['model']} {precision} alpha={alpha} ({method})")


@app.command()
@user_errors
def reproduce(
    out_dir: Annotated[str, typer.Option("--out", help="output directory")] = "results/reproduce",
    models: Annotated[str | None, typer.Option(help="comma-separated model ids (default: all twelve)")] = None,
    selection: Annotated[
        str, typer.Option(help="row beside the paper: 'exhaustive' (alpha=1 optimum), 'knee' or 'robust'")
    ] = "exhaustive",
    tolerance: Annotated[
        float, typer.Option(help="knee, robust: designs within this fraction of the best alpha=1 latency qualify")
    ] = 0.01,
    knee: Annotated[str, typer.Option(help="knee, robust: qualifying design of lowest 'energy' or 'area'")] = "energy",
    margin: Annotated[
        float, typer.Option(help="robust: clock derating the design must stay within --tolerance under")
    ] = 0.25,
    ga_seeds: Annotated[int, typer.Option(help="runs of the paper's GA (seeds 0..n-1); 0 skips it")] = 5,
    tech: TechOpt = None,
) -> None:
    """Reproduce the paper's per-model results (Fig. 9 style) and write JSON, CSV, Markdown and plots.

    Per model and precision: the exhaustive alpha=1 optimum, the knee, the robust design (with
    --selection robust: one more sweep each), and the paper's GA over several seeds; --selection says
    which stands beside the paper (see docs/model.md, section 9).
    """
    from cimjax.cli.paper_table import reproduce_table
    from cimjax.files import output_dir
    from cimjax.report.paper import reproduce_paper, write_directory_meta
    from cimjax.workload.models import MODELS

    ids = models.split(",") if models is not None else None
    if ids is not None and not all(i in MODELS for i in ids):
        raise ValueError(f"--models = {models!r} is not allowed; allowed: comma-separated ids of {', '.join(MODELS)}")
    technology = load_technology(tech)
    with output_dir(out_dir, "--out") as directory, progress_bar("reproducing") as bar:
        task = bar.add_task("reproduce", total=None)
        summary = reproduce_paper(
            directory, ids, technology, progress=lambda done, total: bar.update(task, completed=done, total=total),
            selection=selection, tolerance=tolerance, knee=knee, margin=margin, ga_seeds=ga_seeds,
        )  # fmt: skip
        write_directory_meta(directory, summary["files"], technology)
    title = f"EdgeCIM reproduced: the {selection} designs beside the paper"
    out.print(reproduce_table(summary["records"], title))
    out.print(f"full tables (bus widths, energy split, knee and the paper's GA over seeds): {directory / 'fig9.md'}")
    out.print(f"wrote {', '.join([*summary['files'], 'meta.json'])}")


app.add_typer(proxy_app, name="proxy", help="Validate the accuracy proxy; sensitivities of a checkpoint.")
sweep.register(app)
optimize.register(app)
info.register(app)
app.add_typer(cache_app, name="cache", help="See what the cache directory holds; delete entries of it.")
