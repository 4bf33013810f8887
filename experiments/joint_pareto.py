"""Accuracy-proxy vs tokens/s and tokens/J Pareto fronts of the twelve SLMs: joint gradient (ours) vs baselines.

For every model, objective (alpha = 1: tokens/s, alpha = 0: tokens/J) and budget (the proxy of uniform
INT4 ... INT8), each method solves the same :class:`cimjax.joint.problem.JointProblem`:

* ``gradient``: ours, :func:`cimjax.joint.optimizer.optimize` (default settings);
* ``uniform``: (a) one width everywhere, hardware exhaustive (the paper's approach);
* ``sequential``: (b) hardware at INT8, then MILP bit allocation, alternating;
* ``ga``: (c) a joint GA with as many exact evaluations as ours spent on that problem (relaxed included).

Every run is stored as ``runs/<model>_a<alpha>_<budget>_<method>.json`` as soon as it ends, and existing
runs are skipped, so an interrupted experiment resumes where it stopped. Then ``summary.json``,
``summary.md`` (gains, hypervolumes, wall times) and ``pareto_tokens_per_s.png`` /
``pareto_tokens_per_j.png`` are written from whatever runs exist.

Hypervolume: in the plane (log10 proxy, -metric), both minimised, reference point (log10 of 1.1 x the
largest budget, 0); reported normalised by (log-range x the best metric of any method) so models compare.

    python experiments/joint_pareto.py --out results/joint [--models llama3.2-1b,...] [--alphas 1,0]
        [--widths 4,5,6,7,8] [--methods gradient,uniform,sequential,ga]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from cimjax import validation
from cimjax.cli.common import parse_alphas
from cimjax.files import output_dir_argument
from cimjax.joint.methods import GA_EVALUATIONS
from cimjax.joint.problem import make_problem, proxy_values
from cimjax.joint.runner import run_method
from cimjax.quant.default_proxy import DEFAULT_ASSUMPTION, DEFAULT_GAIN_CAP, DEFAULT_GAIN_CAP_NOTE, default_proxy
from cimjax.search.pareto import hypervolume
from cimjax.workload.models import MODELS, get_model
from cimjax.workload.precision import MAX_BITS, MIN_BITS, N_POINTS, PRESETS, table_from_bits

METHODS = ("gradient", "uniform", "sequential", "ga")
METRICS = {"tokens_per_s": 1.0, "tokens_per_j": 0.0}  # metric -> the alpha that optimises it


def budget_of(spec, width: int):
    """``int8``/``int6``/``int4`` by name, other widths as the proxy's number at that uniform width."""
    name = f"int{width}"
    if name in PRESETS:
        return name
    return float(proxy_values(default_proxy(spec), np.full((1, spec.n_layers, N_POINTS), float(width)))[0])


def run_one(path: Path, spec, alpha: float, width: int, method: str, seed: int, ga_evaluations: int) -> dict:
    """One method on one problem; stored at ``path`` (and read back if it exists)."""
    if path.exists():
        return json.loads(path.read_text())
    problem = make_problem(spec, budget_of(spec, width), alpha=alpha)
    start = time.perf_counter()
    if method == "uniform":
        from cimjax.joint.baselines import uniform_baseline

        result = uniform_baseline(problem)
        report, evaluations = result.report, result.evaluations
    else:
        report, evaluations = run_method(problem, method, seed=seed, evaluations=ga_evaluations)
    record = report | {
        "model": spec.id,
        "alpha": alpha,
        "width": width,
        "method": method,
        "evaluations": evaluations,
        "wall_s": time.perf_counter() - start,
        "assumption": problem.proxy.assumption,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record) + "\n")
    return record


def _hv(points: list[tuple[float, float]], x_ref: float, y_scale: float) -> float:
    pts = np.array([(math.log10(p), -m / y_scale) for p, m in points])
    return hypervolume(pts, np.array([x_ref, 0.0]))


def summarise(records: list[dict]) -> dict:
    """Gains over the uniform baseline, normalised hypervolumes and wall times, from the stored runs."""
    by = {(r["model"], r["alpha"], r["width"], r["method"]): r for r in records}
    models = sorted({r["model"] for r in records}, key=list(MODELS).index)
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    gains, hv = {}, {}
    for model in models:
        for metric, alpha in METRICS.items():
            runs = [r for r in records if r["model"] == model and r["alpha"] == alpha]
            if not runs:
                continue
            for r in runs:
                base = by.get((model, alpha, r["width"], "uniform"))
                if base and r["method"] != "uniform":
                    gains.setdefault(f"{model}|{metric}|int{r['width']}", {})[r["method"]] = r[metric] / base[metric]
            x_ref = math.log10(1.1 * max(r["budget"] for r in runs))
            y_scale = max(r[metric] for r in runs)
            x_span = x_ref - math.log10(min(r["proxy"] for r in runs))
            widths = sorted({r["width"] for r in runs})
            for method in methods:
                pts = [(by[k]["proxy"], by[k][metric]) for w in widths if (k := (model, alpha, w, method)) in by]
                if len(pts) == len(widths):  # only complete fronts are compared
                    hv.setdefault(f"{model}|{metric}", {})[method] = _hv(pts, x_ref, y_scale) / x_span
    walls = {m: [r["wall_s"] for r in records if r["method"] == m] for m in methods}
    return {
        "gains": gains,
        "hypervolume": hv,
        "wall_s": {
            m: {"median": float(np.median(w)), "max": float(np.max(w)), "runs": len(w)} for m, w in walls.items()
        },
        "evaluations": {m: float(np.median([r["evaluations"] for r in records if r["method"] == m])) for m in methods},
        "infeasible_reports": sum(not r["feasible"] for r in records),
        "assumption": next((r["assumption"] for r in records if r.get("assumption")), None),
    }


def markdown(summary: dict) -> str:
    """The gains and hypervolume tables as Markdown."""
    lines = ["## Gain in tokens/s over the best uniform design at the same budget (alpha = 1)", ""]
    lines += [f"Proxy: {DEFAULT_ASSUMPTION}", "", f"Gain cap: {DEFAULT_GAIN_CAP_NOTE}.", ""]
    methods = [m for m in METHODS if m != "uniform"]
    lines += ["| model | budget | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for key, g in summary["gains"].items():
        model, metric, budget = key.split("|")
        if metric == "tokens_per_s":
            cells = " | ".join(f"{g[m]:.3f}" if m in g else "-" for m in methods)
            lines.append(f"| {model} | {budget} | {cells} |")
    lines += ["", "## Normalised hypervolume (proxy vs metric; higher is better)", ""]
    cols = list(METHODS)
    lines += ["| model | metric | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for key, h in summary["hypervolume"].items():
        model, metric = key.split("|")
        lines.append(f"| {model} | {metric} | " + " | ".join(f"{h[m]:.4f}" if m in h else "-" for m in cols) + " |")
    lines += ["", "## Wall time per run (s)", "", "| method | median | max | runs | median evaluations |"]
    lines += ["|---|---|---|---|---|"]
    for m, w in summary["wall_s"].items():
        lines.append(f"| {m} | {w['median']:.1f} | {w['max']:.1f} | {w['runs']} | {summary['evaluations'][m]:.0f} |")
    if summary["assumption"]:
        lines += ["", f"Proxy: {summary['assumption']}"]
    return "\n".join(lines) + "\n"


def plot(records: list[dict], metric: str, path: Path) -> None:
    """One panel per model: proxy (log) vs the metric, one line per method."""
    from matplotlib.figure import Figure

    alpha = METRICS[metric]
    models = sorted({r["model"] for r in records if r["alpha"] == alpha}, key=list(MODELS).index)
    if not models:
        return
    cols = min(4, len(models))
    rows = math.ceil(len(models) / cols)
    fig = Figure(figsize=(4 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, model in zip(axes.flat, models, strict=False):
        for method, marker in zip(METHODS, "o^sx", strict=True):
            runs = sorted(
                (r for r in records if r["model"] == model and r["alpha"] == alpha and r["method"] == method),
                key=lambda r: r["proxy"],
            )
            if runs:
                ax.plot([r["proxy"] for r in runs], [r[metric] for r in runs], marker=marker, label=method)
        ax.set_xscale("log")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("accuracy proxy (nats/token)", fontsize=8)
        ax.set_ylabel(metric.replace("_", " "), fontsize=8)
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("default proxy (no weights: equal sensitivity per MAC assumed); gain over uniform capped at "
                 f"~{DEFAULT_GAIN_CAP['int8']:.2f}x (INT8) / ~{DEFAULT_GAIN_CAP['int4']:.2f}x (INT4)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_bits(records: list[dict], path: Path) -> None:
    """Our per-layer bits (alpha = 1, tightest budget) for every model: layers down, the 17 tensors across."""
    from matplotlib.figure import Figure

    from cimjax.report.plots import bit_heatmap

    ours = [r for r in records if r["method"] == "gradient" and r["alpha"] == 1.0]
    if not ours:
        return
    width = min(r["width"] for r in ours)
    ours = sorted((r for r in ours if r["width"] == width), key=lambda r: list(MODELS).index(r["model"]))
    cols = min(4, len(ours))
    rows = math.ceil(len(ours) / cols)
    fig = Figure(figsize=(4.2 * cols, 5.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, r in zip(axes.flat, ours, strict=False):
        bit_heatmap(table_from_bits(r["bits"]), f"{r['model']} ({r['tokens_per_s']:.0f} tok/s)", ax=ax, colorbar=False)
    for ax in list(axes.flat)[len(ours) :]:
        ax.axis("off")
    fig.colorbar(axes.flat[0].images[0], ax=axes, label="bits", shrink=0.6)
    fig.suptitle(f"joint (ours) bits at the int{width} budget, alpha = 1")
    fig.savefig(path, dpi=120)


def _parse(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list, list, list, list]:
    """The models, alphas, widths and methods the options name, every value checked before the first run
    (argparse's one-line error naming the option)."""
    try:
        methods = validation.names("--methods", args.methods, METHODS)
        specs = [get_model(m) for m in args.models.split(",")]
        alphas = parse_alphas(args.alphas)
        widths = [validation.integer("--widths", _whole(w), MIN_BITS, MAX_BITS) for w in args.widths.split(",")]
        validation.seed("--seed", args.seed)
    except ValueError as err:
        parser.error(str(err))
    return specs, alphas, widths, methods


def _whole(text: str) -> int | str:
    """``text`` as an int when it spells one, else as it is (for the check to name)."""
    try:
        return int(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_dir_argument, default=Path("results/joint"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--alphas", default="1,0")
    parser.add_argument("--widths", default="4,5,6,7,8", help="budgets: the proxy at these uniform widths")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary-only", action="store_true", help="only summarise the runs already stored")
    args = parser.parse_args(argv)

    specs, alphas, widths, methods = _parse(parser, args)
    runs = args.out / "runs"
    if not args.summary_only:
        jobs = [(s, a, w, m) for s in specs for a in alphas for w in widths for m in methods]
        for i, (spec, alpha, width, method) in enumerate(jobs, 1):
            path = runs / f"{spec.id}_a{alpha:g}_int{width}_{method}.json"
            fresh = not path.exists()
            t0 = time.perf_counter()
            ours = runs / f"{spec.id}_a{alpha:g}_int{width}_gradient.json"
            ga_evaluations = json.loads(ours.read_text())["evaluations"] if ours.exists() else GA_EVALUATIONS
            r = run_one(path, spec, alpha, width, method, args.seed, ga_evaluations)
            if fresh:
                print(
                    f"[{i}/{len(jobs)}] {spec.id} alpha={alpha:g} int{width} {method}: {r['tokens_per_s']:.1f} tok/s "
                    f"{r['tokens_per_j']:.1f} tok/J proxy {r['proxy']:.3g}/{r['budget']:.3g} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    records = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]
    summary = summarise(records)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(summary)
    (args.out / "summary.md").write_text(text)
    for metric in METRICS:
        plot(records, metric, args.out / f"pareto_{metric}.png")
    plot_bits(records, args.out / "bits_ours.png")
    print(text)
    return 0


if __name__ == "__main__":
    validation.run_script(main)
