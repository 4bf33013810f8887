"""Pluggable methods: a new search or joint method is one decorated function, and a new accuracy proxy a
features function and its kind, each defined here in this file and reachable by ``search``/``cimjax search
--method``, ``run_method``/``cimjax optimize --method`` and the joint optimiser; the registries route
options and name what is allowed."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from cimjax.cli.common import methods_help
from cimjax.cli.main import app
from cimjax.hardware.config import FIELDS, PAPER_SPACE
from cimjax.joint.methods import JOINT_METHODS, JointOutcome, joint_method
from cimjax.joint.problem import ExactEvaluator, design_report, make_problem
from cimjax.joint.runner import optimize_report, run_method
from cimjax.joint.settings import JointSettings
from cimjax.quant.proxy import Proxy, ProxyKind
from cimjax.quant.train import TINY
from cimjax.search.ga import ga_objective
from cimjax.search.methods import SEARCH_METHODS, SearchOutcome, search_method
from cimjax.search.runner import search
from cimjax.workload.operators import Workload
from cimjax.workload.precision import N_POINTS, table_from_bits

runner = CliRunner()
WORKLOAD = Workload(prefill=0, generate=5, attention_block=16)


@pytest.fixture
def random_joint():
    """Registers ``random``: the best of ``samples`` random hardware designs at the smallest uniform width
    that meets the budget -- a whole joint method in one function."""

    @joint_method("random", "random hardware, uniform bits")
    def random_search(problem, seed, progress, *, samples: int = 64) -> JointOutcome:
        evaluator = ExactEvaluator(problem)
        rng = np.random.default_rng(seed)
        choices = rng.integers(0, problem.space.radices, size=(samples, len(problem.space.radices)))
        table = problem.uniform_table(problem.smallest_uniform_width())
        scores = evaluator(choices, np.broadcast_to(table, (samples, *table.shape)))
        best = choices[int(np.argmin(problem.rank(scores)))]
        if progress:
            progress("random", samples, samples)
        return JointOutcome(design_report(problem, best, table, evaluator), evaluator.evaluations)

    yield random_search
    JOINT_METHODS.pop("random")


def test_a_joint_method_registered_in_one_file_runs_through_the_runner_and_the_cli(random_joint, tiny_config):
    problem = make_problem(TINY.spec(), "int6")
    calls = []
    report, evaluations = run_method(
        problem, "random", seed=3, progress=lambda *a: calls.append(a), samples=8, settings=None
    )  # settings: the gradient method's option, not passed to this one
    assert evaluations == 9 and calls == [("random", 8, 8)]  # 8 samples + the report's evaluation
    assert report["feasible"] and report["proxy"] <= problem.budget * (1 + 1e-6)
    assert "random (random hardware, uniform bits)" in methods_help(JOINT_METHODS)

    result = runner.invoke(
        app, ["optimize", "--model", str(tiny_config), "--budget", "int6", "--method", "random", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["method"] == "random" and found["evaluations"] == 65  # the default samples=64, + 1
    assert found["tokens_per_s"] >= found["baseline"]["tokens_per_s"] * (1 - 1e-9)  # never worse than uniform


def test_joint_options_go_to_the_methods_that_take_them(random_joint):
    problem = make_problem(TINY.spec(), "int6")
    with pytest.raises(
        ValueError, match=r"method = 'annealing' is not known; allowed: \['gradient', 'ga', 'sequential', 'random'\]"
    ):
        run_method(problem, "annealing")
    with pytest.raises(TypeError, match=r"no joint method takes \['sample'\]"):
        run_method(problem, "random", sample=3)
    with pytest.raises(ValueError, match="--checkpoint-dir/--resume apply to method 'gradient' only, not 'random'"):
        run_method(problem, "random", resume=True)
    assert JOINT_METHODS["ga"].options == {"evaluations", "generations", "min_pop_size"}
    assert JOINT_METHODS["random"].options == {"samples"}


@pytest.fixture
def random_search():
    """Registers ``random``: the best of ``samples`` random designs of the space -- a whole search method in
    one function."""

    @search_method("random", "random sampling")
    def random_sampling(problem, seed, progress, *, samples: int = 32) -> SearchOutcome:
        p = problem
        choices = np.random.default_rng(seed).integers(0, p.space.radices, size=(samples, len(p.space.radices)))
        values = ga_objective(p.spec, p.prec, p.workload, p.tech, p.space, p.alpha, batch=samples)(choices)
        best = int(np.argmin(values))
        config = {f: p.space.values[f][int(c)] for f, c in zip(FIELDS, choices[best], strict=True)}
        if progress:
            progress(samples, samples)
        return SearchOutcome(config, float(values[best]), samples, {"seed": seed, "samples": samples})

    yield random_sampling
    SEARCH_METHODS.pop("random")


def test_a_search_method_registered_in_one_file_runs_through_search_and_the_cli(random_search):
    calls = []
    found = search("qwen2.5-0.5b", "int8", 0.5, "random", seed=2, progress=lambda *a: calls.append(a), samples=8)
    assert found["method"] == "random" and found["evaluations"] == 8 and found["samples"] == 8 and calls == [(8, 8)]
    PAPER_SPACE.validate(found["config"])
    exact = (found["latency_s"] * found["energy_j"]) ** 0.5  # the report is a fresh exact evaluation
    assert found["objective"] == pytest.approx(exact, rel=1e-5)

    args = ["search", "--model", "qwen2.5-0.5b", "--alpha", "0.5", "--method", "random", "--seed", "2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 32  # the method's named default
    result = runner.invoke(app, ["search", "--model", "qwen2.5-0.5b", "--method", "annealing"])
    assert result.exit_code == 2
    assert "allowed: ['exhaustive', 'ga', 'gradient', 'random']" in " ".join(result.stderr.split())
    result = runner.invoke(app, [*args, "--area-max", "20"])
    assert result.exit_code == 2 and "need method 'exhaustive', not 'random'" in result.stderr


def _noise_energy(proxy, table):
    """One feature: ``sum_t 4^-b_t``, the relative uniform-noise energy of every entry, weighed alike."""
    return jnp.sum(4.0 ** (-table))[None]


NOISE_ENERGY = ProxyKind("noise_energy", _noise_energy, assumption="ASSUMPTION (test): every entry weighs the same")


def test_a_proxy_defined_in_one_file_drives_the_joint_optimiser():
    """A new proxy kind (features function + kind, above) through the relaxed descent, the discretisation
    and the report; its value is checked against a hand computation of ``sum 4^-b``."""
    proxy = Proxy(sens=None, coef=jnp.ones((1,), jnp.float32), kind=NOISE_ENERGY)
    spec = dataclasses.replace(TINY.spec(), n_layers=2)
    settings = JointSettings(starts=2, rounds=2, steps_per_round=4, beam=1, polish_rounds=2, exchange=2)
    report = optimize_report(spec, "int6", proxy=proxy, settings=settings, workload=WORKLOAD)
    assert report["proxy_name"] == "noise_energy" and report["gain_cap"] is None
    assert report["assumption"] == NOISE_ENERGY.assumption and NOISE_ENERGY.assumption in report["meta"]["assumptions"]
    bits = table_from_bits(report["bits"])
    assert report["proxy"] == pytest.approx(float(np.sum(4.0**-bits)), rel=1e-6)
    assert report["budget"] == pytest.approx(2 * N_POINTS * 4.0**-6, rel=1e-6)  # uniform INT6
    assert report["proxy"] <= report["budget"] * (1 + 1e-6)


def test_search_options_are_the_methods_hyper_parameters():
    found = search("qwen2.5-0.5b", "int8", 1.0, "ga", seed=1, pop_size=6, n_gen=3)
    assert len(found["history"]) == 3 and found["evaluations"] <= 18
    with pytest.raises(TypeError, match="samples"):
        search("qwen2.5-0.5b", "int8", 1.0, "ga", samples=3)
