"""How matrices are cut into macro loads and spread over clusters (docs/model.md, Sections 3-4).

A macro (:class:`~cimjax.hardware.macro.Macro`; EdgeCIM's is 16x16, one bit per cell) holds ``rows``
inputs x ``weights_per_row(b)`` outputs of a b-bit matrix: one "PE load" (16 x floor(16 / b) for
EdgeCIM). A d_in x d_out matrix needs ceil(d_in / rows) * ceil(d_out / weights_per_row(b)) loads.
Loads are processed ``active_pes`` (= T_A * P^2) at a time per cluster: one pipeline stage.
"""

from __future__ import annotations

import math

from cimjax.hardware.macro import Macro
from cimjax.ops import Ops


def pe_loads(macro: Macro, d_in: int, d_out, bits, ops: Ops):
    """Macro loads needed for a d_in x d_out matrix of ``bits``-bit values."""
    return row_groups(macro, d_in) * ops.ceil_div(d_out, macro.weights_per_row(bits, ops))


def row_groups(macro: Macro, d_in: int) -> int:
    """Macro rows of inputs a d_in-long input vector spans (partial sums per output)."""
    return math.ceil(d_in / macro.rows)


def reduction_adds(macro: Macro, d_in: int, d_out) -> object:
    """Additions to reduce the per-macro partial sums of one matrix-vector product to d_out outputs."""
    return (row_groups(macro, d_in) - 1) * d_out
