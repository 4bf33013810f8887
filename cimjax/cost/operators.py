"""The operators of one layer pass: each one's latency and its activities (what :mod:`.pricing` prices).

Every function takes a :class:`Phase` (the design, the bits by operator and the phase's counts) and
returns an :class:`OperatorCost`: seconds per layer and an :class:`Activity` row per layer (arrays over
the layer axis, or scalars standing for every layer). They are written once against an
:class:`~cimjax.ops.Ops` table, so the exact and the relaxed model share them. Equations: docs/model.md,
Sections 4-6. Per layer and pass the operators run in sequence (each is a pipeline phase, see
:mod:`cimjax.mapping.pipeline`):

* :func:`qkv`: one KV group per cluster (W_Q of its query heads, then W_K, W_V), rounds of C clusters;
* :func:`attention`: K and V blocks of ``attention_block`` tokens streamed per KV group, the cluster's
  active PEs split between K and V, query heads of the group reusing each block;
* :func:`o_proj`: W_O over all clusters (chip-level adder tree);
* :func:`ffn`: gate and up together over all clusters, then down over all clusters;
* :func:`functional_units`: norms, RoPE, activation, element-wise multiply, residuals, quantisers;
* :func:`dram_other`: the KV append, norm gains and biases (per layer); :func:`embedding`: the
  embedding rows (once per phase, priced under ``dram_other``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp

from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.macro import Macro
from cimjax.hardware.technology import FU_OPS_PER_ELEMENT, Technology
from cimjax.mapping.partition import pe_loads, reduction_adds, row_groups
from cimjax.mapping.pipeline import StageTiming, dram_bits_per_s, stage_timing
from cimjax.ops import Ops
from cimjax.workload.models import ModelSpec
from cimjax.workload.operators import PassCounts, aux_elements, aux_parameters, linear_shapes
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS, Precision

OPERATORS = ("qkv", "attention", "o_proj", "ffn", "functional_units", "dram_other")
HIGH_PRECISION_BITS = 16  # norm gains, biases, embeddings and partial outputs are kept at 16 bits


class Activity(NamedTuple):
    """What an operator does, in the units :func:`cimjax.cost.pricing.energy_matrix` prices."""

    dram_bits: object  # read from or written to DRAM (and through the global buffer)
    streamed_bits: object  # written into macros, across the three bus levels
    pe_cycles: object  # macro cycles (loads x input cycles x inputs)
    adds: object  # partial-sum additions of the reduction
    moved_bits: object  # activations through the cluster buffers and buses
    fu_ops: object  # functional-unit operations
    tile_psum_bits: object = 0.0  # partial sums from the tiles to the cluster adder tree (inter-tile bus)
    chip_psum_bits: object = 0.0  # partial sums from the clusters to the chip adder tree (inter-cluster bus)


ACTIVITIES = Activity._fields
NO_ACTIVITY = Activity(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class OperatorCost(NamedTuple):
    """An operator's seconds (per layer) and its activities (per layer).

    ``activity`` is a function, called by the pricing step once every operator's latency is traced: the
    cost model has always traced all latencies before any activity, and reverse-mode differentiation sums
    each input's gradient contributions in traced order, so this order keeps gradients (and the steps of
    gradient search and of the joint optimiser) bit for bit what they were.
    """

    latency: object
    activity: Callable[[], Activity]


class Phase(NamedTuple):
    """What every operator of one phase reads."""

    hw: HardwareConfig
    tech: Technology
    ops: Ops
    spec: ModelSpec
    counts: PassCounts
    macro: Macro
    block: int  # K/V block (tokens)
    clusters: object  # C
    active: object  # active PEs per cluster, N_A
    w: dict  # weight bits held in the macros, by LINEAR_OPS name
    streamed: dict  # bits streamed per weight: weights plus group-scale overhead
    a: dict  # input bits, by MATMUL_OPS name
    cycles: dict  # macro cycles per input (macro.input_cycles of a), by MATMUL_OPS name
    kv: object  # KV bits per layer
    cluster_drain: object  # cycles: tile and cluster adder trees, accumulate
    chip_drain: object  # cluster_drain plus the chip-level adder tree
    rounds: object  # rounds of KV groups over the clusters: ceil(H_kv / C)
    last_round: object  # KV groups (clusters streaming) in the last round


def _split(bits, names):
    return {name: bits[..., j] for j, name in enumerate(names)}


def phase(
    hw: HardwareConfig, prec: Precision, spec: ModelSpec, counts: PassCounts, block: int, tech: Technology, ops: Ops
) -> Phase:
    clusters, active = hw.clusters, hw.active_pes
    w = _split(prec.weight_bits, LINEAR_OPS)
    streamed = _split(prec.streamed_weight_bits, LINEAR_OPS)
    a = _split(prec.act_bits, MATMUL_OPS)
    cluster_drain = ops.log2_ceil(hw.pes_per_tile) + ops.log2_ceil(hw.active_tiles) + 1.0
    chip_drain = cluster_drain + ops.log2_ceil(clusters)
    rounds = ops.ceil_div(spec.n_kv_heads, clusters)
    return Phase(
        hw=hw,
        tech=tech,
        ops=ops,
        spec=spec,
        counts=counts,
        macro=tech.macro,
        block=block,
        clusters=clusters,
        active=active,
        w=w,
        streamed=streamed,
        a=a,
        cycles={n: tech.macro.input_cycles(bits, ops) for n, bits in a.items()},
        kv=prec.kv_bits,
        cluster_drain=cluster_drain,
        chip_drain=chip_drain,
        rounds=rounds,
        last_round=spec.n_kv_heads - (rounds - 1.0) * clusters,
    )


def _timing(p: Phase, stage_bits, streaming, stage_cycles, drain, psums=(0.0, 0.0)) -> StageTiming:
    """A phase's stage timing; ``psums``: the partial-sum bits per input a cluster's stage sends to the
    cluster tree and to the chip tree (:func:`_psum_bits`)."""
    return stage_timing(
        p.hw,
        p.tech,
        p.ops,
        stage_bits=stage_bits,
        streaming_clusters=streaming,
        stage_cycles=stage_cycles,
        drain_cycles=drain,
        tile_psum_bits=psums[0],
        chip_psum_bits=psums[1],
        inputs=float(p.counts.inputs),
    )


def _psum_bits(p: Phase, name: str, loads, summed):
    """Partial-sum bits per input of a matrix's ``loads`` macro loads, emitted once per ``summed`` macros
    (a tile: P^2, a cluster: N_A) holding row groups of one column group: one sum per output of the
    column group, ``w + a + ceil(log2(rows * summed))`` bits wide (docs/model.md, ``partial_sums``)."""
    w, a, macro, ops = p.w[name], p.a[name], p.macro, p.ops
    width = w + a + ops.log2_ceil(macro.rows * summed)
    return loads / summed * macro.weights_per_row(w, ops) * width


def _over_rounds(p: Phase, stage_bits, stage_cycles, total_of: Callable[[StageTiming], object], psums=(0.0, 0.0)):
    """Sum over the rounds of KV groups: (rounds-1) with every cluster streaming, one with the rest."""
    full = _timing(p, stage_bits, p.clusters, stage_cycles, p.cluster_drain, psums)
    last = _timing(p, stage_bits, p.last_round, stage_cycles, p.cluster_drain, psums)
    return (p.rounds - 1.0) * total_of(full) + total_of(last)


def _linear_activity(p: Phase, names, loads: dict, chip: tuple = ()) -> Activity:
    """Activities of linear operators ``names``, ``loads`` macro loads each (per pass and input); those in
    ``chip`` reduce through the chip-level tree.

    Activations go through the cluster buffers and buses: inputs broadcast to every cluster, outputs back.
    """
    shapes, counts = linear_shapes(p.spec), p.counts
    weight_bits = {n: float(counts.passes * shapes[n][0] * shapes[n][1]) * p.streamed[n] for n in names}
    pe_cycles = {n: float(counts.passes * counts.inputs) * loads[n] * p.cycles[n] for n in names}
    adds = {n: float(counts.tokens * reduction_adds(p.macro, *shapes[n])) for n in names}
    act_bits = {
        n: float(counts.tokens) * (shapes[n][0] * p.a[n] * p.clusters + shapes[n][1] * HIGH_PRECISION_BITS)
        for n in names
    }
    streamed = sum(weight_bits[n] for n in names)
    per_token = p.tech.partial_sums * float(counts.tokens)  # partial sums are counted with the switch on
    return Activity(
        dram_bits=streamed,
        streamed_bits=streamed,
        pe_cycles=sum(pe_cycles[n] for n in names),
        adds=sum(adds[n] for n in names),
        moved_bits=sum(act_bits[n] for n in names),
        fu_ops=0.0,
        tile_psum_bits=per_token * sum(_psum_bits(p, n, loads[n], p.hw.pes_per_tile) for n in names),
        chip_psum_bits=per_token * sum(_psum_bits(p, n, loads[n], p.active) for n in chip),
    )


def qkv(p: Phase) -> OperatorCost:
    """Q, K, V: one KV group per cluster (W_Q of its query heads, W_K, W_V), in R = ceil(H_kv / C) rounds.

    stages = sum_j ceil(loads_j / N_A)        cycles = inputs * sum_j stages_j * a_j / stages
    T      = passes * [(R - 1) * T_stage(C streaming) + T_stage(H_kv - (R - 1) C streaming)]
    """
    spec, ops = p.spec, p.ops
    group_shapes = {
        "q": (spec.hidden, spec.group_size * spec.head_dim),
        "k": (spec.hidden, spec.head_dim),
        "v": (spec.hidden, spec.head_dim),
    }
    group_loads = {n: pe_loads(p.macro, d_in, d_out, p.w[n], ops) for n, (d_in, d_out) in group_shapes.items()}
    group_stages = {n: ops.ceil_div(loads, p.active) for n, loads in group_loads.items()}
    stages = sum(group_stages.values())
    bits = sum(d_in * d_out * p.streamed[n] for n, (d_in, d_out) in group_shapes.items())
    cycles = p.counts.inputs * sum(group_stages[n] * p.cycles[n] for n in group_stages) / stages
    tile_psums = sum(_psum_bits(p, n, group_loads[n], p.hw.pes_per_tile) for n in group_shapes) / stages
    latency = p.counts.passes * _over_rounds(p, bits / stages, cycles, lambda t: t.latency(stages), (tile_psums, 0.0))

    def activity():
        full_loads = {n: spec.n_kv_heads * group_loads[n] for n in group_shapes}
        return _linear_activity(p, ("q", "k", "v"), full_loads)

    return OperatorCost(latency, activity)


def attention(p: Phase) -> OperatorCost:
    """K/V blocks of b tokens per KV group; K on one half of the active PEs, V on the other.

    stages per block = max(ceil(2 loads_K / N_A), ceil(2 loads_V / N_A))
    cycles = max(G_q * queries per block * max(a_qk, a_pv), softmax cycles per stage)
    T = per round: passes * (first - period) + stages over all blocks * period
    """
    spec, ops, counts, block, kv, macro, cycles = p.spec, p.ops, p.counts, p.block, p.kv, p.macro, p.cycles
    group, head_dim = spec.group_size, spec.head_dim
    per_row = macro.weights_per_row(kv, ops)
    loads_k = row_groups(macro, head_dim) * ops.ceil_div(block, per_row)
    loads_v = row_groups(macro, block) * ops.ceil_div(head_dim, per_row)
    block_stages = ops.maximum(ops.ceil_div(2.0 * loads_k, p.active), ops.ceil_div(2.0 * loads_v, p.active))
    queries_per_block = counts.query_blocks / counts.blocks
    softmax_cycles = group * block * queries_per_block / p.tech.fu_lanes
    stage_cycles = ops.maximum(
        group * queries_per_block * ops.maximum(cycles["qk"], cycles["pv"]), softmax_cycles / block_stages
    )
    stage_bits = 2.0 * block * head_dim * kv / block_stages
    stages_total = block_stages * counts.blocks  # summed over passes
    latency = _over_rounds(
        p, stage_bits, stage_cycles, lambda t: counts.passes * (t.first - t.period) + stages_total * t.period
    )

    def activity():
        kv_read_bits = float(counts.kv_read * 2 * spec.kv_dim) * kv
        rows_k, rows_v = row_groups(macro, head_dim), row_groups(macro, block)
        partial_sums = (rows_k - 1) * counts.scores + head_dim * (rows_v * counts.query_blocks - counts.tokens)
        return Activity(
            dram_bits=kv_read_bits,
            streamed_bits=kv_read_bits,
            pe_cycles=float(spec.n_kv_heads * group * counts.query_blocks)
            * (loads_k * cycles["qk"] + loads_v * cycles["pv"]),
            adds=float(spec.n_heads * partial_sums),
            moved_bits=float(counts.tokens * spec.q_dim) * (p.a["qk"] + HIGH_PRECISION_BITS)
            + float(spec.n_heads * counts.scores) * p.a["pv"],
            fu_ops=float(spec.n_heads * counts.scores * FU_OPS_PER_ELEMENT["softmax_per_key"]),
        )

    return OperatorCost(latency, activity)


def _all_clusters(p: Phase, names, drain, chip: bool = False) -> tuple[object, dict]:
    """Latency of linear operators ``names`` partitioned together over the PEs of all clusters, and their
    macro loads: ``stages = ceil(sum loads / (C N_A))``, ``cycles = inputs * sum_j loads_j a_j / sum loads``,
    ``T = passes * T_stage(C streaming)``; ``chip``: reduced through the chip-level tree."""
    shapes, ops, clusters = linear_shapes(p.spec), p.ops, p.clusters
    loads = {n: pe_loads(p.macro, shapes[n][0], shapes[n][1], p.w[n], ops) for n in names}
    n_loads = sum(loads[n] for n in names)
    stages = ops.ceil_div(n_loads, clusters * p.active)
    bits = sum(shapes[n][0] * shapes[n][1] * p.streamed[n] for n in names)
    cycles = p.counts.inputs * sum(loads[n] * p.cycles[n] for n in names) / n_loads
    cluster_stages = clusters * stages
    psums = (
        sum(_psum_bits(p, n, loads[n], p.hw.pes_per_tile) for n in names) / cluster_stages,
        sum(_psum_bits(p, n, loads[n], p.active) for n in names) / cluster_stages if chip else 0.0,
    )
    timing = _timing(p, bits / cluster_stages, clusters, cycles, drain, psums)
    return p.counts.passes * timing.latency(stages), loads


def o_proj(p: Phase) -> OperatorCost:
    """W_O over all clusters, then the chip-level adder tree."""
    latency, loads = _all_clusters(p, ("o",), p.chip_drain, chip=True)
    return OperatorCost(latency, lambda: _linear_activity(p, ("o",), loads, chip=("o",)))


def ffn(p: Phase) -> OperatorCost:
    """Gate and up together over all clusters, then down (after the activation and multiply)."""
    t_gate_up, loads = _all_clusters(p, ("gate", "up"), p.cluster_drain)
    t_down, loads_down = _all_clusters(p, ("down",), p.chip_drain, chip=True)
    names = ("gate", "up", "down")
    return OperatorCost(t_gate_up + t_down, lambda: _linear_activity(p, names, loads | loads_down, chip=("down",)))


def functional_units(p: Phase, t_streaming) -> OperatorCost:
    """Work spread over the C clusters' units, ``t_fu = passes * inputs * elements / (lanes * C * f)``; with
    ``fu_overlap`` it runs alongside the layer's weight streaming (``t_streaming`` seconds) and only
    ``max(t_fu, t_streaming) - t_streaming`` is exposed."""
    spec, counts, tech, ops = p.spec, p.counts, p.tech, p.ops
    aux = {name: n for name, n in aux_elements(spec).items() if name != "softmax_per_key"}  # softmax: attention
    t_fu = counts.passes * counts.inputs * sum(aux.values()) / (tech.fu_lanes * p.clusters * tech.clock_hz)
    t_fu = tech.fu_overlap * (ops.maximum(t_fu, t_streaming) - t_streaming) + (1.0 - tech.fu_overlap) * t_fu
    fu_ops = sum(float(counts.tokens * n * FU_OPS_PER_ELEMENT[name]) for name, n in aux.items())
    return OperatorCost(t_fu * jnp.ones_like(p.kv), lambda: NO_ACTIVITY._replace(fu_ops=fu_ops))


def dram_other(p: Phase, dram_rate) -> OperatorCost:
    """The KV append (``2 H_kv hd k`` bits per token) and the norm gains and biases (16 bits each) of a
    layer, through DRAM at ``dram_rate`` bits/s."""
    kv_write_bits = float(p.counts.kv_write * 2 * p.spec.kv_dim) * p.kv
    aux_bits = p.counts.passes * aux_parameters(p.spec) * HIGH_PRECISION_BITS
    latency = (kv_write_bits + aux_bits) / dram_rate
    return OperatorCost(latency, lambda: NO_ACTIVITY._replace(dram_bits=kv_write_bits + aux_bits))


def embedding(p: Phase, dram_rate) -> OperatorCost:
    """One embedding row per token from DRAM: once per phase, not per layer (priced under ``dram_other``)."""
    bits = float(p.counts.tokens * p.spec.hidden * HIGH_PRECISION_BITS)
    return OperatorCost(bits / dram_rate, lambda: NO_ACTIVITY._replace(dram_bits=bits))


def gathered(cost: OperatorCost, index) -> OperatorCost:
    """``cost`` computed on distinct layer rows, as per layer: each per-layer array (layer axis last) taken
    at ``index`` (the row of each layer); scalars stand for every layer as they are."""

    def take(x):
        return x[..., index] if jnp.ndim(x) else x

    return OperatorCost(take(cost.latency), lambda: Activity(*map(take, cost.activity())))


def phase_operators(p: Phase, distinct: dict | None = None) -> tuple[dict[str, OperatorCost], dict[str, OperatorCost]]:
    """Every operator's cost per layer, keyed by OPERATORS, and the once-per-phase costs (the embedding
    rows, under ``dram_other``). ``distinct``: by operator, a Phase at the operator's distinct layer rows
    and the row of each layer (:mod:`cimjax.cost.distinct`); the operator is computed on those rows and
    :func:`gathered` (``p`` then needs only the per-layer KV bits)."""

    def run(name, operator, *args):
        if distinct is None:
            return operator(p, *args)
        rows, index = distinct[name]
        return gathered(operator(rows, *args), index)

    t_qkv, t_attention, t_o, t_ffn = streaming = (
        run("qkv", qkv), run("attention", attention), run("o_proj", o_proj), run("ffn", ffn),
    )  # fmt: skip
    fu = functional_units(p, t_qkv.latency + t_attention.latency + t_o.latency + t_ffn.latency)
    dram_rate = dram_bits_per_s(p.tech)  # after the stage timings, which read the same DRAM constants
    per_layer = dict(zip(OPERATORS, (*streaming, fu, run("dram_other", dram_other, dram_rate)), strict=True))
    return per_layer, {"dram_other": embedding(p, dram_rate)}
