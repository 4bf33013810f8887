"""Per-layer, per-tensor sensitivities of the LM loss to quantisation noise, estimated in JAX.

A *point* is one quantised tensor of one layer, a column of the ``(L, 17)`` bit table
(:data:`cimjax.workload.precision.POINTS`): the 7 linear weights, the 9 matmul inputs, then the KV cache
(K and V together). For each
point this module measures, on a calibration batch at full precision:

* ``hessian``: mean diagonal of the Hessian of the mean token loss with respect to the tensor,
  ``tr(H_t) / n_t`` by Hutchinson (``E[z^T H z]``, Rademacher ``z``, ``jax.jvp`` over ``jax.grad``). One
  Hessian-vector product serves all points at once: cross-point terms have zero mean.
* ``fisher``: the same from the diagonal empirical Fisher, ``sum_b g_b^2 / (B T)`` with ``g_b`` the
  gradient of sequence ``b``'s summed token loss.
* ``outmse``: output MSE per unit input noise of the matmul that consumes the tensor,
  ``E||J_t z||^2 / n_t`` with ``J_t`` the *local* Jacobian (operands are ``stop_gradient``-ed, so upstream
  noise does not reach it) -- ``tr(X X^T)``-style statistics taken from the calibration activations.
* ``noise_c``: ``C_t`` of the uniform-noise model, error energy ``C_t / levels(b)^2`` (``Delta^2 / 12``).
* ``err``: measured error energy ``||Q_b(x) - x||^2`` of the real tensor at ``b = 2..8``.
* ``loss``: measured loss increase (nats/token) when only that point is quantised, at ``b = 2..8``.
* ``kl``: the same quantisation's mean per-token KL divergence from the full-precision model.

Activations are perturbed where they enter their matmul; attention-probability noise is kept on the
causal (visible) entries, the only ones quantisation changes. :func:`log_interp` interpolates the curves
smoothly and monotonically in ``log`` space between integer bits.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.lm.model import Builder, DecoderLM, Hooks, functional, token_nll
from cimjax.quant.quantizers import (
    DEFAULT_SCHEME,
    FULL_PRECISION_BITS,
    QuantHooks,
    QuantScheme,
    fake_quant_scheme,
    noise_constant,
)
from cimjax.workload.precision import LINEAR_OPS, MATMUL_OPS, N_POINTS, POINT_NAMES, POINTS, Precision

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each forward pass of a measurement (for progress bars)."""
BIT_GRID = np.arange(2, 9)  # integer bits at which the error and loss curves are measured


def _key(layer: int, kind: str, op: str) -> str:
    return f"{layer:03d}.{kind}.{op}"


def _column(kind: str, op: str) -> int:
    """Column of a hook point; K and V entries both belong to the ``kv`` column."""
    if kind == "weight":
        return LINEAR_OPS.index(op)
    if kind == "act":
        return len(LINEAR_OPS) + MATMUL_OPS.index(op)
    return N_POINTS - 1


def _split_key(key: str) -> tuple[int, int]:
    layer, kind, op = key.split(".")
    return int(layer), _column(kind, op)


class _Collect(Hooks):
    """Records every operand (and, if asked, every matmul output) under its point key."""

    def __init__(self):
        self.tensors: dict[str, jax.Array] = {}

    def weight(self, layer, op, w):
        self.tensors[_key(layer, "weight", op)] = w
        return w

    def act(self, layer, op, x):
        self.tensors[_key(layer, "act", op)] = x
        return x

    def kv(self, layer, which, x):
        self.tensors[_key(layer, "kv", which)] = x
        return x


class PerturbHooks(Hooks):
    """Adds ``eps[key]`` to each operand; with ``local`` the operand is ``stop_gradient``-ed first.

    Attention-probability perturbations are applied on visible (non-zero) entries only. Matmul outputs are
    recorded in ``outputs`` (for the local output-MSE estimate).
    """

    def __init__(self, eps: dict[str, jax.Array], local: bool = False):
        self.eps, self.local = eps, local
        self.outputs: dict[str, jax.Array] = {}

    def _add(self, key, x):
        base = jax.lax.stop_gradient(x) if self.local else x
        eps = self.eps[key]
        if key.endswith("act.pv"):
            eps = jnp.where(x > 0, eps, 0.0)
        return base + eps

    def weight(self, layer, op, w):
        return self._add(_key(layer, "weight", op), w)

    def act(self, layer, op, x):
        return self._add(_key(layer, "act", op), x)

    def kv(self, layer, which, x):
        return self._add(_key(layer, "kv", which), x)

    def out(self, layer, op, y):
        self.outputs[f"{layer:03d}.{op}"] = y
        return y


@functools.partial(jax.jit, static_argnums=0)
def _collect_fn(build: Builder, params, tokens):
    hooks = _Collect()
    build(params)(tokens, hooks)
    return hooks.tensors


def _collect(model: DecoderLM, tokens: jax.Array) -> dict[str, jax.Array]:
    """Full-precision operands of every point for ``tokens`` (inputs, ``(B, T)``)."""
    return _collect_fn(*functional(model), tokens)


def _per_point(values: dict[str, jax.Array], n_layers: int) -> np.ndarray:
    """Sums per-key scalars into an ``(L, 17)`` table."""
    table = np.zeros((n_layers, N_POINTS))
    for key, v in values.items():
        table[_split_key(key)] += float(v)
    return table


def _numel(tensors: dict[str, jax.Array], n_layers: int) -> np.ndarray:
    """Element counts per point (visible entries only for attention probabilities)."""
    return _per_point({k: jnp.sum(v > 0) if k.endswith("act.pv") else v.size for k, v in tensors.items()}, n_layers)


def _rademacher(key: jax.Array, like: dict[str, jax.Array]) -> dict[str, jax.Array]:
    keys = jax.random.split(key, len(like))
    return {
        name: jax.random.rademacher(k, v.shape, jnp.float32) for k, (name, v) in zip(keys, like.items(), strict=True)
    }


@functools.partial(jax.jit, static_argnums=0)
def _hessian_quad(build: Builder, params, windows, z):
    """``sum(z_t * (H z)_t)`` per key: one Hessian-vector product (forward over reverse) for all points."""

    def loss(eps):
        return token_nll(build(params)(windows[:, :-1], PerturbHooks(eps)), windows[:, 1:])

    hz = jax.jvp(jax.grad(loss), (jax.tree.map(jnp.zeros_like, z),), (z,))[1]
    return {k: jnp.sum(z[k] * hz[k]) for k in z}


def hutchinson_hessian(model: DecoderLM, windows: jax.Array, n_samples: int, key: jax.Array) -> np.ndarray:
    """``tr(H_t)`` per point ``(L, 17)``: Hessian of the mean token loss, Hutchinson with ``n_samples``."""
    build, params = functional(model)
    zeros = jax.tree.map(jnp.zeros_like, _collect(model, windows[:, :-1]))
    total = np.zeros((model.spec.n_layers, N_POINTS))
    for k in jax.random.split(key, n_samples):
        total += _per_point(_hessian_quad(build, params, windows, _rademacher(k, zeros)), model.spec.n_layers)
    return total / n_samples


@functools.partial(jax.jit, static_argnums=0)
def _fisher_sq(build: Builder, params, eps, window):
    """Squared norms per key of the gradient of one sequence's summed token loss."""

    def seq_loss(eps):
        return token_nll(build(params)(window[None, :-1], PerturbHooks(eps)), window[None, 1:]) * (window.size - 1)

    return {k: jnp.sum(v * v) for k, v in jax.grad(seq_loss)(eps).items()}


def empirical_fisher(model: DecoderLM, windows: jax.Array) -> np.ndarray:
    """Diagonal empirical Fisher summed per point, ``sum_b ||g_b,t||^2 / (B T)``, ``(L, 17)``."""
    build, params = functional(model)
    zeros = jax.tree.map(jnp.zeros_like, _collect(model, windows[:1, :-1]))
    total = np.zeros((model.spec.n_layers, N_POINTS))
    for w in windows:
        total += _per_point(_fisher_sq(build, params, zeros, w), model.spec.n_layers)
    return total / (windows.shape[0] * (windows.shape[1] - 1))


def _consumers(key: str) -> list[str]:
    """Matmul outputs that a point feeds: K feeds the scores (qk), V the attention output (pv)."""
    layer, kind, op = key.split(".")
    ops = {"k": ["qk"], "v": ["pv"]}[op] if kind == "kv" else [op]
    return [f"{layer}.{o}" for o in ops]


def _output_energies(build: Builder, params, tokens, z):
    """``||J_t z_t||^2`` per key with local Jacobians, first and second matmul operands in separate passes."""

    def outputs(eps):
        hooks = PerturbHooks(eps, local=True)
        build(params)(tokens, hooks)
        return hooks.outputs

    result = {}
    for first in (True, False):
        chosen = sorted(k for k in z if (k.split(".")[1] == "act") == first)
        tangent = {k: v if k in chosen else jnp.zeros_like(v) for k, v in z.items()}
        dy = jax.jvp(outputs, (jax.tree.map(jnp.zeros_like, z),), (tangent,))[1]
        for k in chosen:
            result[k] = sum(jnp.sum(dy[c] ** 2) for c in _consumers(k))
    return result


def output_mse(model: DecoderLM, windows: jax.Array, n_samples: int, key: jax.Array) -> np.ndarray:
    """``E||J_t z||^2`` per point ``(L, 17)``: energy of the consuming matmul's output per unit input noise.

    Two JVP passes keep the points apart: first operands (activations, queries, probabilities), then second
    operands (weights, keys, values), so no matmul output mixes two points.
    """
    build, params = functional(model)
    tokens = windows[:, :-1]
    zeros = jax.tree.map(jnp.zeros_like, _collect(model, tokens))
    total = np.zeros((model.spec.n_layers, N_POINTS))
    for k in jax.random.split(key, n_samples):
        # Eager on purpose: under jax.jit (jax 0.10, CPU) some entries came out inf or ~1e26 where the eager
        # value is small and finite (not yet understood; the HVP and Fisher paths agree jitted and eager).
        total += _per_point(_output_energies(build, params, tokens, _rademacher(k, zeros)), model.spec.n_layers)
    return total / n_samples


@functools.partial(jax.jit, static_argnums=0)
def _error_energies(scheme: QuantScheme, tensors):
    """Per key: error energies at every bit of :data:`BIT_GRID` (vmapped over bits) and ``C_t``."""
    bits = jnp.asarray(BIT_GRID, jnp.float32)
    err, const = {}, {}
    for k, x in tensors.items():
        s = scheme.of(*POINTS[_split_key(k)[1]])
        err[k] = jax.vmap(lambda b, x=x, s=s: jnp.sum((fake_quant_scheme(x, b, s) - x) ** 2))(bits)
        const[k] = noise_constant(x, s)
    return err, const


def error_curves(tensors: dict[str, jax.Array], n_layers: int, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """Measured error energy ``||Q_b(x) - x||^2`` at :data:`BIT_GRID` ``(L, 17, 7)`` and ``C_t`` ``(L, 17)``."""
    err_d, const_d = _error_energies(scheme, tensors)
    err = np.zeros((n_layers, N_POINTS, len(BIT_GRID)))
    for key, v in err_d.items():
        err[_split_key(key)] += np.asarray(v)
    return err, _per_point(const_d, n_layers)


@functools.partial(jax.jit, static_argnums=0)
def reference_logp(build: Builder, params, windows) -> jax.Array:
    """Full-precision next-token log-probabilities ``(B, T, V)`` on ``windows`` (inputs plus targets)."""
    return jax.nn.log_softmax(build(params)(windows[:, :-1]).astype(jnp.float32), axis=-1)


def _token_loss_and_kl(build: Builder, scheme: QuantScheme, params, windows, table, ref_logp):
    """Per-token loss and ``KL(p_full || p_quantised)`` ``(B, T)`` with ``table`` ``(L, 17)`` fake-quantised."""
    logits = build(params)(windows[:, :-1], QuantHooks(Precision.from_table(table), scheme))
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, windows[:, 1:, None], axis=-1)[..., 0]  # as token_nll, before its mean
    return nll, jnp.sum(jnp.exp(ref_logp) * (ref_logp - logp), axis=-1)


@functools.partial(jax.jit, static_argnums=(0, 1))
def quantised_loss_and_kl(build: Builder, scheme: QuantScheme, params, windows, table, ref_logp):
    """Mean token loss and mean per-token ``KL(p_full || p_quantised)`` with ``table`` ``(L, 17)`` fake-quantised.

    Parameters and tokens are arguments, not closed-over constants, so XLA does not constant-fold the model;
    ``ref_logp`` is :func:`reference_logp` of the same windows.
    """
    nll, kl = _token_loss_and_kl(build, scheme, params, windows, table, ref_logp)
    return jnp.mean(nll), jnp.mean(kl)


@functools.partial(jax.jit, static_argnums=(0, 1))
def window_loss_and_kl(build: Builder, scheme: QuantScheme, params, windows, table, ref_logp):
    """As :func:`quantised_loss_and_kl`, one mean per window ``(B,)`` (for standard errors over windows)."""
    nll, kl = _token_loss_and_kl(build, scheme, params, windows, table, ref_logp)
    return jnp.mean(nll, axis=1), jnp.mean(kl, axis=1)


def loss_curves(
    model: DecoderLM, windows: jax.Array, scheme: QuantScheme, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Measured loss increase and KL to full precision ``(L, 17, 7)`` (nats/token) with only one point
    quantised, and the base loss; ``progress(done, total)`` after each of the ``L x 17 x 7`` forward passes."""
    build, params = functional(model)
    n_layers = model.spec.n_layers
    full = np.full((n_layers, N_POINTS), FULL_PRECISION_BITS, np.float32)
    ref_logp = reference_logp(build, params, windows)
    base = float(quantised_loss_and_kl(build, scheme, params, windows, full, ref_logp)[0])
    curves = np.zeros((n_layers, N_POINTS, len(BIT_GRID)))
    kl = np.zeros_like(curves)
    for done, (layer, col, i) in enumerate(np.ndindex(curves.shape), 1):
        table = full.copy()
        table[layer, col] = BIT_GRID[i]
        loss, div = quantised_loss_and_kl(build, scheme, params, windows, table, ref_logp)
        curves[layer, col, i], kl[layer, col, i] = float(loss) - base, float(div)
        if progress is not None:
            progress(done, curves.size)
    return curves, kl, base


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Sensitivities:
    """Per-point tables of one model; ``(L, 17)`` unless noted, columns in :data:`POINTS` order.

    Attributes:
      numel: elements of each point's tensor in the calibration batch (weights: parameters).
      hessian, fisher: trace of the loss Hessian (Hutchinson) and of the empirical Fisher per point.
      outmse: local output energy per unit input noise, summed over the point's elements.
      noise_c: ``C_t`` of the uniform-noise model (error energy ``C_t / levels(b)^2``).
      energy: ``||x||^2`` of each tensor (for relative errors).
      symmetric: 1 where the point is quantised symmetrically, else 0.
      err: measured error energy at :data:`BIT_GRID`, ``(L, 17, 7)``.
      loss: measured single-point loss increase (nats/token) at :data:`BIT_GRID`, ``(L, 17, 7)``.
      base_loss: full-precision calibration loss, nats/token.
      kl: measured single-point mean per-token KL divergence from the full-precision model (nats/token)
        at :data:`BIT_GRID`, ``(L, 17, 7)``: non-negative and far less noisy than ``loss`` at high bits.
    """

    numel: jax.Array
    hessian: jax.Array
    fisher: jax.Array
    outmse: jax.Array
    noise_c: jax.Array
    energy: jax.Array
    symmetric: jax.Array
    err: jax.Array
    loss: jax.Array
    base_loss: jax.Array
    kl: jax.Array

    def summary(self) -> dict:
        """JSON-ready per-layer tables keyed by point name."""
        names = list(POINT_NAMES)

        def table(a):
            return [{n: float(v) for n, v in zip(names, row, strict=True)} for row in np.asarray(a)]

        per_el = {k: np.asarray(getattr(self, k)) / np.asarray(self.numel) for k in ("hessian", "fisher", "outmse")}
        return {
            "points": names,
            "bits": BIT_GRID.tolist(),
            "base_loss": float(self.base_loss),
            "hessian_per_element": table(per_el["hessian"]),
            "fisher_per_element": table(per_el["fisher"]),
            "outmse_per_element": table(per_el["outmse"]),
            "loss_curves": [
                {n: [float(x) for x in c] for n, c in zip(names, row, strict=True)} for row in np.asarray(self.loss)
            ],
        }


def estimate(
    model: DecoderLM,
    windows: np.ndarray,
    scheme: QuantScheme = DEFAULT_SCHEME,
    *,
    n_samples: int = 16,
    seed: int = 0,
    progress: Progress | None = None,
) -> Sensitivities:
    """All sensitivities of ``model`` on calibration ``windows`` ``(B, T + 1)``.

    Args:
      model: the full-precision model.
      windows: calibration token windows (inputs plus next-token targets).
      scheme: the quantisation scheme the error and loss curves are measured with.
      n_samples: Rademacher samples for the Hutchinson and output-MSE estimates.
      seed: seeds those samples.
      progress: called as ``progress(done, total)`` while the single-point curves are measured (the longest part).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples={n_samples!r} must be a positive integer")
    windows = jnp.asarray(windows)
    n_layers = model.spec.n_layers
    k_h, k_o = jax.random.split(jax.random.key(seed))
    tensors = _collect(model, windows[:, :-1])
    err, const = error_curves(tensors, n_layers, scheme)
    sym = np.array([[float(scheme.of(kind, op).symmetric) for kind, op in POINTS]] * n_layers)
    loss, kl, base = loss_curves(model, windows, scheme, progress)
    return Sensitivities(
        numel=jnp.asarray(_numel(tensors, n_layers)),
        hessian=jnp.asarray(hutchinson_hessian(model, windows, n_samples, k_h)),
        fisher=jnp.asarray(empirical_fisher(model, windows)),
        outmse=jnp.asarray(output_mse(model, windows, n_samples, k_o)),
        noise_c=jnp.asarray(const),
        energy=jnp.asarray(_per_point({k: jnp.sum(v * v) for k, v in tensors.items()}, n_layers)),
        symmetric=jnp.asarray(sym),
        err=jnp.asarray(err),
        loss=jnp.asarray(loss),
        base_loss=jnp.asarray(base),
        kl=jnp.asarray(kl),
    )


def log_interp(bits: jax.Array, curve: jax.Array, floor: float) -> jax.Array:
    """Monotone, C1 interpolation of a curve measured at :data:`BIT_GRID`, in log space.

    The measured values are first made non-increasing in ``b`` (running minimum) and floored at ``floor``;
    ``log`` of them is interpolated by a Fritsch-Carlson monotone cubic (PCHIP). Beyond 8 bits the curve
    falls at least as fast as ``4^-b`` (uniform noise energy); below 2 bits it continues the end slope.

    Args:
      bits: continuous bits, any shape ``S``.
      curve: values ``S + (7,)`` at ``b = 2..8``.
      floor: smallest value kept (measured increases can be zero or negative at high bits).

    Returns:
      The interpolated values, shape ``S``.
    """
    y = jnp.log(jnp.maximum(jax.lax.cummin(curve, axis=curve.ndim - 1), floor))
    d = y[..., 1:] - y[..., :-1]  # secants (unit spacing)
    same_sign = d[..., :-1] * d[..., 1:] > 0
    inner = jnp.where(
        same_sign, 2.0 * d[..., :-1] * d[..., 1:] / jnp.where(same_sign, d[..., :-1] + d[..., 1:], 1.0), 0.0
    )
    m = jnp.concatenate([d[..., :1], inner, d[..., -1:]], axis=-1)  # tangents at the knots
    lo, hi = float(BIT_GRID[0]), float(BIT_GRID[-1])
    x = jnp.clip(bits, lo, hi) - lo
    i = jnp.clip(jnp.floor(x), 0, len(BIT_GRID) - 2).astype(jnp.int32)
    t = x - i

    def at(a, j):
        return jnp.take_along_axis(a, j[..., None], axis=-1)[..., 0]

    y0, y1, m0, m1 = at(y, i), at(y, i + 1), at(m, i), at(m, i + 1)
    h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    inside = h00 * y0 + h10 * m0 + h01 * y1 + h11 * m1
    below = y[..., 0] + m[..., 0] * (bits - lo)
    above = y[..., -1] + jnp.minimum(m[..., -1], -jnp.log(4.0)) * (bits - hi)
    return jnp.exp(jnp.where(bits < lo, below, jnp.where(bits > hi, above, inside)))
