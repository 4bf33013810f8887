"""How matrices are cut into 16x16 macro loads and spread over clusters (docs/edgecim.md, "Mapping").

A b-bit weight occupies b adjacent bit columns of a 16x16 macro, so one macro ("one PE load") holds
16 inputs x floor(16 / b) outputs. A d_in x d_out matrix needs ceil(d_in/16) * ceil(d_out/floor(16/b))
loads. Loads are processed ``active_pes`` (= T_A * P^2) at a time per cluster: one pipeline stage.
"""

from __future__ import annotations

import math

from cimjax.hardware.technology import MACRO_COLS, MACRO_ROWS
from cimjax.ops import Ops


def weights_per_row(bits, ops: Ops):
    """Weights of ``bits`` bits one macro row holds."""
    return ops.floor_div(MACRO_COLS, bits)


def pe_loads(d_in: int, d_out, bits, ops: Ops):
    """Macro loads needed for a d_in x d_out matrix of ``bits``-bit values."""
    return math.ceil(d_in / MACRO_ROWS) * ops.ceil_div(d_out, weights_per_row(bits, ops))


def row_groups(d_in: int) -> int:
    """Macro rows of inputs a d_in-long input vector spans (partial sums per output)."""
    return math.ceil(d_in / MACRO_ROWS)


def reduction_adds(d_in: int, d_out) -> object:
    """Additions to reduce the per-macro partial sums of one matrix-vector product to d_out outputs."""
    return (row_groups(d_in) - 1) * d_out
