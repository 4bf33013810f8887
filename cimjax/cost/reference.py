"""A plain-Python scalar reference of the exact cost model: loops and ``math``, no JAX.

Written to be read next to docs/model.md, and to be the independent oracle the JAX model is tested
against (and the baseline its speed is measured against). It walks every layer, every decode step,
every K/V block and every round explicitly where the JAX model uses closed-form sums.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from cimjax.hardware.macro import EDGECIM_MACRO, Macro
from cimjax.hardware.technology import FU_OPS_PER_ELEMENT
from cimjax.workload.operators import Workload, aux_elements, aux_parameters, linear_shapes
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS
from cimjax.workload.spec import ModelSpec

HP = 16  # bits of norm gains, biases, embeddings and matmul outputs


def _log2_ceil(n: float) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def _ceil_div(a: float, b: float) -> int:
    """ceil(a / b), corrected where the float quotient rounds across an integer (as ``cimjax.ops.EXACT``)."""
    q = math.ceil(a / b)
    return q - 1 if (q - 1) * b >= a else q


def _per_row(bits: int, mc: Macro) -> int:
    """Weights per macro row: a b-bit weight takes ceil(b / bits per cell) adjacent columns."""
    return mc.columns // math.ceil(bits / mc.bits_per_cell)


def _loads(d_in: int, d_out: int, bits: int, mc: Macro) -> int:
    """Macros for a d_in x d_out matrix: ``rows`` inputs x weights-per-row outputs each (16 x floor(16/b))."""
    return math.ceil(d_in / mc.rows) * math.ceil(d_out / _per_row(bits, mc))


def _phase(n, stage_bits, streaming, cycles, drain, hw, t, mc: Macro, psums=(0.0, 0.0)):
    """Seconds for n pipeline stages: see mapping/pipeline.py's equations. ``psums``: the partial-sum bits a
    cluster's stage sends to the cluster tree and to the chip tree (one input: decode)."""
    f = t["clock_hz"]
    dram = t["dram_peak_bytes_per_s"] * 8 * t["dram_efficiency"]
    tiles = hw["t_v_act"] * hw["t_h_act"]
    t_ic = streaming * stage_bits / (hw["bus_inter_cluster"] * f)
    t_it = stage_bits / (hw["bus_inter_tile"] * f)
    if t["tile_transfers"]:  # one tile's share per inter-tile bus cycle
        t_it = tiles * _ceil_div(stage_bits / tiles, hw["bus_inter_tile"]) / f
    t_own = stage_bits / (hw["bus_inter_cluster"] * f)
    if t["partial_sums"]:  # they share the inter-tile bus (tile sums) and the inter-cluster bus (cluster sums)
        t_it += psums[0] / (hw["bus_inter_tile"] * f)
        t_ic += streaming * psums[1] / (hw["bus_inter_cluster"] * f)
        t_own += psums[1] / (hw["bus_inter_cluster"] * f)
    t_pe = stage_bits / tiles / (hw["bus_intra_tile"] * f)
    shared = max(streaming * stage_bits / dram, t_ic, t_it)
    if t["stage_control"]:  # the controller's round trip before each stage's transfer
        shared += t["stage_control_cycles"] / f
    # The macro's write port: one row per write cycle, or (bus_width_write) its share of the tile bus.
    t_write = (1 if t["bus_width_write"] else math.ceil(mc.rows / mc.rows_written_per_cycle)) / f
    load = max(shared, t_pe, t_write)
    # With the double-buffered global buffer, DRAM fills its other half meanwhile; with bursts a set
    # waits only for its own cluster's turn on the shared inter-cluster bus.
    t_own = t_own if t["inter_cluster_bursts"] else t_ic
    load_cycle = max(t_own, t_it, t_pe, t_write) if t["global_buffer_overlap"] else load
    compute = cycles / f
    # A ping-pong macro (macro_write_overlap) is written while it computes on its other weight set.
    busy = max(load_cycle, compute) if t["macro_write_overlap"] else load_cycle + compute
    period = max(shared, compute, busy / hw["m"])
    first = load + compute + drain / f
    return first + (n - 1) * period


def _area(hw: dict, t: dict, pe_area: float, mc: Macro) -> tuple[float, tuple]:
    """Chip area (mm^2) and the mean wire lengths of the intra-tile, inter-tile and inter-cluster buses (mm)."""
    C, T_A = hw["c_v"] * hw["c_h"], hw["t_v_act"] * hw["t_h_act"]
    stored = mc.rows * mc.columns * mc.bits_per_cell
    if t["macro_write_overlap"]:  # the second weight set's cells
        pe_area += stored * t["sram_area_per_bit_mm2"]
    if t["bus_width_write"]:  # write-port bits beyond one row: a bus driver and receiver each
        port = min(stored, hw["bus_intra_tile"] / hw["pes_per_tile"])
        pe_area += max(port - mc.columns * mc.bits_per_cell, 0) * t["bus_area_per_bit_mm2"]
    tile = hw["pes_per_tile"] * pe_area
    cbuf = t["cluster_buffer_bits"] * t["sram_area_per_bit_mm2"]
    cluster = hw["m"] * T_A * tile + cbuf + t["fu_area_mm2"]
    global_bits = 2 * C * T_A * hw["pes_per_tile"] * stored
    core = C * cluster + global_bits * t["sram_area_per_bit_mm2"]
    buses = t["bus_area_per_bit_mm2"] * (
        C * hw["m"] * T_A * hw["bus_intra_tile"] + C * hw["bus_inter_tile"] + hw["bus_inter_cluster"]
    )
    return core + buses, (0.5 * math.sqrt(tile), 0.5 * math.sqrt(cluster), 0.5 * math.sqrt(core))


ACTIVITIES = ("dram_bits", "streamed_bits", "pe_cycles", "adds", "moved_bits", "fu_ops", "tile_psum_bits",
              "chip_psum_bits")  # fmt: skip


def _layer(wb: dict, ab: dict, kvb: int, streamed: dict, hw: dict, spec: ModelSpec, wl: Workload, t: dict, mc: Macro):
    """Seconds one layer adds over every decode step, and its activity counts (``ACTIVITIES``).

    Args:
      wb, ab, kvb: this layer's weight bits (by linear operator), activation bits (by matmul) and KV bits.
      streamed: bits per weight fetched from DRAM (weight bits plus group-scale overhead).
    """
    C = hw["c_v"] * hw["c_h"]
    T_A = hw["t_v_act"] * hw["t_h_act"]
    P2 = hw["pes_per_tile"]
    N_A = T_A * P2
    f = t["clock_hz"]
    dram_rate = t["dram_peak_bytes_per_s"] * 8 * t["dram_efficiency"]
    block = wl.attention_block
    shapes = linear_shapes(spec)
    grp, hd, n_kv = spec.group_size, spec.head_dim, spec.n_kv_heads
    cluster_drain = _log2_ceil(P2) + _log2_ceil(T_A) + 1
    chip_drain = cluster_drain + _log2_ceil(C)
    rounds = math.ceil(n_kv / C)
    streaming_per_round = [C] * (rounds - 1) + [n_kv - (rounds - 1) * C]

    cyc = {n: math.ceil(bits / mc.input_bits_per_cycle) for n, bits in ab.items()}  # macro cycles per input

    def psum(n, loads, summed):  # bits of partial sums, one per output of a column group per `summed` macros
        if not t["partial_sums"]:
            return 0.0
        return loads / summed * _per_row(wb[n], mc) * (wb[n] + ab[n] + _log2_ceil(mc.rows * summed))

    group_shapes = {"q": (spec.hidden, grp * hd), "k": (spec.hidden, hd), "v": (spec.hidden, hd)}
    q_stages = {n: math.ceil(_loads(*group_shapes[n], wb[n], mc) / N_A) for n in group_shapes}
    n_qkv = sum(q_stages.values())
    qkv_bits = sum(group_shapes[n][0] * group_shapes[n][1] * streamed[n] for n in group_shapes)
    qkv_cycles = sum(q_stages[n] * cyc[n] for n in q_stages) / n_qkv
    qkv_psums = (sum(psum(n, _loads(*group_shapes[n], wb[n], mc), P2) for n in group_shapes) / n_qkv, 0.0)

    per_row = _per_row(kvb, mc)
    loads_k = math.ceil(hd / mc.rows) * math.ceil(block / per_row)
    loads_v = math.ceil(block / mc.rows) * math.ceil(hd / per_row)
    s_blk = max(math.ceil(2 * loads_k / N_A), math.ceil(2 * loads_v / N_A))
    att_cycles = max(grp * max(cyc["qk"], cyc["pv"]), grp * block / t["fu_lanes"] / s_blk)

    def all_clusters(names, drain, chip=False):
        loads = {n: _loads(*shapes[n], wb[n], mc) for n in names}
        stages = math.ceil(sum(loads.values()) / (C * N_A))
        bits = sum(shapes[n][0] * shapes[n][1] * streamed[n] for n in names)
        cycles = sum(loads[n] * cyc[n] for n in names) / sum(loads.values())
        tile = sum(psum(n, loads[n], P2) for n in names) / (C * stages)
        cluster = sum(psum(n, loads[n], N_A) for n in names) / (C * stages) if chip else 0.0
        return _phase(stages, bits / (C * stages), C, cycles, drain, hw, t, mc, (tile, cluster))

    fu_elements = sum(n for k, n in aux_elements(spec).items() if k != "softmax_per_key")
    latency = 0.0
    work = dict.fromkeys(ACTIVITIES, 0.0)
    for ctx in wl.context_lengths():
        n_blocks = math.ceil(ctx / block)
        stream = 0.0  # this layer's operators, one after another
        for streaming in streaming_per_round:
            stream += _phase(n_qkv, qkv_bits / n_qkv, streaming, qkv_cycles, cluster_drain, hw, t, mc, qkv_psums)
            att_bits = 2 * block * hd * kvb / s_blk
            stream += _phase(n_blocks * s_blk, att_bits, streaming, att_cycles, cluster_drain, hw, t, mc)
        stream += all_clusters(("o",), chip_drain, chip=True)
        stream += all_clusters(("gate", "up"), cluster_drain) + all_clusters(("down",), chip_drain, chip=True)
        fu = fu_elements / (t["fu_lanes"] * C * f)
        latency += stream + (max(fu - stream, 0.0) if t["fu_overlap"] else fu)
        step_kv_write = 2 * spec.kv_dim * kvb
        step_aux = aux_parameters(spec) * HP
        latency += (step_kv_write + step_aux) / dram_rate

        # Traffic and work of this step.
        step_weights = sum(d_in * d_out * streamed[n] for n, (d_in, d_out) in shapes.items())
        step_kv_read = ctx * 2 * spec.kv_dim * kvb
        work["dram_bits"] += step_weights + step_kv_read + step_kv_write + step_aux
        work["streamed_bits"] += step_weights + step_kv_read
        for n, (d_in, d_out) in shapes.items():
            in_group = n in group_shapes
            loads = n_kv * _loads(*group_shapes[n], wb[n], mc) if in_group else _loads(d_in, d_out, wb[n], mc)
            work["pe_cycles"] += loads * cyc[n]
            work["tile_psum_bits"] += psum(n, loads, P2)
            work["chip_psum_bits"] += psum(n, loads, N_A) if n in ("o", "down") else 0.0
            work["adds"] += (math.ceil(d_in / mc.rows) - 1) * d_out
            work["moved_bits"] += d_in * ab[n] * C + d_out * HP
        work["pe_cycles"] += n_kv * grp * n_blocks * (loads_k * cyc["qk"] + loads_v * cyc["pv"])
        work["adds"] += spec.n_heads * (
            (math.ceil(hd / mc.rows) - 1) * ctx + hd * (math.ceil(block / mc.rows) * n_blocks - 1)
        )
        work["moved_bits"] += spec.q_dim * (ab["qk"] + HP) + spec.n_heads * ctx * ab["pv"]
        for name, n in aux_elements(spec).items():
            count = n * ctx if name == "softmax_per_key" else n
            work["fu_ops"] += count * FU_OPS_PER_ELEMENT[name]
    return latency, work


def reference_costs(
    hw: dict,
    w: list,
    a: list,
    kv: list,
    spec: ModelSpec,
    wl: Workload,
    t: dict,
    overhead: list | None = None,
    macro: Macro = EDGECIM_MACRO,
) -> dict:
    """Decode latency (s), energy (J) and area (mm^2) of one design.

    Args:
      hw: hardware fields (see HardwareConfig).
      w, a, kv: per-layer weight bits [7], activation bits [9] and KV bits (ints).
      overhead: per-layer group-scale bits per weight [7] streamed with the weights (default none).
      spec, wl: model shape and workload.
      t: technology values by name (``Technology.to_dict()``).
      macro: the PE macro; its energies and area are ``pe_cycle_energy``, ``pe_write_energy_per_bit``
        and ``pe_area_mm2`` of ``t`` unless it overrides them (``Macro.cycle_energy`` etc.).
    """
    values = SimpleNamespace(**t)  # what the macro's pricing methods read
    e_cycle, e_write = macro.cycle_energy(values), macro.write_energy_per_bit(values)
    area, (l_pe, l_it, l_ic) = _area(hw, t, macro.area_mm2(values), macro)

    latency = 0.0
    work = dict.fromkeys(ACTIVITIES, 0.0)
    for layer in range(spec.n_layers):
        wb = dict(zip(LINEAR_OPS, w[layer], strict=True))
        extra = overhead[layer] if overhead is not None else [0.0] * len(LINEAR_OPS)
        streamed = {n: wb[n] + extra[j] for j, n in enumerate(LINEAR_OPS)}  # bits per weight from DRAM
        ab = dict(zip(MATMUL_OPS, a[layer], strict=True))
        layer_latency, layer_work = _layer(wb, ab, kv[layer], streamed, hw, spec, wl, t, macro)
        latency += layer_latency
        work = {k: work[k] + layer_work[k] for k in ACTIVITIES}

    embed = wl.generate * spec.hidden * HP
    latency += embed / (t["dram_peak_bytes_per_s"] * 8 * t["dram_efficiency"])
    dram_bits = work["dram_bits"] + embed
    streamed_bits, moved_bits = work["streamed_bits"], work["moved_bits"]
    energy = {
        "dram": dram_bits * t["dram_energy_per_bit"],
        "compute": work["pe_cycles"] * e_cycle,
        "macro_write": streamed_bits * e_write,
        "reduction": work["adds"] * t["psum_bits"] * t["add_energy_per_bit"],
        "buffers": 2 * (dram_bits + moved_bits) * t["buffer_energy_per_bit"],
        "buses": (
            (streamed_bits + moved_bits) * (l_pe + l_it + l_ic)
            + work["tile_psum_bits"] * l_it
            + work["chip_psum_bits"] * l_ic
        )
        * t["wire_energy_per_bit_mm"],
        "functional_units": work["fu_ops"] * t["fu_energy_per_op"],
        "leakage": latency * t["leakage_w_per_mm2"] * area,
    }
    total = sum(energy.values())
    return {
        "latency_s": latency,
        "energy_j": total,
        "area_mm2": area,
        "tokens_per_s": wl.generate / latency,
        "tokens_per_j": wl.generate / total,
        "energy_by_component": energy,
        "dram_bits": dram_bits,
    }
