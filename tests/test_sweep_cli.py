"""``cimjax sweep`` end to end on a reduced design space: files, front, alpha optima, GA runs, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cimjax.cli.sweep import register
from cimjax.hardware.config import FIELDS, PAPER_SPACE
from cimjax.results import FORMS
from cimjax.search.pareto import alpha_objective, non_dominated

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _group() -> None:
        """A group, so the command is invoked by name as under ``cimjax``."""

    register(app)
    return app


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps({name: list(values[:3]) for name, values in PAPER_SPACE.values.items()}))
    return path


def test_sweep_writes_front_optima_ga_and_plot(app, space_file, tmp_path):
    out = tmp_path / "out"
    args = ["sweep", "--model", "qwen3-0.6b", "--precision", "int4", "--alphas", "0,0.5,1", "--out", str(out)]
    args += ["--ga-runs", "1", "--space", str(space_file), "--prefill", "37", "--generate", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["space_designs"] == 3**9
    assert summary["designs"] == 6 * 6 * 3**5 == summary["feasible_designs"]  # distinct: 6 = 3 * 4 / 2 per pair
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert len(front) == summary["pareto_size"] > 1
    points = np.asarray([[d["latency_s"], d["energy_j"]] for d in front])
    assert non_dominated(points).all()
    assert np.all(np.diff(points[:, 0]) >= 0) and np.all(np.diff(points[:, 1]) <= 0)
    for d in front:
        assert list(d) == list(FORMS["sweep"])  # the declared keys, in their order (the CSV's columns)
        assert set(d["config"]) == set(FIELDS)
        assert all(d["config"][name] in PAPER_SPACE.values[name][:3] for name in FIELDS)
        assert d["tokens_per_s"] == pytest.approx(5 / d["latency_s"])
    with open(out / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(front) and float(rows[0]["latency_s"]) == pytest.approx(front[0]["latency_s"])

    # Each alpha optimum is the front's minimiser; alpha = 1 is the fastest, alpha = 0 the most frugal design.
    optima = {o["alpha"]: o for o in summary["alpha_optima"]}
    for alpha, optimum in optima.items():
        assert optimum["objective"] == pytest.approx(alpha_objective(points[:, 0], points[:, 1], alpha).min())
    assert optima[1.0]["latency_s"] == points[:, 0].min() and optima[0.0]["energy_j"] == points[:, 1].min()
    assert 0 < summary["hypervolume"]["normalised"] < 1

    ga = summary["ga"]["results"]
    assert sorted((g["alpha"], g["seed"]) for g in ga) == [(0.0, 0), (0.5, 0), (1.0, 0)]
    assert all(g["gap_to_optimum"] >= 0 and g["evaluations"] <= 1000 for g in ga)
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every file says how it was produced: the CSVs through side-cars holding the JSON files' meta
    assert summary["meta"]["workload"] == {"prefill_tokens": 37, "generate_tokens": 5, "attention_block": 32}
    for name in ("pareto", "alpha_optima"):
        side = json.loads((out / f"{name}.meta.json").read_text())
        assert side == {"describes": f"{name}.csv", "meta": summary["meta"]}
    assert "designs in" in result.output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--alphas", "0,x", "comma-separated numbers"), ("--alphas", "1.5", "outside the allowed range")],
)
def test_sweep_rejects_bad_alphas(app, tmp_path, option, value, message):
    result = runner.invoke(app, ["sweep", "--model", "qwen3-0.6b", option, value, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_sweep_rejects_bad_space_file(app, tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"c_v": [1, 2], "clusters": [3]}))
    result = runner.invoke(app, ["sweep", "--model", "qwen3-0.6b", "--space", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown hardware field(s) ['clusters']" in result.output


def test_near_tie_rule_and_area_limit_pick_by_hand():
    from cimjax.hardware.config import DesignSpace
    from cimjax.search.exhaustive import SweepResult

    space = DesignSpace({name: values[:1] for name, values in PAPER_SPACE.values.items()} | {"m": (1, 2, 3, 4)})
    latency = np.array([1.00, 1.01, 1.04, 2.0])
    energy = np.array([5.0, 5.0, 5.0, 1.0])
    area = np.array([90.0, 40.0, 10.0, 5.0])
    result = SweepResult(space, latency, energy, area, 0.0, 1.0)
    assert result.best(1.0) == (0, 1.0)
    assert result.best(1.0, tolerance=0.02)[0] == 1  # within 2 % of the best: the smallest chip
    assert result.best(1.0, tolerance=0.05)[0] == 2
    assert result.best(1.0, area_max=50.0) == (1, 1.01)
    assert result.best(0.0, area_max=50.0)[0] == 3
    with pytest.raises(ValueError, match="--area-max 1 mm\\^2 is below every design"):
        result.best(1.0, area_max=1.0)
    with pytest.raises(ValueError, match="--tolerance"):
        result.best(1.0, tolerance=-0.1)


def test_sweep_area_limit_keeps_large_designs_out(app, space_file, tmp_path):
    out = tmp_path / "out"
    args = ["sweep", "--model", "qwen3-0.6b", "--precision", "int4", "--alphas", "0,1", "--out", str(out)]
    args += ["--space", str(space_file), "--prefill", "37", "--generate", "5"]
    args += ["--area-max", "20", "--tolerance", "0.01", "--ga-runs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert front and all(d["area_mm2"] <= 20 for d in front)
    assert all(o["area_mm2"] <= 20 for o in summary["alpha_optima"])
    assert summary["area_max"] == 20 and summary["tolerance"] == 0.01
    # The GA runs search within the limit too (larger designs score above every design of the space).
    ga = summary["ga"]["results"]
    assert len(ga) == 4 and all(r["area_mm2"] <= 20 for r in ga)
    optimum = {o["alpha"]: o["objective"] for o in summary["alpha_optima"]}
    # never better than the exact optimum, which the near-tie rule may trade for up to 1 % (--tolerance)
    assert all(r["objective"] >= optimum[r["alpha"]] / 1.01 * (1 - 1e-6) for r in ga)
