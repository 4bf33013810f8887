"""The exact JAX cost model against its oracles: the plain-Python reference, hand-computed cases,
physical limits and invariants, with and without jit."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cimjax.api import evaluate_design, roofline_tokens_per_s
from cimjax.cost.model import evaluate
from cimjax.cost.operators import OPERATORS
from cimjax.cost.pricing import COMPONENTS
from cimjax.cost.reference import reference_costs
from cimjax.hardware.area import chip_area
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, FIELDS, PAPER_SPACE, HardwareConfig
from cimjax.hardware.technology import SWITCHES, SYSTEM_DRAM_ENERGY_PER_BIT, default_technology
from cimjax.mapping.pipeline import stage_timing
from cimjax.ops import EXACT
from cimjax.workload.models import MODELS
from cimjax.workload.operators import Workload
from cimjax.workload.params import layer_linear_weights
from cimjax.workload.precision import Precision, preset
from cimjax.workload.spec import ModelSpec

COST_SWITCHES = ("stage_control", "tile_transfers", "partial_sums")  # mechanisms that add time (the others hide it)
REFERENCE_MODELS = ("qwen2.5-0.5b", "phi3.5-mini", "qwen3-0.6b")  # GQA + biases, MHA, q/k norm + head_dim


def hardware(values: dict) -> HardwareConfig:
    return HardwareConfig(**{k: jnp.asarray(float(v)) for k, v in values.items()})


@functools.cache
def jitted(spec: ModelSpec, workload: Workload):
    return jax.jit(lambda hw, prec, tech: evaluate(hw, prec, spec, workload, tech, with_prefill=False))


def eager(hw, prec, tech, spec, wl):
    return evaluate(hw, prec, spec, wl, tech, with_prefill=False)


designs = st.fixed_dictionaries({name: st.sampled_from(PAPER_SPACE.values[name]) for name in FIELDS})


def bits(n_layers, width):
    return st.lists(st.lists(st.integers(2, 8), min_size=width, max_size=width), min_size=n_layers, max_size=n_layers)


@st.composite
def cases(draw):
    spec = MODELS[draw(st.sampled_from(REFERENCE_MODELS))]
    w = draw(bits(spec.n_layers, 7))
    a = draw(bits(spec.n_layers, 9))
    kv = draw(st.lists(st.integers(2, 8), min_size=spec.n_layers, max_size=spec.n_layers))
    group_scales = st.lists(st.sampled_from([0.0, 0.125, 0.25, 0.5]), min_size=7, max_size=7)
    overhead = draw(st.none() | st.lists(group_scales, min_size=spec.n_layers, max_size=spec.n_layers))
    switches = draw(st.fixed_dictionaries({name: st.sampled_from([0, 1]) for name in SWITCHES}))
    return spec, draw(designs), w, a, kv, overhead, switches


@pytest.mark.parametrize("use_jit", [True, False], ids=["jit", "eager"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_matches_plain_python_reference(case, use_jit, small_workload):
    """Random valid designs, per-layer bits and mechanism switches: JAX model == scalar reference to 1e-6."""
    spec, design, w, a, kv, overhead, switches = case
    with jax.enable_x64(True):
        tech = default_technology().replace(**switches)
        extra = None if overhead is None else jnp.asarray(overhead, float)
        prec = Precision(jnp.asarray(w, float), jnp.asarray(a, float), jnp.asarray(kv, float), extra)
        fn = jitted(spec, small_workload) if use_jit else functools.partial(eager, spec=spec, wl=small_workload)
        got = fn(hardware(design), prec, tech)
        ref = reference_costs(design, w, a, kv, spec, small_workload, tech.to_dict(), overhead)
        for key in ("latency_s", "energy_j", "area_mm2", "tokens_per_s", "tokens_per_j"):
            assert float(getattr(got, key)) == pytest.approx(ref[key], rel=1e-6), key
        for component in COMPONENTS:
            assert float(got.decode.energy_by_component[component]) == pytest.approx(
                ref["energy_by_component"][component], rel=1e-6, abs=1e-18
            ), component
        assert float(got.decode.dram_bits) == pytest.approx(ref["dram_bits"], rel=1e-9)


def test_uniform_precision_as_one_layer_row_is_identical(small_workload):
    spec = MODELS["qwen3-0.6b"]
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    tech = default_technology()
    full = evaluate(hw, preset("int8", spec.n_layers), spec, small_workload, tech)
    one_row = evaluate(hw, preset("int8", 1), spec, small_workload, tech)
    assert float(one_row.latency_s) == pytest.approx(float(full.latency_s), rel=1e-6)
    assert float(one_row.energy_j) == pytest.approx(float(full.energy_j), rel=1e-6)


def test_zero_group_overhead_gives_the_previous_results(small_workload):
    spec = MODELS["qwen2.5-0.5b"]
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    tech = default_technology()
    plain = preset("int4", spec.n_layers)
    zero = Precision(plain.weight_bits, plain.act_bits, plain.kv_bits, jnp.zeros_like(plain.weight_bits))
    quarter = Precision(plain.weight_bits, plain.act_bits, plain.kv_bits, jnp.full_like(plain.weight_bits, 0.25))
    base, same, grouped = (evaluate(hw, p, spec, small_workload, tech) for p in (plain, zero, quarter))
    assert float(same.latency_s) == float(base.latency_s) and float(same.energy_j) == float(base.energy_j)
    assert float(grouped.decode.dram_bits) > float(base.decode.dram_bits)
    assert float(grouped.latency_s) >= float(base.latency_s)


def test_energy_split_matches_the_reference(small_workload):
    """A report's DRAM and on-chip energy, and its system accounting, from the plain-Python reference."""
    spec = MODELS["qwen2.5-0.5b"]
    design = EDGECIM_ALPHA05_DESIGN | {"m": 2}
    report = evaluate_design(spec, "int4", design, small_workload)
    n = spec.n_layers
    ref = reference_costs(design, [[4] * 7] * n, [[4] * 9] * n, [4] * n, spec, small_workload,
                          default_technology().to_dict())  # fmt: skip
    dram = ref["energy_by_component"]["dram"]
    on_chip = sum(v for k, v in ref["energy_by_component"].items() if k != "dram")
    assert report["dram_energy_j"] == pytest.approx(dram, rel=1e-5)
    assert report["on_chip_energy_j"] == pytest.approx(on_chip, rel=1e-5)
    assert report["dram_energy_j"] + report["on_chip_energy_j"] == pytest.approx(ref["energy_j"], rel=1e-5)
    system = report["system"]
    system_dram = ref["dram_bits"] * SYSTEM_DRAM_ENERGY_PER_BIT.value
    assert system["dram_energy_per_bit"] == SYSTEM_DRAM_ENERGY_PER_BIT.value
    assert system["dram_energy_j"] == pytest.approx(system_dram, rel=1e-5)
    assert system["energy_j"] == pytest.approx(on_chip + system_dram, rel=1e-5)
    assert system["tokens_per_j"] == pytest.approx(small_workload.generate / (on_chip + system_dram), rel=1e-5)


def test_breakdowns_add_up():
    report = evaluate_design("llama3.2-1b", "int4", EDGECIM_ALPHA05_DESIGN)
    assert set(report["latency_by_operator_s"]) == set(OPERATORS)
    assert sum(report["latency_by_operator_s"].values()) == pytest.approx(report["latency_s"], rel=1e-5)
    assert sum(report["energy_by_component_j"].values()) == pytest.approx(report["energy_j"], rel=1e-5)
    assert sum(report["energy_by_operator_j"].values()) == pytest.approx(report["energy_j"], rel=1e-5)
    assert "prefill_beyond_paper" in report


# --- Hand-computed cases ------------------------------------------------------------------------

TINY = ModelSpec("tiny", "tiny", n_layers=1, hidden=32, n_heads=2, n_kv_heads=1, head_dim=16, ffn=64, vocab=100,
                 tied_embeddings=True)  # fmt: skip


def test_dram_bits_by_hand():
    """Tiny model, INT4, 3 decode steps after 5 prompt tokens: every streamed bit counted by hand."""
    wl = Workload(prefill=5, generate=3, attention_block=4)
    costs = evaluate(HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN), preset("int4", 1), TINY, wl,
                     default_technology())  # fmt: skip
    weights = 32 * 32 + 32 * 16 + 32 * 16 + 32 * 32 + 32 * 64 + 32 * 64 + 64 * 32  # q k v o gate up down
    norms = 2 * 32 * 16  # two RMSNorm gains at 16 bit
    kv_read = (6 + 7 + 8) * 2 * 16 * 4  # keys attended per step x (k and v) x kv_dim x 4 bits
    kv_write = 3 * 2 * 16 * 4
    embedding = 3 * 32 * 16
    expected = 3 * (weights * 4 + norms) + kv_read + kv_write + embedding
    assert float(costs.decode.dram_bits) == expected


def test_stage_timing_by_hand():
    """One pipeline stage computed by hand at 400 MHz (2.5 ns per cycle)."""
    values = dict(EDGECIM_ALPHA05_DESIGN, m=2, bus_inter_cluster=512, bus_inter_tile=4096, bus_intra_tile=4096)
    hw = HardwareConfig.from_dict(values)
    tech = default_technology().replace(dram_efficiency=1.0)
    t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0, drain_cycles=4.0)
    cycle = 2.5e-9
    shared = max(6 * 8192 / 1638.4e9, 6 * 8192 / 512 * cycle, 8192 / 4096 * cycle)  # inter-cluster: 96 cycles
    load = max(shared, 8192 / 8 / 4096 * cycle, 16 * cycle)
    assert shared == pytest.approx(96 * cycle)
    assert float(t.period) == pytest.approx(max(shared, 8 * cycle, (load + 8 * cycle) / 2), rel=1e-6)
    assert float(t.first) == pytest.approx(load + 8 * cycle + 4 * cycle, rel=1e-6)


def test_global_buffer_overlap_by_hand():
    """M = 1, six clusters streaming 8192 bits each over 4096-bit buses, DRAM at half its peak (24 cycles
    per stage): without the double-buffered global buffer the set waits for DRAM, then computes (24 + 8);
    with it, DRAM runs ahead and the set's cycle is its 16-row macro write plus compute (16 + 8)."""
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    cycle = 2.5e-9
    for switch, period in ((0, 32 * cycle), (1, 24 * cycle)):
        tech = default_technology().replace(dram_efficiency=0.5, global_buffer_overlap=switch)
        t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0,
                         drain_cycles=0.0)  # fmt: skip
        assert float(t.period) == pytest.approx(period, rel=1e-6), switch
        assert float(t.first) == pytest.approx(32 * cycle, rel=1e-6)


def test_load_mechanisms_by_hand():
    """The paper's alpha = 0.5 design (M = 1), six clusters streaming 8192 bits each over 4096-bit buses,
    DRAM at its peak (12 cycles per stage), 8 compute cycles. A set's cycle is its on-chip load, then
    compute: the load is the 16-row macro write, or with a bus-width write port (1 cycle) the shared
    inter-cluster bus, 6 x 2 cycles, or with bursts only its own cluster's 2 cycles; a ping-pong macro
    overlaps load and compute."""
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    cycle = 2.5e-9
    # (inter_cluster_bursts, macro_write_overlap, bus_width_write): (period, first) in cycles
    expected = {
        (0, 0, 0): (16 + 8, 16 + 8),
        (0, 0, 1): (12 + 8, 12 + 8),
        (0, 1, 0): (16, 16 + 8),
        (0, 1, 1): (12, 12 + 8),
        (1, 0, 0): (16 + 8, 16 + 8),
        (1, 0, 1): (12, 12 + 8),  # the set's own 2 + 8 cycles fit in the DRAM-bound 12
        (1, 1, 0): (16, 16 + 8),
        (1, 1, 1): (12, 12 + 8),
    }
    for (bursts, overlap, port), (period, first) in expected.items():
        tech = default_technology().replace(dram_efficiency=1.0, inter_cluster_bursts=bursts,
                                            macro_write_overlap=overlap, bus_width_write=port)  # fmt: skip
        t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0,
                         drain_cycles=0.0)  # fmt: skip
        assert float(t.period) == pytest.approx(period * cycle, rel=1e-6), (bursts, overlap, port)
        assert float(t.first) == pytest.approx(first * cycle, rel=1e-6), (bursts, overlap, port)
    # Bursts make a set wait for its own transfer only once the stage is on chip (global buffer).
    tech = default_technology().replace(dram_efficiency=1.0, global_buffer_overlap=0, inter_cluster_bursts=1,
                                        macro_write_overlap=0, bus_width_write=1)  # fmt: skip
    t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0, drain_cycles=0.0)
    assert float(t.period) == pytest.approx(20 * cycle, rel=1e-6)


def test_stage_control_by_hand():
    """The paper's alpha = 0.5 design at the DRAM peak, six clusters streaming 8192 bits each: the shared
    path takes 12 cycles per stage (DRAM), 12 + 6 with the controller's round trip, which the first
    stage's load also waits for; 3 stages last first + 2 periods."""
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    cycle = 2.5e-9
    for switch, shared in ((0, 12), (1, 12 + 6)):
        tech = default_technology().replace(dram_efficiency=1.0, stage_control=switch, stage_control_cycles=6.0)
        t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0,
                         drain_cycles=4.0)  # fmt: skip
        assert float(t.period) == pytest.approx(shared * cycle, rel=1e-6), switch
        assert float(t.first) == pytest.approx((shared + 8 + 4) * cycle, rel=1e-6), switch
        assert float(t.latency(3)) == pytest.approx((3 * shared + 8 + 4) * cycle, rel=1e-6), switch


def test_tile_transfers_by_hand():
    """The paper's alpha = 0.5 design at the DRAM peak (12 cycles per stage): its 8 tiles of 4 PEs take
    1024 bits each per 8192-bit stage. A 4096-bit inter-tile bus shared by all of them moves the stage in 2
    cycles; serving one tile per cycle it takes 8, so the M = 1 set is busy 8 + 8 = 16 cycles per stage.
    With 2 tiles of 16 PEs (the same 32 PEs) each tile's 4096 bits fill the bus: 2 cycles again."""
    cycle = 2.5e-9
    for (t_v, t_h, pes), switch, period in (((4, 2, 4), 0, 12), ((4, 2, 4), 1, 16), ((2, 1, 16), 1, 12)):
        design = dict(EDGECIM_ALPHA05_DESIGN, t_v_act=t_v, t_h_act=t_h, pes_per_tile=pes)
        hw = HardwareConfig(**{k: jnp.asarray(float(v)) for k, v in design.items()})  # T_A = 2: beyond the space
        tech = default_technology().replace(dram_efficiency=1.0, tile_transfers=switch)
        t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0,
                         drain_cycles=0.0)  # fmt: skip
        assert float(t.period) == pytest.approx(period * cycle, rel=1e-6), (t_v, t_h, switch)
        assert float(t.first) == pytest.approx((12 + 8) * cycle, rel=1e-6), (t_v, t_h, switch)


def test_partial_sums_by_hand():
    """The paper's alpha = 0.5 design at the DRAM peak (4096 bits per cycle), INT8: each of a cluster's 8
    tiles sends 2 sums of 8 + 8 + log2(16 x 4) = 22 bits per input to the cluster tree (352 bits), the
    cluster 2 sums of 8 + 8 + log2(16 x 32) = 25 bits to the chip tree (50). Six clusters' 8192 + 50 bits
    on the inter-cluster bus take 12.07 cycles, over DRAM's 12; the M = 1 set's own cycle is its
    (8192 + 352) / 4096 inter-tile cycles plus 8 of compute. With 4 inputs per stage (32 compute cycles)
    the shared buses carry four inputs' sums, the set's cycle waits for the last input's only."""
    hw = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
    cycle = 2.5e-9
    for switch, inputs, period, first in (
        (0, 1, 12, 12 + 8),
        (1, 1, 6 * (8192 + 50) / 4096, 6 * (8192 + 50) / 4096 + 8),
        (1, 4, (8192 + 352) / 4096 + 32, 6 * (8192 + 4 * 50) / 4096 + 32),
    ):
        tech = default_technology().replace(dram_efficiency=1.0, partial_sums=switch)
        t = stage_timing(hw, tech, EXACT, stage_bits=8192.0, streaming_clusters=6.0, stage_cycles=8.0 * inputs,
                         drain_cycles=0.0, tile_psum_bits=352.0, chip_psum_bits=50.0, inputs=inputs)  # fmt: skip
        assert float(t.period) == pytest.approx(period * cycle, rel=1e-6), (switch, inputs)
        assert float(t.first) == pytest.approx(first * cycle, rel=1e-6), (switch, inputs)


def test_macro_write_mechanisms_area_by_hand():
    """Each of the paper design's 192 PEs gains a second set of 256 cells (ping-pong) and a write port of
    min(256, 4096 / 4) - 16 = 240 bits beyond one row (bus width); a 36-PE tile on a 512-bit bus gets a
    port narrower than a row, so nothing is added."""
    tech = default_technology().replace(macro_write_overlap=0, bus_width_write=0)
    cell, port_bit = float(tech.sram_area_per_bit_mm2), float(tech.bus_area_per_bit_mm2)
    for design, added in (
        (EDGECIM_ALPHA05_DESIGN, 192 * (256 * cell + 240 * port_bit)),
        (dict(EDGECIM_ALPHA05_DESIGN, pes_per_tile=36, bus_intra_tile=512), 1728 * 256 * cell),
    ):
        hw = HardwareConfig.from_dict(design)
        off = float(chip_area(hw, tech).total)
        on = float(chip_area(hw, tech.replace(macro_write_overlap=1, bus_width_write=1)).total)
        assert on - off == pytest.approx(added, rel=1e-4)


def test_m1_serialises_load_and_compute():
    hw = HardwareConfig.from_dict(dict(EDGECIM_ALPHA05_DESIGN, m=1))
    tech = default_technology()
    t = stage_timing(hw, tech, EXACT, stage_bits=1024.0, streaming_clusters=1.0, stage_cycles=8.0, drain_cycles=0.0)
    assert float(t.period) == pytest.approx(float(t.first), rel=1e-6)  # period = load + compute


# --- Physical limits and invariants over random designs -----------------------------------------


@st.composite
def model_and_design(draw):
    return MODELS[draw(st.sampled_from(sorted(MODELS)))], draw(designs), draw(st.sampled_from(["int4", "int8"]))


@functools.cache
def batch_eval(spec: ModelSpec):
    wl = Workload()
    return jax.jit(jax.vmap(lambda hw, prec, tech: evaluate(hw, prec, spec, wl, tech, with_prefill=False),
                            in_axes=(0, None, None)))  # fmt: skip


def random_designs(rng, n):
    return {name: rng.choice(PAPER_SPACE.values[name], n).astype(float) for name in FIELDS}


@pytest.mark.parametrize("model_id", ["llama3.2-1b", "qwen2.5-0.5b", "phi3.5-mini"])
def test_invariants_on_random_designs(model_id):
    rng = np.random.default_rng(0)
    spec = MODELS[model_id]
    tech = default_technology()
    values = random_designs(rng, 512)
    hw = HardwareConfig(**{k: jnp.asarray(v) for k, v in values.items()})
    run = batch_eval(spec)
    int4 = run(hw, preset("int4", 1), tech)
    int8 = run(hw, preset("int8", 1), tech)
    lat4, lat8 = np.asarray(int4.latency_s), np.asarray(int8.latency_s)
    assert np.all(lat4 <= lat8 * (1 + 1e-6)), "INT4 slower than INT8 on the same design"
    faster_dram = run(hw, preset("int4", 1), tech.replace(dram_peak_bytes_per_s=2 * 204.8e9))
    assert np.all(np.asarray(faster_dram.latency_s) <= lat4 * (1 + 1e-6)), "more bandwidth made it slower"
    for costs in (int4, int8):
        bits = np.asarray(costs.decode.dram_bits)
        roofline = np.array([roofline_tokens_per_s(b, tech, 128) for b in bits])
        assert np.all(np.asarray(costs.tokens_per_s) <= roofline), "faster than the DRAM roofline"
        dram_energy = bits * float(tech.dram_energy_per_bit)
        assert np.all(np.asarray(costs.energy_j) >= dram_energy)
    # Streamed weight bits are at least the parameter count (an independent count) times the bits.
    weights = layer_linear_weights(spec) * spec.n_layers
    assert np.all(np.asarray(int4.decode.dram_bits) >= 128 * weights * 4)
    # Wider buses and more tile sets never slow a design down.
    for field in ("bus_inter_cluster", "bus_inter_tile", "bus_intra_tile", "m"):
        bigger = dict(values)
        bigger[field] = values[field] * 2
        more = run(HardwareConfig(**{k: jnp.asarray(v) for k, v in bigger.items()}), preset("int4", 1), tech)
        assert np.all(np.asarray(more.latency_s) <= lat4 * (1 + 1e-6)), field
    # Each overlap mechanism only hides time: switching it off never makes a design faster; a cost
    # mechanism (COST_SWITCHES) only adds time: switching it on never makes a design faster. Both states
    # are run for every switch, whatever the shipped value.
    for switch in SWITCHES:
        on, off = (np.asarray(run(hw, preset("int4", 1), tech.replace(**{switch: v})).latency_s) for v in (1, 0))
        slower, faster = (on, off) if switch in COST_SWITCHES else (off, on)
        assert np.all(slower >= faster * (1 - 1e-6)), switch


def test_calibration_points_hold_for_shipped_constants():
    """The shipped (fitted) constants reproduce docs/edgecim.md's calibration points (docs/model.md) at the
    designs put beside the paper (the knee of the alpha = 1 sweep)."""
    from cimjax.report.calibration import selected_design

    tech = default_technology()
    index, _ = selected_design("llama3.2-1b", "int4", tech, Workload())
    best = evaluate_design("llama3.2-1b", "int4", PAPER_SPACE.decode(index).to_dict())
    assert best["tokens_per_s"] == pytest.approx(400.0, rel=0.01)
    assert best["tokens_per_j"] == pytest.approx(181.0, rel=0.01)
    assert best["tokens_per_s"] <= best["roofline_tokens_per_s"]
    paper = evaluate_design("llama3.2-3b", "int8", EDGECIM_ALPHA05_DESIGN)
    assert paper["area_mm2"] == pytest.approx(11.83, rel=0.01)


def test_figure_of_merit_by_hand():
    report = evaluate_design("llama3.2-1b", "int8", EDGECIM_ALPHA05_DESIGN)
    tech = default_technology()
    macs_per_cycle = 192 * 16 * 2 / 8  # 192 active macros, 16 rows x 2 INT8 weights, 8 input-bit cycles
    tops = 2 * macs_per_cycle * 400e6 / 1e12
    power = 192 * float(tech.pe_cycle_energy) * 400e6 + float(tech.leakage_w_per_mm2) * report["area_mm2"]
    fom = report["figure_of_merit"]
    assert fom["peak_tops"] == pytest.approx(tops)
    assert fom["peak_tops_per_w"] == pytest.approx(tops / power, rel=1e-6)
    assert math.isclose(fom["peak_tops_per_w_per_mm2"], tops / power / report["area_mm2"], rel_tol=1e-6)
