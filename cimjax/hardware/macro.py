"""The PE macro: its geometry, how weights and inputs map onto its cells and cycles, and what its
operations cost (docs/model.md, Section 3).

A PE is one compute-in-memory macro, weight-stationary: ``rows`` inputs are applied at once and each
column sums its ``rows`` products. With ``bits_per_cell`` weight bits per cell, a ``w``-bit weight
occupies ``ceil(w / bits_per_cell)`` adjacent columns; an ``a``-bit input is applied
``input_bits_per_cycle`` bits per cycle (1: bit-serial, shift-and-add); a macro is written
``rows_written_per_cycle`` rows per cycle:

    columns per weight = ceil(w / bits_per_cell)
    weights per row    = floor(columns / columns per weight)
    input cycles       = ceil(a / input_bits_per_cycle)
    write cycles       = ceil(rows / rows_written_per_cycle)
    stored bits        = rows * columns * bits_per_cell          (one load: what a stage writes)

What its operations cost is read from the :class:`~cimjax.hardware.technology.Technology` table
(value, unit and source per constant, overridable with ``--tech``): ``pe_cycle_energy`` per macro cycle
(every row and column active), ``pe_write_energy_per_bit`` per bit written, ``pe_area_mm2`` per macro
with its peripherals. A macro whose operations cost something else (an ADC conversion per column and
cycle, a larger array) subclasses :class:`Macro` and overrides :meth:`~Macro.cycle_energy`,
:meth:`~Macro.write_energy_per_bit` or :meth:`~Macro.area_mm2`, keeping its own constants with their
sources in its file (tests/test_macro.py defines two such macros).

A macro is static (frozen, hashable): it is part of a :class:`Technology`'s structure, so a jitted
model is compiled per macro and its geometry is plain Python numbers at trace time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from cimjax.ops import Ops
from cimjax.workload.precision import MAX_BITS

GEOMETRY = ("rows", "columns", "bits_per_cell", "input_bits_per_cycle", "rows_written_per_cycle")
MACRO_LIMITS = {"rows": 1024, "columns": 1024, "bits_per_cell": 8, "input_bits_per_cycle": 16,
                "rows_written_per_cycle": 1024}  # fmt: skip
"""Largest value of each geometry field: 64x the EdgeCIM macro's array, 8-bit cells, fully bit-parallel
16-bit inputs; a row must also hold one 16-bit weight (columns x bits per cell >= 16). Within them every
cost stays finite in float32 at every corner of the hardware limits (tests/test_hostile.py)."""


@dataclasses.dataclass(frozen=True)
class Macro:
    """A weight-stationary CIM macro (see the module docstring for the equations)."""

    name: str
    rows: int  # inputs summed per column per cycle
    columns: int  # cells per row
    bits_per_cell: int = 1  # weight bits one cell holds
    input_bits_per_cycle: int = 1  # 1: bit-serial inputs; the widest input width: bit-parallel
    rows_written_per_cycle: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"macro field 'name' = {self.name!r} is not allowed; allowed: a non-empty string")
        for name in GEOMETRY:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MACRO_LIMITS[name]:
                raise ValueError(
                    f"macro field {name!r} = {value!r} is not allowed; allowed: whole numbers in "
                    f"[1, {MACRO_LIMITS[name]}]"
                )
        if self.columns * self.bits_per_cell < MAX_BITS:  # else a row holds no weight of the widest width
            raise ValueError(
                f"macro columns x bits_per_cell = {self.columns} x {self.bits_per_cell} is not allowed; allowed: "
                f"at least {MAX_BITS} bits per row (one {MAX_BITS}-bit weight, the widest a precision may give)"
            )

    @classmethod
    def from_dict(cls, values: Mapping) -> Macro:
        """A macro of a technology file's ``"macro"`` object: ``name`` and geometry fields; fields left out
        keep the EdgeCIM macro's. Its energies and area stay the technology's ``pe_*`` constants."""
        if not isinstance(values, Mapping):
            raise ValueError(f"technology 'macro' = {values!r} is not allowed; allowed: an object of {list(GEOMETRY)}")
        unknown = sorted(set(values) - {"name", *GEOMETRY})
        if unknown:
            raise ValueError(f"unknown macro field(s) {unknown}; fields are {['name', *GEOMETRY]}")
        return dataclasses.replace(EDGECIM_MACRO, **({"name": "custom"} | dict(values)))

    def to_dict(self) -> dict:
        """Name and geometry (what a technology file's ``"macro"`` object holds)."""
        return {"name": self.name} | {name: getattr(self, name) for name in GEOMETRY}

    def columns_per_weight(self, bits, ops: Ops):
        """Adjacent columns a ``bits``-bit weight occupies."""
        return bits if self.bits_per_cell == 1 else ops.ceil_div(bits, self.bits_per_cell)

    def weights_per_row(self, bits, ops: Ops):
        """Weights of ``bits`` bits one macro row holds (leftover columns are wasted)."""
        return ops.floor_div(self.columns, self.columns_per_weight(bits, ops))

    def input_cycles(self, bits, ops: Ops):
        """Cycles to apply one ``bits``-bit input to every row."""
        return bits if self.input_bits_per_cycle == 1 else ops.ceil_div(bits, self.input_bits_per_cycle)

    @property
    def write_cycles(self) -> int:
        """Cycles to write a whole macro (the pipeline's ``t_write`` when ``bus_width_write`` is off)."""
        return math.ceil(self.rows / self.rows_written_per_cycle)

    @property
    def stored_bits(self) -> int:
        """Bits one load writes into the macro."""
        return self.rows * self.columns * self.bits_per_cell

    # The pricing methods read a Technology's constants (or any object with those attributes: the
    # plain-Python reference passes its dict of values as one).
    def cycle_energy(self, tech):
        """Joules per macro cycle (every row and column active)."""
        return tech.pe_cycle_energy

    def write_energy_per_bit(self, tech):
        """Joules per weight or K/V bit written into the macro."""
        return tech.pe_write_energy_per_bit

    def area_mm2(self, tech):
        """Area of one PE: the macro with its column adders, accumulators and share of the tile tree."""
        return tech.pe_area_mm2


EDGECIM_MACRO = Macro(name="edgecim-16x16", rows=16, columns=16)
"""The EdgeCIM PE (docs/edgecim.md): a 16x16 digital SRAM macro, one bit per cell, bit-serial inputs,
written one row per cycle (unless the technology's ``bus_width_write`` switch gives it a port as wide as
its share of the intra-tile bus, the default: docs/model.md, section 13). Every cimjax figure uses it
unless a Technology names another macro."""
