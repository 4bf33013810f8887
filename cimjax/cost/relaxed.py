"""Smooth stand-ins for the cost model's discrete operations, under a temperature.

:func:`relaxed_ops` returns an :class:`~cimjax.ops.Ops` table; passing it to
:func:`cimjax.cost.model.evaluate` gives the relaxed model, which gradient search differentiates with
respect to continuous hardware leaves. One dimensionless temperature ``tau`` drives every operation:

* ``ceil_div(a, b)``: ``q + h(f)`` with ``q = floor(a / b)``, ``f = (a - q b) / b`` the fractional part
  (from the exact remainder) and ``h(f) = expm1(-f / tau) / expm1(-1 / tau)``: a concave ramp from
  ``h(0) = 0`` to ``h(1) = 1``, so the staircase is continuous. For large ``tau`` it tends to ``a / b``,
  for small ``tau`` to ``ceil(a / b)``.
* ``floor_div(a, b) = -ceil_div(-a, b)``.
* ``log2_ceil(n)``: the same staircase on ``log2(n) - 1e-4`` (the offset absorbs rounding of log2 at
  powers of two, as in the exact op).
* ``maximum(a, b)`` of positive values: ``(a + b)/2 * (1 + s(r))`` with the relative difference
  ``r = (a - b)/(a + b)`` and ``s`` the absolute value smoothed inside ``|r| < tau`` by the even quartic
  ``3 r^2 / (2 tau) - r^4 / (2 tau^3)`` (value and slope match ``|r|`` at ``|r| = tau``, so the max is C1).
  Scale-free (seconds and bits alike) and free of transcendental functions.

Every op has a closed-form derivative (``jax.custom_jvp``), which keeps the gradient's program small.
There is no gradient with respect to the temperature.

What "equals the exact model" means here, for whole-number arguments (every valid discrete design with
whole bit widths):

* ``ceil_div``/``floor_div`` are exact, at every temperature, when ``b`` divides ``a`` (``f = 0``);
  otherwise ``f >= 1 / b`` and the error is below ``exp(-1 / (b tau)) / (1 - exp(-1 / tau))``.
* ``log2_ceil`` is exact up to ``exp(-(1 - 1e-4) / tau)`` at powers of two and up to ``exp(-g / tau)``
  elsewhere, with ``g = log2(n) - floor(log2 n) - 1e-4`` (``g >= 0.17`` for ``n <= 64``).
* ``maximum`` is exact when its arguments are equal or ``|r| >= tau`` (they differ by more than a factor
  ``(1 + tau)/(1 - tau)``); in between it is below the maximum by less than ``0.09 tau (a + b)``.

So the relaxed model converges to the exact one as ``tau -> 0`` at every valid design, and a temperature
below ``1 / (20 b_max)`` (``b_max`` the largest divisor, about 6e4 in the paper's space) reproduces it
to float32 precision. Gradients are finite for every ``tau > 0`` and positive arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cimjax.ops import Ops

_LN2 = 0.6931471805599453
_LOG2_OFFSET = 1e-4  # as in the exact log2_ceil: log2 of a power of two may round just above the integer


def _check_temperature(temperature) -> None:
    if isinstance(temperature, jax.core.Tracer):
        return
    value = jnp.asarray(temperature)
    if value.ndim or not bool(jnp.isfinite(value)) or float(value) <= 0.0:
        raise ValueError(f"temperature = {temperature!r} must be a finite scalar in the range (0, inf)")


def _ceil_parts(a, b, inv_tau):
    """Quotient q = floor(a/b) (exact for whole numbers), 1/b and the ramp's expm1 at the fractional part."""
    inv_b = 1.0 / b
    q = jnp.floor(a * inv_b)  # then corrected where the rounded quotient crossed an integer
    q = jnp.where(q * b > a, q - 1.0, q)
    q = jnp.where((q + 1.0) * b <= a, q + 1.0, q)
    f = (a - q * b) * inv_b  # in [0, 1) from the exact remainder; f = 0 exactly when b divides a
    return q, f, inv_b, jnp.expm1(-f * inv_tau)


@jax.custom_jvp
def _ceil_div(a, b, inv_tau, inv_norm):
    q, _, _, ramp = _ceil_parts(a, b, inv_tau)
    return q + ramp * inv_norm


@_ceil_div.defjvp
def _ceil_div_jvp(primals, tangents):
    # y = q + h(f), h'(f) = -inv_tau * inv_norm * exp(-f inv_tau), df = (da - (q + f) db) / b.
    a, b, inv_tau, inv_norm = primals
    da, db, _, _ = tangents
    q, f, inv_b, ramp = _ceil_parts(a, b, inv_tau)
    slope = -inv_tau * inv_norm * (ramp + 1.0) * inv_b
    return q + ramp * inv_norm, slope * (da - (q + f) * db)


def _log2_parts(n, inv_tau):
    x = jnp.log2(jnp.maximum(n, 1.0)) - _LOG2_OFFSET
    q = jnp.floor(x)
    return q, jnp.expm1(-(x - q) * inv_tau)


@jax.custom_jvp
def _log2_ceil(n, inv_tau, inv_norm):
    q, ramp = _log2_parts(n, inv_tau)
    return q + ramp * inv_norm


@_log2_ceil.defjvp
def _log2_ceil_jvp(primals, tangents):
    n, inv_tau, inv_norm = primals
    dn, _, _ = tangents
    q, ramp = _log2_parts(n, inv_tau)
    dx = jnp.where(n > 1.0, dn / (n * _LN2), 0.0)
    return q + ramp * inv_norm, -inv_tau * inv_norm * (ramp + 1.0) * dx


def _max_parts(a, b, tau, inv_tau):
    """m = (a + b)/2 * (1 + s(r)) with r = (a - b)/(a + b) and s the smoothed |r|, written as
    max(a, b) + (a + b)/2 * (s(c) - |c|) with c = r clipped to [-tau, tau] (s(c) - |c| vanishes at the clip
    bounds, so max(a, b) comes out bit-exactly for |r| >= tau). Also returns c, c^2/tau and 1/(a + b)."""
    total = a + b
    inv_total = 1.0 / total
    c = jnp.clip((a - b) * inv_total, -tau, tau)
    c2 = c * c * inv_tau
    m = jnp.maximum(a, b) + 0.5 * total * (1.5 * c2 - 0.5 * c2 * c2 * inv_tau - jnp.abs(c))
    return m, c, c2, inv_total


@jax.custom_jvp
def _maximum(a, b, tau, inv_tau):
    return _max_parts(a, b, tau, inv_tau)[0]


@_maximum.defjvp
def _maximum_jvp(primals, tangents):
    # dm/da = m/(a + b) + s'(c) b/(a + b), dm/db = m/(a + b) - s'(c) a/(a + b); s'(c) = +-1 at c = +-tau,
    # so the clipped c also gives the exact slopes (1 and 0) outside the band.
    a, b, tau, inv_tau = primals
    da, db, _, _ = tangents
    m, c, c2, inv_total = _max_parts(a, b, tau, inv_tau)
    slope = c * inv_tau * (3.0 - 2.0 * c2 * inv_tau)
    return m, inv_total * (m * (da + db) + slope * (b * da - a * db))


def relaxed_ops(temperature) -> Ops:
    """Smooth ceil/floor division, maximum and ceil(log2) under ``temperature`` (see the module docstring).

    Args:
      temperature: positive scalar (may be traced, so one compiled step serves an annealing schedule);
        about 1 gives a strongly smoothed model, 1e-6 the exact model at valid designs.

    Returns:
      An :class:`Ops` table for :func:`cimjax.cost.model.evaluate`.
    """
    _check_temperature(temperature)
    tau = jax.lax.stop_gradient(jnp.asarray(temperature, jnp.float32))
    inv_tau = 1.0 / tau
    inv_norm = 1.0 / jnp.expm1(-inv_tau)

    def as_float(x):
        return jnp.asarray(x, jnp.float32)

    def ceil_div(a, b):
        return _ceil_div(as_float(a), as_float(b), inv_tau, inv_norm)

    def floor_div(a, b):
        return -_ceil_div(-as_float(a), as_float(b), inv_tau, inv_norm)

    def log2_ceil(n):
        return _log2_ceil(as_float(n), inv_tau, inv_norm)

    def maximum(a, b):
        return _maximum(as_float(a), as_float(b), tau, inv_tau)

    return Ops(ceil_div=ceil_div, floor_div=floor_div, maximum=maximum, log2_ceil=log2_ceil)
