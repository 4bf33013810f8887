"""The experiment summaries: gains and hypervolumes from stored runs, against hand-computed values; the scripts' options
checked before any work."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


joint_pareto = _script("joint_pareto")
end_to_end = _script("end_to_end")


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


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("end_to_end", ["--budgets", "int8,int9"], "budget = 'int9' is not allowed"),
        ("end_to_end", ["--budgets", "int8,-1"], "budget = -1.0 must be a positive finite number"),
        ("end_to_end", ["--rounds", "1000"], "--rounds = 1000 is not allowed; allowed: an integer in [1, 100]"),
        ("end_to_end", ["--held-out", "0"], "--held-out = 0 is not allowed"),
        ("end_to_end", ["--seed", "-1"], "--seed = -1 is not allowed"),
        ("end_to_end", ["--refine", "-1"], "--refine = -1 is not allowed"),
        ("end_to_end", ["--evolve", "1000000000"], "--evolve = 1000000000 is not allowed"),
        ("end_to_end", ["--area-max", "nan"], "--area-max = nan is not allowed"),
        ("joint_pareto", ["--models", "gpt9"], "unknown model id 'gpt9'"),
        ("joint_pareto", ["--alphas", "x"], "--alphas must be comma-separated numbers in [0, 1], got 'x'"),
        ("joint_pareto", ["--alphas", "0,nan"], "alpha = nan is outside the allowed range [0, 1]"),
        ("joint_pareto", ["--widths", "4,x"], "--widths = 'x' is not allowed; allowed: an integer in [1, 16]"),
        ("joint_pareto", ["--seed", "-1"], "--seed = -1 is not allowed"),
        ("joint_pareto", ["--methods", "gradient,x"], "--methods = 'x' is not allowed; allowed: comma-separated names"),
    ],
)
def test_scripts_refuse_option_values_before_any_work(script, argv, message, tmp_path, monkeypatch, capsys):
    """Before: end_to_end.py trained the LM (13 minutes), measured it and optimised the first budgets before a bad
    budget, round count or seed stopped it (losing those rows: they are written at the end); joint_pareto.py
    ended in a traceback for an unknown model or alpha, and ran and stored rows for a NaN alpha's predecessors."""
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exit_info:
        globals()[script].main(["--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()  # nothing trained or written
