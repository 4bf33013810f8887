"""A per-layer precision priced once per distinct row of the bits each operator reads.

Each per-layer operator of :mod:`cimjax.cost.operators` reads a few columns of the ``(L, 17)`` bit table
(:data:`OPERATOR_POINTS`), and its latency and activities of a layer depend on the design and those bits
only. The joint optimiser's tables vary little per column: LLaMA3.2-1B's default ``optimize`` table has
16 distinct layer rows but 4 distinct (Q, K, V) rows, 3 for W_O, 12 for the FFN and 1 for attention and
the KV cache. :class:`DistinctRows` holds, per operator, its distinct rows and the map from layers to
them; the cost model (:func:`cimjax.cost.model.phase_costs`) computes each operator on its rows and
gathers the results back to the layers before the layer sums. Every layer's value is the same equation
at the same bits, so the results are those of the plain per-layer evaluation up to float32 rounding: XLA
fuses (and contracts into fused multiply-adds) the two programs differently, a few units in the last
place (tests/test_distinct.py). Each set of row counts (rounded up to powers of two) is a compiled program.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.cost import operators
from cimjax.hardware.config import HardwareConfig
from cimjax.hardware.technology import Technology
from cimjax.ops import Ops
from cimjax.workload.operators import PassCounts
from cimjax.workload.precision import POINT_NAMES, Precision
from cimjax.workload.spec import ModelSpec


def _points(*names: str) -> tuple[int, ...]:
    return tuple(POINT_NAMES.index(name) for name in names)


OPERATOR_POINTS: dict[str, tuple[int, ...]] = {
    "qkv": _points(*(f"{kind}.{op}" for kind in ("weight", "act") for op in ("q", "k", "v"))),
    "attention": _points("kv", "act.qk", "act.pv"),
    "o_proj": _points("weight.o", "act.o"),
    "ffn": _points(*(f"{kind}.{op}" for kind in ("weight", "act") for op in ("gate", "up", "down"))),
    "dram_other": _points("kv"),
}
"""The bit-table columns each per-layer operator reads (``functional_units`` reads none: its time per layer
follows the others' latencies). tests/test_distinct.py checks that changing any other column leaves an
operator's latency and activities unchanged."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DistinctRows:
    """A per-layer precision as, per operator of :data:`OPERATOR_POINTS`, the layers' distinct rows
    (``rows[op]``: a :class:`Precision` of those rows, whole layer rows, one per distinct value of the
    operator's columns) and ``index[op]`` (``(L,)`` int32: the row of each layer)."""

    rows: dict[str, Precision]
    index: dict[str, jax.Array]

    @property
    def n_layers(self) -> int:
        return self.index["dram_other"].shape[-1]


def distinct_rows(prec: Precision) -> DistinctRows | Precision:
    """``prec`` as :class:`DistinctRows` (host side: its bits must be concrete), or unchanged when every
    operator has as many distinct rows as layers, or when it has weight overhead bits (not in the table).

    Each operator's distinct rows come first, then copies of its first row up to a power of two (at most
    the layer count): a program is compiled per set of row counts, and rounded counts make tables share
    programs. The copies cost nothing measurable (LLaMA3.2-1B, default ``optimize`` table, rows 4, 1, 3,
    12, 1 -> 4, 1, 4, 16, 1: 1.10-1.22 -> 1.04-1.06 CPU s per sweep of the paper space)."""
    if prec.weight_overhead_bits is not None:
        return prec
    table = np.asarray(prec.to_table())
    found = {
        op: np.unique(table[:, columns], axis=0, return_index=True, return_inverse=True)
        for op, columns in OPERATOR_POINTS.items()
    }
    if all(len(first) == len(table) for _, first, _ in found.values()):
        return prec
    rows, index = {}, {}
    for op, (_, first, inverse) in found.items():
        layers = np.concatenate([first, np.repeat(first[:1], _rounded(len(first), len(table)) - len(first))])
        rows[op] = Precision.from_table(jnp.asarray(table[layers]))
        index[op] = jnp.asarray(inverse.reshape(-1), jnp.int32)
    return DistinctRows(rows, index)


def _rounded(count: int, layers: int) -> int:
    """``count`` rounded up to a power of two, at most ``layers``."""
    return min(1 << (count - 1).bit_length(), layers)


def distinct_operators(
    hw: HardwareConfig, prec: DistinctRows, spec: ModelSpec, counts: PassCounts, block: int, tech: Technology, ops: Ops
) -> tuple[dict[str, operators.OperatorCost], dict[str, operators.OperatorCost]]:
    """:func:`cimjax.cost.operators.phase_operators` of ``prec``: each operator on its distinct rows,
    gathered back to the layers."""
    phases = {op: operators.phase(hw, rows, spec, counts, block, tech, ops) for op, rows in prec.rows.items()}
    kv = phases["dram_other"]
    per_layer_kv = kv._replace(kv=kv.kv[..., prec.index["dram_other"]])  # all functional_units reads per layer
    return operators.phase_operators(per_layer_kv, {op: (phases[op], prec.index[op]) for op in phases})
