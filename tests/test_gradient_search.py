"""Gradient search: valid results, exact reporting, near-optimal designs, determinism (issue 3)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from cimjax.hardware.config import FIELDS, DesignSpace
from cimjax.hardware.technology import default_technology
from cimjax.search.exhaustive import sweep
from cimjax.search.gradient import gradient_search
from cimjax.search.pareto import alpha_objective
from cimjax.workload.models import get_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

MODEL = "qwen2.5-0.5b"
# A 129,600-design subset of the paper's space with unevenly spaced values: swept exactly in well under a
# second, and it exercises the search coordinates (P for P^2, log2 for bus widths) on irregular grids.
SPACE = DesignSpace(
    {
        "c_v": (1, 2, 3, 4, 5),
        "c_h": (1, 2, 3, 4, 5),
        "t_v_act": (2, 4, 6, 8),
        "t_h_act": (2, 4, 6, 8),
        "m": (1, 2, 4, 8),
        "pes_per_tile": (4, 16, 36),
        "bus_inter_cluster": (512, 2048, 4096),
        "bus_inter_tile": (512, 2048, 4096),
        "bus_intra_tile": (512, 2048, 4096),
    }
)
WORKLOAD = Workload()


@functools.cache
def _setup():
    spec, tech = get_model(MODEL), default_technology()
    prec = preset("int8", spec.n_layers)
    return spec, prec, tech, sweep(spec, prec, WORKLOAD, tech, SPACE, chunk=1 << 14)


@functools.cache
def _search(alpha: float, seed: int = 0):
    spec, prec, tech, _ = _setup()
    return gradient_search(spec, prec, WORKLOAD, tech, alpha, space=SPACE, seed=seed)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_result_is_a_valid_design_reported_with_the_exact_model_and_near_the_optimum(alpha):
    exhaustive = _setup()[3]
    result = _search(alpha)
    SPACE.validate(result.best_config)
    assert [SPACE.values[f][i] for f, i in zip(FIELDS, result.best_choice, strict=True)] == [
        result.best_config[f] for f in FIELDS
    ]

    index = SPACE.encode(result.best_config)  # the exact sweep's numbers for the same design
    assert result.latency_s == pytest.approx(exhaustive.latency_s[index], rel=1e-6)
    assert result.energy_j == pytest.approx(exhaustive.energy_j[index], rel=1e-6)
    assert result.objective == pytest.approx(float(alpha_objective(result.latency_s, result.energy_j, alpha)))

    _, optimum = exhaustive.best(alpha)
    assert optimum <= result.objective <= 1.02 * optimum
    assert 0 < result.evaluations < 2000 and result.gradient_steps == 200 and result.starts == 32
    assert np.all(np.diff(result.history) <= 0) and result.history[-1] == result.objective


def test_same_seed_same_result_and_other_seeds_also_valid():
    spec, prec, tech, _ = _setup()
    first, again = _search(0.5), gradient_search(spec, prec, WORKLOAD, tech, 0.5, space=SPACE, seed=0)
    assert first.best_config == again.best_config and first.objective == again.objective
    assert first.evaluations == again.evaluations
    np.testing.assert_array_equal(first.relaxed_history, again.relaxed_history)
    other = _search(0.5, seed=1)
    SPACE.validate(other.best_config)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": 1.5}, "alpha"),
        ({"starts": 0}, "starts"),
        ({"steps": 0}, "steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"temperature": (1e-3, 1.0)}, "temperature"),
        ({"temperature": (1.0, 0.0)}, "temperature"),
        ({"beam": 0}, "beam"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    spec, prec, tech = get_model(MODEL), preset("int8", 24), default_technology()
    kwargs = {"alpha": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        gradient_search(spec, prec, WORKLOAD, tech, kwargs.pop("alpha"), space=SPACE, **kwargs)
