"""Hardware configuration of an EdgeCIM-class accelerator, and the paper's design space.

A :class:`HardwareConfig` is a pytree whose leaves are arrays, so one function evaluates a single
design, a batch of designs (leaves with a leading axis) or a relaxed, continuous design alike.
Validation against a :class:`DesignSpace` happens at the boundary, never inside jitted code.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cimjax import validation

FIELDS = (
    "c_v",  # clusters, vertical
    "c_h",  # clusters, horizontal
    "t_v_act",  # active tiles per cluster, vertical
    "t_h_act",  # active tiles per cluster, horizontal
    "m",  # tile sets per cluster: T_total = m * T_A
    "pes_per_tile",  # P^2, PEs (16x16 macros) per tile
    "bus_inter_cluster",  # bits per cycle, global buffer <-> clusters
    "bus_inter_tile",  # bits per cycle, cluster buffer <-> tiles (one bus per cluster)
    "bus_intra_tile",  # bits per cycle, tile <-> its PEs (one bus per tile)
)


FIELD_LIMITS = {
    "c_v": 64,
    "c_h": 64,
    "t_v_act": 64,
    "t_h_act": 64,
    "m": 64,
    "pes_per_tile": 1024,
    "bus_inter_cluster": 65536,
    "bus_inter_tile": 65536,
    "bus_intra_tile": 65536,
}
"""Largest value of each field any design (and any user's design space) may take: 8-16x the paper's
largest (5 clusters a side, 8 tiles, 36 PEs per tile, 4096-bit buses). Up to these, and with every other
input validated, the cost model's values stay finite in float32 (tests/test_hostile.py checks the corners)."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HardwareConfig:
    """One design (scalar leaves) or a batch of designs (leaves with a leading axis)."""

    c_v: jax.Array
    c_h: jax.Array
    t_v_act: jax.Array
    t_h_act: jax.Array
    m: jax.Array
    pes_per_tile: jax.Array
    bus_inter_cluster: jax.Array
    bus_inter_tile: jax.Array
    bus_intra_tile: jax.Array

    def __post_init__(self):
        """Concrete leaves (not traced ones) must be finite numbers in ``[1, FIELD_LIMITS[field]]``.
        Membership in a design space is checked by :meth:`from_dict`."""
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer) or not isinstance(
                value, jax.Array | np.ndarray | np.generic | int | float
            ):
                continue  # traced, or a placeholder jax builds while transforming
            array = np.asarray(value)
            inside = np.isfinite(array) & (array >= 1) & (array <= FIELD_LIMITS[name])
            if isinstance(value, bool) or array.dtype == bool or not np.all(inside):
                shown = array.item() if array.size == 1 else f"an array with {np.size(array)} values"
                raise ValueError(
                    f"hardware field {name!r} = {shown!r} is not allowed; allowed: finite numbers in "
                    f"[1, {FIELD_LIMITS[name]}] (use HardwareConfig.from_dict to check against a design space)"
                )

    @property
    def clusters(self):
        return self.c_v * self.c_h

    @property
    def active_tiles(self):
        """T_A, tiles of one cluster computing at a time."""
        return self.t_v_act * self.t_h_act

    @property
    def active_pes(self):
        """PEs of one cluster computing at a time (T_A * P^2)."""
        return self.active_tiles * self.pes_per_tile

    @property
    def total_pes(self):
        return self.clusters * self.m * self.active_pes

    def to_dict(self) -> dict[str, int | float]:
        """Plain-Python values of a single design (JSON-ready)."""
        out = {}
        for name in FIELDS:
            value = np.asarray(getattr(self, name))
            if value.ndim:
                raise ValueError("to_dict needs a single design, not a batch")
            out[name] = int(value) if float(value).is_integer() else float(value)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, float], space: DesignSpace | None = None) -> HardwareConfig:
        """Builds a config from a mapping, validated against ``space`` (the paper's space by default)."""
        (space or PAPER_SPACE).validate(values)
        return cls(**{name: jnp.asarray(float(values[name])) for name in FIELDS})


def _field_values(name: str, values) -> tuple[int, ...]:
    """One field's values of a design space: distinct integers in ``[1, FIELD_LIMITS[name]]``. A fraction
    would be evaluated as if it were a design, and 0 or a negative value gave NaN or negative latencies."""
    field = f"design space field {name!r}"
    if isinstance(values, str | bytes | Mapping) or not hasattr(values, "__len__") or not len(values):
        raise validation.fail(field, values, "allowed: a non-empty list of integers")
    plain = tuple(validation.integer(f"{field} value", validation.plain(v), 1, FIELD_LIMITS[name]) for v in values)
    if len(set(plain)) < len(plain):
        raise validation.fail(field, values, "allowed: distinct values (a repeated one repeats every design)")
    return plain


@dataclasses.dataclass(frozen=True)
class DesignSpace:
    """The allowed values of each hardware field (a Cartesian product).

    Immutable and hashable by value (``values`` is a read-only mapping of tuples, in ``FIELDS`` order), so
    caches and compiled programs key on the space itself: equal spaces share one compiled evaluator.
    """

    values: Mapping[str, tuple[int, ...]]

    def __post_init__(self):
        missing = [f for f in FIELDS if f not in self.values]
        if missing:
            raise ValueError(f"design space lacks fields {missing}")
        unknown = sorted(set(self.values) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown hardware field(s) {unknown} in a design space; fields are {list(FIELDS)}")
        frozen = {name: _field_values(name, self.values[name]) for name in FIELDS}
        object.__setattr__(self, "values", types.MappingProxyType(frozen))

    def __hash__(self) -> int:
        return hash(tuple(self.values.items()))

    def __eq__(self, other) -> bool:
        return isinstance(other, DesignSpace) and tuple(self.values.items()) == tuple(other.values.items())

    def __reduce__(self):  # a read-only mapping does not pickle; the plain dict does
        return DesignSpace, (dict(self.values),)

    @property
    def size(self) -> int:
        return math.prod(len(self.values[f]) for f in FIELDS)

    @property
    def radices(self) -> tuple[int, ...]:
        return tuple(len(self.values[f]) for f in FIELDS)

    def validate(self, config: Mapping[str, float]) -> None:
        """Raises ValueError naming the first missing, unknown or out-of-set field."""
        unknown = sorted(set(config) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown hardware field(s) {unknown}; fields are {list(FIELDS)}")
        for name in FIELDS:
            if name not in config:
                raise ValueError(f"hardware field {name!r} is missing; allowed values: {list(self.values[name])}")
            value = config[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.number)
                or value not in self.values[name]
            ):
                raise ValueError(
                    f"hardware field {name!r} = {value!r} is not allowed; allowed values: {list(self.values[name])}"
                )

    def decode(self, flat_index) -> HardwareConfig:
        """Maps flat indices in [0, size) to designs (mixed radix, last field fastest). Jittable."""
        flat_index = jnp.asarray(flat_index)
        digits = {}
        for name in reversed(FIELDS):
            digits[name] = flat_index % len(self.values[name])
            flat_index = flat_index // len(self.values[name])
        return self.lookup(digits)

    def encode(self, config: Mapping[str, float]) -> int:
        """Inverse of :meth:`decode` for one validated design."""
        self.validate(config)
        index = 0
        for name in FIELDS:
            index = index * len(self.values[name]) + self.values[name].index(config[name])
        return index

    def from_choice_indices(self, choice) -> HardwareConfig:
        """Designs from per-field choice indices, shape (..., 9) (as a genetic algorithm encodes them).
        Jittable; indices must lie in ``[0, radices[i])`` (out-of-range ones raise on the host, are clamped
        under jit)."""
        choice = choice if isinstance(choice, jax.Array) else np.asarray(choice)
        return self.lookup({name: choice[..., i] for i, name in enumerate(FIELDS)})

    def lookup(self, digits: Mapping[str, jax.Array]) -> HardwareConfig:
        """The design whose field ``name`` takes allowed value number ``digits[name]`` (the one decoding
        from choices to values, float32 leaves). Jittable; host (NumPy) digits are looked up on the host."""
        on_host = not any(isinstance(d, jax.Array) for d in digits.values())
        xp = np if on_host else jnp
        return HardwareConfig(
            **{name: jnp.asarray(xp.asarray(self.values[name], xp.float32)[digits[name]]) for name in FIELDS}
        )


_BUS = (512, 1024, 2048, 4096)
PAPER_SPACE = DesignSpace(
    {
        "c_v": (1, 2, 3, 4, 5),
        "c_h": (1, 2, 3, 4, 5),
        "t_v_act": (2, 3, 4, 5, 6, 7, 8),
        "t_h_act": (2, 3, 4, 5, 6, 7, 8),
        "m": (1, 2, 3, 4, 5, 6, 7, 8),
        "pes_per_tile": (4, 9, 16, 25, 36),
        "bus_inter_cluster": _BUS,
        "bus_inter_tile": _BUS,
        "bus_intra_tile": _BUS,
    }
)
"""EdgeCIM's design space (docs/edgecim.md): exactly 3,136,000 designs."""

EDGECIM_ALPHA05_DESIGN = {
    "c_v": 2,
    "c_h": 3,
    "t_v_act": 4,
    "t_h_act": 2,
    "m": 1,
    "pes_per_tile": 4,
    "bus_inter_cluster": 4096,
    "bus_inter_tile": 4096,
    "bus_intra_tile": 4096,
}
"""The paper's alpha = 0.5 optimum for LLaMA3.2-3B INT8 (a calibration point; area about 11.83 mm^2)."""
