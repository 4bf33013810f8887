"""Smooth stand-ins for the cost model's discrete operations, under a temperature.

:func:`relaxed_ops` returns an :class:`~cimjax.cost.ops.Ops` table; passing it to
:func:`cimjax.cost.model.evaluate` gives the relaxed model, which gradient search differentiates with
respect to continuous hardware leaves. One dimensionless temperature ``tau`` drives every operation:

* ``ceil_div(a, b)``: ``q + h(f)`` with ``q = floor(a / b)``, ``f = (a - q b) / b`` the fractional part
  (from the exact remainder) and ``h(f) = expm1(-f / tau) / expm1(-1 / tau)``: a concave ramp from
  ``h(0) = 0`` to ``h(1) = 1``, so the staircase is continuous. For large ``tau`` it tends to ``a / b``,
  for small ``tau`` to ``ceil(a / b)``.
* ``floor_div(a, b) = -ceil_div(-a, b)``.
* ``log2_ceil(n)``: the same staircase on ``log2(n) - 1e-4`` (the offset absorbs rounding of log2 at
  powers of two, as in the exact op).
* ``maximum(a, b)`` of positive values: in log space, ``log m = (la + lb) / 2 + s(la - lb) / 2`` where
  ``s`` is ``|d|`` smoothed inside ``|d| < tau`` by the even quartic ``3 d^2 / (2 tau) - d^4 / (2 tau^3)``
  (value and slope match ``|d|`` at ``|d| = tau``, so ``m`` is C1). Scale-free: seconds and bits alike.

What "equals the exact model" means here, for whole-number arguments (every valid discrete design with
whole bit widths):

* ``ceil_div``/``floor_div`` are exact, at every temperature, when ``b`` divides ``a`` (``f = 0``);
  otherwise ``f >= 1 / b`` and the error is below ``exp(-1 / (b tau)) / (1 - exp(-1 / tau))``.
* ``log2_ceil`` is exact up to ``exp(-(1 - 1e-4) / tau)`` at powers of two and up to ``exp(-g / tau)``
  elsewhere, with ``g = log2(n) - floor(log2 n) - 1e-4`` (``g >= 0.17`` for ``n <= 64``).
* ``maximum`` is exact when its arguments are equal or differ by more than a factor ``exp(tau)``; in
  between it is below the maximum by a factor of at most ``exp(min(|d| / 2, 0.09 tau))``.

So the relaxed model converges to the exact one as ``tau -> 0`` at every valid design, and a temperature
below ``1 / (20 b_max)`` (``b_max`` the largest divisor, about 6e4 in the paper's space) reproduces it
to float32 precision. Gradients are finite for every ``tau > 0`` and positive arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cimjax.cost.ops import EXACT, Ops

_LOG2_OFFSET = 1e-4  # as in the exact log2_ceil: log2 of a power of two may round just above the integer
_TINY = 1e-30  # keeps log() finite for a zero argument of maximum


def _check_temperature(temperature) -> None:
    if isinstance(temperature, jax.core.Tracer):
        return
    value = jnp.asarray(temperature)
    if value.ndim or not bool(jnp.isfinite(value)) or float(value) <= 0.0:
        raise ValueError(f"temperature = {temperature!r} must be a finite scalar in the range (0, inf)")


def _ramp(f, tau):
    """h(f) = expm1(-f/tau) / expm1(-1/tau): 0 at f = 0, 1 at f = 1, a step at f = 0+ as tau -> 0."""
    return jnp.expm1(-f / tau) / jnp.expm1(-1.0 / tau)


def relaxed_ops(temperature) -> Ops:
    """Smooth ceil/floor division, maximum and ceil(log2) under ``temperature`` (see the module docstring).

    Args:
      temperature: positive scalar (may be traced, so one compiled step serves an annealing schedule);
        about 1 gives a strongly smoothed model, 1e-6 the exact model at valid designs.

    Returns:
      An :class:`Ops` table for :func:`cimjax.cost.model.evaluate`.
    """
    _check_temperature(temperature)
    tau = jnp.asarray(temperature, jnp.float32)

    def ceil_div(a, b):
        a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
        q = jax.lax.stop_gradient(EXACT.floor_div(a, b))
        f = jnp.clip((a - q * b) / b, 0.0, 1.0)  # exact remainder: f = 0 exactly when b divides a
        return q + _ramp(f, tau)

    def floor_div(a, b):
        return -ceil_div(-jnp.asarray(a, jnp.float32), b)

    def log2_ceil(n):
        x = jnp.log2(jnp.maximum(n, 1.0)) - _LOG2_OFFSET
        q = jax.lax.stop_gradient(jnp.floor(x))
        return q + _ramp(jnp.clip(x - q, 0.0, 1.0), tau)

    def maximum(a, b):
        la = jnp.log(jnp.maximum(a, _TINY))
        lb = jnp.log(jnp.maximum(b, _TINY))
        d = la - lb
        inner = jnp.clip(d, -tau, tau)  # the quartic only ever sees |d| <= tau
        smooth_abs = jnp.where(jnp.abs(d) >= tau, jnp.abs(d), 1.5 * inner**2 / tau - 0.5 * inner**4 / tau**3)
        # = exp((la + lb)/2 + smooth_abs/2), written so it returns max(a, b) bit-exactly where they agree.
        return jnp.maximum(a, b) * jnp.exp(0.5 * (smooth_abs - jnp.abs(d)))

    return Ops(ceil_div=ceil_div, floor_div=floor_div, maximum=maximum, log2_ceil=log2_ceil)
