"""Pareto tools: non-dominated filtering, 2-D fronts, hypervolume, the alpha objective and sweeps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pymoo.indicators.hv import HV

from cimjax.search.pareto import alpha_objective, alpha_sweep, hypervolume, non_dominated, pareto_front_2d


def brute_force_non_dominated(points: np.ndarray) -> np.ndarray:
    """O(n^2) oracle: p survives unless some q is <= everywhere and < somewhere."""
    return np.array([not any((q <= p).all() and (q < p).any() for q in points) for p in points], dtype=bool)


# Small integer values force ties and duplicates, the cases a sort-based filter can get wrong.
point_sets = st.integers(1, 3).flatmap(
    lambda k: arrays(np.float64, st.tuples(st.integers(0, 40), st.just(k)), elements=st.integers(0, 6))
)


@settings(max_examples=150, deadline=None)
@given(point_sets)
def test_non_dominated_matches_brute_force(points):
    np.testing.assert_array_equal(non_dominated(points), brute_force_non_dominated(points))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 60), st.just(2)), elements=st.floats(-1e3, 1e3)))
def test_pareto_front_2d_sorted_and_complete(points):
    front = pareto_front_2d(points[:, 0], points[:, 1])
    assert set(front.tolist()) == set(np.flatnonzero(brute_force_non_dominated(points)).tolist())
    assert (np.diff(points[front, 0]) >= 0).all() and (np.diff(points[front, 1]) <= 0).all()


def test_non_dominated_keeps_infinite_but_undominated_points():
    points = np.array([[np.inf, np.inf], [np.inf, np.inf]])
    assert non_dominated(points).all()
    assert non_dominated(np.array([[1.0, np.inf], [2.0, np.inf], [3.0, 0.0]])).tolist() == [True, False, True]


def test_hypervolume_hand_computed_2d():
    # Staircase under reference (4, 4): columns [1,2)x[3,4) + [2,3)x[1,4) + [3,4)x[0.5,4) = 1 + 3 + 3.5.
    points = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 0.5], [3.5, 3.5]])  # the last one is dominated
    assert hypervolume(points, [4.0, 4.0]) == pytest.approx(7.5)
    assert hypervolume(np.empty((0, 2)), [1.0, 1.0]) == 0.0


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)), elements=st.floats(0.0, 1.0)))
def test_hypervolume_2d_matches_pymoo(points):
    reference = np.array([1.1, 1.3])
    assert hypervolume(points, reference) == pytest.approx(HV(ref_point=reference)(points), rel=1e-9, abs=1e-12)


def test_hypervolume_3d_uses_pymoo():
    points = np.random.default_rng(0).uniform(size=(25, 3))
    reference = np.full(3, 1.5)
    assert hypervolume(points, reference) == pytest.approx(HV(ref_point=reference)(points))
    assert hypervolume([[0.0, 0.0, 0.0]], reference) == pytest.approx(1.5**3)


def test_alpha_objective_values_and_limits():
    latency, energy = np.array([2.0, 1e-3]), np.array([8.0, 1e-6])
    np.testing.assert_allclose(alpha_objective(latency, energy, 0.5), np.sqrt(latency * energy))
    np.testing.assert_allclose(alpha_objective(latency, energy, 1.0), latency)
    np.testing.assert_allclose(alpha_objective(latency, energy, 0.0), energy)
    # Infeasible designs (inf) do not leak into the objective that ignores them.
    assert alpha_objective(np.inf, 3.0, 0.0) == pytest.approx(3.0)
    assert alpha_objective(np.inf, 3.0, 0.25) == np.inf


def test_alpha_objective_is_jittable_and_differentiable():
    f = jax.jit(lambda lat, en: alpha_objective(lat, en, 0.25).sum())
    latency, energy = jnp.array([2.0, 4.0]), jnp.array([1.0, 3.0])
    assert np.isclose(float(f(latency, energy)), float((latency**0.25 * energy**0.75).sum()), rtol=1e-6)
    grad = jax.grad(lambda lat: alpha_objective(lat, energy, 0.25).sum())(latency)
    np.testing.assert_allclose(grad, 0.25 * latency**-0.75 * energy**0.75, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 200), st.just(2)), elements=st.floats(1e-6, 1e3)),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
)
def test_alpha_sweep_matches_brute_force(metrics, alphas):
    latency, energy = metrics[:, 0], metrics[:, 1]
    chosen = alpha_sweep(latency, energy, alphas)
    for alpha, index in zip(alphas, chosen, strict=True):
        scores = alpha_objective(latency, energy, alpha)
        assert scores[index] == pytest.approx(scores.min(), rel=1e-12)
        if np.sum(scores == scores.min()) == 1:
            assert index == np.argmin(scores)


def test_alpha_sweep_extremes_on_many_designs():
    rng = np.random.default_rng(0)
    latency = rng.lognormal(size=200_000)
    energy = rng.lognormal(size=200_000)
    fastest = np.argmin(latency)
    latency[17] = latency[fastest]  # a tie in latency: alpha = 1 must take the lower-energy of the two
    energy[17] = energy[fastest] * 0.5
    low_latency, low_energy, middle = alpha_sweep(latency, energy, [1.0, 0.0, 0.5])
    assert low_latency == 17
    assert low_energy == np.argmin(energy)
    assert middle == np.argmin(np.log(latency) + np.log(energy))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_out_of_range_is_named(alpha):
    with pytest.raises(ValueError, match=r"alpha = .* outside the allowed range \[0, 1\]"):
        alpha_objective(1.0, 1.0, alpha)
    with pytest.raises(ValueError, match=r"outside the allowed range \[0, 1\]"):
        alpha_sweep([1.0, 2.0], [2.0, 1.0], [0.5, alpha])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        alpha_sweep([1.0, 2.0], [1.0], [0.5])
    with pytest.raises(ValueError, match="shapes differ"):
        pareto_front_2d([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        non_dominated([[1.0, np.nan]])
    with pytest.raises(ValueError, match="latency contains NaN"):
        alpha_sweep([1.0, np.nan], [1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="energy must be positive"):
        alpha_objective([1.0], [0.0], 0.5)
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        non_dominated([1.0, 2.0])
    with pytest.raises(ValueError, match="does not bound point 1"):
        hypervolume([[0.0, 0.0], [2.0, 0.5]], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"reference must have shape \(2,\)"):
        hypervolume([[0.0, 0.0]], [1.0, 1.0, 1.0])
