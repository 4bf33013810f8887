"""The experiment summaries: gains and hypervolumes from stored runs, against hand-computed values."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "joint_pareto", Path(__file__).parents[1] / "experiments" / "joint_pareto.py"
)
joint_pareto = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(joint_pareto)


def record(method, width, proxy, budget, tps, tpj=1.0, alpha=1.0):
    return {"model": "llama3.2-1b", "alpha": alpha, "width": width, "method": method, "proxy": proxy,
            "budget": budget, "tokens_per_s": tps, "tokens_per_j": tpj, "wall_s": 1.0, "evaluations": 10,
            "feasible": True, "assumption": None}  # fmt: skip


def test_gains_and_hypervolume_match_hand_computation():
    records = [
        record("uniform", 8, 1e-3, 1e-3, 100.0),
        record("uniform", 4, 1e-1, 1e-1, 200.0),
        record("gradient", 8, 1e-3, 1e-3, 110.0),
        record("gradient", 4, 1e-1, 1e-1, 220.0),
    ]
    summary = joint_pareto.summarise(records)
    assert summary["gains"]["llama3.2-1b|tokens_per_s|int8"]["gradient"] == pytest.approx(1.1)
    assert summary["gains"]["llama3.2-1b|tokens_per_s|int4"]["gradient"] == pytest.approx(1.1)
    # (log10 proxy, -tps / 220) with reference (log10 0.11, 0): two rectangles.
    x_ref, span = math.log10(0.11), math.log10(0.11) - (-3)

    def hv(low, high):
        return ((-1 - -3) * low + (x_ref - -1) * high) / 220 / span

    hvs = summary["hypervolume"]["llama3.2-1b|tokens_per_s"]
    assert hvs["uniform"] == pytest.approx(hv(100, 200))
    assert hvs["gradient"] == pytest.approx(hv(110, 220))
    assert "| llama3.2-1b | int8 | 1.100 |" in joint_pareto.markdown(summary)


def test_incomplete_fronts_are_left_out_of_the_hypervolume():
    records = [record("uniform", 8, 1e-3, 1e-3, 100.0), record("uniform", 4, 1e-1, 1e-1, 200.0)]
    records.append(record("ga", 8, 1e-3, 1e-3, 105.0))
    assert set(joint_pareto.summarise(records)["hypervolume"]["llama3.2-1b|tokens_per_s"]) == {"uniform"}
