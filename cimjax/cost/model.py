"""The end-to-end cost model: latency, energy and area of an SLM on an EdgeCIM-class accelerator.

:func:`phase_costs` prices a phase (decode or prefill) of a workload on a hardware configuration, a
precision assignment and a technology in two steps: every operator's latency and activities per layer
(:mod:`cimjax.cost.operators`), then one pricing step, activities x energy per unit plus leakage
(:mod:`cimjax.cost.pricing`). Both are written once against an :class:`~cimjax.ops.Ops` table: ``EXACT``
for the exact model, smooth ops for the relaxed one. Hardware leaves may be scalars or batched by
``jax.vmap``. Equations: docs/model.md.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from cimjax.cost import operators
from cimjax.cost.distinct import DistinctRows, distinct_operators
from cimjax.cost.pricing import PhaseCosts, price
from cimjax.hardware.area import Area, chip_area
from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.technology import Technology
from cimjax.ops import EXACT, Ops
from cimjax.workload.operators import PassCounts, Workload, decode_counts, prefill_counts
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec


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
    """Latency and energy of one phase: each operator's per-layer latency and activities, then pricing.
    ``prec`` may be :class:`~cimjax.cost.distinct.DistinctRows` (each operator on its distinct rows)."""
    if isinstance(prec, DistinctRows):
        per_layer, once = distinct_operators(hw, prec, spec, counts, block, tech, ops)
        return price(per_layer, once, (prec.n_layers,), 1, counts.tokens, tech, area)
    repeats = _layer_repeats(spec, prec)
    per_layer, once = operators.phase_operators(operators.phase(hw, prec, spec, counts, block, tech, ops))
    return price(per_layer, once, prec.kv_bits.shape, repeats, counts.tokens, tech, area)


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
