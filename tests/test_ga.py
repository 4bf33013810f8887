"""The paper's genetic algorithm: convergence, determinism, batching, evaluation budget, duplicates."""

import numpy as np
import pytest

from cimjax.hardware.config import FIELDS, PAPER_SPACE
from cimjax.search.ga import GAResult, run_ga, run_integer_ga

RADICES = np.asarray(PAPER_SPACE.radices)
TARGET = np.array([3, 0, 6, 2, 4, 1, 3, 0, 2])  # an interior/edge mix of choice indices
WEIGHTS = np.linspace(1.0, 3.0, len(FIELDS))


class Recorder:
    """Separable quadratic objective with its unique minimum (value 1) at TARGET; records every batch."""

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def __call__(self, choice: np.ndarray) -> np.ndarray:
        self.batches.append(np.array(choice, copy=True))
        return 1.0 + (((choice - TARGET) / (RADICES - 1)) ** 2 * WEIGHTS).sum(axis=1)


def test_finds_optimum_of_separable_objective_in_most_seeds():
    hits = 0
    for seed in range(6):
        result = run_ga(Recorder(), PAPER_SPACE, seed=seed)
        hits += np.array_equal(result.best_choice, TARGET)
    assert hits >= 5


def test_same_seed_same_result_and_different_seed_differs():
    a, b = Recorder(), Recorder()
    ra, rb = run_ga(a, PAPER_SPACE, seed=7, n_gen=10), run_ga(b, PAPER_SPACE, seed=7, n_gen=10)
    assert np.array_equal(ra.best_choice, rb.best_choice)
    assert ra.best_value == rb.best_value and ra.evaluations == rb.evaluations
    np.testing.assert_array_equal(ra.history, rb.history)
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True))
    c = Recorder()
    run_ga(c, PAPER_SPACE, seed=8, n_gen=10)
    assert not np.array_equal(a.batches[0], c.batches[0])


def test_one_batch_per_generation_budget_bounds_and_no_duplicates():
    objective = Recorder()
    seen_gens = []
    result = run_ga(objective, PAPER_SPACE, seed=1, progress=lambda gen, best: seen_gens.append((gen, best)))
    assert isinstance(result, GAResult)
    assert len(objective.batches) == 50  # one objective call per generation
    sizes = [len(b) for b in objective.batches]
    assert all(0 < s <= 20 for s in sizes) and sizes[0] == 20
    assert result.evaluations == sum(sizes) <= 20 * 50
    for batch in objective.batches:
        assert batch.shape[1] == len(FIELDS) and np.issubdtype(batch.dtype, np.integer)
        assert (batch >= 0).all() and (batch < RADICES).all()
        assert len(np.unique(batch, axis=0)) == len(batch)  # no design evaluated twice in a generation
    assert [g for g, _ in seen_gens] == list(range(1, 51))
    history = np.array([b for _, b in seen_gens])
    np.testing.assert_array_equal(history, result.history)
    assert (np.diff(history) <= 0).all()  # elitist: the best never gets worse
    assert result.best_value == history[-1] == objective(result.best_choice[None])[0]
    assert result.wall_s > 0


def test_generic_radices_including_fixed_variables():
    radices = [1, 3, 12, 1, 40]
    target = np.array([0, 2, 5, 0, 31])

    def objective(x):
        return np.abs(x - target).sum(axis=1).astype(float)

    result = run_integer_ga(objective, radices, pop_size=20, n_gen=40, seed=0)
    assert np.array_equal(result.best_choice, target) and result.best_value == 0.0


def test_best_choice_decodes_to_a_design():
    result = run_ga(Recorder(), PAPER_SPACE, seed=0, n_gen=5)
    design = PAPER_SPACE.from_choice_indices(result.best_choice[None])
    assert design.c_v.shape == (1,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radices": []}, "non-empty"),
        ({"radices": [3, 0]}, "at least 1"),
        ({"radices": [3], "pop_size": 1}, "pop_size"),
        ({"radices": [3], "n_gen": 0}, "n_gen"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_integer_ga(lambda x: x.sum(axis=1).astype(float), **kwargs)


def test_rejects_bad_objective_output():
    with pytest.raises(ValueError, match=r"must return shape \(\d+,\)"):
        run_integer_ga(lambda x: np.zeros((len(x), 2)), [4, 4, 4], n_gen=1)
    with pytest.raises(ValueError, match="NaN"):
        run_integer_ga(lambda x: np.full(len(x), np.nan), [4, 4, 4], n_gen=1)
