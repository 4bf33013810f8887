"""``cimjax optimize``: the JSON contract, exact re-evaluation, and plain errors for impossible requests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.joint.problem import ExactEvaluator, make_problem
from cimjax.results import BASELINE_KEYS, OPTIMIZE_KEYS
from cimjax.workload.hf_config import load_hf_config
from cimjax.workload.precision import table_from_bits

runner = CliRunner()
METRICS = {"tokens_per_s", "tokens_per_j", "latency_s", "energy_j", "area_mm2"}
FAST = ["--starts", "2", "--rounds", "2"]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("optimize")


@pytest.fixture(scope="module")
def optimized(tiny_config, out_dir):
    args = ["optimize", "--model", str(tiny_config), "--budget", "int6", "--area-max", "50", *FAST, "--json"]
    result = runner.invoke(app, [*args, "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_gains_are_labelled_per_objective_and_never_below_one(optimized):
    ours, base = optimized, optimized["baseline"]
    gains = optimized["gains"]
    assert gains["tokens_per_s"] == pytest.approx(ours["tokens_per_s"] / base["tokens_per_s"], rel=1e-6)
    assert gains["tokens_per_j"] == pytest.approx(ours["tokens_per_j"] / base["tokens_per_j"], rel=1e-6)
    assert gains["objective"] == pytest.approx(base["latency_s"] / ours["latency_s"], rel=1e-6)  # alpha = 1
    assert gains["objective"] >= 1.0 and optimized["objective"] <= optimized["baseline_objective"]
    ratios = optimized["ratios_to_baseline"]
    assert ratios["area_mm2"] == pytest.approx(ours["area_mm2"] / base["area_mm2"], rel=1e-6)
    assert ratios["energy_j"] == pytest.approx(ours["energy_j"] / base["energy_j"], rel=1e-6)
    assert "latency only" in optimized["objective_note"] and "50 mm^2" in optimized["objective_note"]
    assert optimized["meta"]["workload"] == {"prefill_tokens": 128, "generate_tokens": 128, "attention_block": 32}


def test_out_writes_the_bit_table_as_csv_and_png(optimized, out_dir):
    rows = (out_dir / "bits.csv").read_text().splitlines()
    assert len(rows) == 1 + len(optimized["bits"]) and rows[0].startswith("layer,weight.q,")
    first = optimized["bits"][0]
    assert rows[1].split(",") == ["0", *map(str, [*first["weight"].values(), *first["act"].values(), first["kv"]])]
    assert json.loads((out_dir / "bits.meta.json").read_text())["meta"] == optimized["meta"]
    assert json.loads((out_dir / "optimize.json").read_text())["bits"] == optimized["bits"]
    assert (out_dir / "bits.png").read_bytes()[:4] == b"\x89PNG"


def test_bits_png_states_the_default_proxy_gain_cap(optimized, tmp_path, monkeypatch):
    """The heat-map of a default-proxy run carries its gain cap (the JSON's ``gain_cap``) in the figure."""
    from matplotlib.text import Text

    from cimjax.report import plots
    from cimjax.report.optimize import write_outputs

    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=130: figures.append(fig))
    write_outputs(tmp_path, optimized, "title")
    text = " ".join(" ".join(t.get_text().split()) for t in figures[0].findobj(Text))
    assert optimized["proxy_name"] == "default" and optimized["gain_cap"] in text
    assert "1.04x at INT8" in text
    measured = plots.bit_heatmap(table_from_bits(optimized["bits"]), "title", caption=None)
    assert measured.axes[0].get_xlabel() == ""  # measured proxies: no caveat caption


def test_json_has_the_contract_keys(optimized):
    assert list(optimized) == list(OPTIMIZE_KEYS)  # the declared keys, in order
    assert list(optimized["baseline"]) == list(BASELINE_KEYS)
    assert {"bits", "config", "proxy", "budget", "baseline", "gain"} | METRICS <= set(optimized)
    assert len(optimized["bits"]) == 2
    assert set(optimized["bits"][0]) == {"layer", "weight", "act", "kv"}
    assert set(optimized["bits"][0]["act"]) == {"q", "k", "v", "o", "gate", "up", "down", "qk", "pv"}
    assert optimized["gain"] == pytest.approx(optimized["tokens_per_s"] / optimized["baseline"]["tokens_per_s"])
    assert optimized["assumption"].startswith("ASSUMPTION")  # the default proxy says what it assumes
    assert "1.04x at INT8" in optimized["gain_cap"] and "1.06x at INT4" in optimized["gain_cap"]


def test_reported_design_meets_the_budget_and_re_evaluates_exactly(optimized, tiny_config):
    problem = make_problem(load_hf_config(tiny_config), "int6", area_max=50.0)
    assert optimized["budget"] == pytest.approx(problem.budget, rel=1e-6)
    assert optimized["proxy"] <= problem.budget * (1 + 1e-6)
    table = np.array([[*b["weight"].values(), *b["act"].values(), b["kv"]] for b in optimized["bits"]], float)
    choice = np.array([problem.space.values[n].index(v) for n, v in optimized["config"].items()])
    scores = ExactEvaluator(problem)(choice[None], table[None])
    # JSON floats keep float32's 7 significant digits
    assert optimized["latency_s"] == pytest.approx(scores.latency_s[0], rel=1e-6)
    assert optimized["energy_j"] == pytest.approx(scores.energy_j[0], rel=1e-6)
    assert optimized["area_mm2"] <= 50.0 and optimized["baseline"]["area_mm2"] <= 50.0
    # Under an area limit the final sweep covers the uniform bits' best hardware: never worse than the baseline.
    assert optimized["gain"] >= 1.0 - 1e-9


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--budget", "1e-12"], "highest allowed bits (weights 2-8, matmul inputs 2-16, KV cache 2-16 bits) predicts"),
        (["--budget", "int8", "--area-max", "0.01"], "below the smallest design of the space"),
        (["--budget", "int7"], "budget = 'int7' is not allowed"),
        (["--budget", "int8", "--method", "annealing"], "method = 'annealing' is not known"),
        (["--budget", "int8", "--resume"], "resume=True needs a checkpoint_dir"),
        (["--budget", "int8", "--method", "ga", "--checkpoint-dir", "x"], "apply to method 'gradient' only"),
        (["--budget", "int8", "--alpha", "2"], "alpha = 2"),
    ],
)
def test_impossible_requests_say_so_plainly(tiny_config, args, expected):
    result = runner.invoke(app, ["optimize", "--model", str(tiny_config), *args])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_without_an_area_limit_the_recommended_chip_pays_for_its_area(tiny_config):
    """The default rule of docs/results.md ("Which design optimize recommends"), through the CLI: the
    table shows the recommended design, the optimiser's own and the baseline with tokens/J and area."""
    import inspect

    from cimjax.cli.optimize import optimize_command
    from cimjax.joint.compare import TOLERANCE

    assert inspect.signature(optimize_command).parameters["tolerance"].default == TOLERANCE
    args = ["optimize", "--model", str(tiny_config), "--budget", "int6", *FAST]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tolerance"] == TOLERANCE and report["area_rule"] == "pays"
    gains, ratios = report["gains"], report["ratios_to_baseline"]
    assert gains["objective"] >= 1.0 and (ratios["area_mm2"] <= 1.0 or gains["objective"] >= ratios["area_mm2"])
    table = runner.invoke(app, [*args, "--tolerance", "0.02"])
    assert table.exit_code == 0, table.output
    text = " ".join(table.output.split())
    assert "recommended" in text and "optimiser's own" in text and "uniform baseline" in text
    assert f"{report['baseline']['area_mm2']:.4g} (1.000x)" in text  # the baseline's area, beside its ratio


def test_measured_runs_end_with_whether_the_budget_was_met_when_measured():
    """The last line of a measured run's terminal output: verified (and how), over the budget, or predicted only."""
    from cimjax.cli.optimize_output import verification_line

    base = {"target": "kl", "measured_budget": 0.0005827, "rounds": 2, "verify_wall_s": 45.4}
    line = verification_line(base | {"measured_kl": 0.0005821, "verified": True})
    assert line == (
        "verified: measured KL divergence 0.0005821 within the budget 0.0005827 nats/token on the check windows "
        "(2 rounds, 45 s)"
    )
    over = verification_line(base | {"target": "loss", "measured_loss": 0.0007, "verified": False, "rounds": 1})
    assert over.startswith("NOT verified: measured loss increase 0.0007 OVER the budget") and "(1 round," in over
    predicted = verification_line(base | {"measured_kl": None, "verified": False})
    assert predicted.startswith("not verified:") and "prediction, not a measurement" in predicted


def test_checkpoint_option_defaults_are_the_library_defaults():
    """The defaults ``optimize`` fills in for the measurement options it no longer passes unless given (its help
    states them; the CLI module imports neither the calibration nor the verification at start-up)."""
    import typer.main

    from cimjax.cli.optimize import CALIBRATION
    from cimjax.joint.verified import MAX_ROUNDS
    from cimjax.quant.calibration import Calibration

    default = Calibration()
    library = {"--calib-windows": default.windows, "--calib-seq-len": default.seq_len}
    assert library | {"--check-windows": default.check_windows} == CALIBRATION
    helps = {param.opts[0]: param.help for param in typer.main.get_command(app).commands["optimize"].params}
    for flag, value in {**CALIBRATION, "--verify-rounds": MAX_ROUNDS}.items():
        assert f"(default: {value})" in helps[flag], flag
