"""The precision layouts: the (L, 17) bit table, its JSON form, and the one table of named uniform widths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cimjax.joint.problem import parse_budget
from cimjax.quant.proxy import uniform_budgets
from cimjax.workload.precision import (
    LINEAR_OPS,
    MATMUL_OPS,
    N_POINTS,
    POINT_NAMES,
    POINTS,
    PRESETS,
    Precision,
    bits_report,
    parse_precision,
    table_from_bits,
)


def _distinct(n_layers: int) -> Precision:
    """Every entry a different number that says where it came from: layer * 100 + kind * 20 + op."""
    layer = np.arange(n_layers)[:, None] * 100.0
    return Precision(
        weight_bits=jnp.asarray(layer + np.arange(len(LINEAR_OPS))),
        act_bits=jnp.asarray(layer + 20 + np.arange(len(MATMUL_OPS))),
        kv_bits=jnp.asarray(layer[:, 0] + 40),
    )


def test_table_columns_follow_points_and_names():
    table = np.asarray(_distinct(3).to_table())
    assert table.shape == (3, N_POINTS) == (3, 17) and table.dtype == np.float32
    origin = [*range(7), *range(20, 29), 40]  # q..down weights, q..down + qk, pv inputs, the KV cache
    np.testing.assert_array_equal(table, np.arange(3)[:, None] * 100.0 + np.array(origin))
    assert POINTS[:7] == tuple(("weight", op) for op in LINEAR_OPS)
    assert POINTS[7:16] == tuple(("act", op) for op in MATMUL_OPS) and POINTS[16] == ("kv", "kv")
    assert POINT_NAMES[0] == "weight.q" and POINT_NAMES[15] == "act.pv" and POINT_NAMES[16] == "kv"


def test_from_table_inverts_to_table_jitted_and_batched():
    tables = np.random.default_rng(0).uniform(1, 16, size=(5, 4, N_POINTS)).astype(np.float32)
    round_trip = jax.jit(jax.vmap(lambda t: Precision.from_table(t).to_table()))(tables)
    np.testing.assert_array_equal(np.asarray(round_trip), tables)
    batched = jax.jit(Precision.from_table)(tables)  # leading axes pass through
    assert batched.weight_bits.shape == (5, 4, 7) and batched.act_bits.shape == (5, 4, 9)
    assert batched.kv_bits.shape == (5, 4)
    np.testing.assert_array_equal(np.asarray(batched.to_table()), tables)
    precision = _distinct(2)
    back = Precision.from_table(precision.to_table())
    for field in ("weight_bits", "act_bits", "kv_bits"):
        np.testing.assert_array_equal(np.asarray(getattr(back, field)), np.asarray(getattr(precision, field)))


def test_bits_report_is_the_json_form_of_a_table():
    table = np.random.default_rng(1).integers(2, 17, size=(3, N_POINTS)).astype(np.float64)
    report = bits_report(table)
    assert [row["layer"] for row in report] == [0, 1, 2]
    assert list(report[1]["weight"]) == list(LINEAR_OPS) and list(report[1]["act"]) == list(MATMUL_OPS)
    assert report[2]["kv"] == int(table[2, -1]) and report[0]["act"]["pv"] == int(table[0, 15])
    np.testing.assert_array_equal(table_from_bits(report), table)


def test_one_table_of_named_widths_serves_precisions_and_budgets():
    assert PRESETS == {"int8": 8, "int6": 6, "int4": 4}
    for name, width in PRESETS.items():
        assert parse_precision(name) == (width, width, width)
        assert parse_budget(name.upper(), float, "predicted") == (float(width), name)
    budgets = uniform_budgets(lambda p: jnp.mean(p.to_table()), n_layers=2)
    assert budgets == {name: float(width) for name, width in PRESETS.items()}
    with pytest.raises(ValueError, match=r"budget = 'int5' is not allowed; give one of \['int4', 'int6', 'int8'\]"):
        parse_budget("int5", float, "predicted")
