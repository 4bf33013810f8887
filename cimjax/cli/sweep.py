"""``cimjax sweep``: the exact latency-energy Pareto front of a whole design space, its alpha optima, and
optionally the paper's GA runs drawn over it.

Writes to ``--out``: ``pareto.csv`` and ``pareto.json`` (every non-dominated design with its config),
``alpha_optima.csv``, ``summary.json`` (alpha optima, hypervolume, sweep speed, GA runs) and
``pareto.png``. The study itself (:func:`sweep_study`) is a plain function, so benchmarks reuse it.
"""

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cimjax import validation
from cimjax.files import atomic_path, output_dir

# NumPy, JAX and the cost model are imported inside the functions that use them, so that registering
# the command (every `cimjax` start-up, `--help` included) imports none of them.
if TYPE_CHECKING:
    from cimjax.hardware.config import DesignSpace
    from cimjax.hardware.technology import Technology
    from cimjax.search.exhaustive import SweepResult
    from cimjax.workload.models import ModelSpec
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import Precision

GA_POP, GA_GENERATIONS = 20, 50  # the paper's GA
MAX_DESIGNS = 10**9
"""Largest design space swept (the paper's has 3,136,000; 1e9 designs take about an hour)."""
MAX_GA_RUNS = 1000
HV_MARGIN = 1.1
"""The hypervolume's reference point is this factor times the worst latency and worst energy of the space."""


def parse_alphas(text: str) -> list[float]:
    """``"0,0.25,1"`` -> ``[0.0, 0.25, 1.0]``, each checked to lie in [0, 1]."""
    from cimjax.search.pareto import check_alphas

    alphas = []
    for item in text.split(","):
        try:
            alpha = float(item)
        except ValueError:
            raise ValueError(f"--alphas must be comma-separated numbers in [0, 1], got {item.strip()!r}") from None
        check_alphas(alpha)
        alphas.append(alpha)
    return alphas


def load_space(path: Path) -> "DesignSpace":
    """A design space from JSON ``{field: [values...]}``; fields left out keep the paper's values."""
    from cimjax.hardware.config import FIELD_LIMITS, FIELDS, PAPER_SPACE, DesignSpace
    from cimjax.jsonfile import read_json

    data = read_json(path, "design space")
    if not isinstance(data, dict):
        raise ValueError(f"design space file {path} must hold a JSON object of field: [values]")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown hardware field(s) {unknown} in {path}; fields are {list(FIELDS)}")
    for name, values in data.items():
        if not isinstance(values, list) or not values:
            raise validation.fail(f"design space field {name!r}", values, "allowed: a non-empty list of integers")
        for value in values:
            validation.integer(f"design space field {name!r} value", value, 1, FIELD_LIMITS[name])
    space = DesignSpace(dict(PAPER_SPACE.values) | {name: tuple(values) for name, values in data.items()})
    if space.size > MAX_DESIGNS:
        raise ValueError(f"design space {path} has {space.size:,} designs; allowed: at most {MAX_DESIGNS:,}")
    return space


def _design_row(result: "SweepResult", index: int, tokens: int) -> dict:
    """Config and exact metrics of the design at a flat index, JSON-ready."""
    import numpy as np

    latency, energy = float(result.latency_s[index]), float(result.energy_j[index])
    config = result.space.decode(np.asarray(index)).to_dict()
    return {
        "index": int(index),
        "config": config,
        "latency_s": latency,
        "energy_j": energy,
        "tokens_per_s": tokens / latency,
        "tokens_per_j": tokens / energy,
        "area_mm2": float(result.area_mm2[index]),
    }


def _ga_objective(spec, prec, workload, tech, result: "SweepResult", alpha: float, scoring: str, area_max=None):
    """The GA's batched objective: the cost model itself (``"model"``) or a look-up in the finished sweep
    (``"table"``: the same exact values, without compiling a second evaluator; designs above ``area_max``
    score inf)."""
    if scoring == "model":
        if area_max is not None:
            raise ValueError("GA runs scored by the model do not take --area-max; use scoring 'table'")
        from cimjax.search.runner import ga_objective

        return ga_objective(spec, prec, workload, tech, result.space, alpha, batch=GA_POP)

    import numpy as np

    from cimjax.search.pareto import alpha_objective

    def look_up(choice: np.ndarray) -> np.ndarray:
        index = np.ravel_multi_index(tuple(choice.T), result.space.radices)
        value = alpha_objective(result.latency_s[index], result.energy_j[index], alpha)
        return value if area_max is None else np.where(result.area_mm2[index] <= area_max, value, np.inf)

    return look_up


def _ga_runs(objective, result: "SweepResult", alpha, best_objective, runs, tokens, advance) -> list[dict]:
    """``runs`` GA runs (seeds 0..runs-1) for one alpha; each best design's metrics come from the exact sweep."""
    import numpy as np

    from cimjax.search.ga import run_ga  # pymoo is imported only when a GA runs
    from cimjax.search.pareto import alpha_objective

    out = []
    for seed in range(runs):
        ga = run_ga(objective, result.space, pop_size=GA_POP, n_gen=GA_GENERATIONS, seed=seed)
        index = int(np.ravel_multi_index(tuple(ga.best_choice), result.space.radices))
        value = float(alpha_objective(result.latency_s[index], result.energy_j[index], alpha))
        row = _design_row(result, index, tokens)
        out.append(
            row
            | {
                "alpha": alpha,
                "seed": seed,
                "objective": value,
                "gap_to_optimum": value / best_objective - 1.0,
                "evaluations": ga.evaluations,
                "wall_s": ga.wall_s,
            }
        )
        advance()
    return out


def _paper_design(result: "SweepResult", tokens: int) -> dict | None:
    """The design row of the paper's alpha = 0.5 design, or None when the swept space lacks it."""
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN

    try:
        return _design_row(result, result.space.encode(EDGECIM_ALPHA05_DESIGN), tokens)
    except ValueError:
        return None


def _front_indices(result: "SweepResult", area_max: float | None):
    """The exact front (flat indices), of the designs within ``area_max`` when given."""
    import numpy as np

    from cimjax.search.pareto import pareto_front_2d

    if area_max is None:
        return result.pareto_indices()
    result.best(1.0, area_max=area_max)  # raises a clear error if no design fits
    fits = result.area_mm2 <= area_max
    front = pareto_front_2d(np.where(fits, result.latency_s, np.inf), np.where(fits, result.energy_j, np.inf))
    return front[fits[front]]


def sweep_study(
    spec: "ModelSpec",
    prec: "Precision",
    precision_name: str,
    workload: "Workload",
    tech: "Technology",
    alphas: Sequence[float],
    out_dir: Path,
    space: "DesignSpace | None" = None,
    ga_runs: int = 0,
    ga_scoring: str = "table",
    progress: Callable[[str, int, int], None] | None = None,
    tolerance: float = 0.0,
    area_max: float | None = None,
) -> dict:
    """Sweeps ``space`` exactly, then writes the Pareto front, alpha optima, GA runs and plot to ``out_dir``.

    The GA scores designs with ``ga_scoring``: ``"table"`` looks them up in the sweep (fast, identical
    values), ``"model"`` calls the cost model per generation as :func:`cimjax.search.runner.search` does
    (realistic GA wall times). ``progress(stage, done, total)`` reports the sweep (designs) and the GA
    (runs). ``space`` defaults to the paper's. ``area_max`` (mm^2) keeps larger designs out of the front,
    the optima and the GA; ``tolerance`` applies the near-tie rule of :meth:`SweepResult.best` to each alpha
    optimum. Returns the summary written to ``summary.json`` (the front itself is in ``pareto.json``).
    """
    import numpy as np

    from cimjax.hardware.config import PAPER_SPACE
    from cimjax.results import make_meta, write_csv, write_json
    from cimjax.search.exhaustive import DEFAULT_CHUNK, sweep
    from cimjax.search.pareto import check_alphas, hypervolume
    from cimjax.validation import check_limits

    check_limits(tolerance, area_max)
    space = space or PAPER_SPACE
    validation.integer("--ga-runs", ga_runs, 0, MAX_GA_RUNS)
    if ga_scoring not in ("table", "model"):
        raise ValueError(f"ga_scoring must be 'table' or 'model', got {ga_scoring!r}")
    alphas = list(alphas)
    if not alphas:
        raise ValueError("give at least one alpha")
    check_alphas(alphas)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = workload.generate

    report = (lambda done, total: progress("sweep", done, total)) if progress else None
    result = sweep(spec, prec, workload, tech, space, chunk=min(DEFAULT_CHUNK, space.size), progress=report)
    finite = np.isfinite(result.latency_s) & np.isfinite(result.energy_j)
    front = [_design_row(result, i, tokens) for i in _front_indices(result, area_max)]
    reference = [HV_MARGIN * float(result.latency_s[finite].max()), HV_MARGIN * float(result.energy_j[finite].max())]
    volume = hypervolume([[d["latency_s"], d["energy_j"]] for d in front], reference)

    optima = []
    for alpha in alphas:
        index, value = result.best(alpha, tolerance, area_max)
        optima.append({"alpha": alpha, "objective": value} | _design_row(result, index, tokens))

    ga = []
    if ga_runs:
        done = 0

        def advance():
            nonlocal done
            done += 1
            if progress:
                progress("ga", done, ga_runs * len(alphas))

        for optimum in optima:
            alpha = optimum["alpha"]
            objective = _ga_objective(spec, prec, workload, tech, result, alpha, ga_scoring, area_max)
            ga += _ga_runs(objective, result, alpha, optimum["objective"], ga_runs, tokens, advance)

    summary = {
        "model": spec.id,
        "precision": precision_name,
        "workload": {"prefill": workload.prefill, "generate": workload.generate},
        "designs": result.evaluations,  # distinct designs (mirror images folded, see cimjax.search.symmetry)
        "space_designs": int(result.latency_s.size),
        "feasible_designs": int(finite[result.distinct_indices].sum()),
        "compile_s": result.compile_s,
        "sweep_s": result.wall_s,
        "designs_per_s": result.designs_per_s,
        "pareto_size": len(front),
        "area_max": area_max,
        "tolerance": tolerance,
        "hypervolume": {
            "value": volume,
            "reference": {"latency_s": reference[0], "energy_j": reference[1]},
            "normalised": volume / (reference[0] * reference[1]),
            "note": f"latency x energy of the whole decode; reference = {HV_MARGIN} x the worst design",
        },
        "alpha_optima": optima,
        "ga": {
            "runs_per_alpha": ga_runs,
            "pop_size": GA_POP,
            "generations": GA_GENERATIONS,
            "scoring": ga_scoring,
            "results": ga,
        },
    }
    meta = make_meta(workload, tech)
    summary["meta"] = meta
    files = write_csv(out_dir / "pareto.csv", front, meta)
    write_json(out_dir / "pareto.json", {"model": spec.id, "precision": precision_name, "front": front, "meta": meta})
    files += [out_dir / "pareto.json", *write_csv(out_dir / "alpha_optima.csv", optima, meta)]
    paper = _paper_design(result, tokens)
    plot_front(out_dir / "pareto.png", result, front, optima, ga, tokens, f"{spec.name} {precision_name}", paper)
    summary["files"] = [str(p) for p in (*files, out_dir / "pareto.png", out_dir / "summary.json")]
    write_json(out_dir / "summary.json", summary)
    return summary


ZOOM = 1.6
"""The plot's right panel shows designs within this factor of the fastest design's latency."""


def plot_front(path: Path, result: "SweepResult", front, optima, ga, tokens: int, title: str, paper=None) -> None:
    """Energy/token vs latency/token (log axes) via :func:`cimjax.report.plots.pareto_plot`: designs coloured
    by area, the exact front (distinct designs), the paper's design (``paper``: a design row, or None when
    it is outside the space), alpha optima and GA results; the left panel shows the whole space, the right
    one zooms on the fast end of the front."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    from cimjax.report.plots import pareto_plot, readable_log_axis

    scale = 1e3 / tokens  # whole-decode seconds (joules) -> ms (mJ) per token
    indices = np.asarray([d["index"] for d in front])
    front_x = np.asarray([d["latency_s"] for d in front]) * scale
    front_y = np.asarray([d["energy_j"] for d in front]) * scale
    colours = matplotlib.colormaps["plasma"]
    marks = {"EdgeCIM paper design (alpha = 0.5)": paper} if paper else {}
    labels: dict[int, list[str]] = {}  # alphas sharing one optimum get one label
    for optimum in optima:
        labels.setdefault(optimum["index"], []).append(f"{optimum['alpha']:g}")

    fig = Figure(figsize=(13.0, 5.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax in axes:
        pareto_plot(result.latency_s, result.energy_j, result.area_mm2, indices, tokens, marks=marks, ax=ax,
                    colorbar=ax is axes[1])  # fmt: skip
        for optimum in optima:
            colour = colours(0.85 * optimum["alpha"])
            runs = [g for g in ga if g["alpha"] == optimum["alpha"]]
            if runs:
                xs = [g["latency_s"] * scale for g in runs]
                ax.scatter(xs, [g["energy_j"] * scale for g in runs], marker="x", s=30, color=colour, alpha=0.8)
            point = (optimum["latency_s"] * scale, optimum["energy_j"] * scale)
            ax.scatter(*point, marker="o", s=110, facecolors="none", edgecolors=colour, linewidths=1.8, zorder=5)
            if optimum["alpha"] == float(labels[optimum["index"]][0]):
                text = "α=" + ",".join(labels[optimum["index"]])
                ax.annotate(text, point, textcoords="offset points", xytext=(7, 6), fontsize=7)
    axes[0].set_title(f"{title}: all designs", fontsize=10)

    fast = front_x <= ZOOM * front_x.min()
    shown_y = [front_y[fast]] + [[g["energy_j"] * scale for g in ga if g["latency_s"] * scale <= ZOOM * front_x.min()]]
    y_low, y_high = 0.97 * front_y[fast].min(), 1.1 * max(np.max(y) for y in shown_y if len(y))
    axes[1].set_xlim(0.98 * front_x.min(), ZOOM * front_x.min())
    axes[1].set_ylim(y_low, y_high)
    readable_log_axis(axes[1], "x", 0.98 * front_x.min(), ZOOM * front_x.min())
    readable_log_axis(axes[1], "y", y_low, y_high)
    axes[1].set_title(f"zoom: within {ZOOM}x of the fastest design", fontsize=10)

    handles, _ = axes[0].get_legend_handles_labels()
    optima_handle = axes[0].scatter([], [], marker="o", facecolors="none", edgecolors="black", label="alpha optima")
    handles.append(optima_handle)
    if ga:
        runs = len({g["seed"] for g in ga})
        handles.append(axes[0].scatter([], [], marker="x", color="black", label=f"GA best design ({runs} runs/alpha)"))
    axes[0].legend(handles=handles, fontsize=7, loc="upper right")
    axes[1].get_legend().remove()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130)


def register(app: typer.Typer) -> None:
    """Adds ``cimjax sweep`` to the command-line app.

    The CLI helpers are imported here, not at module level, so ``cimjax.cli.main`` may import this module;
    the option annotations are evaluated right here, hence no ``from __future__ import annotations``.
    """
    from cimjax.cli.main import (
        Model,
        PrecisionOpt,
        TechOpt,
        ToleranceOpt,
        _technology,
        out,
        progress_bar,
        user_errors,
    )

    @app.command("sweep")
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
        prefill: Annotated[int, typer.Option(help="prompt tokens before decoding")] = 128,
        generate: Annotated[int, typer.Option(help="generated tokens")] = 128,
        tech: TechOpt = None,
        tolerance: ToleranceOpt = 0.0,
        area_max: Annotated[float | None, typer.Option("--area-max", help="chip area limit in mm^2")] = None,
    ) -> None:
        """Sweep the whole design space exactly; write the Pareto front, alpha optima and a plot."""
        from rich.table import Table

        from cimjax.api import resolve_model, resolve_precision
        from cimjax.hardware.config import PAPER_SPACE
        from cimjax.workload.operators import Workload

        spec = resolve_model(model)
        prec = resolve_precision(precision, spec)
        design_space = load_space(space) if space else PAPER_SPACE
        values = parse_alphas(alphas)
        workload = Workload(prefill=prefill, generate=generate)
        technology = _technology(tech)
        start = time.perf_counter()
        with output_dir(out_dir, "--out") as directory, progress_bar("sweep") as bar:
            tasks = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            summary = sweep_study(
                spec,
                prec,
                precision,
                workload,
                technology,
                values,
                directory,
                design_space,
                ga_runs,
                progress=report,
                tolerance=tolerance,
                area_max=area_max,
            )
        table = Table("alpha", "tokens/s", "tokens/J", "area mm²", "C", "T_act", "M", "P²", "buses", title=spec.name)
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
        out.print(table)
        out.print(
            f"{summary['designs']:,} designs in {summary['sweep_s']:.2f} s "
            f"({summary['designs_per_s']:,.0f}/s, compile {summary['compile_s']:.1f} s); "
            f"Pareto front {summary['pareto_size']} designs; total {time.perf_counter() - start:.1f} s"
        )
        out.print(f"wrote {', '.join(summary['files'])}")
