"""The end-to-end cost model: latency, energy and area of an SLM on an EdgeCIM-class accelerator.

One pure function, :func:`phase_costs`, prices a phase (decode or prefill) of a workload on a
hardware configuration, a precision assignment and a technology. It is written once against an
:class:`~cimjax.cost.ops.Ops` table: ``EXACT`` for the exact model, smooth ops for the relaxed one.
Hardware leaves may be scalars or batched by ``jax.vmap``. Equations: docs/model.md.

Per layer and pass, operators run in sequence (each is a pipeline phase, see
:mod:`cimjax.mapping.pipeline`):

* ``qkv``: one KV group per cluster (W_Q of its query heads, then W_K, W_V), rounds of C clusters;
* ``attention``: K and V blocks of ``attention_block`` tokens streamed per KV group, the cluster's
  active PEs split between K and V, query heads of the group reusing each block;
* ``o_proj``: W_O over all clusters (chip-level adder tree);
* ``ffn``: gate and up together over all clusters, then down over all clusters;
* ``functional_units``: norms, RoPE, activation, element-wise multiply, residuals, quantisers;
* ``dram_other``: the KV append, norm gains and biases, and the embedding row.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cimjax.cost.ops import EXACT, Ops
from cimjax.hardware.area import Area, chip_area
from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.technology import FU_OPS_PER_ELEMENT, Technology
from cimjax.mapping.partition import pe_loads, reduction_adds, row_groups, weights_per_row
from cimjax.mapping.pipeline import StageTiming, dram_bits_per_s, stage_timing
from cimjax.workload.operators import (
    PassCounts,
    Workload,
    aux_elements,
    aux_parameters,
    decode_counts,
    linear_shapes,
    prefill_counts,
)
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS, Precision
from cimjax.workload.spec import ModelSpec

OPERATORS = ("qkv", "attention", "o_proj", "ffn", "functional_units", "dram_other")
COMPONENTS = (
    "dram",
    "compute",
    "macro_write",
    "reduction",
    "buffers",
    "buses",
    "functional_units",
    "leakage",
)
ACTIVITIES = ("dram_bits", "streamed_bits", "pe_cycles", "adds", "moved_bits", "fu_ops")
HIGH_PRECISION_BITS = 16  # norm gains, biases, embeddings and partial outputs are kept at 16 bits


class PhaseCosts(NamedTuple):
    """Costs of one phase. ``latency``/``energy`` are dicts keyed by OPERATORS (and COMPONENTS)."""

    latency_s: jax.Array
    energy_j: jax.Array
    latency_by_operator: dict
    energy_by_component: dict
    energy_by_operator: dict
    dram_bits: jax.Array
    tokens: int


class Costs(NamedTuple):
    """Decode metrics (what the paper reports) plus prefill (beyond the paper) and area."""

    latency_s: jax.Array
    energy_j: jax.Array
    area_mm2: jax.Array
    tokens_per_s: jax.Array
    tokens_per_j: jax.Array
    decode: PhaseCosts
    prefill: PhaseCosts | None
    area: Area


def _layer_repeats(spec: ModelSpec, prec: Precision) -> int:
    """A precision with one layer row stands for every layer (uniform precision, evaluated once)."""
    rows = prec.kv_bits.shape[-1]
    if rows not in (1, spec.n_layers):
        raise ValueError(f"precision has {rows} layer rows; model {spec.id!r} has {spec.n_layers} layers (or give 1)")
    return spec.n_layers // rows


def _split(bits, names):
    return {name: bits[..., j] for j, name in enumerate(names)}


def phase_costs(
    hw: HardwareConfig,
    prec: Precision,
    spec: ModelSpec,
    counts: PassCounts,
    block: int,
    tech: Technology,
    area: Area,
    ops: Ops = EXACT,
) -> PhaseCosts:
    """Latency and energy of one phase; per-layer quantities are arrays over the layer axis."""
    f = tech.clock_hz
    clusters, active = hw.clusters, hw.active_pes
    w = _split(prec.weight_bits, LINEAR_OPS)
    streamed = _split(prec.streamed_weight_bits, LINEAR_OPS)  # weights plus group-scale overhead
    a = _split(prec.act_bits, MATMUL_OPS)
    kv = prec.kv_bits
    shapes = linear_shapes(spec)
    group, head_dim, n_kv = spec.group_size, spec.head_dim, spec.n_kv_heads
    passes, inputs = counts.passes, counts.inputs
    repeats = _layer_repeats(spec, prec)

    cluster_drain = ops.log2_ceil(hw.pes_per_tile) + ops.log2_ceil(hw.active_tiles) + 1.0
    chip_drain = cluster_drain + ops.log2_ceil(clusters)

    def timing(stage_bits, streaming, stage_cycles, drain) -> StageTiming:
        return stage_timing(
            hw,
            tech,
            ops,
            stage_bits=stage_bits,
            streaming_clusters=streaming,
            stage_cycles=stage_cycles,
            drain_cycles=drain,
        )

    # --- Q, K, V: one KV group per cluster, rounds of `clusters` groups.
    group_shapes = {
        "q": (spec.hidden, group * head_dim),
        "k": (spec.hidden, head_dim),
        "v": (spec.hidden, head_dim),
    }
    group_loads = {n: pe_loads(d_in, d_out, w[n], ops) for n, (d_in, d_out) in group_shapes.items()}
    group_stages = {n: ops.ceil_div(loads, active) for n, loads in group_loads.items()}
    qkv_stages = sum(group_stages.values())
    qkv_bits = sum(d_in * d_out * streamed[n] for n, (d_in, d_out) in group_shapes.items())
    qkv_cycles = inputs * sum(group_stages[n] * a[n] for n in group_stages) / qkv_stages
    rounds = ops.ceil_div(n_kv, clusters)
    last_round = n_kv - (rounds - 1.0) * clusters

    def over_rounds(stage_bits, stage_cycles, drain, total_of):
        """Sum over rounds: (rounds-1) with every cluster streaming, one with the rest."""
        full = timing(stage_bits, clusters, stage_cycles, drain)
        last = timing(stage_bits, last_round, stage_cycles, drain)
        return (rounds - 1.0) * total_of(full) + total_of(last)

    t_qkv = passes * over_rounds(qkv_bits / qkv_stages, qkv_cycles, cluster_drain, lambda t: t.latency(qkv_stages))

    # --- Attention: K/V blocks per KV group; K on one half of the active PEs, V on the other.
    per_row = weights_per_row(kv, ops)
    loads_k = row_groups(head_dim) * ops.ceil_div(block, per_row)
    loads_v = row_groups(block) * ops.ceil_div(head_dim, per_row)
    block_stages = ops.maximum(ops.ceil_div(2.0 * loads_k, active), ops.ceil_div(2.0 * loads_v, active))
    queries_per_block = counts.query_blocks / counts.blocks
    softmax_cycles = group * block * queries_per_block / tech.fu_lanes
    att_cycles = ops.maximum(group * queries_per_block * ops.maximum(a["qk"], a["pv"]), softmax_cycles / block_stages)
    att_stage_bits = 2.0 * block * head_dim * kv / block_stages
    att_stages_total = block_stages * counts.blocks  # summed over passes
    t_attention = over_rounds(
        att_stage_bits,
        att_cycles,
        cluster_drain,
        lambda t: passes * (t.first - t.period) + att_stages_total * t.period,
    )

    # --- W_O, gate+up, down: partitioned over the PEs of all clusters.
    loads = {n: pe_loads(shapes[n][0], shapes[n][1], w[n], ops) for n in ("o", "gate", "up", "down")}

    def all_clusters(names, drain):
        n_loads = sum(loads[n] for n in names)
        stages = ops.ceil_div(n_loads, clusters * active)
        bits = sum(shapes[n][0] * shapes[n][1] * streamed[n] for n in names)
        cycles = inputs * sum(loads[n] * a[n] for n in names) / n_loads
        return passes * timing(bits / (clusters * stages), clusters, cycles, drain).latency(stages)

    t_o = all_clusters(("o",), chip_drain)
    t_ffn = all_clusters(("gate", "up"), cluster_drain) + all_clusters(("down",), chip_drain)

    # --- Functional units: work spread over the C clusters' units; with fu_overlap it runs alongside the
    # layer's weight streaming and only what exceeds that streaming time is exposed.
    aux = aux_elements(spec)
    fu_elements = sum(n for name, n in aux.items() if name != "softmax_per_key")
    t_fu = passes * inputs * fu_elements / (tech.fu_lanes * clusters * f)
    t_streaming = t_qkv + t_attention + t_o + t_ffn
    t_fu = tech.fu_overlap * (ops.maximum(t_fu, t_streaming) - t_streaming) + (1.0 - tech.fu_overlap) * t_fu

    # --- Other DRAM traffic: KV append, norm gains and biases (per layer); embedding rows (per token).
    dram_rate = dram_bits_per_s(tech)
    kv_write_bits = float(counts.kv_write * 2 * spec.kv_dim) * kv
    aux_bits = passes * aux_parameters(spec) * HIGH_PRECISION_BITS
    t_dram_other = (kv_write_bits + aux_bits) / dram_rate
    embed_bits = float(counts.tokens * spec.hidden * HIGH_PRECISION_BITS)
    t_embed = embed_bits / dram_rate

    latency_by_op = {
        "qkv": t_qkv,
        "attention": t_attention,
        "o_proj": t_o,
        "ffn": t_ffn,
        "functional_units": t_fu * jnp.ones_like(kv),
        "dram_other": t_dram_other,
    }

    # --- Energy, per operator and component.
    weight_bits = {n: float(passes * shapes[n][0] * shapes[n][1]) * streamed[n] for n in LINEAR_OPS}
    kv_read_bits = float(counts.kv_read * 2 * spec.kv_dim) * kv
    full_loads = {
        "q": n_kv * group_loads["q"],
        "k": n_kv * group_loads["k"],
        "v": n_kv * group_loads["v"],
    } | loads
    pe_cycles = {n: float(passes * inputs) * full_loads[n] * a[n] for n in LINEAR_OPS}
    att_pe_cycles = float(n_kv * group * counts.query_blocks) * (loads_k * a["qk"] + loads_v * a["pv"])
    adds = {n: float(counts.tokens * reduction_adds(*shapes[n])) for n in LINEAR_OPS}
    att_adds = float(
        spec.n_heads
        * (
            (row_groups(head_dim) - 1) * counts.scores
            + head_dim * (row_groups(block) * counts.query_blocks - counts.tokens)
        )
    )
    # Activations through the cluster buffers and buses: inputs broadcast to every cluster, outputs back.
    act_bits = {
        n: float(counts.tokens) * (shapes[n][0] * a[n] * clusters + shapes[n][1] * HIGH_PRECISION_BITS)
        for n in LINEAR_OPS
    }
    att_act_bits = (
        float(counts.tokens * spec.q_dim) * (a["qk"] + HIGH_PRECISION_BITS)
        + float(spec.n_heads * counts.scores) * a["pv"]
    )
    fu_ops = {name: float(counts.tokens * n * FU_OPS_PER_ELEMENT[name]) for name, n in aux.items()}
    fu_ops["softmax_per_key"] = float(spec.n_heads * counts.scores * FU_OPS_PER_ELEMENT["softmax_per_key"])

    # Activities per operator group (rows of ACTIVITIES), summed over layers, then priced by
    # energy_matrix (activities -> components). Leakage is power x each operator's latency.
    fu_serial_ops = sum(v for k, v in fu_ops.items() if k != "softmax_per_key")
    linear_groups = {"qkv": ("q", "k", "v"), "o_proj": ("o",), "ffn": ("gate", "up", "down")}
    activities = {
        name: (
            sum(weight_bits[n] for n in names),
            sum(weight_bits[n] for n in names),
            sum(pe_cycles[n] for n in names),
            sum(adds[n] for n in names),
            sum(act_bits[n] for n in names),
            0.0,
        )
        for name, names in linear_groups.items()
    }
    activities["attention"] = (
        kv_read_bits,
        kv_read_bits,
        att_pe_cycles,
        att_adds,
        att_act_bits,
        fu_ops["softmax_per_key"],
    )
    activities["functional_units"] = (0.0, 0.0, 0.0, 0.0, 0.0, fu_serial_ops)
    activities["dram_other"] = (kv_write_bits + aux_bits, 0.0, 0.0, 0.0, 0.0, 0.0)

    def layer_sum(v):
        return jnp.sum(jnp.broadcast_to(v, kv.shape), axis=-1) * repeats

    per_op = jnp.stack([jnp.stack([layer_sum(x) for x in activities[op]]) for op in OPERATORS])
    embed_row = jnp.zeros((len(OPERATORS), len(ACTIVITIES))).at[OPERATORS.index("dram_other"), 0].set(1.0)
    per_op = per_op + embed_bits * embed_row  # a constant pattern: no scatter inside vmapped sweeps
    latency_by_op = {k: layer_sum(v) for k, v in latency_by_op.items()}
    latency_by_op["dram_other"] += t_embed
    latencies = jnp.stack([latency_by_op[op] for op in OPERATORS])
    leakage = latencies * tech.leakage_w_per_mm2 * area.total
    # Multiply-and-sum rather than a matmul: batched 6x6 @ 6x7 products are slow under vmap (and their
    # gradients slower), as measured by benchmarks/gradient_cost.py.
    dynamic = jnp.sum(per_op[:, :, None] * energy_matrix(tech, area)[None, :, :], axis=1)
    energies = jnp.concatenate([dynamic, leakage[:, None]], axis=1)  # [operator, component]
    return PhaseCosts(
        latency_s=jnp.sum(latencies),
        energy_j=jnp.sum(energies),
        latency_by_operator=latency_by_op,
        energy_by_component=dict(zip(COMPONENTS, jnp.sum(energies, axis=0), strict=True)),
        energy_by_operator=dict(zip(OPERATORS, jnp.sum(energies, axis=1), strict=True)),
        dram_bits=jnp.sum(per_op[:, ACTIVITIES.index("dram_bits")]),
        tokens=counts.tokens,
    )


def energy_matrix(tech: Technology, area: Area):
    """Joules per unit of each activity (rows, ACTIVITIES) for each component but leakage (columns).

    DRAM bits are also written into and read out of the global buffer; streamed bits are written
    into macros and cross the three bus levels; activations go through cluster buffers and buses.
    """
    wire = (area.wire_intra_tile_mm + area.wire_inter_tile_mm + area.wire_inter_cluster_mm) * (
        tech.wire_energy_per_bit_mm
    )
    buffer = 2.0 * tech.buffer_energy_per_bit
    zero = jnp.zeros_like(wire)
    rows = {  # dram, compute, macro_write, reduction, buffers, buses, functional_units
        "dram_bits": (tech.dram_energy_per_bit, zero, zero, zero, buffer, zero, zero),
        "streamed_bits": (zero, zero, tech.pe_write_energy_per_bit, zero, zero, wire, zero),
        "pe_cycles": (zero, tech.pe_cycle_energy, zero, zero, zero, zero, zero),
        "adds": (zero, zero, zero, tech.psum_bits * tech.add_energy_per_bit, zero, zero, zero),
        "moved_bits": (zero, zero, zero, zero, buffer, wire, zero),
        "fu_ops": (zero, zero, zero, zero, zero, zero, tech.fu_energy_per_op),
    }
    return jnp.stack([jnp.stack([jnp.asarray(x, wire.dtype) for x in rows[a]]) for a in ACTIVITIES])


def evaluate(
    hw: HardwareConfig,
    prec: Precision,
    spec: ModelSpec,
    workload: Workload,
    tech: Technology,
    ops: Ops = EXACT,
    with_prefill: bool = True,
) -> Costs:
    """Decode latency/energy (the paper's metrics), throughput, efficiency, area, and prefill costs.

    Pure and jittable (``spec``, ``workload``, ``ops`` and ``with_prefill`` static); vmappable over
    ``hw``. Inputs are not validated here: use :func:`cimjax.api.evaluate_design` at the boundary.
    """
    area = chip_area(hw, tech)
    decode = phase_costs(hw, prec, spec, decode_counts(workload), workload.attention_block, tech, area, ops)
    prefill = None
    if with_prefill and workload.prefill > 0:
        prefill = phase_costs(hw, prec, spec, prefill_counts(workload), workload.attention_block, tech, area, ops)
    return Costs(
        latency_s=decode.latency_s,
        energy_j=decode.energy_j,
        area_mm2=area.total,
        tokens_per_s=workload.generate / decode.latency_s,
        tokens_per_j=workload.generate / decode.energy_j,
        decode=decode,
        prefill=prefill,
        area=area,
    )
