"""Precision assignments: bits per layer and per tensor kind, as a pytree of arrays.

Conventions shared by the cost model, the accuracy proxy and the optimisers:

* ``weight_bits[l, j]``: weight bits of linear operator ``LINEAR_OPS[j]`` of layer ``l``.
* ``act_bits[l, j]``: bit-serial input bits of matmul ``MATMUL_OPS[j]`` of layer ``l`` (the linear
  operators, then ``qk`` = query into K^T and ``pv`` = softmax probabilities into V).
* ``kv_bits[l]``: bits of the K and V cache entries of layer ``l``.
* ``weight_overhead_bits[l, j]`` (optional): extra bits streamed per weight for group scales and zero
  points (e.g. a 16-bit scale and a 16-bit zero point per 128 weights = 0.25, see
  :func:`group_overhead_bits`). They travel from DRAM with the weights but are not held in the macros.
* The bit table: the same bits as one ``(L, 17)`` array, one column per quantised tensor (*point*) in
  :data:`POINTS` order -- the 7 linear weights, the 9 matmul inputs, the KV cache (K and V together).
  The proxy, the sensitivities and the joint optimiser work on it (:meth:`Precision.to_table`,
  :meth:`Precision.from_table`); :func:`bits_report` is its JSON form.

Integer values give the exact model; non-integer values are meaningful only to the relaxed model.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from cimjax.workload.spec import ModelSpec

LINEAR_OPS = ("q", "k", "v", "o", "gate", "up", "down")
MATMUL_OPS = LINEAR_OPS + ("qk", "pv")
MIN_BITS, MAX_BITS = 1, 16

POINTS: tuple[tuple[str, str], ...] = (
    tuple(("weight", op) for op in LINEAR_OPS) + tuple(("act", op) for op in MATMUL_OPS) + (("kv", "kv"),)
)
"""``(kind, operator)`` of the bit table's columns."""
N_POINTS = len(POINTS)
POINT_NAMES = tuple(f"{kind}.{op}" if kind != "kv" else "kv" for kind, op in POINTS)
"""``weight.q``, ..., ``act.pv``, ``kv``: labels of the bit table's columns."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Precision:
    """Bits per layer and tensor kind. Shapes: (L, 7), (L, 9), (L,) and optionally (L, 7)."""

    weight_bits: jax.Array
    act_bits: jax.Array
    kv_bits: jax.Array
    weight_overhead_bits: jax.Array | None = None

    @property
    def streamed_weight_bits(self):
        """Bits streamed from DRAM per weight: the weight itself plus its share of group scales."""
        if self.weight_overhead_bits is None:
            return self.weight_bits
        return self.weight_bits + self.weight_overhead_bits

    @property
    def n_layers(self) -> int:
        return self.kv_bits.shape[-1]

    def to_table(self) -> jax.Array:
        """The bits as one ``(..., L, 17)`` float32 table in :data:`POINTS` order (jittable); the weight
        overhead bits are not part of it."""
        return jnp.concatenate([self.weight_bits, self.act_bits, self.kv_bits[..., None]], axis=-1).astype(jnp.float32)

    @classmethod
    def from_table(cls, table: jax.Array) -> Precision:
        """The inverse of :meth:`to_table` (jittable): a ``(..., L, 17)`` table split by tensor kind."""
        n_w, n_a = len(LINEAR_OPS), len(MATMUL_OPS)
        return cls(table[..., :n_w], table[..., n_w : n_w + n_a], table[..., n_w + n_a])

    @classmethod
    def uniform(cls, n_layers: int, weight: float, act: float | None = None, kv: float | None = None):
        """The same bits everywhere; activations and KV cache follow the weights unless given."""
        act = weight if act is None else act
        kv = weight if kv is None else kv
        for field, value in (("weight", weight), ("act", act), ("kv", kv)):
            if not MIN_BITS <= value <= MAX_BITS:
                raise ValueError(f"{field} bits = {value!r} is outside the allowed range [{MIN_BITS}, {MAX_BITS}]")
        return cls(
            weight_bits=jnp.full((n_layers, len(LINEAR_OPS)), weight, jnp.float32),
            act_bits=jnp.full((n_layers, len(MATMUL_OPS)), act, jnp.float32),
            kv_bits=jnp.full((n_layers,), kv, jnp.float32),
        )

    def validate(self, n_layers: int, integer: bool = True) -> None:
        """Raises ValueError naming the field whose shape or values are not allowed."""
        shapes = {
            "weight_bits": (n_layers, len(LINEAR_OPS)),
            "act_bits": (n_layers, len(MATMUL_OPS)),
            "kv_bits": (n_layers,),
        }
        if self.weight_overhead_bits is not None:
            overhead = np.asarray(self.weight_overhead_bits)
            if overhead.shape != shapes["weight_bits"]:
                raise ValueError(
                    f"precision field 'weight_overhead_bits' has shape {overhead.shape}; "
                    f"expected {shapes['weight_bits']}"
                )
            if not np.all(np.isfinite(overhead)) or overhead.min() < 0 or overhead.max() > MAX_BITS:
                raise ValueError(
                    f"precision field 'weight_overhead_bits' has values in [{overhead.min()}, {overhead.max()}]; "
                    f"allowed range is [0, {MAX_BITS}]"
                )
        for field, shape in shapes.items():
            value = np.asarray(getattr(self, field))
            if value.shape != shape:
                raise ValueError(f"precision field {field!r} has shape {value.shape}; expected {shape}")
            if not np.all(np.isfinite(value)) or value.min() < MIN_BITS or value.max() > MAX_BITS:
                raise ValueError(
                    f"precision field {field!r} has values in [{value.min()}, {value.max()}]; "
                    f"allowed range is [{MIN_BITS}, {MAX_BITS}]"
                )
            if integer and not np.all(value == np.round(value)):
                raise ValueError(f"precision field {field!r} must hold whole bits for the exact model")


def group_overhead_bits(group_size: int, scale_bits: int = 16, zero_bits: int = 16) -> float:
    """Extra bits per weight of group quantisation: one scale (and zero point) per ``group_size`` weights."""
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size = {group_size!r} must be a positive integer")
    return (scale_bits + zero_bits) / group_size


PRESETS = {"int8": 8, "int6": 6, "int4": 4}
"""Uniform widths by name (weights, bit-serial activations and KV cache alike): the precisions
:func:`preset` accepts and the accuracy budgets of the joint optimiser (the proxy at that width)."""
PRECISION_FORMS = "int4, int6, int8, or bits per kind as wXaYkvZ (e.g. w4a8kv8, w4a16kv8; kvZ defaults to aY)"
_PER_KIND = re.compile(r"w(\d+)a(\d+)(?:kv(\d+))?")


def parse_precision(name: str) -> tuple[int, int, int]:
    """``(weight, activation, kv)`` bits of a precision name: ``int6`` -> (6, 6, 6), ``w4a16kv8`` -> (4, 16, 8)."""
    text = name.strip().lower() if isinstance(name, str) else ""
    if text in PRESETS:
        return (PRESETS[text],) * 3
    match = _PER_KIND.fullmatch(text)
    if match is None:
        raise ValueError(f"precision {name!r} is not known; allowed: {PRECISION_FORMS}")
    weight, act = int(match[1]), int(match[2])
    bits = (weight, act, int(match[3]) if match[3] else act)
    if not all(MIN_BITS <= b <= MAX_BITS for b in bits):
        raise ValueError(f"precision {name!r}: every width must lie in [{MIN_BITS}, {MAX_BITS}] bits")
    return bits


def preset(name: str, n_layers: int) -> Precision:
    """A uniform precision by name (see :data:`PRECISION_FORMS`). ``intN`` means WNANKVN: weights, bit-serial
    activations and KV cache all at N bits (our reading of the paper's INT4/INT8)."""
    weight, act, kv = parse_precision(name)
    return Precision.uniform(n_layers, weight, act, kv)


def bits_report(table: np.ndarray) -> list[dict]:
    """A whole-bit ``(L, 17)`` table as JSON, per layer:
    ``{"layer", "weight": {op: bits}, "act": {op: bits}, "kv": bits}``."""
    table = np.asarray(table)
    n_w, n_a = len(LINEAR_OPS), len(MATMUL_OPS)
    return [
        {
            "layer": layer,
            "weight": {op: int(b) for op, b in zip(LINEAR_OPS, row[:n_w], strict=True)},
            "act": {op: int(b) for op, b in zip(MATMUL_OPS, row[n_w : n_w + n_a], strict=True)},
            "kv": int(row[-1]),
        }
        for layer, row in enumerate(table)
    ]


def table_from_bits(bits: list[dict]) -> np.ndarray:
    """The ``(L, 17)`` float64 bit table of a :func:`bits_report` (its inverse)."""
    return np.array([[*row["weight"].values(), *row["act"].values(), row["kv"]] for row in bits], np.float64)


def resolve_precision(precision: str | Precision, spec: ModelSpec) -> Precision:
    """``spec``'s :class:`Precision` given as itself (checked against the model's layers) or as a name
    (:func:`preset`)."""
    if isinstance(precision, str):
        return preset(precision, spec.n_layers)
    if not isinstance(precision, Precision):
        raise ValueError(f"precision = {precision!r} is not allowed; allowed: 'int4', 'int8' or a Precision")
    precision.validate(spec.n_layers)
    return precision
