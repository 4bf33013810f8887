"""Exact evaluation of one design and its JSON-ready report: the design through the batched evaluator
(:mod:`cimjax.cost.batched`) and the report builder (metrics, breakdowns, energy accounts, figure of merit,
roofline).

The floor above the cost model and below search/, joint/ and report/, which all report designs this way
(through :class:`cimjax.results.DesignReport`, where the report's keys and derived numbers are defined);
:func:`cimjax.api.evaluate_design` is the same report behind input validation. Nothing here is traced by
JAX.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from cimjax.cost.batched import make_evaluator
from cimjax.cost.model import Costs
from cimjax.hardware.config import PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import SYSTEM_DRAM_ENERGY_PER_BIT, Technology
from cimjax.mapping.pipeline import dram_bits_per_s
from cimjax.ops import Ops
from cimjax.results import Breakdowns, DesignReport, Metrics, Result, make_meta
from cimjax.workload.operators import Workload, decode_operators
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec

WHOLE_NUMBERS = Ops(
    ceil_div=lambda a, b: -(-a // b),
    floor_div=lambda a, b: a // b,
    maximum=max,
    log2_ceil=lambda n: (max(int(n), 1) - 1).bit_length(),
)
"""The exact operations on Python whole numbers, for report arithmetic outside JAX: each JAX operation
called eagerly is compiled (or read from the disk cache) once per process, about 20 ms apiece."""


def _evaluate(hw: HardwareConfig, prec: Precision, spec: ModelSpec, workload: Workload, tech: Technology) -> Costs:
    """``evaluate`` of one design, compiled once per model and workload and kept on disk (cimjax.cache)."""
    return make_evaluator(spec, workload, designs="design", full=True)(hw, prec, tech)


def roofline_tokens_per_s(dram_bits: float, tech: Technology, tokens: int) -> float:
    """The physical limit: tokens/s if the DRAM streamed the required bits at its peak rate."""
    return tokens * float(tech.dram_peak_bytes_per_s) * 8.0 / float(dram_bits)


def peak_figure_of_merit(hw: HardwareConfig, tech: Technology, weight_bits: int, act_bits: int, area_mm2: float):
    """Peak TOPS, TOPS/W and TOPS/W/mm^2 as CIM papers compare macros and accelerators.

    Counted as: every active PE busy (C * T_A * P^2 macros), each macro doing rows x weights-per-row
    multiply-accumulates (16 x floor(16 / w) for EdgeCIM's macro) per input cycles (``act_bits`` cycles
    bit-serial), 2 operations per MAC, at the clock; power is the macros' dynamic power at that rate plus
    the whole chip's leakage (no DRAM, buses or buffers).
    """
    macro, hw = tech.macro, jax.tree.map(np.asarray, hw)  # NumPy leaves: no JAX operation per product
    active = float(hw.clusters * hw.active_pes)
    per_row = int(macro.weights_per_row(weight_bits, WHOLE_NUMBERS))
    cycles = int(macro.input_cycles(act_bits, WHOLE_NUMBERS))
    macs_per_cycle = active * macro.rows * per_row / cycles
    tops = 2.0 * macs_per_cycle * float(tech.clock_hz) / 1e12
    cycle_energy = float(macro.cycle_energy(tech))
    power_w = active * cycle_energy * float(tech.clock_hz) + float(tech.leakage_w_per_mm2) * area_mm2
    tops_per_w = tops / power_w
    return {"peak_tops": tops, "peak_tops_per_w": tops_per_w, "peak_tops_per_w_per_mm2": tops_per_w / area_mm2}


def _floats(tree) -> dict:
    return {k: float(v) for k, v in tree.items()}


def costs_report(
    costs: Costs, hw: HardwareConfig, spec: ModelSpec, precision_name: str, prec: Precision, tech: Technology
) -> dict:
    """A JSON-ready dict of one evaluated design: the ``evaluate`` form of a :class:`cimjax.results.DesignReport`
    (decode energy also split into DRAM and on-chip, with the *system* accounting beside it)."""
    area = float(costs.area_mm2)
    decode, prefill = costs.decode, costs.prefill
    tokens, dram_bits = int(decode.tokens), float(decode.dram_bits)
    w = int(np.max(np.asarray(prec.weight_bits)))
    a = int(np.max(np.asarray(prec.act_bits)))
    breakdowns = Breakdowns(
        latency_by_operator_s=_floats(decode.latency_by_operator),
        energy_by_component_j=_floats(decode.energy_by_component),
        energy_by_operator_j=_floats(decode.energy_by_operator),
        area_mm2={k: float(getattr(costs.area, k)) for k in ("pes", "buffers", "functional_units", "buses")},
        dram_bits=dram_bits,
        roofline_tokens_per_s=roofline_tokens_per_s(dram_bits, tech, tokens),
        figure_of_merit=peak_figure_of_merit(hw, tech, w, a, area),
        sustained_dram_gb_per_s=float(dram_bits_per_s(jax.tree.map(np.asarray, tech))) / 8e9,
        system_dram_energy_per_bit=SYSTEM_DRAM_ENERGY_PER_BIT.value,
        prefill=None
        if prefill is None
        else Metrics(int(prefill.tokens), float(prefill.latency_s), float(prefill.energy_j), area),
        prefill_latency_by_operator_s=None if prefill is None else _floats(prefill.latency_by_operator),
    )
    metrics = Metrics(tokens, float(costs.latency_s), float(costs.energy_j), area)
    report = DesignReport(hw.to_dict(), metrics, spec.id, precision_name, breakdowns=breakdowns)
    return report.to_json("evaluate")


def design_report(
    spec: ModelSpec,
    prec: Precision,
    precision_name: str,
    config: Mapping[str, float] | HardwareConfig,
    workload: Workload,
    tech: Technology,
    space: DesignSpace = PAPER_SPACE,
) -> Result:
    """One design evaluated exactly: its report (:func:`costs_report` plus the per-layer operators) as a
    :class:`cimjax.results.Result` with ``meta``. A mapping ``config`` must name every field and lie in
    ``space``."""
    hw = config if isinstance(config, HardwareConfig) else HardwareConfig.from_dict(config, space)
    costs = _evaluate(hw, prec, spec, workload, tech)
    report = costs_report(costs, hw, spec, precision_name, prec, tech) | {
        "layer_operators": decode_operators(spec, workload)
    }
    return Result(report, meta=make_meta(workload, tech))
