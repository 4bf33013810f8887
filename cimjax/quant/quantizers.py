"""Uniform fake quantisation (docs/quantisation.md formulas) and the hooks that apply it to the decoder LM per layer.

Symmetric: ``q = clamp(round(x / S), -(2^(b-1) - 1), 2^(b-1) - 1)``, ``S = max|x| / (2^(b-1) - 1)``.
Asymmetric: ``q = clamp(round(x / S) + Z, 0, 2^b - 1)``, ``S = (max - min) / (2^b - 1)``,
``Z = round(-min / S)``, dequantised as ``S (q - Z)``. Rounding is half to even.

Scales are taken per tensor, per row of the last axis (``channel`` for an ``(out, in)`` weight: one scale
per output channel; ``token`` for an activation: one scale per token), or per group of ``group_size``
consecutive entries of the last axis. Bits may be traced, non-integer values (the relaxed model);
``bits >= FULL_PRECISION_BITS`` leaves the tensor unquantised.

Clipping (``clip``): ``max`` uses the scale above; ``mse`` shrinks it, per group, to ``r S`` with the ratio
``r`` of :data:`CLIP_RATIOS` (1.00, 0.99, ..., 0.21) that minimises the group's squared error
``||Q(x) - x||^2`` (ties keep the larger ``r``, so it never does worse than ``max``). Entries beyond the
shrunk range saturate at the top code; the zero point is unchanged (``round(-r min / (r S))``). The search
is not differentiated (the chosen scale is a constant to the gradient). Codes, bit width and dequantisation
are those of ``max``: only the scale value differs (docs/quantisation.md).

GPTQ (``QuantScheme(gptq=True)``, :mod:`cimjax.quant.gptq`): the weights' codes are chosen with error feedback
on calibration inputs, offline, at every width of :data:`GPTQ_WIDTHS`; :class:`QuantHooks` then selects the
copy of the tensor's width from the model (other widths: round to nearest, as without GPTQ).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.lm.model import Hooks
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS, Precision

GRANULARITIES = ("tensor", "channel", "token", "group")
CLIPS = ("max", "mse")
CLIP_RATIOS = tuple(1.0 - k / 100 for k in range(80))
"""Scale ratios the ``mse`` clip search tries: GPTQ's grid (Frantar et al., ICLR 2023, reference code:
``grid=100``, ``maxshrink=0.8``)."""
# float32 carries a 24-bit significand: at or above this many bits a tensor is left as it is.
FULL_PRECISION_BITS = 24.0
GPTQ_WIDTHS = tuple(range(2, 9))
"""The integer weight widths whose GPTQ copies are precomputed (every width the measurements give weights)."""


@dataclasses.dataclass(frozen=True)
class TensorScheme:
    """How one kind of tensor is quantised: signedness, scale granularity and clipping of the scale."""

    symmetric: bool = True
    granularity: str = "channel"
    group_size: int = 128
    clip: str = "max"

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity={self.granularity!r} is not known; allowed: {GRANULARITIES}")
        if self.clip not in CLIPS:
            raise ValueError(f"clip={self.clip!r} is not known; allowed: {CLIPS}")
        if not isinstance(self.symmetric, bool):
            raise ValueError(f"symmetric={self.symmetric!r} must be true or false")
        if not isinstance(self.group_size, int) or isinstance(self.group_size, bool) or self.group_size < 1:
            raise ValueError(f"group_size={self.group_size!r} must be a positive integer")


@dataclasses.dataclass(frozen=True)
class QuantScheme:
    """The scheme of each tensor kind of the decoder.

    Defaults: weights symmetric per output channel, matmul inputs symmetric per token, attention
    probabilities (non-negative) asymmetric per query row, K/V cache entries symmetric per token and head.
    ``smooth``: None, or the migration strength ``a`` in [0, 1] of activation smoothing
    (:mod:`cimjax.quant.smoothing`), a transformation of the checkpoint's weights computed once from the
    calibration windows; the hooks below quantise whatever model they are given, so the smoothing is applied
    by whoever loads the weights (:meth:`cimjax.quant.measured.Measured.model`).
    ``gptq``: weights quantised by GPTQ (:mod:`cimjax.quant.gptq`) with ``weight``'s scales instead of
    rounded to nearest; the copies are computed once per checkpoint from the calibration windows and held by
    the model, which whoever loads the weights prepares likewise. ``gptq_act_order``: GPTQ quantises the
    input columns in descending ``diag(H)`` order (the reference's act-order), else in index order; it does
    nothing without ``gptq``.
    """

    weight: TensorScheme = TensorScheme(True, "channel")
    act: TensorScheme = TensorScheme(True, "token")
    probs: TensorScheme = TensorScheme(False, "token")
    kv: TensorScheme = TensorScheme(True, "token")
    smooth: float | None = None
    gptq: bool = False
    gptq_act_order: bool = True

    def __post_init__(self):
        number = isinstance(self.smooth, (int, float)) and not isinstance(self.smooth, bool)
        if self.smooth is not None and not (number and 0.0 <= self.smooth <= 1.0):
            raise ValueError(f"smooth={self.smooth!r} must be None or a number in [0, 1]")
        for field in ("gptq", "gptq_act_order"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field}={getattr(self, field)!r} must be true or false")

    def of(self, kind: str, op: str) -> TensorScheme:
        """The scheme of a quantisation point: kind ``weight``/``act``/``kv``, op of MATMUL_OPS or k/v."""
        if kind == "act":
            return self.probs if op == "pv" else self.act
        return getattr(self, kind)


DEFAULT_SCHEME = QuantScheme()
CLIPPED_SCHEME = QuantScheme(weight=TensorScheme(True, "channel", clip="mse"))
""":data:`DEFAULT_SCHEME` with MSE-clipped weight scales (activations and KV entries are quantised at run
time, where a per-token search is not what an accelerator does)."""


def levels(bits, symmetric: bool) -> jax.Array:
    """The largest integer code: ``2^(b-1) - 1`` (symmetric, at least 1) or ``2^b - 1`` (asymmetric)."""
    bits = jnp.asarray(bits, jnp.float32)
    if symmetric:
        return jnp.maximum(2.0 ** (bits - 1.0) - 1.0, 1.0)
    return 2.0**bits - 1.0


def _check_bits(bits, symmetric: bool) -> None:
    """Boundary check for concrete bit widths (traced values are not checked)."""
    if isinstance(bits, jax.core.Tracer):
        return
    low = 2 if symmetric else 1
    b = np.asarray(bits, dtype=np.float64)
    if b.size and (not np.all(np.isfinite(b)) or b.min() < low):
        kind = "symmetric" if symmetric else "asymmetric"
        raise ValueError(f"bits={bits!r}: {kind} quantisation needs at least {low} bits")


def _grouped(x: jax.Array, scheme: TensorScheme) -> jax.Array:
    """``x`` reshaped so that each scale covers the last axis (or everything for per-tensor scales)."""
    if scheme.granularity == "tensor":
        return x.reshape(1, -1)
    if scheme.granularity == "group":
        n = x.shape[-1]
        if n % scheme.group_size:
            raise ValueError(f"group_size={scheme.group_size} does not divide the last axis ({n}) of shape {x.shape}")
        return x.reshape(*x.shape[:-1], n // scheme.group_size, scheme.group_size)
    return x


def _scale_zero(g: jax.Array, bits, symmetric: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scale, zero point and top code for the groups of ``g`` (the last axis shares one scale)."""
    qmax = levels(bits, symmetric)
    if symmetric:
        scale = jnp.max(jnp.abs(g), axis=-1, keepdims=True) / qmax
        return jnp.where(scale > 0, scale, 1.0), jnp.zeros_like(scale), qmax
    lo, hi = jnp.min(g, axis=-1, keepdims=True), jnp.max(g, axis=-1, keepdims=True)
    scale = (hi - lo) / qmax
    scale = jnp.where(scale > 0, scale, 1.0)
    return scale, jnp.round(-lo / scale), qmax


def _dequantised(g: jax.Array, scale: jax.Array, zero: jax.Array, lower, qmax) -> jax.Array:
    """``S (clamp(round(g / S) + Z, lower, qmax) - Z)``."""
    return scale * (jnp.clip(jnp.round(g / scale) + zero, lower, qmax) - zero)


def _mse_scale(g: jax.Array, scale: jax.Array, zero: jax.Array, lower, qmax) -> jax.Array:
    """Per group, the scale ``r S`` (``r`` of :data:`CLIP_RATIOS`) with the least squared error; a strictly
    smaller error is needed to leave a larger ``r``. A scan over the ratios: memory stays that of ``g``."""

    def error(s):
        return jnp.sum((_dequantised(g, s, zero, lower, qmax) - g) ** 2, axis=-1, keepdims=True)

    def step(carry, ratio):
        best_err, best_scale = carry
        err = error(scale * ratio)
        better = err < best_err
        return (jnp.where(better, err, best_err), jnp.where(better, scale * ratio, best_scale)), None

    (_, best), _ = jax.lax.scan(step, (error(scale), scale), jnp.asarray(CLIP_RATIOS[1:], jnp.float32))
    return jax.lax.stop_gradient(best)


def fake_quant(
    x: jax.Array,
    bits,
    *,
    symmetric: bool = True,
    granularity: str = "channel",
    group_size: int = 128,
    clip: str = "max",
    ste: bool = True,
) -> jax.Array:
    """Quantise and dequantise ``x`` to ``bits`` bits (see the module docstring for the formulas).

    Args:
      x: the tensor; ``channel``/``token``/``group`` scales run along its last axis.
      bits: a scalar, possibly traced and non-integer. ``>= FULL_PRECISION_BITS`` returns ``x``.
      symmetric: signed codes around zero, or codes ``0..2^b-1`` with a zero point.
      granularity: ``tensor``, ``channel``, ``token`` or ``group``.
      group_size: entries per scale for ``group``.
      clip: ``max`` (scale from the range) or ``mse`` (the range shrunk per group to the least squared error).
      ste: straight-through gradient (identity in ``x``) instead of the zero gradient of rounding.

    Returns:
      The dequantised tensor, same shape and dtype as ``x``.
    """
    scheme = TensorScheme(symmetric, granularity, group_size, clip)
    _check_bits(bits, symmetric)
    g = _grouped(x.astype(jnp.float32), scheme)
    scale, zero, lower, qmax = _grid(g, bits, scheme)
    y = _dequantised(g, scale, zero, lower, qmax).reshape(x.shape).astype(x.dtype)
    y = jnp.where(jnp.asarray(bits) >= FULL_PRECISION_BITS, x, y)
    return x + jax.lax.stop_gradient(y - x) if ste else y


def _grid(g: jax.Array, bits, scheme: TensorScheme) -> tuple:
    """Scale and zero point per group of ``g`` (clipped as ``scheme`` says), lowest and top code."""
    scale, zero, qmax = _scale_zero(g, bits, scheme.symmetric)
    lower = -qmax if scheme.symmetric else 0.0  # symmetric codes have zero point 0
    if scheme.clip == "mse":
        scale = _mse_scale(g, scale, zero, lower, qmax)
    return scale, zero, lower, qmax


_jit_grid = jax.jit(_grid, static_argnums=2)


def entry_grid(x: jax.Array, bits: int, scheme: TensorScheme) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The quantisation grid :func:`fake_quant` uses for ``x`` at ``bits``: scale and zero point of each entry
    (shape of ``x``, float64), lowest and top code; ``x``'s codes are ``clamp(round(x / S) + Z, lower, top)``.
    For quantisers that choose codes themselves (GPTQ) on the same grid."""
    _check_bits(bits, scheme.symmetric)
    g = _grouped(jnp.asarray(x, jnp.float32), scheme)
    scale, zero, lower, qmax = _jit_grid(g, jnp.float32(bits), scheme)  # one compilation per shape, not per call
    scale, zero = (np.broadcast_to(np.asarray(a, np.float64), g.shape).reshape(x.shape) for a in (scale, zero))
    return scale, zero, float(lower), float(qmax)


def fake_quant_scheme(x: jax.Array, bits, scheme: TensorScheme, ste: bool = True) -> jax.Array:
    """:func:`fake_quant` with the settings of ``scheme``."""
    return fake_quant(
        x,
        bits,
        symmetric=scheme.symmetric,
        granularity=scheme.granularity,
        group_size=scheme.group_size,
        clip=scheme.clip,
        ste=ste,
    )


def noise_constant(x: jax.Array, scheme: TensorScheme) -> jax.Array:
    """``C`` of the uniform-noise model: expected squared error of quantising ``x`` is ``C / levels(b)^2``.

    Each group of ``n`` entries with scale ``S = range / levels(b)`` contributes ``n S^2 / 12``, so
    ``C = sum_groups n range^2 / 12`` with range ``max|x|`` (symmetric) or ``max - min`` (asymmetric).
    """
    g = _grouped(x.astype(jnp.float32), scheme)
    r = jnp.max(jnp.abs(g), axis=-1) if scheme.symmetric else jnp.max(g, axis=-1) - jnp.min(g, axis=-1)
    return g.shape[-1] * jnp.sum(r * r) / 12.0


class QuantHooks(Hooks):
    """Fake-quantises every matmul operand and KV entry of the decoder with the bits of a :class:`Precision`.

    Weight ``op`` of layer ``l`` uses ``weight_bits[l, LINEAR_OPS.index(op)]``, matmul input ``op`` uses
    ``act_bits[l, MATMUL_OPS.index(op)]`` and K/V entries ``kv_bits[l]``. The embedding and LM head stay
    at full precision (the Precision layout has no entry for them).
    """

    def __init__(self, precision: Precision, scheme: QuantScheme = DEFAULT_SCHEME, ste: bool = True):
        self.precision, self.scheme, self.ste = precision, scheme, ste

    def _weight_bits(self, layer, op):
        return self.precision.weight_bits[layer, LINEAR_OPS.index(op)]

    def weight(self, layer, op, w):
        if self.scheme.gptq:
            raise ValueError(
                f"QuantScheme(gptq=True) needs the model's GPTQ weights (layer {layer}, {op}): prepare the model "
                "with cimjax.quant.gptq.prepare (Measured.model does)"
            )
        return fake_quant_scheme(w, self._weight_bits(layer, op), self.scheme.weight, self.ste)

    def stored_weight(self, layer, op, w, stored):
        """GPTQ's copy of the weight's width (``stored[b - 2]``) where the width is an integer of
        :data:`GPTQ_WIDTHS`; any other width (non-integer relaxed bits, 9..16) falls back to round to nearest
        with the scheme's scale; full precision at :data:`FULL_PRECISION_BITS`. Without ``gptq`` the copies are
        ignored."""
        if not self.scheme.gptq:
            return self.weight(layer, op, w)
        bits = jnp.asarray(self._weight_bits(layer, op), jnp.float32)
        lo, hi = GPTQ_WIDTHS[0], GPTQ_WIDTHS[-1]
        index = jnp.clip(jnp.round(bits) - lo, 0, hi - lo).astype(jnp.int32)
        held = (bits == jnp.round(bits)) & (bits >= lo) & (bits <= hi)
        y = jax.lax.cond(
            held, lambda: stored[index].astype(w.dtype), lambda: fake_quant_scheme(w, bits, self.scheme.weight, False)
        )
        return w + jax.lax.stop_gradient(y - w) if self.ste else y

    def act(self, layer, op, x):
        bits = self.precision.act_bits[layer, MATMUL_OPS.index(op)]
        return fake_quant_scheme(x, bits, self.scheme.of("act", op), self.ste)

    def kv(self, layer, which, x):
        return fake_quant_scheme(x, self.precision.kv_bits[layer], self.scheme.kv, self.ste)
