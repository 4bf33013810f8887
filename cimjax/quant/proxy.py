"""The accuracy proxy: predicted increase of the LM loss (nats/token) under a :class:`Precision`.

Every variant is linear in non-negative features of the bits, ``dL(b) = sum_g coef_g * f_g(b)``, each
feature a sum over points (quantised tensors, :data:`cimjax.workload.precision.POINTS`) that falls
smoothly and monotonically as bits grow, so every variant is differentiable in continuous bits and more
bits never predict more loss (coefficients are non-negative). With ``e_t(b)`` an error energy:

* ``hessian_noise``:   ``sum_t 0.5 (tr H_t / n_t) C_t / levels(b_t)^2``  (HAWQ-V2 trace x ``Delta^2/12``)
* ``fisher_noise``:    the same with the empirical-Fisher trace.
* ``hessian_measured``: ``sum_t 0.5 (tr H_t / n_t) err_t(b_t)`` with the measured error curve.
* ``fisher_measured``:  the same with the Fisher trace.
* ``outmse_measured``:  ``a * sum_t (outmse_t / n_t) err_t(b_t)``: output-MSE sensitivity; ``a`` (nats per
  unit output error energy) is fitted, the only way to give output MSE loss units.
* ``loss_curves``:      ``sum_t dL_t(b_t)``: measured single-point loss increases, interpolated.
* ``higgs``:            ``sum_g a_g sum_{t in g} err_t(b_t) / ||x_t||^2``: HIGGS-style linear model in the
  relative errors, one coefficient per layer and tensor kind (weights, activations, KV), fitted by
  non-negative least squares on measured losses of assignments that are not used to judge it.
* ``interaction``:   ``a sum_t d_t + sum_l c_l (sum_{t in l} sqrt d_t)^2 + g (sum_t sqrt d_t)^2
  + p sum_{l, op} sqrt(d_W,l,op d_X,l,op)`` with ``d_t = KL_t(b_t)`` the measured single-point KL
  divergences from the full-precision model (non-negative, unlike single-point loss changes, which are
  noise-dominated at high bits; the target stays the loss increase):
  the additive model plus interaction terms -- errors compounding inside a layer, across the whole model,
  and between the weight and the input of the same matmul (the ``dW dX`` product of ``(W + dW)(X + dX)``).
  Expanding a square gives every pairwise product ``sqrt(d_t d_u)``: the interaction of two points is
  assumed to scale with the geometric mean of their single-point effects, with one coefficient per group
  (layer, model, matmul). The ``L + 3`` coefficients are fitted (non-negative least squares on *relative*
  errors) on measured mixed assignments.
* ``default``: for models without weights, see :func:`default_proxy` -- an assumption, labelled as such.

Negative Hessian-trace estimates (sampling noise, or non-convex directions) are set to zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import nnls

from cimjax.quant.quantizers import levels
from cimjax.quant.sensitivity import Sensitivities, log_interp
from cimjax.workload.precision import LINEAR_OPS, POINTS, PRESETS, Precision
from cimjax.workload.spec import ModelSpec

VARIANTS = (
    "hessian_noise",
    "fisher_noise",
    "hessian_measured",
    "fisher_measured",
    "outmse_measured",
    "loss_curves",
    "higgs",
    "interaction",
)
FITTED = ("outmse_measured", "higgs", "interaction")
RELATIVE_FIT = ("interaction",)  # fitted on relative errors: budgets span 1e-4..1 nats/token
RELATIVE_FLOOR = 1e-5  # nats/token: measured increases below this weigh as this in a relative fit
LOSS_FLOOR = 1e-6  # nats/token: measured single-point increases below this are treated as this
_KINDS = ("weight", "act", "kv")

DEFAULT_ASSUMPTION = (
    "ASSUMPTION (no weights): every matmul operand has the same loss sensitivity per multiply-accumulate "
    "and Gaussian-distributed values, so its quantisation noise is the uniform-noise model Delta^2/12 of "
    "a Gaussian row; the scale kappa was measured on cimjax's byte-level proxy LM, not on this model."
)
# Loss increase (nats/token) per unit of MAC-weighted relative noise energy: the coefficient fitted (non-negative
# least squares, 60 layer-wise fit assignments, seed 0) on the byte-level proxy LM of TrainConfig() by
# `python benchmarks/proxy_validation.py` (validation_layer.json, variant "default": 2.29). See docs/proxy.md.
DEFAULT_KAPPA = 2.3
DEFAULT_CONTEXT = 512  # tokens of context assumed for the attention matmuls of the default proxy
# The most any assignment can gain in tokens/s over uniform precision under the default proxy on a
# DRAM-bound decode (derivation: docs/benchmarks.md, "Joint co-optimisation"): the weights take the whole
# budget, activations and KV go to 16 bits, a fraction of the weights drops one bit. Measured: 1.044-1.045x
# at INT8 and 1.061-1.064x at INT4 on the twelve SLMs.
DEFAULT_GAIN_CAP = {"int8": 1.04, "int4": 1.06}


def gain_cap_note(proxy_name: str) -> str | None:
    """What a gain under the weight-less default proxy can be at most, and why; None for measured proxies."""
    if proxy_name != "default":
        return None
    return (
        "default proxy (no weights, equal sensitivity per MAC assumed): no assignment can gain more than "
        f"~{DEFAULT_GAIN_CAP['int8']:.2f}x at INT8 or ~{DEFAULT_GAIN_CAP['int4']:.2f}x at INT4 over uniform "
        "precision (derivation: docs/benchmarks.md); real gains need measured sensitivities (--checkpoint)"
    )


def _levels_table(table: jax.Array, symmetric: jax.Array) -> jax.Array:
    return jnp.where(symmetric > 0, levels(table, True), levels(table, False))


def _point_terms(name: str, sens: Sensitivities, table: jax.Array) -> jax.Array:
    """Per-point feature terms ``(L, 17)`` of a variant before grouping and coefficients."""
    n = sens.numel
    hess = 0.5 * jnp.maximum(sens.hessian, 0.0) / n
    fisher = 0.5 * sens.fisher / n
    noise = sens.noise_c / _levels_table(table, sens.symmetric) ** 2
    tiny = 1e-30
    if name == "loss_curves":
        return log_interp(table, sens.loss, LOSS_FLOOR)
    err = log_interp(table, sens.err, tiny)
    return {
        "hessian_noise": lambda: hess * noise,
        "fisher_noise": lambda: fisher * noise,
        "hessian_measured": lambda: hess * err,
        "fisher_measured": lambda: fisher * err,
        "outmse_measured": lambda: sens.outmse / n * err,
        "higgs": lambda: err / jnp.maximum(sens.energy, tiny),
    }[name]()


def _kind_index() -> np.ndarray:
    return np.array([_KINDS.index(kind) for kind, _ in POINTS])


def _interaction_features(sens: Sensitivities, table: jax.Array) -> jax.Array:
    """``[sum d, (sum_layer sqrt d)^2 per layer, (sum sqrt d)^2, sum_matmul sqrt(d_W d_X)]``, ``(L + 3,)``."""
    d = log_interp(table, sens.kl, LOSS_FLOOR)
    r = jnp.sqrt(d)
    n_w = len(LINEAR_OPS)
    pairs = jnp.sum(r[:, :n_w] * r[:, n_w : 2 * n_w])  # weight and input of q..down (same column order)
    return jnp.concatenate([jnp.sum(d)[None], jnp.sum(r, axis=1) ** 2, (jnp.sum(r) ** 2)[None], pairs[None]])


def features(name: str, sens: Sensitivities, table: jax.Array) -> jax.Array:
    """The variant's features: one per (layer, kind) for ``higgs``, ``L + 3`` for ``interaction``, else a
    single summed feature."""
    if name == "interaction":
        return _interaction_features(sens, table)
    terms = _point_terms(name, sens, table)
    if name != "higgs":
        return jnp.sum(terms)[None]
    onehot = jax.nn.one_hot(_kind_index(), len(_KINDS))  # (17, 3)
    return (terms @ onehot).reshape(-1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Proxy:
    """A proxy variant: ``proxy(precision)`` is the predicted loss increase in nats/token.

    Attributes:
      name: the variant (one of :data:`VARIANTS`, or ``default``).
      sens: the model's sensitivities (None for ``default``).
      coef: non-negative coefficients of the features (ones unless fitted).
      assumption: why the numbers may not hold for the model at hand; None when measured on it.
    """

    sens: Sensitivities | None
    coef: jax.Array
    name: str = dataclasses.field(metadata={"static": True})
    assumption: str | None = dataclasses.field(default=None, metadata={"static": True})
    spec: ModelSpec | None = dataclasses.field(default=None, metadata={"static": True})

    def features(self, precision: Precision) -> jax.Array:
        table = precision.to_table()
        if self.name == "default":
            return _default_features(self.spec, table)[None]
        return features(self.name, self.sens, table)

    def __call__(self, precision: Precision) -> jax.Array:
        return jnp.dot(self.coef, self.features(precision))


def make_proxy(name: str, sens: Sensitivities) -> Proxy:
    """An unfitted variant (coefficients one); fitted variants need :func:`fit_proxy` first."""
    if name not in VARIANTS:
        raise ValueError(f"proxy variant {name!r} is not known; allowed: {VARIANTS}")
    n_feat = features(name, sens, jnp.full(sens.numel.shape, 8.0)).shape[0]
    return Proxy(sens=sens, coef=jnp.ones((n_feat,), jnp.float32), name=name)


@jax.jit
def batch_features(proxy: Proxy, tables: jax.Array) -> jax.Array:
    """Features ``(N, G)`` of a proxy at bit tables ``(N, L, 17)`` (one compile per variant and N)."""
    return jax.vmap(lambda t: proxy.features(Precision.from_table(t)))(tables)


def fit_proxy(proxy: Proxy, tables: np.ndarray, measured: np.ndarray) -> Proxy:
    """Fits non-negative coefficients by least squares of predicted against measured loss increases.

    Args:
      proxy: the variant (its current coefficients are ignored).
      tables: bit tables ``(N, L, 17)`` of the *fit* set (never the set the proxy is judged on).
      measured: their measured loss increases, nats/token.
    """
    if len(tables) != len(measured) or not len(tables):
        raise ValueError(f"need as many measured losses ({len(measured)}) as assignments ({len(tables)}) > 0")
    feats = np.asarray(batch_features(proxy, jnp.asarray(tables, jnp.float32)))
    coef = fit_coefficients(feats, measured, relative=proxy.name in RELATIVE_FIT)
    return dataclasses.replace(proxy, coef=jnp.asarray(coef, jnp.float32))


def fit_coefficients(features: np.ndarray, measured: np.ndarray, relative: bool = False) -> np.ndarray:
    """Non-negative least squares ``features @ coef ~ measured`` (features ``(N, G)``, scaled for conditioning).

    With ``relative`` every row is divided by its measured value (at least :data:`RELATIVE_FLOOR`), so the
    fit minimises relative errors and small losses count as much as large ones.
    """
    feats = np.asarray(features, np.float64)
    target = np.asarray(measured, np.float64)
    if relative:
        weight = 1.0 / np.maximum(np.abs(target), RELATIVE_FLOOR)
        feats, target = feats * weight[:, None], target * weight
    scale = np.maximum(feats.max(axis=0), 1e-300)
    coef, _ = nnls(feats / scale, target)
    return coef / scale


def _default_points(spec: ModelSpec, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point MAC counts per token, scale-row lengths and symmetry ``(17,)`` of the default proxy."""
    h, q, kv, f = spec.hidden, spec.q_dim, spec.kv_dim, spec.ffn
    linear = {"q": (h, q), "k": (h, kv), "v": (h, kv), "o": (q, h), "gate": (h, f), "up": (h, f), "down": (f, h)}
    attn = spec.n_heads * spec.head_dim * context  # MACs per token of qk and of pv
    macs, rows, sym = [], [], []
    for kind, op in POINTS:
        if op in LINEAR_OPS:
            d_in, d_out = linear[op]
            macs.append(d_in * d_out)
            rows.append(d_in)
        elif op == "qk":
            macs.append(attn)
            rows.append(spec.head_dim)
        elif op == "pv":
            macs.append(attn)
            rows.append(context)
        else:  # kv: K feeds qk, V feeds pv
            macs.append(2 * attn)
            rows.append(spec.head_dim)
        sym.append(not (kind == "act" and op == "pv"))
    return np.array(macs, float), np.array(rows, float), np.array(sym)


def _default_features(spec: ModelSpec, table: jax.Array) -> jax.Array:
    """MAC-weighted relative noise energy: ``sum_t (macs_t / macs_linear) g(d_t) / (12 levels(b_t)^2)``.

    ``g(d) = 2 ln(2 d)`` approximates ``E[max|x|^2] / sigma^2`` of a Gaussian row of length ``d``.
    """
    macs, rows, sym = _default_points(spec, DEFAULT_CONTEXT)
    weight_macs = macs[: len(LINEAR_OPS)].sum() * spec.n_layers
    g = 2.0 * np.log(2.0 * rows)
    lv = _levels_table(table, jnp.asarray(sym, jnp.float32)[None, :])
    return jnp.sum(jnp.asarray(macs / weight_macs * g / 12.0, jnp.float32) / lv**2)


def default_proxy(spec: ModelSpec, kappa: float = DEFAULT_KAPPA) -> Proxy:
    """The proxy for models whose weights are not available: equal sensitivity per MAC, Gaussian noise.

    ``dL(b) = kappa * sum_t (macs_t / macs_linear) * 2 ln(2 d_t) / (12 levels(b_t)^2)`` where ``macs_t`` is
    the per-token multiply-accumulates of the matmul the point feeds (attention at
    :data:`DEFAULT_CONTEXT` tokens), ``d_t`` the length of a scale row. The result carries
    :data:`DEFAULT_ASSUMPTION` in ``proxy.assumption``; report it with every number it produces.
    """
    if not (math.isfinite(kappa) and kappa > 0):
        raise ValueError(f"kappa={kappa!r} must be a positive number")
    return Proxy(
        sens=None, coef=jnp.array([kappa], jnp.float32), name="default", assumption=DEFAULT_ASSUMPTION, spec=spec
    )


OPTIMIZER_PROXY = "interaction"
"""The variant ``cimjax optimize --checkpoint`` prices assignments with (see :func:`optimizer_proxy`)."""


def optimizer_proxy(sens: Sensitivities, tables: np.ndarray, measured: np.ndarray) -> Proxy:
    """The proxy of :data:`OPTIMIZER_PROXY` for a checkpoint, given its measured mixed assignments.

    Args:
      sens: the checkpoint's sensitivities.
      tables, measured: mixed assignments ``(n, L, 17)`` and their measured loss increases (the fit set of
        fitted variants; unused by unfitted ones). Without a fit set, or when the fit gives every coefficient
        zero (measured losses at the noise level), the additive ``loss_curves`` variant is returned.
    """
    proxy = make_proxy(OPTIMIZER_PROXY, sens)
    if OPTIMIZER_PROXY in FITTED:
        proxy = fit_proxy(proxy, tables, measured) if len(tables) else proxy
        if not np.any(np.asarray(proxy.coef) > 0):  # no loss above noise to fit: the additive measured curves
            proxy = make_proxy("loss_curves", sens)
    return proxy


def uniform_budgets(proxy: Callable[[Precision], jax.Array], n_layers: int) -> dict[str, float]:
    """A proxy (or a jitted one) at each uniform width of :data:`PRESETS` (W, A and KV alike): budgets for the
    optimiser."""
    return {name: float(proxy(Precision.uniform(n_layers, bits))) for name, bits in PRESETS.items()}
