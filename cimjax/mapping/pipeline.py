"""The active-tile pipeline: latency of a phase of stages that stream weights from DRAM into tiles.

A cluster holds ``m`` sets of ``T_A`` tiles. One set computes while the others are loaded with the
next partition, so transfer overlaps compute. A *stage* moves one partition (``stage_bits`` per
cluster) from DRAM through the three buses into the macros of a set, then computes on it for
``stage_cycles`` cycles. The equations (docs/model.md, "Pipeline"):

    t_inter_tile = T_A * ceil((s / T_A) / W_it) / f if tile_transfers else s / (W_it f)
                   + x p_tile / (W_it f) if partial_sums    # every input's tile partial sums (own: one input's)
    t_inter_cluster = n_c (s + x p_chip) / (W_ic f)      # p_chip: a cluster's partial sums (own: one input's)
    shared = max(t_dram, t_inter_cluster, t_inter_tile)      # links every set of a cluster shares
             + stage_control_cycles / f if stage_control    # the controller's per-stage round trip
    t_row_write = 1 cycle if bus_width_write else Macro.write_cycles  # the macro's write port
    load   = max(shared, t_intra_tile, t_row_write)            # one set's whole load
    t_burst = (s + p_chip) / (W_ic f) if inter_cluster_bursts else t_inter_cluster  # a set's wait on it
    local  = max(t_burst, t_inter_tile, t_intra_tile, t_row_write)  # from the global buffer on
    cycle  = local if global_buffer_overlap else load          # what a set's load blocks it for
    busy   = max(cycle, compute) if macro_write_overlap else cycle + compute  # a set's time per stage
    period = max(shared, compute, busy / m)                    # steady state, round-robin over m sets
    first  = load + compute + drain                            # fill and drain of the pipeline
    T(n)   = first + (n - 1) * period

With ``global_buffer_overlap`` the double-buffered global buffer takes the next stage from DRAM while
the current one moves on chip, so DRAM time bounds the period (through ``shared``) but no longer adds
to a tile set's own load-then-compute cycle. With ``inter_cluster_bursts`` the shared inter-cluster bus
serves the streaming clusters one at a time at full width, so a set waits only for its own burst; the
bus's total occupancy still bounds the period through ``shared``. With ``macro_write_overlap`` each
macro's second (ping-pong) weight set is written while it computes on the first, so a set's load and
compute overlap even with ``m = 1``. With ``bus_width_write`` a macro takes its share of the intra-tile
bus per cycle (up to the whole macro), so its write is bounded by ``t_intra_tile`` (already in ``load``)
and one cycle. With ``stage_control`` each stage's transfer waits for the acknowledgement of the
previous one (a fixed round trip per stage on the shared path). With ``tile_transfers`` the inter-tile
bus delivers to one tile per cycle. With ``partial_sums`` the tiles' partial sums share the inter-tile bus
and, for the chip-level tree, the clusters' the inter-cluster bus. docs/model.md, section 13, gives each
mechanism's reasoning and source.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.technology import Technology
from cimjax.ops import Ops


class StageTiming(NamedTuple):
    """A phase of n stages lasts ``first + (n - 1) * period`` seconds."""

    first: object
    period: object

    def latency(self, n_stages):
        return self.first + (n_stages - 1.0) * self.period


def dram_bits_per_s(tech: Technology):
    return tech.dram_peak_bytes_per_s * 8.0 * tech.dram_efficiency


def _psum_time(tech: Technology, psum_bits, bits_per_s, scale=1.0):
    """Seconds of ``scale * psum_bits`` on a bus of ``bits_per_s`` with ``partial_sums`` on, gradient stopped;
    0.0 when there are none (not traced: a phase without partial sums is traced as before the mechanism)."""
    if isinstance(psum_bits, float) and psum_bits == 0.0:
        return 0.0
    return jax.lax.stop_gradient(tech.partial_sums * scale * psum_bits / bits_per_s)


def stage_timing(
    hw: HardwareConfig,
    tech: Technology,
    ops: Ops,
    *,
    stage_bits,
    streaming_clusters,
    stage_cycles,
    drain_cycles,
    tile_psum_bits=0.0,
    chip_psum_bits=0.0,
    inputs=1,
) -> StageTiming:
    """Timing of one pipeline stage.

    Args:
      stage_bits: bits loaded into one cluster per stage.
      streaming_clusters: clusters loading at the same time (they share DRAM and the inter-cluster bus).
      stage_cycles: compute cycles of one stage (bit-serial input bits times inputs).
      drain_cycles: reduction latency after the last stage (adder-tree levels, accumulation).
      tile_psum_bits, chip_psum_bits: partial-sum bits one cluster's stage sends per input to the cluster
        tree (inter-tile bus) and to the chip tree (inter-cluster bus), counted with ``partial_sums``.
      inputs: inputs per stage; the shared links carry every input's partial sums, a set waits for its last.
    """
    f = tech.clock_hz
    t_dram = streaming_clusters * stage_bits / dram_bits_per_s(tech)
    t_inter_cluster = streaming_clusters * stage_bits / (hw.bus_inter_cluster * f)
    t_inter_tile = stage_bits / (hw.bus_inter_tile * f)
    tiles = hw.active_tiles
    per_tile = tiles * ops.ceil_div(stage_bits / tiles, hw.bus_inter_tile) / f  # one tile per bus cycle
    # Written as an increment: switched off, the values and gradients (hence gradient search's steps) are
    # bit for bit those without the mechanism; a convex blend of the two times was not (golden check).
    t_inter_tile = t_inter_tile + tech.tile_transfers * (per_tile - t_inter_tile)
    # Partial sums: increments with their gradient stopped, so the relaxed model's gradient sees their
    # time but not how it depends on the design. A traced term, even one that is zero when switched off,
    # adds zero contributions to the leaves' gradients, which XLA then sums in another order: gradients
    # (and gradient search's steps) were not bit for bit those without the mechanism (measured); these are.
    psum_tile = _psum_time(tech, tile_psum_bits, hw.bus_inter_tile * f)
    psum_burst = _psum_time(tech, chip_psum_bits, hw.bus_inter_cluster * f, tech.inter_cluster_bursts)
    psum_round = _psum_time(tech, chip_psum_bits, hw.bus_inter_cluster * f / streaming_clusters)
    t_inter_tile_own, t_ic_own = t_inter_tile + psum_tile, t_inter_cluster + psum_round  # one input's
    t_inter_tile, t_inter_cluster = t_inter_tile + inputs * psum_tile, t_inter_cluster + inputs * psum_round
    t_intra_tile = stage_bits / hw.active_tiles / (hw.bus_intra_tile * f)
    t_row_write = (tech.bus_width_write + (1.0 - tech.bus_width_write) * tech.macro.write_cycles) / f
    control = tech.stage_control * tech.stage_control_cycles / f
    shared = ops.maximum(ops.maximum(t_dram, t_inter_cluster), t_inter_tile) + control
    load = ops.maximum(ops.maximum(shared, t_intra_tile), t_row_write)
    bursts = tech.inter_cluster_bursts
    t_burst = bursts * stage_bits / (hw.bus_inter_cluster * f) + (1.0 - bursts) * t_ic_own + psum_burst
    local = ops.maximum(ops.maximum(t_burst, t_inter_tile_own), ops.maximum(t_intra_tile, t_row_write))
    cycle = tech.global_buffer_overlap * local + (1.0 - tech.global_buffer_overlap) * load
    compute = stage_cycles / f
    overlap = tech.macro_write_overlap
    busy = overlap * ops.maximum(cycle, compute) + (1.0 - overlap) * (cycle + compute)
    period = ops.maximum(ops.maximum(shared, compute), busy / hw.m)
    return StageTiming(first=load + compute + drain_cycles / f, period=period)
