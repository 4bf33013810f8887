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


def test_partial_sum_bits_by_hand(small_workload):
    """W_O of Qwen2.5-0.5B at INT4 (896 x 896): 56 row groups x 224 column groups = 12,544 macro loads. With
    P^2 = 4 a tile sums 4 of them into 4 sums of 4 + 4 + log2(16 x 4) = 14 bits: 12,544 / 4 x 56 bits per
    token; with N_A = 8 x 4 a cluster sends 4 sums of 4 + 4 + log2(16 x 32) = 17 bits per 32 loads to the chip
    tree. Switched off, none."""
    hw = HardwareConfig.from_dict(dict(PAPER_SPACE.decode(0).to_dict(), t_v_act=4, t_h_act=2, pes_per_tile=4))
    four = Precision(np.full((1, 7), 4.0), np.full((1, 9), 4.0), np.full(1, 4.0))
    counts = decode_counts(small_workload)
    for switch in (0, 1):
        tech = default_technology().replace(partial_sums=switch)
        p = operators.phase(hw, four, SPEC, counts, small_workload.attention_block, tech, EXACT)
        activity = operators.o_proj(p).activity()
        assert float(np.sum(activity.tile_psum_bits)) == pytest.approx(switch * counts.tokens * 12544 / 4 * 4 * 14)
        assert float(np.sum(activity.chip_psum_bits)) == pytest.approx(switch * counts.tokens * 12544 / 32 * 4 * 17)
        assert float(np.sum(operators.attention(p).activity().tile_psum_bits)) == 0.0  # not modelled for K/V blocks


@pytest.mark.parametrize("partial_sums", [0, 1])
def test_pricing_is_activities_times_unit_energies_plus_leakage(small_workload, partial_sums):
    """Energy by component, recomputed in float64 from the operators' activities and the unit energies."""
    tech = default_technology().replace(partial_sums=partial_sums)
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
            "buses": (
                (total["streamed_bits"] + total["moved_bits"]) * wire
                + total["tile_psum_bits"] * float(area.wire_inter_tile_mm)
                + total["chip_psum_bits"] * float(area.wire_inter_cluster_mm)
            )
            * t["wire_energy_per_bit_mm"],
            "functional_units": total["fu_ops"] * t["fu_energy_per_op"],
            "leakage": latency * t["leakage_w_per_mm2"] * float(area.total),
        }
        got = jax.jit(lambda hw: evaluate(hw, prec, SPEC, small_workload, tech, with_prefill=False))(hw)
        assert float(got.latency_s) == pytest.approx(latency, rel=1e-5)
        for component in COMPONENTS:
            assert float(got.decode.energy_by_component[component]) == pytest.approx(expected[component], rel=1e-5)
