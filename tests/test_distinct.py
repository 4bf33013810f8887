"""Per-layer precisions priced per operator on its distinct layer rows (cimjax.cost.distinct): the same
costs as the plain per-layer evaluation (bit for bit op by op, to float32 rounding jitted), and as the
plain-Python reference; each operator reads only the columns it is listed with."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cimjax.cost import operators
from cimjax.cost.batched import make_evaluator
from cimjax.cost.distinct import OPERATOR_POINTS, DistinctRows, distinct_rows
from cimjax.cost.model import evaluate
from cimjax.cost.reference import reference_costs
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import default_technology
from cimjax.joint import allocation
from cimjax.joint.compare import choose
from cimjax.joint.problem import make_problem
from cimjax.ops import EXACT
from cimjax.quant.train import TINY
from cimjax.search.exhaustive import sweep
from cimjax.search.pareto import alpha_objective, alpha_sweep
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload, decode_counts
from cimjax.workload.precision import N_POINTS, Precision

SPEC = MODELS["qwen2.5-0.5b"]  # 24 layers
WORKLOAD = Workload(prefill=16, generate=5, attention_block=16)
TECH = default_technology()
SMALL = DesignSpace({name: values[:2] for name, values in PAPER_SPACE.values.items()})  # 512 designs


def _table(seed: int, widths=(4, 8)) -> np.ndarray:
    """A per-layer table whose columns each take one of ``widths``: many layer rows, fewer per operator."""
    return np.random.default_rng(seed).choice(widths, (SPEC.n_layers, N_POINTS)).astype(np.float32)


def _designs(n: int, seed: int = 0) -> list[HardwareConfig]:
    rng = np.random.default_rng(seed)
    return [HardwareConfig.from_dict({f: rng.choice(PAPER_SPACE.values[f]) for f in FIELDS}) for _ in range(n)]


def test_rows_and_index_rebuild_every_operators_columns():
    table = _table(0)
    table[:, list(OPERATOR_POINTS["attention"])] = 6.0  # one attention row
    rows = distinct_rows(Precision.from_table(jnp.asarray(table)))
    assert isinstance(rows, DistinctRows) and rows.n_layers == SPEC.n_layers
    for op, columns in OPERATOR_POINTS.items():
        held = np.asarray(rows.rows[op].to_table())
        rebuilt = held[np.asarray(rows.index[op])]
        np.testing.assert_array_equal(rebuilt[:, columns], table[:, columns], err_msg=op)
        distinct = len(np.unique(table[:, columns], axis=0))
        assert len(np.unique(held[:distinct, columns], axis=0)) == distinct  # the distinct rows first, each once
        # then copies of the first up to a power of two, at most the layer count (24)
        assert len(held) == min(1 << (distinct - 1).bit_length(), SPEC.n_layers)
        np.testing.assert_array_equal(held[distinct:], np.repeat(held[:1], len(held) - distinct, axis=0))
    assert rows.rows["attention"].n_layers == 1


def test_no_distinct_rows_without_repeats_or_with_weight_overhead():
    n = 3
    unique = Precision.from_table(jnp.asarray(np.arange(n * N_POINTS).reshape(n, N_POINTS) % 16 + 1.0))
    assert distinct_rows(unique) is unique  # every operator's rows already distinct
    repeated = Precision.from_table(jnp.asarray(_table(1)))
    with_overhead = Precision(
        repeated.weight_bits, repeated.act_bits, repeated.kv_bits, repeated.weight_bits * 0 + 0.25
    )
    assert distinct_rows(with_overhead) is with_overhead  # overhead bits are not in the table: not deduplicated


@pytest.mark.parametrize("op", list(OPERATOR_POINTS))
def test_each_operator_reads_only_its_columns(op):
    """Every other column changed (4 <-> 8 bits): the operator's latency and activities per layer do not move;
    one of its own columns changed: they do (so the check can fail)."""
    table = _table(2)
    others = [c for c in range(N_POINTS) if c not in OPERATOR_POINTS[op]]
    changed = table.copy()
    changed[:, others] = 12.0 - changed[:, others]
    own = table.copy()
    own[:, OPERATOR_POINTS[op][0]] = 12.0 - own[:, OPERATOR_POINTS[op][0]]
    counts = decode_counts(WORKLOAD)

    def costs(t, hw):
        p = operators.phase(
            hw, Precision.from_table(jnp.asarray(t)), SPEC, counts, WORKLOAD.attention_block, TECH, EXACT
        )
        per_layer, _ = operators.phase_operators(p)
        cost = per_layer[op]
        return [np.broadcast_to(np.asarray(x), (SPEC.n_layers,)) for x in (cost.latency, *cost.activity())]

    moved = False
    for hw in _designs(3):
        base = costs(table, hw)
        for x, y in zip(base, costs(changed, hw), strict=True):
            np.testing.assert_array_equal(x, y)
        moved |= any(not np.array_equal(x, y) for x, y in zip(base, costs(own, hw), strict=True))
    assert moved


@pytest.mark.parametrize("jit", [False, True])
def test_distinct_rows_cost_what_every_layer_costs(jit):
    """Decode and prefill, every leaf of the costs (breakdowns included): op by op (no jit) bit for bit, since
    each layer's value is the same equation at the same bits; jitted, XLA fuses the two programs differently."""
    prec = Precision.from_table(jnp.asarray(_table(3)))
    rows = distinct_rows(prec)
    assert isinstance(rows, DistinctRows)

    def run(hw, p):
        return evaluate(hw, p, SPEC, WORKLOAD, TECH)

    run = jax.jit(run) if jit else run
    for hw in _designs(2, seed=4):
        plain, folded = run(hw, prec), run(hw, rows)
        for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(plain), jax.tree.leaves(folded), strict=True):
            if jit:
                np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-6, err_msg=jax.tree_util.keystr(path))
            else:
                np.testing.assert_array_equal(np.asarray(y), np.asarray(x), err_msg=jax.tree_util.keystr(path))


def test_sweep_at_a_per_layer_table_matches_the_plain_evaluator_and_the_reference():
    """The sweep (distinct rows) against the plain batched evaluator on every design of a small space, and
    against the plain-Python reference on a few."""
    table = _table(5)
    prec = Precision.from_table(jnp.asarray(table))
    result = sweep(SPEC, prec, WORKLOAD, TECH, SMALL, chunk=SMALL.size, distinct_layers=True)
    plain = make_evaluator(SPEC, WORKLOAD, SMALL, "range", size=SMALL.size)(jnp.asarray(0), prec, TECH)
    for got, want in zip((result.latency_s, result.energy_j, result.area_mm2), plain, strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)
    bits = table.astype(int)
    w, a, kv = bits[:, :7].tolist(), bits[:, 7:16].tolist(), bits[:, 16].tolist()
    for i in np.random.default_rng(6).choice(SMALL.size, 3, replace=False):
        config = SMALL.decode(i).to_dict()
        ref = reference_costs(config, w, a, kv, SPEC, WORKLOAD, TECH.to_dict())
        assert result.latency_s[i] == pytest.approx(ref["latency_s"], rel=1e-5)
        assert result.energy_j[i] == pytest.approx(ref["energy_j"], rel=1e-5)
        assert result.area_mm2[i] == pytest.approx(ref["area_mm2"], rel=1e-5)


@pytest.mark.parametrize("alpha, area_max", [(1.0, None), (0.5, None), (0.0, 60.0)])
def test_sweep_at_picks_what_the_plain_sweep_picks(alpha, area_max):
    """The joint optimiser's sweep at a per-layer table: within float32 rounding of the plain sweep everywhere,
    equal to it bit for bit on the near front, so the least objective and the recommendation rule's pick
    (against a made-up baseline, either area rule) are the plain sweep's."""
    spec = dataclasses.replace(TINY.spec(), n_layers=6)
    problem = make_problem(spec, "int8", alpha=alpha, area_max=area_max, workload=WORKLOAD, space=SMALL)
    table = np.random.default_rng(7).choice([4.0, 8.0], (spec.n_layers, N_POINTS))
    assert isinstance(distinct_rows(Precision.from_table(jnp.asarray(table, jnp.float32))), DistinctRows)
    result, allowed = allocation.sweep_at(problem, table)
    plain = sweep(spec, Precision.from_table(jnp.asarray(table, jnp.float32)), WORKLOAD, problem.tech, SMALL)
    front = allocation._near_front(problem, plain, allowed)
    assert 0 < len(front) < len(allowed)
    for name in ("latency_s", "energy_j", "area_mm2"):
        got, want = getattr(result, name), getattr(plain, name)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
        np.testing.assert_array_equal(got[front], want[front], err_msg=name)

    def picks(r):
        objective = np.asarray(alpha_objective(r.latency_s[allowed], r.energy_j[allowed], alpha), np.float64)
        base = np.median(objective)
        candidates, areas = np.append(objective, base), np.append(r.area_mm2[allowed], np.median(r.area_mm2))
        chosen = [choose(candidates, areas, len(allowed), tol, pays) for tol in (0.0, 0.01) for pays in (True, False)]
        return int(alpha_sweep(r.latency_s[allowed], r.energy_j[allowed], [alpha])[0]), chosen

    assert picks(result) == picks(plain)
