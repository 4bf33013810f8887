"""The joint bits + hardware optimiser: problem validation, exactness of its scores, checkpoint resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cimjax.cost.reference import reference_costs
from cimjax.hardware.config import FIELDS, PAPER_SPACE
from cimjax.joint.checkpoints import CheckpointError
from cimjax.joint.discrete import repair
from cimjax.joint.optimizer import optimize
from cimjax.joint.problem import BitSpace, ExactEvaluator, InfeasibleError, make_problem
from cimjax.joint.settings import JointSettings
from cimjax.quant.train import TINY
from cimjax.workload.operators import Workload

SPEC = dataclasses.replace(TINY.spec(), n_layers=2)
WORKLOAD = Workload(prefill=0, generate=5, attention_block=16)
SMALL = JointSettings(starts=3, rounds=3, steps_per_round=8, beam=2, polish_rounds=5, exchange=3)


@pytest.fixture(scope="module")
def problem():
    return make_problem(SPEC, "int6", workload=WORKLOAD, bits=BitSpace(weight=(2, 8), act=(2, 8), kv=(2, 8)))


def test_budget_and_area_errors_name_the_problem(problem):
    with pytest.raises(ValueError, match="budget = 'int7'"):
        make_problem(SPEC, "int7", workload=WORKLOAD)
    with pytest.raises(ValueError, match="positive finite"):
        make_problem(SPEC, -1.0, workload=WORKLOAD)
    with pytest.raises(InfeasibleError, match="cannot be met"):
        make_problem(SPEC, problem.budget * 1e-6, workload=WORKLOAD)
    with pytest.raises(InfeasibleError, match="below the smallest design"):
        make_problem(SPEC, "int8", workload=WORKLOAD, area_max=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        make_problem(SPEC, "int8", workload=WORKLOAD, alpha=1.5)
    with pytest.raises(ValueError, match="BitSpace.weight"):
        BitSpace(weight=(0, 8))


def test_budget_labels_are_the_proxy_at_uniform_widths(problem):
    from cimjax.workload.precision import Precision

    assert problem.budget == pytest.approx(float(problem.proxy(Precision.uniform(SPEC.n_layers, 6))))
    assert make_problem(SPEC, "0.5", workload=WORKLOAD).budget == 0.5


def test_exact_evaluator_matches_plain_python_reference(problem):
    rng = np.random.default_rng(0)
    choices = np.stack([rng.integers(0, r, size=4) for r in PAPER_SPACE.radices], axis=1)
    tables = rng.integers(2, 9, size=(4, SPEC.n_layers, 17)).astype(float)
    scores = ExactEvaluator(problem)(choices, tables)
    tech = problem.tech.to_dict()
    for i in range(4):
        hw = {n: PAPER_SPACE.values[n][choices[i, j]] for j, n in enumerate(FIELDS)}
        t = tables[i].astype(int).tolist()
        ref = reference_costs(hw, [r[:7] for r in t], [r[7:16] for r in t], [r[16] for r in t], SPEC, WORKLOAD, tech)
        assert scores.latency_s[i] == pytest.approx(ref["latency_s"], rel=1e-5)
        assert scores.energy_j[i] == pytest.approx(ref["energy_j"], rel=1e-5)
        assert scores.area_mm2[i] == pytest.approx(ref["area_mm2"], rel=1e-5)


def test_repair_meets_the_budget_from_the_lowest_bits(problem):
    evaluator = ExactEvaluator(problem)
    choice = np.zeros(len(FIELDS), int)
    table = repair(problem, evaluator, choice, problem.uniform_table(2))
    assert evaluator(choice[None], table[None]).proxy[0] <= problem.budget


@pytest.fixture(scope="module")
def full_run(problem, tmp_path_factory):
    return optimize(problem, SMALL, checkpoint_dir=tmp_path_factory.mktemp("full"))


def test_result_is_feasible_and_reported_exactly(problem, full_run):
    report = full_run.report
    assert report["feasible"] and report["proxy"] <= problem.budget
    fresh = ExactEvaluator(problem)(full_run.choice[None], full_run.table[None])
    assert report["latency_s"] == pytest.approx(fresh.latency_s[0], rel=1e-12)
    assert report["tokens_per_s"] == pytest.approx(WORKLOAD.generate / fresh.latency_s[0], rel=1e-12)
    assert full_run.evaluations == SMALL.starts * SMALL.total_steps + full_run.exact_evaluations


def test_interrupted_run_resumes_to_the_same_result(problem, full_run, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_two(phase, done, total):
        if phase == "descent" and done == 2:
            raise Stop

    with pytest.raises(Stop):
        optimize(problem, SMALL, checkpoint_dir=tmp_path, progress=stop_after_two)
    with pytest.raises(CheckpointError, match="--resume"):
        optimize(problem, SMALL, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="another problem"):
        optimize(problem, dataclasses.replace(SMALL, seed=1), checkpoint_dir=tmp_path, resume=True)
    rounds = []
    resumed = optimize(
        problem, SMALL, checkpoint_dir=tmp_path, resume=True, progress=lambda p, d, t: rounds.append((p, d))
    )
    assert [d for p, d in rounds if p == "descent"] == [2, 3]  # where it starts (2 restored), then the round left
    np.testing.assert_array_equal(resumed.choice, full_run.choice)
    np.testing.assert_array_equal(resumed.table, full_run.table)
    assert resumed.report["latency_s"] == full_run.report["latency_s"]
