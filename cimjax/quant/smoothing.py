"""Per-input-channel activation smoothing (SmoothQuant: Xiao et al., ICML 2023), folded into the weights.

For a linear ``y = x W^T`` (``W`` in the ``(out, in)`` layout) and a factor ``s_j > 0`` per input channel,
``y = (x / s) (W diag(s))^T`` in full precision. SmoothQuant picks

    s_j = max|x_j|^a / max_i |W_ij|^(1 - a)        (a = :data:`DEFAULT_ALPHA`)

from calibration activations, so a channel whose activations have outliers is divided down (its range moves
into the weight column, quantised per output channel) and the per-token activation scale is set by the
other channels. The division is never computed at run time: it is folded into the operator that produces
``x``, so the smoothed model is an ordinary checkpoint of the same architecture (docs/quantisation.md):

* ``q``/``k``/``v`` read ``input_layernorm(x)``: one ``s`` over ``hidden`` divides that RMSNorm's gain;
* ``gate``/``up`` read ``post_attention_layernorm(x)``: likewise that gain;
* ``o`` reads ``probs @ V``, linear in ``V``: ``s`` divides ``v_proj``'s output rows (and bias). A value
  head is shared by ``n_heads / n_kv_heads`` query heads, so ``s`` is one factor per ``(kv head, dim)``,
  taken from the maxima of every ``o`` input channel that reads it; the cached values are ``v / s``;
* ``down`` reads ``silu(gate) * up``, linear in ``up``'s output: ``s`` divides ``up_proj``'s rows.

``qk`` and ``pv`` have no weight (their inputs are queries and probabilities) and the LM head stays at full
precision, so they are not smoothed. Every factor comes from the original model on the calibration windows.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from cimjax.lm.model import DecoderLM, Hooks, functional, observe

DEFAULT_ALPHA = 0.5
"""SmoothQuant's migration strength: half of each channel's range (in log scale) moves into the weights."""
# Which linear input each fold smooths, the weights that read it, and the operator it folds into.
FOLDS = {
    "qkv": ("q", ("q_proj", "k_proj", "v_proj")),
    "gate_up": ("gate", ("gate_proj", "up_proj")),
    "o": ("o", ("o_proj",)),
    "down": ("down", ("down_proj",)),
}
_MODULE = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}  # fmt: skip


class _Maxima(Hooks):
    """Records ``max |x_j|`` over batch and time of every linear input (eager calls only)."""

    def __init__(self):
        self.maxima: dict[tuple[int, str], np.ndarray] = {}

    def act(self, layer, op, x):
        m = np.asarray(jnp.max(jnp.abs(x.reshape(-1, x.shape[-1])), axis=0))
        key = (layer, op)
        self.maxima[key] = m if key not in self.maxima else np.maximum(self.maxima[key], m)
        return x


def channel_maxima(model: DecoderLM, windows: np.ndarray, chunk: int = 16) -> dict[tuple[int, str], np.ndarray]:
    """``max |x_j|`` per input channel ``j`` of each matmul input ``(layer, op)`` over ``windows``."""
    return observe(model, windows, _Maxima(), chunk).maxima


def _param(layer: int, name: str) -> str:
    return f"model.layers.{layer}.{_MODULE[name]}.{name}.weight"


def smoothing_factor(act_max, weight_max, alpha: float) -> np.ndarray:
    """``s_j = act_max_j^a / weight_max_j^(1 - a)``; 1 where either maximum is zero (nothing to move)."""
    act_max, weight_max = np.asarray(act_max, np.float64), np.asarray(weight_max, np.float64)
    ok = (act_max > 0) & (weight_max > 0)
    s = np.where(ok, np.maximum(act_max, 1e-30) ** alpha / np.maximum(weight_max, 1e-30) ** (1.0 - alpha), 1.0)
    return s.astype(np.float32)


def factors(model: DecoderLM, windows: np.ndarray, alpha: float = DEFAULT_ALPHA) -> dict[tuple[int, str], np.ndarray]:
    """The factor ``s`` of every fold (:data:`FOLDS`) of every layer, ``{(layer, fold): s}``, from the
    activation maxima on ``windows`` and the model's weights. ``o``'s factor is per ``(kv head, dim)``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothing alpha={alpha!r} must lie in [0, 1]")
    spec = model.spec
    maxima = channel_maxima(model, windows)
    _, params = functional(model)
    out = {}
    for layer in range(spec.n_layers):
        for fold, (op, names) in FOLDS.items():
            act = maxima[(layer, op)]
            w = np.max([np.max(np.abs(np.asarray(params[_param(layer, n)])), axis=0) for n in names], axis=0)
            if fold == "o":  # one factor per value channel: the maxima over the query heads that read it
                shape = (spec.n_kv_heads, spec.group_size, spec.head_dim)
                act, w = act.reshape(shape).max(axis=1).ravel(), w.reshape(shape).max(axis=1).ravel()
            out[(layer, fold)] = smoothing_factor(act, w, alpha)
    return out


def fold(model: DecoderLM, scales: dict[tuple[int, str], np.ndarray]) -> DecoderLM:
    """A copy of ``model`` with the factors folded in (equal to ``model`` in full precision)."""
    spec = model.spec
    build, params = functional(model)
    p = dict(params)
    for layer in range(spec.n_layers):
        pre = f"model.layers.{layer}"
        for fold_name, norm in (("qkv", "input_layernorm"), ("gate_up", "post_attention_layernorm")):
            s = jnp.asarray(scales[(layer, fold_name)])
            p[f"{pre}.{norm}.weight"] = p[f"{pre}.{norm}.weight"] / s
            for name in FOLDS[fold_name][1]:
                p[_param(layer, name)] = p[_param(layer, name)] * s[None, :]
        s = jnp.asarray(scales[(layer, "o")])
        p[_param(layer, "v_proj")] = p[_param(layer, "v_proj")] / s[:, None]
        if f"{pre}.self_attn.v_proj.bias" in p:
            p[f"{pre}.self_attn.v_proj.bias"] = p[f"{pre}.self_attn.v_proj.bias"] / s
        wide = jnp.broadcast_to(s.reshape(spec.n_kv_heads, 1, spec.head_dim), (spec.n_kv_heads, spec.group_size,
                                spec.head_dim)).reshape(-1)  # fmt: skip
        p[_param(layer, "o_proj")] = p[_param(layer, "o_proj")] * wide[None, :]
        s = jnp.asarray(scales[(layer, "down")])
        p[_param(layer, "up_proj")] = p[_param(layer, "up_proj")] / s[:, None]
        p[_param(layer, "down_proj")] = p[_param(layer, "down_proj")] * s[None, :]
    return build(p)


def smooth(model: DecoderLM, windows: np.ndarray, alpha: float = DEFAULT_ALPHA) -> DecoderLM:
    """``model`` smoothed with the factors of ``windows`` (the calibration windows, never the check ones)."""
    return fold(model, factors(model, windows, alpha))


def outlier_ratios(model: DecoderLM, windows: np.ndarray) -> dict[str, list[float]]:
    """Per linear input op, per layer: the largest channel's ``max |x_j|`` over the median channel's."""
    maxima = channel_maxima(model, windows)
    ops = {op for _, op in maxima if op not in ("qk", "pv")}
    return {
        op: [
            float(np.max(maxima[(layer, op)]) / np.median(maxima[(layer, op)])) for layer in range(model.spec.n_layers)
        ]
        for op in sorted(ops)
    }
