"""The discrete operations of the cost model, swappable for smooth stand-ins.

The cost model is written once against an :class:`Ops` table. ``EXACT`` gives the exact model;
the relaxed model (search) passes smooth versions under a temperature.
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


def _as_int(x):
    return jnp.round(jnp.asarray(x)).astype(jnp.int64 if jnp.asarray(x).dtype == jnp.float64 else jnp.int32)


def _exact_ceil_div(a, b):
    """Integer ceil-division of whole numbers (held as floats), exact where a float quotient would round."""
    a_i, b_i = _as_int(a), _as_int(b)
    return (-(-a_i // b_i)).astype(jnp.result_type(a, b, jnp.float32))


def _exact_floor_div(a, b):
    a_i, b_i = _as_int(a), _as_int(b)
    return (a_i // b_i).astype(jnp.result_type(a, b, jnp.float32))


def _exact_log2_ceil(n):
    # Tree depth for n whole inputs; the small offset absorbs rounding of log2 at powers of two.
    return jnp.ceil(jnp.log2(jnp.maximum(n, 1.0)) - 1e-4)


EXACT = Ops(
    ceil_div=_exact_ceil_div,
    floor_div=_exact_floor_div,
    maximum=jnp.maximum,
    log2_ceil=_exact_log2_ceil,
)
