"""A design-space study: the exact latency-energy Pareto front of a whole design space, its alpha
optima, its hypervolume, and optionally the paper's GA runs drawn over it.

:func:`sweep_study` writes to a directory: ``pareto.csv`` and ``pareto.json`` (every non-dominated design
with its config), ``alpha_optima.csv``, ``summary.json`` (alpha optima, hypervolume, sweep speed, GA runs)
and ``pareto.png``. ``cimjax sweep`` and the benchmarks call it; :func:`load_space` reads the design
space file ``cimjax sweep --space`` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cimjax.validation as validation

# NumPy, JAX and the cost model are imported inside the functions that use them, so that the CLI may
# import this module at start-up (`--help` included) without importing any of them.
if TYPE_CHECKING:
    from cimjax.hardware.config import DesignSpace
    from cimjax.hardware.technology import Technology
    from cimjax.search.exhaustive import SweepResult
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import Precision
    from cimjax.workload.spec import ModelSpec

MAX_DESIGNS = 10**9
"""Largest design space swept (the paper's has 3,136,000; 1e9 designs take about an hour)."""
MAX_GA_RUNS = 1000
"""Most GA runs per alpha (``sweep --ga-runs``) or per model and precision (``reproduce --ga-seeds``): each is a
full run of the paper's GA; a billion used to run until killed."""
HV_MARGIN = 1.1
"""The hypervolume's reference point is this factor times the worst latency and worst energy of the space."""


def load_space(path: Path) -> DesignSpace:
    """A design space from JSON ``{field: [values...]}``; fields left out keep the paper's values."""
    from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace
    from cimjax.jsonfile import read_json

    data = read_json(path, "design space")
    if not isinstance(data, dict):
        raise ValueError(f"design space file {path} must hold a JSON object of field: [values]")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown hardware field(s) {unknown} in {path}; fields are {list(FIELDS)}")
    space = DesignSpace(dict(PAPER_SPACE.values) | data)  # it checks every value
    if space.size > MAX_DESIGNS:
        raise ValueError(f"design space {path} has {space.size:,} designs; allowed: at most {MAX_DESIGNS:,}")
    return space


def _design_row(result: SweepResult, index: int, tokens: int) -> dict:
    """Config and exact metrics of the design at a flat index: the ``sweep`` form of a design report."""
    import numpy as np

    from cimjax.results import DesignReport, Metrics

    metrics = Metrics(tokens, *(float(x[index]) for x in (result.latency_s, result.energy_j, result.area_mm2)))
    config = result.space.decode(np.asarray(index)).to_dict()
    return DesignReport(config, metrics, index=int(index)).to_json("sweep")


def _ga_objective(spec, prec, workload, tech, result: SweepResult, alpha: float, scoring: str, area_max=None):
    """The GA's batched objective: the cost model itself (``"model"``) or a look-up in the finished sweep
    (``"table"``: the same exact values, without compiling a second evaluator). Designs above ``area_max``
    score above every design of the space, the more the larger they are (finite: the GA refuses infinity,
    which stands for a cost-model failure), so the GA ranks every design within the limit first and is
    led towards it."""
    if scoring == "model":
        if area_max is not None:
            raise ValueError("GA runs scored by the model do not take --area-max; use scoring 'table'")
        from cimjax.search.ga import PAPER_POP_SIZE, ga_objective

        return ga_objective(spec, prec, workload, tech, result.space, alpha, batch=PAPER_POP_SIZE)

    import numpy as np

    from cimjax.search.pareto import alpha_objective

    worst = float(np.max(alpha_objective(result.latency_s, result.energy_j, alpha)))

    def look_up(choice: np.ndarray) -> np.ndarray:
        index = np.ravel_multi_index(tuple(choice.T), result.space.radices)
        value = alpha_objective(result.latency_s[index], result.energy_j[index], alpha)
        if area_max is None:
            return value
        area = result.area_mm2[index]
        return np.where(area <= area_max, value, worst + area / area_max)

    return look_up


def _ga_runs(objective, result: SweepResult, alpha, best_objective, runs, tokens, advance) -> list[dict]:
    """``runs`` GA runs (seeds 0..runs-1) for one alpha; each best design's metrics come from the exact sweep."""
    import numpy as np

    from cimjax.search.ga import run_ga
    from cimjax.search.pareto import alpha_objective

    out = []
    for seed in range(runs):
        ga = run_ga(objective, result.space, seed=seed)  # the paper's population and generations
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


def _paper_design(result: SweepResult, tokens: int) -> dict | None:
    """The design row of the paper's alpha = 0.5 design, or None when the swept space lacks it."""
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN

    try:
        return _design_row(result, result.space.encode(EDGECIM_ALPHA05_DESIGN), tokens)
    except ValueError:
        return None


def _front_indices(result: SweepResult, area_max: float | None):
    """The exact front (flat indices), of the designs within ``area_max`` when given."""
    import numpy as np

    from cimjax.search.pareto import pareto_front_2d

    if area_max is None:
        return result.pareto_indices()
    result.best(1.0, area_max=area_max)  # raises a clear error if no design fits
    fits = result.area_mm2 <= area_max
    front = pareto_front_2d(np.where(fits, result.latency_s, np.inf), np.where(fits, result.energy_j, np.inf))
    return front[fits[front]]


def _hypervolume(result: SweepResult, finite, front: list[dict]) -> dict:
    """The front's hypervolume in (latency, energy), against :data:`HV_MARGIN` times the worst design."""
    from cimjax.search.pareto import hypervolume

    reference = [HV_MARGIN * float(result.latency_s[finite].max()), HV_MARGIN * float(result.energy_j[finite].max())]
    volume = hypervolume([[d["latency_s"], d["energy_j"]] for d in front], reference)
    return {
        "value": volume,
        "reference": {"latency_s": reference[0], "energy_j": reference[1]},
        "normalised": volume / (reference[0] * reference[1]),
        "note": f"latency x energy of the whole decode; reference = {HV_MARGIN} x the worst design",
    }


def _ga_study(objective: Callable, result: SweepResult, optima, runs: int, tokens: int, progress) -> list[dict]:
    """``runs`` GA runs per alpha optimum, scored by ``objective(alpha)`` (a batched objective); reports
    ``("ga", done, total)`` to ``progress``."""
    done, ga = 0, []

    def advance():
        nonlocal done
        done += 1
        if progress:
            progress("ga", done, runs * len(optima))

    for optimum in optima if runs else ():
        alpha = optimum["alpha"]
        ga += _ga_runs(objective(alpha), result, alpha, optimum["objective"], runs, tokens, advance)
    return ga


def sweep_study(
    spec: ModelSpec,
    prec: Precision,
    precision_name: str,
    workload: Workload,
    tech: Technology,
    alphas: Sequence[float],
    out_dir: Path,
    space: DesignSpace | None = None,
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
    from cimjax.report.plots import save, study_plot
    from cimjax.results import make_meta, write_csv, write_json
    from cimjax.search.exhaustive import DEFAULT_CHUNK, sweep
    from cimjax.search.ga import PAPER_GENERATIONS, PAPER_POP_SIZE
    from cimjax.search.pareto import check_alphas
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
    optima = []
    for alpha in alphas:
        index, value = result.best(alpha, tolerance, area_max)
        optima.append({"alpha": alpha, "objective": value} | _design_row(result, index, tokens))

    def objective(alpha):
        return _ga_objective(spec, prec, workload, tech, result, alpha, ga_scoring, area_max)

    ga = _ga_study(objective, result, optima, ga_runs, tokens, progress)

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
        "hypervolume": _hypervolume(result, finite, front),
        "alpha_optima": optima,
        "ga": {
            "runs_per_alpha": ga_runs,
            "pop_size": PAPER_POP_SIZE,
            "generations": PAPER_GENERATIONS,
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
    figure = study_plot(result, front, optima, ga, tokens, f"{spec.name} {precision_name}", paper)
    save(figure, out_dir / "pareto.png")
    summary["files"] = [str(p) for p in (*files, out_dir / "pareto.png", out_dir / "summary.json")]
    write_json(out_dir / "summary.json", summary)
    return summary
