"""The paper reproduction: knee selection by hand, and the report's contracts on a small design space."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.hardware.config import FIELDS, DesignSpace
from cimjax.hardware.technology import default_technology
from cimjax.report.paper import FIG9_KEYS, reproduce_paper
from cimjax.report.selection import derated, knee_index, robust_index, selected_index
from cimjax.search.exhaustive import SweepResult, sweep
from cimjax.workload.models import MODELS
from cimjax.workload.precision import preset

# Every field has two values (the GA needs radices >= 2): 512 designs.
SMALL_SPACE = DesignSpace(
    {
        "c_v": (1, 2),
        "c_h": (1, 3),
        "t_v_act": (2, 4),
        "t_h_act": (2, 4),
        "m": (1, 3),
        "pes_per_tile": (4, 16),
        "bus_inter_cluster": (1024, 4096),
        "bus_inter_tile": (512, 4096),
        "bus_intra_tile": (512, 4096),
    }
)


def test_knee_by_hand():
    # within 1 % of the best latency: 0, 1, 3
    result = _four([1.0, 1.005, 1.02, 1.009], [5.0, 3.0, 1.0, 4.0], [10.0, 20.0, 1.0, 5.0])
    assert knee_index(result, 0.01, "energy") == 1
    assert knee_index(result, 0.01, "area") == 3
    assert knee_index(result, 0.0, "energy") == 0
    assert knee_index(result, 0.05, "energy") == 2
    with pytest.raises(ValueError, match="knee rule 'power' is not known"):
        knee_index(result, 0.01, "power")
    with pytest.raises(ValueError, match="--tolerance = -0.1 must be a fraction"):
        knee_index(result, -0.1, "energy")


def _four(latency, energy, area):
    four = DesignSpace({f: ((1, 2, 3, 4) if f == "m" else SMALL_SPACE.values[f][:1]) for f in SMALL_SPACE.values})
    return SweepResult(four, np.array(latency), np.array(energy), np.array(area), compile_s=0.0, wall_s=1.0)


def test_robust_by_hand():
    # Nominally 0, 1 and 3 are within 1 %; derated, 1 falls 7.7 % behind the best of them (0), 3 stays 0.8 %.
    result = _four([1.0, 1.005, 1.2, 1.009], [5.0, 3.0, 1.0, 4.0], [2.0, 20.0, 1.0, 5.0])
    stressed = np.array([1.30, 1.40, 1.30, 1.31])
    assert knee_index(result, 0.01, "energy") == 1  # the knee keeps the design with no margin
    assert robust_index(result, stressed, 0.01, "energy") == 3
    assert robust_index(result, stressed, 0.01, "area") == 0
    assert robust_index(result, stressed, 0.0, "energy") == 0
    assert robust_index(result, stressed, 0.1, "energy") == 1  # 1.40 is within 10 % of 1.30
    with pytest.raises(ValueError, match="needs a second sweep with derated technology"):
        selected_index(result, "robust")
    with pytest.raises(ValueError, match="stressed latencies have shape"):
        robust_index(result, stressed[:3])
    with pytest.raises(ValueError, match="--margin = 1 must be a fraction in"):
        derated(default_technology(), 1.0)


def test_robust_with_no_margin_is_the_knee():
    """With the nominal latencies as the stressed ones the robust rule is the knee (lowest energy)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        latency = 1.0 + rng.choice([0.0, 0.003, 0.008, 0.02], size=4)
        result = _four(latency, rng.uniform(1, 2, 4), rng.uniform(1, 2, 4))
        for tolerance in (0.0, 0.005, 0.01):
            assert robust_index(result, latency, tolerance, "energy") == knee_index(result, tolerance, "energy")


def test_robust_on_a_sweep(small_workload):
    """On a real sweep: the robust design is within the tolerance of the best latency, nominally and derated
    (against the best derated latency of the nominal near-tie set); margin 0 gives the knee."""
    spec, tech = MODELS["qwen2.5-0.5b"], default_technology()
    prec = preset("int8", spec.n_layers)
    result = sweep(spec, prec, small_workload, tech, SMALL_SPACE)
    assert float(derated(tech, 0.0).clock_hz) == float(tech.clock_hz)
    stressed = sweep(spec, prec, small_workload, derated(tech, 0.25), SMALL_SPACE).latency_s
    assert np.all(stressed >= result.latency_s * (1 - 1e-9))  # a slower clock never makes a design faster
    near = np.flatnonzero(result.latency_s <= result.latency_s.min() * 1.01)
    index = robust_index(result, stressed, 0.01, "energy")
    assert index in near and stressed[index] <= stressed[near].min() * 1.01
    assert robust_index(result, result.latency_s, 0.01, "energy") == knee_index(result, 0.01, "energy")


def test_reproduce_rows_exhaustive_knee_and_ga(tmp_path, small_workload):
    summary = reproduce_paper(tmp_path, ["qwen2.5-0.5b"], ga_seeds=2, workload=small_workload, space=SMALL_SPACE)
    rows = json.loads((tmp_path / "fig9.json").read_text())
    assert [(r["model"], r["precision"]) for r in rows] == [("qwen2.5-0.5b", "int4"), ("qwen2.5-0.5b", "int8")]
    for row in rows:
        assert set(FIG9_KEYS) | {"selection", "exhaustive", "knee", "ga"} <= set(row)
        assert row["selection"]["rule"] == "exhaustive" and row["selection"]["tolerance"] == 0.01
        best, knee = row["exhaustive"], row["knee"]
        assert row["config"] == best["config"] and row["tokens_per_s"] == best["tokens_per_s"]
        # The knee is within the tolerance of the exhaustive optimum, and never costs more energy.
        assert knee["tokens_per_s"] >= best["tokens_per_s"] / 1.01 * (1 - 1e-6)
        assert knee["tokens_per_j"] >= best["tokens_per_j"] * (1 - 1e-6)
        ga = row["ga"]
        assert [run["seed"] for run in ga["runs"]] == [0, 1]
        for metric in ("tokens_per_s", "tokens_per_j", "area_mm2"):
            values = [run[metric] for run in ga["runs"]]
            assert ga["min"][metric] == min(values) and ga["max"][metric] == max(values)
            assert min(values) <= ga["median"][metric] <= max(values)
        # No GA run beats the exhaustive optimum of the same space.
        assert max(run["tokens_per_s"] for run in ga["runs"]) <= best["tokens_per_s"] * (1 + 1e-6)
    assert summary["alpha05"] is None  # the paper's alpha = 0.5 point is not in this run
    with open(tmp_path / "fig9.csv", newline="") as f:  # configs flattened one column per field, as pareto.csv
        table = list(csv.DictReader(f))
    assert not any(cell.startswith("{") for r in table for cell in r.values())  # no JSON in a cell
    for r, row in zip(table, rows, strict=True):
        assert {f: float(r[f]) for f in FIELDS} == row["config"]
        assert {f: float(r[f"knee.{f}"]) for f in FIELDS} == row["knee"]["config"]
        assert r["selection.rule"] == "exhaustive" and float(r["tokens_per_s"]) == row["tokens_per_s"]
        assert float(r["ga.median.area_mm2"]) == row["ga"]["median"]["area_mm2"]
    side = json.loads((tmp_path / "fig9.meta.json").read_text())
    assert side["describes"] == "fig9.csv" and side["meta"]["workload"]["generate_tokens"] == small_workload.generate
    assert "fig9.meta.json" in summary["files"]
    assert "GA tokens/s" in (tmp_path / "fig9.md").read_text()
    trends = json.loads((tmp_path / "trends.json").read_text())["selected"]
    in_band = [r for r in rows if 18.4 <= r["area_mm2"] <= 103.6]
    assert trends["area_in_paper_band"]["following"] == len(in_band) and trends["area_in_paper_band"]["designs"] == 2
    ga_trends = json.loads((tmp_path / "trends.json").read_text())["ga_runs"]  # one per seed, its own designs
    assert len(ga_trends) == 2
    for seed, t in enumerate(ga_trends):
        in_band = [r for r in rows if 18.4 <= r["ga"]["runs"][seed]["area_mm2"] <= 103.6]
        assert t["area_in_paper_band"]["following"] == len(in_band)
    assert "the paper's GA, designs following per seed" in (tmp_path / "fig9.md").read_text()
    for row in rows:  # the energy split adds up; the system accounting changes only the DRAM part
        assert row["dram_energy_j"] + row["on_chip_energy_j"] == pytest.approx(row["energy_j"], rel=1e-6)
        system = row["system"]
        # Reports round to 7 significant digits: the difference of two rounded totals is good to ~1e-5.
        assert system["energy_j"] - system["dram_energy_j"] == pytest.approx(row["on_chip_energy_j"], rel=1e-5)
        assert system["dram_energy_j"] / row["dram_energy_j"] == pytest.approx(
            system["dram_energy_per_bit"] / float(default_technology().dram_energy_per_bit), rel=1e-5
        )


def test_reproduce_knee_selection(tmp_path, small_workload):
    reproduce_paper(tmp_path, ["qwen2.5-0.5b"], selection="knee", knee="area", tolerance=0.05, ga_seeds=0,
                    workload=small_workload, space=SMALL_SPACE)  # fmt: skip
    for row in json.loads((tmp_path / "fig9.json").read_text()):
        assert row["selection"] == {"rule": "knee", "knee": "area", "tolerance": 0.05,
                                    "description": row["selection"]["description"]}  # fmt: skip
        assert row["config"] == row["knee"]["config"] and row["area_mm2"] <= row["exhaustive"]["area_mm2"]
        assert row["ga"]["runs"] == [] and row["ga"]["median"] is None


def test_reproduce_robust_selection(tmp_path, small_workload):
    summary = reproduce_paper(tmp_path, ["qwen2.5-0.5b"], selection="robust", margin=0.1, ga_seeds=0,
                              workload=small_workload, space=SMALL_SPACE)  # fmt: skip
    for row in json.loads((tmp_path / "fig9.json").read_text()):
        assert row["selection"]["rule"] == "robust" and row["selection"]["margin"] == 0.1
        assert row["config"] == row["robust"]["config"] and "10 %" in row["robust"]["rule"]
        assert row["tokens_per_s"] >= row["exhaustive"]["tokens_per_s"] / 1.01 * (1 - 1e-6)
    assert "robust" in summary["trends"] and "robust tokens/s" in summary["search_markdown"]
    assert "and for the robust designs" in (tmp_path / "fig9.md").read_text()


def test_cli_defaults_are_the_rules():
    """The CLI states its defaults literally (it imports the library lazily): they must be the rules' own."""
    import typer.main

    from cimjax.report.selection import DEFAULT_MARGIN, DEFAULT_TOLERANCE

    params = {p.name: p.default for p in typer.main.get_command(app).commands["reproduce"].params}
    assert (params["margin"], params["tolerance"], params["selection"]) == (DEFAULT_MARGIN, DEFAULT_TOLERANCE,
                                                                             "exhaustive")  # fmt: skip


def test_reproduce_rejects_bad_options():
    result = CliRunner().invoke(app, ["reproduce", "--models", "qwen2.5-0.5b", "--tolerance", "1.5"])
    assert result.exit_code == 2 and "--tolerance = 1.5 must be a fraction in [0, 1)" in result.output
    result = CliRunner().invoke(app, ["reproduce", "--models", "qwen2.5-0.5b", "--knee", "cost"])
    assert result.exit_code == 2 and "knee rule 'cost' is not known" in result.output
    result = CliRunner().invoke(app, ["reproduce", "--models", "qwen2.5-0.5b", "--selection", "best"])
    assert result.exit_code == 2 and "selection 'best' is not known" in result.output
    argv = ["reproduce", "--models", "qwen2.5-0.5b", "--selection", "robust", "--margin", "-0.1"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and "--margin = -0.1 must be a fraction in [0, 1)" in result.output
