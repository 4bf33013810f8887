"""Mirror folding is exact: a design and its mirror image (c_v <-> c_h, t_v_act <-> t_h_act) cost the same under
the exact model, bit for bit, so the sweep may evaluate one of them and report the distinct designs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cimjax.cost.model import evaluate
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import default_technology
from cimjax.search.exhaustive import sweep
from cimjax.search.pareto import alpha_objective
from cimjax.search.symmetry import MirrorFolding
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS, Precision

# Three values per field, unevenly spaced, so mirror images differ in the grid's shape (1 x 5 vs 5 x 1).
SPACE = DesignSpace(
    {
        "c_v": (1, 2, 5),
        "c_h": (1, 2, 5),
        "t_v_act": (2, 5, 8),
        "t_h_act": (2, 5, 8),
        "m": (1, 3, 8),
        "pes_per_tile": (4, 16, 36),
        "bus_inter_cluster": (512, 2048, 4096),
        "bus_inter_tile": (512, 2048, 4096),
        "bus_intra_tile": (512, 2048, 4096),
    }
)
WORKLOAD = Workload(prefill=37, generate=5, attention_block=16)


def _random_case(seed: int, spec=None):
    """A random built-in model (unless given) and a random per-layer precision (whole bits, 2..8)."""
    rng = np.random.default_rng(seed)
    spec = spec or list(MODELS.values())[rng.integers(len(MODELS))]
    bits = functools.partial(rng.integers, 2, 9)
    prec = Precision(
        jnp.asarray(bits((spec.n_layers, len(LINEAR_OPS))), jnp.float32),
        jnp.asarray(bits((spec.n_layers, len(MATMUL_OPS))), jnp.float32),
        jnp.asarray(bits(spec.n_layers), jnp.float32),
    )
    return spec, prec


def _mirror(choice: np.ndarray) -> np.ndarray:
    mirrored = choice.copy()
    for a, b in (("c_v", "c_h"), ("t_v_act", "t_h_act")):
        i, j = FIELDS.index(a), FIELDS.index(b)
        mirrored[:, [i, j]] = choice[:, [j, i]]
    return mirrored


def test_mirror_images_cost_the_same_bit_for_bit():
    """Random designs of the paper's space and their mirrors, under a random model and random per-layer
    precisions, decode and prefill, every reported quantity (latency, energy, area, their breakdowns)."""
    tech = default_technology()
    spec, _ = _random_case(0)
    run = jax.jit(jax.vmap(lambda h, p: evaluate(h, p, spec, WORKLOAD, tech), in_axes=(0, None)))  # one compile
    for seed in range(3):
        _, prec = _random_case(seed, spec)
        rng = np.random.default_rng(100 + seed)
        choice = np.stack([rng.integers(0, n, 64) for n in PAPER_SPACE.radices], axis=1)
        costs = run(PAPER_SPACE.from_choice_indices(np.concatenate([choice, _mirror(choice)])), prec)
        moved = np.flatnonzero((choice != _mirror(choice)).any(axis=1))
        assert len(moved) > 32  # most random designs are not their own mirror
        for path, leaf in jax.tree_util.tree_leaves_with_path(costs):
            values = np.asarray(leaf)
            if values.ndim:
                assert np.array_equal(values[:64], values[64:]), jax.tree_util.keystr(path)


def test_sweep_evaluates_distinct_designs_and_equals_the_unfolded_evaluation():
    spec, prec = _random_case(7)
    tech = default_technology()
    result = sweep(spec, prec, WORKLOAD, tech, SPACE, chunk=2048)
    folding = MirrorFolding(SPACE)
    assert result.evaluations == folding.size == (3 * 4 // 2) ** 2 * 3**5 < SPACE.size
    # A design's numbers do not depend on the step it is evaluated in (here 9 steps, the last padded).
    other = sweep(spec, prec, WORKLOAD, tech, SPACE, chunk=1000)
    for name in ("latency_s", "energy_j", "area_mm2"):
        np.testing.assert_array_equal(getattr(other, name), getattr(result, name), err_msg=name)

    every = jax.jit(jax.vmap(lambda h: evaluate(h, prec, spec, WORKLOAD, tech, with_prefill=False)))
    full = every(SPACE.decode(jnp.arange(SPACE.size)))
    for name in ("latency_s", "energy_j", "area_mm2"):  # two compiled programs: equal to float32 rounding
        np.testing.assert_allclose(getattr(result, name), np.asarray(getattr(full, name)), rtol=2e-6, err_msg=name)

    # Optima and the Pareto front are canonical designs (c_v <= c_h, t_v_act <= t_h_act), each listed once.
    front = result.pareto_indices()
    canonical = set(folding.flat_indices.tolist())
    assert set(front.tolist()) <= canonical and len(front) == len(set(front.tolist()))
    points = {(result.latency_s[i], result.energy_j[i]) for i in front}
    assert len(points) == len(front)  # no mirror twin (equal costs) on the front
    for alpha in (0.0, 0.5, 1.0):
        index, value = result.best(alpha)
        assert index in canonical
        assert value == pytest.approx(alpha_objective(result.latency_s, result.energy_j, alpha).min(), rel=1e-12)
