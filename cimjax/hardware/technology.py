"""Technology (65 nm digital SRAM CIM) and DRAM (LPDDR5X) parameters: every number, its unit and source.

One :class:`Technology` pytree holds all of them, so users override any value with
``DEFAULT_TECHNOLOGY.replace(name=value)`` or a JSON file, and gradients can flow into them.
``docs/model.md`` reproduces this table next to the equations that use each value; values marked
*fitted* come from ``benchmarks/calibrate.py`` (the only EdgeCIM numbers used are docs/edgecim.md's
calibration points).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import cimjax.validation as validation
from cimjax.hardware.macro import EDGECIM_MACRO, Macro
from cimjax.jsonfile import read_json

# Functional-unit work per element, in 16-bit fixed-point operations (reasoning in docs/model.md).
FU_OPS_PER_ELEMENT = {
    "norm": 3,  # square, accumulate, scale (the rsqrt is once per vector)
    "rope": 4,  # two multiplies and two adds per rotated pair element
    "softmax_per_key": 6,  # running max, subtract, exp (~2 ops by table + interpolation), sum, scale
    "activation": 4,  # SiLU by table lookup with interpolation
    "eltwise_mul": 1,
    "residual": 1,
    "kv_quant": 2,  # scale and round (transposition is a re-indexing, no arithmetic)
    "act_quant": 2,
}


@dataclasses.dataclass(frozen=True)
class Param:
    value: float
    unit: str
    source: str


PARAMETERS: dict[str, Param] = {
    "clock_hz": Param(
        400e6,
        "Hz",
        "assumed; 65 nm digital logic at ~1.0 V closes 400 MHz, and 4096-bit buses at 400 MHz carry exactly "
        "the LPDDR5X peak (4096 b x 400 MHz = 1638.4 Gb/s = 204.8 GB/s), so the widest bus matches DRAM",
    ),
    "dram_peak_bytes_per_s": Param(
        204.8e9, "B/s", "LPDDR5X, 16 channels x 16 bit x 6400 MT/s (JEDEC JESD209-5B data rate; docs/edgecim.md)"
    ),
    "dram_efficiency": Param(
        0.9592, "-", "fitted: sustained / peak DRAM bandwidth (refresh, bank conflicts, turnarounds)"
    ),
    "dram_energy_per_bit": Param(0.8415e-12, "J/bit", "fitted: LPDDR5X read/write energy incl. I/O, per bit"),
    "pe_cycle_energy": Param(
        2.56e-12,
        "J",
        "one cycle of a 16x16 digital bit-serial macro: 256 bit-products, column adder trees and shift-"
        "accumulate at 10 fJ per bit-product; from Horowitz (ISSCC 2014, 45 nm: 8-bit add 0.03 pJ) "
        "scaled by 65/45, and from 22 nm DCIM macros (~1.4 fJ/bit-op, ISSCC 2021) scaled by capacitance "
        "(65/22) and voltage^2 ((1.0/0.72)^2): both give 8-16 fJ",
    ),
    "pe_write_energy_per_bit": Param(
        20e-15, "J/bit", "assumed; writing a bit into a 16-row SRAM macro (short bit lines) at 65 nm"
    ),
    "psum_bits": Param(24.0, "bit", "assumed partial-sum width in adder trees and accumulators"),
    "add_energy_per_bit": Param(
        4.5e-15, "J/bit", "Horowitz ISSCC 2014: 32-bit add 0.1 pJ at 45 nm = 3.1 fJ/bit, x 65/45"
    ),
    "buffer_energy_per_bit": Param(
        50e-15,
        "J/bit",
        "assumed CACTI-style figure for a 16-64 KB, wide-row (512+ bit) SRAM buffer at 65 nm, per bit read or written",
    ),
    "wire_energy_per_bit_mm": Param(
        0.1e-12, "J/(bit mm)", "on-chip wire energy of the order used by Dally, Turakhia & Han (CACM 2020)"
    ),
    "fu_energy_per_op": Param(
        1.0e-12, "J", "assumed 16-bit fixed-point op incl. register access at 65 nm (Horowitz, scaled)"
    ),
    "fu_lanes": Param(16.0, "elements/cycle", "assumed functional-unit width per cluster"),
    "leakage_w_per_mm2": Param(
        0.002,
        "W/mm^2",
        "assumed 65 nm low-power process, logic + SRAM average near room temperature (sensitivity in docs/model.md)",
    ),
    "pe_area_mm2": Param(
        0.04953,
        "mm^2",
        "fitted: one PE = 16x16 macro with its column adder trees, shift-accumulators and its share of "
        "the tile adder tree",
    ),
    "sram_area_per_bit_mm2": Param(0.75e-6, "mm^2/bit", "65 nm 6T cell 0.525 um^2 (TSMC 65 nm) / 0.7 array efficiency"),
    "cluster_buffer_bits": Param(
        131072.0, "bit", "assumed 16 KiB per cluster: holds an 8192-element 16-bit input/output vector"
    ),
    "bus_area_per_bit_mm2": Param(
        5e-6,
        "mm^2/bit",
        "assumed: a driver and a receiver buffer (~2.5 um^2 each at 65 nm) per wire of each bus instance; "
        "wires are routed over logic on upper metal layers",
    ),
    "fu_area_mm2": Param(0.05, "mm^2", "assumed per-cluster functional units (norm, softmax, activation, quantiser)"),
    "stage_control_cycles": Param(
        6.0,
        "cycles",
        "assumed (used by the stage_control switch): a stage request and its acknowledgement each cross the "
        "three bus levels through one pipeline register per level, 3 cycles each way",
    ),
}


SWITCH_VALUES = (0, 1)
"""The values a mechanism switch may take: 0 = off, 1 = on."""

# Mechanism switches (see SWITCH_VALUES): each is one equation of docs/model.md, "Mechanisms".
SWITCHES: dict[str, Param] = {
    "global_buffer_overlap": Param(
        1.0,
        "0/1",
        "the global buffer is double-buffered (its area already counts both halves), so DRAM fills one half "
        "while a stage moves from the other into the tiles: DRAM time leaves a tile set's load/compute cycle",
    ),
    "fu_overlap": Param(
        1.0,
        "0/1",
        "functional units (norm, RoPE, activation, multiply, residual, quantisers) consume operator outputs "
        "as they stream out, concurrently with the weight streaming; only time beyond the layer's streaming "
        "is exposed",
    ),
    "inter_cluster_bursts": Param(
        1.0,
        "0/1",
        "the shared inter-cluster bus moves one cluster's stage at a time at its full width, clusters served "
        "in turn (staggered): a set waits for its own burst (s / W_ic), while the bus still carries every "
        "streaming cluster's stage within a period; otherwise a set's load lasts the whole round of n_c "
        "clusters' transfers",
    ),
    "macro_write_overlap": Param(
        0.0,
        "0/1",
        "each macro holds a second (ping-pong) set of weight cells sharing its multipliers and adder trees, "
        "written while the macro computes on the other set: simultaneous MAC and write (Yue et al., ISSCC "
        "2021, ping-pong CIM; Fujiwara et al., ISSCC 2022, TSMC 5 nm digital CIM macro); costs one more "
        "macro's stored bits of SRAM cells per PE",
    ),
    "bus_width_write": Param(
        1.0,
        "0/1",
        "a macro is written at its share of the intra-tile bus (W_intra / P^2 bits per cycle, up to the whole "
        "macro in one cycle) instead of one row per cycle: the paper's space offers intra-tile buses of up to "
        "4096 bits for 4-PE tiles, which a one-row port (16 bits per macro) could never fill; costs a bus "
        "driver and receiver per extra write-port bit of each PE",
    ),
    "stage_control": Param(
        0.0,
        "0/1",
        "per-stage control and synchronisation: the global controller issues a stage's DRAM request only once "
        "the previous stage's destination has acknowledged it, a round trip of stage_control_cycles that adds "
        "to every stage on the shared path (DRAM, inter-cluster and inter-tile buses)",
    ),
    "tile_transfers": Param(
        0.0,
        "0/1",
        "the inter-tile bus carries one tile's data per cycle (a bus transfer has one destination): a stage "
        "takes T_A * ceil((s / T_A) / W_inter_tile) cycles on it, so a bus wider than a tile's share is "
        "partly idle; otherwise its width is shared by all the cluster's active tiles at once",
    ),
    "partial_sums": Param(
        0.0,
        "0/1",
        "each active tile's partial sums (one per output of its column group per stage and input, w + a + "
        "ceil(log2(16 P^2)) bits) cross the inter-tile bus to the cluster adder tree, and for W_O and down each "
        "cluster's (w + a + ceil(log2(16 N_A)) bits) the inter-cluster bus to the chip tree, sharing those "
        "buses with the weights (time) and paying their wire energy; otherwise they cost neither",
    ),
}
ALL_PARAMETERS = PARAMETERS | SWITCHES


SYSTEM_DRAM_ENERGY_PER_BIT = Param(
    4.0e-12,
    "J/bit",
    "public order of magnitude for a mobile DRAM access including I/O: O'Connor et al., 'Fine-Grained DRAM', "
    "MICRO 2017, put HBM2 at 3.9 pJ/bit and off-package LPDDR-class interfaces no lower; used only by the "
    "'system' energy accounting of reports, never fitted",
)
"""The DRAM energy of the *system* accounting (docs/model.md, "Energy accounting")."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Technology:
    """All technology and DRAM numbers as float leaves (see ``PARAMETERS`` for units and sources), and the
    PE macro they price (static: a jitted model is compiled per macro; :mod:`cimjax.hardware.macro`).

    A pytree (gradients flow into every leaf) that is also hashable and comparable by its concrete values
    and its macro, so caches key on it directly; hashing a traced one raises (its values are not known).
    """

    clock_hz: jax.Array
    dram_peak_bytes_per_s: jax.Array
    dram_efficiency: jax.Array
    dram_energy_per_bit: jax.Array
    pe_cycle_energy: jax.Array
    pe_write_energy_per_bit: jax.Array
    psum_bits: jax.Array
    add_energy_per_bit: jax.Array
    buffer_energy_per_bit: jax.Array
    wire_energy_per_bit_mm: jax.Array
    fu_energy_per_op: jax.Array
    fu_lanes: jax.Array
    leakage_w_per_mm2: jax.Array
    pe_area_mm2: jax.Array
    sram_area_per_bit_mm2: jax.Array
    cluster_buffer_bits: jax.Array
    bus_area_per_bit_mm2: jax.Array
    fu_area_mm2: jax.Array
    stage_control_cycles: jax.Array
    global_buffer_overlap: jax.Array
    fu_overlap: jax.Array
    inter_cluster_bursts: jax.Array
    macro_write_overlap: jax.Array
    bus_width_write: jax.Array
    stage_control: jax.Array
    tile_transfers: jax.Array
    partial_sums: jax.Array
    macro: Macro = dataclasses.field(default=EDGECIM_MACRO, metadata={"static": True})

    @classmethod
    def from_values(cls, values: Mapping[str, float], macro: Macro = EDGECIM_MACRO) -> Technology:
        """Builds a validated parameter set: every value a finite number (not a bool) within
        :func:`allowed_range` (switches: 0 or 1); anything else raises ValueError naming it and its range."""
        unknown = sorted(set(values) - set(ALL_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown technology parameter(s) {unknown}; known: {sorted(ALL_PARAMETERS)}")
        merged = {name: p.value for name, p in ALL_PARAMETERS.items()} | dict(values)
        for name, value in merged.items():
            if name in SWITCHES:
                if isinstance(value, bool) or value not in SWITCH_VALUES:
                    raise ValueError(f"technology switch {name!r} = {value!r} must be 0 (off) or 1 (on)")
                continue
            validation.number(f"technology parameter {name!r}", value, *allowed_range(name))
        if not isinstance(macro, Macro):
            raise ValueError(f"technology macro = {macro!r} is not allowed; allowed: a cimjax.hardware.macro.Macro")
        return cls(**{name: jnp.asarray(float(v)) for name, v in merged.items()}, macro=macro)

    def validated(self) -> Technology:
        """This parameter set checked as :meth:`from_values` checks one. ``Technology(...)`` and
        ``dataclasses.replace`` skip that check (the pytree is rebuilt with traced leaves inside ``jit``), so
        the entry points that take a ``tech`` call this: a NaN or a list in a leaf is refused by name."""
        values = {name: validation.plain(getattr(self, name)) for name in ALL_PARAMETERS}
        return Technology.from_values(values, self.macro)

    def _value_key(self) -> tuple:
        return (self.macro, *((np.shape(leaf), np.asarray(leaf, np.float64).tobytes()) for leaf in self._leaves()))

    def _leaves(self) -> list:
        return [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "macro"]

    def __hash__(self) -> int:
        return hash(self._value_key())

    def __eq__(self, other) -> bool:
        if not isinstance(other, Technology):
            return NotImplemented
        return self.macro == other.macro and all(
            np.shape(a) == np.shape(b) and np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(self._leaves(), other._leaves(), strict=True)
        )

    def replace(self, macro: Macro | None = None, **values: float) -> Technology:
        """A copy with some values, or the macro, overridden (validated)."""
        return Technology.from_values(self.to_dict() | values, macro or self.macro)

    def to_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in ALL_PARAMETERS}

    @classmethod
    def from_json(cls, path: str | Path) -> Technology:
        """Loads overrides from a JSON object of ``{name: value}``, and optionally ``"macro"``: an object of
        the PE macro's name and geometry (:meth:`cimjax.hardware.macro.Macro.from_dict`)."""
        values = read_json(path, "technology")
        if not isinstance(values, dict):
            raise ValueError(f"technology file {path} must hold a JSON object of name: value")
        macro = values.pop("macro", None)
        return cls.from_values(values, EDGECIM_MACRO if macro is None else Macro.from_dict(macro))


RANGE_FACTOR = 1000.0
"""Every technology constant must lie within this factor of its default (``dram_efficiency`` also <= 1).

Three orders of magnitude either way covers every process node and memory a 65 nm-class model is
sensibly extrapolated to, and keeps every cost finite in float32 for every design and workload that
passes validation (tests/test_hostile.py checks the extremes); a 1 Hz or 1e300 Hz clock is refused."""


def allowed_range(name: str) -> tuple[float, float]:
    """The closed range a technology constant (not a switch) may take (see :data:`RANGE_FACTOR`)."""
    default = PARAMETERS[name].value
    high = 1.0 if name == "dram_efficiency" else default * RANGE_FACTOR
    return default / RANGE_FACTOR, high


def default_technology() -> Technology:
    """The 65 nm / LPDDR5X parameter set with the calibrated values."""
    return Technology.from_values({})


def technology_argument(tech) -> Technology:
    """The ``tech`` keyword of the Python entry points: None means :func:`default_technology`; a
    :class:`Technology` is checked (:meth:`Technology.validated`); anything else is refused."""
    if tech is None:
        return default_technology()
    return validation.instance("tech", tech, Technology).validated()


def markdown_table() -> str:
    """The parameter table for docs/model.md."""
    rows = ["| parameter | value | unit | source |", "|---|---|---|---|"]
    rows += [f"| `{n}` | {p.value:.4g} | {p.unit} | {p.source} |" for n, p in ALL_PARAMETERS.items()]
    return "\n".join(rows)


def constants_table() -> list[dict]:
    """Every constant as ``cimjax tech`` lists it: name, value, unit, source, whether ``--tech`` may
    override it, and its allowed range (``minimum``/``maximum``, or ``allowed`` for switches); the macro
    geometry and the functional-unit work per element are structural."""
    rows = [{"name": n, "value": p.value, "unit": p.unit, "source": p.source, "overridable": True,
             "minimum": allowed_range(n)[0], "maximum": allowed_range(n)[1]}
            for n, p in PARAMETERS.items()]  # fmt: skip
    rows += [{"name": n, "value": p.value, "unit": p.unit, "source": p.source, "overridable": True,
              "allowed": list(SWITCH_VALUES)}
             for n, p in SWITCHES.items()]  # fmt: skip
    rows += [
        {"name": "MACRO_ROWS", "value": EDGECIM_MACRO.rows, "unit": "inputs", "overridable": False,
         "source": "EdgeCIM PE: a 16x16 SRAM macro sums 16 inputs per column per cycle"},
        {"name": "MACRO_COLS", "value": EDGECIM_MACRO.columns, "unit": "bit columns", "overridable": False,
         "source": "EdgeCIM PE: a b-bit weight occupies b adjacent bit columns of the 16"},
    ]  # fmt: skip
    rows += [
        {"name": f"fu_ops.{k}", "value": v, "unit": "16-bit ops/element", "overridable": False,
         "source": "functional-unit work per element (reasoning in docs/model.md)"}
        for k, v in FU_OPS_PER_ELEMENT.items()
    ]  # fmt: skip
    return rows
