"""The discrete operations of the cost model, swappable for smooth stand-ins.

The cost model (the macro geometry of ``hardware/``, the partitioning and pipeline of ``mapping/``, the
operators of ``cost/``) is written once against an :class:`Ops` table. ``EXACT`` gives the exact model;
the relaxed model (``cimjax.cost.relaxed``, search) passes smooth versions under a temperature. This
module sits below all of them and imports only JAX.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import jax.numpy as jnp


class _Binary(Protocol):
    def __call__(self, a, b): ...


class _Unary(Protocol):
    def __call__(self, a): ...


class Ops(NamedTuple):
    """ceil_div(a, b) = ceil(a / b); floor_div(a, b) = floor(a / b); maximum; log2_ceil(n) = ceil(log2 n)."""

    ceil_div: _Binary
    floor_div: _Binary
    maximum: _Binary
    log2_ceil: _Unary


def _exact_ceil_div(a, b):
    """ceil(a / b) for whole numbers held as floats, corrected where the float quotient rounds across
    an integer (exact while a and b times the quotient stay below 2^24 in float32)."""
    q = jnp.ceil(a / b)
    q = jnp.where((q - 1.0) * b >= a, q - 1.0, q)
    return jnp.where(q * b < a, q + 1.0, q)


def _exact_floor_div(a, b):
    """floor(a / b) for whole numbers held as floats, with the same correction."""
    q = jnp.floor(a / b)
    q = jnp.where(q * b > a, q - 1.0, q)
    return jnp.where((q + 1.0) * b <= a, q + 1.0, q)


def _exact_log2_ceil(n):
    # Tree depth for n whole inputs; the small offset absorbs rounding of log2 at powers of two.
    return jnp.ceil(jnp.log2(jnp.maximum(n, 1.0)) - 1e-4)


EXACT = Ops(
    ceil_div=_exact_ceil_div,
    floor_div=_exact_floor_div,
    maximum=jnp.maximum,
    log2_ceil=_exact_log2_ceil,
)
