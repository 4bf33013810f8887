"""Baselines of the joint problem against brute-force oracles on a 1-layer model and a 768-design space."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace
from cimjax.joint import allocation, baselines
from cimjax.joint.problem import BitSpace, ExactEvaluator, InfeasibleError, Scores, make_problem
from cimjax.quant.train import TINY
from cimjax.search.ga import run_integer_ga
from cimjax.search.pareto import alpha_objective
from cimjax.search.symmetry import MirrorFolding

SPACE = DesignSpace(
    {
        **{f: (PAPER_SPACE.values[f][0], PAPER_SPACE.values[f][-2]) for f in FIELDS},
        "pes_per_tile": (4, 16, 36),
    }
)
AREA_MAX = 50.0  # mm^2: about half the designs of SPACE


@pytest.fixture(scope="module")
def spec():
    return TINY.spec()


def all_choices(space: DesignSpace) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(space.size), space.radices), axis=1)


def objective_of(problem, report: dict) -> float:
    return float(alpha_objective(report["latency_s"], report["energy_j"], problem.alpha))


def assert_report_is_exact(problem, result):
    """The reported metrics are those of a fresh exact evaluation of the returned design."""
    s = ExactEvaluator(problem)(result.choice[None], result.table[None])
    for key, values in (("latency_s", s.latency_s), ("energy_j", s.energy_j), ("area_mm2", s.area_mm2)):
        assert result.report[key] == pytest.approx(float(values[0]), rel=1e-6)
    assert result.report["proxy"] == pytest.approx(float(s.proxy[0]), rel=1e-6)
    assert result.report["feasible"] and bool(s.feasible[0])


def test_uniform_matches_brute_force_over_widths_and_designs(spec):
    problem = make_problem(
        spec, "int6", alpha=0.5, area_max=AREA_MAX, space=SPACE, bits=BitSpace((4, 8), (4, 8), (4, 8))
    )
    calls = []
    result = baselines.uniform_baseline(problem, progress=lambda done, total: calls.append((done, total)))

    evaluator, choices = ExactEvaluator(problem), all_choices(SPACE)
    best, smallest = np.inf, None
    for bits in range(4, 9):
        s = evaluator(choices, np.repeat(problem.uniform_table(bits)[None], len(choices), axis=0))
        if smallest is None and s.proxy[0] <= problem.budget * (1 + 1e-6):
            smallest = bits
        best = min(best, float(s.objective[s.feasible].min(initial=np.inf)))
    assert smallest == 6
    np.testing.assert_array_equal(result.table, problem.uniform_table(smallest))
    assert objective_of(problem, result.report) == pytest.approx(best, rel=1e-6)
    assert result.report["area_mm2"] <= AREA_MAX
    distinct = MirrorFolding(SPACE).size  # the sweep evaluates one design of each mirror pair
    assert result.evaluations == distinct < SPACE.size and calls[-1] == (distinct, distinct)
    assert_report_is_exact(problem, result)

    front = baselines.uniform_front(problem, [6, 4])
    assert [r.name for r in front] == ["uniform-int6", "uniform-int4"]
    assert objective_of(problem, front[0].report) == pytest.approx(objective_of(problem, result.report), rel=1e-9)
    assert not front[1].report["feasible"]  # int4 misses an int6 budget; the front reports it anyway


def test_best_hardware_sweeps_once_per_problem_and_table(spec, monkeypatch):
    """The optimiser's sweep for the uniform bits (with an area limit) is reused by the uniform baseline:
    the same problem object and table sweep once; another table or an equal but new problem sweep again."""
    problem = make_problem(spec, "int6", area_max=AREA_MAX, space=SPACE)
    sweeps, real_sweep = [], allocation.sweep
    monkeypatch.setattr(allocation, "sweep", lambda *a, **k: sweeps.append(1) or real_sweep(*a, **k))
    table = problem.uniform_table(6)
    first, n = allocation.best_hardware(problem, table)
    first[0] = -1  # the caller's copy: the kept answer is not changed
    again, n_again = allocation.best_hardware(problem, table.copy())
    assert len(sweeps) == 1 and n_again == n and again[0] != -1
    assert baselines.uniform_baseline(problem).evaluations == n and len(sweeps) == 1
    allocation.best_hardware(problem, problem.uniform_table(8))
    allocation.best_hardware(make_problem(spec, "int6", area_max=AREA_MAX, space=SPACE), table)
    assert len(sweeps) == 3


def test_uniform_raises_when_only_mixed_bits_meet_the_budget(spec):
    loose = make_problem(spec, "int8", space=SPACE)
    at_max, at_8 = loose.proxy_of_tables(np.stack([loose.max_table(), loose.uniform_table(8)]))
    assert at_max < at_8  # activations and KV may go to 16 bits, weights only to 8
    problem = make_problem(spec, (at_max + at_8) / 2, space=SPACE)
    with pytest.raises(InfeasibleError, match="no uniform width meets the budget"):
        baselines.uniform_baseline(problem)


def test_milp_allocation_equals_brute_force_under_the_linear_model(spec):
    bits = BitSpace(weight=(4, 5), act=(8, 8), kv=(8, 8))
    loose = make_problem(spec, "int4", space=SPACE, bits=bits)
    tables = np.repeat(loose.uniform_table(8)[None], 2**7, axis=0)
    tables[:, 0, :7] = np.array(list(itertools.product((4, 5), repeat=7)))
    proxies = loose.proxy_of_tables(tables)
    ordered = np.sort(proxies)
    budget = float(ordered[63] + ordered[64]) / 2  # about half the tables meet it
    assert (ordered[64] - ordered[63]) / budget > 1e-4  # far from every table's proxy
    problem = make_problem(spec, budget, space=SPACE, bits=bits)
    choice = np.array([1, 0, 1, 0, 1, 2, 0, 1, 0])
    start = tables[-1]  # every weight at 5 bits

    evaluator = ExactEvaluator(problem)
    model = allocation.linearise(problem, choice, start, evaluator)
    picked = np.zeros((len(tables), model.entry.size), bool)  # the options each table takes
    for i, table in enumerate(tables):
        picked[i] = table.reshape(-1)[model.entry] == model.bits
    linear_cost = picked.astype(float) @ model.cost
    # the proxy is separable: base plus summed single-entry changes is every table's exact proxy
    np.testing.assert_allclose((1 - model.slack) + picked @ model.proxy, proxies / budget, rtol=1e-5)
    # single-entry tables: the linear cost is the exact change of log objective
    single = np.flatnonzero((tables != start).sum(axis=(1, 2)) == 1)
    s = evaluator(np.repeat(choice[None], len(single) + 1, axis=0), np.concatenate([start[None], tables[single]]))
    np.testing.assert_allclose(linear_cost[single], np.log(s.objective[1:] / s.objective[0]), atol=1e-9)

    allocated = allocation.allocate_bits(model)
    feasible = proxies <= budget
    oracle = linear_cost[feasible].min()
    index = int(np.flatnonzero((tables == allocated).all(axis=(1, 2)))[0])
    assert feasible[index]
    assert linear_cost[index] <= oracle + allocation.MILP_GAP
    assert oracle < 0 and not feasible[np.argmin(linear_cost)]  # the budget binds

    with pytest.raises(InfeasibleError, match="cannot meet the budget"):
        allocation.allocate_bits(dataclasses.replace(model, slack=-1e3))


def test_milp_stopped_at_the_node_limit_returns_its_feasible_allocation(monkeypatch):
    """HiGHS stops at MILP_NODES with "solution limit", which scipy reports as status 4: the best allocation
    found is still returned, one option per entry and within the slack (a 306-entry random knapsack that the
    root node does not solve)."""
    rng = np.random.default_rng(0)
    entries, options = 17 * 18, 6
    model = allocation.LinearModel(
        table=np.zeros((18, 17)),
        entry=np.repeat(np.arange(entries), options),
        bits=np.tile(np.arange(options), entries),
        cost=rng.normal(size=entries * options),
        proxy=rng.uniform(0, 1, size=entries * options),
        slack=0.3 * entries,
    )
    monkeypatch.setattr(allocation, "MILP_NODES", 1)
    table = allocation.allocate_bits(model)
    chosen = table.reshape(-1)[model.entry] == model.bits
    assert np.array_equal(chosen.reshape(entries, options).sum(axis=1), np.ones(entries))
    assert model.proxy[chosen].sum() <= model.slack + allocation.MILP_FEASIBILITY


def test_sequential_is_feasible_and_keeps_the_best_design_seen(spec):
    problem = make_problem(spec, "int6", area_max=AREA_MAX, space=SPACE)
    calls = []
    result = baselines.sequential_baseline(problem, max_rounds=3, progress=lambda d, t: calls.append((d, t)))
    assert_report_is_exact(problem, result)
    assert 1 <= len(result.history) <= 4  # the INT8 start, then one per round that found a new design
    assert objective_of(problem, result.report) == pytest.approx(min(result.history), rel=1e-6)
    assert result.history[0] == pytest.approx(
        objective_of(problem, baselines.uniform_front(problem, [8])[0].report), rel=1e-6
    )
    assert result.evaluations >= MirrorFolding(SPACE).size * len(result.history)  # a sweep per design in the history
    assert calls[-1] == (4, 4)


def test_ga_is_feasible_deterministic_and_within_its_evaluations(spec):
    problem = make_problem(spec, "int6", area_max=AREA_MAX, space=SPACE)
    calls = []
    first = baselines.ga_baseline(problem, 250, pop_size=20, seed=3, progress=lambda d, t: calls.append((d, t)))
    again = baselines.ga_baseline(problem, evaluations=250, pop_size=20, seed=3)
    assert_report_is_exact(problem, first)
    assert first.evaluations <= 250 and len(first.history) == 250 // 20
    np.testing.assert_array_equal(first.choice, again.choice)
    np.testing.assert_array_equal(first.table, again.table)
    assert first.history == again.history
    assert first.history[-1] == pytest.approx(objective_of(problem, first.report), rel=1e-6)
    assert calls == [(g, 12) for g in range(1, 13)]


def test_rank_puts_infeasible_designs_behind_feasible_ones_by_violation(spec):
    problem = make_problem(spec, 0.01, area_max=AREA_MAX, space=SPACE)
    b, a = problem.budget, AREA_MAX
    scores = Scores(
        latency_s=np.array([1e300, 1e-300, 1.0, 1.0, 1.0]),
        energy_j=np.array([1e300, 1e-300, 1.0, 1.0, 1.0]),
        area_mm2=np.array([a, a, a * 1.1, a, a * 2]),
        proxy=np.array([b, b, b, b * 3, b * 3]),
        objective=np.array([1e300, 1e-300, 1.0, 1.0, 1.0]),
        feasible=np.array([True, True, False, False, False]),
    )
    values = problem.rank(scores)
    assert np.isfinite(values).all()
    assert values[0] < values[2] < values[3] < values[4]


def test_bad_arguments_name_the_argument_and_the_allowed_values(spec):
    problem = make_problem(spec, "int8", space=SPACE)
    with pytest.raises(ValueError, match=r"evaluations = 10 .*>= pop_size \(20\)"):
        baselines.ga_baseline(problem, evaluations=10, pop_size=20)
    with pytest.raises(ValueError, match=r"pop_size = 3 .*>= 7"):  # seven uniform widths, 2..8
        baselines.ga_baseline(problem, evaluations=100, pop_size=3)
    with pytest.raises(ValueError, match=r"max_rounds = 0 .*>= 1"):
        baselines.sequential_baseline(problem, max_rounds=0)
    with pytest.raises(ValueError, match=r"widths \[12\] are not allowed; allowed uniform widths: \[2, 3"):
        baselines.uniform_front(problem, [8, 12])
    with pytest.raises(ValueError, match=r"initial must have shape \(4, 2\)"):
        run_integer_ga(lambda x: x.sum(axis=1), [3, 3], pop_size=4, initial=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"initial must hold whole numbers in \[0, radix - 1\]"):
        run_integer_ga(lambda x: x.sum(axis=1), [3, 3], pop_size=2, initial=np.array([[0, 3], [1, 1]]))
