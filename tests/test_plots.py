"""Plot helpers: distinct front designs, stacked breakdowns that add up, labelled log axes, bit heat-maps."""

from __future__ import annotations

import numpy as np
import pytest

from cimjax.report import plots
from cimjax.workload.precision import table_from_bits


def _labels(fig, axis):
    fig.canvas.draw()
    return [t.get_text() for t in axis.get_majorticklabels() if t.get_text() and t.get_visible()]


def test_distinct_keeps_the_first_of_identical_rows():
    assert plots.distinct([3.0, 1.0, 3.0, 2.0], [5.0, 6.0, 5.0, 5.0]).tolist() == [0, 1, 3]


def test_pareto_plot_counts_distinct_front_designs_and_marks_designs():
    rng = np.random.default_rng(1)
    latency, energy, area = rng.uniform(1, 2, 200), rng.uniform(1, 2, 200), rng.uniform(5, 500, 200)
    # designs 200..205 are mirror copies of 0..5 (identical costs)
    latency, energy, area = (np.concatenate([x, x[:6]]) for x in (latency, energy, area))
    front = np.asarray([*range(6), *range(200, 206)])
    marks = {"chosen": {"latency_s": 1.5, "energy_j": 1.5}, "paper design": {"latency_s": 1.2, "energy_j": 1.7}}
    fig = plots.pareto_plot(latency, energy, area, front, tokens=1, marks=marks, title="t")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Pareto front: 6 distinct designs (12 with mirror designs)" in texts
    assert {"chosen", "paper design"} <= set(texts)
    assert ax.get_xscale() == "log" and len(fig.axes) == 2  # the area colour bar


@pytest.mark.parametrize(("low", "high"), [(14.0, 23.0), (9.0, 300.0), (0.01, 50.0)])
def test_log_axes_carry_several_plain_labels(low, high):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([low, high], [low, high])
    plots.readable_log_axis(ax, "x", low, high)
    labels = _labels(fig, ax.xaxis)
    inside = [t for t in ax.xaxis.get_majorticklocs() if low <= t <= high]
    assert len(inside) >= 3 and len(labels) >= 3
    assert all("$" not in t and "e" not in t for t in labels)  # plain numbers, no 10^k notation


def test_breakdown_bars_stack_to_the_totals():
    reports = [
        {"latency_by_operator_s": {"ffn": 0.5, "qkv": 0.25}, "energy_by_component_j": {"dram": 1.0, "pes": 0.5},
         "meta": {"workload": {"generate_tokens": 10}}},
        {"latency_by_operator_s": {"ffn": 0.25}, "energy_by_component_j": {"dram": 2.0},
         "meta": {"workload": {"generate_tokens": 10}}},
    ]  # fmt: skip
    fig = plots.breakdown_plot(reports, ["a", "b"])
    latency_ax, energy_ax = fig.axes[:2]
    tops = sorted({(round(p.get_x(), 6), round(p.get_y() + p.get_height(), 9)) for p in latency_ax.patches})
    per_design = {}
    for x, top in tops:
        per_design[x] = max(per_design.get(x, 0.0), top)
    assert sorted(per_design.values()) == pytest.approx([25.0, 75.0])  # ms per token
    energy_tops = [p.get_y() + p.get_height() for p in energy_ax.patches]
    assert max(energy_tops) == pytest.approx(200.0)  # mJ per token


def test_bit_heatmap_labels_every_cell_and_checks_the_shape():
    table = np.full((3, 17), 8.0)
    table[1, 4] = 4.0
    fig = plots.bit_heatmap(table, "bits")
    ax = fig.axes[0]
    assert len(ax.texts) == 3 * 17 and ax.texts[17 + 4].get_text() == "4"
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["weight.q", "weight.k"]
    with pytest.raises(ValueError, match="shape"):
        plots.bit_heatmap(np.ones((3, 16)))
    bits = [{"weight": dict.fromkeys("abcdefg", 4), "act": dict.fromkeys("abcdefghi", 8), "kv": 6}]
    assert table_from_bits(bits).tolist() == [[4.0] * 7 + [8.0] * 9 + [6.0]]


def test_study_plot_labels_optima_near_the_fast_end_in_the_zoom_only():
    """Optima near the fastest design crowd together in the whole-space panel (their labels overlapped the
    paper's star): that panel labels only the optima beyond the zoom window, the zoom panel the rest."""
    from types import SimpleNamespace

    rng = np.random.default_rng(2)
    latency = np.concatenate([[1.0, 1.02, 1.05, 3.0], rng.uniform(1.0, 5.0, 60)])
    energy = np.concatenate([[3.0, 2.9, 2.8, 1.0], rng.uniform(1.0, 5.0, 60)])
    result = SimpleNamespace(latency_s=latency, energy_j=energy, area_mm2=rng.uniform(5, 50, 64))
    front = [{"index": i, "latency_s": latency[i], "energy_j": energy[i]} for i in range(4)]
    optima = [{"alpha": a, **front[i]} for a, i in ((1.0, 0), (0.75, 1), (0.5, 2), (0.25, 2), (0.0, 3))]
    fig = plots.study_plot(result, front, optima, [], tokens=1, title="t")
    whole, zoom = ([t.get_text() for t in ax.texts] for ax in fig.axes[:2])
    assert whole == ["α=0"]
    assert zoom == ["α=1", "α=0.75", "α=0.5,0.25", "α=0"]
