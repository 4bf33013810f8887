"""The accuracy proxy of models whose weights are not available (``default``): an assumption, labelled as such.

Every matmul operand is assumed to have the same loss sensitivity per multiply-accumulate and Gaussian values,
so a point's quantisation noise is the uniform-noise model ``Delta^2 / 12`` of a Gaussian row, weighted by the
MACs it feeds; one scale ``kappa`` (fitted on the byte-level proxy LM) gives loss units. docs/proxy.md derives
it and its gain cap.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.quant.proxy import Proxy, ProxyKind, levels_table
from cimjax.workload.precision import LINEAR_OPS, POINTS
from cimjax.workload.spec import ModelSpec

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


DEFAULT_GAIN_CAP_NOTE = (
    "default proxy (no weights, equal sensitivity per MAC assumed): no assignment can gain more than "
    f"~{DEFAULT_GAIN_CAP['int8']:.2f}x at INT8 or ~{DEFAULT_GAIN_CAP['int4']:.2f}x at INT4 over uniform "
    "precision (derivation: docs/benchmarks.md); real gains need measured sensitivities (--checkpoint)"
)
"""What a gain under the weight-less default proxy can be at most, and why (``gain_cap`` in the JSON)."""


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


def _default_features(proxy: Proxy, table: jax.Array) -> jax.Array:
    """MAC-weighted relative noise energy of ``proxy.spec``: ``sum_t (macs_t / macs_linear) g(d_t) /
    (12 levels(b_t)^2)``, one feature.

    ``g(d) = 2 ln(2 d)`` approximates ``E[max|x|^2] / sigma^2`` of a Gaussian row of length ``d``.
    """
    spec = proxy.spec
    macs, rows, sym = _default_points(spec, DEFAULT_CONTEXT)
    weight_macs = macs[: len(LINEAR_OPS)].sum() * spec.n_layers
    g = 2.0 * np.log(2.0 * rows)
    lv = levels_table(table, jnp.asarray(sym, jnp.float32)[None, :])
    return jnp.sum(jnp.asarray(macs / weight_macs * g / 12.0, jnp.float32) / lv**2)[None]


DEFAULT_KIND = ProxyKind(
    "default",
    _default_features,
    fitted=True,  # kappa: fitted on the byte-level proxy LM (and refitted by `cimjax proxy validate`)
    assumption=DEFAULT_ASSUMPTION,
    gain_cap=DEFAULT_GAIN_CAP_NOTE,
)


def default_proxy(spec: ModelSpec, kappa: float = DEFAULT_KAPPA) -> Proxy:
    """The proxy for models whose weights are not available: equal sensitivity per MAC, Gaussian noise.

    ``dL(b) = kappa * sum_t (macs_t / macs_linear) * 2 ln(2 d_t) / (12 levels(b_t)^2)`` where ``macs_t`` is
    the per-token multiply-accumulates of the matmul the point feeds (attention at
    :data:`DEFAULT_CONTEXT` tokens), ``d_t`` the length of a scale row. The result carries
    :data:`DEFAULT_ASSUMPTION` in ``proxy.assumption``; report it with every number it produces.
    """
    if not (math.isfinite(kappa) and kappa > 0):
        raise ValueError(f"kappa={kappa!r} must be a positive number")
    return Proxy(sens=None, coef=jnp.array([kappa], jnp.float32), kind=DEFAULT_KIND, spec=spec)
