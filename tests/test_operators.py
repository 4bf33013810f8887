"""The cost model's two steps: each operator's latency and activities (cost/operators.py), then pricing
(cost/pricing.py), checked against physical limits and an independent float64 pricing."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cimjax.cost import operators
from cimjax.cost.model import evaluate
from cimjax.cost.operators import ACTIVITIES, OPERATORS
from cimjax.cost.pricing import COMPONENTS
from cimjax.hardware.area import chip_area
from cimjax.hardware.config import FIELDS, PAPER_SPACE, HardwareConfig
from cimjax.hardware.technology import default_technology
from cimjax.mapping.pipeline import dram_bits_per_s
from cimjax.ops import EXACT
from cimjax.workload.models import MODELS
from cimjax.workload.operators import decode_counts
from cimjax.workload.precision import Precision

SPEC = MODELS["qwen2.5-0.5b"]


def _designs(n: int = 4):
    rng = np.random.default_rng(7)
    return [HardwareConfig.from_dict({f: rng.choice(PAPER_SPACE.values[f]) for f in FIELDS}) for _ in range(n)]


def _precision():
    rng = np.random.default_rng(3)
    n = SPEC.n_layers
    return Precision(
        rng.integers(2, 9, (n, 7)).astype(float), rng.integers(2, 9, (n, 9)).astype(float),
        rng.integers(2, 9, n).astype(float),
    )  # fmt: skip


def _operators(hw, prec, wl, tech):
    p = operators.phase(hw, prec, SPEC, decode_counts(wl), wl.attention_block, tech, EXACT)
    per_layer, once = operators.phase_operators(p)
    return {op: (np.asarray(c.latency), c.activity()) for op, c in per_layer.items()}, once


def test_every_operator_respects_its_dram_roofline(small_workload):
    """No operator moves its DRAM bits faster than the sustained DRAM rate, layer by layer."""
    tech = default_technology()
    rate = float(dram_bits_per_s(tech))
    for hw in _designs():
        per_layer, once = _operators(hw, _precision(), small_workload, tech)
        assert list(per_layer) == list(OPERATORS)
        for op, (latency, activity) in per_layer.items():
            bits = np.broadcast_to(np.asarray(activity.dram_bits), latency.shape)
            assert np.all(latency * (1 + 1e-5) >= bits / rate), op
        embedding = once["dram_other"]
        assert float(embedding.latency) == pytest.approx(float(embedding.activity().dram_bits) / rate, rel=1e-6)


def test_pricing_is_activities_times_unit_energies_plus_leakage(small_workload):
    """Energy by component, recomputed in float64 from the operators' activities and the unit energies."""
    tech = default_technology()
    prec = _precision()
    t = tech.to_dict()
    for hw in _designs(2):
        area = chip_area(hw, tech)
        per_layer, once = _operators(hw, prec, small_workload, tech)
        total = {a: 0.0 for a in ACTIVITIES}
        latency = 0.0
        for lat, activity in per_layer.values():
            latency += float(np.sum(np.broadcast_to(lat, (SPEC.n_layers,))))
            for a in ACTIVITIES:
                total[a] += float(np.sum(np.broadcast_to(np.asarray(getattr(activity, a)), (SPEC.n_layers,))))
        total["dram_bits"] += float(once["dram_other"].activity().dram_bits)
        latency += float(once["dram_other"].latency)
        wire = float(area.wire_intra_tile_mm + area.wire_inter_tile_mm + area.wire_inter_cluster_mm)
        expected = {
            "dram": total["dram_bits"] * t["dram_energy_per_bit"],
            "compute": total["pe_cycles"] * t["pe_cycle_energy"],
            "macro_write": total["streamed_bits"] * t["pe_write_energy_per_bit"],
            "reduction": total["adds"] * t["psum_bits"] * t["add_energy_per_bit"],
            "buffers": 2 * (total["dram_bits"] + total["moved_bits"]) * t["buffer_energy_per_bit"],
            "buses": (total["streamed_bits"] + total["moved_bits"]) * wire * t["wire_energy_per_bit_mm"],
            "functional_units": total["fu_ops"] * t["fu_energy_per_op"],
            "leakage": latency * t["leakage_w_per_mm2"] * float(area.total),
        }
        got = jax.jit(lambda hw: evaluate(hw, prec, SPEC, small_workload, tech, with_prefill=False))(hw)
        assert float(got.latency_s) == pytest.approx(latency, rel=1e-5)
        for component in COMPONENTS:
            assert float(got.decode.energy_by_component[component]) == pytest.approx(expected[component], rel=1e-5)
