"""The measured evolutionary search (cimjax.joint.evolve) on the tiny problem ``halving_problem`` of
tests/conftest.py, with stand-in measurements (a weighted sum of 2^-bits) whose optimum is known."""

from __future__ import annotations

import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimjax.joint.compare import objective_of
from cimjax.joint.evolve import _mutations, _ranked, evolve, with_evolution
from cimjax.joint.problem import ExactEvaluator
from cimjax.workload.precision import table_from_bits


def _weighted(weights: np.ndarray, scale: float = 1.0):
    """A stand-in measurement ``(tables, stage) -> scale * sum(weights * 2^-bits)`` (the same on every stage)."""

    def measure(tables, stage=1):
        return scale * np.sum(weights * 2.0 ** -np.asarray(tables, np.float64), axis=(1, 2))

    return measure


def _cost(halving_problem, report, tables) -> np.ndarray:
    choice = np.array(np.unravel_index(halving_problem.space.encode(report["config"]), halving_problem.space.radices))
    return ExactEvaluator(halving_problem)(np.repeat(choice[None], len(tables), axis=0), tables).objective


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20))
def test_mutations_are_level_switches_within_the_allowed_bits(halving_problem, seed, n):
    low, high = halving_problem.bits.bounds()
    rng = np.random.default_rng(seed)
    parent = rng.integers(low, high + 1, size=(halving_problem.n_layers, len(low))).astype(np.float64)
    flat, gain = parent.reshape(-1), rng.normal(size=parent.size)  # any ranking: the bounds must hold
    layers = halving_problem.n_layers
    odds = _ranked(gain, flat < np.tile(high, layers)), _ranked(-gain, flat > np.tile(low, layers))
    for child in _mutations(np.random.default_rng(seed), parent, odds, n):
        delta = child - parent
        assert np.all(child >= low) and np.all(child <= high)
        assert set(np.unique(delta)) <= {-1.0, 0.0, 1.0}
        assert 1 <= np.sum(delta < 0) <= 3 and np.sum(delta > 0) <= 3


def test_the_search_finds_the_move_the_cost_model_rewards(halving_problem, uniform_start):
    """Every entry but one costs accuracy; the free one is the entry whose one-bit reduction saves most: the
    search must lower it and leave every other entry at or above its start."""
    start = uniform_start(6.0)
    table = table_from_bits(start["bits"])
    entries = list(zip(*np.nonzero(table > 0), strict=True))
    moved = np.repeat(table[None], len(entries), axis=0)
    for k, entry in enumerate(entries):
        moved[(k, *entry)] -= 1
    free = entries[int(np.argmin(_cost(halving_problem, start, moved)))]
    weights = np.ones_like(table)
    weights[free] = 0.0
    measure = _weighted(weights)
    budget = measure(table[None])[0]
    found, value, info = evolve(halving_problem, start, budget, measure, limit=2000, seed=3)
    assert info["improved"] and found[free] == halving_problem.bits.bounds()[0][free[1]] and value <= budget
    assert _cost(halving_problem, start, found[None])[0] < _cost(halving_problem, start, table[None])[0]


def test_the_result_is_never_worse_than_the_start_and_is_deterministic(halving_problem, uniform_start):
    start = uniform_start(5.0)
    table = table_from_bits(start["bits"])
    measure = _weighted(np.linspace(0.5, 2.0, table.size).reshape(table.shape))
    budget = 1.1 * measure(table[None])[0]
    runs = [evolve(halving_problem, start, budget, measure, limit=300, seed=7) for _ in range(2)]
    (found, value, info), (again, value_again, info_again) = runs
    np.testing.assert_array_equal(found, again)
    assert value == value_again and info == info_again
    assert info["measured"] <= 300 and value <= budget
    assert _cost(halving_problem, start, found[None])[0] <= _cost(halving_problem, start, table[None])[0]
    # a budget nothing within reach meets: the start comes back, unchanged
    kept, _, info = evolve(halving_problem, start, 0.5 * measure(table[None])[0], measure, limit=300, seed=7)
    np.testing.assert_array_equal(kept, table)
    assert not info["improved"]


def _found(halving_problem, start: dict, value: float) -> tuple:
    extras = {"baseline": {"width": 5}, "objective": objective_of(start, 1.0), "optimiser_design": None}
    return halving_problem, start, {"value": value, "kl": value, "loss": value}, extras


def _against_uniform(candidates):
    halving_problem, report, values = candidates[0]
    return halving_problem, report, values, {"objective": objective_of(report, 1.0)}


@pytest.mark.parametrize("check_scale", [1.0, 1.5])
def test_a_design_over_the_budget_on_the_check_windows_is_never_returned(halving_problem, check_scale, uniform_start):
    """Selection windows where the stand-in measures ``1``x, check windows ``check_scale``x: the search's
    design goes to the rule only if its one check measurement is within the budget, else the start stays."""
    start = uniform_start(5.0)
    table = table_from_bits(start["bits"])
    weights = np.linspace(0.5, 2.0, table.size).reshape(table.shape)
    select = _weighted(weights)

    def check(tables):
        return [{"value": v, "kl": v, "loss": v} for v in _weighted(weights, check_scale)(tables)]

    budget = 1.2 * select(table[None])[0]
    measured = types.SimpleNamespace(uniform=lambda target: {5: budget / 1.2})  # the start's check value
    found = _found(halving_problem, start, budget / 1.2)
    chosen, info = with_evolution(found, measured=measured, select=select, check=check, budget=budget, target="kl",
                                  limit=200, seed=0, against_uniform=_against_uniform, say=None)  # fmt: skip
    assert info["improved"] and info["measured_check"] is not None
    assert chosen[2]["value"] <= budget
    if check_scale == 1.0:
        assert info["accepted"] and chosen[1]["tokens_per_s"] > start["tokens_per_s"]
    else:
        assert info["measured_check"] > budget and not info["accepted"] and chosen[1] is start
