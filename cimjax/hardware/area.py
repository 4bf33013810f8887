"""Chip area and the region sizes that set bus wire lengths (docs/model.md, "Area").

    A_tile    = P^2 * (a_PE + a_ping_pong + a_port)      # a_PE: the macro's area (Macro.area_mm2)
    a_ping_pong = s * a_bit if macro_write_overlap else 0  # the second weight set's cells
    a_port    = a_bus_bit * max(min(s, W_intra / P^2) - r, 0) if bus_width_write else 0
                                                         # write-port bits beyond one row (r bits)
    A_cluster = m * T_A * A_tile + cluster_buffer_bits * a_bit + a_FU
    A_global  = 2 * C * T_A * P^2 * s * a_bit            # double-buffered chip-wide stage, s = a macro's
                                                         # stored bits (256 for EdgeCIM's 16x16)
    A_core    = C * A_cluster + A_global
    A_buses   = a_bus_bit * (C*m*T_A * W_intra + C * W_inter_tile + W_inter_cluster)
    A_chip    = A_core + A_buses

Wires of a bus span the region it serves; a bit travels on average half its side (a square region,
from its centre to a random point, is s/2 by Manhattan distance).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.technology import Technology


class Area(NamedTuple):
    """Areas in mm^2 and mean wire distances in mm."""

    pes: object
    buffers: object
    functional_units: object
    buses: object
    total: object
    wire_intra_tile_mm: object
    wire_inter_tile_mm: object
    wire_inter_cluster_mm: object


def global_buffer_bits(hw: HardwareConfig, tech: Technology):
    """Double buffer for one chip-wide stage: every active macro's stored bits, twice."""
    return 2.0 * hw.clusters * hw.active_pes * tech.macro.stored_bits


def pe_area(hw: HardwareConfig, tech: Technology):
    """One PE: the macro, and what the write mechanisms add to it (module docstring)."""
    macro = tech.macro
    stored = macro.stored_bits
    row_bits = macro.columns * macro.bits_per_cell
    port_bits = jnp.maximum(jnp.minimum(stored, hw.bus_intra_tile / hw.pes_per_tile) - row_bits, 0.0)
    return (
        macro.area_mm2(tech)
        + tech.macro_write_overlap * stored * tech.sram_area_per_bit_mm2
        + tech.bus_width_write * port_bits * tech.bus_area_per_bit_mm2
    )


def chip_area(hw: HardwareConfig, tech: Technology) -> Area:
    pe = pe_area(hw, tech)
    tile = hw.pes_per_tile * pe
    cluster_buffer = tech.cluster_buffer_bits * tech.sram_area_per_bit_mm2
    cluster = hw.m * hw.active_tiles * tile + cluster_buffer + tech.fu_area_mm2
    global_buffer = global_buffer_bits(hw, tech) * tech.sram_area_per_bit_mm2
    core = hw.clusters * cluster + global_buffer
    bus_bits = (
        hw.clusters * hw.m * hw.active_tiles * hw.bus_intra_tile
        + hw.clusters * hw.bus_inter_tile
        + hw.bus_inter_cluster
    )
    buses = bus_bits * tech.bus_area_per_bit_mm2
    return Area(
        pes=hw.total_pes * pe,
        buffers=hw.clusters * cluster_buffer + global_buffer,
        functional_units=hw.clusters * tech.fu_area_mm2,
        buses=buses,
        total=core + buses,
        wire_intra_tile_mm=0.5 * jnp.sqrt(tile),
        wire_inter_tile_mm=0.5 * jnp.sqrt(cluster),
        wire_inter_cluster_mm=0.5 * jnp.sqrt(core),
    )
