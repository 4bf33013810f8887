"""A plain-Python scalar reference of the exact cost model: loops and ``math``, no JAX.

Written to be read next to docs/model.md, and to be the independent oracle the JAX model is tested
against (and the baseline its speed is measured against). It walks every layer, every decode step,
every K/V block and every round explicitly where the JAX model uses closed-form sums.
"""

from __future__ import annotations

import math

from cimjax.hardware.technology import FU_OPS_PER_ELEMENT, MACRO_COLS, MACRO_ROWS
from cimjax.workload.operators import Workload, aux_elements, aux_parameters, linear_shapes
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS
from cimjax.workload.spec import ModelSpec

HP = 16  # bits of norm gains, biases, embeddings and matmul outputs


def _log2_ceil(n: float) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def _loads(d_in: int, d_out: int, bits: int) -> int:
    """16x16 macros for a d_in x d_out matrix: 16 inputs x floor(16/bits) outputs each."""
    return math.ceil(d_in / MACRO_ROWS) * math.ceil(d_out / (MACRO_COLS // bits))


def _phase(n, stage_bits, streaming, cycles, drain, hw, t):
    """Seconds for n pipeline stages, and (first, period): see mapping/pipeline.py's equations."""
    f = t["clock_hz"]
    dram = t["dram_peak_bytes_per_s"] * 8 * t["dram_efficiency"]
    tiles = hw["t_v_act"] * hw["t_h_act"]
    t_ic = streaming * stage_bits / (hw["bus_inter_cluster"] * f)
    t_it = stage_bits / (hw["bus_inter_tile"] * f)
    t_pe = stage_bits / tiles / (hw["bus_intra_tile"] * f)
    shared = max(streaming * stage_bits / dram, t_ic, t_it)
    load = max(shared, t_pe, MACRO_ROWS / f)
    # With the double-buffered global buffer, DRAM fills its other half meanwhile.
    load_cycle = max(t_ic, t_it, t_pe, MACRO_ROWS / f) if t["global_buffer_overlap"] else load
    compute = cycles / f
    period = max(shared, compute, (load_cycle + compute) / hw["m"])
    first = load + compute + drain / f
    return first + (n - 1) * period


def reference_costs(
    hw: dict, w: list, a: list, kv: list, spec: ModelSpec, wl: Workload, t: dict, overhead: list | None = None
) -> dict:
    """Decode latency (s), energy (J) and area (mm^2) of one design.

    Args:
      hw: hardware fields (see HardwareConfig).
      w, a, kv: per-layer weight bits [7], activation bits [9] and KV bits (ints).
      overhead: per-layer group-scale bits per weight [7] streamed with the weights (default none).
      spec, wl: model shape and workload.
      t: technology values by name (``Technology.to_dict()``).
    """
    C = hw["c_v"] * hw["c_h"]
    T_A = hw["t_v_act"] * hw["t_h_act"]
    P2 = hw["pes_per_tile"]
    N_A = T_A * P2
    f = t["clock_hz"]
    dram_rate = t["dram_peak_bytes_per_s"] * 8 * t["dram_efficiency"]
    G, block = wl.generate, wl.attention_block
    shapes = linear_shapes(spec)
    grp, hd, n_kv = spec.group_size, spec.head_dim, spec.n_kv_heads

    # Area and wire lengths.
    tile = P2 * t["pe_area_mm2"]
    cbuf = t["cluster_buffer_bits"] * t["sram_area_per_bit_mm2"]
    cluster = hw["m"] * T_A * tile + cbuf + t["fu_area_mm2"]
    core = C * cluster + 2 * C * N_A * MACRO_ROWS * MACRO_COLS * t["sram_area_per_bit_mm2"]
    buses = t["bus_area_per_bit_mm2"] * (
        C * hw["m"] * T_A * hw["bus_intra_tile"] + C * hw["bus_inter_tile"] + hw["bus_inter_cluster"]
    )
    area = core + buses
    wire = 0.5 * (math.sqrt(tile) + math.sqrt(cluster) + math.sqrt(core))

    cluster_drain = _log2_ceil(P2) + _log2_ceil(T_A) + 1
    chip_drain = cluster_drain + _log2_ceil(C)
    rounds = math.ceil(n_kv / C)
    streaming_per_round = [C] * (rounds - 1) + [n_kv - (rounds - 1) * C]

    latency = 0.0
    dram_bits = streamed_bits = pe_cycles = adds = moved_bits = fu_ops = 0.0
    for layer in range(spec.n_layers):
        wb = dict(zip(LINEAR_OPS, w[layer], strict=True))
        extra = overhead[layer] if overhead is not None else [0.0] * len(LINEAR_OPS)
        streamed = {n: wb[n] + extra[j] for j, n in enumerate(LINEAR_OPS)}  # bits per weight from DRAM
        ab = dict(zip(MATMUL_OPS, a[layer], strict=True))
        kvb = kv[layer]
        group_shapes = {"q": (spec.hidden, grp * hd), "k": (spec.hidden, hd), "v": (spec.hidden, hd)}
        q_stages = {n: math.ceil(_loads(*group_shapes[n], wb[n]) / N_A) for n in group_shapes}
        n_qkv = sum(q_stages.values())
        qkv_bits = sum(group_shapes[n][0] * group_shapes[n][1] * streamed[n] for n in group_shapes)
        qkv_cycles = sum(q_stages[n] * ab[n] for n in q_stages) / n_qkv

        per_row = MACRO_COLS // kvb
        loads_k = math.ceil(hd / MACRO_ROWS) * math.ceil(block / per_row)
        loads_v = math.ceil(block / MACRO_ROWS) * math.ceil(hd / per_row)
        s_blk = max(math.ceil(2 * loads_k / N_A), math.ceil(2 * loads_v / N_A))
        att_cycles = max(grp * max(ab["qk"], ab["pv"]), grp * block / t["fu_lanes"] / s_blk)

        def all_clusters(names, drain, wb=wb, ab=ab, streamed=streamed):
            loads = {n: _loads(*shapes[n], wb[n]) for n in names}
            stages = math.ceil(sum(loads.values()) / (C * N_A))
            bits = sum(shapes[n][0] * shapes[n][1] * streamed[n] for n in names)
            cycles = sum(loads[n] * ab[n] for n in names) / sum(loads.values())
            return _phase(stages, bits / (C * stages), C, cycles, drain, hw, t)

        fu_elements = sum(n for k, n in aux_elements(spec).items() if k != "softmax_per_key")
        for ctx in wl.context_lengths():
            n_blocks = math.ceil(ctx / block)
            stream = 0.0  # this layer's operators, one after another
            for streaming in streaming_per_round:
                stream += _phase(n_qkv, qkv_bits / n_qkv, streaming, qkv_cycles, cluster_drain, hw, t)
                stream += _phase(
                    n_blocks * s_blk,
                    2 * block * hd * kvb / s_blk,
                    streaming,
                    att_cycles,
                    cluster_drain,
                    hw,
                    t,
                )
            stream += all_clusters(("o",), chip_drain)
            stream += all_clusters(("gate", "up"), cluster_drain) + all_clusters(("down",), chip_drain)
            fu = fu_elements / (t["fu_lanes"] * C * f)
            latency += stream + (max(fu - stream, 0.0) if t["fu_overlap"] else fu)
            step_kv_write = 2 * spec.kv_dim * kvb
            step_aux = aux_parameters(spec) * HP
            latency += (step_kv_write + step_aux) / dram_rate

            # Traffic and work of this step and layer.
            step_weights = sum(d_in * d_out * streamed[n] for n, (d_in, d_out) in shapes.items())
            step_kv_read = ctx * 2 * spec.kv_dim * kvb
            dram_bits += step_weights + step_kv_read + step_kv_write + step_aux
            streamed_bits += step_weights + step_kv_read
            for n, (d_in, d_out) in shapes.items():
                loads = n_kv * _loads(*group_shapes[n], wb[n]) if n in group_shapes else _loads(d_in, d_out, wb[n])
                pe_cycles += loads * ab[n]
                adds += (math.ceil(d_in / MACRO_ROWS) - 1) * d_out
                moved_bits += d_in * ab[n] * C + d_out * HP
            pe_cycles += n_kv * grp * n_blocks * (loads_k * ab["qk"] + loads_v * ab["pv"])
            adds += spec.n_heads * (
                (math.ceil(hd / MACRO_ROWS) - 1) * ctx + hd * (math.ceil(block / MACRO_ROWS) * n_blocks - 1)
            )
            moved_bits += spec.q_dim * (ab["qk"] + HP) + spec.n_heads * ctx * ab["pv"]
            for name, n in aux_elements(spec).items():
                count = n * ctx if name == "softmax_per_key" else n
                fu_ops += count * FU_OPS_PER_ELEMENT[name]

    embed = G * spec.hidden * HP
    latency += embed / dram_rate
    dram_bits += embed
    energy = {
        "dram": dram_bits * t["dram_energy_per_bit"],
        "compute": pe_cycles * t["pe_cycle_energy"],
        "macro_write": streamed_bits * t["pe_write_energy_per_bit"],
        "reduction": adds * t["psum_bits"] * t["add_energy_per_bit"],
        "buffers": 2 * (dram_bits + moved_bits) * t["buffer_energy_per_bit"],
        "buses": (streamed_bits + moved_bits) * wire * t["wire_energy_per_bit_mm"],
        "functional_units": fu_ops * t["fu_energy_per_op"],
        "leakage": latency * t["leakage_w_per_mm2"] * area,
    }
    total = sum(energy.values())
    return {
        "latency_s": latency,
        "energy_j": total,
        "area_mm2": area,
        "tokens_per_s": G / latency,
        "tokens_per_j": G / total,
        "energy_by_component": energy,
        "dram_bits": dram_bits,
    }
