"""The measured refinement of a verified design (cimjax.joint.refine) against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest

from cimjax.joint.problem import ExactEvaluator
from cimjax.joint.refine import refine_measured, repair_measured
from cimjax.workload.precision import table_from_bits


def _measure(scale: float):
    """A stand-in for fake quantisation: ``scale`` x the proxy, per table."""

    def measure(tables):
        values = scale * np.sum(2.0 ** -np.asarray(tables, np.float64), axis=(1, 2))
        return [{"loss": v, "kl": v, "value": v} for v in values]

    return measure


def test_refine_lowers_bits_within_the_measured_budget_to_a_local_optimum(halving_problem, uniform_start):
    start = uniform_start(6.0)
    budget = 1.3 * _measure(1.0)(table_from_bits(start["bits"])[None])[0]["value"]
    values = {"value": budget / 1.3}
    report, got, info = refine_measured(halving_problem, start, values, budget, _measure(1.0), limit=10_000)
    table = table_from_bits(report["bits"])
    assert got["value"] == pytest.approx(_measure(1.0)(table[None])[0]["value"]) and got["value"] <= budget
    assert info["moves"] == int(np.sum(table_from_bits(start["bits"]) - table)) > 0
    assert report["tokens_per_s"] >= start["tokens_per_s"] and report["feasible"]
    # oracle: no single one-bit reduction at the final hardware both saves cost and stays within the budget
    evaluator = ExactEvaluator(halving_problem)
    choice = np.array(np.unravel_index(halving_problem.space.encode(report["config"]), halving_problem.space.radices))
    here = evaluator(choice[None], table[None]).objective[0]
    for layer, point in zip(*np.nonzero(table > halving_problem.bits.bounds()[0][None, :]), strict=True):
        moved = table.copy()
        moved[layer, point] -= 1
        if _measure(1.0)(moved[None])[0]["value"] <= budget:
            assert evaluator(choice[None], moved[None]).objective[0] >= here * (1 - 1e-9)


def test_refine_keeps_the_design_when_every_move_measures_over_budget(halving_problem, uniform_start):
    start = uniform_start(6.0)
    value = _measure(1.0)(table_from_bits(start["bits"])[None])[0]["value"]
    report, got, info = refine_measured(halving_problem, start, {"value": value}, value, _measure(1.0), limit=40)
    assert info["moves"] == 0 and info["measured"] <= 40 and got == {"value": value}
    np.testing.assert_array_equal(table_from_bits(report["bits"]), table_from_bits(start["bits"]))


def test_repair_raises_a_design_measured_over_budget_until_within_it(halving_problem, uniform_start):
    start = uniform_start(4.0)
    over = _measure(1.0)(table_from_bits(start["bits"])[None])[0]["value"]
    budget = over / 1.04  # measured 4 % over the budget
    report, got, spent = repair_measured(halving_problem, start, {"value": over}, budget, _measure(1.0), limit=40)
    table = table_from_bits(report["bits"])
    assert got["value"] == pytest.approx(_measure(1.0)(table[None])[0]["value"]) and got["value"] <= budget
    assert np.all(table >= table_from_bits(start["bits"])) and 0 < spent <= 40 and report["feasible"]
    assert report["tokens_per_s"] <= start["tokens_per_s"] * (1 + 1e-9)  # bits were only raised


def test_repair_gives_up_when_the_budget_cannot_be_reached(halving_problem, uniform_start):
    start = uniform_start(4.0)
    over = _measure(1.0)(table_from_bits(start["bits"])[None])[0]["value"]
    report, got, spent = repair_measured(halving_problem, start, {"value": over}, 0.0, _measure(1.0), limit=16)
    assert report is None and got is None and spent == 16


def test_cli_refuses_a_negative_refine_count():
    from typer.testing import CliRunner

    from cimjax.cli.main import app

    res = CliRunner().invoke(app, ["optimize", "--budget", "int4", "--model", "tinyllama", "--refine", "-1"])
    assert res.exit_code == 2 and "--refine" in res.output


def test_optimize_help_states_the_refinement_default():
    """The CLI writes the default out (importing the refinement would load JAX at start-up): it must agree."""
    import typer

    from cimjax.cli.main import app
    from cimjax.joint.refine import MEASUREMENTS

    command = typer.main.get_command(app).commands["optimize"]
    help_text = next(p.help for p in command.params if p.name == "refine")
    assert f"default {MEASUREMENTS} with --target kl" in " ".join(help_text.split())
