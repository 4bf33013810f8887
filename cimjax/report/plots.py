"""Plot helpers shared by the CLI, the experiments and the notebook tour.

Each helper draws on a ``matplotlib.figure.Figure`` built without pyplot, so importing or calling it never
changes the active backend (a notebook's inline backend stays on) and a Figure returned as a cell's last
expression is displayed by Jupyter. Pass ``ax=`` to draw into an existing axes instead.

* :func:`pareto_plot`: latency vs energy per token, designs coloured by chip area, the exact front with
  distinct designs only (mirror designs such as c_v <-> c_h have identical costs), chosen and paper
  designs marked.
* :func:`study_plot`: a sweep study's two panels (whole space; zoom on the fast end of the front) with
  its alpha optima and GA results on top of :func:`pareto_plot`.
* :func:`breakdown_plot`: stacked latency (by operator) and energy (by component) bars of one or more
  evaluated designs.
* :func:`bit_heatmap`: the per-layer bit table of a mixed-precision design.
* :func:`readable_log_axis`: log axes whose ticks are labelled in plain numbers even within one decade.
* :func:`scatter_plot`: predicted against measured loss of every proxy variant of a proxy validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure(ax, size):
    """``(figure, axes)``: the given axes' figure, or a new pyplot-free figure of ``size`` inches."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def readable_log_axis(ax, which: str, low: float, high: float) -> None:
    """Makes ``ax``'s ``which`` ("x" or "y") axis logarithmic over data in ``[low, high]`` with several
    plain-number labels: 1-2-5 ticks over a wide range, every integer multiple within a narrow one."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    span = high / low if low > 0 else np.inf
    subs = (1.0,) if span > 300 else (1.0, 2.0, 5.0) if span > 4 else tuple(np.arange(1.0, 10.0))
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10.0, subs=tuple(np.arange(1.0, 10.0))))
    axis.set_minor_formatter(NullFormatter())


def distinct(*columns: np.ndarray) -> np.ndarray:
    """Indices of the first row of each distinct combination of values (rows with identical costs are one
    design as far as a plot can tell), in their original order."""
    stacked = np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1)
    _, first = np.unique(stacked, axis=0, return_index=True)
    return np.sort(first)


def pareto_plot(
    latency_s: np.ndarray,
    energy_j: np.ndarray,
    area_mm2: np.ndarray,
    front: np.ndarray,
    tokens: int,
    *,
    marks: Mapping[str, Mapping] | None = None,
    sample: int = 20_000,
    title: str = "",
    ax=None,
    colorbar: bool = True,
):
    """Energy per token vs latency per token (ms, mJ; log axes) of a swept space.

    ``front``: indices of the Pareto-optimal designs (e.g. ``SweepResult.pareto_indices()``), drawn once
    per distinct (latency, energy, area). ``marks``: label -> a report with ``latency_s`` and ``energy_j``
    (e.g. ``{"chosen": best, "paper design": evaluate_design(...)}``), drawn as large symbols. Up to
    ``sample`` designs of the space are drawn as small dots coloured by area (``colorbar``: draw its scale).
    Returns the Figure.
    """
    from matplotlib.colors import LogNorm

    fig, ax = _figure(ax, (7.0, 5.0))
    scale = 1e3 / tokens
    latency, energy, area = (np.asarray(a, dtype=np.float64) for a in (latency_s, energy_j, area_mm2))
    finite = np.flatnonzero(np.isfinite(latency) & np.isfinite(energy))
    shown = np.random.default_rng(0).choice(finite, size=min(sample, finite.size), replace=False)
    norm = LogNorm(vmin=float(area[finite].min()), vmax=float(area[finite].max()))
    label = f"designs ({len(shown):,} of {finite.size:,} shown)"
    ax.scatter(latency[shown] * scale, energy[shown] * scale, c=area[shown], s=2, cmap="viridis", norm=norm,
               alpha=0.35, rasterized=True, label=label)  # fmt: skip
    front = np.asarray(front)
    unique = front[distinct(latency[front], energy[front], area[front])]
    unique = unique[np.argsort(latency[unique])]
    ax.plot(latency[unique] * scale, energy[unique] * scale, color="black", lw=0.8, drawstyle="steps-post")
    label = f"Pareto front: {len(unique)} distinct designs ({len(front)} with mirror designs)"
    points = ax.scatter(latency[unique] * scale, energy[unique] * scale, c=area[unique], cmap="viridis", norm=norm,
                        s=28, edgecolors="black", linewidths=0.6, zorder=3, label=label)  # fmt: skip
    styles = [("*", "crimson", 260), ("D", "darkorange", 90), ("P", "deepskyblue", 110), ("X", "magenta", 110)]
    for (label, report), (marker, colour, size) in zip((marks or {}).items(), styles, strict=False):
        ax.scatter(report["latency_s"] * scale, report["energy_j"] * scale, marker=marker, s=size, color=colour,
                   edgecolors="black", linewidths=0.7, zorder=4, label=label)  # fmt: skip
    xs = np.concatenate([latency[shown], [r["latency_s"] for r in (marks or {}).values()]]) * scale
    ys = np.concatenate([energy[shown], [r["energy_j"] for r in (marks or {}).values()]]) * scale
    readable_log_axis(ax, "x", xs.min(), xs.max())
    readable_log_axis(ax, "y", ys.min(), ys.max())
    ax.set_xlabel("decode latency per token (ms)")
    ax.set_ylabel("decode energy per token (mJ)")
    ax.grid(True, which="major", lw=0.3, alpha=0.6)
    ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(points, ax=ax, label="chip area (mm²)")
    ax.legend(fontsize=7, loc="upper right")
    return fig


ZOOM = 1.6
""":func:`study_plot`'s right panel shows designs within this factor of the fastest design's latency."""


def study_plot(result, front, optima, ga, tokens: int, title: str, paper=None):
    """Energy/token vs latency/token (log axes) of a sweep study (:mod:`cimjax.report.study`) via
    :func:`pareto_plot`: designs coloured by area, the exact front (distinct designs), the paper's design
    (``paper``: a design row, or None when it is outside the space), alpha optima and GA results; the left
    panel shows the whole space, the right one zooms on the fast end of the front. Returns the Figure."""
    from matplotlib.figure import Figure

    scale = 1e3 / tokens  # whole-decode seconds (joules) -> ms (mJ) per token
    indices = np.asarray([d["index"] for d in front])
    marks = {"EdgeCIM paper design (alpha = 0.5)": paper} if paper else {}
    fig = Figure(figsize=(13.0, 5.2), layout="constrained")
    axes = fig.subplots(1, 2)
    front_x = np.asarray([d["latency_s"] for d in front]) * scale
    front_y = np.asarray([d["energy_j"] for d in front]) * scale
    for ax, label_beyond in zip(axes, (ZOOM * front_x.min(), 0.0), strict=True):  # the zoom labels its own
        pareto_plot(result.latency_s, result.energy_j, result.area_mm2, indices, tokens, marks=marks, ax=ax,
                    colorbar=ax is axes[1])  # fmt: skip
        _draw_optima(ax, optima, ga, scale, label_beyond)
    axes[0].set_title(f"{title}: all designs", fontsize=10)
    _zoom(axes[1], front_x, front_y, [(g["latency_s"] * scale, g["energy_j"] * scale) for g in ga])

    handles, _ = axes[0].get_legend_handles_labels()
    optima_handle = axes[0].scatter([], [], marker="o", facecolors="none", edgecolors="black", label="alpha optima")
    handles.append(optima_handle)
    if ga:
        runs = len({g["seed"] for g in ga})
        handles.append(axes[0].scatter([], [], marker="x", color="black", label=f"GA best design ({runs} runs/alpha)"))
    axes[0].legend(handles=handles, fontsize=7, loc="upper right")
    axes[1].get_legend().remove()
    return fig


def _draw_optima(ax, optima, ga, scale: float, label_beyond: float = 0.0) -> None:
    """Each alpha optimum as a ring coloured by alpha (alphas sharing one optimum get one label, optima at a
    latency per token up to ``label_beyond`` none: the zoom panel labels those, where they do not overlap), and
    the GA runs of that alpha as crosses of the same colour."""
    import matplotlib

    colours = matplotlib.colormaps["plasma"]
    labels: dict[int, list[str]] = {}
    for optimum in optima:
        labels.setdefault(optimum["index"], []).append(f"{optimum['alpha']:g}")
    for optimum in optima:
        colour = colours(0.85 * optimum["alpha"])
        runs = [g for g in ga if g["alpha"] == optimum["alpha"]]
        if runs:
            xs = [g["latency_s"] * scale for g in runs]
            ax.scatter(xs, [g["energy_j"] * scale for g in runs], marker="x", s=30, color=colour, alpha=0.8)
        point = (optimum["latency_s"] * scale, optimum["energy_j"] * scale)
        ax.scatter(*point, marker="o", s=110, facecolors="none", edgecolors=colour, linewidths=1.8, zorder=5)
        if optimum["alpha"] == float(labels[optimum["index"]][0]) and point[0] > label_beyond:
            text = "α=" + ",".join(labels[optimum["index"]])
            ax.annotate(text, point, textcoords="offset points", xytext=(7, 6), fontsize=7)


def _zoom(ax, front_x: np.ndarray, front_y: np.ndarray, ga_points) -> None:
    """Limits ``ax`` to the front within :data:`ZOOM` of its fastest design (and the GA points there)."""
    fastest = front_x.min()
    fast = front_x <= ZOOM * fastest
    shown_y = [front_y[fast]] + [[y for x, y in ga_points if x <= ZOOM * fastest]]
    y_low, y_high = 0.97 * front_y[fast].min(), 1.1 * max(np.max(y) for y in shown_y if len(y))
    ax.set_xlim(0.98 * fastest, ZOOM * fastest)
    ax.set_ylim(y_low, y_high)
    readable_log_axis(ax, "x", 0.98 * fastest, ZOOM * fastest)
    readable_log_axis(ax, "y", y_low, y_high)
    ax.set_title(f"zoom: within {ZOOM}x of the fastest design", fontsize=10)


def breakdown_plot(reports: Sequence[Mapping] | Mapping, labels: Sequence[str] | None = None, ax=None):
    """Stacked bars per design: decode latency by operator (ms per token, left) and decode energy by
    component (mJ per token, right). ``reports``: one or more ``evaluate_design`` results. Returns the
    Figure (pass ``ax`` = two axes to draw into existing ones)."""
    import matplotlib

    reports = [reports] if isinstance(reports, Mapping) else list(reports)
    labels = list(labels or [r.get("model", f"design {i}") for i, r in enumerate(reports)])
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(max(7.0, 2.2 * len(reports) + 5.0), 4.0), layout="constrained")
        axes = fig.subplots(1, 2)
    else:
        axes = ax
        fig = axes[0].figure
    panels = (("latency_by_operator_s", "decode latency per token (ms)"), ("energy_by_component_j",
              "decode energy per token (mJ)"))  # fmt: skip
    colours = matplotlib.colormaps["tab10"]
    for axis, (key, ylabel) in zip(axes, panels, strict=True):
        parts = list(dict.fromkeys(k for r in reports for k in r[key]))
        bottom = np.zeros(len(reports))
        for k, part in enumerate(parts):
            tokens = [r["meta"]["workload"]["generate_tokens"] if "meta" in r else 1 for r in reports]
            values = np.asarray([1e3 * r[key].get(part, 0.0) / t for r, t in zip(reports, tokens, strict=True)])
            axis.bar(labels, values, bottom=bottom, label=part, color=colours(k % 10), width=0.6)
            bottom += values
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=7, ncols=2 if len(parts) > 8 else 1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        axis.tick_params(axis="x", labelrotation=20 if len(reports) > 2 else 0)
        axis.grid(axis="y", lw=0.3, alpha=0.6)
    return fig


def bit_heatmap(table: np.ndarray, title: str = "", ax=None, colorbar: bool = True, caption: str | None = None):
    """The ``(layers, 17)`` bit table (columns as ``cimjax.workload.precision.POINT_NAMES``) as a heat-map on
    a fixed 1-16 bit colour scale, every cell labelled with its bits; ``caption`` (e.g. the default proxy's
    gain cap, which the figure must not be read without) goes under the axis. Returns the Figure."""
    import textwrap

    from cimjax.workload.precision import POINT_NAMES as columns

    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != len(columns):
        raise ValueError(f"bit table must have shape (layers, {len(columns)}), got {table.shape}")
    fig, ax = _figure(ax, (9.0, 0.28 * table.shape[0] + 2.2))
    image = ax.imshow(table, aspect="auto", cmap="viridis", interpolation="nearest", vmin=1, vmax=16)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=8)
    step = max(1, table.shape[0] // 16)
    ax.set_yticks(range(0, table.shape[0], step))
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=10)
    if caption:
        ax.set_xlabel(textwrap.fill(caption, 110, break_on_hyphens=False), fontsize=8, loc="left")
    for (layer, col), bits in np.ndenumerate(table):
        ax.text(col, layer, f"{bits:.0f}", ha="center", va="center", fontsize=7, color="w" if bits < 9 else "k")
    if colorbar:
        fig.colorbar(image, ax=ax, label="bits")
    return fig


def formats() -> set[str]:
    """The file suffixes (without the dot) :func:`save` can write: matplotlib's formats."""
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def save(fig, path, dpi: int = 130, flag: str = "path") -> Path:
    """Writes ``fig`` to ``path`` whole or not at all (the format follows the suffix); a path that cannot be
    written is refused first, naming ``flag``."""
    from cimjax.files import atomic_path, check_output_file

    path = check_output_file(path, flag, formats())
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path


def scatter_plot(result, path: str | Path) -> Path:
    """Predicted vs measured loss increase of every variant of a proxy validation (a
    :class:`~cimjax.report.proxy_validation.ValidationResult`) on its held-out assignments, log-log PNG, written
    as :func:`save` writes."""
    from matplotlib.figure import Figure

    n = len(result.variants)
    cols = 4
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols)
    measured = np.maximum(np.asarray(result.measured), 1e-6)
    for ax, v in zip(np.ravel(axes), result.variants, strict=False):
        predicted = np.maximum(v.predicted, 1e-9)
        ax.scatter(predicted, measured, s=10)
        lo, hi = min(predicted.min(), measured.min()), max(predicted.max(), measured.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.6)  # predicted = measured
        ax.set_xscale("log")
        ax.set_yscale("log")
        tau = "n/a" if v.kendall_tau is None else f"{v.kendall_tau:.3f}"
        ax.set_title(f"{v.name}\ntau={tau} rho={v.spearman or 0:.3f}", fontsize=9)
        ax.set_xlabel("predicted dL (nats/token)")
        ax.set_ylabel("measured dL")
    for ax in np.ravel(axes)[n:]:
        ax.axis("off")
    fig.suptitle(f"proxy vs measured loss increase, {result.n_configs} held-out assignments ({result.granularity})")
    fig.tight_layout()
    return save(fig, path, dpi=110)
