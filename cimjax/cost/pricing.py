"""Pricing: operators' activities x energy per unit of activity, plus leakage (docs/model.md, Section 6).

    energy[op, component] = sum_a activity[op, a] * energy_matrix[a, component]     (dynamic components)
    energy[op, "leakage"] = latency[op] * leakage_w_per_mm2 * chip area

Activities and latencies come from :mod:`cimjax.cost.operators`, per layer, and are summed over layers
here; the result is a :class:`PhaseCosts`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cimjax.cost.operators import ACTIVITIES, NO_ACTIVITY, OPERATORS, OperatorCost
from cimjax.hardware.area import Area
from cimjax.hardware.technology import Technology

PSUM_ACTIVITIES = ("tile_psum_bits", "chip_psum_bits")
# Priced by one matrix; partial sums apart, so that with the mechanism off the matrix sum (and its
# gradients) stays the one it was before they existed, bit for bit (golden check).
MATRIX_ACTIVITIES = tuple(a for a in ACTIVITIES if a not in PSUM_ACTIVITIES)

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


class PhaseCosts(NamedTuple):
    """Costs of one phase. ``latency``/``energy`` are dicts keyed by OPERATORS (and COMPONENTS)."""

    latency_s: jax.Array
    energy_j: jax.Array
    latency_by_operator: dict
    energy_by_component: dict
    energy_by_operator: dict
    dram_bits: jax.Array
    tokens: int


def energy_matrix(tech: Technology, area: Area):
    """Joules per unit of each activity (rows, ACTIVITIES) for each component but leakage (columns).

    DRAM bits are also written into and read out of the global buffer; streamed bits are written
    into macros and cross the three bus levels; activations go through cluster buffers and buses; partial
    sums are priced by :func:`psum_wire_energy`. A macro
    cycle and a bit written into a macro cost what the technology's macro says (``tech.macro``).
    """
    wire = (area.wire_intra_tile_mm + area.wire_inter_tile_mm + area.wire_inter_cluster_mm) * (
        tech.wire_energy_per_bit_mm
    )
    buffer = 2.0 * tech.buffer_energy_per_bit
    zero = jnp.zeros_like(wire)
    rows = {  # dram, compute, macro_write, reduction, buffers, buses, functional_units
        "dram_bits": (tech.dram_energy_per_bit, zero, zero, zero, buffer, zero, zero),
        "streamed_bits": (zero, zero, tech.macro.write_energy_per_bit(tech), zero, zero, wire, zero),
        "pe_cycles": (zero, tech.macro.cycle_energy(tech), zero, zero, zero, zero, zero),
        "adds": (zero, zero, zero, tech.psum_bits * tech.add_energy_per_bit, zero, zero, zero),
        "moved_bits": (zero, zero, zero, zero, buffer, wire, zero),
        "fu_ops": (zero, zero, zero, zero, zero, zero, tech.fu_energy_per_op),
    }
    return jnp.stack([jnp.stack([jnp.asarray(x, wire.dtype) for x in rows[a]]) for a in MATRIX_ACTIVITIES])


def psum_wire_energy(tech: Technology, area: Area) -> dict:
    """Joules per partial-sum bit (``PSUM_ACTIVITIES``), counted under ``buses``: a tile's partial sums cross
    the inter-tile bus, a cluster's the inter-cluster bus (to the chip tree)."""
    return {
        "tile_psum_bits": area.wire_inter_tile_mm * tech.wire_energy_per_bit_mm,
        "chip_psum_bits": area.wire_inter_cluster_mm * tech.wire_energy_per_bit_mm,
    }


def price(
    per_layer: dict[str, OperatorCost],
    once: dict[str, OperatorCost],
    layer_shape: tuple[int, ...],
    repeats: int,
    tokens: int,
    tech: Technology,
    area: Area,
) -> PhaseCosts:
    """Sums operators' per-layer costs over the layers and adds the once-per-phase costs ``once`` (keyed by
    the operator they count under, constants), then prices the activities. ``layer_shape`` is the shape of
    the per-layer arrays (layer axis last), each of whose rows stands for ``repeats`` layers."""

    def layer_sum(v):
        return jnp.sum(jnp.broadcast_to(v, layer_shape), axis=-1) * repeats

    activities = [per_layer[op].activity() for op in OPERATORS]
    per_op = jnp.stack([jnp.stack([layer_sum(getattr(x, a)) for a in MATRIX_ACTIVITIES]) for x in activities])
    # Once-per-phase activities (constants) as a matrix: no scatter inside vmapped sweeps.
    once_activities = [once[op].activity() if op in once else NO_ACTIVITY for op in OPERATORS]
    per_op = per_op + jnp.asarray([[getattr(x, a) for a in MATRIX_ACTIVITIES] for x in once_activities])
    # Partial sums (per-layer only), added to the buses after the matrix sum, their gradient stopped: zero
    # when switched off, and then the values and gradients are bit for bit those without the mechanism.
    units = psum_wire_energy(tech, area)
    psums = jnp.stack([sum(layer_sum(getattr(x, a)) * unit for a, unit in units.items()) for x in activities])
    psums = jax.lax.stop_gradient(psums)
    latency_by_op = {op: layer_sum(per_layer[op].latency) for op in OPERATORS}
    for op, cost in once.items():
        latency_by_op[op] += cost.latency
    latencies = jnp.stack([latency_by_op[op] for op in OPERATORS])
    leakage = latencies * tech.leakage_w_per_mm2 * area.total
    # Multiply-and-sum rather than a matmul: batched activity x component products are slow under vmap (and their
    # gradients slower), as measured by benchmarks/gradient_cost.py.
    dynamic = jnp.sum(per_op[:, :, None] * energy_matrix(tech, area)[None, :, :], axis=1)
    energies = jnp.concatenate([dynamic, leakage[:, None]], axis=1)  # [operator, component]
    by_component = dict(zip(COMPONENTS, jnp.sum(energies, axis=0), strict=True))
    by_component["buses"] = by_component["buses"] + jnp.sum(psums)
    return PhaseCosts(
        latency_s=jnp.sum(latencies),
        energy_j=jnp.sum(energies) + jnp.sum(psums),
        latency_by_operator=latency_by_op,
        energy_by_component=by_component,
        energy_by_operator=dict(zip(OPERATORS, jnp.sum(energies, axis=1) + psums, strict=True)),
        dram_bits=jnp.sum(per_op[:, MATRIX_ACTIVITIES.index("dram_bits")]),
        tokens=tokens,
    )
